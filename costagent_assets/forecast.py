"""Forecasts of daily cost, computed in DuckDB SQL from the daily history.

The model, per series (an account's total, or one of its main services), from the 8 weeks up to a
cutoff day:

* weekly seasonality: a factor per weekday, the weekday's median over the median of all days;
* level: the median of the last 14 deseasonalised days (a median, so a one-off spike does not drag the
  forecast up, while a step change is the new level within a week);
* trend: the median week-on-week log ratio of the 8 weekly medians (a median, so one step change is not
  read as growth), shrunk towards no trend by its own standard error (weeks that disagree, as a drifting
  level's do, project little of it), per month, capped at +/-30% and applied from the middle of the level
  window;
* interval: the model's 80% from the series' own daily noise (MAD of the log residuals) for the days
  summed, the uncertainty of the level, how far the level wanders week to week (the spread of the weekly
  log ratios) over the horizon, and a trend term growing with the horizon; then re-scaled so that
  80% of the account's own backtested months would have fallen inside (:func:`interval_factors`).

A series with less than 14 days of history gets no forecast and says so ("insufficient_history").
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, timedelta

import duckdb
import polars as pl

from costagent_assets.analysis import MICRO, micro_sum
from costagent_assets.anomaly_detection import sorted_enum
from costagent_assets.isolation import UNAVAILABLE
from costagent_assets.periods import Period, period, shift_month
from costagent_assets.schemas import conform, empty

HISTORY_DAYS = 56
LEVEL_DAYS = 14
MIN_HISTORY_DAYS = 14
TREND_MIN_DAYS = 56
MAX_MONTHLY_GROWTH = 0.30
# How hard an uncertain trend is shrunk towards none (the weight of the squared standard error): chosen on
# benchmarks/forecast_backtest.py, where 1.0 keeps the demo's MAPE and cuts the noisy series' by a tenth.
TREND_SHRINK = 1.0
# z for a central 80% interval.
Z80 = 1.2816
# Trend uncertainty per month of horizon, as a fraction of the level: calibrated on the demo backtest so
# that about 80% of actual months fall inside the interval (see benchmarks/forecast_backtest.py).
TREND_SIGMA_PER_MONTH = 0.01
MAIN_SERVICES = 5
# Interval calibration (interval_factors): backtested months looked back on, and how many scores make a basis.
CALIBRATION_MONTHS = 6
MIN_ACCOUNT_SCORES = 8
MIN_POOLED_SCORES = 30

TARGET_SCHEMA = {
    "target_id": pl.Int64,
    "account_id": pl.String,
    "service": pl.String,
    "cutoff": pl.Date,
    "target_start": pl.Date,
    "target_end": pl.Date,
}

_FORECAST_SQL = f"""
WITH t AS (SELECT * FROM targets),
h AS (
  SELECT t.target_id, d.date, d.cost_usd AS y
  FROM t JOIN daily d ON d.account_id = t.account_id AND d.service = t.service
   AND d.date <= t.cutoff AND d.date > t.cutoff - INTERVAL {HISTORY_DAYS} DAY
),
span AS (
  SELECT t.target_id, t.cutoff, min(d.date) AS first_date
  FROM t JOIN daily d ON d.account_id = t.account_id AND d.service = t.service AND d.date <= t.cutoff
  GROUP BY ALL
),
-- A dense calendar from the series' first day (or the window's start): a day without a row costs $0.
cal AS (
  SELECT s.target_id, s.cutoff,
         unnest(generate_series(greatest(s.first_date, s.cutoff - INTERVAL {HISTORY_DAYS - 1} DAY)::TIMESTAMP,
                                s.cutoff::TIMESTAMP, INTERVAL 1 DAY))::DATE AS date
  FROM span s
),
dense AS (
  SELECT c.target_id, c.date, coalesce(h.y, 0) AS y, isodow(c.date) AS dow, datediff('day', c.date, c.cutoff) AS age
  FROM cal c LEFT JOIN h USING (target_id, date)
),
stats AS (SELECT target_id, count(*) AS n_days, median(y) AS med_all FROM dense GROUP BY ALL),
dowf AS (
  SELECT d.target_id, d.dow,
         CASE WHEN s.n_days >= 28 AND s.med_all > 0 THEN greatest(median(d.y) / s.med_all, 0.05) ELSE 1.0 END AS f
  FROM dense d JOIN stats s USING (target_id)
  GROUP BY d.target_id, d.dow, s.n_days, s.med_all
),
ds AS (SELECT d.*, d.y / f.f AS z FROM dense d JOIN dowf f USING (target_id, dow)),
lv AS (SELECT target_id, median(z) FILTER (WHERE age < {LEVEL_DAYS}) AS level FROM ds GROUP BY ALL),
-- Trend: the median of the week-on-week ratios of weekly medians, so that one step change (a single
-- jump between two weeks) does not read as growth.
weeks AS (SELECT target_id, age // 7 AS wk, median(z) AS wm FROM ds GROUP BY ALL),
ratios AS (
  SELECT a.target_id, ln(a.wm / b.wm) AS r
  FROM weeks a JOIN weeks b ON a.target_id = b.target_id AND b.wk = a.wk + 1
  WHERE a.wm > 0 AND b.wm > 0
),
-- The median log ratio is shrunk towards 0 by how well the weeks agree on it (m^2 / (m^2 + se^2), se from
-- the ratios' MAD): a steady ramp keeps its trend, a drifting level's week-to-week wobble is not projected.
-- The same spread, per week, is how far the level may wander over the horizon (drift_week).
trend_raw AS (
  SELECT target_id, median(r) AS m, 1.4826 * mad(r) AS drift_week, count(*) AS n_ratios FROM ratios GROUP BY ALL
),
trend AS (
  SELECT target_id, drift_week,
         exp(m * pow(m, 2) / (pow(m, 2) + {TREND_SHRINK} * pow(coalesce(drift_week, 0), 2) / n_ratios + 1e-12))
           AS weekly_ratio
  FROM trend_raw
),
model AS (
  SELECT l.target_id, s.n_days, l.level,
         CASE WHEN s.n_days >= {TREND_MIN_DAYS} AND tr.weekly_ratio > 0
              THEN least(greatest(pow(tr.weekly_ratio, 30.0 / 7) - 1, -{MAX_MONTHLY_GROWTH}), {MAX_MONTHLY_GROWTH})
              ELSE 0 END AS growth,
         coalesce(tr.drift_week, 0) AS drift_week
  FROM lv l JOIN stats s USING (target_id) LEFT JOIN trend tr USING (target_id)
),
noise AS (
  SELECT ds.target_id,
         1.4826 * median(abs(ln((ds.z + 0.01) / (m.level + 0.01)))) FILTER (WHERE ds.age < 28) AS sigma_day
  FROM ds JOIN model m USING (target_id) GROUP BY ALL
),
future AS (
  SELECT t.target_id, t.cutoff,
         unnest(generate_series(greatest(t.target_start, t.cutoff + INTERVAL 1 DAY)::TIMESTAMP,
                                t.target_end::TIMESTAMP, INTERVAL 1 DAY))::DATE AS date
  FROM t WHERE t.target_end > t.cutoff
),
pred AS (
  SELECT fu.target_id,
         sum(m.level * coalesce(f.f, 1.0)
             * pow(1 + m.growth, (datediff('day', fu.cutoff, fu.date) + {LEVEL_DAYS / 2}) / 30.0)) AS point,
         count(*) AS n_future,
         avg(datediff('day', fu.cutoff, fu.date)) AS mean_horizon
  FROM future fu JOIN model m USING (target_id)
  LEFT JOIN dowf f ON f.target_id = fu.target_id AND f.dow = isodow(fu.date)
  GROUP BY ALL
)
SELECT t.target_id, coalesce(m.n_days, 0) AS history_days, m.growth,
       CASE WHEN coalesce(m.n_days, 0) < {MIN_HISTORY_DAYS} THEN 'insufficient_history'
            WHEN m.n_days < {TREND_MIN_DAYS} THEN 'level_seasonal'
            ELSE 'level_seasonal_trend' END AS method,
       coalesce(p.point, 0.0) AS point, coalesce(p.n_future, 0) AS n_future,
       sqrt(pow(n.sigma_day, 2) / greatest(p.n_future, 1) + pow(n.sigma_day, 2) * 1.57 / {LEVEL_DAYS}
            + pow(m.drift_week, 2) * (coalesce(p.mean_horizon, 0) + {LEVEL_DAYS / 2}) / 7
            + pow({TREND_SIGMA_PER_MONTH} * (coalesce(p.mean_horizon, 0) + {LEVEL_DAYS / 2}) / 30.0, 2)) AS sigma_rel
FROM t LEFT JOIN model m USING (target_id) LEFT JOIN pred p USING (target_id) LEFT JOIN noise n USING (target_id)
"""


def forecast_sums(daily: pl.DataFrame, targets: pl.DataFrame) -> pl.DataFrame:
    """Forecast, for each target, the cost summed over its days after the cutoff.

    ``daily``: account_id, service, date, cost_usd (one row per series and day; the account total is the
    series with service "*"). ``targets``: TARGET_SCHEMA. Returns per target_id: history_days, method,
    growth (per month), point_usd, low_usd, high_usd (80%), and n_future (days forecast). A target
    with insufficient history has null amounts.
    """
    # One thread: a parallel SUM adds in varying order, and a rerun must reproduce its bytes.
    con = duckdb.connect(config={"threads": 1})
    try:
        con.register("daily", daily.select("account_id", "service", "date", "cost_usd").to_arrow())
        con.register("targets", targets.select(list(TARGET_SCHEMA)).cast(TARGET_SCHEMA).to_arrow())
        out = pl.from_arrow(con.execute(_FORECAST_SQL).arrow())
    finally:
        con.close()
    usable = (pl.col("method") != "insufficient_history") & pl.col("point").is_not_null()
    out = out.with_columns(
        pl.when(usable).then(pl.col("point")).alias("point_usd"),
        pl.when(usable).then(pl.col("sigma_rel").fill_null(0.0)).alias("sigma_rel"),
        pl.col("n_future").fill_null(0),
    ).with_columns(interval(pl.col("point_usd"), pl.col("sigma_rel"), pl.lit(Z80)))
    return out.select("target_id", "history_days", "method", "growth", "point_usd", "low_usd", "high_usd", "n_future",
                      "sigma_rel")


def interval(point: pl.Expr, sigma_rel: pl.Expr, k: pl.Expr) -> list[pl.Expr]:
    """low_usd and high_usd: ``point`` divided and multiplied by exp(k x sigma_rel), the model's log-scale
    uncertainty; ``k`` is Z80 for the model alone, or calibrated on the backtests (:func:`interval_factors`)."""
    band = (k * sigma_rel).exp()
    return [(point / band).alias("low_usd"), (point * band).alias("high_usd")]


def interval_factors(backtests: pl.DataFrame, keys: pl.DataFrame) -> pl.DataFrame:
    """Per (month, account_id) of ``keys``: how many of the model's sigmas the 80% range must span for 80% of
    past outcomes to fall inside it (a split-conformal factor), from the backtests of the CALIBRATION_MONTHS
    before that month, and on what it rests (``interval_basis``):

    - "account": the account's own backtested months (its total and its main services), at least
      MIN_ACCOUNT_SCORES of them: a noisy account gets a wide range, a smooth one a narrow range;
    - "organisation": too few of its own, so every account's in those months (at least MIN_POOLED_SCORES);
    - "model": no backtests yet, the model's own estimate (Z80 sigmas), to be taken with care.

    The factor is the ceil(0.8 (n + 1))-th smallest of the n scores |ln(actual / forecast)| / sigma, so that
    with n past scores the range holds at least 80% in expectation."""
    scores = backtests.filter(
        pl.col("forecast_usd").is_not_null() & (pl.col("forecast_usd") > 0) & (pl.col("actual_usd") > 0)
        & (pl.col("high_usd") > pl.col("forecast_usd"))
    ).select(
        "account_id", pl.col("month").alias("scored_month"),
        ((pl.col("actual_usd") / pl.col("forecast_usd")).log().abs()
         / ((pl.col("high_usd") / pl.col("forecast_usd")).log() / Z80)).alias("score"),
    )
    keys = keys.select("month", "account_id").unique()
    windows = keys.select("month").unique().with_columns(
        pl.col("month").map_elements(lambda m: shift_month(m, -CALIBRATION_MONTHS), return_dtype=pl.String).alias("since")
    )
    in_window = (pl.col("scored_month") >= pl.col("since")) & (pl.col("scored_month") < pl.col("month"))
    pooled = windows.join(scores, how="cross").filter(in_window)

    def conformal(group: list[str], name: str) -> pl.DataFrame:
        ranked = pooled.sort("score").group_by(group, maintain_order=True).agg(pl.col("score"), pl.len().alias("n"))
        rank = ((0.8 * (pl.col("n") + 1)).ceil().cast(pl.Int64) - 1).clip(0, None)
        return ranked.select(*group, pl.col("score").list.get(pl.min_horizontal(rank, pl.col("n") - 1)).alias(name),
                             pl.col("n").alias(f"{name}_n"))

    own = conformal(["month", "account_id"], "k_account")
    org = conformal(["month"], "k_org")
    out = keys.join(own, on=["month", "account_id"], how="left").join(org, on="month", how="left")
    use_own = pl.col("k_account_n").fill_null(0) >= MIN_ACCOUNT_SCORES
    use_org = pl.col("k_org_n").fill_null(0) >= MIN_POOLED_SCORES
    return out.select(
        "month", "account_id",
        pl.when(use_own).then(pl.col("k_account")).when(use_org).then(pl.col("k_org")).otherwise(pl.lit(Z80))
        .alias("interval_k"),
        pl.when(use_own).then(pl.lit("account")).when(use_org).then(pl.lit("organisation")).otherwise(pl.lit("model"))
        .alias("interval_basis"),
    )


def series_frame(raw: pl.DataFrame) -> pl.DataFrame:
    """Daily series from raw cost rows: each account's total (service "*") and each of its services."""
    cols = ["account_id", "service", "date", "cost_usd"]
    # Grouped and sorted on integer codes in the strings' order (several times cheaper than on the strings).
    accounts, services = sorted_enum(raw["account_id"]), sorted_enum(raw["service"], "*")
    coded = raw.lazy().select(pl.col("account_id").cast(accounts), pl.col("service").cast(services), "date", "cost_usd")
    per_service = coded.group_by("account_id", "service", "date").agg(micro_sum("cost_usd").alias("cost_usd"))
    # Whole micro-dollars add up exactly: the account's total from its services' sums is the same integer
    # as from the raw rows, for a fraction of the rows.
    total = per_service.group_by("account_id", "date").agg(pl.col("cost_usd").sum())
    both = pl.concat([total.with_columns(pl.lit("*", dtype=services).alias("service")).select(cols),
                      per_service.select(cols)])
    return (both.with_columns(pl.col("cost_usd") / MICRO).sort(cols[:3])
            .with_columns(pl.col("account_id", "service").cast(pl.String)).collect())


def main_services(raw: pl.DataFrame, cutoffs: pl.DataFrame, top: int = MAIN_SERVICES) -> pl.DataFrame:
    """For each (month, account_id, cutoff) row of ``cutoffs``: the account's total ("*") and its ``top``
    services by spend over the 28 days up to the cutoff."""
    # Only the columns the ranking needs: the raw rows' own "month" must not stand in for the cutoff's.
    # Account and service as Enum codes in their strings' order: joined, grouped and sorted on integers.
    accounts, services = sorted_enum(raw["account_id"]), sorted_enum(raw["service"])
    ranked = (
        raw.lazy()
        .select(pl.col("account_id").cast(accounts), pl.col("service").cast(services), "date", "cost_usd")
        .join(cutoffs.lazy().with_columns(pl.col("account_id").cast(accounts, strict=False)), on="account_id")
        .filter((pl.col("date") <= pl.col("cutoff")) & (pl.col("date") > pl.col("cutoff") - pl.duration(days=28)))
        .group_by("month", "account_id", "cutoff", "service")
        .agg(micro_sum("cost_usd").alias("cost_usd"))
        .sort(["month", "account_id", "cost_usd", "service"], descending=[False, False, True, False])
        .group_by("month", "account_id", "cutoff", maintain_order=True)
        .head(top)
        .select("month", pl.col("account_id", "service").cast(pl.String), "cutoff")
        .select("month", "account_id", "cutoff", "service")
        .collect()
    )
    return pl.concat([cutoffs.with_columns(pl.lit("*").alias("service")).select(ranked.columns), ranked])


def _with_targets(series_keys: pl.DataFrame) -> pl.DataFrame:
    return series_keys.with_row_index("target_id").with_columns(pl.col("target_id").cast(pl.Int64))


def compute_forecasts(
    raw: pl.DataFrame,
    periods: Mapping[str, Period],
    partitions: Iterable[tuple[str, str]],
    backtests: pl.DataFrame,
) -> pl.DataFrame:
    """Per account and its main services: the month-end and next-month forecasts with 80% intervals,
    from the daily history up to each month's last covered day, and the account's track record from
    the backtests of the six months before."""
    series = series_frame(raw)
    keys = sorted(set(partitions))
    if not keys:
        return empty("forecasts")
    cutoffs = pl.DataFrame(
        {"month": [m for m, _ in keys], "account_id": [a for _, a in keys], "cutoff": [periods[m].through for m, _ in keys]},
        schema={"month": pl.String, "account_id": pl.String, "cutoff": pl.Date},
    )
    bounds = pl.DataFrame(
        [
            {"month": m, "horizon": h, "target_month": tm, "target_start": tp.start, "target_end": tp.end,
             "through_date": periods[m].through}
            for m in {m for m, _ in keys}
            for h, tm in (("month_end", m), ("next_month", shift_month(m, 1)))
            for tp in [period(tm, date.max)]
        ]
    )
    targets = _with_targets(main_services(raw, cutoffs).join(bounds, on="month").sort("month", "account_id", "service", "horizon"))
    meta = targets.with_columns(pl.when(pl.col("service") != "*").then(pl.col("service")).alias("service"))
    sums = forecast_sums(series, targets)
    actual = (
        targets.join(series, on=["account_id", "service"], how="left")
        .filter((pl.col("date") >= pl.col("target_start")) & (pl.col("date") <= pl.col("cutoff")))
        .group_by("target_id")
        .agg((micro_sum("cost_usd") / MICRO).alias("actual_to_date_usd"))
    )
    factors = interval_factors(backtests, cutoffs)
    out = (
        meta.join(sums, on="target_id", how="left")
        .join(factors, on=["month", "account_id"], how="left")
        .with_columns(interval(pl.col("point_usd"), pl.col("sigma_rel"), pl.col("interval_k")))
        .join(actual, on="target_id", how="left")
        .with_columns(pl.col("actual_to_date_usd").fill_null(0.0))
        .with_columns(
            # The month-end figure is what was spent so far plus the forecast of the days left.
            [(pl.col("actual_to_date_usd") + pl.col(c)).alias(c) for c in ("point_usd", "low_usd", "high_usd")]
            + [(pl.col("growth") * 100).alias("growth_pct_per_month")]
        )
    )
    track = track_record(backtests, cutoffs.select("month", "account_id"))
    out = out.join(track, on=["month", "account_id"], how="left").with_columns(
        [pl.when(pl.col("service").is_null()).then(pl.col(c)).alias(c) for c in track.columns
         if c not in ("month", "account_id")]
    )
    money = ["actual_to_date_usd", "point_usd", "low_usd", "high_usd"]
    return conform(out.with_columns(pl.col(money).round(2)), "forecasts")


TRACK_MONTHS = 6


def track_record(backtests: pl.DataFrame, keys: pl.DataFrame) -> pl.DataFrame:
    """Per (month, account_id) of ``keys``: over the account's backtests of the ``TRACK_MONTHS`` months
    before that month, how many, how often inside the 80% range, the median absolute error and the mean
    signed error, in %. Only earlier months count, whatever else ``backtests`` holds."""
    # Inside the range as it would have been shown then: calibrated on the months before each one.
    rows = calibrated(backtests).filter(pl.col("service").is_null() & pl.col("forecast_usd").is_not_null()).select(
        "account_id", pl.col("month").alias("scored_month"), "inside", "ape_pct", "error_pct"
    )
    windows = keys.unique().with_columns(
        pl.col("month").map_elements(lambda m: shift_month(m, -TRACK_MONTHS), return_dtype=pl.String).alias("since")
    )
    rows = windows.join(rows, on="account_id").filter(
        (pl.col("scored_month") >= pl.col("since")) & (pl.col("scored_month") < pl.col("month"))
    )
    # Sorted, so a mean adds its terms in one order and a rerun reproduces the same bits.
    rows = rows.sort("month", "account_id", "scored_month")
    return rows.group_by("month", "account_id", maintain_order=True).agg(
        pl.len().cast(pl.Int32).alias("track_months"),
        pl.col("inside").sum().cast(pl.Int32).alias("track_inside"),
        pl.col("ape_pct").median().alias("track_mape_pct"),
        pl.col("error_pct").mean().alias("track_bias_pct"),
    )


def calibrated(backtests: pl.DataFrame) -> pl.DataFrame:
    """``backtests`` with each month's range (low_usd, high_usd, inside) as the forecasts stage would have
    shown it: the model's range re-scaled by :func:`interval_factors` from the rows of the months before it
    in the same frame, and the ``interval_basis``."""
    if not backtests.height:
        return backtests.with_columns(pl.lit(None, dtype=pl.String).alias("interval_basis"))
    factors = interval_factors(backtests, backtests.select("month", "account_id"))
    sigma = pl.when(pl.col("high_usd") > pl.col("forecast_usd")).then(
        (pl.col("high_usd") / pl.col("forecast_usd")).log() / Z80).otherwise(0.0)
    return (
        backtests.join(factors, on=["month", "account_id"], how="left")
        .with_columns(interval(pl.col("forecast_usd"), sigma, pl.col("interval_k")))
        .with_columns(
            pl.when(pl.col("forecast_usd").is_not_null())
            .then(pl.col("actual_usd").is_between(pl.col("low_usd"), pl.col("high_usd")))
            .alias("inside")
        )
        .drop("interval_k")
    )


def compute_backtest(raw: pl.DataFrame, periods: Mapping[str, Period], partitions: Iterable[tuple[str, str]]) -> pl.DataFrame:
    """Replay the next-month forecast of each complete month from the data known at the end of the month
    before, against what happened, next to the two baselines ("next month = last month" and "the last
    7 days' run rate x days in month")."""
    series = series_frame(raw)
    keys = sorted((m, a) for m, a in set(partitions) if periods[m].complete)  # a month in progress is not known yet
    if not keys:
        return empty("forecast_backtest")
    cutoffs = pl.DataFrame(
        {"month": [m for m, _ in keys], "account_id": [a for _, a in keys],
         "cutoff": [periods[m].start - timedelta(days=1) for m, _ in keys]},
        schema={"month": pl.String, "account_id": pl.String, "cutoff": pl.Date},
    )
    bounds = pl.DataFrame(
        [{"month": m, "target_start": periods[m].start, "target_end": periods[m].end,
          "days_in_month": periods[m].days_in_month} for m in {m for m, _ in keys}]
    )
    targets = _with_targets(main_services(raw, cutoffs).join(bounds, on="month").sort("month", "account_id", "service"))
    meta = targets.with_columns(pl.when(pl.col("service") != "*").then(pl.col("service")).alias("service"))
    sums = forecast_sums(series, targets)
    joined = targets.join(series, on=["account_id", "service"], how="left")
    actual = (
        joined.filter(pl.col("date").is_between(pl.col("target_start"), pl.col("target_end")))
        .group_by("target_id")
        .agg((micro_sum("cost_usd") / MICRO).alias("actual_usd"))
    )
    last_month = (
        joined.filter(
            (pl.col("date") <= pl.col("cutoff"))
            & (pl.col("date") >= pl.col("cutoff").dt.month_start())
        )
        .group_by("target_id")
        .agg((micro_sum("cost_usd") / MICRO).alias("last_month_usd"))
    )
    recent = (
        joined.filter((pl.col("date") <= pl.col("cutoff")) & (pl.col("date") > pl.col("cutoff") - pl.duration(days=7)))
        .group_by("target_id")
        .agg((micro_sum("cost_usd") / MICRO / 7).alias("recent_daily"))
    )

    def ape(col: str) -> pl.Expr:
        return (pl.when(pl.col("actual_usd") > 0)
                .then(((pl.col(col) - pl.col("actual_usd")) / pl.col("actual_usd")).abs() * 100))

    out = (
        meta.join(sums, on="target_id", how="left")
        .join(actual, on="target_id", how="left")
        .join(last_month, on="target_id", how="left")
        .join(recent, on="target_id", how="left")
        .with_columns(
            pl.col("point_usd").alias("forecast_usd"),
            pl.col("actual_usd").fill_null(0.0),
            (pl.col("recent_daily") * pl.col("days_in_month")).alias("run_rate_usd"),
        )
        .with_columns(
            pl.when(pl.col("actual_usd") > 0)
            .then((pl.col("forecast_usd") - pl.col("actual_usd")) / pl.col("actual_usd") * 100)
            .alias("error_pct"),
            ape("forecast_usd").alias("ape_pct"),
            ape("last_month_usd").alias("ape_last_month_pct"),
            ape("run_rate_usd").alias("ape_run_rate_pct"),
            pl.when(pl.col("forecast_usd").is_not_null())
            .then(pl.col("actual_usd").is_between(pl.col("low_usd"), pl.col("high_usd")))
            .alias("inside"),
        )
    )
    return conform(out, "forecast_backtest")


def unavailable_forecasts(partitions: Iterable[tuple[str, str]], failed: Mapping[str, str]) -> pl.DataFrame:
    """Rows saying the forecast could not be computed (``method`` "unavailable") for the partitions of the
    ``failed`` accounts, one per horizon, so the reports say so instead of showing no forecast."""
    rows = [{"month": m, "account_id": a, "service": None, "horizon": h,
             "target_month": m if h == "month_end" else shift_month(m, 1), "method": UNAVAILABLE}
            for m, a in sorted(set(partitions)) if a in failed for h in ("month_end", "next_month")]
    return conform(pl.DataFrame(rows, schema_overrides={"service": pl.String}), "forecasts") if rows else empty("forecasts")


def with_forecast_projection(mom: pl.DataFrame, forecasts: pl.DataFrame) -> pl.DataFrame:
    """``mom_changes`` whose account-level month-end projection is the SQL forecast where there is one,
    so the explanation, the AI's evidence and the emails state one and the same figure. Account rows also
    get the forecast's 80% range and next month's forecast (``month_end_low_usd``, ``month_end_high_usd``,
    ``next_month_usd``, ``next_month_low_usd``, ``next_month_high_usd``; null without a forecast)."""
    accounts = forecasts.filter(pl.col("service").is_null() & pl.col("point_usd").is_not_null())
    month_end = accounts.filter(pl.col("horizon") == "month_end").select(
        "month", "account_id", pl.col("point_usd").alias("forecast_usd"),
        pl.col("low_usd").alias("month_end_low_usd"), pl.col("high_usd").alias("month_end_high_usd"),
    )
    next_month = accounts.filter(pl.col("horizon") == "next_month").select(
        "month", "account_id", pl.col("point_usd").alias("next_month_usd"),
        pl.col("low_usd").alias("next_month_low_usd"), pl.col("high_usd").alias("next_month_high_usd"),
    )
    is_account = pl.col("level") == "account"
    out = mom.join(month_end, on=["month", "account_id"], how="left").join(
        next_month, on=["month", "account_id"], how="left"
    )
    extra = ["month_end_low_usd", "month_end_high_usd", "next_month_usd", "next_month_low_usd", "next_month_high_usd"]
    return out.with_columns(
        pl.when(is_account & pl.col("forecast_usd").is_not_null())
        .then(pl.col("forecast_usd"))
        .otherwise(pl.col("projected_month_end_usd"))
        .alias("projected_month_end_usd"),
        *[pl.when(is_account).then(pl.col(c)).alias(c) for c in extra],
    ).drop("forecast_usd")
