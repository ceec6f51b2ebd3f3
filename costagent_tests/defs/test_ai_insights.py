"""ai_insights materialized alone, without Gemini: the computed explanations, and why AI was not used.

Two accounts, 1-5 March 2025 against 1-5 February: A is flat (nothing to explain), B rose $300 (+120%)
from its EC2 (+$150) and a new Lambda (+$150), with one alerted anomaly and a forecast of the month end.
"""

from __future__ import annotations

from datetime import date

import polars as pl
import pytest

from costagent_assets.analysis import AnomalyRule, explain_changes
from costagent_assets.anomaly_detection import anomaly_rules
from costagent_assets.insights.evidence import evidence_packs
from costagent_assets.periods import period
from costagent_assets.run_parameters import AI_TAG
from costagent_assets.schemas import conform
from costagent_assets.settings import Settings
from costagent_assets.teams.model import Team
from costagent_tests.peers.stages import materialize_stage

A, B = "111111111111", "222222222222"
MONTH, AS_OF, THROUGH = "2025-03", date(2025, 3, 6), date(2025, 3, 5)
TEAMS = [Team("Platform", A, "platform@example.com"), Team("Data", B, "data@example.com")]


def mom_row(account: str, service: str | None, current: float, previous: float, change: float | None = None):
    change = current - previous if change is None else change
    return {
        "month": MONTH, "account_id": account, "level": "service" if service else "account", "service": service,
        "current_mtd_usd": current, "previous_same_period_usd": previous, "change_usd": change,
        "change_pct": change / previous * 100 if previous else None, "previous_month_total_usd": previous,
        "projected_month_end_usd": 3100.0 if service is None else None, "is_new": bool(service) and previous == 0,
        "through_date": THROUGH, "days_covered": 5, "days_in_month": 31, "has_data": True,
    }


MOM = pl.DataFrame([
    mom_row(A, None, 500, 500), mom_row(A, "AmazonEC2", 500, 500),
    mom_row(B, None, 550, 250), mom_row(B, "AmazonEC2", 400, 250), mom_row(B, "AWSLambda", 150, 0),
])
ANOMALIES = conform(pl.DataFrame([{
    "month": MONTH, "account_id": B, "level": "service", "service": "AmazonEC2", "kind": "increase",
    "current_usd": 400.0, "previous_usd": 250.0, "change_usd": 150.0, "change_pct": 60.0, "severity": "low",
    "alerted": True, "threshold_pct": 20.0, "min_usd": 100.0, "through_date": THROUGH, "impact_usd": 150.0,
    "detector": "month_to_date",
}]), "anomalies")
FORECASTS = pl.DataFrame([
    {"month": MONTH, "account_id": B, "service": None, "horizon": "month_end", "target_month": MONTH,
     "point_usd": 3000.0, "low_usd": 2800.0, "high_usd": 3200.0, "method": "level_seasonal"},
    {"month": MONTH, "account_id": B, "service": None, "horizon": "next_month", "target_month": "2025-04",
     "point_usd": 3300.0, "low_usd": 3000.0, "high_usd": 3600.0, "method": "level_seasonal"},
])
UPSTREAM = {"mom_changes": MOM, "anomalies": ANOMALIES, "forecasts": FORECASTS}

B_SUMMARY = (
    "March 2025 to date (5 days to 05 Mar): $550.00, up $300.00 (+120.0%) on the same days of February 2025. "
    "Biggest movers: AWSLambda (+$150.00, n/a), AmazonEC2 (+$150.00, +60.0%). 1 alert this month. "
    "The month is forecast to end near $3,000."  # the SQL forecast, not mom_changes' run rate
)


def rows_of(run) -> dict[str, dict]:
    return {r["account_id"]: r for r in run.table("ai_insights").iter_rows(named=True)}


def test_without_a_gemini_key_the_insights_are_computed_and_say_why(tmp_path):
    run = materialize_stage("ai_insights", tmp_path, month=MONTH, accounts=[A, B], as_of=AS_OF, teams=TEAMS,
                            upstream=UPSTREAM)
    assert run.result.success
    rows = rows_of(run)
    b = rows[B]
    assert (b["source"], b["summary"], b["total_change_usd"]) == ("deterministic", B_SUMMARY, 300.0)
    assert [(d["service"], d["change_usd"]) for d in b["drivers"]] == [("AWSLambda", 150.0), ("AmazonEC2", 150.0)]
    assert [d["share_of_change_pct"] for d in b["drivers"]] == [50.0, 50.0]
    assert b["ai_note"] == ("AI analysis was unavailable this week (no GEMINI_API_KEY is set); "
                            "the summary above is computed from the figures.")
    assert b["outlook"].startswith("March 2025 is forecast to end near $3,000")
    assert b["ai_model"] is None
    # Advice without a key: each rising driver, its rise brought to the full month (31/5 days), largest first.
    assert b["recommendations"] == [
        {"action": "Confirm that the new service AWSLambda is intended: $150.00 so far this month, about $930.00 "
                   "a month at this pace", "estimated_monthly_usd": 930.0},
        {"action": "Review the rise in AmazonEC2: +$150.00 against the same days of last month; reversing it saves "
                   "about $930.00 a month", "estimated_monthly_usd": 930.0},
    ]
    # A is flat: nothing to explain, so no pack and no note about AI.
    a = rows[A]
    assert a["summary"] == ("March 2025 to date: $500.00, unchanged on the same days of February 2025. "
                            "The month is forecast to end near $3,100.")
    assert (a["total_change_usd"], a["drivers"], a["ai_note"], a["outlook"]) == (0.0, [], None, None)

    meta = run.metadata("ai_insights")
    assert (meta["source"], meta["ai_unavailable"]) == ("deterministic", "no GEMINI_API_KEY is set")
    assert (meta["ai_calls"], meta["ai_tokens"], meta["ai_cost_usd"]) == (0, 0, 0.0)
    assert run.checks() == {"drivers_add_up_to_change": True}
    # The week's text is kept (the history is also the cache); nothing was paid for.
    history = run.table("ai_insight_history")
    assert set(history["account_id"]) >= {A, B} and set(history["source"]) == {"deterministic"}


