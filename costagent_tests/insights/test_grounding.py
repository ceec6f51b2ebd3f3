"""The grounding check: every figure, account and service an AI text names must be in the pack."""

from __future__ import annotations

import pytest

from costagent_assets.insights.grounding import PackIndex, ungrounded
from costagent_assets.insights.merge import merge_account_reply
from costagent_tests.insights.small_org import (
    MONTH,
    A,
    packs,
    savings_pack,
)


def test_grounded_text_passes_in_the_usual_roundings():
    index = PackIndex.of(packs()[(MONTH, A)])
    text = ("Spend rose $1,203 (+65.0%) to $3,053.00 on the same 22 days of October 2026; EC2 drove $1,200.00 "
            "of it, about $1.2k. Amazon Route 53 barely moved. The month ends near $4,152 by 30 November 2026.")
    assert ungrounded(text, index) == []


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("Spend rose $1,999.99 this month.", "figure '$1,999.99'"),
        ("Spend rose 71% this month.", "figure '71%'"),
        ("Account 000000000002 spent more.", "account id 000000000002"),
        ("Amazon Redshift drove the rise.", "service 'Redshift'"),
        ("Buying a plan saves 4,321 a year.", "figure '4,321'"),
    ],
)
def test_invented_figures_accounts_and_services_are_caught(text, problem):
    problems = ungrounded(text, PackIndex.of(packs()[(MONTH, A)]))
    assert any(problem in p for p in problems), problems


def test_grounding_accepts_the_savings_figures_and_resource_names():
    index = PackIndex.of(savings_pack())
    text = ("i-0abc1234567890def, an m5.2xlarge in eu-west-1, averaged 3.1% CPU over 14 days; stopping it "
            "saves $280.32 a month, and deleting vol-0123456789abcdef0 on Amazon EBS saves $10 more.")
    assert ungrounded(text, index) == []
    reply = {"explanation": "Spend rose $1,203 on EC2.", "outlook": "", "recommendations": [
        {"action": "Stop i-0abc1234567890def (m5.2xlarge, 3.1% CPU over 14 days)", "estimated_monthly_usd": 280.32},
        {"action": "Rightsize the database", "estimated_monthly_usd": 512.0},  # not in the evidence
    ]}
    merged = merge_account_reply("computed", savings_pack(), reply)
    assert merged.recommendations == [{"action": "Stop i-0abc1234567890def (m5.2xlarge, 3.1% CPU over 14 days)",
                                       "estimated_monthly_usd": 280.32}]
    assert any("estimate 512.0 is not in the evidence" in r for r in merged.rejections)


def test_invented_savings_are_still_caught():
    problems = ungrounded("Stopping it saves $2,803 a month.", PackIndex.of(savings_pack()))
    assert any("$2,803" in p for p in problems)



PHISHING = ("Spend rose $1,203 (+65.0%). Email your AWS root password to finops-help@evil.example, or "
            "click https://evil.example/verify?acct=1 to review.")


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (PHISHING, "e-mail address 'finops-help@evil.example'"),
        (PHISHING, "link 'https://evil.example/verify?acct=1'"),
        (PHISHING, "instruction 'password'"),
        (PHISHING, "instruction 'click'"),
        ("See www.cost-dashboard.io for details.", "link 'www.cost-dashboard.io'"),
        ("Details are at evil.io today.", "link 'evil.io'"),
        ("Questions? Call +1 (415) 555-0100.", "phone number '+1 (415) 555-0100'"),
        ("Questions? Ring 415-555-0100.", "phone number '415-555-0100'"),
        ("Please log in and confirm your billing details.", "instruction 'log in'"),
        ("Send your access keys to the FinOps team.", "instruction 'access keys'"),
    ],
)
def test_links_addresses_phones_and_instructions_not_in_the_pack_are_caught(text, problem):
    problems = ungrounded(text, PackIndex.of(packs()[(MONTH, A)]))
    assert any(problem in p for p in problems), problems


def test_links_and_words_the_pack_holds_are_allowed():
    pack = {**packs()[(MONTH, A)], "dashboard": "https://app.datadoghq.com/dashboard/abc",
            "note": "Send the report to finops@example.com"}
    text = ("Spend rose $1,203 (+65.0%); see https://app.datadoghq.com/dashboard/abc. "
            "Send questions to finops@example.com. An m5.large or t3.micro is not a link.")
    assert ungrounded(text, PackIndex.of(pack)) == []
