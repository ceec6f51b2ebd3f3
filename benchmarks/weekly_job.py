"""Benchmark: the weekly job on the demo organisation, from a cold process, at several sizes.

Prints wall time, CPU time, peak memory (max RSS of the process) and the number of Dagster runs for each size, each
against issue 15's targets, and the same month's work with no account dimension measured in the same run (a
lower bound: the stages' pure functions over one frame per month, in-process, no Dagster; see
:func:`lower_bound_work`) with the real run's ratio to it at 84 and 5,000 accounts.
Each size runs `costagent demo` in a fresh COSTAGENT_HOME, so it includes everything a user waits
for: Python and Dagster start-up, generating the organisation, the runs, and refreshing DuckDB.

    python benchmarks/weekly_job.py [--accounts 84 1000] [--instance sqlite postgres] [--as-of 2026-11-23] [--keep]

``--instance postgres`` runs the same sizes on the production instance profile (deploy/dagster.postgres.yaml):
against the server named by DAGSTER_POSTGRES_* when set (a fresh database per size must be creatable there:
set DAGSTER_POSTGRES_DB to an empty one and run one size at a time), else on a throwaway local cluster
(costagent_tests/peers/postgres.py: initdb + pg_ctl in a temp dir), one fresh database per size.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

# Seconds per (instance, accounts), and peak memory, from issue 15's "Done when".
TARGETS = {("sqlite", 84): 6.0, ("sqlite", 1000): 30.0, ("sqlite", 5000): 120.0, ("postgres", 5000): 180.0}
PEAK_MB_TARGET = {5000: 2048.0}
# The ratio to the no-account-dimension lower bound is printed at these sizes (issue 15).
LOWER_BOUND_SIZES = {84, 5000}


def lower_bound_work(accounts: int, as_of_text: str) -> dict:
    """The weekly job's computations with no account dimension and no Dagster, in this process: the same
    pure stage functions the assets call (raw costs -> breakdown -> changes -> anomalies -> backtest ->
    forecasts -> savings -> insights -> team emails rendered), each called once per month on the month's
    whole organisation as one frame, for the same two months as ``costagent demo --history-months 0``
    (the previous month's refresh, then the report month). Returns the seconds of that work (imports and
    building the demo registry excluded) and the team emails rendered."""
    from datetime import UTC, date, datetime, timedelta
    from datetime import time as clock

    import polars as pl

    from costagent_assets.analysis import (
        compute_mom_changes,
        compute_service_breakdown,
        deduplicate_raw_costs,
        explain_changes,
    )
    from costagent_assets.anomaly_detection import anomaly_rules, detect_anomalies
    from costagent_assets.defs.optimization_opportunities import _table as optimization_table
    from costagent_assets.demo import organisation as demo
    from costagent_assets.demo.ai_accounts import demo_ai_teams
    from costagent_assets.demo.cost_source import DemoCostSource
    from costagent_assets.demo.scanner import DemoScanner
    from costagent_assets.forecast import compute_backtest, compute_forecasts, with_forecast_projection
    from costagent_assets.insights.stage import run_ai_insights
    from costagent_assets.optimization import Thresholds, account_rows, find_opportunities
    from costagent_assets.periods import default_as_of, period, report_month, shift_month
    from costagent_assets.report_context import report_frames
    from costagent_assets.reporting import render_team_report
    from costagent_assets.schemas import conform
    from costagent_assets.settings import AI_SOURCES, Settings
    from costagent_assets.teams.model import Team

    as_of = date.fromisoformat(as_of_text)
    settings = Settings()
    teams = [Team.from_dict(t) for t in demo.demo_teams(accounts, seed=settings.demo_seed)
             + demo_ai_teams(settings.demo_ai_accounts)]
    ids = sorted(t.aws_account_id for t in teams)
    source, scanner = DemoCostSource(), DemoScanner()
    rule, overrides = anomaly_rules(settings, teams)
    budgets = {t.aws_account_id: t.monthly_budget for t in teams if t.monthly_budget}
    thresholds = Thresholds.from_settings(settings)
    now = datetime.now(UTC)
    current = report_month(as_of)

    started = time.perf_counter()
    raw_months, backtests, emails = [], [], 0
    for month in (shift_month(current, -1), current):
        periods = {month: period(month, default_as_of(month, as_of))}
        p = periods[month]
        partitions = [(month, a) for a in ids]
        fetched = source.fetch(ids, p.start, p.through, as_of=p.through + timedelta(days=1))
        raw = conform(fetched.costs.filter(pl.col("date").is_between(p.start, p.through))
                      .with_columns(pl.lit(month).alias("month")), "raw_costs")
        raw = deduplicate_raw_costs(raw.with_columns(pl.col("provider").fill_null("aws"),
                                                     pl.col("currency").fill_null("USD")))
        raw_months.append(raw)
        history = pl.concat(raw_months, how="diagonal_relaxed")
        compute_service_breakdown(raw, periods)
        loaded = {(shift_month(month, -1), a) for a in ids} if len(raw_months) > 1 else set()
        mom = compute_mom_changes(history, periods, partitions, previous_loaded=loaded)
        anomalies = detect_anomalies(mom, rule, raw=history, overrides=overrides, budgets=budgets,
                                     budget_alert_pcts=settings.budget_alert_pcts, feedback=None)
        backtest = compute_backtest(history, periods, partitions)
        forecasts = compute_forecasts(history, periods, partitions,
                                      pl.concat(backtests, how="diagonal_relaxed") if backtests else backtest.clear())
        backtests.append(backtest)
        end = datetime.combine(as_of, clock(), UTC)
        scan = scanner.scan([t.aws_account_id for t in teams if t.source not in AI_SOURCES], end, thresholds.lookback_days, "")
        findings = find_opportunities(scan.inventory, scan.commitments, raw, p.days_covered, end, thresholds)
        # Only the latest month is scanned (as in the stage); its rows are conformed the same way.
        savings = conform(optimization_table(month, findings, account_rows(ids, scan.status, findings, scanner.name),
                                             now.isoformat(timespec="seconds")), "optimization_opportunities")
        projected = with_forecast_projection(mom, forecasts)
        deterministic = explain_changes(projected, anomalies, periods)
        outcome = run_ai_insights(deterministic, projected, anomalies, periods, teams, rule, overrides=overrides,
                                  generate=None, unavailable="the lower bound calls no AI", cached={},
                                  model="none", prices={}, findings=savings, budget_alert_pcts=settings.budget_alert_pcts)
        if month == current:
            frames = report_frames(month, p, {"mom_changes": projected, "anomalies": anomalies,
                                              "ai_insights": outcome.insights, "forecasts": forecasts,
                                              "optimization_opportunities": savings},
                                   generated_at=now, dashboard_url_template=settings.datadog_dashboard_url,
                                   budget_alert_pcts=settings.budget_alert_pcts, daily=history)
            for team in teams:
                render_team_report(frames.team_context(team))
                emails += 1
    return {"seconds": time.perf_counter() - started, "team_emails": emails}


def run_lower_bound(accounts: int, as_of: str) -> dict:
    """:func:`lower_bound_work` in a cold process of its own, for its own peak memory."""
    command = [sys.executable, __file__, "--lower-bound", str(accounts), "--as-of", as_of]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[1]),
                                                        os.environ.get("PYTHONPATH", "")])}
    started = time.perf_counter()
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    output = proc.stdout.read().decode()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        print(output)
        raise SystemExit(f"the lower bound failed for {accounts} accounts")
    seconds, emails = output.strip().splitlines()[-1].split()
    return {"seconds": float(seconds), "wall": wall, "peak_mb": usage.ru_maxrss / 1024, "team_emails": int(emails),
            "cpu": usage.ru_utime + usage.ru_stime}


def run_once(accounts: int, as_of: str, keep: bool, instance_env: dict[str, str] | None = None) -> dict:
    """``costagent demo`` for ``accounts`` in a fresh home; ``instance_env``: the Postgres profile's variables."""
    home = Path(tempfile.mkdtemp(prefix=f"costagent-bench-{accounts}-"))
    env = {**os.environ, "COSTAGENT_HOME": str(home)}
    if instance_env is not None:
        env |= {**instance_env, "COSTAGENT_INSTANCE_PROFILE": "postgres"}
    # The weekly job alone: no history months loaded before it (`costagent demo` loads 6 by default).
    command = [sys.executable, "-m", "costagent_assets.cli.main", "demo", "--accounts", str(accounts), "--as-of", as_of,
               "--history-months", "0"]
    started = time.perf_counter()
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    output = proc.stdout.read().decode()
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        print(output)
        raise SystemExit(f"costagent demo failed for {accounts} accounts")
    runs = [line.split() for line in output.splitlines() if line.strip().startswith(("cost_history", "weekly_report"))]
    emails = len(list((home / "outbox" / as_of).glob("*-team-*.eml")))
    if not keep:
        shutil.rmtree(home, ignore_errors=True)
    return {
        "accounts": accounts,
        "seconds": seconds,
        "peak_mb": usage.ru_maxrss / 1024,  # Linux reports KiB
        # User + system CPU seconds: on a shared machine, a figure the others' load barely moves.
        "cpu": usage.ru_utime + usage.ru_stime,
        "runs": len(runs),
        "run_seconds": " + ".join(r[3] for r in runs),
        "team_emails": emails,
    }