def test_a_run_tagged_ai_off_is_not_asked_for_ai_and_notes_nothing(tmp_path):
    run = materialize_stage("ai_insights", tmp_path, month=MONTH, accounts=[A, B], as_of=AS_OF, teams=TEAMS,
                            upstream=UPSTREAM, tags={AI_TAG: "off"})
    assert run.result.success
    rows = rows_of(run)
    assert rows[B]["summary"] == B_SUMMARY and rows[B]["source"] == "deterministic"
    assert rows[A]["ai_note"] is None and rows[B]["ai_note"] is None  # nobody is mailed from a history run
    meta = run.metadata("ai_insights")
    assert (meta["ai_unavailable"], meta["ai_calls"]) == ("not requested for this run", 0)
    assert run.table("ai_insight_history").height == 0  # a history run leaves no week's text
    assert run.checks() == {"drivers_add_up_to_change": True}


def test_drivers_that_do_not_add_up_to_the_change_block(tmp_path):
    # A mom_changes whose service changes (+150, +100) miss $50 of the account's +300: its own check only
    # compares month-to-date amounts, so such a table can reach this stage.
    mom = pl.DataFrame([
        mom_row(B, None, 550, 250), mom_row(B, "AmazonEC2", 400, 250), mom_row(B, "AWSLambda", 150, 0, change=100.0),
    ])
    run = materialize_stage("ai_insights", tmp_path, month=MONTH, accounts=[B], as_of=AS_OF, teams=TEAMS,
                            upstream={"mom_changes": mom}, tags={AI_TAG: "off"})
    assert run.checks() == {"drivers_add_up_to_change": False}
    [evaluation] = run.result.get_asset_check_evaluations()
    assert evaluation.metadata["largest_gap_usd"].value == pytest.approx(50.0)
    assert not run.result.success


def test_cents_lost_to_rounding_do_not_block(tmp_path):
    # Five services each up $1.004 (a consistent mom_changes): the account is up $5.02, the drivers say 5 x $1.00.
    services = [f"Service{i}" for i in range(5)]
    mom = pl.DataFrame([mom_row(B, None, 10.02, 5.0)] + [mom_row(B, s, 2.004, 1.0) for s in services])
    run = materialize_stage("ai_insights", tmp_path, month=MONTH, accounts=[B], as_of=AS_OF, teams=TEAMS,
                            upstream={"mom_changes": mom}, tags={AI_TAG: "off"})
    assert run.checks() == {"drivers_add_up_to_change": True}
    [insight] = run.table("ai_insights").to_dicts()
    assert [d["change_usd"] for d in insight["drivers"]] == [1.02, 1.0, 1.0, 1.0, 1.0]  # the lost cents on the first


def test_the_evidence_pack_states_the_teams_own_alert_rule():
    settings = Settings(anomaly_threshold_pct=20.0, anomaly_min_usd=100.0)
    teams = [Team("Platform", A, "platform@example.com", anomaly_threshold_pct=50.0, anomaly_min_usd=500.0),
             Team("Data", B, "data@example.com")]
    rule, overrides = anomaly_rules(settings, teams)
    # A rose $800 (+40%) and has an alerted anomaly under its own rule; B as above.
    mom = pl.concat([MOM.filter(pl.col("account_id") == B), pl.DataFrame([
        mom_row(A, None, 2800, 2000), mom_row(A, "AmazonRDS", 1600, 1000), mom_row(A, "AmazonEC2", 1200, 1000),
    ])])
    anomalies = pl.concat([ANOMALIES, ANOMALIES.with_columns(
        pl.lit(A).alias("account_id"), pl.lit("AmazonRDS").alias("service"), pl.lit(600.0).alias("change_usd"),
        pl.lit(50.0).alias("threshold_pct"), pl.lit(500.0).alias("min_usd"),
    )])
    periods = {MONTH: period(MONTH, AS_OF)}
    insights = explain_changes(mom, anomalies, periods)
    packs = evidence_packs(mom, anomalies, insights, periods, teams, rule, None, overrides=overrides)
    assert packs[MONTH, A]["alert_rule"] == {"threshold_pct": 50.0, "min_usd": 500.0}
    assert packs[MONTH, B]["alert_rule"] == {"threshold_pct": 20.0, "min_usd": 100.0}
    assert rule == AnomalyRule(20.0, 100.0)
