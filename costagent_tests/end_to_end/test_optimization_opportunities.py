"""Savings (optimization_opportunities) end to end: the weekly job on the demo organisation (its demo scanner
plants idle and oversized resources), and the emails checked against the warehouse's findings: each team's top 3
by $ in order, the organisation's total and ranked list in the admin report.
"""

from __future__ import annotations

import email
import email.policy
import re
from pathlib import Path

import polars as pl
import pytest

from costagent_assets.reporting import format_usd
from costagent_tests.peers.homes import DEMO_AS_OF, sql

AS_OF = DEMO_AS_OF
ACCOUNTS = 84  # the whole demo organisation (this test ran the weekly job on 12 of its accounts before)


def _text(path: Path) -> str:
    message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    return message.get_body(preferencelist=("plain",)).get_content()


@pytest.fixture
def demo_run(demo_home: Path) -> Path:
    """The shared demo run (conftest.py): the weekly job on the whole demo organisation, read only."""
    return demo_home


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
    # Near-identical findings are grouped by kind, the largest total first (not 15 lines of the same advice).
    kinds = sql(demo_run, "select kind, count(*) as n, sum(monthly_savings_usd) as usd from savings "
                          "where month = '2026-11' group by kind order by usd desc")
    groups = [float(x.replace(",", "")) for x in re.findall(r"^\s+\d+\. \$([\d,.]+) a month", text, re.M)]
    assert groups == pytest.approx([k["usd"] for k in kinds], abs=0.51)
    counts = [int(n) for n in re.findall(r"^\s+\d+\. \$[\d,.]+ a month: (\d+) x ", text, re.M)]
    assert counts == [k["n"] for k in kinds if k["n"] > 1] and counts
    html = (demo_run / "outbox" / AS_OF.isoformat() / "2026-11-admin.html").read_text()
    assert f"{format_usd(total)} a month" in html
    accounts = sql(demo_run, "select scan_status, api_calls, count(*) as n from savings_accounts group by all")
    assert accounts == [{"scan_status": "ok", "api_calls": 0, "n": ACCOUNTS}]  # the demo scanner calls nothing


def _words(text: str) -> list[str]:
    return re.findall(r"[\w$.,/%()-]+", text.lower())


def _runs(words: list[str], n: int) -> set[tuple[str, ...]]:
    return {tuple(words[i:i + n]) for i in range(len(words) - n + 1)}


def test_no_demo_findings_evidence_repeats_its_title_and_each_says_how_the_dollars_were_computed(demo_run: Path):
    rows = sql(demo_run, "select kind, action, evidence, monthly_savings_usd from savings where month = '2026-11'")
    assert {r["kind"] for r in rows} >= {"sp_purchase", "ec2_idle", "eip_unassociated", "s3_no_lifecycle"}
    for r in rows:
        title, evidence = r["action"], r["evidence"]
        for sentence in re.split(r"[.;:] ", evidence):
            assert title.lower() not in sentence.lower(), r
        # Not the title in other words either: no four words of it in a row.
        assert not _runs(_words(title), 4) & _runs(_words(evidence), 4), r
        if r["monthly_savings_usd"] is not None:
            assert "the saving " in evidence, r  # how the dollars were computed
