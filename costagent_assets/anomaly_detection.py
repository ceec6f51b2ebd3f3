"""Anomaly detection people can trust: pure functions over polars frames, no Dagster, no clients.

Four detectors feed one ``anomalies`` table, one row per (month, account, service) at most:

- **daily** (``spike`` / ``step``): each service's daily cost against a robust seasonal baseline, the
  median of the same weekday over the four previous weeks. A day is elevated when it is above the
  baseline by more than the series' own volatility allows (``ROBUST_Z`` robust spreads of its log
  deviations over up to eight weeks, never under a floor relative to the level: a $5 and a $50,000 series
  are judged alike) AND by the % threshold; a run of elevated days is a spike while short, a step once it
  lasts ``STEP_MIN_DAYS`` (a new level that persists until the baseline absorbs it). Its $ impact is the
  excess over the baseline. A series needs ``MIN_BASELINE_POINTS`` same-weekday days of history before it
  is judged; otherwise the row says so and the month-to-date rule alone judges it.
- **month_to_date** (``increase`` / ``new_service`` / ``decrease``): the configurable rule, month to
  date against the same days of last month, % threshold AND $ floor: a *notable change*, shown in the
  email. An increase is an *anomaly* (alerted) only when it is also outside what the series' history makes
  usual (:func:`usual_month_to_date`); with too little history and last month's days not all there to
  compare with (a partial month), it is shown and not alerted. An increase that only repeats the level the
  service already had at the end of last month (a step or new service that began last month) is a
  *carry-over*: reported, not alerted again.
- **budget**: at most one row per account: over the monthly budget (every week while it is), projected
  past it, or a lower alert level (50/80%) crossed this week ahead of the month's pace
  (:func:`budgets.budget_alert`).

Every anomaly carries drivers that add up to its $ impact, split into usage, rate and mix where the
source has usage quantities. Severity comes from the $ impact; decreases are reported, never alerted;
an anomaly an admin acknowledged is shown apart and not alerted again.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta

import polars as pl

from costagent_assets.budgets import DEFAULT_ALERT_PCTS, budget_alert
from costagent_assets.isolation import UNAVAILABLE
from costagent_assets.periods import month_start, shift_month
from costagent_assets.schemas import ANOMALY_DRIVER, conform, empty

# Same weekday, 1..4 weeks back: weekly seasonality (weekend dips) cancels out, and a median of four
# ignores one earlier spike.
DAILY_LAGS = (7, 14, 21, 28)
MIN_BASELINE_POINTS = 3  # at least three of the four same weekdays must have data
ROBUST_Z = 7.0  # in robust spreads of log deviations; heavy-tailed series reach 5 every few months
MAD_SCALE = 1.4826  # MAD to standard deviation for normal noise
# A very regular series can look noiseless: the spread is never taken below this share of the baseline.
MIN_SPREAD_PCT = 2.0
SCALE_DAYS = 56  # the volatility is measured over up to eight weeks where history allows
STEP_MIN_DAYS = 5  # a run of elevated days this long is a new level, not a spike
RUN_LOOKBACK_DAYS = 35
# The month-to-date rule's "usual": n-day sums against the same n days four weeks before (same weekdays).
USUAL_LAG_DAYS = 28
USUAL_MAX_DAYS = 14
USUAL_MIN_SAMPLES = 10
USUAL_Z = 4.0
USUAL_WEEKS = 8
USUAL_WEEKLY_Z = 3.0
MTD_EPSILON_USD = 1.0  # keeps a $0 window from reading as an infinite rise
CARRY_OVER_DAYS = 14  # the end of last month the current level is compared with (two whole weeks)
MAX_DRIVERS = 5


@dataclass(frozen=True)
class AnomalyRule:
    """When a change becomes an alert: both the % threshold AND the $ floor must be passed."""

    threshold_pct: float = 20.0
    min_usd: float = 100.0

    def severity_expr(self, change: pl.Expr) -> pl.Expr:
        """Severity from the dollar impact: high at 10x the floor, medium at 3x."""
        return severity_expr(change, pl.lit(self.min_usd))


def anomaly_rules(settings, teams: Sequence) -> tuple[AnomalyRule, dict[str, AnomalyRule]]:
    """The organisation's rule (``anomaly_threshold_pct``, ``anomaly_min_usd``) and, per account, the rule of
    each team whose registry entry overrides either value. The one place both are built: the detector and
    the AI evidence packs must judge an account by the same rule."""
    rule = AnomalyRule(threshold_pct=settings.anomaly_threshold_pct, min_usd=settings.anomaly_min_usd)
    overrides = {
        t.aws_account_id: AnomalyRule(
            threshold_pct=t.anomaly_threshold_pct if t.anomaly_threshold_pct is not None else rule.threshold_pct,
            min_usd=t.anomaly_min_usd if t.anomaly_min_usd is not None else rule.min_usd,
        )
        for t in teams
        if t.anomaly_threshold_pct is not None or t.anomaly_min_usd is not None
    }
    return rule, overrides


def severity_expr(impact: pl.Expr, min_usd: pl.Expr) -> pl.Expr:
    """Severity from the dollar impact against a (per-row) floor: high at 10x the floor, medium at 3x."""
    unit = pl.max_horizontal(min_usd, pl.lit(10.0))
    size = impact.abs()
    return (
        pl.when(size >= 10 * unit)
        .then(pl.lit("high"))
        .when(size >= 3 * unit)
        .then(pl.lit("medium"))
        .otherwise(pl.lit("low"))
    )


def _rules_frame(accounts: pl.Series, rule: AnomalyRule, overrides: Mapping[str, AnomalyRule] | None) -> pl.DataFrame:
    ids = accounts.unique().to_list()
    overrides = overrides or {}
    return pl.DataFrame(
        {
            "account_id": ids,
            "threshold_pct": [overrides.get(a, rule).threshold_pct for a in ids],
            "min_usd": [overrides.get(a, rule).min_usd for a in ids],
        },
        schema={"account_id": pl.String, "threshold_pct": pl.Float64, "min_usd": pl.Float64},
    )


def _month_windows(mom: pl.DataFrame) -> pl.DataFrame:
    """(month, month_start, through_date, days_covered) of the months in ``mom``."""
    months = mom.select("month", "through_date", "days_covered").unique("month").sort("month")
    return months.with_columns(
        pl.col("month").map_elements(month_start, return_dtype=pl.Date).alias("month_start")
    )


# --- Daily detector ---------------------------------------------------------------------------------


def daily_grid(raw: pl.DataFrame) -> pl.DataFrame:
    """account_id, service, date, cost_usd: one row per service and day the account has rows, from the
    service's first day, sorted. Days on which the account has no rows at all (a month never loaded, a
    source gap) are missing, not $0; a day on which the account has rows but the service none is $0.

    account_id and service are Enums in their strings' order (:func:`sorted_enum`), so that the detectors
    group, join and sort on integers; what they return is cast back to String (:func:`_as_strings`)."""
    # Grouped, joined and sorted on integer codes in the strings' order (several times cheaper than on strings).
    accounts, services = sorted_enum(raw["account_id"]), sorted_enum(raw["service"])
    coded = raw.lazy().select(pl.col("account_id").cast(accounts), pl.col("service").cast(services), "date", "cost_usd")
    svc = coded.group_by("account_id", "service", "date").agg(pl.col("cost_usd").sum())
    first = svc.group_by("account_id", "service").agg(pl.col("date").min().alias("first_seen"))
    # The account's days with rows, from the (much shorter) per-service sums: the same set of days.
    return (
        first.join(svc.select("account_id", "date").unique(), on="account_id")
        .filter(pl.col("date") >= pl.col("first_seen"))
        .join(svc, on=["account_id", "service", "date"], how="left")
        .with_columns(pl.col("cost_usd").fill_null(0.0))
        .drop("first_seen")
        .sort("account_id", "service", "date")
        .collect()
    )


def _as_strings(frame: pl.DataFrame) -> pl.DataFrame:
    """``frame`` with the grid's Enum account_id and service (:func:`daily_grid`) back as String."""
    return frame.with_columns(pl.col("account_id", "service").cast(pl.String))


