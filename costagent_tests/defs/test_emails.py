"""emails materialized alone: one outbox report per registered team of the run, the admin report only
when the run covers every registered account, and nothing sent twice."""

from __future__ import annotations

import email
from datetime import date
from email import policy

import polars as pl
import pytest

from costagent_assets.settings import Settings
from costagent_assets.teams.model import Team
from costagent_tests.peers.stages import daily_costs, materialize_stage

A, B, C = "111111111111", "222222222222", "333333333333"
MONTH, AS_OF, THROUGH = "2025-03", date(2025, 3, 6), date(2025, 3, 5)
TEAMS = [
    Team("Platform", A, "platform@example.com", cc_emails=("cto@example.com",)),
    Team("Data", B, "data@example.com"),
    Team("Web", C, "web@example.com"),
]
SETTINGS = Settings(global_admin_emails=("finops@example.com",))


def account_row(account: str, current: float, previous: float) -> dict:
    return {
        "month": MONTH, "account_id": account, "level": "account", "service": None,
        "current_mtd_usd": current, "previous_same_period_usd": previous, "change_usd": current - previous,
        "change_pct": (current - previous) / previous * 100, "previous_month_total_usd": previous * 5,
        "projected_month_end_usd": current / 5 * 31, "is_new": False, "through_date": THROUGH,
        "days_covered": 5, "days_in_month": 31, "has_data": True,
    }


MOM = pl.DataFrame([
    account_row(A, 500, 400), {**account_row(A, 500, 400), "level": "service", "service": "AmazonEC2"},
    account_row(B, 300, 300), {**account_row(B, 300, 300), "level": "service", "service": "AWSLambda"},
    account_row(C, 90, 100), {**account_row(C, 90, 100), "level": "service", "service": "AmazonS3"},
])


# What the source returned: every day through THROUGH for each account (the completeness gate reads it).
RAW = daily_costs(date(2025, 3, 1), {a: {"AmazonEC2": [10.0] * 5} for a in (A, B, C)})


def run_emails(tmp_path, accounts: list[str], raw: pl.DataFrame = RAW, mom: pl.DataFrame = MOM):
    return materialize_stage("emails", tmp_path, month=MONTH, accounts=accounts, as_of=AS_OF, teams=TEAMS,
                             settings=SETTINGS, upstream={"mom_changes": mom.filter(pl.col("account_id").is_in(accounts)),
                                                          "raw_costs": raw.filter(pl.col("account_id").is_in(accounts))})


def outbox(run) -> list[str]:
    folder = run.home.outbox_dir / AS_OF.isoformat()
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def message(run, name: str) -> email.message.EmailMessage:
    path = run.home.outbox_dir / AS_OF.isoformat() / name
    return email.message_from_bytes(path.read_bytes(), policy=policy.default)


def test_a_run_over_two_of_three_accounts_mails_their_teams_and_no_admin_report(tmp_path):
    run = run_emails(tmp_path, [A, B])
    assert run.result.success
    assert outbox(run) == [f"{MONTH}-team-{A}.eml", f"{MONTH}-team-{A}.html",
                           f"{MONTH}-team-{B}.eml", f"{MONTH}-team-{B}.html"]
    to_a = message(run, f"{MONTH}-team-{A}.eml")
    assert (to_a["To"], to_a["Cc"]) == ("platform@example.com", "cto@example.com")
    assert message(run, f"{MONTH}-team-{B}.eml")["To"] == "data@example.com"
    html_a = (run.home.outbox_dir / AS_OF.isoformat() / f"{MONTH}-team-{A}.html").read_text()
    assert A in html_a and B not in html_a and "Data" not in html_a  # only its own account
    rows = {r["account_id"]: r for r in run.table("emails").iter_rows(named=True)}
    assert set(rows) == {A, B}
    assert {a: (r["kind"], r["recipient"], r["status"]) for a, r in rows.items()} == {
        A: ("team", "platform@example.com", "delivered"), B: ("team", "data@example.com", "delivered")}
    assert rows[A]["cc"] == "cto@example.com" and rows[A]["report_date"] == AS_OF and not rows[A]["no_data"]
    meta = run.metadata("emails")
    assert (meta["team_emails"], meta["team_delivered"], meta["admin_reports"]) == (2, 2, 0)
    assert meta["admin_report"] == "not written (partial run)"


