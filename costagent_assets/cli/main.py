"""The ``costagent`` command: what the Dagster UI does not do (teams, settings, SQL, previews) and the
weekly job from a shell. Scripts rely on these names and on the exit codes (0 ok, 1 run failed, 2 bad input, 3 the run finished
but some emails were not delivered, 4 another run holds the installation's run lease)."""

from __future__ import annotations

import argparse
import csv
import errno
import io
import json
import os
import re
import shutil
import signal
import sqlite3
import sys
from datetime import UTC, date, datetime
from pathlib import Path

from costagent_assets.home import Home, InstanceConfigError, get_home

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2
EXIT_PARTIAL, EXIT_BUSY = 3, 4


# The query `costagent demo` suggests: this month only, the columns a reader wants, rounded to fit a terminal.
FIRST_QUERY = ("select team_name, round(mtd_usd) as mtd, round(change_usd) as change, round(change_pct, 1) as pct "
               "from account_months where month = (select max(month) from account_months) "
               "order by change_usd desc limit 10")


def _today() -> date:
    return datetime.now(UTC).date()


def _as_of(text: str | None) -> date:
    if not text:
        return _today()
    try:
        as_of = date.fromisoformat(text)
    except ValueError:
        raise SystemExit(_fail(f"--as-of must be a date like 2026-11-23, got {text!r}")) from None
    problem = as_of_problem(as_of, _today())
    if problem:
        raise SystemExit(_fail(problem))
    return as_of


def as_of_problem(as_of: date, today: date) -> str | None:
    """Why ``as_of`` cannot be a report date, or None: a date after today would report days that have not
    happened (every team mailed "no cost data"), one before the first month has no partition to report."""
    from costagent_assets.defs.partitions import FIRST_MONTH
    from costagent_assets.periods import report_month

    if as_of > today:
        return f"--as-of {as_of} is after today ({today} UTC): a report can only cover days that have passed"
    if report_month(as_of) < FIRST_MONTH:
        return (f"--as-of {as_of} reports on {report_month(as_of)}, before the first month {FIRST_MONTH}: "
                f"the earliest report date is {FIRST_MONTH}-02")
    return None


def _month_arg(text: str) -> str:
    try:
        datetime.strptime(text, "%Y-%m")
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a month like 2026-11, got {text!r}") from None
    return text


def _positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text!r}")
    return int(text)


def _fail(message: str, code: int = EXIT_BAD_INPUT) -> int:
    print(f"costagent: {message}", file=sys.stderr)
    return code


def _teams(home: Home):
    from costagent_assets.teams.registry import load_registry

    return load_registry(home.teams_path)


def _report_runs(outcomes) -> int:
    from costagent_assets.delivery import summary_text

    for o in outcomes:
        state = "ok" if o.success else "FAILED"
        state = "PARTIAL" if o.partial else state
        extra = f" (failed steps: {', '.join(o.failed_steps)})" if o.failed_steps else ""
        print(f"  {o.job_name:<15} {o.month}  {state:<7} {o.seconds:6.1f} s  run {o.run_id[:8]}{extra}")
        if o.delivery is not None:
            print(f"  {'':<15} emails ({o.delivery_mode}): {summary_text(o.delivery)}")
    if not outcomes or not all(o.success for o in outcomes):
        return EXIT_FAILED
    return EXIT_PARTIAL if any(o.partial for o in outcomes) else EXIT_OK


def _settings(home: Home):
    from costagent_assets.settings import load_settings

    return load_settings(home.settings_path)


def _store(home: Home):
    from costagent_assets.resources.s3_warehouse import home_store

    return home_store(home, _settings(home))


def _refresh_duckdb(home: Home) -> None:
    from costagent_assets.resources.s3_warehouse import home_store
    from costagent_assets.warehouse.views import refresh_database_file

    try:
        settings = _settings(home)
        refresh_database_file(home.duckdb_path, home_store(home, settings), [t.to_dict() for t in _teams(home)],
                              settings.budget_alert_pcts)
    except Exception as exc:  # a user holding the file open in the DuckDB CLI must not fail the run
        print(f"  note: could not refresh {home.duckdb_path}: {exc}", file=sys.stderr)


def _source_problem(home: Home, emails: bool = True) -> str | None:
    """Why the configured source (or, with ``emails``, the delivery) cannot run, or None."""
    from costagent_assets.defs.resources import delivery_setup_problems, source_setup_problems

    settings = _settings(home)
    problems = source_setup_problems(settings, os.environ)
    if emails:
        problems += delivery_setup_problems(settings, os.environ)
    return "; ".join(problems) or None


