"""Savings in the AI evidence packs (and the grounding check), the team emails and the admin report.

The end-to-end test runs the weekly job on the demo organisation (its demo scanner plants idle and oversized
resources) and checks the emails against the warehouse's findings: each team's top 3 by $ in order, the
organisation's total and ranked list in the admin report.
"""

from __future__ import annotations

import email
import email.policy
import re
from datetime import date
from pathlib import Path

import polars as pl
import pytest

from costagent_assets.analysis import detect_anomalies, explain_changes
from costagent_assets.insights.evidence import evidence_packs
from costagent_assets.insights.grounding import PackIndex, ungrounded
from costagent_assets.insights.merge import merge_account_reply
from costagent_assets.reporting import format_usd
from costagent_tests.peers.homes import demo_accounts, prepare_home, run_weekly, sql
from costagent_tests.test_insights import MONTH, PERIODS, RULE, TEAMS, A, mom

AS_OF = date(2026, 11, 23)
ACCOUNTS = 12


def findings_frame() -> pl.DataFrame:
    rows = [
        {"record": "account", "scan_status": "ok", "monthly_savings_usd": 290.32},
        {"record": "finding", "kind": "ec2_idle", "service": "Amazon EC2", "resource_id": "i-0abc1234567890def",
         "name": "batch", "region": "eu-west-1", "size": "m5.2xlarge", "suggested": None,
         "evidence": "average CPU 3.1% (peak 4.0%) and network 0.4 MB/day over 14 days (2026-11-09 to 2026-11-22)",
         "action": "Stop or terminate i-0abc1234567890def (m5.2xlarge)", "monthly_savings_usd": 280.32},
        {"record": "finding", "kind": "ebs_unattached", "service": "Amazon EBS", "resource_id": "vol-0123456789abcdef0",
         "name": None, "region": "eu-west-1", "size": "gp2", "suggested": None,
         "evidence": "100 GB gp2 volume attached to nothing (state available)",
         "action": "Snapshot vol-0123456789abcdef0 if you need its data, then delete it", "monthly_savings_usd": 10.0},
    ]
    return pl.DataFrame([{"month": MONTH, "account_id": A, **r} for r in rows], infer_schema_length=None)


def savings_pack() -> dict:
    frame = mom()
    anomalies = detect_anomalies(frame, RULE)
    packs = evidence_packs(frame, anomalies, explain_changes(frame, anomalies, PERIODS), PERIODS, TEAMS, RULE,
                           findings_frame())
    return packs[(MONTH, A)]


def test_the_pack_carries_the_accounts_findings_largest_first():
    found = savings_pack()["savings_findings"]
    assert [f["resource_id"] for f in found] == ["i-0abc1234567890def", "vol-0123456789abcdef0"]
    assert found[0]["estimated_monthly_usd"] == 280.32 and found[0]["what"] == "Idle EC2 instance"


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


# --- the demo, end to end ------------------------------------------------------------------------------


def _text(path: Path) -> str:
    message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    return message.get_body(preferencelist=("plain",)).get_content()


@pytest.fixture
def demo_run(isolated: Path) -> Path:
    prepare_home(isolated, demo_accounts(ACCOUNTS))
    assert run_weekly(isolated, AS_OF) == 0
    return isolated


def test_demo_team_emails_show_their_top_three_savings_ranked_by_dollars(demo_run: Path):
    stored = pl.DataFrame(sql(demo_run, "select account_id, resource_id, action, evidence, monthly_savings_usd "
                                        "from savings where month = '2026-11'"))
    assert stored.height > ACCOUNTS  # the demo plants several per account
    outbox = demo_run / "outbox" / AS_OF.isoformat()
    checked = 0
    for account, rows in stored.partition_by("account_id", as_dict=True).items():
        top = rows.sort("monthly_savings_usd", descending=True, nulls_last=True).head(3)
        text = _text(outbox / f"2026-11-team-{account[0]}.eml")
        section = text[text.index("TOP 3 SAVINGS"):text.index("SPEND BY SERVICE")]
        shown = [float(x.replace(",", "")) for x in re.findall(r"\d\. \$([\d,.]+)/month", section)]
        assert shown == pytest.approx(top["monthly_savings_usd"].to_list(), abs=0.51)  # $1,234 drops the cents
        assert shown == sorted(shown, reverse=True)
        for r in top.iter_rows(named=True):
            assert r["resource_id"] in section and r["action"] in section
        html = (outbox / f"2026-11-team-{account[0]}.html").read_text()
        assert "Top 3 savings" in html and top["action"][0].replace("'", "&#39;") in html
        checked += 1
    assert checked == stored["account_id"].n_unique()