def test_a_run_over_every_account_adds_the_admin_report_and_a_rerun_sends_nothing_twice(tmp_path):
    first = run_emails(tmp_path, [A, B, C])
    assert first.result.success
    written = outbox(first)
    assert written == sorted(
        [f"{MONTH}-team-{a}.{ext}" for a in (A, B, C) for ext in ("eml", "html")]
        + [f"{MONTH}-admin.eml", f"{MONTH}-admin.html", f"{MONTH}-admin.csv"]
    )
    admin = message(first, f"{MONTH}-admin.eml")
    assert admin["To"] == "finops@example.com"
    [attachment] = list(admin.iter_attachments())
    assert attachment.get_filename() == f"costagent-{MONTH}-accounts.csv"
    csv = (first.home.outbox_dir / AS_OF.isoformat() / f"{MONTH}-admin.csv").read_text()
    assert all(a in csv for a in (A, B, C))
    meta = first.metadata("emails")
    assert (meta["team_emails"], meta["team_delivered"], meta["admin_reports"], meta["admin_status"]) == (
        3, 3, 1, "delivered")

    stamps = {n: (first.home.outbox_dir / AS_OF.isoformat() / n).stat().st_mtime_ns for n in written}
    again = run_emails(tmp_path, [A, B, C])
    assert again.result.success
    assert set(again.table("emails")["status"]) == {"already_sent"}
    meta = again.metadata("emails")
    assert (meta["team_delivered"], meta["team_already_sent"], meta["admin_status"]) == (0, 3, "already_sent")
    assert outbox(again) == written
    assert {n: (again.home.outbox_dir / AS_OF.isoformat() / n).stat().st_mtime_ns for n in written} == stamps


# ------------------------------------------------------------------ the completeness gate (issue 19)


def eml(run, name: str) -> str:
    return (run.home.outbox_dir / AS_OF.isoformat() / name).read_text()


def test_data_ending_early_past_the_deadline_go_out_marked_and_a_complete_rerun_sends_one_correction(tmp_path):
    # A's source stopped after March 3rd: 2 of the 5 days claimed are missing. AS_OF is long past the deadline.
    short = RAW.filter((pl.col("account_id") != A) | (pl.col("date") <= date(2025, 3, 3)))
    first = run_emails(tmp_path, [A, B, C], raw=short)
    assert first.result.success
    to_a = message(first, f"{MONTH}-team-{A}.eml")
    assert "data through 2025-03-03, 2 days missing" in to_a["Subject"] and "%" not in to_a["Subject"]
    text = to_a.get_body(("plain",)).get_content()
    assert "INCOMPLETE DATA: DATA THROUGH 2025-03-03, 2 DAYS MISSING" in text
    assert "+25.0%" not in text and "$400" not in text  # no comparison built on the missing days
    rows = {r["account_id"]: r for r in first.table("emails").iter_rows(named=True)}
    assert (rows[A]["basis"], rows[A]["data_through"], rows[B]["basis"]) == ("incomplete", date(2025, 3, 3), "complete")

    second = run_emails(tmp_path, [A, B, C])  # the source has caught up
    assert second.result.success
    assert f"{MONTH}-correction-{A}.eml" in outbox(second)
    assert not any(f"correction-{x}" in n for n in outbox(second) for x in (B, C))
    fixed = message(second, f"{MONTH}-correction-{A}.eml")
    assert fixed["Subject"].startswith("[costagent] Correction: Platform:") and "missing" not in fixed["Subject"]
    assert "built on incomplete data (through 2025-03-03)" in fixed.get_body(("plain",)).get_content()
    rows = {r["account_id"]: r for r in second.table("emails").iter_rows(named=True)}
    assert (rows[A]["kind"], rows[A]["status"], rows[B]["status"]) == ("team_correction", "delivered", "already_sent")
    assert second.metadata("emails")["corrections_sent"] == 1

    third = run_emails(tmp_path, [A, B, C])
    assert outbox(third) == outbox(second)
    assert third.metadata("emails")["corrections_sent"] == 0
    assert {r["status"] for r in third.table("emails").iter_rows(named=True)} == {"already_sent"}


def test_a_no_data_report_is_corrected_once_when_the_data_arrive(tmp_path):
    # What mom_changes makes of an account the source returned nothing for: no data, no figures.
    without_c = MOM.with_columns(
        [pl.when(pl.col("account_id") == C).then(None).otherwise(pl.col(c)).alias(c)
         for c in ("current_mtd_usd", "previous_same_period_usd", "change_usd", "change_pct")]
        + [(pl.col("account_id") != C).alias("has_data")])
    first = run_emails(tmp_path, [A, B, C], raw=RAW.filter(pl.col("account_id") != C), mom=without_c)
    rows = {r["account_id"]: r for r in first.table("emails").iter_rows(named=True)}
    assert rows[C]["basis"] == "no_data" and rows[C]["no_data"]
    assert "no cost data received" in message(first, f"{MONTH}-team-{C}.eml")["Subject"]
    second = run_emails(tmp_path, [A, B, C])
    fixed = message(second, f"{MONTH}-correction-{C}.eml")
    assert fixed["Subject"].startswith("[costagent] Correction: Web:")
    assert "said no cost data had been received" in fixed.get_body(("plain",)).get_content()
    rows = {r["account_id"]: r for r in second.table("emails").iter_rows(named=True)}
    assert rows[C]["kind"] == "team_correction" and not rows[C]["no_data"]