def _run(home: Home, as_of: date, team: str | None = None) -> int:
    from costagent_assets.cli.runner import prepare_instance, run_weekly, sync_account_partitions

    teams = _teams(home)
    if not teams:
        return _fail("no teams registered: run `costagent teams import FILE` (or `costagent demo`)")
    if team is not None and team not in {t.aws_account_id for t in teams}:
        return _fail(f"account {team} is not in the teams registry (`costagent teams list`)")
    problem = _source_problem(home)
    if problem:
        return _fail(problem)
    settings = _settings(home)
    if settings.email_mode == "smtp" and not settings.global_admin_emails:
        print("costagent: warning: global_admin_emails is empty, so no admin report or failure notice is mailed "
              "(`costagent config set global_admin_emails finops@example.com`)", file=sys.stderr)
    instance = prepare_instance(home)
    sync_account_partitions(instance, [t.aws_account_id for t in teams])
    if team is not None:
        print(f"costagent: weekly run as of {as_of} for account {team} only (home {home.root})")
    else:
        print(f"costagent: weekly run as of {as_of} for {len(teams)} accounts (home {home.root})")
    code = _report_runs(run_weekly(instance, as_of, [t.aws_account_id for t in teams],
                                   only=[team] if team is not None else None))
    _refresh_duckdb(home)
    _report_held(home, as_of)
    return code


def _report_held(home: Home, as_of: date) -> None:
    """Say which team reports the completeness gate held back, why, and when they go out."""
    import polars as pl

    from costagent_assets.periods import report_month
    from costagent_assets.warehouse.store import read_table

    emails = read_table(_store(home), "emails", [report_month(as_of)])
    held = emails.filter((pl.col("report_date") == as_of) & (pl.col("status") == "held"))
    if held.height:
        print(f"  {held.height} team report{'s' if held.height != 1 else ''} held, waiting for complete source data:")
        for account_id, why in held.select("account_id", "location").head(10).iter_rows():
            print(f"    {account_id}: {why}")
        if held.height > 10:
            print(f"    ... and {held.height - 10} more (costagent sql \"select * from emails where status = 'held'\")")


def _demo_history(home: Home, as_of: date, months: int) -> int:
    """Load the ``months`` months before the weekly run's two (no emails, no AI), so that the first
    reports already show a forecast track record and a trend."""
    from costagent_assets.cli.runner import backfill, prepare_instance, sync_account_partitions
    from costagent_assets.periods import report_month, shift_month

    teams = _teams(home)
    instance = prepare_instance(home)
    sync_account_partitions(instance, [t.aws_account_id for t in teams])
    last = shift_month(report_month(as_of), -2)
    first = shift_month(last, -(months - 1))
    print(f"costagent: loading the demo's history {first}..{last} (forecast track record)")
    return _report_runs(backfill(instance, first, last, as_of))


def cmd_demo(args, home: Home) -> int:
    """Set up the demo organisation (if this home has no teams) and run the weekly job."""
    from costagent_assets.demo import organisation as demo
    from costagent_assets.demo.ai_accounts import demo_ai_teams
    from costagent_assets.settings import load_settings, save_settings, with_setting
    from costagent_assets.teams.model import Team
    from costagent_assets.teams.registry import save_registry

    home.ensure()
    settings = load_settings(home.settings_path)
    if args.accounts:
        settings = with_setting(settings, "demo_accounts", str(args.accounts))
    if args.ai_accounts is not None:
        settings = with_setting(settings, "demo_ai_accounts", str(args.ai_accounts))
    if settings.source != "demo":
        return _fail(f"this home uses source={settings.source}; `costagent demo` needs an empty or demo home")
    fresh = not _teams(home) or bool(args.accounts) or args.ai_accounts is not None
    if fresh:
        teams = [Team.from_dict(t) for t in demo.demo_teams(settings.demo_accounts, seed=settings.demo_seed)
                 + demo_ai_teams(settings.demo_ai_accounts)]
        save_registry(home.teams_path, teams)
        if not settings.global_admin_emails:
            settings = with_setting(settings, "global_admin_emails", "finops@demo.costagent.example")
        save_settings(home.settings_path, settings)
        print(f"costagent: demo organisation with {len(teams)} accounts written to {home.teams_path}")
    as_of = _as_of(args.as_of)
    if fresh and args.history_months:
        code = _demo_history(home, as_of, args.history_months)
        if code != EXIT_OK:
            return code
    code = _run(home, as_of)
    outbox = home.outbox_dir / as_of.isoformat()
    admin = sorted(outbox.glob("*-admin.html"))
    print(f"\n  outbox:        {outbox} ({len(list(outbox.glob('*-team-*.eml')))} team emails)")
    print(f"  admin report:  {admin[-1] if admin else 'not written'}")
    print(f"  warehouse:     {_store(home).url('')}")
    print(f"  SQL:           costagent sql \"{FIRST_QUERY}\"")
    print(f"  DuckDB file:   {home.duckdb_path}")
    return code


