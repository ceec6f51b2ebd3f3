"""The completeness gate: which days of a report's period each account has data for, what its report may be
built on, and (end to end, against the Datadog-like peer) that incomplete source data never reach a team as fact."""

from __future__ import annotations

import email
from datetime import date
from email import policy
from pathlib import Path

import polars as pl
import pytest

from costagent_assets.completeness import (
    COMPLETE,
    INCOMPLETE,
    NO_DATA,
    WAITING,
    account_coverage,
    report_basis,
)
from costagent_assets.demo import organisation as demo
from costagent_assets.periods import period
from costagent_tests.peers.datadog_server import DatadogPeer
from costagent_tests.peers.homes import demo_accounts, prepare_home, run_weekly, sql

P = period("2026-11", date(2026, 11, 23))  # November 1-22


def days(account: str, *spans: tuple[int, int]) -> list[dict]:
    return [{"account_id": account, "date": date(2026, 11, d)} for a, b in spans for d in range(a, b + 1)]


def test_coverage_finds_data_ending_early_gaps_and_accounts_without_data():
    rows = pl.DataFrame(days("a", (1, 22)) + days("b", (1, 10)) + days("c", (1, 5), (8, 22)) + days("d", (15, 22))
                        + days("a", (1, 3)))  # a repeated day counts once
    cov = account_coverage(rows, P, ["a", "b", "c", "d", "e"])
    assert cov["a"].complete and cov["a"].data_through == date(2026, 11, 22) and cov["a"].missing_days == 0
    assert (cov["b"].data_through, cov["b"].missing_days) == (date(2026, 11, 10), 12)
    assert cov["b"].describe() == "data through 2026-11-10, 12 days missing"
    assert (cov["c"].data_through, cov["c"].missing_days, cov["c"].last_day) == (date(2026, 11, 5), 2, date(2026, 11, 22))
    assert cov["d"].complete  # an account whose costs start on the 15th: new, not missing data
    assert cov["e"].no_data and cov["e"].describe() == "no data"


def test_report_basis_holds_until_the_deadline_then_marks_incomplete():
    cov = account_coverage(pl.DataFrame(days("b", (1, 10))), P, ["b", "e"])
    report_date = date(2026, 11, 23)
    assert report_basis(cov["b"], report_date, today=date(2026, 11, 24), wait_days=2) == WAITING
    assert report_basis(cov["b"], report_date, today=date(2026, 11, 25), wait_days=2) == INCOMPLETE
    assert report_basis(cov["b"], report_date, today=report_date, wait_days=0) == INCOMPLETE
    assert report_basis(cov["e"], report_date, today=report_date, wait_days=2) == NO_DATA
    full = account_coverage(pl.DataFrame(days("a", (1, 22))), P, ["a"])["a"]
    assert report_basis(full, report_date, today=report_date, wait_days=2) == COMPLETE


# ---------------------------------------------------------------------- end to end, Datadog-like peer

AS_OF = date(2026, 11, 23)
TEAMS = demo_accounts(12)
ACCOUNTS = [t["aws_account_id"] for t in TEAMS]


@pytest.fixture(scope="module")
def org_costs() -> pl.DataFrame:
    return demo.generate_costs(ACCOUNTS, date(2026, 10, 1), date(2026, 11, 22), seed=42, as_of=AS_OF).group_by(
        ["date", "account_id", "service"]).agg(pl.col("cost_usd").sum())


def serve(costs: pl.DataFrame, monkeypatch: pytest.MonkeyPatch, **knobs) -> DatadogPeer:
    peer = DatadogPeer(costs, **knobs).start()
    monkeypatch.setenv("DATADOG_API_KEY", peer.api_key)
    monkeypatch.setenv("DATADOG_APP_KEY", peer.app_key)
    monkeypatch.setenv("DATADOG_SITE", peer.url)
    return peer


