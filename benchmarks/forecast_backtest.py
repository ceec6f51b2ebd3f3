"""Benchmark: forecast quality on the demo organisation, from the backtest.

Replays, for every account and each month of a range, the next-month forecast made at the end of the
month before, and prints the accuracy next to the two baselines, with the 80% interval's coverage.

    python benchmarks/forecast_backtest.py [--accounts 84] [--from 2025-05] [--to 2026-10]
"""

from __future__ import annotations

import argparse
import time
from datetime import date, timedelta

import polars as pl

from costagent_assets.demo import organisation as demo
from costagent_assets.forecast import compute_backtest
from costagent_assets.periods import month_start, months_between, period, shift_month


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=84)
    parser.add_argument("--from", dest="first", default="2025-05")
    parser.add_argument("--to", dest="last", default="2026-10")
    args = parser.parse_args()
    accounts = [t["aws_account_id"] for t in demo.demo_teams(args.accounts)]
    months = months_between(args.first, args.last)
    start = month_start(shift_month(args.first, -3))
    end = period(args.last, date.max).end
    started = time.perf_counter()
    raw = demo.generate_costs(accounts, start, end, as_of=end + timedelta(days=1))
    frames = []
    for month in months:
        p = period(month, date.max)
        window = raw.filter(pl.col("date").is_between(month_start(shift_month(month, -3)), p.end))
        frames.append(compute_backtest(window, {month: p}, [(month, a) for a in accounts]))
    bt = pl.concat(frames)
    seconds = time.perf_counter() - started
    for level, rows in (("account totals", bt.filter(pl.col("service").is_null())),
                        ("main services", bt.filter(pl.col("service").is_not_null()))):
        scored = rows.filter(pl.col("forecast_usd").is_not_null() & (pl.col("actual_usd") > 0))
        s = scored.select(
            pl.len().alias("n"),
            pl.col("ape_pct").mean().alias("mape"),
            pl.col("ape_pct").median().alias("median_ape"),
            pl.col("error_pct").mean().alias("bias"),
            pl.col("inside").mean().alias("coverage"),
            pl.col("ape_last_month_pct").mean().alias("mape_last_month"),
            pl.col("ape_run_rate_pct").mean().alias("mape_run_rate"),
        ).row(0, named=True)
        best = min(s["mape_last_month"], s["mape_run_rate"])
        print(f"{level}: {s['n']} account-months ({len(months)} months x {args.accounts} accounts), "
              f"{rows.height - scored.height} without a forecast (too little history)")
        print(f"  forecast       MAPE {s['mape']:6.2f}%  median APE {s['median_ape']:5.2f}%  bias {s['bias']:+6.2f}%  "
              f"80% interval coverage {s['coverage'] * 100:5.1f}%")
        print(f"  last month     MAPE {s['mape_last_month']:6.2f}%")
        print(f"  7-day run rate MAPE {s['mape_run_rate']:6.2f}%")
        print(f"  improvement on the best baseline: {(1 - s['mape'] / best) * 100:.1f}%")
    print(f"({seconds:.1f} s including generating the data)")


if __name__ == "__main__":
    main()
