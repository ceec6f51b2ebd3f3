"""emails: each team's report, and the organisation's report for the admins."""


import html
from datetime import UTC, date, datetime

import dagster as dg
import polars as pl

from costagent_assets import markdown
from costagent_assets.ai_savings import ai_savings
from costagent_assets.ai_spend import ai_spend_by_model, organisation_ai_spend
from costagent_assets.completeness import (
    COMPLETE,
    INCOMPLETE,
    NO_DATA,
    PROVISIONAL,
    WAITING,
    account_coverage,
    correction_of,
    incomplete_accounts,
    mark_incomplete,
    report_basis,
    retry_date,
    without_missing_days,
)
from costagent_assets.defs.partitions import (
    month_account_asset,
    months_window,
    run_as_of,
    run_partitions,
    run_periods,
)
from costagent_assets.defs.run_metadata import run_output
from costagent_assets.delivery import (
    ALREADY_SENT,
    Outgoing,
    deliver_batch,
    delivery_problems,
    failure_notice,
    is_partial,
    run_summary,
    status_counts,
    summary_text,
)
from costagent_assets.insights.history import admin_ai_context
from costagent_assets.report_context import (
    TREND_MONTHS,
    ReportFrames,
    alert_chart_daily,
    delivery_summary,
    report_frames,
    run_cost,
    teams_by_account,
)
from costagent_assets.reporting import (
    RenderedEmail,
    admin_csv,
    build_message,
    build_mime_message,
    render_admin_report,
    render_team_report,
)
from costagent_assets.resources.email_delivery import EmailDelivery
from costagent_assets.resources.run_lease import RunLeaseResource
from costagent_assets.resources.s3_ledger import open_send_ledger
from costagent_assets.resources.smtp import SmtpError
from costagent_assets.resources.teams_registry import TeamsRegistry
from costagent_assets.resources.warehouse import WarehouseResource
from costagent_assets.schemas import conform
from costagent_assets.send_ledger import DELIVERED, LedgerKey
from costagent_assets.settings import AI_SOURCES, Settings
from costagent_assets.teams.model import Team
from costagent_assets.warehouse.log_tables import append_log
from costagent_assets.warehouse.rollups import read_rollup
from costagent_assets.warehouse.store import read_partitions, read_table

PREVIEW_LINES = 60
HELD = "held"  # an emails row whose report waits for complete source data (completeness.WAITING)
CORRECTION = "team_correction"  # the ledger kind of a corrected team report: its own key, so sent once
# Team emails built and held at once before they are delivered: bounds the stage's memory at any account count.
DELIVERY_CHUNK = 100


def sent_report_bases(store, report_day: date, months: list[str]) -> dict[tuple[str, str], tuple[str, str | None]]:
    """(month, account) -> (basis, data-through date) of the team report an earlier run delivered for
    ``report_day``: what a correction corrects (``report_coverage`` log)."""
    log = read_table(store, "report_coverage", months)
    sent = log.filter((pl.col("report_date") == report_day) & (pl.col("kind") == "team")
                      & (pl.col("status") == DELIVERED)).sort("recorded_at")
    return {(m, a): (b, t.isoformat() if t else None)
            for m, a, b, t in sent.select("month", "account_id", "basis", "data_through").iter_rows()}


# The run tag that says whether every email of the run reached its recipients (`costagent status` reads it).
DELIVERY_TAG = "costagent/delivery"
UNDELIVERED_LISTED = 50  # in the materialization's metadata; more would crowd the UI


def _preview(text: str) -> dg.MetadataValue:
    lines = text.splitlines()
    more = f"\n… {len(lines) - PREVIEW_LINES} more lines" if len(lines) > PREVIEW_LINES else ""
    return dg.MetadataValue.md("```\n" + "\n".join(lines[:PREVIEW_LINES]).replace("```", "'''") + more + "\n```")


