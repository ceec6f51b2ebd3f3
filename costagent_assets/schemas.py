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

RECOMMENDATION = pl.Struct({"action": pl.String, "estimated_monthly_usd": pl.Float64})
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
        "usage_quantity": pl.Float64,  # in usage_unit; null when the source gives no quantity
        "usage_unit": pl.String,  # "Hrs", "GB-Mo", "tokens", "requests", ...; null when unknown
        "cost_usd": pl.Float64,
        "source": pl.String,
        "provider": pl.String,  # "aws", "azure", "gcp", ... (FOCUS carries several)
        "charge_category": pl.String,  # FOCUS: usage, purchase, tax, credit, adjustment; null when unknown
        "currency": pl.String,  # billing currency, "USD" unless a FOCUS export says otherwise
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
        "outlook": pl.String,  # next month's outlook in words (null when there was nothing to explain)
        "recommendations": pl.List(RECOMMENDATION),
        "ai_model": pl.String,  # the Gemini model that wrote it (null: deterministic)
    },
    # AI side tables (not asset partitions): files under <table>/<month>/, one per run or report date.
    "ai_usage": {  # one row per Gemini call or cache hit; one file per run
        "month": pl.String,
        "account_id": pl.String,  # "organisation" for the organisation's call
        "run_id": pl.String,
        "report_date": pl.Date,
        "scope": pl.String,  # "account" | "organisation"
        "model": pl.String,
        "status": pl.String,  # "called" | "cached" | "failed" | "not_called"
        "failure": pl.String,
        "input_tokens": pl.Int64,
        "output_tokens": pl.Int64,
        "cost_usd": pl.Float64,  # null when the model has no price in ai_prices
        "seconds": pl.Float64,
        "rejections": pl.Int32,  # sections dropped by the grounding check
        "pack_hash": pl.String,
    },
    "ai_insight_history": {  # every week's insights; one file per month and report date
        "month": pl.String,
        "account_id": pl.String,  # "organisation" for the executive summary
        "report_date": pl.Date,
        "run_id": pl.String,
        "scope": pl.String,
        "source": pl.String,  # "gemini" | "deterministic"
        "summary": pl.String,  # the explanation, or the executive summary
        "outlook": pl.String,
        "recommendations_json": pl.String,  # [{account_id?, action, estimated_monthly_usd}]
        "ai_note": pl.String,
        "rejections_json": pl.String,
        "model": pl.String,
        "pack_hash": pl.String,  # the cache key: hash of the evidence pack, model and prompt version
        "evidence_json": pl.String,  # the evidence pack sent (the audit trail of every figure)
        "reply_json": pl.String,  # Gemini's structured reply, reused when the same pack comes again
    },
    "emails": {
        "month": pl.String,
        "account_id": pl.String,
        "report_date": pl.Date,
        "kind": pl.String,  # "team" | "team_correction"
        "recipient": pl.String,
        "cc": pl.String,
        "subject": pl.String,
        # delivered, already_sent, failed, failed_earlier, deferred, unconfirmed, skipped, held (waiting for complete
        # source data)
        "status": pl.String,
        "location": pl.String,
        "no_data": pl.Boolean,
        # what the report was built on (completeness.py): complete, no_data, incomplete, or waiting (held)
        "basis": pl.String,
        "data_through": pl.Date,  # the last day with data the report claims (null without data)
    },
    # Not an asset: one file per emails run and month (<month>/run-<run id>.parquet). What each team report of
    # the run was built on, so that a later run of the same report date knows which sent report to correct.
    "report_coverage": {
        "month": pl.String,
        "account_id": pl.String,
        "report_date": pl.Date,
        "run_id": pl.String,
        "recorded_at": pl.String,  # ISO 8601, UTC
        "kind": pl.String,  # "team" | "team_correction"
        "basis": pl.String,  # complete | no_data | waiting | incomplete
        "data_through": pl.Date,
        "missing_days": pl.Int32,
        "status": pl.String,  # the delivery status (see emails), "held" for a report waiting for data
    },
    "forecasts": {
        "month": pl.String,
        "account_id": pl.String,
        "service": pl.String,  # null for the account's total; else one of its main services
        "horizon": pl.String,  # "month_end" | "next_month"
        "target_month": pl.String,
        "actual_to_date_usd": pl.Float64,  # spent so far in the target month
        "point_usd": pl.Float64,  # the whole target month, actual so far included
        "low_usd": pl.Float64,  # 80% prediction interval
        "high_usd": pl.Float64,
        "history_days": pl.Int64,
        "method": pl.String,  # "insufficient_history" | "level_seasonal" | "level_seasonal_trend"
        "growth_pct_per_month": pl.Float64,
        "through_date": pl.Date,
        "track_months": pl.Int32,  # backtested months in the six before (account rows only)
        "track_inside": pl.Int32,  # of which the actual fell inside the 80% range
        "track_mape_pct": pl.Float64,  # median absolute % error over those months
        "track_bias_pct": pl.Float64,  # mean signed % error (positive: we forecast too high)
        "interval_basis": pl.String,  # the 80% range rests on: "account" | "organisation" backtests | "model" alone
    },
    "forecast_backtest": {
        "month": pl.String,
        "account_id": pl.String,
        "service": pl.String,
        "cutoff": pl.Date,  # the forecast used data up to this day (the end of the month before)
        "forecast_usd": pl.Float64,
        "low_usd": pl.Float64,
        "high_usd": pl.Float64,
        "actual_usd": pl.Float64,
        "error_pct": pl.Float64,
        "ape_pct": pl.Float64,
        "inside": pl.Boolean,
        "last_month_usd": pl.Float64,  # baseline: next month = last month
        "run_rate_usd": pl.Float64,  # baseline: last 7 days' daily mean x days in month
        "ape_last_month_pct": pl.Float64,
        "ape_run_rate_pct": pl.Float64,
        "history_days": pl.Int64,
        "method": pl.String,
    },
    # Not an asset: one file per raw_costs run and month (<month>/run-<run id>.parquet), what the source cost.
    "source_usage": {
        "month": pl.String,
        "run_id": pl.String,
        "recorded_at": pl.String,  # ISO 8601, UTC
        "source": pl.String,
        "requests": pl.Int64,  # billable API calls (pages included)
        "retries": pl.Int64,  # throttled or failed attempts retried
        "cost_usd": pl.Float64,  # what those calls cost
        "through_date": pl.Date,
        "days_covered": pl.Int32,
        "accounts_requested": pl.Int32,
        "accounts_with_data": pl.Int32,
        "account_days_with_data": pl.Int64,
        "accounts_without_data": pl.String,  # comma-separated ids: "no data", never $0
        "unregistered_accounts": pl.String,  # comma-separated ids in the source but not in the registry
        "unregistered_usd": pl.Float64,
        "notes": pl.String,
        "accounts_with_missing_days": pl.String,  # comma-separated ids with data on some covered days only
    },
    # Issue 8: savings per account-month partition. One "account" row per account (the scan's status, its API
    # calls and the findings' total: null when the account could not be scanned, never $0), then its findings.
    "optimization_opportunities": {
        "month": pl.String,
        "account_id": pl.String,
        "record": pl.String,  # "account" | "finding"
        "rank": pl.Int32,  # findings: 1 = the account's largest saving
        "kind": pl.String,  # ec2_idle, ec2_underutilized, ec2_spot, ebs_unattached, ebs_gp2_to_gp3, ...
        "service": pl.String,
        "resource_type": pl.String,
        "resource_id": pl.String,
        "name": pl.String,
        "region": pl.String,
        "size": pl.String,  # instance type, DB class, volume type
        "suggested": pl.String,  # the smaller size, gp3, the memory, ...
        "evidence": pl.String,  # the metric values and the period
        "action": pl.String,
        "current_monthly_usd": pl.Float64,
        "monthly_savings_usd": pl.Float64,  # null: no estimate (never shown as $0)
        "estimate_basis": pl.String,  # billed | list_price | cost_explorer | none
        "period_start": pl.Date,
        "period_end": pl.Date,
        "scan_status": pl.String,  # account row: ok | partial | unavailable | not_scanned
        "reason": pl.String,  # why partial, unavailable or not scanned
        "api_calls": pl.Int64,  # account row: requests made for this account, retries included
        "retries": pl.Int64,
        "regions": pl.String,
        "resources_scanned": pl.Int64,
        "findings": pl.Int64,
        "scanner": pl.String,  # aws | demo | off
        "scanned_at": pl.String,  # ISO 8601, UTC
    },
    # Not an asset: one file per scan and month (<month>/run-<run id>.parquet), what each scan cost per account.
    "optimization_scans": {
        "month": pl.String,
        "run_id": pl.String,
        "recorded_at": pl.String,
        "scanner": pl.String,
        "account_id": pl.String,  # "organisation" for the Cost Explorer calls made once per run
        "status": pl.String,
        "reason": pl.String,
        "api_calls": pl.Int64,
        "retries": pl.Int64,
        "cost_usd": pl.Float64,  # Cost Explorer's $0.01 per request; the other calls are free
        "resources": pl.Int64,
        "seconds": pl.Float64,
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
