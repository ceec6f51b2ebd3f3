"""anomalies: changes past the % threshold AND the $ floor, new services, and reported decreases."""


import dagster as dg
import polars as pl

from costagent_assets import markdown
from costagent_assets.analysis import AnomalyRule, detect_anomalies
from costagent_assets.defs.partitions import month_account_partitions, single_run
from costagent_assets.resources.home import CostagentHome


@dg.asset(
    partitions_def=month_account_partitions,
    backfill_policy=single_run,
    group_name="analysis",
    kinds={"polars", "parquet"},
)
def anomalies(context: dg.AssetExecutionContext, mom_changes: pl.DataFrame, costagent_home: CostagentHome):
    """Per account and service: increases past both ``anomaly_threshold_pct`` and ``anomaly_min_usd``
    (alerted), services new this month with material spend (alerted), and large decreases (reported,
    not alerted). The floor keeps a 300% rise on a $2 service out of everyone's inbox."""
    settings = costagent_home.settings()
    rule = AnomalyRule(threshold_pct=settings.anomaly_threshold_pct, min_usd=settings.anomaly_min_usd)
    frame = detect_anomalies(mom_changes, rule)
    alerted = frame.filter(pl.col("alerted"))
    preview = alerted.sort("change_usd", descending=True).head(10)
    return dg.Output(
        frame,
        metadata={
            "rows": frame.height,
            "alerted": alerted.height,
            "accounts_alerted": alerted["account_id"].n_unique() if alerted.height else 0,
            "threshold_pct": rule.threshold_pct,
            "min_usd": rule.min_usd,
            "top_alerts": dg.MetadataValue.md(
                markdown.table(
                    preview.iter_rows(named=True),
                    [
                        ("account", lambda r: r["account_id"]),
                        ("service", lambda r: r["service"] or "(whole account)"),
                        ("kind", lambda r: r["kind"]),
                        ("change", lambda r: markdown.usd(r["change_usd"])),
                        ("change %", lambda r: markdown.pct(r["change_pct"])),
                    ],
                )
            ),
        },
    )
