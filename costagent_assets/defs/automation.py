"""The weekly schedule and the jobs it runs: one ranged run per month over every account."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import dagster as dg
import polars as pl
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from costagent_assets.completeness import account_coverage
from costagent_assets.defs.partitions import make_key, month_account_partitions
from costagent_assets.delivery import Outgoing, deliver_batch
from costagent_assets.partition_keys import ACCOUNT_DIMENSION
from costagent_assets.periods import default_as_of, period, report_month, shift_month
from costagent_assets.reporting import build_message
from costagent_assets.resources.email_delivery import EmailDelivery
from costagent_assets.resources.s3_ledger import open_send_ledger
from costagent_assets.resources.warehouse import WarehouseResource
from costagent_assets.run_failures import run_failure_email
from costagent_assets.run_parameters import RunParameters
from costagent_assets.send_ledger import LedgerKey
from costagent_assets.settings import Settings
from costagent_assets.warehouse.rollups import read_rollup
from costagent_assets.warehouse.store import Store, read_table

WEEKDAYS = ["sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"]
REPORT_ASSETS = [
    "raw_costs", "service_breakdown", "mom_changes", "anomalies", "forecast_backtest", "forecasts", "ai_insights",
    "emails", "optimization_opportunities",
]
# History runs rebuild data and analysis: no emails, and no savings scan (it sees resources as they are now).
HISTORY_ASSETS = [a for a in REPORT_ASSETS if a not in ("emails", "optimization_opportunities")]
# AWS keeps revising a month's charges for a few days after it ends (credits, refunds, final
# usage), so the weekly run also refreshes the previous month early in the month. A week, so that
# exactly one weekly tick falls in the window whatever the schedule's day: every month's analysis
# is completed once with its final days.
LATE_CHARGES_DAYS = 7

# In-process execution: the multiprocess executor costs ~11 s of start-up per run on 2 cores, and all
# steps of a run share one process's memory anyway.
weekly_report_job = dg.define_asset_job(
    "weekly_report",
    selection=dg.AssetSelection.assets(*REPORT_ASSETS),
    partitions_def=month_account_partitions,
    executor_def=dg.in_process_executor,
    description="The whole graph for a month and all its accounts: data, analysis and the emails.",
)
cost_history_job = dg.define_asset_job(
    "cost_history",
    selection=dg.AssetSelection.assets(*HISTORY_ASSETS),
    partitions_def=month_account_partitions,
    executor_def=dg.in_process_executor,
    description="Everything but the emails: refreshes a month's data and analysis without mailing anyone.",
)


@dataclass(frozen=True)
class PlannedRun:
    """One run of the weekly plan: a job over one month and every account."""

    job_name: str
    month: str
    run_key: str
    tags: dict[str, str]


def range_tags(month: str, account_ids: list[str], last_month: str | None = None) -> dict[str, str]:
    """Tags that make one run cover ``month`` (through ``last_month``, if given) for every account: a
    rectangle over both dimensions, accounts in their insertion order."""
    return {
        ASSET_PARTITION_RANGE_START_TAG: str(make_key(month, account_ids[0])),
        ASSET_PARTITION_RANGE_END_TAG: str(make_key(last_month or month, account_ids[-1])),
    }


def plan_weekly_runs(as_of: date, account_ids: list[str], previous_month_missing: bool) -> list[PlannedRun]:
    """The runs of one weekly tick: the report month in full, and the previous month's data and
    analysis (no emails) when some of it was never loaded or when its charges may still change."""
    if not account_ids:
        return []
    month = report_month(as_of)
    runs = []
    late_charges = (as_of - date.fromisoformat(f"{month}-01")).days < LATE_CHARGES_DAYS
    if previous_month_missing or late_charges:
        previous = shift_month(month, -1)
        runs.append(
            PlannedRun(
                "cost_history",
                previous,
                f"weekly-{as_of.isoformat()}-{previous}-history",
                # It mails nobody: no AI calls.
                {**range_tags(previous, account_ids), **RunParameters(as_of=as_of, ai_off=True).to_tags()},
            )
        )
    runs.append(
        PlannedRun(
            "weekly_report",
            month,
            f"weekly-{as_of.isoformat()}-{month}-report",
            {**range_tags(month, account_ids), **RunParameters(as_of=as_of).to_tags()},
        )
    )
    return runs


def missing_previous_month(instance: dg.DagsterInstance, as_of: date, account_ids: list[str]) -> bool:
    """Whether some account has no materialized raw_costs for the month before the report month."""
    previous = shift_month(report_month(as_of), -1)
    done = instance.get_materialized_partitions(dg.AssetKey("raw_costs"))
    return any(str(make_key(previous, a)) not in done for a in account_ids)


def incomplete_previous_month(store: Store, as_of: date, account_ids: list[str]) -> list[str]:
    """The accounts whose stored raw_costs of the month before the report month lack days (or all of them):
    a source that left them out (an outage, a lag) has had a week to recover, so the weekly run loads that
    month again rather than comparing later weeks with a month that is missing accounts."""
    previous = shift_month(report_month(as_of), -1)
    coverage = account_coverage(read_rollup(store, "daily", previous), period(previous, default_as_of(previous, as_of)),
                                account_ids)
    return sorted(a for a, c in coverage.items() if not c.complete)


def previous_month_needs_loading(instance: dg.DagsterInstance, store: Store, as_of: date,
                                 account_ids: list[str]) -> bool:
    """Whether the weekly plan loads the previous month again: never loaded for some account, or
    stored without some account's data or days (see ``incomplete_previous_month``)."""
    return missing_previous_month(instance, as_of, account_ids) or bool(
        incomplete_previous_month(store, as_of, account_ids))


