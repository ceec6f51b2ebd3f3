"""The stages that compute a group of accounts at a time (isolation.account_groups) write the same partitions,
byte for byte, as when every account is computed together: here with groups of one account."""

from __future__ import annotations

from datetime import date

import polars as pl
import pytest

from costagent_assets import isolation
from costagent_assets.warehouse.store import partition_path
from costagent_tests.peers.stages import daily_costs, materialize_stage

ACCOUNTS = ["111111111111", "222222222222", "333333333333"]


def history() -> pl.DataFrame:
    """Three accounts, January to 5 March 2025: a complete month to backtest and a step up in March."""
    frames = []
    for i, account in enumerate(ACCOUNTS):
        days = 31 + 28 + 5
        ec2 = [100.0 + i * 10 + (d % 7) for d in range(days - 5)] + [260.0 + i] * 5
        frames.append(daily_costs(date(2025, 1, 1), {account: {"AmazonEC2": ec2, "AmazonS3": [5.0 + i] * days}}))
    return pl.concat(frames)


@pytest.mark.parametrize("stage, month, as_of", [
    ("mom_changes", "2025-03", date(2025, 3, 6)),
    ("anomalies", "2025-03", date(2025, 3, 6)),
    ("forecast_backtest", "2025-02", date(2025, 3, 6)),
    ("forecasts", "2025-03", date(2025, 3, 6)),
])
def test_a_stage_computed_in_groups_of_accounts_writes_the_same_partitions(stage, month, as_of, tmp_path,
                                                                           monkeypatch):
    raw = history()
    upstream = {"raw_costs": raw}
    if stage == "anomalies":
        mom = materialize_stage("mom_changes", tmp_path / "mom", month=month, accounts=ACCOUNTS, as_of=as_of,
                                upstream=upstream)
        upstream["mom_changes"] = mom.table("mom_changes")
    if stage == "forecasts":
        upstream["forecast_backtest"] = materialize_stage(
            "forecast_backtest", tmp_path / "bt", month="2025-02", accounts=ACCOUNTS, as_of=as_of,
            upstream=upstream).table("forecast_backtest")
    if stage == "mom_changes":
        upstream["service_breakdown"] = materialize_stage(
            "service_breakdown", tmp_path / "sb", month=month, accounts=ACCOUNTS, as_of=as_of,
            upstream=upstream).table("service_breakdown")
    whole = materialize_stage(stage, tmp_path / "whole", month=month, accounts=ACCOUNTS, as_of=as_of,
                              upstream=upstream)
    groups = []
    real = isolation.account_groups
    monkeypatch.setattr(isolation, "account_groups", lambda p, size=None: groups.append(1) or real(p, size))
    monkeypatch.setattr(isolation, "ACCOUNT_GROUP", 1)
    grouped = materialize_stage(stage, tmp_path / "grouped", month=month, accounts=ACCOUNTS, as_of=as_of,
                                upstream=upstream)
    assert whole.result.success and grouped.result.success and groups
    assert whole.table(stage).height > 0
    for account in ACCOUNTS:
        one = partition_path(tmp_path / "whole" / "warehouse", stage, month, account).read_bytes()
        other = partition_path(tmp_path / "grouped" / "warehouse", stage, month, account).read_bytes()
        assert one == other, account