def cmd_run(args, home: Home) -> int:
    """The weekly job for the configured source (``--team``: one account's analysis and email only)."""
    return _run(home, _as_of(args.as_of), args.team)


def _ledger(home: Home, settings):
    """The send ledger of an installation (beside its warehouse)."""
    from costagent_assets.resources.s3_ledger import open_send_ledger
    from costagent_assets.resources.s3_warehouse import ledger_dir, warehouse_root

    return open_send_ledger(warehouse_root(home, settings), settings.s3_endpoint_url, settings.s3_region,
                            str(ledger_dir(home, settings)))


def _ledger_channel(settings) -> str:
    """The ledger channel of the configured ``email_mode``."""
    from costagent_assets.send_ledger import MAIL, OUTBOX

    return OUTBOX if settings.email_mode == "outbox" else MAIL


def cmd_resend(args, home: Home) -> int:
    """Send a week's emails again on purpose: releases their ledger entries, then runs that week."""
    from costagent_assets.cli.runner import installation_lease, prepare_instance
    from costagent_assets.run_lease import hold
    from costagent_assets.send_ledger import MAIL

    week = _as_of(args.week)
    settings = _settings(home)
    known = {t.aws_account_id for t in _teams(home)}
    unknown = sorted(set(args.team or ()) - known)
    if unknown:
        return _fail(f"--team {', '.join(unknown)}: not in the teams registry (`costagent teams list`)")
    channel = _ledger_channel(settings)
    ledger = _ledger(home, settings)
    chosen = [e for e in ledger.entries(week.isoformat(), channel)
              if not args.team or (e.key.kind == "team" and e.key.subject in args.team)]
    what = "by mail" if channel == MAIL else "to the outbox"
    if not chosen:
        print(f"nothing to re-send: the ledger ({ledger.where}) has no email of the week of {week} {what}"
              + (f" for {', '.join(args.team)}" if args.team else "") + "; `costagent run` sends what was never sent")
        return EXIT_OK
    n = len(chosen)
    print(f"{'re-sending' if args.yes else 'would re-send'} {n} email{'s' if n != 1 else ''} of the week of "
          f"{week} {what}, then run that week (which also sends any of its emails not sent yet):")
    for e in chosen:
        print(f"  {e.key.kind:<5} {e.key.subject:<13} {e.key.month}  to {e.key.recipient:<40} "
              f"was {e.status} (run {e.run_id[:8]}, {e.claimed_at})")
    if not args.yes:
        print("nothing changed; add --yes to do it")
        return EXIT_OK
    problem = _source_problem(home)
    if problem:
        return _fail(problem)
    # Under the lease: no run may be sending these while their entries are dropped.
    with hold(installation_lease(prepare_instance(home)), f"costagent resend --week {week}"):
        for e in chosen:
            ledger.release(e.key)
        return _run(home, week)


def _months_outside_partitions(first: str, last: str) -> str | None:
    """Why months ``first``..``last`` cannot be loaded (outside the month partitions), or None."""
    from costagent_assets.defs.partitions import FIRST_MONTH

    current = _today().strftime("%Y-%m")  # the month in progress is the last partition (end_offset=1)
    if first < FIRST_MONTH:
        return (f"--from {first} is before the first month partition, {FIRST_MONTH}: nothing is changed. "
                f"Load from {FIRST_MONTH}, or move FIRST_MONTH in costagent_assets/defs/partitions.py back to "
                "your sources' first month (every installation then lists the months from there)")
    if last > current:
        return f"--to {last} is after the current month, {current}: nothing is changed"
    return None


def cmd_backfill(args, home: Home) -> int:
    """Past months for every account, oldest first, several months per ranged run."""
    from costagent_assets.cli.runner import backfill, prepare_instance, sync_account_partitions

    if args.to < args.from_:
        return _fail("--to must not be before --from")
    problem = _months_outside_partitions(args.from_, args.to)
    if problem:
        return _fail(problem)
    teams = _teams(home)
    if not teams:
        return _fail("no teams registered")
    problem = _source_problem(home, emails=args.with_emails)
    if problem:
        return _fail(problem)
    instance = prepare_instance(home)
    sync_account_partitions(instance, [t.aws_account_id for t in teams])
    print(f"costagent: backfill {args.from_}..{args.to} for {len(teams)} accounts"
          + (" (with emails)" if args.with_emails else " (no emails)"))
    code = _report_runs(backfill(instance, args.from_, args.to, _today(), with_emails=args.with_emails,
                                 months_per_run=args.months_per_run))
    _refresh_duckdb(home)
    return code


