"""The AI stage: what a call costs at the configured prices; the organisation's top recommendations."""

from __future__ import annotations

import json
from dataclasses import dataclass

import polars as pl
import pytest

from costagent_assets.analysis import detect_anomalies, explain_changes
from costagent_assets.insights.prompts import MAX_ORG_RECOMMENDATIONS, OrgSummaryReply
from costagent_assets.insights.stage import call_cost_usd, run_ai_insights
from costagent_tests.insights.small_org import MONTH, PERIODS, RULE, TEAMS, A, B, mom


def test_cost_from_the_price_table():
    assert call_cost_usd("m", 1_000_000, 100_000, {"m": (0.30, 2.50)}) == pytest.approx(0.55)
    assert call_cost_usd("unknown", 10, 10, {"m": (0.30, 2.50)}) is None



def _findings(account: str, *amounts: float) -> list[dict]:
    return [{"month": MONTH, "account_id": account, "record": "finding", "kind": "ec2_idle", "service": "Amazon EC2",
             "resource_id": f"i-{account[-4:]}{i:013x}", "name": None, "region": "eu-west-1", "size": "m5.2xlarge",
             "suggested": None, "evidence": "average CPU 1.0% over 14 days", "action": f"Stop i-{account[-4:]}{i:013x}",
             "scan_status": None, "monthly_savings_usd": usd, "rank": i + 1} for i, usd in enumerate(amounts)]


def _run(generate=None, unavailable="AI is off"):
    frame = mom()
    anomalies = detect_anomalies(frame, RULE)
    # B is flat (nothing to explain) but holds two of the organisation's largest savings.
    findings = pl.DataFrame([*_findings(B, 900.0, 500.0), *_findings(A, 280.32)], infer_schema_length=None)
    return run_ai_insights(explain_changes(frame, anomalies, PERIODS), frame, anomalies, PERIODS, TEAMS, RULE,
                           generate=generate, unavailable=unavailable, cached={}, model="m", prices={},
                           findings=findings)


def _largest(outcome) -> list[tuple[str, float]]:
    everything = [(r["account_id"], rec["estimated_monthly_usd"]) for r in outcome.insights.iter_rows(named=True)
                  for rec in r["recommendations"] or []]
    return sorted(everything, key=lambda x: -x[1])[:MAX_ORG_RECOMMENDATIONS]


def test_top_recommendations_are_the_largest_of_every_account_even_one_with_nothing_to_explain():
    outcome = _run()
    top = outcome.organisation[MONTH]["top_recommendations"]
    assert [(r["account_id"], r["estimated_monthly_usd"]) for r in top] == _largest(outcome)
    assert [r["estimated_monthly_usd"] for r in top if r["account_id"] == B] == [900.0, 500.0]


@dataclass
class _Reply:
    value: dict | None
    called: bool = True
    failure: str | None = None
    input_tokens: int = 10
    output_tokens: int = 10
    seconds: float = 0.0


def _model_that_skips(requests):
    """A grounded reply that rewords the pack's recommendations but skips the 2nd and 5th largest."""
    replies = []
    for _instructions, data, schema in requests:
        pack = json.loads(data)
        if schema is OrgSummaryReply:
            recs = [r for i, r in enumerate(pack["top_recommendations"]) if i not in (1, 4)]
            replies.append(_Reply({"executive_summary": "", "top_recommendations": [
                {**r, "action": f"Reworded: {r['action']}"} for r in recs]}))
        else:
            replies.append(_Reply({"explanation": "", "outlook": "", "recommendations": []}))
    return replies


def test_a_model_that_skips_some_of_the_largest_only_rewords_the_ones_it_kept():
    outcome = _run(_model_that_skips, unavailable=None)
    top = outcome.organisation[MONTH]["top_recommendations"]
    assert [(r["account_id"], r["estimated_monthly_usd"]) for r in top] == _largest(outcome)
    assert [r["action"].startswith("Reworded: ") for r in top] == [True, False, True, True, False]


def test_the_executive_summary_counts_every_alert_as_the_admin_headline_does():
    """The headline counts every alert (services, the whole account, budgets); the summary counted only services'."""
    frame = mom()
    anomalies = detect_anomalies(frame, RULE)
    alerts = anomalies.filter(pl.col("alerted")).height
    assert set(anomalies.filter(pl.col("alerted"))["level"]) == {"account", "service"}
    summary = _run().organisation[MONTH]["executive_summary"]
    assert f" {alerts} alerts;" in summary, summary
