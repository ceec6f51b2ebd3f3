"""The per-month rollups follow every raw_costs write and match the raw rows."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import polars as pl

from costagent_assets.warehouse.rollups import rollup_key, write_raw_costs
from costagent_assets.warehouse.store import write_partitions
from costagent_assets.warehouse.views import connect
from costagent_tests.warehouse.samples import _sums, raw


def test_partitions_alone_leave_the_rollups_to_write_raw_costs(tmp_path: Path):
    keys = [("2026-10", "000000000001")]
    write_partitions(tmp_path, "raw_costs", raw("000000000001", "2026-10", 1.0), keys)
    assert not (tmp_path / "rollups").exists()
    write_raw_costs(tmp_path, raw("000000000001", "2026-10", 1.0), keys)
    assert (tmp_path / rollup_key("daily", "2026-10")).exists()
    assert (tmp_path / rollup_key("monthly", "2026-10")).exists()


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