def cmd_teams(args, home: Home) -> int:
    """List, import, add, update and remove teams; the account partitions follow."""
    from costagent_assets.teams.importing import seed_notes
    from costagent_assets.teams.model import Team, TeamValidationError
    from costagent_assets.teams.registry import (
        add_team,
        import_teams,
        remove_team,
        save_registry,
        update_team,
    )

    teams = _teams(home)
    try:
        if args.teams_cmd == "list":
            if args.json:
                print(json.dumps([t.to_dict() for t in teams], indent=2))
            else:
                for t in teams:
                    budget = f"${t.monthly_budget:,.0f}" if t.monthly_budget else "-"
                    print(f"{t.aws_account_id}  {t.team_name:<32} {t.team_email:<40} {budget}")
                print(f"{len(teams)} teams")
            return EXIT_OK
        if args.teams_cmd == "import":
            home.ensure()
            result = import_teams(home.teams_path, Path(args.file), replace=args.replace)
            teams = result.teams
            for note in seed_notes(Path(args.file)):
                print(f"note: {note}")
            print(f"imported {args.file}: {len(result.added)} added, {len(result.updated)} updated, "
                  f"{len(result.removed)} removed, {len(result.unchanged)} unchanged")
        elif args.teams_cmd == "add":
            team = Team.from_dict({"team_name": args.name, "aws_account_id": args.account, "team_email": args.email,
                                   "cc_emails": args.cc or [], "monthly_budget": args.budget,
                                   "anomaly_threshold_pct": args.threshold, "anomaly_min_usd": args.floor,
                                   "source": args.source})
            teams = add_team(teams, team)
            home.ensure()
            save_registry(home.teams_path, teams)
            print(f"added {team.aws_account_id} ({team.team_name})")
        elif args.teams_cmd == "update":
            changes = {k: v for k, v in {"team_name": args.name, "team_email": args.email, "cc_emails": args.cc,
                                         "monthly_budget": args.budget, "anomaly_threshold_pct": args.threshold,
                                         "anomaly_min_usd": args.floor, "source": args.source}.items() if v is not None}
            teams = update_team(teams, args.account_id, **changes)
            save_registry(home.teams_path, teams)
            print(f"updated {args.account_id}")
        elif args.teams_cmd == "remove":
            teams = remove_team(teams, args.account_id)
            save_registry(home.teams_path, teams)
            print(f"removed {args.account_id} (its stored history stays in the warehouse)")
    except TeamValidationError as exc:
        return _fail(str(exc))
    except (KeyError, ValueError) as exc:
        return _fail(str(exc.args[0]) if exc.args else str(exc))
    from costagent_assets.cli.runner import prepare_instance, sync_account_partitions

    added, removed = sync_account_partitions(prepare_instance(home), [t.aws_account_id for t in teams])
    if added or removed:
        print(f"account partitions: {len(added)} added, {len(removed)} removed")
    return EXIT_OK


def cmd_config(args, home: Home) -> int:
    """Show or change settings; invalid values are refused with what is allowed."""
    from costagent_assets.settings import (
        SettingError,
        focus_path_problem,
        load_settings,
        save_settings,
        setting_help,
        setting_name,
        settings_as_dict,
        with_setting,
    )

    try:
        settings = load_settings(home.settings_path)
        if args.config_cmd == "set":
            settings = with_setting(settings, args.key, args.value)
            if setting_name(args.key) == "focus_path" and focus_path_problem(settings.focus_path):
                return _fail(focus_path_problem(settings.focus_path))
            home.ensure()
            save_settings(home.settings_path, settings)
            # The key as stored: "Schedule-Hour" is accepted and names schedule_hour.
            name = setting_name(args.key)
            print(f"{name} = {json.dumps(settings_as_dict(settings)[name])}")
            if name in ("schedule_day", "schedule_hour"):
                print("the schedule picks this up when the code location reloads (restart `costagent ui`)")
            return EXIT_OK
    except SettingError as exc:
        return _fail(str(exc))
    values = settings_as_dict(settings)
    if args.json:
        print(json.dumps(values, indent=2))
    else:
        for key, value in values.items():
            print(f"{key:<24} {json.dumps(value):<36} {setting_help(key)}")
    return EXIT_OK


def cmd_anomalies(args, home: Home) -> int:
    """Mark an anomaly as expected or a false positive (stored in the warehouse), or list the marks."""
    from costagent_assets.feedback import WHOLE_ACCOUNT, acknowledge_stored, read_feedback, record_feedback

    if args.anomalies_cmd == "list":
        marks = read_feedback(_store(home))
        for r in marks.iter_rows(named=True):
            print(f"{r['month']}  {r['account_id']}  {r['service'] or WHOLE_ACCOUNT:<40} {r['feedback']:<15} "
                  f"{r['note'] or ''}")
        print(f"{marks.height} marks")
        return EXIT_OK
    try:
        home.ensure()
        record_feedback(_store(home), args.account_id, args.service, args.month, args.as_, args.note)
    except ValueError as exc:
        return _fail(str(exc))
    stored = acknowledge_stored(_store(home), args.account_id, args.month)
    service = None if args.service.strip() == WHOLE_ACCOUNT else args.service.strip()
    matched = (
        stored is not None
        and stored.filter(
            (stored["service"] == service) if service is not None else stored["service"].is_null()
        ).height
        > 0
    )
    what = "the stored anomaly is marked" if matched else "no stored anomaly matches yet; the mark applies when one does"
    print(f"marked {args.account_id} {args.service} {args.month} as {args.as_}: {what}, and it is not alerted again")
    return EXIT_OK


