"""raw_costs: the daily cost rows of every account-month in the run, from the configured source."""


from datetime import timedelta

import dagster as dg
import polars as pl

from costagent_assets.analysis import deduplicate_raw_costs
from costagent_assets.defs.partitions import month_account_partitions, run_partitions, run_periods, single_run
from costagent_assets.resources.cost_source import CostSource
from costagent_assets.schemas import conform, empty

KEY = ["date", "account_id", "service", "region", "usage_type"]


@dg.asset(
    partitions_def=month_account_partitions,
    backfill_policy=single_run,
    group_name="costs",
    kinds={"polars", "parquet"},
    check_specs=[
        dg.AssetCheckSpec("one_row_per_day_and_line", asset="raw_costs", blocking=True,
                          description="No (date, account, service, region, usage type) appears twice."),
        dg.AssetCheckSpec("every_account_has_data", asset="raw_costs",
                          description="Accounts the source returned nothing for: shown as 'no data', never $0."),
    ],
)
def raw_costs(context: dg.AssetExecutionContext, cost_source: CostSource):
    """Daily cost in USD per account, service, region and usage type, as the cost source reports it.

    One query per month covers all of the run's accounts. Days are those of the month up to
    yesterday (the last complete day); a repeated day from the source is kept once.
    """
    partitions = run_partitions(context)
    periods = run_periods(context, partitions)
    frames = []
    for month, p in periods.items():
        accounts = sorted({a for m, a in partitions if m == month})
        if p.days_covered == 0:
            continue
        part = cost_source.daily_costs(accounts, p.start, p.through, as_of=p.through + timedelta(days=1))
        part = part.filter(
            pl.col("account_id").is_in(accounts) & pl.col("date").is_between(p.start, p.through)
        ).with_columns(pl.lit(month).alias("month"))
        frames.append(part)
    raw = conform(pl.concat(frames, how="vertical_relaxed"), "raw_costs") if frames else empty("raw_costs")
    raw = deduplicate_raw_costs(raw)

    duplicates = raw.height - raw.select(KEY).n_unique() if raw.height else 0
    with_data = set(raw.select("month", "account_id").unique().iter_rows())
    missing = sorted({(m, a) for m, a in partitions if periods[m].days_covered} - with_data)
    total = float(raw["cost_usd"].sum()) if raw.height else 0.0
    yield dg.Output(
        raw,
        metadata={
            "rows": raw.height,
            "accounts": len({a for _, a in partitions}),
            "months": ", ".join(periods),
            "through": ", ".join(str(p.through) for p in periods.values()),
            "total_usd": dg.MetadataValue.float(round(total, 2)),
            "accounts_without_data": len(missing),
            "source": cost_source.name,
        },
    )
    yield dg.AssetCheckResult(
        check_name="one_row_per_day_and_line",
        passed=duplicates == 0,
        metadata={"duplicate_rows": duplicates},
    )
    yield dg.AssetCheckResult(
        check_name="every_account_has_data",
        passed=not missing,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "accounts_without_data": len(missing),
            "sample": ", ".join(f"{a} ({m})" for m, a in missing[:20]) or "none",
        },
    )
