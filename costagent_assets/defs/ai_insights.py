"""ai_insights: why each account's cost changed, naming the services that drove it with their $ and %."""


import dagster as dg
import polars as pl

from costagent_assets import markdown
from costagent_assets.analysis import explain_changes
from costagent_assets.defs.partitions import month_account_partitions, run_partitions, run_periods, single_run
from costagent_assets.defs.service_breakdown import TOLERANCE_USD


@dg.asset(
    partitions_def=month_account_partitions,
    backfill_policy=single_run,
    group_name="analysis",
    kinds={"polars", "parquet"},
    check_specs=[
        dg.AssetCheckSpec("drivers_add_up_to_change", asset="ai_insights", blocking=True,
                          description="Each explanation's drivers sum to the account's total change."),
    ],
)
def ai_insights(context: dg.AssetExecutionContext, mom_changes: pl.DataFrame, anomalies: pl.DataFrame):
    """The explanation per account: the month so far against the same days of last month, the services
    that moved most (each with $ and %; the rest as one line, so the drivers add up to the total), the
    alerts and the projected month end. Computed from the data alone; an AI writer (Gemini) plugs in
    here and must keep to these numbers."""
    partitions = run_partitions(context)
    frame = explain_changes(mom_changes, anomalies, run_periods(context, partitions))
    gaps = (
        frame.filter(pl.col("total_change_usd").is_not_null())
        .select(
            (
                pl.col("drivers").list.eval(pl.element().struct.field("change_usd")).list.sum()
                - pl.col("total_change_usd")
            )
            .abs()
            .max()
        )
        .item()
        if frame.height
        else 0.0
    ) or 0.0
    yield dg.Output(
        frame,
        metadata={
            "rows": frame.height,
            "source": "deterministic",
            "ai_tokens": 0,
            "ai_cost_usd": 0.0,
            "preview": dg.MetadataValue.md(
                markdown.table(
                    frame.head(5).iter_rows(named=True),
                    [("account", lambda r: r["account_id"]), ("summary", lambda r: r["summary"])],
                )
            ),
        },
    )
    yield dg.AssetCheckResult(
        check_name="drivers_add_up_to_change",
        passed=gaps <= TOLERANCE_USD,
        metadata={"largest_gap_usd": float(gaps)},
    )