def cmd_sql(args, home: Home) -> int:
    """Run SQL over the warehouse views (in memory, so an open DuckDB CLI never blocks it)."""
    import duckdb

    from costagent_assets.warehouse.views import connect, read_only_problem, views_needed

    # Read-only twice over: statements that are not queries are refused before anything runs, and the
    # connection itself cannot reach outside the warehouse, install extensions or change its settings.
    problem = read_only_problem(args.query)
    if problem:
        return _fail(problem)
    con = connect(_store(home), [t.to_dict() for t in _teams(home)], only=views_needed(args.query),
                  budget_alert_pcts=_settings(home).budget_alert_pcts, read_only=True)
    try:
        cursor = con.execute(args.query)
    except duckdb.PermissionException as exc:
        return _fail(f"refused: costagent sql reads only the warehouse ({exc})")
    except duckdb.Error as exc:
        return _fail(f"SQL error: {exc}")
    columns = [d[0] for d in cursor.description or []]
    rows = cursor.fetchall()
    if args.format == "json":
        print(json.dumps([dict(zip(columns, r, strict=True)) for r in rows], indent=2, default=str))
    elif args.format == "csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows(rows)
        sys.stdout.write(out.getvalue())
    else:
        cells = [[("" if v is None else str(v)) for v in r] for r in rows]
        widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
        print("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)))
        print("  ".join("-" * w for w in widths))
        for r in cells:
            print("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)))
        print(f"({len(rows)} row{'s' if len(rows) != 1 else ''})")
    return EXIT_OK


def _refresh_one_team(home: Home, account_id: str, month: str | None) -> str | None:
    """``preview team --ai``: analyse one account now with Gemini (its ``ai_insights`` partition
    materialized alone, so the UI records the run); returns what went wrong, if anything. Without a key
    or with AI off it says so and the stored, computed summary is previewed."""
    from costagent_assets.cli.preview import stored_report_date, team_of
    from costagent_assets.cli.runner import prepare_instance, refresh_ai_insights, sync_account_partitions

    team_of(home, account_id)
    month, as_of = stored_report_date(home, month)
    reason = ("AI is switched off in the settings (ai_enabled)" if not _settings(home).ai_enabled
              else "no GEMINI_API_KEY is set" if not os.environ.get("GEMINI_API_KEY") else None)
    if reason:
        print(f"costagent: {reason}: no analysis was made; previewing the computed summary stored for "
              f"{month}", file=sys.stderr)
        return None
    instance = prepare_instance(home)
    sync_account_partitions(instance, [t.aws_account_id for t in _teams(home)])
    outcome = refresh_ai_insights(instance, month, account_id, as_of)
    if not outcome.success:
        return (f"the ai_insights run for {account_id} ({month}) failed at {', '.join(outcome.failed_steps)}; "
                f"run {outcome.run_id} in the Dagster UI has the details")
    print(f"costagent: ai_insights refreshed for {account_id} ({month}) in {outcome.seconds:.1f}s, run "
          f"{outcome.run_id}", file=sys.stderr)
    return None


def cmd_preview(args, home: Home) -> int:
    """Render a team's or the admin report from the warehouse, without sending anything."""
    from costagent_assets.cli.preview import PreviewError, preview_admin, preview_team

    try:
        if args.kind == "team" and args.ai:
            problem = _refresh_one_team(home, args.account_id, args.month)
            if problem:
                return _fail(problem, EXIT_FAILED)
        if args.kind == "team":
            rendered = preview_team(home, args.account_id, args.month)
        else:
            rendered = preview_admin(home, args.month)
    except PreviewError as exc:
        return _fail(str(exc))
    if args.out:
        Path(args.out).write_text(rendered.html if args.out.endswith(".html") else rendered.text, encoding="utf-8")
        print(f"Subject: {rendered.subject}\nwritten to {args.out}")
    else:
        print(f"Subject: {rendered.subject}\n")
        print(rendered.text)
    return EXIT_OK


def cmd_status(args, home: Home) -> int:
    """The last run, the next scheduled run, and the data coverage."""
    from costagent_assets.cli.status import status_lines

    for line in status_lines(home, _today()):
        print(line)
    return EXIT_OK


def cmd_instance(args, home: Home) -> int:
    """Create (or, with --force, rewrite) the Dagster instance's dagster.yaml from a shipped profile, or show
    which one is in use. The file is the operator's: nothing else ever rewrites it."""
    from costagent_assets.cli.runner import (
        instance_config_path,
        missing_instance_env,
        prepare_instance,
        write_instance_config,
    )

    path = instance_config_path(home)
    if args.instance_cmd == "init":
        if not write_instance_config(home, args.profile, force=args.force):
            return _fail(f"{path} exists (it is yours to edit); --force replaces it with the {args.profile} profile")
        print(f"wrote {path} ({args.profile} profile)")
        missing = missing_instance_env(path.read_text(encoding="utf-8"), os.environ)
        if missing:
            print(f"set {', '.join(missing)} in the environment (the services' EnvironmentFile) before using it")
            return EXIT_OK
    instance = prepare_instance(home)
    print(f"instance:    {path}")
    print(f"runs:        {type(instance.run_storage).__name__}")
    print(f"events:      {type(instance.event_log_storage).__name__}")
    print(f"schedules:   {type(instance.schedule_storage).__name__}")
    return EXIT_OK


def cmd_schedule(args, home: Home) -> int:
    """Turn the weekly schedule on or off in the instance (as the UI's toggle), or show whether it will tick."""
    from costagent_assets.cli.runner import prepare_instance
    from costagent_assets.cli.schedule import schedule_lines, set_schedule
    from costagent_assets.defs.automation import weekly_cron

    if args.schedule_cmd in ("on", "off"):
        set_schedule(home, args.schedule_cmd == "on")
    for line in schedule_lines(prepare_instance(home), weekly_cron(_settings(home))):
        print(line)
    return EXIT_OK


def cmd_metrics(args, home: Home) -> int:
    """Print the Prometheus metrics once, or serve them on /metrics for a scraper."""
    from prometheus_client import generate_latest, start_http_server

    from costagent_assets.cli.metrics import metrics_registry

    registry = metrics_registry(home)
    if not args.serve:
        sys.stdout.write(generate_latest(registry).decode())
        return EXIT_OK
    server, thread = start_http_server(args.port, addr=args.host, registry=registry)
    print(f"costagent: metrics on http://{args.host}:{args.port}/metrics", flush=True)
    signal.signal(signal.SIGTERM, lambda *_: server.shutdown())
    thread.join()
    return EXIT_OK


def _exec_dagster(home: Home, program: str, subcommand: list[str], options: list[str]) -> None:
    """Replace this process with ``program SUBCOMMAND -w workspace.yaml OPTIONS`` on this installation."""
    from costagent_assets.cli.runner import BOOKKEEPING_ENV, prepare_instance
    from costagent_assets.shipped import shipped_path

    prepare_instance(home)
    env = {**BOOKKEEPING_ENV, **os.environ, "DAGSTER_HOME": str(home.dagster_home), "COSTAGENT_HOME": str(home.root)}
    # Replace this process, so a SIGTERM to it (systemd, docker stop) reaches dagster directly. A background
    # shell leaves SIGINT ignored and dagster dev maps SIGTERM onto SIGINT: restore both first, or
    # only SIGKILL would stop it (leaving its children behind).
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    beside = Path(sys.executable).with_name(program)  # works without an activated venv
    found = str(beside) if beside.exists() else shutil.which(program) or program
    # Always the shipped workspace.yaml: its location name keys the schedule's stored on/off state.
    command = [found, *subcommand, "-w", str(shipped_path("workspace.yaml")), *options]
    print(f"costagent: {' '.join(command)}  (DAGSTER_HOME={home.dagster_home})", flush=True)
    os.execvpe(found, command, env)


def cmd_ui(args, home: Home) -> int:
    """Open the Dagster UI on this installation's state, bound to 127.0.0.1."""
    _exec_dagster(home, "dagster", ["dev"], ["-h", "127.0.0.1", "-p", str(args.port)])


def cmd_serve(args, home: Home) -> int:
    """Run the Dagster daemon (schedule, sensors, run queue) or the webserver in the foreground: what the
    systemd units and the compose services run (deploy/)."""
    if args.service == "daemon":
        _exec_dagster(home, "dagster-daemon", ["run"], [])
    else:
        _exec_dagster(home, "dagster-webserver", [], ["-h", args.host, "-p", str(args.port)])


def _version() -> str:
    """The installed package's version (pyproject.toml's), or "unknown" when run from an uninstalled tree."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("costagent")
    except PackageNotFoundError:
        return "unknown"


class _VersionAction(argparse.Action):
    """``--version``, looking the version up only when asked: importlib.metadata costs ~0.1 s of every start."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, help=None):  # noqa: A002
        super().__init__(option_strings, dest=dest, default=default, nargs=0,
                         help=help or "show program's version number and exit")

    def __call__(self, parser, namespace, values, option_string=None):
        print(f"costagent {_version()}")
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="costagent", description=__doc__)
    parser.add_argument("--home", help="installation directory (default: $COSTAGENT_HOME or ~/.costagent)")
    parser.add_argument("--version", action=_VersionAction)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("demo", help="set up the demo organisation and run the weekly job")
    p.add_argument("--as-of", help="report date YYYY-MM-DD (default today, UTC)")
    p.add_argument("--accounts", type=int, help="number of demo accounts (default 84)")
    p.add_argument("--ai-accounts", type=int, metavar="N",
                   help="also N demo AI accounts, OpenAI projects and Anthropic workspaces (0..4; default 0)")
    p.add_argument("--history-months", type=int, default=6, metavar="N",
                   help="on first set-up, also load the N months before (default 6: a 6-month forecast "
                   "track record in the first emails; 0 for none)")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("run", help="run the weekly job for the configured source")
    p.add_argument("--as-of", help="report date YYYY-MM-DD (default today, UTC)")
    p.add_argument("--team", metavar="ACCOUNT_ID",
                   help="only this team's account: its email is sent once, recorded like the weekly send's")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("resend", help="send a week's emails again on purpose (says what it will do; --yes to do it)")
    p.add_argument("--week", required=True, help="the report date YYYY-MM-DD of the run that sent them")
    p.add_argument("--team", action="append", metavar="ACCOUNT_ID",
                   help="only this team's email (repeatable; default: every email of the week, admin report too)")
    p.add_argument("--yes", action="store_true", help="do it (without: only list what would be re-sent)")
    p.set_defaults(func=cmd_resend)

    p = sub.add_parser("backfill", help="materialize past months, in as few ranged runs as memory allows")
    p.add_argument("--from", dest="from_", required=True, type=_month_arg, metavar="YYYY-MM")
    p.add_argument("--to", required=True, type=_month_arg, metavar="YYYY-MM")
    p.add_argument("--with-emails", action="store_true", help="also render the reports (default: data only)")
    p.add_argument("--months-per-run", type=_positive_int, metavar="N",
                   help="at most N months per run (default: as many as fit 600 account-months)")
    p.set_defaults(func=cmd_backfill)

    p = sub.add_parser("teams", help="the teams registry")
    tsub = p.add_subparsers(dest="teams_cmd", required=True)
    t = tsub.add_parser("import", help="import a CSV or JSON file (all or nothing)")
    t.add_argument("file")
    t.add_argument("--replace", action="store_true", help="the registry becomes exactly the file")
    t = tsub.add_parser("list")
    t.add_argument("--json", action="store_true")
    for name in ("add", "update"):
        t = tsub.add_parser(name)
        if name == "update":
            t.add_argument("account_id")
        else:
            t.add_argument("--account", required=True, help="12-digit AWS account id")
        t.add_argument("--name", required=name == "add")
        t.add_argument("--email", required=name == "add")
        t.add_argument("--cc", action="append", help="cc address (repeatable)")
        t.add_argument("--budget", type=float, help="monthly budget in USD")
        t.add_argument("--threshold", type=float, help="the team's own anomaly threshold in %% (default: the setting)")
        t.add_argument("--floor", type=float, help="the team's own anomaly $ floor (default: the setting)")
        t.add_argument("--source", help="the cost source that reports this account, e.g. openai or anthropic "
                       "(default: the first AWS source of the source setting)")
    t = tsub.add_parser("remove")
    t.add_argument("account_id")
    p.set_defaults(func=cmd_teams)

    p = sub.add_parser("config", help="show or change settings")
    csub = p.add_subparsers(dest="config_cmd", required=True)
    c = csub.add_parser("show")
    c.add_argument("--json", action="store_true")
    c = csub.add_parser("set")
    c.add_argument("key")
    c.add_argument("value")
    p.set_defaults(func=cmd_config)

    p = sub.add_parser("sql", help="SQL over the warehouse views")
    p.add_argument("query")
    p.add_argument("--format", choices=["table", "csv", "json"], default="table")
    p.set_defaults(func=cmd_sql)

    p = sub.add_parser("preview", help="render a report without sending it")
    psub = p.add_subparsers(dest="kind", required=True)
    pt = psub.add_parser("team")
    pt.add_argument("account_id")
    pt.add_argument("--ai", action="store_true",
                    help="analyse this account now with Gemini (one model call; none when its figures are "
                         "unchanged since the last analysis) and preview the result; the stored ai_insights "
                         "are refreshed, nothing is sent. Without GEMINI_API_KEY it says so and previews "
                         "the computed summary")
    pa = psub.add_parser("admin")
    for q in (pt, pa):
        q.add_argument("--month", type=_month_arg, help="YYYY-MM (default: the latest month stored)")
        q.add_argument("--out", help="write the HTML (.html) or text to this file")
    p.set_defaults(func=cmd_preview)

    p = sub.add_parser("anomalies", help="mark anomalies as expected or false positives")
    asub = p.add_subparsers(dest="anomalies_cmd", required=True)
    a = asub.add_parser("ack", help="mark one anomaly (account, service, month); it is not alerted again")
    a.add_argument("account_id")
    a.add_argument("service", help="the service as in the anomalies table, or - for the whole account (budget)")
    a.add_argument("month", type=_month_arg)
    a.add_argument("--as", dest="as_", required=True, choices=["expected", "false_positive"])
    a.add_argument("--note", help="why (kept with the mark)")
    asub.add_parser("list", help="the stored marks")
    p.set_defaults(func=cmd_anomalies)

    p = sub.add_parser("status", help="last run, next scheduled run, data coverage")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("instance", help="the Dagster instance's dagster.yaml (embedded SQLite or PostgreSQL)")
    isub = p.add_subparsers(dest="instance_cmd", required=True)
    i = isub.add_parser("init", help="write dagster.yaml from a profile (only if missing, unless --force)")
    i.add_argument("--profile", choices=["embedded", "postgres"], default="embedded",
                   help="embedded: SQLite under $COSTAGENT_HOME/dagster (default); postgres: DAGSTER_POSTGRES_* "
                   "environment variables")
    i.add_argument("--force", action="store_true", help="replace an existing dagster.yaml")
    isub.add_parser("show", help="which storage the instance uses")
    p.set_defaults(func=cmd_instance)

    p = sub.add_parser("schedule", help="turn the weekly schedule on or off, or show whether it will run")
    p.add_argument("schedule_cmd", choices=["on", "off", "status"])
    p.set_defaults(func=cmd_schedule)

    p = sub.add_parser("serve", help="run the Dagster daemon or webserver in the foreground (for services)")
    p.add_argument("service", choices=["daemon", "webserver"])
    p.add_argument("--host", default="127.0.0.1", help="webserver address (default 127.0.0.1: it has no login)")
    p.add_argument("--port", type=int, default=3000)
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("metrics", help="Prometheus metrics: per-account figures and the pipeline's health")
    p.add_argument("--serve", action="store_true", help="serve /metrics until stopped instead of printing once")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=9464)
    p.set_defaults(func=cmd_metrics)

    p = sub.add_parser("ui", help="open the Dagster UI on 127.0.0.1")
    p.add_argument("--port", type=int, default=3000)
    p.set_defaults(func=cmd_ui)
    return parser