def _notify_failures(session, ledger, run_id: str, deliveries, admin_results, *, report_date: str, month: str,
                     teams, to: str, sender: str, domain: str, channel: str) -> str:
    """Email the admins a short list of this run's undelivered emails when no admin report of this run
    (which lists them) was delivered: on a rerun, or when the admin report itself did not get through.
    Keyed by the set of problems, so each set is notified once, by the first run that gets it through."""
    problems = delivery_problems(deliveries)
    if not problems or any(d.sent_now for d in admin_results):
        return "not needed"
    fingerprint, subject, text = failure_notice(problems, report_date, {t.aws_account_id: t.team_name for t in teams})
    body = "<pre>" + html.escape(text) + "</pre>"
    message = build_message(RenderedEmail(subject, body, text), sender=sender, to=to, message_id_domain=domain)
    key = LedgerKey.of(report_date, "failures", fingerprint, month, to, channel)
    (result,) = deliver_batch(session, [Outgoing(key, message, body, f"{month}-delivery-failures-{fingerprint}")],
                              ledger, run_id)
    return result.status


def _team_report(frames: ReportFrames, team: Team, prepare=None) -> tuple[dict, RenderedEmail]:
    """One team's context (marked by ``prepare``: incomplete data, a correction) and its rendered email."""
    ctx = frames.team_context(team)
    if prepare is not None:
        ctx = prepare(ctx)
    return ctx, render_team_report(ctx)


def ai_spend_of(store, month: str, accounts: list[str]) -> dict[str, dict]:
    """The "AI spend by model" section of each AI account's report (ai_spend.py), with its AI savings
    (ai_savings.py), from its stored raw_costs."""
    if not accounts:
        return {}
    raw = read_partitions(store, "raw_costs", [(month, a) for a in sorted(accounts)])
    sections, savings = ai_spend_by_model(raw), ai_savings(raw)
    return {a: {**section, "savings": savings.get(a, [])} for a, section in sections.items()}


def _deliver_team_emails(session, ledger, run_id: str, month: str, outgoing: list[Outgoing], info: dict,
                         sent_before: dict, results: list, rows: list[dict], coverage_rows: list[dict]) -> None:
    """Deliver the team emails built so far (then drop them, and their ``info``), adding their results, their
    ``emails`` rows and their ``report_coverage`` rows to the lists given."""
    chunk = deliver_batch(session, outgoing, ledger, run_id)
    outgoing.clear()
    results += chunk
    for d in chunk:
        team, subject, basis, cov = info.pop(d.key.subject)
        through = cov.data_through
        if d.status == ALREADY_SENT and (month, d.key.subject) in sent_before and d.key.kind == "team":
            # The row says what was sent, not what this run would have sent.
            basis, through = sent_before[(month, d.key.subject)]
            through = date.fromisoformat(through) if through else None
        rows.append({
            "month": month, "account_id": d.key.subject, "kind": d.key.kind, "recipient": team.team_email,
            "cc": "; ".join(team.cc_emails), "subject": subject, "status": d.status,
            "location": d.location or d.detail, "no_data": basis == NO_DATA, "basis": basis,
            "data_through": through,
        })
        coverage_rows.append({"month": month, "account_id": d.key.subject, "kind": d.key.kind,
                              "basis": basis, "data_through": through,
                              "missing_days": cov.missing_days, "status": d.status})


