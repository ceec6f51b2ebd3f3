"""Merging AI replies with the computed text: ungrounded sections fall back, grounded ones are kept."""

from __future__ import annotations

from costagent_assets.insights.merge import deterministic_outlook, merge_account_reply
from costagent_tests.insights.small_org import (
    MONTH,
    A,
    packs,
)


def test_an_invented_explanation_is_replaced_and_counted():
    pack = packs()[(MONTH, A)]
    reply = {
        "explanation": "Spend rose $9,999 because of Amazon Redshift.",
        "outlook": f"The month ends near ${pack['projection']['projected_month_end_usd']:,.2f}.",
        "recommendations": [
            {"action": "Right-size EC2 instances", "estimated_monthly_usd": pack["savings_candidates"][0]["estimated_monthly_usd"]},
            {"action": "Buy a Savings Plan", "estimated_monthly_usd": 777.0},
        ],
    }
    merged = merge_account_reply("THE COMPUTED SUMMARY", pack, reply)
    assert merged.summary.startswith("THE COMPUTED SUMMARY")
    assert "9,999" not in merged.summary and "777" not in merged.summary
    assert [r["action"] for r in merged.recommendations] == ["Right-size EC2 instances"]
    assert len(merged.rejections) == 2  # the explanation and the second recommendation
    assert merged.ai_note and "replaced" in merged.ai_note


def test_a_grounded_reply_is_kept_whole():
    pack = packs()[(MONTH, A)]
    reply = {"explanation": "Spend rose $1,203.00, driven by Amazon Elastic Compute Cloud - Compute (+$1,200.00).",
             "outlook": deterministic_outlook(pack), "recommendations": []}
    merged = merge_account_reply("COMPUTED", pack, reply)
    assert merged.source == "gemini" and merged.rejections == [] and merged.ai_note is None
    assert merged.summary.startswith("Spend rose $1,203.00")

