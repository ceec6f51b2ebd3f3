"""Benchmark: SQL over the warehouse history at scale, cold.

Builds a raw_costs warehouse of the demo generator scaled up (one Parquet file per account-month, the
layout the pipeline writes), then times, each in a fresh process (DuckDB caches files):
  * a per-account monthly history query (one account's spend per month and service, all months), and
  * the forecast query (next-month forecast of every account's total from its daily history).

    python benchmarks/history_queries.py [--sizes 84x24 5000x36] [--keep DIR]

Both go through the documented views, as `costagent sql` does: ``monthly_costs`` and ``daily_costs``
read the per-month rollups. With ``--keep DIR``, a size already built there is reused.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

AS_OF = date(2026, 11, 1)

QUERY = r"""
import json, sys, time
from datetime import date
import polars as pl
from costagent_assets.warehouse.store import LocalStore
from costagent_assets.warehouse.views import connect, views_needed
root, kind = sys.argv[1], sys.argv[2]
started = time.perf_counter()
if kind == "history":
    # What `costagent sql` does: open the views the query names, then run it.
    sql = "SELECT month, service, cost_usd FROM monthly_costs WHERE account_id = ? ORDER BY month, service"
    con = connect(LocalStore(root), [], only=views_needed(sql))
    con.execute("SET enable_progress_bar = false")
    n = len(con.execute(sql, [sys.argv[3]]).fetchall())
else:
    from costagent_assets.forecast import forecast_sums
    sql = ("SELECT account_id, '*' AS service, date, cost_usd FROM daily_costs "
           "WHERE month >= '2026-08' AND date > DATE '2026-10-31' - INTERVAL 56 DAY")
    con = connect(LocalStore(root), [], only=views_needed(sql))
    con.execute("SET enable_progress_bar = false")
    daily = pl.from_arrow(con.execute(sql).arrow())
    accounts = daily["account_id"].unique().sort()
    targets = pl.DataFrame({"target_id": range(len(accounts)), "account_id": accounts, "service": "*",
                            "cutoff": date(2026, 10, 31), "target_start": date(2026, 11, 1),
                            "target_end": date(2026, 11, 30)})
    n = forecast_sums(daily, targets).height
print(json.dumps({"seconds": time.perf_counter() - started, "rows": n}))
"""


def build(root: Path, accounts: int, months: int) -> tuple[list[str], float]:
    """The pipeline's layout, written as the pipeline writes it: one raw_costs object per account-month,
    and each month's rollups."""
    import polars as pl

    from costagent_assets.demo import organisation as demo
    from costagent_assets.periods import months_between, period, shift_month
    from costagent_assets.warehouse.rollups import ensure_rollups, write_raw_costs

    ids = [t["aws_account_id"] for t in demo.demo_teams(accounts)]
    started = time.perf_counter()
    if (root / "raw_costs").exists():  # --keep DIR from an earlier build: reuse it
        ensure_rollups(root)
        return ids, time.perf_counter() - started
    last = "2026-10"
    first = shift_month(last, -(months - 1))
    for month in months_between(first, last):
        p = period(month, AS_OF)
        frame = demo.generate_costs(ids, p.start, p.end, as_of=AS_OF).with_columns(pl.lit(month).alias("month"))
        write_raw_costs(root, frame, [(month, a) for a in ids])  # the partitions, then the month's rollups
    return ids, time.perf_counter() - started


def timed(root: Path, kind: str, *extra: str) -> dict:
    out = subprocess.run([sys.executable, "-c", QUERY, str(root), kind, *extra], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", default=["84x24", "5000x36"])
    parser.add_argument("--keep", help="build under this directory and keep it (reused by later runs)")
    args = parser.parse_args()
    print(f"{'size':>10} {'files':>8} {'build s':>8} {'history query s':>16} {'forecast query s':>17}")
    for size in args.sizes:
        accounts, months = (int(x) for x in size.split("x"))
        root = Path(args.keep or tempfile.mkdtemp(prefix="costagent-history-")) / size
        ids, build_s = build(root, accounts, months)
        history = timed(root, "history", ids[len(ids) // 2])
        forecast = timed(root, "forecast")
        files = sum(1 for _ in (root / "raw_costs").rglob("*.parquet"))
        print(f"{size:>10} {files:>8} {build_s:>8.1f} {history['seconds']:>16.2f} {forecast['seconds']:>17.2f}")
        if not args.keep:
            shutil.rmtree(root.parent, ignore_errors=True)


if __name__ == "__main__":
    main()
