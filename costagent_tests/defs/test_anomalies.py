"""anomalies materialized alone: a team with its own rule, a team with a budget, the organisation's rule.

1-5 March against 1-5 February (only those February days are loaded: too little history for the daily
detector, so only the month-to-date rule, new services and budgets speak).
"""

from __future__ import annotations

from datetime import date

import polars as pl
import pytest

from costagent_assets.settings import Settings
from costagent_assets.teams.model import Team
from costagent_tests.peers.stages import daily_costs, materialize_stage

A, B = "111111111111", "222222222222"
MONTH, AS_OF, THROUGH = "2025-03", date(2025, 3, 6), date(2025, 3, 5)
SETTINGS = Settings(anomaly_threshold_pct=20.0, anomaly_min_usd=100.0)
TEAMS = [
    # A's own rule: +50% and $500. By the organisation's (+20%, $100) its EC2 and its total would alert.
    Team("Platform", A, "platform@example.com", anomaly_threshold_pct=50.0, anomaly_min_usd=500.0),
    Team("Data", B, "data@example.com", monthly_budget=1000.0),
]


def raw(b_ec2_march: float = 80.0) -> pl.DataFrame:
    return pl.concat([
        daily_costs(date(2025, 2, 1), {
            A: {"AmazonEC2": [100] * 5, "AmazonRDS": [200] * 5, "AmazonS3": [100] * 5},
            B: {"AmazonEC2": [50] * 5},
        }),
        daily_costs(date(2025, 3, 1), {
            A: {"AmazonEC2": [140] * 5, "AmazonRDS": [320] * 5, "AmazonS3": [100] * 5},
            B: {"AmazonEC2": [b_ec2_march] * 5, "AWSLambda": [30] * 5},
        }),
    ])


def mom_row(account: str, service: str | None, current: float, previous: float, projected: float | None = None):
    change = current - previous
    return {
        "month": MONTH, "account_id": account, "level": "service" if service else "account", "service": service,
        "current_mtd_usd": current, "previous_same_period_usd": previous, "change_usd": change,
        "change_pct": change / previous * 100 if previous else None, "previous_month_total_usd": previous,
        "projected_month_end_usd": projected, "is_new": bool(service) and previous == 0,
        "through_date": THROUGH, "days_covered": 5, "days_in_month": 31, "has_data": True,
    }


# What mom_changes makes of raw(): 5 days of March against 5 days of February.
MOM = pl.DataFrame([
    mom_row(A, None, 2800, 2000, projected=2800 + 560 * 26),
    mom_row(A, "AmazonEC2", 700, 500),  # +200, +40%
    mom_row(A, "AmazonRDS", 1600, 1000),  # +600, +60%
    mom_row(A, "AmazonS3", 500, 500),
    mom_row(B, None, 550, 250, projected=550 + 110 * 26),  # 3,410 at 110 a day: over the 1,000 budget
    mom_row(B, "AmazonEC2", 400, 250),  # +150, +60%
    mom_row(B, "AWSLambda", 150, 0),  # new
])


def test_anomalies_apply_each_teams_rule_and_budget(tmp_path):
    run = materialize_stage("anomalies", tmp_path, month=MONTH, accounts=[A, B], as_of=AS_OF, teams=TEAMS,
                            settings=SETTINGS, upstream={"raw_costs": raw(), "mom_changes": MOM})
    assert run.result.success
    table = run.table("anomalies")
    found = {(r["account_id"], r["service"], r["kind"]): r for r in table.iter_rows(named=True)}
    assert set(found) == {
        (A, "AmazonRDS", "increase"),  # only RDS passes A's own +50% and $500
        (B, "AmazonEC2", "increase"), (B, "AWSLambda", "new_service"), (B, None, "increase"),
        (B, None, "budget"),
    }
    # One budget row: 55% spent on day 5 is ahead of pace, but the forecast overrun is the news.
    assert table.filter(pl.col("kind") == "budget").height == 1

    rds = found[A, "AmazonRDS", "increase"]
    assert (rds["threshold_pct"], rds["min_usd"]) == (50.0, 500.0)  # the team's rule, not the organisation's
    assert (rds["change_usd"], rds["change_pct"], rds["impact_usd"]) == (600.0, 60.0, 600.0)
    assert rds["alerted"] and rds["severity"] == "low" and rds["detector"] == "month_to_date"
    assert [(d["service"], d["change_usd"]) for d in rds["drivers"]] == [("AmazonRDS", 600.0)]

    ec2 = found[B, "AmazonEC2", "increase"]
    assert (ec2["threshold_pct"], ec2["min_usd"]) == (20.0, 100.0)
    assert (ec2["change_usd"], ec2["change_pct"], ec2["alerted"]) == (150.0, 60.0, True)
    lam = found[B, "AWSLambda", "new_service"]
    assert (lam["current_usd"], lam["alerted"]) == (150.0, True)
    whole = found[B, None, "increase"]
    assert (whole["change_usd"], whole["change_pct"], whole["severity"]) == (300.0, 120.0, "medium")
    assert sorted((d["service"], d["change_usd"]) for d in whole["drivers"]) == [("AWSLambda", 150.0),
                                                                                ("AmazonEC2", 150.0)]

    [forecast] = table.filter(pl.col("kind") == "budget").iter_rows(named=True)
    assert forecast["detector"] == "budget_forecast" and forecast["alerted"]
    assert (forecast["budget_threshold_pct"], forecast["current_usd"], forecast["impact_usd"]) == (100.0, 3410.0, 2410.0)
    # 1,000 - 550 = 450 left at 110 a day: crossed 5 days after the 5th.
    assert forecast["note"] == "Projected to exceed the $1,000 budget by $2,410 on the 10th (spent 55% so far)."
    assert forecast["start_date"] == date(2025, 3, 10)
    assert forecast["budget_usd"] == 1000.0 and forecast["severity"] == "medium"

    meta = run.metadata("anomalies")
    assert (meta["teams_with_own_rule"], meta["threshold_pct"], meta["min_usd"]) == (1, 20.0, 100.0)
    assert (meta["alerted"], meta["accounts_alerted"]) == (5, 2)
    assert meta["by_kind"] == {"budget_forecast": 1, "mtd_rise": 3, "new_service": 1}
    assert run.checks() == {"drivers_add_up": True}


def test_anomalies_block_when_mom_changes_disagrees_with_raw_costs(tmp_path):
    # raw_costs reloaded (B's EC2 now $90 a day: +$200) after mom_changes said +$150: the drivers, read
    # from the raw lines, no longer add up to the impact.
    run = materialize_stage("anomalies", tmp_path, month=MONTH, accounts=[A, B], as_of=AS_OF, teams=TEAMS,
                            settings=SETTINGS, upstream={"raw_costs": raw(b_ec2_march=90.0), "mom_changes": MOM})
    assert run.checks() == {"drivers_add_up": False}
    [evaluation] = run.result.get_asset_check_evaluations()
    assert evaluation.metadata["largest_difference_usd"].value == pytest.approx(50.0)
    assert not run.result.success
