"""Benchmark: a history backfill of the demo organisation, from a cold process.

Sets up the demo teams in a fresh COSTAGENT_HOME (no weekly run), then times
`costagent backfill --from FIRST --to LAST` (several months per ranged run, every account, no emails).

    python benchmarks/backfill.py [--accounts 84] [--from 2024-11] [--to 2026-10]
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=84)
    parser.add_argument("--from", dest="first", default="2024-11")
    parser.add_argument("--to", dest="last", default="2026-10")
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="costagent-backfill-"))
    env = {**os.environ, "COSTAGENT_HOME": str(home)}
    setup = (
        "from costagent_assets.demo import organisation as demo; from costagent_assets.teams.model import Team; "
        "from costagent_assets.teams.registry import save_registry; "
        f"save_registry(__import__('pathlib').Path({str(home / 'teams.json')!r}), "
        f"[Team.from_dict(t) for t in demo.demo_teams({args.accounts})])"
    )
    subprocess.run([sys.executable, "-c", setup], env=env, check=True)
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "costagent_assets.cli.main", "backfill", "--from", args.first, "--to", args.last],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    output = proc.stdout.read().decode()
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - started
    runs = [line for line in output.splitlines() if line.strip().startswith("cost_history")]
    if os.waitstatus_to_exitcode(status) != 0:
        print(output)
        raise SystemExit("backfill failed")
    print(f"backfill {args.first}..{args.last}, {args.accounts} accounts: {len(runs)} runs, {seconds:.1f} s wall, "
          f"peak {usage.ru_maxrss / 1024:.0f} MB")
    shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