def test_data_ending_early_before_the_deadline_hold_the_report_and_a_rerun_with_the_data_sends_it(tmp_path):
    from datetime import UTC, datetime, timedelta

    from costagent_assets.periods import period, report_month

    as_of = datetime.now(UTC).date()  # the hold is judged against the real clock: a report made today
    month = report_month(as_of)
    p = period(month, as_of)
    if p.days_covered < 2:
        pytest.skip("on the 2nd of a month the report covers one day: nothing can end early")
    full = daily_costs(p.start, {A: {"AmazonEC2": [10.0] * p.days_covered}})
    short = full.filter(pl.col("date") < p.through)  # the last day has not arrived
    mom = MOM.filter(pl.col("account_id") == A).with_columns(pl.lit(month).alias("month"))

    def run(raw):
        return materialize_stage("emails", tmp_path, month=month, accounts=[A], as_of=as_of, teams=TEAMS,
                                 settings=SETTINGS, upstream={"mom_changes": mom, "raw_costs": raw})

    first = run(short)
    assert first.result.success
    assert not (first.home.outbox_dir / as_of.isoformat()).exists() or not list(
        (first.home.outbox_dir / as_of.isoformat()).glob("*.eml"))
    [row] = first.table("emails").iter_rows(named=True)
    assert row["status"] == "held" and row["basis"] == "waiting"
    assert f"from {as_of + timedelta(days=2)} it goes out marked incomplete" in row["location"]
    assert first.metadata("emails")["held_for_data"] == 1

    second = run(full)
    [row] = second.table("emails").iter_rows(named=True)
    assert (row["kind"], row["status"], row["basis"]) == ("team", "delivered", "complete")
    assert [p.name for p in (second.home.outbox_dir / as_of.isoformat()).glob("*.eml")] == [f"{month}-team-{A}.eml"]


def test_an_account_whose_report_fails_is_recorded_and_every_other_email_goes_out(tmp_path):
    # A's service row lost its month-to-date figure: A's report cannot be built; B's, C's and the admin's can.
    broken = MOM.with_columns(
        pl.when((pl.col("account_id") == A) & (pl.col("level") == "service")).then(None)
        .otherwise(pl.col("current_mtd_usd")).alias("current_mtd_usd"))
    run = materialize_stage("emails", tmp_path, month=MONTH, accounts=[A, B, C], as_of=AS_OF, teams=TEAMS,
                            settings=SETTINGS, upstream={"mom_changes": broken})
    assert run.result.success
    rows = {r["account_id"]: r for r in run.table("emails").iter_rows(named=True)}
    assert {a: r["status"] for a, r in rows.items()} == {A: "failed", B: "delivered", C: "delivered"}
    assert rows[A]["location"].startswith("report unavailable: TypeError")
    assert f"{MONTH}-team-{A}.eml" not in outbox(run) and f"{MONTH}-team-{B}.eml" in outbox(run)
    admin = message(run, f"{MONTH}-admin.eml").get_body(("plain",)).get_content()
    assert f"Platform ({A}) report: TypeError" in admin


def test_team_emails_are_delivered_in_chunks_and_the_rows_keep_their_order(tmp_path, monkeypatch):
    """With chunks of one account, each team's email is in the outbox before the next one is built (memory
    does not grow with the account count), and the emails rows come out as with one chunk for the month."""
    from costagent_assets.defs import emails as stage

    whole = run_emails(tmp_path / "whole", [A, B, C])
    monkeypatch.setattr(stage, "DELIVERY_CHUNK", 1)
    in_outbox_when_built = []
    build = stage.build_mime_message

    def counting(*args, **kwargs):
        folder = tmp_path / "chunked" / "outbox" / AS_OF.isoformat()
        in_outbox_when_built.append(len(list(folder.glob("*-team-*.eml"))) if folder.exists() else 0)
        return build(*args, **kwargs)

    monkeypatch.setattr(stage, "build_mime_message", counting)
    chunked = run_emails(tmp_path / "chunked", [A, B, C])
    assert chunked.result.success
    assert in_outbox_when_built == [0, 1, 2]
    columns = ["month", "account_id", "kind", "recipient", "status", "subject"]
    assert chunked.table("emails").select(columns).equals(whole.table("emails").select(columns))
