"""emails materialized alone: one outbox report per registered team of the run, the admin report only
when the run covers every registered account, and nothing sent twice."""

from __future__ import annotations

import email
from datetime import date
from email import policy

import polars as pl

from costagent_assets.settings import Settings
from costagent_assets.teams.model import Team
from costagent_tests.peers.stages import materialize_stage

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


def run_emails(tmp_path, accounts: list[str]):
    return materialize_stage("emails", tmp_path, month=MONTH, accounts=accounts, as_of=AS_OF, teams=TEAMS,
                             settings=SETTINGS, upstream={"mom_changes": MOM.filter(pl.col("account_id").is_in(accounts))})


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
