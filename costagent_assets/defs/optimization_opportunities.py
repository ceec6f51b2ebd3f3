"""optimization_opportunities: idle and oversized resources and commitments, each with $ per month saved."""


from datetime import UTC, datetime, time

import dagster as dg
import polars as pl

from costagent_assets import markdown
from costagent_assets.defs.partitions import (
    month_account_asset,
    run_as_of,
    run_parameters,
    run_partitions,
    run_periods,
)
from costagent_assets.defs.raw_costs import SPEND_COLUMNS
from costagent_assets.defs.run_metadata import run_output
from costagent_assets.optimization import STATUS_SCHEMA, Thresholds, account_rows, find_opportunities, frame
from costagent_assets.resources.aws_scanner import DisabledScanner, OptimizationScanner, ScanResult
from costagent_assets.resources.teams_registry import TeamsRegistry
from costagent_assets.resources.warehouse import WarehouseResource
from costagent_assets.schemas import conform, empty
from costagent_assets.settings import AI_SOURCES, Settings
from costagent_assets.warehouse.log_tables import append_log


@month_account_asset(
    group_name="analysis",
    kinds={"polars", "parquet", "aws"},
    ins={"raw_costs": dg.AssetIn(metadata={"columns": SPEND_COLUMNS})},
    check_specs=[
        dg.AssetCheckSpec("every_account_has_a_scan_status", asset="optimization_opportunities", blocking=True,
                          description="Each account has exactly one status row, so an account that could not be "
                                      "scanned is said to be, never shown as $0 savings."),
        dg.AssetCheckSpec("every_account_was_scanned", asset="optimization_opportunities",
                          description="Accounts whose role could not be assumed, or whose scan was partial "
                                      "(throttled, denied), with the reason."),
    ],
)
def optimization_opportunities(
    context: dg.AssetExecutionContext,
    raw_costs: pl.DataFrame,
    settings: dg.ResourceParam[Settings],
    warehouse: WarehouseResource,
    aws_scanner: OptimizationScanner,
    teams_registry: TeamsRegistry,
):
    """Savings per account, ranked by $/month: idle, oversized and Spot-eligible EC2 instances, unattached
    and gp2 EBS volumes, old snapshots, idle RDS instances and Multi-AZ on non-production ones, Lambda memory
    above use, S3 buckets without lifecycle rules, unassociated Elastic IPs, and Cost Explorer's RI and
    Savings Plans recommendations and under-used commitments. Each finding names the resource, its region,
    the evidence (metric values and period), the action and the estimated $/month: from the account's own
    billed cost where the cost data has the usage type, else from the dated list-price table. Every account
    also gets a status row (ok, partial, unavailable with the reason, not_scanned) with its API calls.

    The scan sees resources as they are now, so only the run's latest month gets it; the metric window
    (``optimization_lookback_days``) ends at the start of the run's as-of day."""
    partitions = run_partitions(context)
    periods = run_periods(context, partitions)
    thresholds = Thresholds.from_settings(settings)
    latest = max(periods)
    end = min(datetime.combine(run_as_of(context), time(), UTC),
              datetime.combine(datetime.now(UTC).date(), time(), UTC))
    accounts = sorted({a for m, a in partitions if m == latest})
    # An AI provider's project or workspace has no AWS resources to scan: its savings are the AI spend
    # section's (ai_savings.py), and its status row says so instead of "the scanner returned nothing".
    ai_source = {t.aws_account_id: t.source for t in teams_registry.teams() if t.source in AI_SOURCES}
    aws_accounts = [a for a in accounts if a not in ai_source]
    if run_parameters(context).trigger == "backfill":
        # A backfill rebuilds history; today's resources say nothing about a past month.
        result = DisabledScanner(reason="backfills do not scan: a scan shows resources as they are now").scan(
            aws_accounts, end, thresholds.lookback_days, "")
    else:
        result = aws_scanner.scan(aws_accounts, end, thresholds.lookback_days, context.run_id[:8])
    not_aws = frame(({"account_id": a, "status": "not_scanned", "api_calls": 0, "retries": 0, "resources": 0,
                      "reason": f"an {ai_source[a]} account: the savings scan covers AWS accounts"}
                     for a in accounts if a in ai_source), STATUS_SCHEMA)
    scan_status = pl.concat([result.status, not_aws], how="diagonal_relaxed") if not_aws.height else result.status
    scanned_at = datetime.now(UTC).isoformat(timespec="seconds")
    frames = []
    for month, p in periods.items():
        in_month = sorted({a for m, a in partitions if m == month})
        if month != latest:
            reason = f"a scan shows resources as they are now: only the run's latest month ({latest}) gets it"
            status = frame(({"account_id": a, "status": "not_scanned", "reason": reason, "api_calls": 0,
                             "retries": 0, "resources": 0} for a in in_month), STATUS_SCHEMA)
            frames.append(_table(month, empty_findings(), account_rows(in_month, status, empty_findings(), aws_scanner.name),
                                 scanned_at))
            continue
        raw = raw_costs.filter(pl.col("month") == month) if raw_costs.height else raw_costs
        findings = find_opportunities(result.inventory, result.commitments, raw, p.days_covered, end, thresholds)
        frames.append(_table(month, findings, account_rows(in_month, scan_status, findings, aws_scanner.name),
                             scanned_at))
    table = pl.concat(frames, how="diagonal_relaxed") if frames else empty("optimization_opportunities")
    table = conform(table, "optimization_opportunities")
    append_log(warehouse.store(), "optimization_scans",
               scan_usage(latest, context.run_id, aws_scanner.name, result, scanned_at))

    accounts_rows = table.filter((pl.col("record") == "account") & (pl.col("month") == latest))
    found = table.filter(pl.col("record") == "finding")
    by_status = dict(accounts_rows.group_by("scan_status").len().iter_rows()) if accounts_rows.height else {}
    calls = accounts_rows["api_calls"] if accounts_rows.height else pl.Series([0])
    problems = accounts_rows.filter(pl.col("scan_status").is_in(["unavailable", "partial"]))
    top = found.sort("monthly_savings_usd", descending=True, nulls_last=True).head(10)
    yield run_output(
        context, table,
        metadata={
            "scanner": aws_scanner.name,
            "accounts": len(accounts),
            **{f"accounts_{s}": n for s, n in sorted(by_status.items())},
            "findings": found.height,
            "total_monthly_savings_usd": dg.MetadataValue.float(round(float(found["monthly_savings_usd"].sum() or 0.0), 2)),
            "api_calls": int(calls.sum() or 0),
            "api_calls_per_account": dg.MetadataValue.float(round(float(calls.mean() or 0.0), 1)),
            "api_calls_max_account": int(calls.max() or 0),
            "cost_explorer_calls": result.organisation_calls,
            "cost_explorer_usd": dg.MetadataValue.float(result.organisation_cost_usd),
            "calls_by_operation": dg.MetadataValue.json(result.calls_by_operation),
            "scan_seconds": dg.MetadataValue.float(round(result.seconds, 2)),
            "notes": "; ".join(result.notes) or "none",
            "top_findings": dg.MetadataValue.md(markdown.table(top.iter_rows(named=True), [
                ("account", lambda r: r["account_id"]), ("resource", lambda r: r["resource_id"]),
                ("kind", lambda r: r["kind"]), ("$/month", lambda r: markdown.usd(r["monthly_savings_usd"])),
                ("action", lambda r: r["action"]),
            ])),
            "accounts_not_scanned": dg.MetadataValue.md(markdown.table(problems.iter_rows(named=True), [
                ("account", lambda r: r["account_id"]), ("status", lambda r: r["scan_status"]),
                ("reason", lambda r: r["reason"]),
            ])),
        },
    )
    per_account = table.filter(pl.col("record") == "account").group_by("month", "account_id").len()
    expected = {(m, a) for m, a in partitions}
    got = {(m, a) for m, a, n in per_account.iter_rows() if n == 1}
    yield dg.AssetCheckResult(
        check_name="every_account_has_a_scan_status",
        passed=got == expected,
        metadata={"accounts_without_status": len(expected - got)},
    )
    yield dg.AssetCheckResult(
        check_name="every_account_was_scanned",
        passed=problems.height == 0,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"unavailable": by_status.get("unavailable", 0), "partial": by_status.get("partial", 0),
                  "sample": "; ".join(f"{r['account_id']}: {r['reason']}" for r in problems.head(5).iter_rows(named=True))
                  or "none"},
    )


