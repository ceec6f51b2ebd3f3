"""What the demo's reports say, read as a team lead and as a FinOps admin would (issue 13): budgets up front,
one count of alerts everywhere."""

from __future__ import annotations

import email
import email.policy
import html as html_lib
import json
import re
from datetime import date
from pathlib import Path

import dagster as dg
import pytest

from costagent_assets.cli import main as cli
from costagent_assets.cli.main import FIRST_QUERY
from costagent_assets.defs import run_metadata
from costagent_tests.peers.homes import DEMO_AS_OF

MONTH = f"{DEMO_AS_OF:%Y-%m}"


def sql(home: Path, query: str, capsys: pytest.CaptureFixture[str]) -> list[dict]:
    capsys.readouterr()
    assert cli.main(["--home", str(home), "sql", query, "--format", "json"]) == 0
    return json.loads(capsys.readouterr().out)


def message(home: Path, name: str) -> email.message.EmailMessage:
    raw = (home / "outbox" / DEMO_AS_OF.isoformat() / f"{MONTH}-{name}.eml").read_bytes()
    return email.message_from_bytes(raw, policy=email.policy.default)


def html_of(msg: email.message.EmailMessage) -> str:
    return msg.get_body(("html",)).get_content()


def first_screen(html: str) -> str:
    """The HTML before the first section heading: the title, any banner and the headline figures."""
    return html[: html.index("<h2")]


def section(html: str, title: str) -> str:
    """The HTML of one section: from its heading to the next one."""
    start = html.index(f">{title}</h2>")
    end = html.find("<h2", start)
    return html[start: end if end != -1 else None]


def budget_rows(home: Path, capsys: pytest.CaptureFixture[str]) -> list[dict]:
    return sql(home, f"select account_id, team_name, monthly_budget, mtd_usd, used_pct, projected_pct, status "
                     f"from budgets where month = '{MONTH}' order by used_pct desc", capsys)


def test_every_over_budget_team_hears_it_in_the_subject_the_first_screen_and_alerts(demo_home, capsys):
    rows = budget_rows(demo_home, capsys)
    over = [r for r in rows if r["status"] == "over"]
    assert len(over) >= 2  # the demo plants teams over their budgets
    for r in over:
        msg = message(demo_home, f"team-{r['account_id']}")
        html = html_of(msg)
        assert msg["Subject"].startswith(f"[costagent] {r['team_name']}: Over budget, "), msg["Subject"]
        assert "Over budget, " in first_screen(html)
        alerts = section(html, "Alerts")
        assert "Monthly budget" in alerts and "No alerts" not in alerts
        assert "OVER BUDGET" in msg.get_body(("plain",)).get_content()
    # A team within its budget and not projected past it has no budget in its subject.
    for r in rows:
        if r["status"] == "ok":
            assert "budget" not in message(demo_home, f"team-{r['account_id']}")["Subject"].lower()


def test_a_budget_alert_is_raised_only_for_an_overrun_or_a_level_crossed_ahead_of_pace(demo_home, capsys):
    alerts = sql(demo_home, f"select account_id, detector, budget_threshold_pct from anomalies "
                            f"where month = '{MONTH}' and kind = 'budget'", capsys)
    by_account = {r["account_id"]: r for r in alerts}
    assert len(by_account) == len(alerts)  # at most one budget alert per team
    status = {r["account_id"]: r for r in budget_rows(demo_home, capsys)}
    for account, r in status.items():
        if r["status"] == "over":
            assert by_account[account]["detector"] == "budget_actual"
        elif r["used_pct"] < 80 and (r["projected_pct"] or 0) < 100:
            # On pace (about 70% spent on day 23 of 30): the 50% level is no news.
            assert account not in by_account, r


def test_the_admin_report_ranks_every_budget_by_overrun(demo_home, capsys):
    rows = budget_rows(demo_home, capsys)
    html = html_of(message(demo_home, "admin"))
    budgets = section(html, "Budgets")
    names = [r["team_name"] for r in rows]
    assert all(n in budgets for n in names)
    over = sorted((r for r in rows if r["status"] == "over"), key=lambda r: r["monthly_budget"] - r["mtd_usd"])
    positions = [budgets.index(r["team_name"]) for r in over]
    assert positions == sorted(positions)  # over budget first, the largest overrun at the top
    first_ok = min(budgets.index(r["team_name"]) for r in rows if r["status"] == "ok")
    assert max(positions) < first_ok
    assert re.search(r"\d+ over budget</strong>", budgets)


def email_alerts(msg: email.message.EmailMessage) -> list[str]:
    """The alert lines of a team email's plain text: its ALERTS section up to the next blank line."""
    text = msg.get_body(("plain",)).get_content().replace("\r\n", "\n")
    if "\nALERTS\n" not in text:  # an account without data has no Alerts section
        return []
    block = text[text.index("\nALERTS\n") + len("\nALERTS\n"):].split("\n\n")[0]
    return [line for line in block.splitlines() if line.startswith("  [")]