@contextmanager
def postgres_databases() -> Iterator[Callable[[str], dict[str, str]]]:
    """A function giving the DAGSTER_POSTGRES_* variables of a fresh database per name."""
    if os.environ.get("DAGSTER_POSTGRES_HOST"):
        yield lambda _name: {k: v for k, v in os.environ.items() if k.startswith("DAGSTER_POSTGRES_")}
        return
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from costagent_tests.peers.postgres import postgres_server

    with postgres_server() as server:
        yield server.new_database


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, nargs="+", default=[84, 1000])
    parser.add_argument("--instance", nargs="+", choices=["sqlite", "postgres"], default=["sqlite"],
                        help="instance profiles to compare, side by side (default sqlite: the embedded profile)")
    parser.add_argument("--as-of", default="2026-11-23")
    parser.add_argument("--keep", action="store_true", help="keep the homes for inspection")
    parser.add_argument("--lower-bound", type=int, metavar="ACCOUNTS", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.lower_bound:  # the child process of run_lower_bound
        r = lower_bound_work(args.lower_bound, args.as_of)
        print(f"{r['seconds']:.3f} {r['team_emails']}")
        return
    print(f"weekly job, demo organisation, as of {args.as_of}, cold process each ({os.cpu_count()} cores)")
    print(f"{'instance':>8} {'accounts':>8} {'wall s':>8} {'target':>7} {'peak MB':>8} {'target':>7} {'runs':>5}  "
          f"run seconds      emails  vs sqlite  vs lower bound  cpu s")
    verdicts = []
    with ExitStack() as stack:
        databases = stack.enter_context(postgres_databases()) if "postgres" in args.instance else None
        for accounts in args.accounts:
            baseline = None
            # The same work without the account dimension, measured in the same run (issue 15).
            bound = run_lower_bound(accounts, args.as_of)
            print(f"{'no dim.':>8} {accounts:>8} {bound['seconds']:>8.1f} {'':>7} {bound['peak_mb']:>8.0f} {'':>7} "
                  f"{'':>5}  {'(' + format(bound['wall'], '.1f') + ' s cold)':<16} {bound['team_emails']:>6}  "
                  f"{'':>9}  {'lower bound':<14}  {bound['cpu']:.1f} (whole process)", flush=True)
            for kind in args.instance:
                instance_env = databases(f"bench_{accounts}_{os.getpid()}") if kind == "postgres" else None
                r = run_once(accounts, args.as_of, args.keep, instance_env)
                target, mb_target = TARGETS.get((kind, accounts)), PEAK_MB_TARGET.get(accounts)
                verdict = "" if target is None else f"{'<=' if r['seconds'] <= target else '> '}{target:.0f}"
                mb_verdict = "" if mb_target is None else f"{'<=' if r['peak_mb'] <= mb_target else '> '}{mb_target:.0f}"
                verdicts += [v for v in (verdict, mb_verdict) if v]
                baseline = r["seconds"] if kind == "sqlite" else baseline
                ratio = f"{r['seconds'] / baseline:.2f}x" if baseline and kind != "sqlite" else ""
                lower = f"{r['seconds'] / bound['seconds']:.0f}x" if accounts in LOWER_BOUND_SIZES else ""
                print(f"{kind:>8} {r['accounts']:>8} {r['seconds']:>8.1f} {verdict:>7} {r['peak_mb']:>8.0f} "
                      f"{mb_verdict:>7} {r['runs']:>5}  {r['run_seconds']:<16} {r['team_emails']:>6}  {ratio:>9}  "
                      f"{lower:<14}  {r['cpu']:.1f}", flush=True)
    if verdicts:
        missed = sum(v.startswith(">") for v in verdicts)
        print(f"targets: {len(verdicts) - missed} met, {missed} missed")

if __name__ == "__main__":
    main()
