"""Team isolation as a property, over hundreds of generated organisations.

From the analysis frames of a generated organisation (``mom_changes`` built here, then the real
``detect_anomalies`` and ``explain_changes``), through the report contexts, to the rendered and built
messages: no team's email (subject, headers, HTML, text) holds another team's account id, team name or
cost figures; its recipients are its own; and changing one team's data leaves every other team's
email identical apart from its Date and Message-ID.
"""

from __future__ import annotations

import dataclasses
import html
import re
from datetime import UTC, date, datetime

import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from costagent_assets.analysis import AnomalyRule, detect_anomalies, explain_changes
from costagent_assets.periods import period, shift_month
from costagent_assets.report_context import ReportFrames
from costagent_assets.reporting import build_message, format_usd, format_usd_signed, render_team_report
from costagent_assets.schemas import conform
from costagent_assets.teams.model import Team

MONTH = "2026-11"
PERIOD = period(MONTH, date(2026, 11, 23))
NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
SERVICES = ["Amazon EC2", "Amazon S3", "AWS Lambda", "Amazon RDS", "Amazon Bedrock", "Amazon CloudFront"]
DASHBOARD = "https://dd.example.com/dash?account={account_id}&team={team_name}"

amounts = st.floats(min_value=0, max_value=5_000_000, allow_nan=False).map(lambda x: round(x, 2))
# Names a spreadsheet, a browser or a mail header could choke on, after a prefix unique to the team.
name_tail = st.text(alphabet=st.sampled_from("abcXYZ <>&\"'é=+-@;:,\r\n\u2028"), max_size=12)


@st.composite
def teams_data(draw, index: int, account_id: str) -> dict:
    services = draw(st.lists(st.sampled_from(SERVICES), min_size=1, max_size=3, unique=True))
    return {
        "team": Team(
            team_name=f"Team{index}q{draw(name_tail)}".strip(),
            aws_account_id=account_id,
            team_email=f"team{index}@t{index}.example.com",
            cc_emails=tuple(f"cc{index}.{k}@t{index}.example.com" for k in range(draw(st.integers(0, 2)))),
            monthly_budget=draw(st.none() | st.floats(1000, 1e7).map(round)),
        ),
        "has_data": draw(st.booleans() | st.just(True)),
        "services": {s: (draw(amounts), draw(amounts)) for s in services},  # (current, previous)
        "history": draw(st.lists(amounts, max_size=6)),
    }


@st.composite
def organisations(draw) -> list[dict]:
    n = draw(st.integers(2, 4))
    ids = draw(st.lists(st.from_regex(r"\A[0-9]{12}\Z"), min_size=n, max_size=n, unique=True))
    return [draw(teams_data(i, account_id)) for i, account_id in enumerate(ids)]


def mom_frame(org: list[dict]) -> pl.DataFrame:
    rows = []
    common = {"month": MONTH, "through_date": PERIOD.through, "days_covered": PERIOD.days_covered,
              "days_in_month": PERIOD.days_in_month, "is_new": False}
    for t in org:
        acct = t["team"].aws_account_id
        if not t["has_data"]:
            rows.append({**common, "account_id": acct, "level": "account", "has_data": False})
            continue
        for service, (cur, prev) in t["services"].items():
            rows.append({
                **common, "account_id": acct, "level": "service", "service": service, "has_data": True,
                "current_mtd_usd": cur, "previous_same_period_usd": prev, "change_usd": cur - prev,
                "change_pct": (cur - prev) / prev * 100 if prev else None, "previous_month_total_usd": prev * 1.3,
                "projected_month_end_usd": cur / 22 * 30,
            })
        cur = sum(c for c, _ in t["services"].values())
        prev = sum(p for _, p in t["services"].values())
        rows.append({
            **common, "account_id": acct, "level": "account", "has_data": True, "current_mtd_usd": cur,
            "previous_same_period_usd": prev, "change_usd": cur - prev,
            "change_pct": (cur - prev) / prev * 100 if prev else None, "previous_month_total_usd": prev * 1.3,
            "projected_month_end_usd": cur / 22 * 30,
        })
    return conform(pl.DataFrame(rows), "mom_changes")


def history_frame(org: list[dict]) -> pl.DataFrame:
    rows = [
        {"month": shift_month(MONTH, -(k + 1)), "account_id": t["team"].aws_account_id, "level": "account",
         "has_data": True, "current_mtd_usd": usd}
        for t in org for k, usd in enumerate(t["history"])
    ]
    return conform(pl.DataFrame(rows), "mom_changes") if rows else conform(pl.DataFrame(), "mom_changes")


