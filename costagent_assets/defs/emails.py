"""emails: each team's report, and the organisation's report for the admins."""


from datetime import UTC, datetime

import dagster as dg
import polars as pl

from costagent_assets import markdown
from costagent_assets.defs.partitions import (
    month_account_asset,
    months_window,
    run_as_of,
    run_partitions,
    run_periods,
)
from costagent_assets.delivery import Outgoing, deliver_batch, status_counts
from costagent_assets.insights.history import admin_ai_context
from costagent_assets.report_context import (
    TREND_MONTHS,
    ReportFrames,
    delivery_summary,
    report_frames,
    run_cost,
    teams_by_account,
)
from costagent_assets.reporting import (
    RenderedEmail,
    admin_csv,
    build_message,
    render_admin_report,
    render_team_report,
)
from costagent_assets.resources.email_delivery import EmailDelivery
from costagent_assets.resources.smtp import SmtpError
from costagent_assets.resources.teams_registry import TeamsRegistry
from costagent_assets.resources.warehouse import WarehouseResource
from costagent_assets.schemas import conform
from costagent_assets.send_ledger import LedgerKey, SendLedger
from costagent_assets.settings import Settings
from costagent_assets.teams.model import Team

PREVIEW_LINES = 60


def _preview(text: str) -> dg.MetadataValue:
    lines = text.splitlines()
    more = f"\n… {len(lines) - PREVIEW_LINES} more lines" if len(lines) > PREVIEW_LINES else ""
    return dg.MetadataValue.md("```\n" + "\n".join(lines[:PREVIEW_LINES]).replace("```", "'''") + more + "\n```")


def _team_report(frames: ReportFrames, team: Team) -> tuple[dict, RenderedEmail]:
    """One team's context and its rendered email."""
    ctx = frames.team_context(team)
    return ctx, render_team_report(ctx)


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
):
    """One HTML report per team with only its own account's figures (and its top 3 savings), and, when the run covers every
    registered account of a month, one admin report with every account ranked by $ change, the
    organisation's addressable savings ranked by $ (and the accounts that could not be scanned), the delivery
    status of the team emails, and the account table as a CSV attachment. Delivered to the outbox (files)
    or by SMTP, as configured, through the send ledger: one report per account, report date, kind and
    recipient, ever. The metadata previews the admin report and one team report."""
    partitions = run_partitions(context)
    periods = run_periods(context, partitions)
    report_date = run_as_of(context).isoformat()
    teams = teams_registry.teams()
    by_id = teams_by_account(teams)
    ledger = SendLedger(warehouse.ledger_path)
    store = warehouse.store()
    tables = {"mom_changes": mom_changes, "anomalies": anomalies, "ai_insights": ai_insights,
              "forecasts": forecasts, "optimization_opportunities": optimization_opportunities}
    sender = email_delivery.sender_address()
    domain = sender.rpartition("@")[2] or "costagent.local"
    now = datetime.now(UTC)
    rows, team_results, admin_results, admin_locations, previews = [], [], [], [], {}
    try:
        with email_delivery.session(report_date) as session:
            for month, p in periods.items():
                frames = report_frames(month, p, tables, generated_at=now,
                                       dashboard_url_template=settings.datadog_dashboard_url,
                                       budget_alert_pcts=settings.budget_alert_pcts)
                in_run = {a for m, a in partitions if m == month}
                outgoing, info = [], {}
                for account_id in sorted(in_run):
                    team = by_id.get(account_id)
                    if team is None:
                        rows.append({"month": month, "account_id": account_id, "status": "skipped",
                                     "location": "account is not in the teams registry"})
                        continue
                    # One account's report failing is recorded (the admin report lists it); the others go out.
                    built = frames.section(account_id, "report", lambda f=frames, t=team: _team_report(f, t))
                    if built is None:
                        why = f"report unavailable: {frames.unavailable[account_id]['report']}"
                        context.log.warning(f"emails: {account_id}: {why}")
                        rows.append({"month": month, "account_id": account_id, "kind": "team", "status": "failed",
                                     "recipient": team.team_email, "location": why})
                        continue
                    ctx, rendered = built
                    message = build_message(rendered, sender=sender, to=team.team_email, cc=team.cc_emails,
                                            message_id_domain=domain)
                    key = LedgerKey.of(report_date, "team", account_id, month, team.team_email)
                    outgoing.append(Outgoing(key, message, rendered.html, name=f"{month}-team-{account_id}"))
                    info[account_id] = (team, rendered.subject, ctx["no_data"])
                    if month not in previews:
                        previews[month] = {"team": rendered}
                results = deliver_batch(session, outgoing, ledger, context.run_id)
                team_results += results
                for d in results:
                    team, subject, no_data = info[d.key.subject]
                    rows.append({
                        "month": month, "account_id": d.key.subject, "kind": "team", "recipient": team.team_email,
                        "cc": "; ".join(team.cc_emails), "subject": subject, "status": d.status,
                        "location": d.location or d.detail, "no_data": no_data,
                    })
                # The admin report needs every account: a run over some accounts only leaves it alone.
                if set(by_id) <= in_run:
                    ctx = frames.admin_context(teams)
                    ctx["delivery"] = delivery_summary(email_delivery.mode, results, teams)
                    # The AI stage's executive summary and this run's AI cost (None without AI output).
                    ctx["ai"] = admin_ai_context(store, month, context.run_id)
                    ctx["run_cost"] = run_cost(ctx["ai"], store, month, context.run_id)
                    rendered = render_admin_report(ctx)
                    table = admin_csv(ctx)
                    to = ", ".join(settings.global_admin_emails) or sender
                    message = build_message(rendered, sender=sender, to=to, message_id_domain=domain,
                                            attachments=[(f"costagent-{month}-accounts.csv", table, "text/csv")])
                    key = LedgerKey.of(report_date, "admin", "organisation", month, to)
                    admin = deliver_batch(
                        session, [Outgoing(key, message, rendered.html, f"{month}-admin", (("csv", table),))],
                        ledger, context.run_id,
                    )
                    admin_results += admin
                    admin_locations += [d.location or d.status for d in admin]
                    previews.setdefault(month, {})["admin"] = rendered
    except SmtpError as err:
        # Raised before anything was handed to the server: nothing claimed, nothing sent.
        raise dg.Failure(f"emails: {err}") from None

    frame = conform(pl.DataFrame(rows), "emails").with_columns(
        pl.lit(datetime.fromisoformat(report_date).date()).alias("report_date")
    ) if rows else conform(pl.DataFrame(), "emails")
    written = frame.filter(pl.col("status") != "skipped")
    counts = status_counts(team_results)
    first = next(iter(previews.values()), {})
    metadata = {
        "team_emails": written.height,
        **{f"team_{status}": n for status, n in counts.items()},
        "skipped": frame.height - written.height,
        "no_data_emails": int(written["no_data"].sum() or 0) if written.height else 0,
        "admin_reports": len(admin_locations),
        "admin_status": ", ".join(d.status for d in admin_results) or "not sent (partial run)",
        "admin_report": admin_locations[0] if admin_locations else "not written (partial run)",
        "delivery": email_delivery.mode,
        "report_date": report_date,
        "ledger": dg.MetadataValue.path(str(ledger.root / report_date)),
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
    return dg.Output(frame, metadata=metadata)
