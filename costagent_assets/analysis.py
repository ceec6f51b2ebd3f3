"""The analysis behind every report: pure functions over polars frames, no Dagster, no clients.

Each function takes and returns frames for all of a run's accounts at once (vectorised), so a
weekly run over 84 or 1,000 accounts is one pass, not one pass per account.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping

import polars as pl

from costagent_assets.anomaly_detection import (  # noqa: F401 (re-exported)
    AnomalyRule,
    detect_anomalies,
    fold_rounding_cents,
    sorted_enum,
)
from costagent_assets.periods import Period, month_start, shift_month
from costagent_assets.schemas import DRIVER, conform, empty

# Sums are taken in whole micro-dollars so that they do not depend on row order (see micro_sum).
MICRO = 1_000_000
# Projections use the mean of the last full week so that weekly seasonality cancels out.
RUN_RATE_DAYS = 7
# The explanation names at most this many services; the rest are one "Other services" line.
MAX_DRIVERS = 5


# A total and the sum of its parts are compared to the cent after summing floats.
TOLERANCE_USD = 0.01
# Drivers are rounded to cents; their sum may miss the total rounded to cents by float error only.
DRIVERS_TOLERANCE_USD = 0.011


def drivers_gap(frame: pl.DataFrame, total: str, rows: pl.Expr) -> float:
    """The largest gap between the sum of a row's ``drivers`` (their ``change_usd``) and its ``total`` column
    rounded to cents, over the rows selected by ``rows``; 0.0 for none. The one check behind every "drivers
    add up" asset check: a team must never read drivers that do not add up to the change they explain."""
    if not frame.height:
        return 0.0
    gap = frame.filter(rows).select(
        (pl.col("drivers").list.eval(pl.element().struct.field("change_usd")).list.sum() - pl.col(total).round(2))
        .abs()
        .max()
    ).item()
    return float(gap or 0.0)


def _periods_frame(periods: Mapping[str, Period]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "month": list(periods),
            "through_date": [p.through for p in periods.values()],
            "days_covered": [p.days_covered for p in periods.values()],
            "days_in_month": [p.days_in_month for p in periods.values()],
            "month_complete": [p.complete for p in periods.values()],
        },
        schema={
            "month": pl.String,
            "through_date": pl.Date,
            "days_covered": pl.Int32,
            "days_in_month": pl.Int32,
            "month_complete": pl.Boolean,
        },
    )


def deduplicate_raw_costs(raw: pl.DataFrame) -> pl.DataFrame:
    """One row per (date, account, service, region, usage type): a source that repeats a day is summed once.

    Sources can return the same day twice (overlapping query windows, re-delivered files); keeping the
    last delivery per key means a day is never counted twice.
    """
    key = ["date", "account_id", "service", "region", "usage_type"]
    # FOCUS lines of one day can differ only by charge category (usage and its credit) or currency.
    key += [c for c in ("charge_category", "currency") if c in raw.columns]
    return raw.unique(subset=key, keep="last", maintain_order=True).sort(key)


def compute_service_breakdown(raw: pl.DataFrame, periods: Mapping[str, Period]) -> pl.DataFrame:
    """Per account, month and service: month-to-date spend, the full month once complete, and its share."""
    frame = (
        raw.join(_periods_frame(periods), on="month", how="inner")
        .filter(pl.col("date") <= pl.col("through_date"))
        .group_by(["month", "account_id", "service"])
        .agg(
            micro_sum("cost_usd").alias("mtd_micro"),
            pl.col("through_date").first(),
            pl.col("days_covered").first(),
            pl.col("month_complete").first(),
        )
        .with_columns(
            (pl.col("mtd_micro") / MICRO).alias("mtd_usd"),
            (pl.col("mtd_micro") / pl.col("mtd_micro").sum().over(["month", "account_id"]) * 100)
            .fill_nan(None)
            .alias("share_pct"),
        )
        .with_columns(pl.when(pl.col("month_complete")).then(pl.col("mtd_usd")).alias("month_total_usd"))
        .with_columns(pl.col("mtd_usd", "month_total_usd").round(4))
        .sort(["month", "account_id", "mtd_usd", "service"], descending=[False, False, True, False])
    )
    return conform(frame, "service_breakdown")


