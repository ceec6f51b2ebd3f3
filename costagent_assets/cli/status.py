"""``costagent status``: the last run, the next scheduled run, and what the warehouse covers."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from costagent_assets.home import Home
from costagent_assets.run_parameters import RunParameters


def status_lines(home: Home, today: date) -> list[str]:
    """Human-readable status of an installation."""
    from costagent_assets.cli.runner import prepare_instance
    from costagent_assets.cli.schedule import schedule_lines
    from costagent_assets.defs.automation import weekly_cron
    from costagent_assets.resources.s3_warehouse import home_store
    from costagent_assets.settings import load_settings
    from costagent_assets.teams.registry import load_registry
    from costagent_assets.warehouse.store import stored_months

    settings = load_settings(home.settings_path)
    teams = load_registry(home.teams_path)
    lines = [f"home:        {home.root}", f"source:      {settings.source}   email: {settings.email_mode}",
             f"teams:       {len(teams)}"]
    lines += configured_lines(settings, os.environ)
    instance = prepare_instance(home)
    for dead, pid in mark_dead_runs(instance):
        lines.append(f"dead run:    {dead.job_name} run {dead.run_id[:8]}: its process (pid {pid}) is gone; "
                     "marked FAILURE (rerun it: `costagent run --as-of ...`)")
    runs = instance.get_runs(limit=1)
    if runs:
        run = runs[0]
        stats = instance.get_run_stats(run.run_id)
        ended = datetime.fromtimestamp(stats.end_time, UTC).strftime("%Y-%m-%d %H:%M UTC") if stats.end_time else "running"
        lines.append(f"last run:    {run.job_name} {run.status.value} ({ended}) run {run.run_id[:8]} "
                     f"as of {RunParameters.from_tags(run.tags).as_of or '?'}")
        lines += delivery_lines(instance)
    else:
        lines.append("last run:    none yet")
    # The next run only when the schedule is on and a daemon is alive to tick it.
    lines.extend(schedule_lines(instance, weekly_cron(settings)))
    store = home_store(home, settings)
    lines.append(f"warehouse:   {store.url('')}")
    months = stored_months(store, "raw_costs")
    if months:
        lines.append(f"coverage:    {months[0]} .. {months[-1]} ({len(months)} months)")
        accounts = [t.aws_account_id for t in teams]
        for m in months[-3:]:
            lines.append(f"  {m}: {coverage_line(store, m, accounts, today)}")
    else:
        lines.append("coverage:    nothing stored yet")
    return lines


# Where boto3 finds AWS credentials in the environment, in its own order (instance profiles and ~/.aws aside).
AWS_CREDENTIAL_VARIABLES = (("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"), ("AWS_PROFILE",),
                            ("AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN"),
                            ("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",), ("AWS_CONTAINER_CREDENTIALS_FULL_URI",))


def _yes_no(names: Sequence[str], environ: Mapping[str, str]) -> str:
    """"yes (A, B)" when every variable is set, else "no (A unset)": names only, never a value."""
    unset = [n for n in names if not environ.get(n)]
    return f"yes ({', '.join(names)})" if not unset else f"no ({', '.join(unset)} unset)"


def _aws_credentials(environ: Mapping[str, str]) -> str:
    for names in AWS_CREDENTIAL_VARIABLES:
        if all(environ.get(n) for n in names):
            return f"yes ({', '.join(names)})"
    return "not in the environment (an instance profile or ~/.aws may provide them; not checked)"


def configured_lines(settings, environ: Mapping[str, str]) -> list[str]:
    """The ``configured:`` block of ``costagent status``: whether the AI key, the source's credentials, SMTP,
    S3 and the admin addresses are set, naming the environment variable or setting. Only presence is
    looked at: no value is ever printed (nor its length)."""
    from costagent_assets.defs.resources import SMTP_ENVIRONMENT, SOURCE_ENVIRONMENT

    ai = _yes_no(("GEMINI_API_KEY",), environ) if settings.ai_enabled else "off (ai_enabled=false)"
    if settings.source in SOURCE_ENVIRONMENT:
        source = _yes_no(SOURCE_ENVIRONMENT[settings.source], environ)
    elif settings.source == "cost_explorer":
        source = f"AWS credentials {_aws_credentials(environ)}"
    elif settings.source == "focus":
        source = "yes (focus_path)" if settings.focus_path else "no (focus_path not set)"
    else:
        source = "yes (the demo needs no credentials)"
    smtp = _yes_no(SMTP_ENVIRONMENT, environ) if settings.email_mode == "smtp" else "not used (email_mode=outbox)"
    if settings.email_mode == "smtp" and environ.get("SMTP_USER"):
        smtp += "; login " + _yes_no(("SMTP_USER", "SMTP_PASSWORD"), environ)
    s3 = (f"AWS credentials {_aws_credentials(environ)}" if settings.warehouse_uri.startswith("s3://")
          else "not used (local warehouse)")
    admins = (f"yes ({len(settings.global_admin_emails)} in global_admin_emails)" if settings.global_admin_emails
              else "no (global_admin_emails empty: no admin report is mailed)")
    return ["configured:",
            f"  AI key:             {ai}",
            f"  source credentials: {source}",
            f"  SMTP:               {smtp}",
            f"  S3 warehouse:       {s3}",
            f"  admin addresses:    {admins}"]


def coverage_line(store, month: str, accounts: list[str], today: date) -> str:
    """``20 of 20 accounts with complete data`` or, when the source left some out, which and how many: the
    accounts whose days are all there (completeness.py), not the files stored (an account the source
    omitted still has a file, with no rows)."""
    from costagent_assets.completeness import account_coverage
    from costagent_assets.periods import default_as_of, period
    from costagent_assets.warehouse.rollups import read_rollup
    from costagent_assets.warehouse.store import read_table

    # Judged against the days the last load asked the source for (source_usage), else the month so far.
    asked = read_table(store, "source_usage", [month]).sort("recorded_at")
    through = asked["through_date"][-1] if asked.height else None
    p = period(month, through + timedelta(days=1) if through else default_as_of(month, today))
    coverage = account_coverage(read_rollup(store, "daily", month), p, accounts)
    complete = sum(c.complete for c in coverage.values())
    no_data = sorted(a for a, c in coverage.items() if c.no_data)
    partial = sorted(a for a, c in coverage.items() if not c.no_data and not c.complete)
    line = f"{complete} of {len(accounts)} accounts with complete data through {p.through}"
    if no_data:
        line += f"; {len(no_data)} without data ({', '.join(no_data[:5])}{', ...' if len(no_data) > 5 else ''})"
    if partial:
        line += f"; {len(partial)} with missing days ({', '.join(partial[:5])}{', ...' if len(partial) > 5 else ''})"
    return line


def run_pid(instance, run_id: str) -> int | None:
    """The process a run executes in: Dagster's "Executing steps in process (pid: N)" engine event says."""
    import dagster as dg

    records = instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.ENGINE_EVENT, limit=5).records
    for record in records:
        event = record.event_log_entry.dagster_event
        pid = (getattr(event.event_specific_data, "metadata", None) or {}).get("pid") if event else None
        if pid is not None:
            return int(getattr(pid, "value", pid))
    return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A pid the system gave to another program since: only a Python process can be running the run.
    cmdline = Path(f"/proc/{pid}/cmdline")
    return not cmdline.exists() or b"python" in cmdline.read_bytes() or b"dagster" in cmdline.read_bytes()


