"""Benchmark: forecast quality from the backtest, on generated noisy series and on the demo organisation.

Replays, for every account and each month of a range, the next-month forecast made at the end of the
month before, and prints the accuracy next to the two baselines ("next month = last month" and "the last
7 days' run rate x days in month"), with the 80% interval's coverage. First table: the noisy series of
``benchmarks/noisy_series.py`` (heavy-tailed noise, drifts, ramps, labelled anomalies, partial months);
second: the demo organisation.

    python benchmarks/forecast_backtest.py [--noisy-accounts 120] [--accounts 84] [--from 2025-05] [--to 2026-10]
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import date, timedelta
from pathlib import Path

import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import noisy_series  # noqa: E402
from costagent_assets.demo import organisation as demo  # noqa: E402
from costagent_assets.forecast import calibrated, compute_backtest  # noqa: E402
from costagent_assets.periods import month_start, months_between, period, shift_month  # noqa: E402


def backtest(raw: pl.DataFrame, months: list[str]) -> pl.DataFrame:
    """The backtest rows of ``months`` for every account with data in each, as the weekly job stores them."""
    frames = []
    for month in months:
        p = period(month, date.max)
        window = raw.filter(pl.col("date").is_between(month_start(shift_month(month, -3)), p.end))
        accounts = window.filter(pl.col("date") >= p.start)["account_id"].unique().sort().to_list()
        frames.append(compute_backtest(window, {month: p}, [(month, a) for a in accounts]))
    return pl.concat(frames)


def summary(rows: pl.DataFrame) -> dict:
    """MAPE of the forecast and the two baselines, bias and 80% coverage over the scored rows."""
    scored = rows.filter(pl.col("forecast_usd").is_not_null() & (pl.col("actual_usd") > 0))
    s = scored.select(
        pl.len().alias("n"),
        pl.col("ape_pct").mean().alias("mape"),
        pl.col("ape_pct").median().alias("median_ape"),
        pl.col("error_pct").mean().alias("bias"),
        pl.col("inside").mean().alias("coverage"),
        pl.col("inside_model").mean().alias("coverage_model"),
        pl.col("ape_last_month_pct").mean().alias("mape_last_month"),
        pl.col("ape_run_rate_pct").mean().alias("mape_run_rate"),
    ).row(0, named=True)
    return {**s, "unscored": rows.height - scored.height}


def print_table(title: str, bt: pl.DataFrame) -> None:
    """Account totals and main services: the forecast against both baselines, and its interval coverage: the
    range as the email shows it (calibrated on the backtests of the months before), and the model's own."""
    print(title)
    bt = calibrated(bt.rename({"inside": "inside_model"}))
    scored = bt.filter(pl.col("service").is_null() & pl.col("forecast_usd").is_not_null() & (pl.col("actual_usd") > 0))
    by_basis = scored.group_by("interval_basis").agg(pl.len(), pl.col("inside").mean()).sort("interval_basis")
    print("  account totals' 80% range by what it rests on: " + ", ".join(
        f"{b} backtests {n} months, holds {c * 100:.1f}%" if b != "model" else f"the model alone (no backtest yet) "
        f"{n} months, holds {c * 100:.1f}%" for b, n, c in by_basis.iter_rows()))
    for level, rows in (("account totals", bt.filter(pl.col("service").is_null())),
                        ("main services", bt.filter(pl.col("service").is_not_null()))):
        s = summary(rows)
        print(f"  {level}: {s['n']} scored, {s['unscored']} without a forecast or with a $0 month")
        print(f"    forecast       MAPE {s['mape']:7.2f}%  median APE {s['median_ape']:5.2f}%  bias {s['bias']:+6.2f}%  "
              f"80% range holds {s['coverage'] * 100:5.1f}% (the model's own range: {s['coverage_model'] * 100:5.1f}%)")
        print(f"    last month     MAPE {s['mape_last_month']:7.2f}%")
        print(f"    7-day run rate MAPE {s['mape_run_rate']:7.2f}%")
        print(f"    better than last month by {(1 - s['mape'] / s['mape_last_month']) * 100:.1f}%, than the run rate by "
              f"{(1 - s['mape'] / s['mape_run_rate']) * 100:.1f}%")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--noisy-accounts", type=int, default=120)
    parser.add_argument("--seed", type=int, default=17, help="the noisy series' seed")
    parser.add_argument("--accounts", type=int, default=84)
    parser.add_argument("--from", dest="first", default="2025-05")
    parser.add_argument("--to", dest="last", default="2026-10")
    args = parser.parse_args()

    started = time.perf_counter()
    org = noisy_series.generate(args.noisy_accounts, seed=args.seed)
    months = months_between("2025-04", "2025-12")
    bt = backtest(org.raw, months)
    print_table(f"noisy series: {args.noisy_accounts} accounts, months {months[0]}..{months[-1]} "
                f"({time.perf_counter() - started:.1f} s)", bt)

    started = time.perf_counter()
    accounts = [t["aws_account_id"] for t in demo.demo_teams(args.accounts)]
    end = period(args.last, date.max).end
    raw = demo.generate_costs(accounts, month_start(shift_month(args.first, -3)), end, as_of=end + timedelta(days=1))
    bt = backtest(raw, months_between(args.first, args.last))
    print_table(f"demo organisation: {args.accounts} accounts, months {args.first}..{args.last} "
                f"({time.perf_counter() - started:.1f} s)", bt)


if __name__ == "__main__":
    main()