def weekly_cron(settings: Settings) -> str:
    """The cron expression of ``schedule_day`` at ``schedule_hour`` UTC."""
    return f"0 {settings.schedule_hour} * * {WEEKDAYS.index(settings.schedule_day)}"


def build_weekly_schedule(settings: Settings) -> dg.ScheduleDefinition:
    """The weekly schedule from the settings' day and hour (UTC); built with the definitions
    (``definitions.py``), from the same settings as the resources, never at import."""

    @dg.schedule(
        name="weekly_cost_report",
        cron_schedule=weekly_cron(settings),
        execution_timezone="UTC",
        job=weekly_report_job,
        default_status=dg.DefaultScheduleStatus.STOPPED,
        description=f"Every {settings.schedule_day.title()} at {settings.schedule_hour:02d}:00 UTC.",
    )
    def weekly_cost_report(context: dg.ScheduleEvaluationContext, warehouse: WarehouseResource):
        as_of = context.scheduled_execution_time.date()
        accounts = list(context.instance.get_dynamic_partitions(ACCOUNT_DIMENSION))
        if not accounts:
            return dg.SkipReason("No teams registered: `costagent teams import FILE` adds them.")
        plan = plan_weekly_runs(
            as_of, accounts, previous_month_needs_loading(context.instance, warehouse.store(), as_of, accounts))
        # Run keys make a tick idempotent: re-evaluating it never launches the same run twice.
        return [dg.RunRequest(run_key=r.run_key, job_name=r.job_name, tags=r.tags) for r in plan]

    return weekly_cost_report



def held_report_dates(store: Store, today: date) -> list[date]:
    """Report dates (of this month's and last month's reports) with team reports the completeness gate is
    holding: each needs a rerun to find the data, or to send them marked incomplete once past the deadline."""
    months = [shift_month(report_month(today), -1), report_month(today)]
    emails = read_table(store, "emails", months)
    held = emails.filter(pl.col("status") == "held")
    return sorted(set(held["report_date"].to_list()))


