"""The Parquet layout: one file per partition, a rerun replaces exactly its partitions, views see it all."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import polars as pl
import pytest

from costagent_assets.schemas import conform
from costagent_assets.warehouse.rollups import rollup_key, write_raw_costs
from costagent_assets.warehouse.store import partition_path, read_partitions, write_partitions
from costagent_assets.warehouse.views import connect, views_needed


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
    # Refused before anything is touched, the month's rollups included.
    write_raw_costs(tmp_path, raw("000000000001", "2026-10", 1.0), [("2026-10", "000000000001")])
    before = sorted(tmp_path.rglob("*.parquet"))
    with pytest.raises(ValueError, match="outside this run"):
        write_raw_costs(tmp_path, raw("000000000009", "2026-10", 1.0), [("2026-10", "000000000001")])
    assert sorted(tmp_path.rglob("*.parquet")) == before


def test_partitions_alone_leave_the_rollups_to_write_raw_costs(tmp_path: Path):
    keys = [("2026-10", "000000000001")]
    write_partitions(tmp_path, "raw_costs", raw("000000000001", "2026-10", 1.0), keys)
    assert not (tmp_path / "rollups").exists()
    write_raw_costs(tmp_path, raw("000000000001", "2026-10", 1.0), keys)
    assert (tmp_path / rollup_key("daily", "2026-10")).exists()
    assert (tmp_path / rollup_key("monthly", "2026-10")).exists()


def test_missing_upstream_partitions_read_as_empty(tmp_path: Path):
    assert read_partitions(tmp_path, "raw_costs", [("2023-12", "000000000001")]).height == 0


def test_views_cover_every_partition_and_the_teams(tmp_path: Path):
    keys = [("2026-09", "000000000001"), ("2026-10", "000000000001")]
    for m, a in keys:
        write_raw_costs(tmp_path, raw(a, m, 2.0), [(m, a)])
    teams = [{"team_name": "T", "aws_account_id": "000000000001", "team_email": "t@example.com",
              "cc_emails": [], "monthly_budget": 10.0}]
    con = connect(tmp_path, teams)
    assert con.execute("select count(*), sum(cost_usd) from raw_costs").fetchone() == (2, 4.0)
    assert con.execute("select count(*) from monthly_costs").fetchone() == (2,)
    assert con.execute("select team_name from teams").fetchone() == ("T",)
    assert con.execute("select count(*) from anomalies").fetchone() == (0,)  # no files yet: empty, typed


def _sums(con, sql: str) -> dict:
    return {tuple(r[:-1]): round(r[-1], 6) for r in con.execute(sql).fetchall()}


def test_rollups_follow_every_write_and_match_the_raw_rows(tmp_path: Path):
    def rows(account: str, month: str, costs: list[float]) -> pl.DataFrame:
        return pl.DataFrame({
            "date": [date.fromisoformat(f"{month}-0{1 + i % 3}") for i in range(len(costs))],
            "account_id": account, "service": ["EC2", "S3"] * (len(costs) // 2), "region": "us-east-1",
            "usage_type": [f"u{i}" for i in range(len(costs))], "cost_usd": costs, "currency": "USD",
            "source": "test", "month": month,
        })

    a, b = "000000000001", "000000000002"
    # Two runs of the same month, each owning one account: the second keeps the first's rows in the rollup.
    write_raw_costs(tmp_path, rows(a, "2026-10", [1.5, 2.25, 3.0, 0.125]), [("2026-10", a)])
    write_raw_costs(tmp_path, rows(b, "2026-10", [10.0, 20.0]), [("2026-10", b)])
    write_raw_costs(tmp_path, rows(a, "2026-09", [7.0, 1.0]), [("2026-09", a)])
    con = connect(tmp_path, [])
    raw_monthly = "select month, account_id, service, sum(cost_usd) from raw_costs group by all"
    assert _sums(con, "select month, account_id, service, cost_usd from monthly_costs") == _sums(con, raw_monthly)
    assert _sums(con, "select account_id, date, cost_usd from daily_costs") == _sums(
        con, "select account_id, date, sum(cost_usd) from raw_costs group by all")
    assert _sums(con, "select account_id, month, sum(cost_usd) from monthly_costs group by all")[(b, "2026-10")] == 30.0
    # A rerun of one account replaces its share of the month, not the others'.
    write_raw_costs(tmp_path, rows(a, "2026-10", [4.0, 4.0]), [("2026-10", a)])
    con = connect(tmp_path, [])
    totals = _sums(con, "select account_id, month, sum(cost_usd) from monthly_costs group by all")
    assert totals == {(a, "2026-09"): 8.0, (a, "2026-10"): 8.0, (b, "2026-10"): 30.0}
    # A warehouse without rollups (written before they existed, or a run killed between the writes)
    # gets them back when the views open.
    (tmp_path / rollup_key("monthly", "2026-10")).unlink()
    (tmp_path / rollup_key("daily", "2026-09")).unlink()
    con = connect(tmp_path, [])
    assert _sums(con, "select account_id, month, sum(cost_usd) from monthly_costs group by all") == totals
    assert (tmp_path / rollup_key("daily", "2026-09")).exists()


def test_a_query_gets_the_views_it_names_and_what_they_are_built_on(tmp_path: Path):
    assert views_needed("SELECT * FROM monthly_costs WHERE account_id = '1'") == {"monthly_costs"}
    assert views_needed("select team_name from Account_Months") == {"account_months", "mom_changes", "teams", "forecasts"}
    assert views_needed("select * from budgets") == {"budgets", "account_months", "mom_changes", "teams", "forecasts"}
    assert views_needed("SHOW TABLES") is None
    write_raw_costs(tmp_path, raw("000000000001", "2026-10", 2.0), [("2026-10", "000000000001")])
    con = connect(tmp_path, [], only=views_needed("select sum(cost_usd) from daily_costs"))
    assert con.execute("select sum(cost_usd) from daily_costs").fetchone() == (2.0,)
    names = {r[0] for r in con.execute("select view_name from duckdb_views() where not internal").fetchall()}
    assert "raw_costs" not in names and "mom_changes" not in names
