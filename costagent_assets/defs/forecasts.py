"""forecasts: the month end and the next month, per account and its main services, with 80% intervals."""

import dagster as dg
import polars as pl

from costagent_assets import markdown
from costagent_assets.defs.partitions import month_account_asset, months_window, run_partitions, run_periods
from costagent_assets.defs.raw_costs import SERIES_COLUMNS
from costagent_assets.defs.run_metadata import run_output
from costagent_assets.forecast import compute_forecasts, unavailable_forecasts
from costagent_assets.isolation import isolate_accounts, of_accounts


@month_account_asset(
    group_name="forecasts",
    kinds={"duckdb", "parquet"},
    ins={
        # 8 weeks of daily history before any day of the month.
        "raw_costs": dg.AssetIn(partition_mapping=months_window(-2, 0), metadata={"columns": SERIES_COLUMNS}),
        # The track record: the six months before, as far as they were backtested.
        "forecast_backtest": dg.AssetIn(partition_mapping=months_window(-6, -1)),
    },
)
def forecasts(context: dg.AssetExecutionContext, raw_costs: pl.DataFrame, forecast_backtest: pl.DataFrame):
    """The forecast of the month's end and of the next full month, computed in DuckDB SQL from the daily
    history (weekly seasonality, trend, a median level that one-off spikes do not drag up), each with an
    80% prediction interval, and the account's track record over the six months before ("the actual fell
    inside our range 5 times of 6; typical error 4%"). An account with under 14 days of history gets no
    forecast and says so."""
    partitions = run_partitions(context)
    periods = run_periods(context, partitions)
    # A group of accounts at a time (memory), each with every account's backtests: the range of an account with
    # too few backtests of its own is calibrated on the whole organisation's, as when all are computed at once.
    frame, failed = isolate_accounts(
        lambda parts: compute_forecasts(of_accounts(raw_costs, parts), periods, parts, forecast_backtest),
        partitions,
        grouped=True,
    )
    for account, error in failed.items():
        context.log.warning(f"forecasts: unavailable for {account}: {error}")
    frame = pl.concat([frame, unavailable_forecasts(partitions, failed)], how="diagonal_relaxed")
    accounts = frame.filter(pl.col("service").is_null())
    month_end = accounts.filter(pl.col("horizon") == "month_end")
    return run_output(
        context, frame,
        metadata={
            "rows": frame.height,
            "accounts_without_forecast": month_end.filter(pl.col("method") == "insufficient_history").height,
            "accounts_unavailable": dg.MetadataValue.json(failed),
            "month_end_usd": dg.MetadataValue.float(round(float(month_end["point_usd"].sum() or 0), 2)),
            "preview": dg.MetadataValue.md(
                markdown.table(
                    month_end.sort("point_usd", descending=True, nulls_last=True).head(5).iter_rows(named=True),
                    [
                        ("account", lambda r: r["account_id"]),
                        ("month end", lambda r: markdown.usd(r["point_usd"])),
                        ("80% range", lambda r: f"{markdown.usd(r['low_usd'])} – {markdown.usd(r['high_usd'])}"),
                        ("method", lambda r: r["method"]),
                    ],
                )
            ),
        },
    )
