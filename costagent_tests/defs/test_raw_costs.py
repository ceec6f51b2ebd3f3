"""raw_costs: materialized alone (a fixed cost source, two registered accounts, three covered days), and what it
records about its source: calls, $, and which accounts and days came back."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import polars as pl

from costagent_assets.defs.raw_costs import coverage_markdown, source_usage_frame
from costagent_assets.periods import period
from costagent_assets.resources.cost_source import CostSource, SourceFetch, split_registered
from costagent_assets.schemas import SCHEMAS
from costagent_tests.peers.stages import materialize_stage

A, B, STRANGER = "111111111111", "222222222222", "999999999999"
MONTH, AS_OF = "2025-03", date(2025, 3, 4)  # covers 1-3 March


def _rows(stranger: bool) -> pl.DataFrame:
    d = date
    rows = [
        # (date, account, service, cost)
        (d(2025, 2, 28), A, "AmazonEC2", 99.0),  # before the month: not this partition's
        (d(2025, 3, 1), A, "AmazonEC2", 10.0),
        (d(2025, 3, 2), A, "AmazonEC2", 10.0),
        (d(2025, 3, 2), A, "AmazonEC2", 12.0),  # the day delivered again: the last delivery is kept
        (d(2025, 3, 3), A, "AmazonEC2", 10.0),
        (d(2025, 3, 1), A, "AmazonS3", 2.5),
        (d(2025, 3, 2), A, "AmazonS3", 2.5),
        (d(2025, 3, 3), A, "AmazonS3", 2.5),
        (d(2025, 3, 4), A, "AmazonS3", 500.0),  # today: not complete, not covered
        (d(2025, 3, 1), B, "AWSLambda", 7.0),
        (d(2025, 3, 2), B, "AWSLambda", 7.0),
        (d(2025, 3, 3), B, "AWSLambda", 7.0),
    ]
    if stranger:
        rows.append((d(2025, 3, 1), STRANGER, "AmazonEC2", 50.0))  # in the bill, not in the registry
    return pl.DataFrame(
        [{"date": r[0], "account_id": r[1], "service": r[2], "region": "us-east-1",
          "usage_type": f"{r[2]}-usage", "cost_usd": r[3], "source": "fixed"} for r in rows]
    )


class FixedCostSource(CostSource):
    """A billing export in a test: the rows above, one billable request, strangers reported."""

    stranger: bool = False

    @property
    def name(self) -> str:
        return "fixed"

    def fetch(self, account_ids: Sequence[str], start: date, end: date, as_of: date) -> SourceFetch:
        wanted, unregistered = split_registered(_rows(self.stranger), account_ids)
        return SourceFetch(wanted, requests=1, cost_usd=0.01, unregistered=unregistered)


def test_raw_costs_keeps_the_covered_days_once(tmp_path):
    run = materialize_stage("raw_costs", tmp_path, month=MONTH, accounts=[A, B], as_of=AS_OF,
                            resources={"cost_source": FixedCostSource()})
    assert run.result.success
    raw = run.table("raw_costs")
    # 3 days x (EC2 + S3) for A, 3 days of Lambda for B; nothing outside 1-3 March.
    assert raw.height == 9
    assert raw["date"].min() == date(2025, 3, 1) and raw["date"].max() == date(2025, 3, 3)
    totals = dict(raw.group_by("account_id").agg(pl.col("cost_usd").sum()).iter_rows())
    assert totals == {A: 10.0 + 12.0 + 10.0 + 3 * 2.5, B: 21.0}  # 39.5 and 21
    assert set(raw["provider"]) == {"aws"} and set(raw["currency"]) == {"USD"} and set(raw["month"]) == {MONTH}

    meta = run.metadata("raw_costs")
    assert meta["rows"] == 9 and meta["total_usd"] == 60.5 and meta["through"] == "2025-03-03"
    assert meta["source"] == "fixed" and meta["source_requests"] == 1 and meta["accounts_without_data"] == 0
    assert run.checks() == {"one_row_per_day_and_line": True, "every_account_has_data": True,
                            "every_source_account_is_registered": True}
    [usage] = run.table("source_usage").iter_rows(named=True)
    assert (usage["requests"], usage["cost_usd"], usage["days_covered"]) == (1, 0.01, 3)
    assert (usage["accounts_requested"], usage["accounts_with_data"], usage["account_days_with_data"]) == (2, 2, 6)


def test_raw_costs_reports_an_account_without_data_and_an_unregistered_one(tmp_path):
    silent = "333333333333"
    run = materialize_stage("raw_costs", tmp_path, month=MONTH, accounts=[A, B, silent], as_of=AS_OF,
                            resources={"cost_source": FixedCostSource(stranger=True)})
    assert run.result.success  # both are warnings: the asset is still written
    raw = run.table("raw_costs")
    assert set(raw["account_id"]) == {A, B}  # the silent account has an empty partition, not $0 rows
    meta = run.metadata("raw_costs")
    assert meta["accounts_without_data"] == 1 and meta["unregistered_accounts"] == 1
    assert run.checks() == {"one_row_per_day_and_line": True, "every_account_has_data": False,
                            "every_source_account_is_registered": False}
    [usage] = run.table("source_usage").iter_rows(named=True)
    assert usage["accounts_without_data"] == silent
    assert usage["unregistered_accounts"] == STRANGER and usage["unregistered_usd"] == 50.0


def test_usage_row_names_missing_accounts_partial_days_and_unregistered():
    p = period("2026-11", date(2026, 11, 4))  # covers Nov 1-3
    raw = pl.DataFrame({
        "month": ["2026-11"] * 4,
        "account_id": ["000000000001"] * 3 + ["000000000002"],
        "date": [date(2026, 11, 1), date(2026, 11, 2), date(2026, 11, 3), date(2026, 11, 1)],
        "cost_usd": [1.0, 2.0, 3.0, 4.0],
    })
    fetched = SourceFetch(raw.drop("month"), requests=3, cost_usd=0.03, retries=1,
                          unregistered=pl.DataFrame({"account_id": ["999999999999"], "provider": ["aws"],
                                                     "cost_usd": [7.5]}), notes=["files read: 2"])
    partitions = [("2026-11", a) for a in ("000000000001", "000000000002", "000000000003")]
    usage = source_usage_frame("run-1", "cost_explorer", partitions, {"2026-11": p}, raw, {"2026-11": fetched})
    assert usage.columns == list(SCHEMAS["source_usage"])
    row = usage.row(0, named=True)
    assert p.days_covered == 3
    assert (row["requests"], row["retries"], row["cost_usd"]) == (3, 1, 0.03)
    assert (row["accounts_requested"], row["accounts_with_data"], row["account_days_with_data"]) == (3, 2, 4)
    assert row["accounts_without_data"] == "000000000003"
    assert row["accounts_with_missing_days"] == "000000000002"
    assert (row["unregistered_accounts"], row["unregistered_usd"]) == ("999999999999", 7.5)
    assert "| 2026-11 | 2 / 3 | 4 / 9 | 3 | 1 | 0.0300 |" in coverage_markdown(usage)