def mark_dead_runs(instance) -> list[tuple[object, int]]:
    """Runs still STARTED whose process is gone on this machine (killed with SIGKILL, a crash, a reboot):
    marked failed, so that `status` and the UI stop showing them as running. The daemon's run monitoring
    does this for the runs it launched; runs executed in the CLI's own process have no monitor but this.
    Returns the (run, pid) pairs marked."""
    import dagster as dg

    marked = []
    for run in instance.get_runs(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED]), limit=20):
        pid = run_pid(instance, run.run_id)
        if pid is None or pid == os.getpid() or _alive(pid):
            continue
        instance.report_run_failed(run, message=f"The process running this run (pid {pid}) is gone: marked "
                                                "failed by `costagent status`.")
        marked.append((run, pid))
    return marked


# Undelivered emails listed by `costagent status`; the admin report and the ledger have them all.
SHOWN_PROBLEMS = 10


def delivery_lines(instance) -> list[str]:
    """What the last run that sent emails delivered: complete or partial, its counts and, when partial,
    which emails have not (certainly) arrived."""

    from costagent_assets.cli.runner import delivery_counts, delivery_mode
    from costagent_assets.defs import run_metadata
    from costagent_assets.defs.emails import DELIVERY_TAG
    from costagent_assets.delivery import summary_text

    record = run_metadata.latest(instance, "emails")
    if record is None:
        return ["emails:      no run has sent emails yet"]
    event = record.event_log_entry.dagster_event
    counts = delivery_counts([event])
    if counts is None:
        return []
    run = instance.get_run_by_id(record.run_id)
    outcome = (run.tags.get(DELIVERY_TAG) if run else None) or "?"
    line = (f"emails:      {outcome} ({delivery_mode([event]) or '?'}), run {record.run_id[:8]}: "
            f"{summary_text(counts)}")
    if outcome != "partial" or run is None:
        return [line]
    lines = [line, "             not delivered (deferred ones are retried by the next run; unconfirmed ones "
             "are re-sent only by `costagent resend`):"]
    listed = record.asset_observation.metadata.get("undelivered")
    problems = list(listed.value) if listed is not None else []
    for p in problems[:SHOWN_PROBLEMS]:
        lines.append(f"               {p['kind']} {p['subject']} to {p['recipient']}: {p['status']}")
    if counts["deferred"] + counts["unconfirmed"] + counts["failed"] > SHOWN_PROBLEMS:
        lines.append("               ... and more: the admin report lists them all")
    return lines