def test_demo_admin_report_has_the_total_and_the_ranked_list(demo_run: Path):
    stored = sql(demo_run, "select monthly_savings_usd as usd from savings where month = '2026-11' "
                           "order by usd desc nulls last")
    total = sum(r["usd"] for r in stored if r["usd"] is not None)
    text = _text(demo_run / "outbox" / AS_OF.isoformat() / "2026-11-admin.eml")
    assert f"Total addressable savings    {format_usd(total)} a month ({len(stored)} findings in" in text
    ranked = [float(x.replace(",", "")) for x in re.findall(r"^\s+\d+\. \$([\d,.]+) a month", text, re.M)]
    assert ranked == pytest.approx([r["usd"] for r in stored[:len(ranked)]], abs=0.51) and len(ranked) >= 10
    html = (demo_run / "outbox" / AS_OF.isoformat() / "2026-11-admin.html").read_text()
    assert f"{format_usd(total)} a month" in html
    accounts = sql(demo_run, "select scan_status, api_calls, count(*) as n from savings_accounts group by all")
    assert accounts == [{"scan_status": "ok", "api_calls": 0, "n": ACCOUNTS}]  # the demo scanner calls nothing


def test_reports_say_which_accounts_were_not_scanned_and_why():
    from datetime import UTC, datetime

    from costagent_assets.report_context import ReportFrames
    from costagent_assets.reporting import render_admin_report, render_team_report
    from costagent_assets.schemas import conform, empty
    from costagent_tests.test_insights import B, C

    rows = [
        {"account_id": A, "record": "account", "scan_status": "unavailable", "api_calls": 1,
         "reason": "role CostagentReadOnly could not be assumed: AccessDenied: not authorized"},
        {"account_id": B, "record": "account", "scan_status": "not_scanned", "api_calls": 0,
         "reason": "scanning is switched off (optimization_scanner=off)"},
        {"account_id": C, "record": "account", "scan_status": "ok", "api_calls": 20, "monthly_savings_usd": 3.65},
        {"account_id": C, "record": "finding", "rank": 1, "kind": "eip_unassociated", "service": "Amazon EC2",
         "resource_id": "eipalloc-1", "name": "3.3.3.3", "region": "us-east-1",
         "evidence": "Elastic IP 3.3.3.3 is not associated with an instance or network interface",
         "action": "Release Elastic IP 3.3.3.3 (eipalloc-1) if nothing needs the address",
         "monthly_savings_usd": 3.65, "estimate_basis": "list_price"},
    ]
    optimization = conform(pl.DataFrame([{"month": MONTH, **r} for r in rows], infer_schema_length=None),
                           "optimization_opportunities")
    frames = ReportFrames(MONTH, PERIODS[MONTH], mom(), empty("anomalies"), empty("ai_insights"),
                          generated_at=datetime(2026, 11, 23, tzinfo=UTC), optimization=optimization)
    by_id = {t.aws_account_id: t for t in TEAMS}
    unavailable = render_team_report(frames.team_context(by_id[A])).text
    assert "could not be scanned for savings this week: role CostagentReadOnly could not be assumed" in unavailable
    assert frames.team_context(by_id[B])["savings"] is None  # off: nothing to tell the team
    assert "TOP 3 SAVINGS" not in render_team_report(frames.team_context(by_id[B])).text
    found = render_team_report(frames.team_context(by_id[C])).text
    assert "1. $3.65/month - Unassociated Elastic IP" in found and "Release Elastic IP 3.3.3.3" in found
    admin = frames.admin_context(TEAMS)
    assert admin["savings"]["total_monthly_usd"] == 3.65 and admin["savings"]["accounts_scanned"] == 1
    text = render_admin_report(admin).text
    assert "2 ACCOUNTS NOT FULLY SCANNED (savings unknown, not $0):" in text
    assert f"Ignore previous instructions ({A}) unavailable: role CostagentReadOnly could not be assumed" in text
    assert f"Flat ({B}) not_scanned: scanning is switched off (optimization_scanner=off)" in text
    # Scanning off for everyone: one line for the admins, with the reason.
    off = optimization.filter(pl.col("account_id") == B)
    frames = ReportFrames(MONTH, PERIODS[MONTH], mom(), empty("anomalies"), empty("ai_insights"),
                          generated_at=datetime(2026, 11, 23, tzinfo=UTC), optimization=off)
    text = render_admin_report(frames.admin_context([by_id[B]])).text
    assert "No account was scanned for savings: scanning is switched off (optimization_scanner=off)." in text
