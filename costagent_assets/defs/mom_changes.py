"""mom_changes: month to date against the same days of the previous month."""


import dagster as dg
import polars as pl

from costagent_assets.analysis import TOLERANCE_USD, compute_mom_changes
from costagent_assets.defs.partitions import (
    make_key,
    month_account_asset,
    previous_and_current_month,
    run_partitions,
    run_periods,
)
from costagent_assets.defs.raw_costs import MONTH_SERIES_COLUMNS
from costagent_assets.defs.run_metadata import run_output
from costagent_assets.isolation import in_account_groups, of_accounts
from costagent_assets.periods import shift_month


@month_account_asset(
    group_name="analysis",
    kinds={"polars", "parquet"},
    ins={
        "raw_costs": dg.AssetIn(partition_mapping=previous_and_current_month,
                                metadata={"columns": MONTH_SERIES_COLUMNS}),
        "service_breakdown": dg.AssetIn(),
    },
    check_specs=[
        dg.AssetCheckSpec("services_add_up_to_account", asset="mom_changes", blocking=True,
                          description="Service rows add up to the account row, and to service_breakdown."),
    ],
)
def mom_changes(context: dg.AssetExecutionContext, raw_costs: pl.DataFrame, service_breakdown: pl.DataFrame):
    """Like-for-like change per account and service: the month so far against the same days of the
    previous month (10 days of November against 10 days of October, never against all of October),
    plus the full previous month and a projection of the month end from the last week's pace."""
    partitions = run_partitions(context)
    periods = run_periods(context, partitions)
    # A previous month that was never loaded is "unknown", not $0: ask the instance what was loaded.
    materialized = context.instance.get_materialized_partitions(dg.AssetKey("raw_costs"))
    previous = {(shift_month(m, -1), a) for m, a in partitions}
    loaded = {key for key in previous if str(make_key(*key)) in materialized}
    frame = in_account_groups(
        lambda parts: compute_mom_changes(of_accounts(raw_costs, parts), periods, parts, previous_loaded=loaded),
        partitions,
    )

    accounts = frame.filter(pl.col("level") == "account")
    services = frame.filter(pl.col("level") == "service").group_by("month", "account_id").agg(
        pl.col("current_mtd_usd").sum().alias("services_usd")
    )
    breakdown = service_breakdown.group_by("month", "account_id").agg(pl.col("mtd_usd").sum())
    diffs = (
        accounts.filter(pl.col("has_data"))
        .join(services, on=["month", "account_id"], how="left")
        .join(breakdown, on=["month", "account_id"], how="left")
        .select(
            pl.max_horizontal(
                (pl.col("current_mtd_usd") - pl.col("services_usd").fill_null(0)).abs(),
                (pl.col("current_mtd_usd") - pl.col("mtd_usd").fill_null(0)).abs(),
            ).max()
        )
        .item()
    ) or 0.0
    with_data = accounts.filter(pl.col("has_data"))
    yield run_output(
        context, frame,
        metadata={
            "rows": frame.height,
            "accounts_with_data": with_data.height,
            "accounts_without_data": accounts.height - with_data.height,
            "mtd_usd": dg.MetadataValue.float(round(float(with_data["current_mtd_usd"].sum()), 2)),
            "previous_same_period_usd": dg.MetadataValue.float(
                round(float(with_data["previous_same_period_usd"].sum()), 2)
            ),
            "change_usd": dg.MetadataValue.float(round(float(with_data["change_usd"].sum()), 2)),
            "accounts_without_previous_month": len(previous) - len(loaded),
        },
    )
    yield dg.AssetCheckResult(
        check_name="services_add_up_to_account",
        passed=diffs <= TOLERANCE_USD,
        metadata={"largest_difference_usd": float(diffs)},
    )