def render_all(org: list[dict], *, messages: bool = True) -> dict[str, tuple]:
    """Every team's email: (subject, html, text, headers without Date/Message-ID, envelope recipients);
    without ``messages``, only what the headers are made from (subject, html, text)."""
    mom = mom_frame(org)
    anomalies = detect_anomalies(mom, AnomalyRule())
    insights = explain_changes(mom, anomalies, {MONTH: PERIOD})
    frames = ReportFrames(MONTH, PERIOD, mom, anomalies, insights, generated_at=NOW,
                          history=history_frame(org), dashboard_url_template=DASHBOARD)
    out = {}
    for t in org:
        team = t["team"]
        rendered = render_team_report(frames.team_context(team))
        if not messages:
            out[team.aws_account_id] = (rendered.subject, rendered.html, rendered.text)
            continue
        message = build_message(rendered, sender="costagent@example.com", to=team.team_email, cc=team.cc_emails)
        headers = tuple((k, str(v)) for k, v in message.items() if k not in ("Date", "Message-ID", "Content-Type"))
        recipients = [message["To"], *(message["Cc"].split(", ") if message["Cc"] else [])]
        out[team.aws_account_id] = (rendered.subject, rendered.html, rendered.text, headers, recipients)
    return out


def figures(t: dict) -> set[str]:
    """The formatted headline amounts of a team: its month to date and the same days last month."""
    cur = sum(c for c, _ in t["services"].values())
    prev = sum(p for _, p in t["services"].values())
    return {format_usd(cur), format_usd(prev), format_usd_signed(cur - prev)} if t["has_data"] else set()


def shows(figure: str, text: str) -> bool:
    """``figure`` appears as a whole amount ("$1,234" does not appear inside "$1,234,567")."""
    return re.search(re.escape(figure) + r"(?![0-9]|,[0-9]|\.[0-9])", text) is not None


def own_figures(t: dict) -> set[str]:
    """Every amount the team's own email may legitimately print (so a coincidence is not a leak)."""
    values = [x for pair in t["services"].values() for x in pair] + t["history"]
    values += [c - p for c, p in t["services"].values()]
    cur = sum(c for c, _ in t["services"].values())
    prev = sum(p for _, p in t["services"].values())
    values += [cur, prev, cur - prev, prev * 1.3, cur / 22 * 30]
    values += [p * 1.3 for _, p in t["services"].values()] + [c / 22 * 30 for c, _ in t["services"].values()]
    if t["team"].monthly_budget:
        values.append(t["team"].monthly_budget)
    return {f(x) for x in values for f in (format_usd, format_usd_signed)}


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(org=organisations(), data=st.data())
def test_no_team_email_shows_another_team(org, data):
    emails = render_all(org)
    for t in org:
        team = t["team"]
        subject, body_html, body_text, headers, recipients = emails[team.aws_account_id]
        everything = "\n".join([subject, body_html, body_text, *(f"{k}: {v}" for k, v in headers)])
        assert team.aws_account_id in body_text
        assert recipients == [team.team_email, *team.cc_emails]
        allowed = own_figures(t)
        for other in org:
            if other is t:
                continue
            o = other["team"]
            assert o.aws_account_id not in everything
            # The unique prefix of the other name, and the name as each part would print it.
            assert f"Team{org.index(other)}q" not in everything
            assert html.escape(o.team_name) not in body_html and o.team_name not in body_text
            for address in (o.team_email, *o.cc_emails):
                assert address not in everything
            for figure in figures(other) - allowed:
                assert not shows(figure, everything), (figure, team.aws_account_id)

    # Changing one team's data changes nothing in any other team's email.
    j = data.draw(st.integers(0, len(org) - 1))
    changed = [dict(t) for t in org]
    target = changed[j]
    target["services"] = {s: (c * 1.5 + 123.45, p) for s, (c, p) in target["services"].items()}
    target["history"] = [h + 1000 for h in target["history"]]
    target["has_data"] = not target["has_data"] if len(org) % 2 else target["has_data"]
    target["team"] = dataclasses.replace(target["team"], monthly_budget=(target["team"].monthly_budget or 0) + 500)
    after = render_all(changed, messages=False)
    for i, t in enumerate(org):
        if i != j:
            # The headers are built from the subject and the team's own registry entry, both unchanged.
            assert after[t["team"].aws_account_id] == emails[t["team"].aws_account_id][:3]