def empty_findings() -> pl.DataFrame:
    """No findings (the findings' columns)."""
    return pl.DataFrame(schema={"account_id": pl.String, "monthly_savings_usd": pl.Float64})


def _table(month: str, findings: pl.DataFrame, accounts: pl.DataFrame, scanned_at: str) -> pl.DataFrame:
    """The stored rows of one month: each account's status row, then its findings."""
    status = accounts.with_columns(pl.lit("account").alias("record"), pl.lit(0, pl.Int32).alias("rank"))
    rows = findings.with_columns(pl.lit("finding").alias("record"))
    return pl.concat([status, rows], how="diagonal_relaxed").with_columns(
        pl.lit(month).alias("month"), pl.lit(scanned_at).alias("scanned_at"),
        pl.col("scanner").fill_null(accounts["scanner"][0] if accounts.height else None),
    )


def scan_usage(month: str, run_id: str, scanner: str, result: ScanResult, recorded_at: str) -> pl.DataFrame:
    """``optimization_scans`` rows: one per account, plus the organisation's Cost Explorer calls."""
    rows = [{"account_id": r["account_id"], "status": r["status"], "reason": r["reason"], "api_calls": r["api_calls"],
             "retries": r["retries"], "cost_usd": 0.0, "resources": r["resources"], "seconds": r["seconds"]}
            for r in result.status.iter_rows(named=True)]
    if result.organisation_calls:
        rows.append({"account_id": "organisation", "status": "ok" if not result.notes else "partial",
                     "reason": "; ".join(result.notes) or None, "api_calls": result.organisation_calls,
                     "retries": 0, "cost_usd": result.organisation_cost_usd, "resources": result.commitments.height,
                     "seconds": None})
    if not rows:
        return empty("optimization_scans")
    usage = pl.DataFrame(rows, infer_schema_length=None).with_columns(
        pl.lit(month).alias("month"), pl.lit(run_id).alias("run_id"), pl.lit(recorded_at).alias("recorded_at"),
        pl.lit(scanner).alias("scanner"))
    return conform(usage, "optimization_scans")