def micro_sum(column: str) -> pl.Expr:
    """The sum of a USD column in whole micro-dollars (Int64).

    Float sums depend on the order of the rows, and polars' parallel group-by does not fix that order;
    integers make every rerun reproduce its figures (and its Parquet bytes) exactly.
    """
    return (pl.col(column) * MICRO).round(0).cast(pl.Int64).sum()


def _daily_by_service(raw: pl.DataFrame) -> pl.DataFrame:
    """Per month, account, service and day: the cost in micro-dollars (Int64, see micro_sum), with account_id
    and service as Enums in their strings' order (grouped and joined on integers; cast back to String)."""
    accounts, services = sorted_enum(raw["account_id"]), sorted_enum(raw["service"])
    return (
        raw.lazy()
        .select("month", pl.col("account_id").cast(accounts), pl.col("service").cast(services), "date", "cost_usd")
        .group_by(["month", "account_id", "service", "date"])
        .agg(micro_sum("cost_usd").alias("cost_usd"))
        .collect()
    )


def compute_mom_changes(
    raw: pl.DataFrame,
    periods: Mapping[str, Period],
    accounts: Iterable[tuple[str, str]],
    previous_loaded: Collection[tuple[str, str]] | None = None,
) -> pl.DataFrame:
    """Month to date against the same days of the previous month, per service and per account.

    ``raw`` holds the current months' and the previous months' daily rows; ``accounts`` is every
    (month, account_id) partition of the run, so an account without data still gets an account row
    (with ``has_data`` false and null amounts: unknown is not $0). Also gives the full previous month
    and a run-rate projection of the month end (spend so far + the last week's daily mean x days left).
    ``previous_loaded`` lists the (month, account_id) partitions of previous months that were ever
    loaded (None: all were); where the previous month was never loaded, the comparison is unknown
    (null), not a rise from $0.
    """
    pf = _periods_frame(periods)
    prev_map = pl.DataFrame(
        {"month": list(periods), "prev_month": [shift_month(m, -1) for m in periods]},
        schema={"month": pl.String, "prev_month": pl.String},
    )
    daily = _daily_by_service(raw)
    key = ["month", "account_id", "service"]

    current = (
        daily.join(pf, on="month", how="inner")
        .filter(pl.col("date") <= pl.col("through_date"))
        .with_columns(
            (pl.col("date") > pl.col("through_date") - pl.duration(days=RUN_RATE_DAYS)).alias("recent")
        )
        .group_by(key)
        .agg(
            pl.col("cost_usd").sum().alias("current_mtd_usd"),
            pl.col("cost_usd").filter(pl.col("recent")).sum().alias("recent_usd"),
        )
    )
    previous = (
        daily.rename({"month": "prev_month"})
        .join(prev_map, on="prev_month", how="inner")
        .join(pf.select("month", "days_covered"), on="month", how="inner")
        .group_by(key)
        .agg(
            pl.col("cost_usd")
            .filter(pl.col("date").dt.day() <= pl.col("days_covered"))
            .sum()
            .alias("previous_same_period_usd"),
            pl.col("cost_usd").sum().alias("previous_month_total_usd"),
        )
    )
    amounts = ["current_mtd_usd", "recent_usd", "previous_same_period_usd", "previous_month_total_usd"]
    services_micro = (
        current.join(previous, on=key, how="full", coalesce=True)
        .join(pf, on="month", how="inner")
        .with_columns(pl.col(amounts).fill_null(0), pl.col("account_id", "service").cast(pl.String))
    )
    services = services_micro.with_columns(pl.col(amounts) / MICRO)
    run_rate_days = pl.min_horizontal(pl.col("days_covered"), pl.lit(RUN_RATE_DAYS)).cast(pl.Float64)
    remaining = (pl.col("days_in_month") - pl.col("days_covered")).cast(pl.Float64)

    def finish(frame: pl.DataFrame, level: str) -> pl.DataFrame:
        return frame.with_columns(
            pl.lit(level).alias("level"),
            (pl.col("current_mtd_usd") - pl.col("previous_same_period_usd")).alias("change_usd"),
            pl.when(pl.col("previous_same_period_usd") > 0)
            .then(
                (pl.col("current_mtd_usd") - pl.col("previous_same_period_usd"))
                / pl.col("previous_same_period_usd")
                * 100
            )
            .alias("change_pct"),
            (
                pl.col("current_mtd_usd")
                + pl.when(run_rate_days > 0).then(pl.col("recent_usd") / run_rate_days).otherwise(0.0) * remaining
            ).alias("projected_month_end_usd"),
            ((pl.col("previous_month_total_usd") == 0) & (pl.col("current_mtd_usd") > 0)).alias("is_new"),
        )

    service_rows = finish(services, "service").with_columns(pl.lit(True).alias("has_data"))
    partitions = pl.DataFrame(
        list(accounts), schema={"month": pl.String, "account_id": pl.String}, orient="row"
    ).unique()
    # The days of ``daily`` are those of ``raw`` (per account and month), in far fewer rows.
    has_data = (
        daily.join(pf, on="month", how="inner")
        .filter(pl.col("date") <= pl.col("through_date"))
        .select("month", pl.col("account_id").cast(pl.String))
        .unique()
        .with_columns(pl.lit(True).alias("has_data"))
    )
    totals = (
        services_micro.group_by(["month", "account_id"]).agg(pl.col(amounts).sum()).with_columns(pl.col(amounts) / MICRO)
    )
    account_rows = (
        partitions.join(totals, on=["month", "account_id"], how="left")
        .join(has_data, on=["month", "account_id"], how="left")
        .join(pf, on="month", how="inner")
        .with_columns(pl.col("has_data").fill_null(False))
        .with_columns(
            # No rows for an account means the source told us nothing: keep the amounts unknown.
            [
                pl.when(pl.col("has_data")).then(pl.col(c).fill_null(0.0)).alias(c)
                for c in ("current_mtd_usd", "recent_usd", "previous_same_period_usd", "previous_month_total_usd")
            ]
        )
    )
    account_rows = finish(account_rows, "account").with_columns(
        pl.lit(None, dtype=pl.String).alias("service"), pl.lit(False).alias("is_new")
    )
    frame = pl.concat([conform(account_rows, "mom_changes"), conform(service_rows, "mom_changes")])
    if previous_loaded is not None:
        loaded = pl.DataFrame(
            [(shift_month(m, 1), a) for m, a in previous_loaded],
            schema={"month": pl.String, "account_id": pl.String},
            orient="row",
        ).with_columns(pl.lit(True).alias("previous_loaded"))
        unknown = ~pl.col("previous_loaded").fill_null(False)
        frame = frame.join(loaded.unique(), on=["month", "account_id"], how="left").with_columns(
            [
                pl.when(unknown).then(None).otherwise(pl.col(c)).alias(c)
                for c in ("previous_same_period_usd", "previous_month_total_usd", "change_usd", "change_pct")
            ]
            + [pl.when(unknown).then(False).otherwise(pl.col("is_new")).alias("is_new")]
        ).drop("previous_loaded")
    money = ["current_mtd_usd", "previous_same_period_usd", "change_usd", "previous_month_total_usd",
             "projected_month_end_usd"]
    frame = frame.with_columns(pl.col(money).round(4))
    return frame.sort(
        ["month", "account_id", "level", "current_mtd_usd", "service"],
        descending=[False, False, False, True, False],
        nulls_last=True,
    )


