"""What raw_costs records about its source: calls, $, and which accounts and days came back."""

from __future__ import annotations

from datetime import date

import polars as pl

from costagent_assets.defs.raw_costs import coverage_markdown, source_usage_frame
from costagent_assets.periods import period
from costagent_assets.resources.cost_source import SourceFetch
from costagent_assets.schemas import SCHEMAS


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
