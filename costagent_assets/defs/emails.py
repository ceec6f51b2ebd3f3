"""emails: each team's report, and the organisation's report for the admins."""


from datetime import UTC, datetime

import dagster as dg
import polars as pl

from costagent_assets import markdown
from costagent_assets.ai_store import admin_ai_context
from costagent_assets.defs.partitions import (
    month_account_partitions,
    run_as_of,
    run_partitions,
    run_periods,
    single_run,
)
from costagent_assets.report_context import ReportFrames, teams_by_account
from costagent_assets.reporting import build_message, render_admin_report, render_team_report
from costagent_assets.resources.email_delivery import EmailDelivery
from costagent_assets.resources.home import CostagentHome
from costagent_assets.schemas import conform

DEFAULT_SENDER = "costagent@localhost"


@dg.asset(
    partitions_def=month_account_partitions,
    backfill_policy=single_run,
    group_name="reports",
    kinds={"jinja", "email"},
)
def emails(
    context: dg.AssetExecutionContext,
    mom_changes: pl.DataFrame,
    anomalies: pl.DataFrame,
    ai_insights: pl.DataFrame,
    costagent_home: CostagentHome,
    email_delivery: EmailDelivery,
):
    """One HTML report per team with only its own account's figures, and, when the run covers every
    registered account of a month, one admin report with every account ranked by $ change. Delivered
    to the outbox (files) or by SMTP, as configured; one report per account, report date and kind."""
    partitions = run_partitions(context)
    periods = run_periods(context, partitions)
    report_date = run_as_of(context).isoformat()
    settings = costagent_home.settings()
    teams = costagent_home.teams()
    by_id = teams_by_account(teams)
    now = datetime.now(UTC)
    rows, admin_locations, previews = [], [], {}
    for month, p in periods.items():
        frames = ReportFrames(month, p, mom_changes, anomalies, ai_insights, generated_at=now)
        in_run = {a for m, a in partitions if m == month}
        for account_id in sorted(in_run):
            team = by_id.get(account_id)
            if team is None:
                rows.append({"month": month, "account_id": account_id, "status": "skipped",
                             "location": "account is not in the teams registry"})
                continue
            ctx = frames.team_context(team)
            rendered = render_team_report(ctx)
            message = build_message(rendered, sender=DEFAULT_SENDER, to=team.team_email, cc=team.cc_emails)
            location = email_delivery.deliver(message, rendered.html, report_date=report_date,
                                              name=f"{month}-team-{account_id}")
            previews.setdefault(month, rendered.subject)
            rows.append({
                "month": month, "account_id": account_id, "kind": "team", "recipient": team.team_email,
                "cc": "; ".join(team.cc_emails), "subject": rendered.subject,
                "status": "written" if email_delivery.mode == "outbox" else "sent",
                "location": location, "no_data": ctx["no_data"],
            })
        # The admin report needs every account: a run over some accounts only leaves it alone.
        if set(by_id) <= in_run:
            # The AI stage's executive summary and this run's AI cost (ai_store; None without AI output).
            ai = admin_ai_context(costagent_home.store(), month, context.run_id)
            rendered = render_admin_report({**frames.admin_context(teams), "ai": ai})
            to = ", ".join(settings.global_admin_emails) or DEFAULT_SENDER
            message = build_message(rendered, sender=DEFAULT_SENDER, to=to)
            admin_locations.append(
                email_delivery.deliver(message, rendered.html, report_date=report_date, name=f"{month}-admin")
            )
    frame = conform(pl.DataFrame(rows), "emails").with_columns(
        pl.lit(datetime.fromisoformat(report_date).date()).alias("report_date")
    ) if rows else conform(pl.DataFrame(), "emails")
    written = frame.filter(pl.col("status") != "skipped")
    return dg.Output(
        frame,
        metadata={
            "team_emails": written.height,
            "skipped": frame.height - written.height,
            "no_data_emails": int(written["no_data"].sum() or 0) if written.height else 0,
            "admin_reports": len(admin_locations),
            "admin_report": dg.MetadataValue.path(admin_locations[0]) if admin_locations else "not written (partial run)",
            "delivery": email_delivery.mode,
            "report_date": report_date,
            "subjects": dg.MetadataValue.md(
                markdown.table(previews.items(), [("month", lambda r: r[0]), ("first subject", lambda r: r[1])])
            ),
        },
    )
