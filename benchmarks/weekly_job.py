"""Benchmark: the weekly job on the demo organisation, from a cold process, at several sizes.

Prints wall time, peak memory (max RSS of the process) and the number of Dagster runs for each size.
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

TARGETS = {84: 10.0, 1000: 90.0}  # seconds, from the issue


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
    args = parser.parse_args()
    print(f"weekly job, demo organisation, as of {args.as_of}, cold process each ({os.cpu_count()} cores)")
    print(f"{'instance':>8} {'accounts':>8} {'wall s':>8} {'target':>7} {'peak MB':>8} {'runs':>5}  "
          f"run seconds      emails  vs sqlite")
    with ExitStack() as stack:
        databases = stack.enter_context(postgres_databases()) if "postgres" in args.instance else None
        for accounts in args.accounts:
            baseline = None
            for kind in args.instance:
                instance_env = databases(f"bench_{accounts}_{os.getpid()}") if kind == "postgres" else None
                r = run_once(accounts, args.as_of, args.keep, instance_env)
                target = TARGETS.get(accounts)
                verdict = "" if target is None else f"{'<=' if r['seconds'] <= target else '> '}{target:.0f}"
                baseline = r["seconds"] if kind == "sqlite" else baseline
                ratio = f"{r['seconds'] / baseline:.2f}x" if baseline and kind != "sqlite" else ""
                print(f"{kind:>8} {r['accounts']:>8} {r['seconds']:>8.1f} {verdict:>7} {r['peak_mb']:>8.0f} "
                      f"{r['runs']:>5}  {r['run_seconds']:<16} {r['team_emails']:>6}  {ratio}", flush=True)


if __name__ == "__main__":
    main()