def team_messages(home: Path, kind: str = "team") -> dict[str, email.message.EmailMessage]:
    folder = home / "outbox" / AS_OF.isoformat()
    return {p.stem.rsplit("-", 1)[1]: email.message_from_bytes(p.read_bytes(), policy=policy.default)
            for p in sorted(folder.glob(f"2026-11-{kind}-*.eml"))}


@pytest.mark.parametrize("cut", ["null_points", "ten_points"])
def test_incomplete_datadog_data_are_never_mailed_as_fact_and_one_correction_follows(
    isolated: Path, org_costs: pl.DataFrame, monkeypatch: pytest.MonkeyPatch, cut: str
):
    """Issue 19, case 1: Datadog returns null points for November 11-22 (or cuts each series to 10 points).
    Past the deadline the teams get the real data-through date and no figure built on the missing days;
    once Datadog has the data, a rerun of the report date sends each team one correction."""
    lagging = org_costs.filter(pl.col("date") <= date(2026, 11, 10)) if cut == "null_points" else org_costs
    knobs = {"points_per_series": 10} if cut == "ten_points" else {}
    # wait 0 days: the report goes out at once, marked (a report date in the past is always past its deadline).
    prepare_home(isolated, TEAMS, source="datadog", source_max_wait_seconds="0.01", incomplete_data_wait_days="0")
    peer = serve(lagging, monkeypatch, **knobs)
    try:
        # ten_points cuts October to its first 10 days too: the October history is loaded complete first.
        assert run_weekly(isolated, AS_OF) == 0
    finally:
        peer.stop()
    first = team_messages(isolated)
    assert len(first) == 12
    for msg in first.values():
        subject, text = msg["Subject"], msg.get_body(("plain",)).get_content()
        assert "(data through 2026-11-10, 12 days missing)" in subject and "%" not in subject, subject
        assert "INCOMPLETE DATA: DATA THROUGH 2026-11-10, 12 DAYS MISSING" in text
        assert "data through 2026-11-22" not in text and "December 2026" not in text  # no forecast on missing days
        assert "FORECAST" not in text and "Projected month end          n/a" in text
        assert "No alerts: they are left out until the data are complete." in text and "[HIGH]" not in text
    rows = sql(isolated, "select account_id, basis, data_through, status from emails where month = '2026-11'")
    assert {(r["basis"], str(r["data_through"]), r["status"]) for r in rows} == {
        ("incomplete", "2026-11-10", "delivered")}
    admin = email.message_from_bytes((isolated / "outbox" / AS_OF.isoformat() / "2026-11-admin.eml").read_bytes(),
                                      policy=policy.default)
    assert admin["Subject"].endswith("; 12 with incomplete data") and "%" not in admin["Subject"]
    admin_text = admin.get_body(("plain",)).get_content()
    assert "12 ACCOUNTS WITH INCOMPLETE DATA" in admin_text and "data through 2026-11-10, 12 days missing" in admin_text

    peer = serve(org_costs, monkeypatch)  # Datadog has caught up
    try:
        assert run_weekly(isolated, AS_OF) == 0
        corrections = team_messages(isolated, "correction")
        assert set(corrections) == set(first)
        for msg in corrections.values():
            assert msg["Subject"].startswith("[costagent] Correction: ") and "missing" not in msg["Subject"]
            assert "built on incomplete data (through 2026-11-10)" in msg.get_body(("plain",)).get_content()
            assert "data through 2026-11-22" in msg.get_body(("plain",)).get_content()
        stamps = {p: p.stat().st_mtime_ns for p in (isolated / "outbox").rglob("*.eml")}
        assert run_weekly(isolated, AS_OF) == 0  # a third run: nothing is sent again
        assert {p: p.stat().st_mtime_ns for p in (isolated / "outbox").rglob("*.eml")} == stamps
    finally:
        peer.stop()
    rows = sql(isolated, "select kind, status, basis from emails where month = '2026-11'")
    assert {(r["kind"], r["status"], r["basis"]) for r in rows} == {("team_correction", "already_sent", "complete")}
    log = sql(isolated, "select kind, basis, count(*) as n from report_coverage where status = 'delivered' "
                        "group by all order by kind")
    assert log == [{"kind": "team", "basis": "incomplete", "n": 12}, {"kind": "team_correction", "basis": "complete", "n": 12}]