def _drivers(services: pl.DataFrame, total_change: float) -> list[dict]:
    """The services that moved most, plus one line for the rest, adding up exactly to ``total_change``."""
    rows = services.sort([pl.col("change_usd").abs(), pl.col("service")], descending=[True, False]).to_dicts()
    top = [r for r in rows[:MAX_DRIVERS] if abs(r["change_usd"]) >= 0.005]
    drivers = [
        {"service": r["service"], "change_usd": round(r["change_usd"], 2), "change_pct": r["change_pct"]}
        for r in top
    ]
    # Amounts are rounded to cents and the remainder goes to the "other" line, so the drivers sum to the total.
    rest = round(total_change, 2) - sum(d["change_usd"] for d in drivers)
    others = len(rows) - len(top)
    if others and abs(rest) >= 0.005:
        drivers.append(
            {"service": f"Other services ({others})", "change_usd": round(rest, 2), "change_pct": None}
        )
    else:
        fold_rounding_cents(drivers, rest)
    for d in drivers:
        d["share_of_change_pct"] = d["change_usd"] / total_change * 100 if abs(total_change) >= 0.005 else None
    return drivers


def _money(x: float) -> str:
    return f"${abs(x):,.0f}" if abs(x) >= 1000 else f"${abs(x):,.2f}"