def test_the_alert_counts_agree_in_the_emails_the_admin_report_the_ui_and_sql(demo_home, capsys):
    accounts = [r["account_id"] for r in sql(demo_home, f"select account_id from account_months where month = '{MONTH}'",
                                             capsys)]
    per_email = {a: len(email_alerts(message(demo_home, f"team-{a}"))) for a in accounts}
    per_sql = {r["account_id"]: r["n"] for r in sql(
        demo_home, f"select account_id, count(*) as n from alerts where month = '{MONTH}' group by all", capsys)}
    assert {a: n for a, n in per_email.items() if n} == per_sql
    total = sum(per_sql.values())
    assert total >= 10  # the demo plants spikes, steps, new services and budget overruns

    admin = message(demo_home, "admin").get_body(("plain",)).get_content()
    assert int(re.search(r"^  Alerts +(\d+)\r?$", admin, re.M).group(1)) == total

    instance = dg.DagsterInstance.from_config(str(demo_home / "dagster"))
    try:
        metadata = run_metadata.latest_metadata(instance, "anomalies")
    finally:
        instance.dispose()
    assert metadata["alerted"].value == total
    kinds = {r["alert_kind"]: r["n"] for r in sql(
        demo_home, f"select alert_kind, count(*) as n from alerts where month = '{MONTH}' group by all", capsys)}
    assert metadata["by_kind"].value == kinds
    assert set(kinds) <= {"spike", "step", "new_service", "mtd_rise", "budget_actual", "budget_forecast"}
    # Each alert says when it began and the dollars at stake.
    missing = sql(demo_home, f"select count(*) as n from alerts where month = '{MONTH}' and "
                             "(start_date is null or impact_usd is null or severity is null)", capsys)
    assert missing == [{"n": 0}]


def test_each_alert_says_its_kind_and_start_date_in_the_team_email(demo_home, capsys):
    rows = sql(demo_home, f"select account_id, alert_kind, start_date, end_date from alerts where month = '{MONTH}' "
                          "and alert_kind in ('spike', 'step', 'new_service', 'mtd_rise')", capsys)
    assert {r["alert_kind"] for r in rows} >= {"spike", "step", "new_service"}
    for r in rows:
        start = date.fromisoformat(r["start_date"])
        text = message(demo_home, f"team-{r['account_id']}").get_body(("plain",)).get_content()
        if r["alert_kind"] in ("spike", "step"):
            days = (date.fromisoformat(r["end_date"]) - start).days + 1
            label = "Spike" if r["alert_kind"] == "spike" else "Step to a new level"
            expected = f"{label} from {start:%d %b} ({days} day{'s' if days != 1 else ''})"
        else:
            expected = {"new_service": "New service from", "mtd_rise": "Month-to-date rise since"}[r["alert_kind"]]
            expected += f" {start:%d %b}"
        assert expected in text, (r, expected)


def test_the_admin_report_is_in_order_of_action(demo_home):
    html = html_of(message(demo_home, "admin"))
    order = ["Alerts", "Budgets", "Largest movers", "Savings", "All accounts by change"]
    positions = [html.index(f">{title}</h2>") for title in order]
    assert positions == sorted(positions)
    assert html.index(">Alerts</h2>") < html.index("Top recommendations") if "Top recommendations" in html else True


def test_a_preview_of_a_finished_month_is_not_to_date(demo_home, capsys):
    account = sql(demo_home, "select account_id from account_months where month = '2026-10' limit 1", capsys)[0]
    capsys.readouterr()
    assert cli.main(["--home", str(demo_home), "preview", "team", account["account_id"], "--month", "2026-10"]) == 0
    subject = capsys.readouterr().out.splitlines()[0]
    assert "October 2026 $" in subject and "to date" not in subject


def test_the_suggested_first_query_shows_this_months_movers_in_short_rows(demo_home, capsys):
    capsys.readouterr()
    assert cli.main(["--home", str(demo_home), "sql", FIRST_QUERY]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert max(len(line) for line in lines) <= 100
    rows = sql(demo_home, FIRST_QUERY, capsys)
    top = sql(demo_home, f"select team_name from account_months where month = '{MONTH}' "
                         "order by change_usd desc limit 10", capsys)
    assert [r["team_name"] for r in rows] == [r["team_name"] for r in top]


def test_each_alert_in_a_team_email_has_its_daily_chart_with_its_days_marked(demo_home, capsys):
    accounts = [r["account_id"] for r in sql(demo_home, f"select account_id from account_months where month = '{MONTH}'",
                                             capsys)]
    charts = {}
    for a in accounts:
        msg = message(demo_home, f"team-{a}")
        page = html_of(msg)
        # One chart per alert: each chart ends with its caption "<series> per day, <first> to <last>".
        assert page.count(" per day, ") == len(email_alerts(msg)), a
        chunks = page.split(" per day, ")
        charts[a] = {html_lib.unescape(chunk.rsplit(">", 1)[1]): chunk.count('bgcolor="#f04438"')
                     for chunk in chunks[:-1]}
    spikes = sql(demo_home, f"select account_id, service, start_date, end_date from alerts where month = '{MONTH}' "
                            "and alert_kind = 'spike' and service is not null", capsys)
    assert spikes
    for r in spikes:
        days = (date.fromisoformat(r["end_date"]) - date.fromisoformat(r["start_date"])).days + 1
        assert charts[r["account_id"]][r["service"]] == days, (r, charts[r["account_id"]])