def sorted_enum(values: pl.Series, *extra: str) -> pl.Enum:
    """An Enum of ``values`` (and ``extra``) whose codes follow their string order: a frame whose key columns
    are cast to it groups, joins and sorts on integers, in the same order as on the strings (cast back to
    String for the result)."""
    return pl.Enum(pl.concat([values.drop_nulls().cast(pl.String), pl.Series(extra, dtype=pl.String)]).unique().sort())


def run_key(*columns: str) -> pl.Expr:
    """One integer per run of equal ``columns`` values in a frame sorted by them: the same groups as
    ``.over(*columns)``, and windows over one integer are several times cheaper than over strings."""
    return pl.any_horizontal(pl.col(c).ne_missing(pl.col(c).shift(1)) for c in columns).cum_sum()


def daily_baselines(grid: pl.DataFrame) -> pl.DataFrame:
    """Per account, service and day of ``grid`` (:func:`daily_grid`): its cost, the same-weekday baseline,
    how far above it a day may go, and the history behind both.

    baseline_usd is the median of the same weekday 1..4 weeks back (baseline_points of them had data);
    limit_usd is how far above the baseline the day may be before it is elevated: from the series' own
    log deviations from its baseline over up to eight weeks before the day, ROBUST_Z robust spreads (MAD),
    never under ROBUST_Z x MIN_SPREAD_PCT %.
    """
    grid = grid.with_columns(run_key("account_id", "service").alias("_series"))
    series = "_series"

    def same_series(lag: int) -> pl.Expr:
        # The grid is sorted by series: the row ``lag`` rows back is in the same series when its key is the
        # same; so a plain shift masked by this is ``shift(lag).over(series)``, without a window per series.
        return pl.col(series).shift(lag) == pl.col(series)

    # One row per account day, so "k rows back" is "k days back" unless days are missing: checked.
    lags = [
        pl.when(same_series(lag) & (pl.col("date").shift(lag) == pl.col("date") - pl.duration(days=lag)))
        .then(pl.col("cost_usd").shift(lag))
        for lag in DAILY_LAGS
    ]
    grid = grid.with_columns([lag.alias(f"lag{i}") for i, lag in enumerate(lags)])
    cols = [pl.col(f"lag{i}") for i in range(len(lags))]
    points = pl.sum_horizontal([c.is_not_null().cast(pl.Int32) for c in cols])
    total, high, low = pl.sum_horizontal(cols), pl.max_horizontal(cols), pl.min_horizontal(cols)
    # The median of up to four values without sorting lists (a few times faster on a million rows).
    median = (
        pl.when(points == 4)
        .then((total - high - low) / 2)
        .when(points == 3)
        .then(total - high - low)
        .when(points == 2)
        .then(total / 2)
        .when(points == 1)
        .then(total)
    )
    grid = grid.with_columns(median.alias("baseline_usd"), points.alias("baseline_points"))
    # Costs vary by a factor, not by dollars: deviations are judged in log space, so a $5 and a $50,000
    # series with the same volatility get the same limits. A $0 day counts as a 99% drop, not -infinity.
    deviation = pl.when(pl.col("baseline_usd") > 0).then(
        (pl.max_horizontal(pl.col("cost_usd"), pl.col("baseline_usd") * 0.01) / pl.col("baseline_usd")).log()
    )
    grid = grid.with_columns(pl.when(same_series(1)).then(deviation.abs().shift(1)).alias("past_deviation"))
    past = pl.col("past_deviation")
    # The series' own volatility over up to eight weeks before the day: a robust scale (MAD; a median, so a
    # step in the window does not widen it until it is half the window, and a spike never does).
    scale = past.rolling_median(window_size=SCALE_DAYS, min_samples=7).over(series) * MAD_SCALE
    limit = pl.max_horizontal(ROBUST_Z * scale, pl.lit(math.log1p(ROBUST_Z * MIN_SPREAD_PCT / 100)))
    return grid.with_columns(
        pl.when(scale.is_not_null()).then(pl.col("baseline_usd") * (limit.exp() - 1)).alias("limit_usd")
    ).drop([f"lag{i}" for i in range(len(lags))] + ["past_deviation", "_series"])