def _signed(x: float) -> str:
    return ("+" if x >= 0 else "-") + _money(x)


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{x:+.1f}%"


def explain_changes(mom: pl.DataFrame, anomalies: pl.DataFrame, periods: Mapping[str, Period]) -> pl.DataFrame:
    """The deterministic explanation per account: what changed, which services drove it, with $ and %.

    This is the fallback and the ground truth for any AI-written text: the drivers always add up to
    the account's total change.
    """
    alerts = (
        # Every alert of the account (services, whole account, budget): the count its email shows.
        anomalies.filter(pl.col("alerted"))
        .group_by(["month", "account_id"])
        .agg(pl.len().alias("alerts"))
    )
    accounts = mom.filter(pl.col("level") == "account").join(alerts, on=["month", "account_id"], how="left")
    services = mom.filter(pl.col("level") == "service").partition_by(["month", "account_id"], as_dict=True)
    rows = []
    for acct in accounts.iter_rows(named=True):
        p = periods[acct["month"]]
        prev_label = _month_label(shift_month(acct["month"], -1))
        svc = services.get((acct["month"], acct["account_id"]))
        if not acct["has_data"]:
            summary = (
                f"No cost data was received for this account for {p.label}, so its figures are unknown "
                "(not $0). Check that the cost source covers this account."
            )
            drivers, total = [], None
        elif acct["change_usd"] is None:
            summary = (
                f"{p.label} to date ({p.days_covered} days to {p.through:%d %b}): "
                f"{_money(acct['current_mtd_usd'])}. {prev_label} is not in the warehouse yet, so there is no "
                f"comparison; `costagent backfill --from {shift_month(acct['month'], -1)} --to "
                f"{shift_month(acct['month'], -1)}` loads it."
            )
            drivers, total = [], None
        else:
            total = acct["change_usd"]
            drivers = _drivers(svc, total) if svc is not None else []
            direction = "up" if total > 0 else "down" if total < 0 else "unchanged"
            head = (
                f"{p.label} to date ({p.days_covered} days to {p.through:%d %b}): {_money(acct['current_mtd_usd'])}, "
                f"{direction} {_money(total)} ({_pct(acct['change_pct'])}) on the same days of {prev_label}."
                if direction != "unchanged"
                else f"{p.label} to date: {_money(acct['current_mtd_usd'])}, unchanged on the same days of {prev_label}."
            )
            named = [d for d in drivers if not d["service"].startswith("Other services")][:3]
            movers = ", ".join(f"{d['service']} ({_signed(d['change_usd'])}, {_pct(d['change_pct'])})" for d in named)
            summary = head + (f" Biggest movers: {movers}." if movers else "")
            if acct["alerts"]:
                summary += f" {acct['alerts']} alert{'s' if acct['alerts'] != 1 else ''} this month."
            if not p.complete:
                summary += f" The month is forecast to end near {_money(acct['projected_month_end_usd'])}."
        rows.append(
            {
                "month": acct["month"],
                "account_id": acct["account_id"],
                "source": "deterministic",
                "summary": summary,
                "total_change_usd": total,
                "drivers": drivers,
                "ai_note": None,
                "through_date": p.through,
            }
        )
    if not rows:
        return empty("ai_insights")
    return conform(pl.DataFrame(rows, schema_overrides={"drivers": pl.List(DRIVER)}), "ai_insights")


def _month_label(month: str) -> str:
    return f"{month_start(month):%B %Y}"
