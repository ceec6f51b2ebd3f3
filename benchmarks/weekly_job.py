"""Benchmark: the weekly job on the demo organisation, from a cold process, at several sizes.

Prints wall time, peak memory (max RSS of the process) and the number of Dagster runs for each size.
Each size runs `costagent demo` in a fresh COSTAGENT_HOME, so it includes everything a user waits
for: Python and Dagster start-up, generating the organisation, the runs, and refreshing DuckDB.

    python benchmarks/weekly_job.py [--accounts 84 1000] [--as-of 2026-11-23] [--keep]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGETS = {84: 10.0, 1000: 90.0}  # seconds, from the issue


def run_once(accounts: int, as_of: str, keep: bool) -> dict:
    home = Path(tempfile.mkdtemp(prefix=f"costagent-bench-{accounts}-"))
    env = {**os.environ, "COSTAGENT_HOME": str(home)}
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
        "runs": len(runs),
        "run_seconds": " + ".join(r[3] for r in runs),
        "team_emails": emails,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, nargs="+", default=[84, 1000])
    parser.add_argument("--as-of", default="2026-11-23")
    parser.add_argument("--keep", action="store_true", help="keep the homes for inspection")
    args = parser.parse_args()
    print(f"weekly job, demo organisation, as of {args.as_of}, cold process each ({os.cpu_count()} cores)")
    print(f"{'accounts':>8} {'wall s':>8} {'target':>7} {'peak MB':>8} {'runs':>5}  run seconds      emails")
    for accounts in args.accounts:
        r = run_once(accounts, args.as_of, args.keep)
        target = TARGETS.get(accounts)
        verdict = "" if target is None else f"{'<=' if r['seconds'] <= target else '> '}{target:.0f}"
        print(f"{r['accounts']:>8} {r['seconds']:>8.1f} {verdict:>7} {r['peak_mb']:>8.0f} {r['runs']:>5}  "
              f"{r['run_seconds']:<16} {r['team_emails']}")


if __name__ == "__main__":
    main()
