"""anomalies: daily spikes and steps, the month-to-date rule, new services, budgets; with drivers."""


import dagster as dg
import polars as pl

from costagent_assets import markdown
from costagent_assets.analysis import DRIVERS_TOLERANCE_USD, drivers_gap
from costagent_assets.anomaly_detection import (
    alert_kind,
    alert_kind_expr,
    anomaly_rules,
    detect_anomalies,
    unavailable_anomalies,
)
from costagent_assets.defs.partitions import month_account_asset, run_partitions, trailing_three_months
from costagent_assets.defs.raw_costs import LINE_COLUMNS
from costagent_assets.defs.run_metadata import run_output
from costagent_assets.feedback import read_feedback
from costagent_assets.isolation import isolate_accounts, of_accounts
from costagent_assets.resources.teams_registry import TeamsRegistry
from costagent_assets.resources.warehouse import WarehouseResource
from costagent_assets.settings import Settings


@month_account_asset(
    group_name="analysis",
    kinds={"polars", "parquet"},
    ins={"raw_costs": dg.AssetIn(partition_mapping=trailing_three_months, metadata={"columns": LINE_COLUMNS}),
         "mom_changes": dg.AssetIn()},
    check_specs=[
        dg.AssetCheckSpec("drivers_add_up", asset="anomalies", blocking=True,
                          description="Every anomaly's drivers add up to its $ impact (to the cent)."),
    ],
)
def anomalies(
    context: dg.AssetExecutionContext,
    raw_costs: pl.DataFrame,
    mom_changes: pl.DataFrame,
    settings: dg.ResourceParam[Settings],
    teams_registry: TeamsRegistry,
    warehouse: WarehouseResource,
):
    """Per account and service, at most one anomaly: a daily **spike** or **step** (a day far above the
    median of the same weekday over the four weeks before), a **new_service** with material spend, or a
    month-to-date **increase** past both ``anomaly_threshold_pct`` and ``anomaly_min_usd``; **decrease**s
    are reported, never alerted. Account rows: whole-account changes and **budget** alerts (actual and
    projected, at ``budget_alert_pcts``). Teams may override the threshold and floor in the registry;
    anomalies an admin acknowledged are kept but not alerted. Each row's drivers add up to its $ impact."""
    teams = teams_registry.teams()
    rule, overrides = anomaly_rules(settings, teams)
    budgets = {t.aws_account_id: t.monthly_budget for t in teams if t.monthly_budget}
    feedback = read_feedback(warehouse.store())
    partitions = run_partitions(context)
    frame, failed = isolate_accounts(
        lambda parts: detect_anomalies(
            of_accounts(mom_changes, parts),
            rule,
            raw=of_accounts(raw_costs, parts),
            overrides=overrides,
            budgets=budgets,
            budget_alert_pcts=settings.budget_alert_pcts,
            feedback=feedback,
        ),
        partitions,
        grouped=True,
    )
    for account, error in failed.items():
        context.log.warning(f"anomalies: detection failed for {account}: {error}")
    frame = pl.concat([frame, unavailable_anomalies(partitions, failed)], how="diagonal_relaxed")
    alerted = frame.filter(pl.col("alerted"))
    preview = alerted.sort("impact_usd", descending=True, nulls_last=True).head(10)
    gap = drivers_gap(frame, "impact_usd", pl.col("drivers").list.len() > 0)
    yield run_output(
        context, frame,
        metadata={
            "rows": frame.height,
            # The alerts, counted as the emails, the admin report and the SQL ``alerts`` view count them.
            "alerted": alerted.height,
            "accounts_alerted": alerted["account_id"].n_unique() if alerted.height else 0,
            "by_kind": dg.MetadataValue.json(
                dict(sorted(alerted.select(alert_kind_expr().alias("k")).group_by("k").len().iter_rows()))),
            "acknowledged": int(frame["acknowledged"].sum()) if frame.height else 0,
            "teams_with_own_rule": len(overrides),
            "accounts_unavailable": dg.MetadataValue.json(failed),
            "threshold_pct": rule.threshold_pct,
            "min_usd": rule.min_usd,
            "top_alerts": dg.MetadataValue.md(
                markdown.table(
                    preview.iter_rows(named=True),
                    [
                        ("account", lambda r: r["account_id"]),
                        ("service", lambda r: r["service"] or "(whole account)"),
                        ("kind", lambda r: alert_kind(r["kind"], r["detector"])),
                        ("impact", lambda r: markdown.usd(r["impact_usd"])),
                        ("change %", lambda r: markdown.pct(r["change_pct"])),
                        ("severity", lambda r: r["severity"]),
                    ],
                )
            ),
        },
    )
    yield dg.AssetCheckResult(
        check_name="drivers_add_up",
        passed=gap <= DRIVERS_TOLERANCE_USD,
        metadata={"largest_difference_usd": gap},
    )