@month_account_asset(
    group_name="reports",
    kinds={"jinja", "email"},
    # The trend chart: each account's totals of the year before the month (and the month itself).
    ins={"mom_changes": dg.AssetIn(partition_mapping=months_window(-(TREND_MONTHS - 1), 0))},
)
def emails(
    context: dg.AssetExecutionContext,
    mom_changes: pl.DataFrame,
    anomalies: pl.DataFrame,
    ai_insights: pl.DataFrame,
    forecasts: pl.DataFrame,
    optimization_opportunities: pl.DataFrame,
    settings: dg.ResourceParam[Settings],
    teams_registry: TeamsRegistry,
    warehouse: WarehouseResource,
    email_delivery: EmailDelivery,
    # Not called: requiring it makes every run of this job hold the installation's lease from its start.
    run_lease: RunLeaseResource,
):
    """One HTML report per team with only its own account's figures (and its top 3 savings), and, when the run covers every
    registered account of a month, one admin report with every account ranked by $ change, the
    organisation's addressable savings ranked by $ (and the accounts that could not be scanned), the delivery
    status of the team emails, and the account table as a CSV attachment. Delivered to the outbox (files)
    or by SMTP, as configured, through the send ledger: one report per account, report date, kind and
    recipient, ever. Before any report is built, the completeness gate (``completeness.py``) compares each
    account's days with data with the days the report claims: a report on data that end early or have gaps
    is held until ``incomplete_data_wait_days`` after the report date, then sent marked with the real
    data-through date; a "no data" or incomplete report is corrected once by a later complete run of the
    same report date. The metadata previews the admin report and one team report."""
    partitions = run_partitions(context)
    periods = run_periods(context, partitions)
    report_date = run_as_of(context).isoformat()
    teams = teams_registry.teams()
    by_id = teams_by_account(teams)
    ledger = open_send_ledger(warehouse.root, warehouse.s3_endpoint_url, warehouse.s3_region, warehouse.ledger_dir)
    channel = email_delivery.ledger_channel
    store = warehouse.store()
    tables = {"mom_changes": mom_changes, "anomalies": anomalies, "ai_insights": ai_insights,
              "forecasts": forecasts, "optimization_opportunities": optimization_opportunities}
    sender = email_delivery.sender_address()
    domain = sender.rpartition("@")[2] or "costagent.local"
    now = datetime.now(UTC)
    today, report_day, wait_days = now.date(), run_as_of(context), settings.incomplete_data_wait_days
    sent_before = sent_report_bases(store, report_day, list(periods))
    # Mail for the admins goes to global_admin_emails only: with none set nothing is mailed to them (never to
    # the sender, who is often a no-reply mailbox nobody reads). The outbox still gets the file to read.
    admin_to = ", ".join(settings.global_admin_emails) or (sender if email_delivery.mode == "outbox" else None)
    if admin_to is None:
        context.log.warning("global_admin_emails is empty: the admin report and failure notices are not mailed "
                            "(`costagent config set global_admin_emails finops@example.com`)")
    rows, team_results, admin_results, admin_locations, previews = [], [], [], [], {}
    held, coverage_rows = [], []
    try:
        with email_delivery.session(report_date) as session:
            for month, p in periods.items():
                in_run = {a for m, a in partitions if m == month}
                # The completeness gate: what each account's report may be built on (completeness.py). Nothing
                # built on missing days reaches a team or the admins.
                coverage = account_coverage(read_rollup(store, "daily", month), p, set(by_id) | in_run)
                gaps = {a: c for a, c in coverage.items() if not c.no_data and not c.complete}
                frames = report_frames(month, p, without_missing_days(tables, month, gaps), generated_at=now,
                                       dashboard_url_template=settings.datadog_dashboard_url,
                                       budget_alert_pcts=settings.budget_alert_pcts,
                                       daily=alert_chart_daily(store, month))
                # Delivered in chunks of accounts (build, claim, send, drop), so memory stays flat in the
                # account count; the delivery rows still follow the month's other rows, as before.
                outgoing, info, results, delivered_rows = [], {}, [], []
                ai_spend = ai_spend_of(store, month, [a for a in in_run if a in by_id and by_id[a].source in AI_SOURCES])
                for account_id in sorted(in_run):
                    team = by_id.get(account_id)
                    if team is None:
                        rows.append({"month": month, "account_id": account_id, "status": "skipped",
                                     "location": "account is not in the teams registry"})
                        continue
                    cov = coverage[account_id]
                    basis = report_basis(cov, report_day, today, wait_days)
                    if basis == WAITING:
                        why = (f"held: {cov.describe()} of {p.through}; a rerun of report date {report_date} (the "
                               "daily held_reports_retry schedule, or `costagent run --as-of`) sends it once the "
                               f"source has the data, and from {retry_date(report_day, wait_days)} it goes out "
                               "marked incomplete")
                        rows.append({"month": month, "account_id": account_id, "kind": "team",
                                     "recipient": team.team_email, "cc": "; ".join(team.cc_emails),
                                     "status": HELD, "location": why, "no_data": False, "basis": basis,
                                     "data_through": cov.data_through})
                        held.append((month, account_id, cov))
                        continue
                    kind, earlier, correction = "team", sent_before.get((month, account_id)), None
                    if earlier and earlier[0] in PROVISIONAL and basis == COMPLETE:
                        # The report sent earlier for this date said "no data" or stopped early: correct it, once.
                        correction, kind = correction_of(*earlier), CORRECTION

                    ai = ai_spend.get(account_id)

                    def prepare(ctx, cov=cov, basis=basis, correction=correction, ai=ai):
                        if ai and not ctx["no_data"]:
                            ctx["ai_spend"] = ai
                        if basis == INCOMPLETE:
                            ctx = mark_incomplete(ctx, cov)
                        if correction is not None:
                            ctx["correction"] = correction
                        return ctx

                    # One account's report failing is recorded (the admin report lists it); the others go out.
                    built = frames.section(account_id, "report",
                                           lambda f=frames, t=team, pr=prepare: _team_report(f, t, pr))
                    if built is None:
                        why = f"report unavailable: {frames.unavailable[account_id]['report']}"
                        context.log.warning(f"emails: {account_id}: {why}")
                        rows.append({"month": month, "account_id": account_id, "kind": "team", "status": "failed",
                                     "recipient": team.team_email, "location": why, "basis": basis,
                                     "data_through": cov.data_through})
                        continue
                    ctx, rendered = built
                    message = build_mime_message(rendered, sender=sender, to=team.team_email, cc=team.cc_emails,
                                                 message_id_domain=domain)
                    key = LedgerKey.of(report_date, kind, account_id, month, team.team_email, channel)
                    outgoing.append(Outgoing(key, message, rendered.html,
                                             name=f"{month}-{'correction' if kind == CORRECTION else 'team'}-{account_id}"))
                    info[account_id] = (team, rendered.subject, basis, cov)
                    if month not in previews:
                        previews[month] = {"team": rendered}
                    if len(outgoing) >= DELIVERY_CHUNK:
                        _deliver_team_emails(session, ledger, context.run_id, month, outgoing, info, sent_before,
                                             results, delivered_rows, coverage_rows)
                _deliver_team_emails(session, ledger, context.run_id, month, outgoing, info, sent_before,
                                     results, delivered_rows, coverage_rows)
                team_results += results
                rows += delivered_rows
                # The admin report needs every account: a run over some accounts only leaves it alone.
                if set(by_id) <= in_run:
                    ctx = frames.admin_context(teams)
                    ctx["incomplete_accounts"] = incomplete_accounts(gaps, {a: t.team_name for a, t in by_id.items()})
                    ctx["delivery"] = delivery_summary(email_delivery.mode, results, teams)
                    # The AI stage's executive summary and this run's AI cost (None without AI output).
                    ctx["ai"] = admin_ai_context(store, month, context.run_id)
                    ctx["run_cost"] = run_cost(ctx["ai"], store, month, context.run_id)
                    ctx["ai_spend_org"] = organisation_ai_spend(ai_spend, {a: t.team_name for a, t in by_id.items()})
                    rendered = render_admin_report(ctx)
                    table = admin_csv(ctx)
                    previews.setdefault(month, {})["admin"] = rendered
                    if admin_to is None:
                        admin_locations.append("not sent: no global_admin_emails")
                        continue
                    message = build_message(rendered, sender=sender, to=admin_to, message_id_domain=domain,
                                            attachments=[(f"costagent-{month}-accounts.csv", table, "text/csv")])
                    key = LedgerKey.of(report_date, "admin", "organisation", month, admin_to, channel)
                    admin = deliver_batch(
                        session, [Outgoing(key, message, rendered.html, f"{month}-admin", (("csv", table),))],
                        ledger, context.run_id,
                    )
                    admin_results += admin
                    admin_locations += [d.location or d.status for d in admin]
            notice = "no admin address" if admin_to is None else _notify_failures(
                session, ledger, context.run_id, team_results + admin_results, admin_results,
                report_date=report_date, month=next(iter(periods), ""), teams=teams, to=admin_to, sender=sender,
                domain=domain, channel=channel)
    except SmtpError as err:
        # Raised before anything was handed to the server: nothing claimed, nothing sent.
        raise dg.Failure(f"emails: {err}") from None

    if coverage_rows or held:
        held_rows = [{"month": m, "account_id": a, "kind": "team", "basis": WAITING, "data_through": c.data_through,
                      "missing_days": c.missing_days, "status": HELD} for m, a, c in held]
        log = pl.DataFrame(coverage_rows + held_rows).with_columns(
            pl.lit(report_day).alias("report_date"), pl.lit(context.run_id).alias("run_id"),
            pl.lit(now.isoformat(timespec="seconds")).alias("recorded_at"))
        append_log(store, "report_coverage", log)
    frame = conform(pl.DataFrame(rows), "emails").with_columns(
        pl.lit(datetime.fromisoformat(report_date).date()).alias("report_date")
    ) if rows else conform(pl.DataFrame(), "emails")
    written = frame.filter(pl.col("status") != "skipped")
    counts = status_counts(team_results)
    summary = run_summary(team_results + admin_results)
    # "partial" when an email of the run did not (certainly) arrive: the CLI's exit code, `costagent status`
    # and the run's tag in the UI all say so, where a green run would hide it.
    outcome = "partial" if is_partial(summary) else "complete"
    context.instance.add_run_tags(context.run_id, {DELIVERY_TAG: outcome})
    context.log.info(f"emails ({email_delivery.mode}): {summary_text(summary)}")
    first = next(iter(previews.values()), {})
    metadata = {
        "team_emails": written.height,
        **{f"team_{status}": n for status, n in counts.items()},
        "skipped": frame.height - written.height,
        "no_data_emails": int(written["no_data"].sum() or 0) if written.height else 0,
        "held_for_data": len(held),
        "held": dg.MetadataValue.md(
            markdown.table(held[:50], [("month", lambda h: h[0]), ("account", lambda h: h[1]),
                                       ("data", lambda h: h[2].describe())])
            + f"\n\nA rerun of report date {report_date} sends them once the source has the data; from "
            f"{retry_date(report_day, wait_days)} they go out marked incomplete."
        ) if held else "none",
        "corrections_sent": sum(1 for d in team_results if d.key.kind == CORRECTION and d.sent_now),
        "admin_reports": len(admin_results),
        "admin_status": ", ".join(d.status for d in admin_results) or "not sent (partial run)",
        "admin_report": admin_locations[0] if admin_locations else "not written (partial run)",
        "delivery": email_delivery.mode,
        "report_date": report_date,
        "ledger": dg.MetadataValue.path(f"{ledger.where}/{report_date}"),
        **{f"emails_{k}": n for k, n in summary.items()},
        "delivery_outcome": outcome,
        "failure_notice": notice,
        # Which emails did not (certainly) arrive: `costagent status` lists them; the admin report has them all.
        "undelivered": dg.MetadataValue.json([
            {"kind": d.key.kind, "subject": d.key.subject, "recipient": d.key.recipient, "status": d.status}
            for d in delivery_problems(team_results + admin_results)[:UNDELIVERED_LISTED]
        ]),
        "subjects": dg.MetadataValue.md(
            markdown.table(
                [(m, p["team"].subject) for m, p in previews.items() if "team" in p],
                [("month", lambda r: r[0]), ("first team subject", lambda r: r[1])],
            )
        ),
    }
    if "admin" in first:
        metadata["preview_admin"] = _preview(f"Subject: {first['admin'].subject}\n\n{first['admin'].text}")
    if "team" in first:
        metadata["preview_team"] = _preview(f"Subject: {first['team'].subject}\n\n{first['team'].text}")
    return run_output(context, frame, metadata=metadata)