def detect_daily(grid: pl.DataFrame, windows: pl.DataFrame, rules: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Spikes and steps in each month's covered days of ``grid`` (:func:`daily_grid`), and the series not
    judged for lack of history.

    Returns (findings, unjudged). findings: one row per (month, account, service), its largest run of
    elevated days: kind, start_date, end_date, days, impact_usd (excess over the baseline), baseline_usd
    (mean baseline of those days), ongoing, continued (the run began last month). unjudged: (month, account_id, service, baseline_points) of
    series whose last covered day had too little history.
    """
    # Runs are followed from five weeks before the month, so one that began last month is recognised as
    # the same step continuing (alerted then), not as a new anomaly on the 1st.
    days = (
        daily_baselines(grid)
        .join(windows.select("month", "month_start", "through_date"), how="cross")
        .filter(
            (pl.col("date") >= pl.col("month_start") - pl.duration(days=RUN_LOOKBACK_DAYS))
            & (pl.col("date") <= pl.col("through_date"))
        )
        # The rules' accounts in the grid's codes (an account without rows has no code, and no days).
        .join(rules.with_columns(pl.col("account_id").cast(grid.schema["account_id"], strict=False)),
              on="account_id", how="left")
    )
    judged = (pl.col("baseline_points") >= MIN_BASELINE_POINTS) & pl.col("limit_usd").is_not_null()
    excess = pl.col("cost_usd") - pl.col("baseline_usd")
    elevated = (
        judged
        & (excess > 0)
        & (excess > pl.col("limit_usd"))
        & (excess > pl.col("baseline_usd") * pl.col("threshold_pct") / 100)
    )
    series = ["month", "account_id", "service"]
    days = days.sort([*series, "date"]).with_columns(elevated.fill_null(False).alias("elevated"), run_key(*series).alias("_series"))
    # A run number per stretch of equal ``elevated`` days: counted over the whole sorted frame (no window per
    # series), so numbers go on from one series to the next; a run is (series, run), the same groups.
    previous = pl.when(pl.col("_series").shift(1) == pl.col("_series")).then(pl.col("elevated").shift(1))
    days = days.with_columns(
        (pl.col("elevated") != previous.fill_null(False)).cum_sum().alias("run")
    ).drop("_series")
    in_month = pl.col("date") >= pl.col("month_start")
    runs = (
        days.filter(pl.col("elevated"))
        .group_by([*series, "run"])
        .agg(
            pl.col("date").min().alias("start_date"),
            pl.col("date").max().alias("end_date"),
            pl.len().alias("days"),
            # Only this month's excess counts here; last month's part was last month's impact.
            excess.filter(in_month).sum().alias("impact_usd"),
            pl.col("baseline_usd").filter(in_month).mean(),
            pl.col("through_date").first(),
            pl.col("month_start").first(),
        )
        .filter(pl.col("end_date") >= pl.col("month_start"))
        .with_columns(
            pl.when(pl.col("days") >= STEP_MIN_DAYS).then(pl.lit("step")).otherwise(pl.lit("spike")).alias("kind"),
            (pl.col("end_date") == pl.col("through_date")).alias("ongoing"),
            (pl.col("start_date") < pl.col("month_start")).alias("continued"),
        )
        .sort("impact_usd", descending=True)
        .unique(series, keep="first")
        .drop("run", "through_date", "month_start")
    )
    last_day = days.filter(pl.col("date") == pl.col("through_date"))
    unjudged = last_day.filter(pl.col("baseline_points") < MIN_BASELINE_POINTS).select(*series, "baseline_points")
    return _as_strings(runs), _as_strings(unjudged)


def usual_month_to_date(grid: pl.DataFrame, windows: pl.DataFrame) -> pl.DataFrame:
    """Per (month, account, service): how much the month-to-date comparison usually moves for this series.

    Before the month starts, every day t gives one sample: the log ratio of the n days up to t over the same
    n days four weeks earlier (n = the month's days covered, at most USUAL_MAX_DAYS: later in the month the
    samples would be too few, and a shorter sum moves more, so the bar is if anything higher). Returns
    usual_median, usual_scale (MAD x 1.4826) and usual_samples; the month-to-date rule alerts a rise only
    above usual_median + USUAL_Z x usual_scale, and says so when there are under USUAL_MIN_SAMPLES."""
    # ``grid`` is sorted by account, service and date (daily_grid).
    grid = grid.with_columns(pl.col("cost_usd").cum_sum().over(run_key("account_id", "service")).alias("cum"))
    cum = grid.select("account_id", "service", "date", "cum")
    w = windows.select(
        "month", "month_start", pl.min_horizontal(pl.col("days_covered"), pl.lit(USUAL_MAX_DAYS)).alias("n")
    )
    days = grid.join(w, how="cross").filter(pl.col("date") < pl.col("month_start"))

    def cum_at(back: pl.Expr, name: str) -> pl.DataFrame:
        # cum at ``back`` days before each sample day, by date (a missing day leaves the sample out).
        return days.select("month", "account_id", "service", "date", (pl.col("date") - back).alias("at")).join(
            cum.rename({"date": "at", "cum": name}), on=["account_id", "service", "at"], how="inner"
        ).drop("at")

    n = pl.duration(days=pl.col("n"))
    lag = pl.duration(days=USUAL_LAG_DAYS)
    key = ["month", "account_id", "service", "date"]
    samples = days.select(*key, "cum", "n")
    for back, name in ((n, "c1"), (lag, "c2"), (lag + n, "c3")):
        samples = samples.join(cum_at(back, name), on=key, how="inner")
    now, before = pl.col("cum") - pl.col("c1"), pl.col("c2") - pl.col("c3")
    ratio = ((now + MTD_EPSILON_USD) / (before + MTD_EPSILON_USD)).log()
    samples = samples.with_columns(ratio.alias("r"))
    usual = samples.group_by("month", "account_id", "service").agg(
        pl.col("r").median().alias("usual_median"),
        ((pl.col("r") - pl.col("r").median()).abs().median() * MAD_SCALE).alias("usual_scale"),
        pl.len().alias("usual_samples"),
    )
    # Was the series there on every one of last month's same days? If not (it started late last month, the
    # source has a gap), the month-to-date comparison is not like for like.
    last = windows.select(
        "month", pl.col("month_start").dt.offset_by("-1mo").alias("from"),
        pl.min_horizontal(
            pl.col("month_start").dt.offset_by("-1mo") + pl.duration(days=pl.col("days_covered")),
            pl.col("month_start"),
        ).alias("to"),
    )
    compared = (
        grid.join(last, how="cross")
        .filter((pl.col("date") >= pl.col("from")) & (pl.col("date") < pl.col("to")))
        .group_by("month", "account_id", "service")
        .agg(pl.len().alias("compared_days"), ((pl.col("to") - pl.col("from")).dt.total_days().first()).alias("days"))
        .select("month", "account_id", "service", (pl.col("compared_days") >= pl.col("days")).alias("like_for_like"))
    )
    # Overlapping sums hide heavy tails (neighbouring samples share all but one day): the spread of whole
    # weeks over the eight before the month says how much n days usually move, spikes and drift included.
    weeks = (
        grid.join(windows.select("month", "month_start"), how="cross")
        .filter((pl.col("date") < pl.col("month_start"))
                & (pl.col("date") >= pl.col("month_start") - pl.duration(days=7 * USUAL_WEEKS)))
        .with_columns(((pl.col("month_start") - pl.col("date")).dt.total_days() // 7).alias("week"))
        .group_by("month", "account_id", "service", "week")
        .agg(pl.col("cost_usd").sum(), pl.len().alias("days"))
        .filter(pl.col("days") == 7)
        .group_by("month", "account_id", "service")
        .agg((pl.col("cost_usd").std() / pl.col("cost_usd").mean()).alias("weekly_cv"), pl.len().alias("weeks"))
        .filter(pl.col("weeks") >= 4)
        .drop("weeks")
    )
    key = ["month", "account_id", "service"]
    return _as_strings(usual.join(compared, on=key, how="full", coalesce=True).join(weeks, on=key, how="left"))


def _carry_over_levels(grid: pl.DataFrame, windows: pl.DataFrame) -> pl.DataFrame:
    """Per (month, account, service): the mean daily cost over the last two weeks of the previous month, on
    the days the service existed and the account has rows (a service or account that started late last
    month, or a source gap, is not averaged with days that were never there), from at least 3 days."""
    prev = windows.select(
        "month",
        (pl.col("month_start") - pl.duration(days=CARRY_OVER_DAYS)).alias("tail_from"),
        pl.col("month_start").alias("tail_to"),
    )
    return _as_strings(
        grid.join(prev, how="cross")
        .filter((pl.col("date") >= pl.col("tail_from")) & (pl.col("date") < pl.col("tail_to")))
        .group_by("month", "account_id", "service")
        .agg(pl.col("cost_usd").mean().alias("tail_daily_usd"), pl.len().alias("tail_days"))
        .filter(pl.col("tail_days") >= 3)
        .drop("tail_days")
    )


# --- Drivers and the usage / rate / mix split ---------------------------------------------------------


def split_usage_rate_mix(c0: float, c1: float, q0: float | None, q1: float | None) -> tuple[float, float, float] | None:
    """(usage, rate, mix) $ effects of one line's change from (cost, quantity) c0, q0 to c1, q1.

    usage = (q1 - q0) x old unit price, rate = (new - old unit price) x q1; they add up to c1 - c0. A line
    that appears or disappears (no quantity on one side) changes the mix of what is bought: all of its
    change is mix. None where quantities are unknown.
    """
    if q0 is None or q1 is None or (isinstance(q0, float) and math.isnan(q0)):
        return None
    if q0 > 0 and q1 > 0:
        p0, p1 = c0 / q0, c1 / q1
        usage, rate = (q1 - q0) * p0, (p1 - p0) * q1
        return usage, rate, (c1 - c0) - usage - rate  # float residue only
    return 0.0, 0.0, c1 - c0


def fold_rounding_cents(drivers: list[dict], rest: float) -> None:
    """Give the first driver the cents lost by rounding each driver to cents (at most half a cent each), so
    that drivers without an "other" line still add up to the total; a larger ``rest`` is a real gap, left
    for the "drivers add up" checks to catch."""
    if drivers and 0.005 <= abs(rest) <= 0.005 * len(drivers) + 1e-9:
        drivers[0]["change_usd"] = round(drivers[0]["change_usd"] + rest, 2)


def build_drivers(lines: Sequence[dict], total: float, label: str = "lines") -> list[dict]:
    """Top movers among ``lines`` (dicts with service, region, usage_type, c0, c1, q0, q1), plus one
    "other" line, with $ rounded to cents so the drivers add up exactly to ``total`` rounded."""
    rows = []
    for line in lines:
        change = line["c1"] - line["c0"]
        split = split_usage_rate_mix(line["c0"], line["c1"], line.get("q0"), line.get("q1"))
        rows.append({**line, "change": change, "split": split})
    rows.sort(key=lambda r: abs(r["change"]), reverse=True)
    top = [r for r in rows[:MAX_DRIVERS] if abs(r["change"]) >= 0.005]
    drivers = []
    for r in top:
        split = r["split"]
        drivers.append(
            {
                "service": r["service"],
                "region": r.get("region"),
                "usage_type": r.get("usage_type"),
                "change_usd": round(r["change"], 2),
                "usage_usd": None if split is None else round(split[0], 2),
                "rate_usd": None if split is None else round(split[1], 2),
                "mix_usd": None if split is None else round(split[2], 2),
            }
        )
    rest = round(round(total, 2) - sum(d["change_usd"] for d in drivers), 2)
    others = len(rows) - len(top)
    if others and abs(rest) >= 0.005:
        drivers.append(
            {"service": f"Other {label} ({others})", "region": None, "usage_type": None, "change_usd": rest,
             "usage_usd": None, "rate_usd": None, "mix_usd": None}
        )
    else:
        fold_rounding_cents(drivers, rest)
    for d in drivers:
        d["share_of_change_pct"] = d["change_usd"] / total * 100 if abs(total) >= 0.005 else None
    return drivers


def _line_totals(raw: pl.DataFrame, windows: pl.DataFrame, spans: pl.DataFrame) -> pl.DataFrame:
    """Per anomaly key and (region, usage_type) line: cost and quantity in the current and the reference window.

    ``spans``: month, account_id, service, kind, start_date, end_date, impact_usd. Month-to-date kinds
    compare days 1..d with the same days of last month; spikes and steps compare their elevated days
    with the baseline, shared among lines as they shared the four weeks before.
    """
    has_q = "usage_quantity" in raw.columns
    q = pl.col("usage_quantity") if has_q else pl.lit(None, dtype=pl.Float64)

    def qsum(name: str) -> pl.Expr:
        # A sum of no quantities is unknown (null), not 0: polars' sum of nulls is 0.
        return pl.when(pl.col("qty").count() > 0).then(pl.col("qty").sum()).alias(name)
    line = ["month", "account_id", "service", "region", "usage_type"]
    base = raw.select("account_id", "service", "region", "usage_type", "date", "cost_usd", q.alias("qty"))
    w = windows.select("month", "month_start", "through_date", "days_covered")
    daily_keys = spans.filter(pl.col("kind").is_in(["spike", "step"]))
    mtd_keys = spans.filter(~pl.col("kind").is_in(["spike", "step"])).select("month", "account_id", "service")

    cur = (
        base.join(mtd_keys.join(w, on="month"), on=["account_id", "service"])
        .filter((pl.col("date") >= pl.col("month_start")) & (pl.col("date") <= pl.col("through_date")))
        .group_by(line)
        .agg(pl.col("cost_usd").sum().alias("c1"), qsum("q1"))
    )
    prev = (
        base.join(mtd_keys.join(w, on="month"), on=["account_id", "service"])
        .with_columns(pl.col("month").map_elements(lambda m: shift_month(m, -1), return_dtype=pl.String).alias("pm"))
        .filter(
            (pl.col("date").dt.strftime("%Y-%m") == pl.col("pm")) & (pl.col("date").dt.day() <= pl.col("days_covered"))
        )
        .group_by(line)
        .agg(pl.col("cost_usd").sum().alias("c0"), qsum("q0"))
    )
    # Sources without a region or usage type (Cost Explorer by usage type has no region) leave them null:
    # a null must meet its null, or the same line would be two.
    mtd = cur.join(prev, on=line, how="full", coalesce=True, nulls_equal=True).with_columns(
        pl.col("c0", "c1").fill_null(0.0),
        # A line that appeared (or went) had no quantity on the other side: 0 where the source gives quantities.
        pl.when(pl.col("q0").is_null() & pl.col("q1").is_not_null()).then(0.0).otherwise(pl.col("q0")).alias("q0"),
        pl.when(pl.col("q1").is_null() & pl.col("q0").is_not_null()).then(0.0).otherwise(pl.col("q1")).alias("q1"),
    )

    on_days = (
        base.join(daily_keys.select("month", "account_id", "service", "start_date", "end_date", "impact_usd"),
                  on=["account_id", "service"])
        .filter((pl.col("date") >= pl.col("start_date")) & (pl.col("date") <= pl.col("end_date")))
        .group_by(line)
        .agg(pl.col("cost_usd").sum().alias("c1"), qsum("q1"), pl.col("impact_usd").first())
    )
    before = (
        base.join(daily_keys.select("month", "account_id", "service", "start_date"), on=["account_id", "service"])
        .filter((pl.col("date") < pl.col("start_date")) & (pl.col("date") >= pl.col("start_date") - pl.duration(days=28)))
        .group_by(line)
        .agg(pl.col("cost_usd").sum().alias("before"), qsum("before_q"))
    )
    key = ["month", "account_id", "service"]
    runs = (
        on_days.join(before, on=line, how="left", nulls_equal=True)
        .with_columns(pl.col("before").fill_null(0.0))
        .with_columns(
            pl.col("before").sum().over(key).alias("before_total"),
            pl.col("c1").sum().over(key).alias("c1_total"),
            pl.col("impact_usd").max().over(key).alias("impact_usd"),
        )
        .with_columns(
            # The baseline's share per line, as in the four weeks before (by the run itself if there were none).
            pl.when(pl.col("before_total") > 0)
            .then(pl.col("before") / pl.col("before_total"))
            .otherwise(pl.col("c1") / pl.col("c1_total"))
            .alias("share")
        )
        .with_columns(((pl.col("c1_total") - pl.col("impact_usd")) * pl.col("share")).alias("c0"))
        # The baseline's quantity at the unit price of the four weeks before.
        .with_columns(
            pl.when(pl.col("before_q") > 0)
            .then(pl.col("c0") / (pl.col("before") / pl.col("before_q")))
            .when(pl.col("before_q").is_not_null() | pl.col("q1").is_not_null())
            .then(0.0)
            .alias("q0")
        )
        .select(*line, "c0", "c1", "q0", pl.col("q1"))
    )
    return pl.concat([mtd.select(*line, "c0", "c1", "q0", "q1"), runs], how="vertical_relaxed")


# --- The alert model ----------------------------------------------------------------------------------

# Every alerted row of the anomalies table is one alert of one of these kinds, counted the same way in the
# team emails, the admin report, the Dagster metadata and the SQL ``alerts`` view.
ALERT_KINDS = {
    "spike": "Spike",
    "step": "Step",
    "new_service": "New service",
    "mtd_rise": "Month-to-date rise",
    "budget_actual": "Budget",
    "budget_forecast": "Budget forecast",
}


def alert_kind(kind: str, detector: str | None) -> str:
    """The alert kind of an anomalies row: ``budget_actual``/``budget_forecast`` from a budget row's detector,
    ``mtd_rise`` for an increase, else the row's own kind."""
    if kind == "budget":
        return detector or "budget_actual"
    return "mtd_rise" if kind == "increase" else kind


def alert_kind_sql(kind: str = "kind", detector: str = "detector") -> str:
    """:func:`alert_kind` as a SQL CASE over the columns ``kind`` and ``detector``."""
    return (f"CASE WHEN {kind} = 'budget' THEN coalesce({detector}, 'budget_actual') "
            f"WHEN {kind} = 'increase' THEN 'mtd_rise' ELSE {kind} END")


def alert_kind_expr() -> pl.Expr:
    """:func:`alert_kind` as a polars expression."""
    return (
        pl.when(pl.col("kind") == "budget").then(pl.col("detector").fill_null("budget_actual"))
        .when(pl.col("kind") == "increase").then(pl.lit("mtd_rise"))
        .otherwise(pl.col("kind"))
    )


# --- Budgets ------------------------------------------------------------------------------------------


def budget_alerts(
    mom: pl.DataFrame,
    budgets: Mapping[str, float],
    alert_pcts: Sequence[float] = DEFAULT_ALERT_PCTS,
    raw: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """Budget rows (kind "budget", level "account", at most one per account and month), by the rule of
    :func:`budgets.budget_alert`: over the budget, projected past it, or a lower level crossed this week
    ahead of the month's pace. ``raw`` (daily rows, where loaded) dates the crossing (``start_date``) and
    tells whether a lower level was already crossed a week earlier."""
    rows = []
    accounts = mom.filter((pl.col("level") == "account") & pl.col("has_data"))
    daily = _account_days(raw, accounts) if raw is not None and raw.height else {}
    for a in accounts.iter_rows(named=True):
        budget = budgets.get(a["account_id"])
        if not budget or a["current_mtd_usd"] is None:
            continue
        mtd = a["current_mtd_usd"]
        complete = a["days_covered"] >= a["days_in_month"]
        projected = None if complete else a["projected_month_end_usd"]
        days = daily.get((a["month"], a["account_id"]), [])
        week_ago = a["through_date"] - timedelta(days=7)
        week_ago_mtd = sum(usd for d, usd in days if d <= week_ago) if days else None
        found = budget_alert(mtd, projected, budget, elapsed_pct=a["days_covered"] / a["days_in_month"] * 100,
                             week_ago_mtd=week_ago_mtd, alert_pcts=alert_pcts)
        if found is None:
            continue
        basis, level = found
        if basis == "actual":
            over = mtd - budget
            note = (
                f"Spent ${mtd:,.0f}, {mtd / budget * 100:.0f}% of the ${budget:,.0f} budget"
                + (f", over it by ${over:,.0f}." if over > 0 else
                   f": past {level:.0f}% with {(1 - a['days_covered'] / a['days_in_month']) * 100:.0f}% of the month to go.")
            )
            start = _crossing_date(days, budget * level / 100)
            rows.append(_budget_row(a, "actual", level, mtd, budget, note, start))
            continue
        note = f"Projected to reach ${projected:,.0f} by month end, {projected / budget * 100:.0f}% of the ${budget:,.0f} budget."
        remaining = a["days_in_month"] - a["days_covered"]
        crossing = None
        if remaining > 0 and projected > mtd:
            per_day = (projected - mtd) / remaining
            crossing = a["through_date"] + timedelta(days=math.ceil((budget - mtd) / per_day))
            note = (f"Projected to exceed the ${budget:,.0f} budget by ${projected - budget:,.0f} on the "
                    f"{_ordinal(crossing.day)} (spent {mtd / budget * 100:.0f}% so far).")
        rows.append(_budget_row(a, "forecast", level, projected, budget, note, crossing))
    if not rows:
        return empty("anomalies")
    return conform(pl.DataFrame(rows), "anomalies")


def _account_days(raw: pl.DataFrame, accounts: pl.DataFrame) -> dict[tuple[str, str], list[tuple]]:
    """(month, account) -> [(date, usd)] of the month's days up to its through date, sorted."""
    windows = accounts.select("month", "account_id", "through_date").with_columns(
        pl.col("month").map_elements(month_start, return_dtype=pl.Date).alias("month_start"))
    days = (
        raw.group_by("account_id", "date").agg(pl.col("cost_usd").sum())
        .join(windows, on="account_id")
        .filter((pl.col("date") >= pl.col("month_start")) & (pl.col("date") <= pl.col("through_date")))
        .sort("date")
    )
    out: dict[tuple[str, str], list[tuple]] = {}
    for month, account, day, usd in days.select("month", "account_id", "date", "cost_usd").iter_rows():
        out.setdefault((month, account), []).append((day, usd))
    return out


def _crossing_date(days: Sequence[tuple], amount: float):
    """The first day on which the month to date reached ``amount``; None without daily rows."""
    total = 0.0
    for day, usd in days:
        total += usd
        if total >= amount - 0.005:
            return day
    return None


def _ordinal(day: int) -> str:
    suffix = "th" if 10 <= day % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")
    return f"{day}{suffix}"


def _budget_row(acct: dict, basis: str, level: float, amount: float, budget: float, note: str, start=None) -> dict:
    return {
        "month": acct["month"],
        "account_id": acct["account_id"],
        "level": "account",
        "service": None,
        "kind": "budget",
        "current_usd": amount,
        "previous_usd": budget,
        "change_usd": amount - budget,
        "change_pct": amount / budget * 100 - 100,
        "severity": "high" if level >= 100 and basis == "actual" else "medium" if level >= 100 else "low",
        "alerted": True,
        "through_date": acct["through_date"],
        "impact_usd": max(amount - budget, 0.0),
        "detector": f"budget_{basis}",
        "note": note,
        "budget_usd": budget,
        "budget_threshold_pct": level,
        "start_date": start,
    }


# --- The whole table ------------------------------------------------------------------------------------


def detect_anomalies(
    mom: pl.DataFrame,
    rule: AnomalyRule,
    *,
    raw: pl.DataFrame | None = None,
    overrides: Mapping[str, AnomalyRule] | None = None,
    budgets: Mapping[str, float] | None = None,
    budget_alert_pcts: Sequence[float] = DEFAULT_ALERT_PCTS,
    feedback: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """The anomalies of the months in ``mom``: one row per (month, account, service) at most, plus
    account-level rows (whole-account changes, budget alerts).

    ``raw`` (daily rows of the months and the two before, where loaded) enables the daily detector, the
    carry-over check and the line-level drivers; without it only the month-to-date rule runs.
    ``overrides`` are per-account rules (teams with their own threshold or floor); ``budgets`` monthly
    budgets per account; ``feedback`` admin marks (month, account_id, service, feedback): a marked
    anomaly is ``acknowledged`` and not alerted.
    """
    rules = _rules_frame(mom["account_id"], rule, overrides)
    windows = _month_windows(mom)
    # An account with no spend at all last month is new as a whole: its services are reported as
    # new but not alerted one by one (a new account is not 15 anomalies).
    new_accounts = mom.filter(
        (pl.col("level") == "account") & pl.col("has_data") & (pl.col("previous_month_total_usd") == 0)
    ).select("month", "account_id", pl.lit(True).alias("account_is_new"))
    frame = (
        mom.filter(pl.col("has_data"))
        .join(new_accounts, on=["month", "account_id"], how="left")
        .with_columns(pl.col("account_is_new").fill_null(False))
        .join(rules, on="account_id", how="left")
    )
    key = ["month", "account_id", "service"]
    if raw is not None and raw.height:
        grid = daily_grid(raw)  # once: the three detectors below share it
        findings, unjudged = detect_daily(grid, windows, rules)
        first_days = _as_strings(
            grid.filter(pl.col("cost_usd") > 0).with_columns(pl.col("date").dt.strftime("%Y-%m").alias("month"))
            .group_by("month", "account_id", "service").agg(pl.col("date").min().alias("first_cost_date"))
        )
        tails = _carry_over_levels(grid, windows)
        usual = usual_month_to_date(grid, windows)
    else:
        findings = pl.DataFrame(schema={**{k: pl.String for k in key}, "kind": pl.String, "start_date": pl.Date,
                                        "end_date": pl.Date, "days": pl.UInt32, "impact_usd": pl.Float64,
                                        "baseline_usd": pl.Float64, "ongoing": pl.Boolean,
                                        "continued": pl.Boolean})
        unjudged = tails = usual = None
        first_days = pl.DataFrame(schema={**{k: pl.String for k in key}, "first_cost_date": pl.Date})
    frame = frame.join(
        findings.rename({"kind": "daily_kind", "impact_usd": "daily_impact"}), on=key, how="left"
    ).join(first_days, on=key, how="left").join(
        windows.select("month", pl.col("month_start").alias("window_start")), on="month", how="left")
    if tails is not None:
        frame = frame.join(tails, on=key, how="left").join(usual, on=key, how="left")
        frame = frame.join(
            unjudged.select(*key, pl.lit(True).alias("unjudged")), on=key, how="left"
        )
    else:
        frame = frame.with_columns(
            pl.lit(None, dtype=pl.Float64).alias("tail_daily_usd"), pl.lit(None, dtype=pl.Boolean).alias("unjudged"),
            pl.lit(None, dtype=pl.Float64).alias("usual_median"), pl.lit(None, dtype=pl.Float64).alias("usual_scale"),
            pl.lit(None, dtype=pl.UInt32).alias("usual_samples"), pl.lit(None, dtype=pl.Boolean).alias("like_for_like"),
            pl.lit(None, dtype=pl.Float64).alias("weekly_cv"),
        )

    change, pct = pl.col("change_usd"), pl.col("change_pct")
    floor, thr = pl.col("min_usd"), pl.col("threshold_pct")
    service = pl.col("level") == "service"
    is_daily = service & pl.col("daily_kind").is_not_null() & (pl.col("daily_impact") >= floor)
    is_increase = (change >= floor) & (pct.is_null() | (pct >= thr)) & ~pl.col("is_new")
    is_new = pl.col("is_new") & (pl.col("current_mtd_usd") >= floor)
    is_decrease = (change <= -floor) & (pct <= -thr)
    kind = (
        pl.when(is_daily)
        .then(pl.col("daily_kind"))
        .when(is_new)
        .then(pl.lit("new_service"))
        .when(is_increase)
        .then(pl.lit("increase"))
        .when(is_decrease)
        .then(pl.lit("decrease"))
    )
    # The level it ran at over the last two weeks of last month already explains this month's rise.
    carry_over = (pl.col("detector") == "daily") & pl.col("continued").fill_null(False) | (
        (pl.col("kind") == "increase")
        & service
        & pl.col("tail_daily_usd").is_not_null()
        & (pl.col("current_mtd_usd") / pl.col("days_covered") <= pl.col("tail_daily_usd") * (1 + thr / 100))
    )
    # A notable change, not an anomaly: a month-to-date rise no larger than this series' own history makes
    # usual (shown in the email's changes, not alerted). Too little history to know: the plain rule alerts.
    rise = ((pl.col("current_mtd_usd") + MTD_EPSILON_USD) / (pl.col("previous_same_period_usd") + MTD_EPSILON_USD)).log()
    # Two views of "usual", the wider wins: the spread of past n-day comparisons, and whole weeks' spread
    # scaled to n days (the log ratio of two n-day sums moves about sqrt(2 x 7 / n) x the weeks' variation).
    weekly_bar = USUAL_WEEKLY_Z * (2 * 7 / pl.col("days_covered")).sqrt() * pl.col("weekly_cv").fill_null(0.0)
    frame = frame.with_columns(
        pl.max_horizontal(pl.col("usual_median") + USUAL_Z * pl.col("usual_scale"), weekly_bar).alias("usual_bar")
    )
    usual = (
        (pl.col("kind") == "increase")
        & (pl.col("usual_samples") >= USUAL_MIN_SAMPLES)
        & (rise <= pl.col("usual_bar"))
    )
    # Too little daily history to know what is usual, and last month's same days not all there (a series
    # that started late last month, a source gap): shown as a notable change, not alerted. With a like-for-like
    # comparison but little history, the plain rule (% threshold and $ floor) alerts.
    unknown = (
        pl.lit(tails is not None)
        & (pl.col("kind") == "increase")
        & service
        & (pl.col("usual_samples").fill_null(0) < USUAL_MIN_SAMPLES)
        & ~pl.col("like_for_like").fill_null(False)
    )
    impact = pl.when(pl.col("detector") == "daily").then(pl.col("daily_impact")).otherwise(change)
    out = (
        frame.with_columns(kind.alias("kind"))
        .filter(pl.col("kind").is_not_null())
        .with_columns(
            pl.when(pl.col("kind").is_in(["spike", "step"])).then(pl.lit("daily")).otherwise(pl.lit("month_to_date")).alias("detector")
        )
        .with_columns(carry_over.fill_null(False).alias("carry_over"), usual.fill_null(False).alias("usual"),
                      unknown.fill_null(False).alias("usual_unknown"))
        .with_columns(
            pl.col("current_mtd_usd").alias("current_usd"),
            pl.col("previous_same_period_usd").alias("previous_usd"),
            impact.alias("impact_usd"),
            # When it began: the first elevated day, a new service's first day with cost, or for a
            # month-to-date rise the 1st (the rise is measured over the month so far).
            pl.when(pl.col("detector") == "daily").then(pl.col("start_date"))
            .when(pl.col("kind") == "new_service").then(pl.coalesce("first_cost_date", "window_start"))
            .when(pl.col("kind").is_in(["increase", "decrease"])).then(pl.col("window_start"))
            .alias("start_date"),
            pl.when(pl.col("detector") == "daily").then(pl.col("end_date")).alias("end_date"),
            pl.when(pl.col("detector") == "daily").then(pl.col("baseline_usd")).alias("baseline_usd"),
        )
        .with_columns(
            severity_expr(pl.col("impact_usd"), floor).alias("severity"),
            (
                (pl.col("kind") != "decrease") & ~pl.col("account_is_new") & ~pl.col("carry_over") & ~pl.col("usual")
                & ~pl.col("usual_unknown")
            ).alias("alerted"),
            _note_expr().alias("note"),
        )
    )
    out = _attach_drivers(out, raw, mom, windows)
    if budgets:
        out = pl.concat([conform(out, "anomalies"), budget_alerts(mom, budgets, budget_alert_pcts, raw)])
    out = apply_feedback(conform(out, "anomalies"), feedback)
    # Deterministic tie-breaks: a rerun writes the same partition byte for byte.
    return out.sort(
        ["month", "account_id", "impact_usd", "level", "service", "kind", "detector"],
        descending=[False, False, True, False, False, False, False],
        nulls_last=True,
    )


def _note_expr() -> pl.Expr:
    days = pl.col("days").cast(pl.String)
    daily = pl.format(
        "{} from {} ({} day(s)) against a usual ${} for such a day (median of the same weekday over 4 weeks){}",
        pl.when(pl.col("kind") == "step").then(pl.lit("New level")).otherwise(pl.lit("Spike")),
        pl.col("start_date").dt.strftime("%d %b"),
        days,
        pl.col("baseline_usd").round(2).cast(pl.String),
        pl.when(pl.col("ongoing").fill_null(False)).then(pl.lit("; still elevated")).otherwise(pl.lit("")),
    )
    return (
        pl.when((pl.col("detector") == "daily") & pl.col("continued").fill_null(False))
        .then(pl.format("Continues a {} that began on {} (alerted then); not alerted again.",
                        pl.col("kind"), pl.col("start_date").dt.strftime("%d %b")))
        .when(pl.col("detector") == "daily")
        .then(daily)
        .when(pl.col("carry_over"))
        .then(pl.lit("Carry-over: the service already ran at this level at the end of last month; not alerted again."))
        .when(pl.col("usual"))
        .then(pl.format(
            "Notable change, not an anomaly: month-to-date moves of up to {}% are usual for this service; not alerted.",
            (pl.col("usual_bar").exp() * 100 - 100).round(0).cast(pl.Int64).cast(pl.String),
        ))
        .when(pl.col("usual_unknown"))
        .then(pl.lit("Notable change, not alerted: last month's same days are not all there to compare with, and "
                     "there is too little daily history to tell whether a rise like this is unusual for this service."))
        .when(pl.col("unjudged").fill_null(False))
        .then(pl.lit("Month-to-date rule only: fewer than 3 weeks of daily history for the daily check."))
    )


def _attach_drivers(
    out: pl.DataFrame, raw: pl.DataFrame | None, mom: pl.DataFrame, windows: pl.DataFrame
) -> pl.DataFrame:
    """Drivers per anomaly (adding up to impact_usd) and the usage / rate / mix totals."""
    key = ["month", "account_id", "service"]
    drivers: dict[tuple, list[dict]] = {}
    splits: dict[tuple, tuple] = {}
    services = out.filter(pl.col("level") == "service")
    if raw is not None and raw.height and services.height:
        spans = services.select(*key, "kind", "start_date", "end_date", "impact_usd")
        lines = _line_totals(raw, windows, spans)
        for k, group in lines.partition_by(key, as_dict=True).items():
            rows = group.to_dicts()
            total = sum(r["c1"] - r["c0"] for r in rows)
            drivers[k] = build_drivers(rows, total, "usage types")
            parts = [split_usage_rate_mix(r["c0"], r["c1"], r["q0"], r["q1"]) for r in rows]
            if all(p is not None for p in parts):
                splits[k] = tuple(round(sum(p[i] for p in parts), 2) for i in range(3))
    by_service = mom.filter(pl.col("level") == "service").partition_by(["month", "account_id"], as_dict=True)
    driver_col, usage, rate, mix = [], [], [], []
    for r in out.iter_rows(named=True):
        k = (r["month"], r["account_id"], r["service"])
        if r["level"] == "account":
            svc = by_service.get((r["month"], r["account_id"]))
            rows = (
                [{"service": s["service"], "c0": s["previous_same_period_usd"] or 0.0, "c1": s["current_mtd_usd"] or 0.0}
                 for s in svc.iter_rows(named=True)]
                if svc is not None and r["change_usd"] is not None
                else []
            )
            driver_col.append(build_drivers(rows, r["change_usd"] or 0.0, "services") if rows else [])
        else:
            driver_col.append(drivers.get(k, []))
        s = splits.get(k)
        usage.append(s[0] if s else None)
        rate.append(s[1] if s else None)
        mix.append(s[2] if s else None)
    return out.with_columns(
        pl.Series("drivers", driver_col, dtype=pl.List(ANOMALY_DRIVER)),
        pl.Series("usage_change_usd", usage, dtype=pl.Float64),
        pl.Series("rate_change_usd", rate, dtype=pl.Float64),
        pl.Series("mix_change_usd", mix, dtype=pl.Float64),
    )


def unavailable_anomalies(partitions: Sequence[tuple[str, str]], failed: Mapping[str, str]) -> pl.DataFrame:
    """One account-level row (kind "unavailable", not alerted) per partition of the ``failed`` accounts, with
    the error in its note: the reports say detection failed rather than showing "no anomalies"."""
    rows = [{"month": m, "account_id": a, "level": "account", "service": None, "kind": UNAVAILABLE,
             "detector": UNAVAILABLE, "alerted": False, "acknowledged": False,
             "note": f"Anomaly detection failed for this account: {failed[a]}"}
            for m, a in sorted(set(partitions)) if a in failed]
    return conform(pl.DataFrame(rows, schema_overrides={"service": pl.String}), "anomalies") if rows else empty("anomalies")


def apply_feedback(anomalies: pl.DataFrame, feedback: pl.DataFrame | None) -> pl.DataFrame:
    """Mark anomalies an admin acknowledged (same account, service and month): shown apart, not alerted."""
    if feedback is None or not feedback.height:
        return anomalies.with_columns(pl.lit(False).alias("acknowledged"))
    marks = feedback.select(
        "month", "account_id", pl.col("service").alias("_svc"), pl.col("feedback").alias("_fb")
    ).unique(["month", "account_id", "_svc"], keep="last")
    out = anomalies.with_columns(pl.col("service").fill_null("").alias("_svc")).join(
        marks, on=["month", "account_id", "_svc"], how="left"
    )
    acked = pl.col("_fb").is_not_null()
    return conform(
        out.with_columns(
            acked.alias("acknowledged"),
            pl.col("_fb").alias("feedback"),
            (pl.col("alerted") & ~acked).alias("alerted"),
        ),
        "anomalies",
    )

