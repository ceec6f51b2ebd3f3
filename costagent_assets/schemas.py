"""The columns of every stored table, in one place: assets, the IO manager and the views agree on them.

Every partitioned table carries ``month`` ("YYYY-MM") and ``account_id`` (12-digit string) so the IO
manager can split a run's output into one Parquet file per account-month partition.
"""

from __future__ import annotations

import polars as pl

DRIVER = pl.Struct(
    {
        "service": pl.String,
        "change_usd": pl.Float64,
        "change_pct": pl.Float64,
        "share_of_change_pct": pl.Float64,
    }
)

# One driver of an anomaly: a service (account-level rows) or a region and usage type within the
# service (service-level rows). usage/rate/mix are null where the source has no usage quantities.
ANOMALY_DRIVER = pl.Struct(
    {
        "service": pl.String,
        "region": pl.String,
        "usage_type": pl.String,
        "change_usd": pl.Float64,
        "share_of_change_pct": pl.Float64,
        "usage_usd": pl.Float64,
        "rate_usd": pl.Float64,
        "mix_usd": pl.Float64,
    }
)

SCHEMAS: dict[str, dict[str, pl.DataType]] = {
    "raw_costs": {
        "month": pl.String,
        "date": pl.Date,
        "account_id": pl.String,
        "service": pl.String,
        "region": pl.String,
        "usage_type": pl.String,
        "cost_usd": pl.Float64,
        "source": pl.String,
    },
    "service_breakdown": {
        "month": pl.String,
        "account_id": pl.String,
        "service": pl.String,
        "mtd_usd": pl.Float64,
        "month_total_usd": pl.Float64,  # null until the month is complete
        "share_pct": pl.Float64,
        "through_date": pl.Date,
        "days_covered": pl.Int32,
        "month_complete": pl.Boolean,
    },
    "mom_changes": {
        "month": pl.String,
        "account_id": pl.String,
        "level": pl.String,  # "account" | "service"
        "service": pl.String,  # null at account level
        "current_mtd_usd": pl.Float64,
        "previous_same_period_usd": pl.Float64,
        "change_usd": pl.Float64,
        "change_pct": pl.Float64,  # null when the previous period is $0
        "previous_month_total_usd": pl.Float64,
        "projected_month_end_usd": pl.Float64,
        "is_new": pl.Boolean,
        "through_date": pl.Date,
        "days_covered": pl.Int32,
        "days_in_month": pl.Int32,
        "has_data": pl.Boolean,
    },
    "anomalies": {
        "month": pl.String,
        "account_id": pl.String,
        "level": pl.String,
        "service": pl.String,
        "kind": pl.String,  # "increase" | "decrease" | "new_service" | "spike" | "step" | "budget"
        "current_usd": pl.Float64,
        "previous_usd": pl.Float64,
        "change_usd": pl.Float64,
        "change_pct": pl.Float64,
        "severity": pl.String,  # "high" | "medium" | "low", from the dollar impact
        "alerted": pl.Boolean,
        "threshold_pct": pl.Float64,
        "min_usd": pl.Float64,
        "through_date": pl.Date,
        # Issue 5: what the $ impact is, how it was found, why, and whether an admin marked it.
        "impact_usd": pl.Float64,  # spike/step: excess over the daily baseline; budget: over budget; else change_usd
        "detector": pl.String,  # "month_to_date" | "daily" | "budget"
        "start_date": pl.Date,  # daily: first elevated day
        "end_date": pl.Date,  # daily: last elevated day
        "baseline_usd": pl.Float64,  # daily: the usual cost of such a day (median of the same weekdays)
        "note": pl.String,
        "drivers": pl.List(ANOMALY_DRIVER),  # adding up to impact_usd
        "usage_change_usd": pl.Float64,  # usage/rate/mix split of impact_usd where quantities exist
        "rate_change_usd": pl.Float64,
        "mix_change_usd": pl.Float64,
        "budget_usd": pl.Float64,
        "budget_threshold_pct": pl.Float64,  # the alert level crossed (50, 80, 100 by default)
        "acknowledged": pl.Boolean,
        "feedback": pl.String,  # "expected" | "false_positive" when acknowledged
    },
    "ai_insights": {
        "month": pl.String,
        "account_id": pl.String,
        "source": pl.String,  # "deterministic" | "gemini"
        "summary": pl.String,
        "total_change_usd": pl.Float64,
        "drivers": pl.List(DRIVER),
        "ai_note": pl.String,
        "through_date": pl.Date,
    },
    "emails": {
        "month": pl.String,
        "account_id": pl.String,
        "report_date": pl.Date,
        "kind": pl.String,  # "team"
        "recipient": pl.String,
        "cc": pl.String,
        "subject": pl.String,
        "status": pl.String,  # "written" | "sent" | "skipped"
        "location": pl.String,
        "no_data": pl.Boolean,
    },
}


# Marks that admins put on anomalies (``costagent anomalies ack``): one small unpartitioned table.
FEEDBACK_SCHEMA: dict[str, pl.DataType] = {
    "month": pl.String,
    "account_id": pl.String,
    "service": pl.String,  # "" for an account-level row (whole account, budget)
    "feedback": pl.String,  # "expected" | "false_positive"
    "note": pl.String,
    "marked_at": pl.Datetime("us", "UTC"),
}


def empty(table: str) -> pl.DataFrame:
    """An empty frame with ``table``'s columns."""
    return pl.DataFrame(schema=SCHEMAS[table])


def conform(frame: pl.DataFrame, table: str) -> pl.DataFrame:
    """``frame`` with exactly ``table``'s columns, in order and with their types (missing ones null)."""
    schema = SCHEMAS[table]
    return frame.select(
        [
            (pl.col(name) if name in frame.columns else pl.lit(None)).cast(dtype).alias(name)
            for name, dtype in schema.items()
        ]
    )
