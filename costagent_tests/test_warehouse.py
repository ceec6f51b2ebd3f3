"""The Parquet layout: one file per partition, a rerun replaces exactly its partitions, views see it all."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import polars as pl
import pytest

from costagent_assets.schemas import conform
from costagent_assets.warehouse import connect, partition_path, read_partitions, write_partitions


def raw(account: str, month: str, usd: float) -> pl.DataFrame:
    day = date.fromisoformat(f"{month}-01")
    return conform(
        pl.DataFrame(
            [{"month": month, "date": day, "account_id": account, "service": "EC2", "region": "us-east-1",
              "usage_type": "x", "cost_usd": usd, "source": "test"}]
        ),
        "raw_costs",
    )


def test_rerun_replaces_exactly_its_partitions(tmp_path: Path):
    keys = [("2026-10", "000000000001"), ("2026-10", "000000000002")]
    write_partitions(tmp_path, "raw_costs", pl.concat([raw(a, m, 1.0) for m, a in keys]), keys)
    write_partitions(tmp_path, "raw_costs", raw("000000000001", "2026-10", 5.0), keys[:1])
    out = read_partitions(tmp_path, "raw_costs", keys).sort("account_id")
    assert out["cost_usd"].to_list() == [5.0, 1.0]
    assert not list(tmp_path.rglob("*.tmp"))


def test_partition_without_rows_gets_an_empty_file(tmp_path: Path):
    keys = [("2026-10", "000000000001"), ("2026-10", "000000000002")]
    written = write_partitions(tmp_path, "raw_costs", raw("000000000001", "2026-10", 1.0), keys)
    assert written == {keys[0]: 1, keys[1]: 0}
    assert pl.read_parquet(partition_path(tmp_path, "raw_costs", *keys[1])).height == 0


def test_rows_outside_the_run_are_refused(tmp_path: Path):
    with pytest.raises(ValueError, match="outside this run"):
        write_partitions(tmp_path, "raw_costs", raw("000000000009", "2026-10", 1.0), [("2026-10", "000000000001")])
    assert not list(tmp_path.rglob("*.parquet"))


def test_missing_upstream_partitions_read_as_empty(tmp_path: Path):
    assert read_partitions(tmp_path, "raw_costs", [("2023-12", "000000000001")]).height == 0


def test_views_cover_every_partition_and_the_teams(tmp_path: Path):
    keys = [("2026-09", "000000000001"), ("2026-10", "000000000001")]
    for m, a in keys:
        write_partitions(tmp_path, "raw_costs", raw(a, m, 2.0), [(m, a)])
    teams = [{"team_name": "T", "aws_account_id": "000000000001", "team_email": "t@example.com",
              "cc_emails": [], "monthly_budget": 10.0}]
    con = connect(tmp_path, teams)
    assert con.execute("select count(*), sum(cost_usd) from raw_costs").fetchone() == (2, 4.0)
    assert con.execute("select count(*) from monthly_costs").fetchone() == (2,)
    assert con.execute("select team_name from teams").fetchone() == ("T",)
    assert con.execute("select count(*) from anomalies").fetchone() == (0,)  # no files yet: empty, typed