def build_held_reports_schedule(settings: Settings) -> dg.ScheduleDefinition:
    """Every day at ``schedule_hour``: rerun the report of each date with held team reports (the same
    ranged run as the weekly tick, with that report date), so that a report waiting for its data goes out
    as soon as the source has them, or marked incomplete once ``incomplete_data_wait_days`` have passed.
    A rerun sends nothing twice (the send ledger)."""

    @dg.schedule(
        name="held_reports_retry",
        cron_schedule=f"0 {settings.schedule_hour} * * *",
        execution_timezone="UTC",
        job=weekly_report_job,
        default_status=dg.DefaultScheduleStatus.STOPPED,
        description=f"Daily at {settings.schedule_hour:02d}:00 UTC, only when team reports wait for source data.",
    )
    def held_reports_retry(context: dg.ScheduleEvaluationContext, warehouse: WarehouseResource):
        today = context.scheduled_execution_time.date()
        accounts = list(context.instance.get_dynamic_partitions(ACCOUNT_DIMENSION))
        dates = held_report_dates(warehouse.store(), today) if accounts else []
        if not dates:
            return dg.SkipReason("No team report is waiting for source data.")
        return [
            dg.RunRequest(
                run_key=f"held-{d.isoformat()}-retry-{today.isoformat()}", job_name="weekly_report",
                tags={**range_tags(report_month(d), accounts), **RunParameters(as_of=d).to_tags()},
            )
            for d in dates
        ]

    return held_reports_retry


def build_failure_sensor(settings: Settings) -> dg.RunFailureSensorDefinition:
    """A sensor that emails the admins once per failed costagent run, through the same delivery and send
    ledger as the reports (on by default: it runs whenever the daemon does)."""
    @dg.run_failure_sensor(
        name="run_failure_email",
        monitored_jobs=[weekly_report_job, cost_history_job],
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Emails the admins (global_admin_emails) when a weekly or history run fails.",
    )
    def run_failure_email_sensor(
        context: dg.RunFailureSensorContext, email_delivery: EmailDelivery, warehouse: WarehouseResource
    ):
        run = context.dagster_run
        errors = [f"{e.step_key}: {e.event_specific_data.error.message.strip()}"
                  for e in context.get_step_failure_events() if e.event_specific_data.error]
        if not errors and context.failure_event.message:
            errors = [context.failure_event.message]
        start = run.tags.get(ASSET_PARTITION_RANGE_START_TAG, "").split("|")[-1]
        end = run.tags.get(ASSET_PARTITION_RANGE_END_TAG, "").split("|")[-1]
        parameters = RunParameters.from_tags(run.tags)
        what = f"months {start}..{end}" if start != end else f"month {start}"
        what += f", launched by {parameters.trigger.replace('_', ' ')}"
        rendered = run_failure_email(run.job_name, run.run_id, what, errors, f"{settings.ui_url}/runs/{run.run_id}")
        sender = email_delivery.sender_address()
        to = ", ".join(settings.global_admin_emails) or (sender if email_delivery.mode == "outbox" else None)
        if to is None:  # never to the sender, a mailbox nobody reads: no admins, no notice, and the log says so
            context.log.warning(f"run {run.run_id[:8]} failed; no failure notice mailed: global_admin_emails is empty")
            return
        # Keyed by the run's creation day and id: the ledger sends each run's notice once, whatever the cursor.
        record = context.instance.get_run_record_by_id(run.run_id)
        day = record.create_timestamp.date().isoformat() if record else "unknown"
        key = LedgerKey.of(day, "run_failure", run.run_id, end or "-", to, email_delivery.ledger_channel)
        message = build_message(rendered, sender=sender, to=to,
                                message_id_domain=sender.rpartition("@")[2] or "costagent.local")
        with email_delivery.session(day) as session:
            (result,) = deliver_batch(session, [Outgoing(key, message, rendered.html, f"run-failure-{run.run_id[:8]}")],
                                      open_send_ledger(warehouse.root, warehouse.s3_endpoint_url,
                                                       warehouse.s3_region, warehouse.ledger_dir), run.run_id)
        context.log.info(f"failure notice of run {run.run_id[:8]} to {to}: {result.status}")

    return run_failure_email_sensor