def test_accounts_missing_days_in_the_middle_are_marked_too(
    isolated: Path, org_costs: pl.DataFrame, monkeypatch: pytest.MonkeyPatch
):
    gap = org_costs.filter(~((pl.col("account_id") == ACCOUNTS[0]) & pl.col("date").is_between(
        date(2026, 11, 5), date(2026, 11, 6))))
    prepare_home(isolated, TEAMS, source="datadog", source_max_wait_seconds="0.01", incomplete_data_wait_days="0")
    peer = serve(gap, monkeypatch)
    try:
        assert run_weekly(isolated, AS_OF) == 0
    finally:
        peer.stop()
    sent = team_messages(isolated)
    assert "(data through 2026-11-04, 2 days missing)" in sent[ACCOUNTS[0]]["Subject"]
    assert all("missing" not in m["Subject"] for a, m in sent.items() if a != ACCOUNTS[0])
    # `costagent preview` gates the same way as the emails stage.
    from costagent_assets.cli.preview import preview_admin, preview_team
    from costagent_assets.home import Home

    assert preview_team(Home(isolated), ACCOUNTS[0]).subject == sent[ACCOUNTS[0]]["Subject"]
    assert "1 ACCOUNT WITH INCOMPLETE DATA" in preview_admin(Home(isolated)).text


def test_a_partial_outage_is_repaired_when_the_source_recovers(
    isolated: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    """Issue 19, case 2: the source omits 4 of 20 accounts on the first run, which also loads October. Once it
    recovers, a rerun corrects the 4 "no cost data" reports once, and loads October again; `status` counts
    accounts with complete data, not files."""
    from costagent_assets.cli import main as cli

    teams = demo_accounts(20)
    accounts = [t["aws_account_id"] for t in teams]
    costs = demo.generate_costs(accounts, date(2026, 10, 1), date(2026, 11, 22), seed=42, as_of=AS_OF).group_by(
        ["date", "account_id", "service"]).agg(pl.col("cost_usd").sum())
    omitted = set(accounts[3:7])
    prepare_home(isolated, teams, source="datadog", source_max_wait_seconds="0.01")
    peer = serve(costs, monkeypatch, omit_accounts=omitted)
    try:
        assert run_weekly(isolated, AS_OF) == 0
    finally:
        peer.stop()
    capsys.readouterr()
    assert cli.main(["--home", str(isolated), "status"]) == 0
    out = capsys.readouterr().out
    assert "2026-10: 16 of 20 accounts with complete data through 2026-10-31; 4 without data" in out
    assert "2026-11: 16 of 20 accounts with complete data through 2026-11-22; 4 without data" in out
    no_data = {r["account_id"] for r in sql(isolated, "select account_id from emails where no_data")}
    assert no_data == omitted

    peer = serve(costs, monkeypatch)  # the source has recovered
    try:
        assert run_weekly(isolated, AS_OF) == 0
    finally:
        peer.stop()
    assert set(team_messages(isolated, "correction")) == omitted
    october = sql(isolated, "select count(distinct account_id) as n from raw_costs where month = '2026-10'")
    assert october == [{"n": 20}]
    rows = {r["account_id"]: r for r in sql(isolated, "select account_id, kind, status, no_data from emails")}
    assert all(rows[a]["kind"] == "team_correction" and not rows[a]["no_data"] for a in omitted)
    # The other 16 keep saying what they were sent: a complete report, already sent.
    assert {(r["kind"], r["status"], r["no_data"]) for a, r in rows.items() if a not in omitted} == {
        ("team", "already_sent", False)}
    capsys.readouterr()
    assert cli.main(["--home", str(isolated), "status"]) == 0
    out = capsys.readouterr().out
    assert "2026-10: 20 of 20 accounts with complete data" in out and "2026-11: 20 of 20 accounts" in out
