"""forecast_backtest: each complete month's forecast replayed from the data known the month before."""

import dagster as dg
import polars as pl

from costagent_assets.defs.partitions import month_account_asset, months_window, run_partitions, run_periods
from costagent_assets.defs.raw_costs import SERIES_COLUMNS
from costagent_assets.defs.run_metadata import run_output
from costagent_assets.forecast import compute_backtest
from costagent_assets.isolation import in_account_groups, of_accounts


@month_account_asset(
    group_name="forecasts",
    kinds={"duckdb", "parquet"},
    # The forecast made at the end of month M-1 needs 8 weeks of history before it, and month M's actuals.
    ins={"raw_costs": dg.AssetIn(partition_mapping=months_window(-3, 0), metadata={"columns": SERIES_COLUMNS})},
)
def forecast_backtest(context: dg.AssetExecutionContext, raw_costs: pl.DataFrame):
    """For each complete month, per account and its main services: the next-month forecast made from the
    data available at the end of the month before, the actual, the error (APE, signed), whether the actual
    fell inside the 80% interval, and the two baselines ("next month = last month", "last 7 days' run rate x
    days in month"). A month still in progress has no rows yet."""
    partitions = run_partitions(context)
    periods = run_periods(context, partitions)
    # Each account's backtest is its own (no pooling across accounts): computed a group of accounts at a time.
    frame = in_account_groups(lambda parts: compute_backtest(of_accounts(raw_costs, parts), periods, parts), partitions)
    scored = frame.filter(pl.col("service").is_null() & pl.col("forecast_usd").is_not_null())
    metadata = {"rows": frame.height, "account_months_scored": scored.height}
    if scored.height:
        stats = scored.select(
            pl.col("ape_pct").mean(), pl.col("ape_last_month_pct").mean(), pl.col("ape_run_rate_pct").mean(),
            pl.col("inside").mean(),
        ).row(0)
        metadata |= {
            "mape_pct": round(stats[0], 2),
            "mape_last_month_pct": round(stats[1], 2),
            "mape_run_rate_pct": round(stats[2], 2),
            "interval_coverage_pct": round(stats[3] * 100, 1),
        }
    return run_output(context, frame, metadata=metadata)
