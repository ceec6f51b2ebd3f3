"""Benchmark: what issue 19's checks add to the emails stage, per message and per month.

Times, on this machine: ``build_message`` of a team-report-sized message (its header check re-parses the
message as it goes on the wire), the completeness gate (``account_coverage`` over a month's daily rollup of
N accounts x 24 services) and the grounding check of a typical AI explanation with the contact/instruction
rules.

    python benchmarks/safety_checks.py [--accounts 5000] [--messages 500]
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import date, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import polars as pl  # noqa: E402

from costagent_assets.completeness import account_coverage  # noqa: E402
from costagent_assets.insights.grounding import PackIndex, ungrounded  # noqa: E402
from costagent_assets.periods import period  # noqa: E402
from costagent_assets.reporting import RenderedEmail, build_message  # noqa: E402


def per_call(fn, n: int) -> float:
    started = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - started) / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=5000)
    parser.add_argument("--messages", type=int, default=500)
    args = parser.parse_args()

    html = "<p>" + "x" * 60_000 + "</p>"  # a team report's HTML is ~50-70 KB
    rendered = RenderedEmail("[costagent] Payments: November 2026 to date $12,345 (+4.2% vs same period last month)",
                             html, "y" * 8_000)
    seconds = per_call(lambda: build_message(rendered, sender="costagent@example.com", to="team@example.com",
                                             cc=["lead@example.com", "cto@example.com"]), args.messages)
    print(f"build_message with the on-the-wire header check: {seconds * 1000:.2f} ms per message "
          f"({seconds * args.accounts:.1f} s for {args.accounts} team emails)")

    p = period("2026-11", date(2026, 11, 23))
    days = [p.start + timedelta(days=i) for i in range(p.days_covered)]
    accounts = [f"{i:012d}" for i in range(args.accounts)]
    daily = pl.DataFrame({"account_id": accounts}).join(pl.DataFrame({"service": [f"s{i}" for i in range(24)]}),
                                                        how="cross").join(pl.DataFrame({"date": days}), how="cross")
    started = time.perf_counter()
    coverage = account_coverage(daily, p, accounts)
    print(f"completeness gate over {daily.height:,} daily rollup rows ({args.accounts} accounts): "
          f"{time.perf_counter() - started:.2f} s, {sum(c.complete for c in coverage.values())} complete")

    pack = {"account_id": "012345678901", "totals": {"month_to_date_usd": 3053.0, "change_usd": 1203.0,
                                                     "change_pct": 65.0}, "drivers": [{"service": "AmazonEC2"}]}
    text = ("Spend rose $1,203 (+65.0%) to $3,053.00 on the same days of October; AmazonEC2 drove most of it. "
            "Review the instances that started on the 14th and stop those no longer needed.")
    index = PackIndex.of(pack)
    seconds = per_call(lambda: ungrounded(text, index), 2000)
    print(f"grounding check of a 2-sentence explanation: {seconds * 1e6:.0f} us")


if __name__ == "__main__":
    main()
