"""Generated cost series that look like real billing and usage data, with labelled anomalies.

The demo organisation's series carry +-3% of bounded noise that costagent itself generates: a detector tuned
on it learns nothing about real bills. These series are built to be hard in the ways real ones are:

- **heavy-tailed day-to-day changes**: multiplicative noise from a Student t with 3 degrees of freedom, at a
  scale drawn per series from 2% to 25% (storage is smooth, request-driven usage is not);
- **drifting levels**: a random walk on the log level, and weekday patterns (weekend dips) of varying depth;
- **regime changes that are not anomalies**: slow ramps (+-15..40% over 3 to 6 weeks), a month of doubled
  volatility, a weekday pattern that changes; none of them is labelled, so an alert on one is a false alarm;
- **missing days** (the account has no rows at all on a few days: a source gap, not $0) and **partial first
  and last months** (accounts that start mid-month, accounts whose spend stops mid-month);
- **scale**: series from $5/day to $50,000/day.

Labelled anomalies come in three shapes: a one-day **spike**, a **burst** of 2 to 4 elevated days, and a
**step** (a new level that persists). Their sizes are drawn relative to the series' own noise (a spike of
5 to 14 noise scales, a step of 3 to 8, never under +30% and +35%), so a quiet series gets subtle anomalies
and a wild one gets large ones. An anomaly is *material* (scored) when it adds at least 3 x the $ floor
within its month and at least the % threshold; smaller ones are labelled too but not scored either way.

Pure Python (``random``), deterministic for a seed; no numpy.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import date, timedelta

import polars as pl

SERVICES = ("AmazonEC2", "AmazonS3", "AWSLambda", "AmazonRDS", "AmazonCloudFront", "AmazonDynamoDB")
NOISE_SCALES = (0.02, 0.04, 0.08, 0.15, 0.25)  # t(3) scale of the daily log noise, per series
T_DF = 3
T_CAP = 12.0  # the t draw is capped so one day is never a 10^10 bill


@dataclass(frozen=True)
class Label:
    """One labelled anomaly: ``kind`` spike | burst | step, its first and last affected day (``end`` None for
    a step: it persists), the month of its start, the $ it adds within that month and its size as a
    fraction of the usual level; ``material`` when the $ floor and % threshold make it worth an alert."""

    account_id: str
    service: str
    kind: str
    start: date
    end: date | None
    month: str
    extra_usd: float
    size: float
    material: bool


@dataclass(frozen=True)
class NoisyOrganisation:
    """Daily raw cost rows (the raw_costs schema), the labels, and per series its scale and noise."""

    raw: pl.DataFrame
    labels: list[Label]
    series: pl.DataFrame  # account_id, service, level_usd, noise_scale, regime (the unlabelled change, if any)


def _t(rng: random.Random, df: int = T_DF) -> float:
    """A Student t draw (normal over the root of a scaled chi-square), capped at +-T_CAP."""
    chi = sum(rng.gauss(0, 1) ** 2 for _ in range(df))
    return max(-T_CAP, min(T_CAP, rng.gauss(0, 1) / math.sqrt(chi / df)))


def _month(d: date) -> str:
    return f"{d:%Y-%m}"


def _next_month_start(d: date) -> date:
    return date(d.year + (d.month == 12), d.month % 12 + 1, 1)


def generate(
    accounts: int = 40, start: date = date(2025, 1, 1), end: date = date(2025, 12, 31), *, seed: int = 17,
    min_usd: float = 100.0, threshold_pct: float = 20.0,
) -> NoisyOrganisation:
    """A noisy organisation of ``accounts`` accounts with 1 to 4 services each, daily from ``start`` to
    ``end``; anomalies labelled material against ``min_usd`` and ``threshold_pct``."""
    rng = random.Random(seed)
    days = [start + timedelta(d) for d in range((end - start).days + 1)]
    rows: list[tuple] = []
    labels: list[Label] = []
    series_rows: list[dict] = []
    for a in range(accounts):
        account_id = f"{900000000000 + a:012d}"
        # Partial first and last months: a third of the accounts start late, one in eight stops spending.
        first = start + timedelta(rng.randrange(0, 100)) if rng.random() < 0.33 else start
        last = end - timedelta(rng.randrange(20, 120)) if rng.random() < 0.125 else end
        # Source gaps: the account has no rows at all on these days.
        gaps: set[date] = set()
        for _ in range(rng.choice((0, 0, 1, 2, 3))):
            g = rng.choice(days)
            gaps |= {g + timedelta(i) for i in range(rng.randint(1, 3))}
        # The account's size ($5/day .. $50,000/day for its largest service), shared by its services.
        account_level = math.exp(rng.uniform(math.log(5), math.log(50_000)))
        for s, service in enumerate(rng.sample(SERVICES, rng.randint(1, 4))):
            level = account_level * (1.0 if s == 0 else math.exp(rng.uniform(math.log(0.05), math.log(0.8))))
            sigma = rng.choice(NOISE_SCALES)
            weekend = rng.uniform(0.55, 1.0)
            values, regime = _series(rng, days, level, sigma, weekend)
            events = _anomalies(rng, days, first, last, sigma)
            for kind, a_start, a_end, size in events:
                # Its $ within its own month, on the days the account has rows.
                month_end = _next_month_start(a_start) - timedelta(1)
                extra = 0.0
                for i, d in enumerate(days):
                    if d >= a_start and (a_end is None or d <= a_end):
                        add = values[i] * size
                        values[i] += add
                        if d <= month_end and first <= d <= last and d not in gaps:
                            extra += add
                material = extra >= 3 * min_usd and size * 100 >= threshold_pct
                labels.append(Label(account_id, service, kind, a_start, a_end, _month(a_start), round(extra, 2),
                                    round(size, 3), material))
            for d, value in zip(days, values, strict=True):
                if first <= d <= last and d not in gaps:
                    rows.append((d, account_id, service, round(value, 4)))
            series_rows.append({"account_id": account_id, "service": service, "level_usd": round(level, 2),
                                "noise_scale": sigma, "regime": regime})
    raw = pl.DataFrame(rows, schema={"date": pl.Date, "account_id": pl.String, "service": pl.String,
                                     "cost_usd": pl.Float64}, orient="row")
    raw = raw.with_columns(
        pl.col("date").dt.strftime("%Y-%m").alias("month"), pl.lit("us-east-1").alias("region"),
        (pl.col("service") + pl.lit("-usage")).alias("usage_type"), pl.lit("noisy").alias("source"),
    ).select("month", "date", "account_id", "service", "region", "usage_type", "cost_usd", "source")
    return NoisyOrganisation(raw.sort("account_id", "date", "service"), labels, pl.DataFrame(series_rows))


def _series(rng: random.Random, days: list[date], level: float, sigma: float, weekend: float) -> tuple[list, str]:
    """The cost per day: level x drift x weekday x heavy-tailed noise, with one unlabelled regime change
    (a slow ramp, a month of doubled volatility, a new weekday pattern) in most series."""
    n = len(days)
    regime = rng.choice(("ramp", "ramp", "volatility", "weekdays", "none"))
    at = rng.randrange(30, n - 40)
    span = rng.randint(21, 42)
    ramp = rng.choice((-1, 1)) * rng.uniform(0.15, 0.40)
    walk, out = 0.0, []
    for i, d in enumerate(days):
        walk += rng.gauss(0, 0.006)
        log_level = math.log(level) + walk
        if regime == "ramp" and i >= at:
            log_level += math.log1p(ramp) * min(1.0, (i - at) / span)
        scale = sigma * (2 if regime == "volatility" and at <= i < at + 30 else 1)
        depth = weekend if not (regime == "weekdays" and i >= at) else 1.0 - (1.0 - weekend) / 2
        factor = depth if d.isoweekday() >= 6 else 1.0
        out.append(math.exp(log_level + scale * _t(rng)) * factor)
    return out, regime


def _anomalies(rng: random.Random, days: list[date], first: date, last: date, sigma: float) -> list[tuple]:
    """(kind, start, end, size) of the series' anomalies: about one a year, none in its first six weeks (an
    anomaly needs a usual level to stand out from) and at least 45 days apart."""
    out: list[tuple] = []
    earliest = max(first, days[0]) + timedelta(42)
    for _ in range(rng.choice((0, 1, 1, 2))):
        if earliest >= last:
            break
        a_start = earliest + timedelta(rng.randrange(0, max(1, (last - earliest).days)))
        kind = rng.choice(("spike", "burst", "step"))
        if kind == "step":
            size = max(math.exp(sigma * rng.uniform(3, 8)) - 1, rng.uniform(0.35, 1.5))
            out.append((kind, a_start, None, size))
        else:
            size = max(math.exp(sigma * rng.uniform(5, 14)) - 1, rng.uniform(0.3, 4.0))
            length = 1 if kind == "spike" else rng.randint(2, 4)
            out.append((kind, a_start, a_start + timedelta(length - 1), size))
        earliest = a_start + timedelta(45)
    return out
