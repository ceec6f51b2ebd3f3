"""Advice without a key or a scanner: the demo organisation rerun with scanning off and no GEMINI_API_KEY.

Every team whose month to date rose gets a "What to do" section with at least one recommendation and its
dollars a month, computed from the figures (``costagent_assets/recommendations.py``).
"""

from __future__ import annotations

import email
import email.policy
import re
from pathlib import Path

import pytest

from costagent_assets.cli.preview import preview_team
from costagent_assets.home import get_home
from costagent_tests.peers.homes import DEMO_AS_OF, copy_home, run_cli, sql

MONTH = "2026-11"
ADVICE = re.compile(r"^  \d+\. about \$[\d,]+(?:\.\d\d)?/month: \S.*$", re.MULTILINE)


def rises(home: Path) -> dict[str, float]:
    rows = sql(home, "select account_id, change_usd from mom_changes "
                     f"where month = '{MONTH}' and level = 'account' and has_data")
    return {r["account_id"]: r["change_usd"] for r in rows if (r["change_usd"] or 0) > 0}


def advice(text: str) -> list[str]:
    text = text.replace("\r\n", "\n")
    section = text.split("WHAT TO DO", 1)[1].split("\n\n", 1)[0] if "WHAT TO DO" in text else ""
    return ADVICE.findall(section)


@pytest.fixture(scope="module")
def unscanned_home(demo_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = copy_home(demo_home, tmp_path_factory.mktemp("advice") / "home")
    assert run_cli("--home", str(home), "config", "set", "optimization_scanner", "off") == 0
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("GEMINI_API_KEY", raising=False)
        assert run_cli("--home", str(home), "run", "--as-of", DEMO_AS_OF.isoformat()) == 0
    return home


def test_every_team_with_a_rise_gets_advice_with_dollars_without_ai_or_scanner(unscanned_home: Path):
    # No scanner ran: no saving found, so every recommendation below comes from the figures.
    assert sql(unscanned_home, "select count(*) as n from optimization_opportunities "
                               f"where month = '{MONTH}' and record = 'finding'") == [{"n": 0}]
    rose = rises(unscanned_home)
    assert len(rose) >= 20  # the demo plants rises in many accounts: the test covers something
    home = get_home(unscanned_home)
    for account_id in rose:
        text = preview_team(home, account_id, MONTH).text
        assert advice(text), (account_id, text[:3000])


def test_the_demo_emails_sent_carry_the_advice_and_the_admin_summary_counts_right(demo_home: Path):
    folder = demo_home / "outbox" / DEMO_AS_OF.isoformat()
    for account_id in rises(demo_home):
        raw = (folder / f"{MONTH}-team-{account_id}.eml").read_bytes()
        message = email.message_from_bytes(raw, policy=email.policy.default)
        assert advice(message.get_body(("plain",)).get_content()), account_id
        assert "What to do" in message.get_body(("html",)).get_content()
    admin = email.message_from_bytes((folder / f"{MONTH}-admin.eml").read_bytes(), policy=email.policy.default)
    text = admin.get_body(("plain",)).get_content()
    assert not re.search(r"\b1 (alerted anomalies|accounts)\b", text)


def test_forecasts_say_how_sure_they_are_and_the_admin_report_gives_next_month(
    demo_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    folder = demo_home / "outbox" / DEMO_AS_OF.isoformat()
    levels, risky = [], 0
    for path in sorted(folder.glob(f"{MONTH}-team-*.eml")):
        text = email.message_from_bytes(path.read_bytes(), policy=email.policy.default).get_body(
            ("plain",)).get_content().replace("\r\n", "\n")
        if "FORECAST (80% range)" not in text:
            continue
        found = re.search(r"^  Confidence: (high|medium|low) \((.+)\)\.$", text, re.MULTILINE)
        assert found, text[:2500]
        levels.append(found[1])
        risky += "What could move it: " in text
    assert len(levels) >= 80 and len(set(levels)) >= 2  # graded, not one word for everyone
    assert risky >= 1  # the demo plants steps and new services
    # The admin report's next month is the sum of the accounts' next-month forecasts.
    rows = sql(demo_home, "select sum(point_usd) as usd, count(*) as n from forecasts where month = "
                          f"'{MONTH}' and service is null and horizon = 'next_month' and point_usd is not null")
    admin = email.message_from_bytes((folder / f"{MONTH}-admin.eml").read_bytes(), policy=email.policy.default)
    text = admin.get_body(("plain",)).get_content().replace("\r\n", "\n")
    shown = re.search(r"Forecast December 2026\s+\$([\d,]+)\s+\((\d+) of 84 accounts with a forecast\)", text)
    assert shown and int(shown[2]) == rows[0]["n"]
    assert abs(int(shown[1].replace(",", "")) - rows[0]["usd"]) <= 0.5

    # With a dashboard URL template, the admin report links every account's dashboard.
    home = copy_home(demo_home, tmp_path / "home")
    assert run_cli("--home", str(home), "config", "set", "datadog_dashboard_url",
                   "https://app.datadoghq.com/dashboard/abc?tpl_var_account={account_id}") == 0
    capsys.readouterr()
    assert run_cli("--home", str(home), "preview", "admin", "--month", MONTH) == 0
    out = capsys.readouterr().out
    assert "DATADOG DASHBOARDS" in out
    assert len(re.findall(r"tpl_var_account=\d{12}$", out, re.MULTILINE)) == 84
