"""Measured anomaly-detection quality on generated noisy series and on the demo organisation.

First table: series that look like real billing and usage data (``benchmarks/noisy_series.py``: heavy-tailed
noise, drifting levels, regime changes that are not anomalies, missing days, partial months, $5 to
$50,000 a day) with labelled spikes, bursts and steps. Weekly runs as a user would get them; an alert on
(month, account, service) is a hit when a material labelled anomaly starts there. Printed: precision, recall
and F1, per alert kind (precision) and per labelled shape (recall), the alert volume per clean
account-month, and the same for a plain z-score baseline computed in the same run (each day against the
mean and standard deviation of the 168 days before, 4 sigma, with the same $ floor and % threshold).

Second table: the demo organisation, whose planted anomalies are ground truth. Runs the pure detector (no Dagster) the way the weekly job would: for every month, reports as of the
8th, 15th and 22nd and as of the 1st of the next month (the whole month). An anomaly counts as found
when any of those runs alerts it (account, service, month); its kind is the last run's. Prints
precision, recall and F1 per kind (spike, step, new service), the false alarms on account-months with
nothing planted, and the same with the demo's daily noise raised.

Scoring choices:
- Ground truth is ``demo.planted_anomalies`` above the $ floor. Below-floor plants must NOT be alerted:
  an alert on one is a false positive.
- Carry-overs: a step or new service planted in month M still makes M+1's first days higher than M's
  same days. An alert on that account and service in M+1 is neither a hit nor a false alarm; it is
  counted apart (the detector reports such rises as "carry-over", not alerted, so it should be ~0).
- "kind-strict" needs the right kind (spike / step / new_service); "found" accepts any alert kind.

    python benchmarks/anomaly_quality.py [--noisy-accounts 120] [--from 2025-01] [--to 2026-10] [--accounts 84]
                                         [--noise 0.03 0.08 0.15]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from datetime import date, timedelta
from pathlib import Path

import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import noisy_series  # noqa: E402
from costagent_assets.analysis import compute_mom_changes, deduplicate_raw_costs  # noqa: E402
from costagent_assets.anomaly_detection import AnomalyRule, detect_anomalies  # noqa: E402
from costagent_assets.demo import organisation as demo  # noqa: E402
from costagent_assets.periods import month_start, months_between, period, report_month, shift_month  # noqa: E402

KINDS = ("spike", "step", "new_service")
RUN_DAYS = (8, 15, 22)


def detect_as_of(
    raw: pl.DataFrame, accounts: list[str], as_of: date, rule: AnomalyRule, daily: bool = True
) -> pl.DataFrame:
    """The anomalies a weekly run made on ``as_of`` would store (its month, all accounts); with ``daily``
    False, the month-to-date rule alone (the detector before issue 5)."""
    month = report_month(as_of)
    first = month_start(shift_month(month, -2))
    window = raw.filter((pl.col("date") >= first) & (pl.col("date") < as_of))
    periods = {month: period(month, as_of)}
    mom = compute_mom_changes(window, periods, [(month, a) for a in accounts])
    return detect_anomalies(mom, rule, raw=window if daily else None)


def run_dates(month: str) -> list[date]:
    start = month_start(month)
    return [start.replace(day=d) for d in RUN_DAYS] + [month_start(shift_month(month, 1))]


def evaluate(accounts: list[str], first: str, last: str, noise: float, rule: AnomalyRule) -> dict:
    """Precision, recall and F1 per kind over months first..last, at one noise level."""
    raw = demo.generate_costs(
        accounts, month_start(shift_month(first, -2)), month_start(shift_month(last, 1)) - timedelta(days=1),
        noise=noise,
    )
    raw = deduplicate_raw_costs(raw.with_columns(pl.col("date").dt.strftime("%Y-%m").alias("month")))
    found: dict[tuple[str, str, str], str] = {}
    first_seen: dict[tuple[str, str, str], date] = {}
    for month in months_between(first, last):
        for as_of in run_dates(month):
            rows = detect_as_of(raw, accounts, as_of, rule).filter(
                pl.col("alerted") & (pl.col("level") == "service")
            )
            for r in rows.iter_rows(named=True):
                k = (r["month"], r["account_id"], r["service"])
                found[k] = r["kind"]
                first_seen.setdefault(k, as_of)
    truth = demo.planted_anomalies(accounts, first, last)
    above = {(t.month, t.account_id, t.service): t for t in truth if t.above_floor}
    below = {(t.month, t.account_id, t.service) for t in truth if not t.above_floor}
    carried = {
        (shift_month(t.month, 1), t.account_id, t.service) for t in truth if t.kind in ("step", "new_service")
    }
    planted_months = {(t.month, t.account_id) for t in truth} | {(m, a) for m, a, _ in carried}

    stats = {}
    for kind in KINDS:
        truths = {k for k, t in above.items() if t.kind == kind}
        predicted = {k for k, v in found.items() if v == kind and k not in carried}
        tp = len(truths & predicted)
        precision = tp / len(predicted) if predicted else 1.0
        recall = tp / len(truths) if truths else 1.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        any_found = sum(1 for k in truths if k in found)
        stats[kind] = {
            "truths": len(truths), "predicted": len(predicted), "tp": tp, "precision": precision,
            "recall": recall, "f1": f1, "found_any_kind": any_found / len(truths) if truths else 1.0,
        }
    scored = {k: v for k, v in found.items() if k not in carried}
    tp_all = sum(1 for k in scored if k in above)
    stats["all"] = {
        "truths": len(above), "predicted": len(scored), "tp": tp_all,
        "precision": tp_all / len(scored) if scored else 1.0,
        "recall": sum(1 for k in above if k in found) / len(above) if above else 1.0,
    }
    p, r = stats["all"]["precision"], stats["all"]["recall"]
    stats["all"]["f1"] = 2 * p * r / (p + r) if p + r else 0.0
    stats["below_floor_alerted"] = len(below & set(found))
    stats["below_floor"] = len(below)
    stats["carry_over_alerts"] = len(set(found) & carried)
    false_alarms = [k for k in scored if k not in above]
    stats["false_alarms"] = len(false_alarms)
    stats["false_alarms_on_clean_account_months"] = sum(1 for m, a, _ in false_alarms if (m, a) not in planted_months)
    stats["clean_account_months"] = len(months_between(first, last)) * len(accounts) - len(
        {(m, a) for m, a in planted_months if first <= m <= last}
    )
    stats["false_alarm_kinds"] = dict(Counter(found[k] for k in false_alarms))
    delays = [
        (first_seen[k] - above[k].start).days for k in above if k in first_seen and above[k].kind == "spike"
    ]
    stats["spike_days_to_first_alert_median"] = sorted(delays)[len(delays) // 2] if delays else None
    # Early detection: is each planted spike alerted by a run made two days after it starts?
    early = {True: 0, False: 0}
    spikes = [t for t in above.values() if t.kind == "spike"]
    for t in spikes:
        one = raw.filter(pl.col("account_id") == t.account_id)
        for daily in (True, False):
            rows = detect_as_of(one, [t.account_id], t.start + timedelta(days=2), rule, daily=daily)
            early[daily] += rows.filter(pl.col("alerted") & (pl.col("service") == t.service)).height > 0
    stats["spikes_alerted_on_day_2"] = (early[True], early[False], len(spikes))
    stats["injected"] = injected_spikes(raw, accounts, months_between(first, last)[-6:], planted_months, rule)
    return stats


def injected_spikes(
    raw: pl.DataFrame, accounts: list[str], months: list[str], planted: set, rule: AnomalyRule
) -> dict:
    """Smaller, later spikes than the demo plants: one day at 2.5x a service's usual cost (and >= $150 extra)
    on the 18th, on the largest service of every account-month with nothing planted. Found by a run on the
    20th? The month-to-date rule alone sees +1.5 days of spend against 18 days: mostly not."""
    found = {True: 0, False: 0}
    total = 0
    for month in months:
        day = month_start(month).replace(day=18)
        as_of = day + timedelta(days=2)
        before = raw.filter((pl.col("date") >= day - timedelta(days=28)) & (pl.col("date") < day))
        usual = (
            before.group_by("account_id", "service").agg((pl.col("cost_usd").sum() / 28).alias("usual"))
            .filter(pl.col("account_id").is_in([a for a in accounts if (month, a) not in planted]))
            .sort("usual", descending=True)
            .unique("account_id", keep="first")
            .with_columns(pl.max_horizontal(1.5 * pl.col("usual"), pl.lit(150.0)).alias("extra"))
        )
        spikes = usual.select(
            "account_id", "service", pl.lit(month).alias("month"), pl.lit(day).alias("date"),
            pl.lit("us-east-1").alias("region"), pl.lit("injected").alias("usage_type"),
            pl.col("extra").alias("cost_usd"), pl.lit("injected").alias("source"),
        )
        spiked = pl.concat([raw, spikes.select(raw.columns)], how="vertical_relaxed")
        total += spikes.height
        for daily in (True, False):
            rows = detect_as_of(spiked, accounts, as_of, rule, daily=daily).filter(pl.col("alerted"))
            hits = rows.join(spikes.select("account_id", "service"), on=["account_id", "service"], how="semi")
            found[daily] += hits.height
    return {"total": total, "daily": found[True], "month_to_date_only": found[False]}


# --- Noisy series ----------------------------------------------------------------------------------------

Z_WINDOW, Z_MIN_POINTS, Z_SIGMAS = 168, 28, 4.0


def zscore_alerts(raw: pl.DataFrame, rule: AnomalyRule) -> dict[tuple[str, str, str], str]:
    """The z-score baseline: per service, each day against the mean and standard deviation of the (up to)
    168 days with data before it; a day more than 4 sigma above is flagged. A (month, account, service) is
    alerted when its flagged days add at least the $ floor over the mean and one is above the % threshold."""
    svc = raw.group_by("account_id", "service", "date").agg(pl.col("cost_usd").sum())
    first = svc.group_by("account_id", "service").agg(pl.col("date").min().alias("first_seen"))
    grid = (
        first.join(raw.select("account_id", "date").unique(), on="account_id")
        .filter(pl.col("date") >= pl.col("first_seen"))
        .join(svc, on=["account_id", "service", "date"], how="left")
        .with_columns(pl.col("cost_usd").fill_null(0.0))
        .sort("account_id", "service", "date")
    )
    keys = ["account_id", "service"]
    before = pl.col("cost_usd").shift(1)
    grid = grid.with_columns(
        before.rolling_mean(Z_WINDOW, min_samples=Z_MIN_POINTS).over(keys).alias("mean"),
        before.rolling_std(Z_WINDOW, min_samples=Z_MIN_POINTS).over(keys).alias("std"),
    )
    excess = pl.col("cost_usd") - pl.col("mean")
    flagged = grid.filter(
        pl.col("std").is_not_null() & (excess > Z_SIGMAS * pl.col("std")) & (excess > 0)
    ).with_columns(excess.alias("excess"), pl.col("date").dt.strftime("%Y-%m").alias("month"))
    months = flagged.group_by("month", *keys).agg(
        pl.col("excess").sum(), (pl.col("excess") / pl.col("mean") * 100).max().alias("pct")
    ).filter((pl.col("excess") >= rule.min_usd) & ((pl.col("pct") >= rule.threshold_pct) | pl.col("pct").is_infinite()))
    return {(m, a, s): "zscore" for m, a, s in months.select("month", *keys).iter_rows()}


def detector_alerts(raw: pl.DataFrame, months: list[str], rule: AnomalyRule) -> dict[tuple[str, str, str], str]:
    """(month, account, service) -> kind of every service alert the weekly runs of ``months`` made (the last
    run's kind), as a user would get them."""
    found: dict[tuple[str, str, str], str] = {}
    for month in months:
        accounts = raw.filter(pl.col("month") == month)["account_id"].unique().sort().to_list()
        for as_of in run_dates(month):
            rows = detect_as_of(raw, accounts, as_of, rule).filter(pl.col("alerted") & (pl.col("level") == "service"))
            for r in rows.iter_rows(named=True):
                found[(r["month"], r["account_id"], r["service"])] = r["kind"]
    return found


def score_noisy(org: noisy_series.NoisyOrganisation, months: list[str], found: dict) -> dict:
    """Precision, recall, F1 of ``found`` against the labels of ``months``; per alert kind and per shape."""
    labels = [t for t in org.labels if t.month in months]
    truths = {(t.month, t.account_id, t.service): t for t in labels if t.material}
    # Not scored either way: labels under the floor, and the month after an anomaly that lasts into it (a
    # step's new level, a burst across the month's end).
    ignored = {(t.month, t.account_id, t.service) for t in labels if not t.material}
    ignored |= {
        (shift_month(t.month, 1), t.account_id, t.service) for t in org.labels
        if t.end is None or t.end.strftime("%Y-%m") != t.month
    }
    ignored -= set(truths)
    scored = {k: v for k, v in found.items() if k[0] in months and k not in ignored}
    hits = {k for k in scored if k in truths}
    precision = len(hits) / len(scored) if scored else 1.0
    recall = len(hits) / len(truths) if truths else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    labelled = {(t.month, t.account_id) for t in org.labels} | {(m, a) for m, a, _ in ignored}
    account_months = org.raw.filter(pl.col("month").is_in(months)).select("month", "account_id").unique()
    clean = [(m, a) for m, a in account_months.iter_rows() if (m, a) not in labelled]
    clean_alerts = sum(1 for (m, a, _s) in scored if (m, a) not in labelled)
    by_kind = Counter(v for v in scored.values())
    kind_hits = Counter(v for k, v in scored.items() if k in hits)
    shapes = {}
    for shape in ("spike", "burst", "step"):
        keys = {k for k, t in truths.items() if t.kind == shape}
        shapes[shape] = (len(keys & hits), len(keys))
    noise = {(r["account_id"], r["service"]): r["noise_scale"] for r in org.series.iter_rows(named=True)}
    false_by_noise = Counter(noise[(a, s)] for (m, a, s) in scored if (m, a, s) not in truths)
    return {
        "truths": len(truths), "alerts": len(scored), "hits": len(hits), "precision": precision, "recall": recall,
        "f1": f1, "by_kind": {k: (kind_hits[k], n) for k, n in sorted(by_kind.items())}, "shapes": shapes,
        "clean_account_months": len(clean), "clean_alerts": clean_alerts,
        "per_clean_account_month": clean_alerts / len(clean) if clean else 0.0,
        "ignored_alerts": sum(1 for k in found if k[0] in months and k in ignored),
        "false_by_noise": dict(sorted(false_by_noise.items())),
    }


def print_noisy(org: noisy_series.NoisyOrganisation, months: list[str], ours: dict, z: dict, seconds: float) -> None:
    series = org.series.height
    accounts = org.raw["account_id"].n_unique()
    print(f"noisy series: {accounts} accounts, {series} series, months {months[0]}..{months[-1]}, weekly runs "
          f"({seconds:.0f} s)")
    print(f"  {'detector':<22} {'labelled':>8} {'alerts':>6} {'hits':>5} {'precision':>9} {'recall':>7} {'F1':>6} "
          f"{'alerts per clean account-month':>31}")
    for name, s in (("costagent", ours), ("z-score (168 d, 4 sd)", z)):
        print(f"  {name:<22} {s['truths']:>8} {s['alerts']:>6} {s['hits']:>5} {s['precision']:>9.3f} "
              f"{s['recall']:>7.3f} {s['f1']:>6.3f} {s['per_clean_account_month']:>31.3f}")
    ratio = ours["f1"] / z["f1"] if z["f1"] else float("inf")
    print(f"  F1 ratio costagent / z-score: {ratio:.2f}")
    print("  costagent alerts by kind (hits/alerts): "
          + ", ".join(f"{k} {h}/{n}" for k, (h, n) in ours["by_kind"].items()))
    print("  recall by labelled shape (found/labelled): "
          + ", ".join(f"{k} {h}/{n}" for k, (h, n) in ours["shapes"].items())
          + "   z-score: " + ", ".join(f"{k} {h}/{n}" for k, (h, n) in z["shapes"].items()))
    print(f"  false alerts by the series' noise scale: costagent {ours['false_by_noise']}, z-score {z['false_by_noise']}")
    print(f"  alerts on unscored months (under-floor labels, the month after a step): costagent "
          f"{ours['ignored_alerts']}, z-score {z['ignored_alerts']}; clean account-months: "
          f"{ours['clean_account_months']} ({ours['clean_alerts']} false alerts on them)")


def evaluate_noisy(accounts: int, rule: AnomalyRule, seed: int = 17) -> None:
    """Generate the noisy organisation, run both detectors, print the table."""
    started = time.perf_counter()
    org = noisy_series.generate(accounts, seed=seed, min_usd=rule.min_usd, threshold_pct=rule.threshold_pct)
    months = months_between("2025-02", "2025-12")
    ours = score_noisy(org, months, detector_alerts(org.raw, months, rule))
    z = score_noisy(org, months, zscore_alerts(org.raw, rule))
    print_noisy(org, months, ours, z, time.perf_counter() - started)


def print_stats(noise: float, stats: dict, seconds: float) -> None:
    print(f"\nnoise +-{noise * 100:.0f}%  ({seconds:.0f} s)")
    print(f"  {'kind':<12} {'truths':>6} {'alerts':>6} {'hits':>5} {'precision':>9} {'recall':>7} {'F1':>6} {'found(any kind)':>16}")
    for kind in (*KINDS, "all"):
        s = stats[kind]
        extra = f"{s['found_any_kind']:>16.3f}" if "found_any_kind" in s else ""
        print(f"  {kind:<12} {s['truths']:>6} {s['predicted']:>6} {s['tp']:>5} {s['precision']:>9.3f} "
              f"{s['recall']:>7.3f} {s['f1']:>6.3f}{extra}")
    print(f"  false alarms: {stats['false_alarms']} in all, {stats['false_alarms_on_clean_account_months']} on "
          f"{stats['clean_account_months']} account-months with nothing planted; by kind {stats['false_alarm_kinds']}")
    print(f"  below-floor plants alerted: {stats['below_floor_alerted']} of {stats['below_floor']}; "
          f"carry-over alerts (not scored): {stats['carry_over_alerts']}; "
          f"median days from a spike's start to its first alert (weekly runs): {stats['spike_days_to_first_alert_median']}")
    daily, mtd, total = stats["spikes_alerted_on_day_2"]
    print(f"  spikes alerted by a run 2 days after they start: {daily} of {total} "
          f"(the month-to-date rule alone: {mtd} of {total})")
    inj = stats["injected"]
    print(f"  injected 1-day spikes (2.5x usual, on the 18th) alerted by the run on the 20th: {inj['daily']} of "
          f"{inj['total']} (the month-to-date rule alone: {inj['month_to_date_only']} of {inj['total']})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--from", dest="first", default="2025-01")
    parser.add_argument("--to", dest="last", default="2026-10")
    parser.add_argument("--accounts", type=int, default=84)
    parser.add_argument("--noise", type=float, nargs="+", default=[0.03, 0.08, 0.15])
    parser.add_argument("--noisy-accounts", type=int, default=120)
    parser.add_argument("--seed", type=int, default=17, help="the noisy series' seed")
    args = parser.parse_args(argv)
    rule = AnomalyRule()
    evaluate_noisy(args.noisy_accounts, rule, args.seed)
    print()
    accounts = [t["aws_account_id"] for t in demo.demo_teams(args.accounts)]
    print(f"demo organisation: {len(accounts)} accounts, months {args.first}..{args.last}, "
          f"runs as of the {', '.join(map(str, RUN_DAYS))} and the 1st of the next month; "
          f"rule {rule.threshold_pct:g}% and ${rule.min_usd:g}")
    for noise in args.noise:
        started = time.perf_counter()
        stats = evaluate(accounts, args.first, args.last, noise, rule)
        print_stats(noise, stats, time.perf_counter() - started)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