def _damaged_file_errors() -> tuple[type[BaseException], ...]:
    # Imported only when an exception is on its way out: the CLI's start stays light.
    from costagent_assets.settings import SettingError
    from costagent_assets.teams.model import TeamValidationError

    return SettingError, TeamValidationError, InstanceConfigError


# Errors of the machine rather than of the input: the disk is full, read-only, or not ours to write.
_STORAGE_ERRNOS = {errno.ENOSPC: "the disk is full: free some space", errno.EROFS: "the filesystem is read-only",
                   errno.EDQUOT: "the disk quota is exceeded", errno.EACCES: "permission denied"}


def main(argv: list[str] | None = None) -> int:
    from costagent_assets.run_lease import LeaseHeld

    args = build_parser().parse_args(argv)
    home = get_home(args.home)
    os.environ["COSTAGENT_HOME"] = str(home.root)
    try:
        return args.func(args, home)
    except LeaseHeld as exc:
        return _fail(str(exc), EXIT_BUSY)
    except _damaged_file_errors() as exc:
        # A damaged settings.json, teams.json or dagster.yaml: the message names the file and the line.
        return _fail(f"{exc}\n  (fix the file by hand, or move it aside to start from the defaults)")
    except Exception as exc:
        problem = _storage_problem(exc, home)
        if problem is None:
            raise
        return _fail(problem, EXIT_FAILED)


def _storage_problem(exc: BaseException, home: Home) -> str | None:
    """What to tell the user when ``exc`` (or what it wraps: SQLAlchemy and Dagster wrap sqlite's errors) is
    the disk being full or read-only; None for any other error, which keeps its traceback."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno in _STORAGE_ERRNOS:
            return (f"cannot write {exc.filename or home.root}: {_STORAGE_ERRNOS[exc.errno]}, then run the "
                    "command again (nothing half-written is kept)")
        if isinstance(exc, sqlite3.OperationalError) and re.search(
                r"disk I/O|database or disk is full|readonly database", str(exc)):
            return (f"the Dagster instance under {home.dagster_home} cannot be written ({exc}): free some space "
                    "or make it writable, then run the command again")
        exc = getattr(exc, "orig", None) or exc.__cause__ or exc.__context__
    return None


if __name__ == "__main__":
    sys.exit(main())
