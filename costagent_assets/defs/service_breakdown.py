"""service_breakdown: per account and service, the month to date and the full month."""


import dagster as dg
import polars as pl

from costagent_assets.analysis import TOLERANCE_USD, compute_service_breakdown
from costagent_assets.defs.partitions import month_account_asset, run_partitions, run_periods
from costagent_assets.defs.raw_costs import MONTH_SERIES_COLUMNS
from costagent_assets.defs.run_metadata import run_output


@month_account_asset(
    group_name="costs",
    kinds={"polars", "parquet"},
    ins={"raw_costs": dg.AssetIn(metadata={"columns": MONTH_SERIES_COLUMNS})},
    check_specs=[
        dg.AssetCheckSpec("adds_up_to_raw_costs", asset="service_breakdown", blocking=True,
                          description="Each account's services add up to its raw daily costs."),
    ],
)
def service_breakdown(context: dg.AssetExecutionContext, raw_costs: pl.DataFrame):
    """Spend per service: month to date (through yesterday), the full month once it is complete, and each
    service's share of the account's spend."""
    periods = run_periods(context, run_partitions(context))
    frame = compute_service_breakdown(raw_costs, periods)
    by_account = frame.group_by("month", "account_id").agg(pl.col("mtd_usd").sum())
    raw_totals = raw_costs.group_by("month", "account_id").agg(pl.col("cost_usd").sum())
    worst = (
        by_account.join(raw_totals, on=["month", "account_id"], how="full", coalesce=True)
        .select((pl.col("mtd_usd").fill_null(0) - pl.col("cost_usd").fill_null(0)).abs().max())
        .item()
        if raw_costs.height
        else 0.0
    )
    yield run_output(
        context, frame,
        metadata={
            "rows": frame.height,
            "services": frame["service"].n_unique() if frame.height else 0,
            "mtd_usd": dg.MetadataValue.float(round(float(frame["mtd_usd"].sum()), 2)),
        },
    )
    yield dg.AssetCheckResult(
        check_name="adds_up_to_raw_costs",
        passed=(worst or 0.0) <= TOLERANCE_USD,
        metadata={"largest_difference_usd": float(worst or 0.0)},
    )
