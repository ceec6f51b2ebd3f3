"""The computed recommendations: from an evidence pack to actions ranked by dollars a month."""

from __future__ import annotations

from costagent_assets.recommendations import compute_recommendations, merge_recommendations


def pack(**extra) -> dict:
    """An account 10 days into a 30-day month, up $300: EC2 +$250 (one usage line behind it), S3 +$50."""
    return {
        "period": {"days_covered": 10, "days_in_month": 30},
        "totals": {"change_usd": 300.0},
        "drivers": [{"service": "AmazonEC2", "change_usd": 250.0}, {"service": "AmazonS3", "change_usd": 50.0},
                    {"service": "Other services (3)", "change_usd": 400.0}],
        "anomalies": [{"service": "AmazonEC2", "kind": "increase",
                       "top_line": {"usage_type": "USE1-BoxUsage:m5.large", "region": "us-east-1"}}],
        "new_services": [], "savings_findings": [], "budget": None, "projection": None,
        **extra,
    }


def test_a_rise_names_its_usage_line_and_its_monthly_dollars():
    recs = compute_recommendations(pack(), min_usd=100.0)
    # S3's rise is under the $100 floor and "Other services" is no single thing to act on.
    assert recs == [{"action": "Review the rise in AmazonEC2 (USE1-BoxUsage:m5.large in us-east-1): +$250.00 against "
                               "the same days of last month; reversing it saves about $750.00 a month",
                     "estimated_monthly_usd": 750.0}]


def test_savings_budget_and_new_services_are_ranked_by_dollars():
    recs = compute_recommendations(pack(
        new_services=["AmazonS3"],
        savings_findings=[{"action": "Delete vol-1", "evidence": "500 GB unattached", "estimated_monthly_usd": 400.0}],
        budget={"monthly_budget_usd": 1000.0}, projection={"projected_month_end_usd": 1800.0},
    ), min_usd=10.0)
    assert [r["estimated_monthly_usd"] for r in recs] == [800.0, 750.0, 400.0, 150.0]
    assert recs[0]["action"].startswith("Bring the month back within the $1,000 budget")
    assert recs[2]["action"] == "Delete vol-1. Why: 500 GB unattached"
    assert recs[3]["action"].startswith("Confirm that the new service AmazonS3 is intended")


def test_a_fall_gives_no_rise_to_review():
    assert compute_recommendations(pack(totals={"change_usd": -50.0},
                                        drivers=[{"service": "AmazonS3", "change_usd": 5.0}]), min_usd=100.0) == []


def test_gemini_rewords_an_item_but_never_drops_the_others():
    computed = compute_recommendations(pack(), min_usd=10.0)
    ai = [{"action": "Scale the m5.large fleet back to last month's size", "estimated_monthly_usd": 750.0}]
    merged = merge_recommendations(computed, ai)
    assert [r["action"] for r in merged][0] == ai[0]["action"]
    assert [r["estimated_monthly_usd"] for r in merged] == [750.0, 150.0]
    assert merge_recommendations(computed, []) == computed


def test_a_global_line_names_its_usage_type_without_a_region():
    """AI providers' rows (and AWS's global services) are billed in "global": "(output_tokens)", never
    "(output_tokens in global)"."""
    anomalies = [{"service": "o1", "kind": "increase", "top_line": {"usage_type": "output_tokens", "region": "global"}}]
    recs = compute_recommendations(pack(drivers=[{"service": "o1", "change_usd": 250.0}], anomalies=anomalies),
                                   min_usd=100.0)
    assert recs[0]["action"].startswith("Review the rise in o1 (output_tokens): +$250.00")
