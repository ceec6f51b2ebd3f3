"""raw_costs: the daily cost rows of every account-month in the run, from the configured source."""


from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

import dagster as dg
import polars as pl

from costagent_assets.analysis import deduplicate_raw_costs
from costagent_assets.defs.partitions import month_account_asset, run_partitions, run_periods
from costagent_assets.defs.run_metadata import run_output
from costagent_assets.resources.cost_source import CostSource, CostSourceError, SourceFetch
from costagent_assets.resources.teams_registry import TeamsRegistry
from costagent_assets.resources.warehouse import WarehouseResource
from costagent_assets.schemas import conform, empty
from costagent_assets.settings import default_source
from costagent_assets.teams.model import Team
from costagent_assets.warehouse.log_tables import append_log

KEY = ["date", "account_id", "service", "region", "usage_type", "charge_category", "currency"]
# The columns of raw_costs each analysis stage reads (``dg.AssetIn(metadata={"columns": ...})``): the IO
# manager reads only those, so a stage holds about a third of the month's rows in memory, not all 13 columns.
SERIES_COLUMNS = ["account_id", "service", "date", "cost_usd"]
MONTH_SERIES_COLUMNS = ["month", *SERIES_COLUMNS]
LINE_COLUMNS = [*MONTH_SERIES_COLUMNS, "region", "usage_type", "usage_quantity"]
SPEND_COLUMNS = ["month", "account_id", "service", "region", "usage_type", "cost_usd"]


@month_account_asset(
    group_name="costs",
    kinds={"polars", "parquet"},
    check_specs=[
        dg.AssetCheckSpec("one_row_per_day_and_line", asset="raw_costs", blocking=True,
                          description="No (date, account, service, region, usage type) appears twice."),
        dg.AssetCheckSpec("every_account_has_data", asset="raw_costs",
                          description="Accounts the source returned nothing for: shown as 'no data', never $0."),
        dg.AssetCheckSpec("every_source_account_is_registered", asset="raw_costs",
                          description="Accounts with cost in the source but no team in the registry: reported, "
                                      "not silently dropped."),
    ],
)
def raw_costs(context: dg.AssetExecutionContext, cost_source: CostSource, warehouse: WarehouseResource,
              teams_registry: TeamsRegistry):
    """Daily cost in USD per account, service, region and usage type, as the cost sources report it; for AI
    providers the service is the model, the usage type the token kind, with the tokens in ``usage_quantity``.

    One query per month and source covers all of the run's accounts of that source (the registry's
    ``source`` of each account, else the first AWS source configured). Days are those of the month up to
    yesterday (the last complete day); a repeated day from the source is kept once. With several sources,
    one that fails leaves only its accounts without data ("no data", never $0) and the others go on. What
    each source cost (API calls, retries, $) and what came back (accounts, days) is recorded per month and
    source in the run's metadata and in the ``source_usage`` table.
    """
    partitions = run_partitions(context)
    periods = run_periods(context, partitions)
    parts = cost_source.sources()
    owner = account_sources(teams_registry.teams(), [p.name for p in parts])
    frames, fetches, failed = [], {}, {}
    for month, p in periods.items():
        accounts = sorted({a for m, a in partitions if m == month})
        if p.days_covered == 0:
            continue
        for part in parts:
            mine = [a for a in accounts if owner(a) == part.name]
            try:
                fetched = part.fetch(mine, p.start, p.through, as_of=p.through + timedelta(days=1))
            except CostSourceError as err:
                if len(parts) == 1:
                    raise
                context.log.warning(f"raw_costs: source {part.name} failed for {month}, its accounts have no data: {err}")
                failed[part.name] = str(err)
                fetched = SourceFetch(empty("raw_costs"), notes=[f"unavailable: {err}"])
            frames.append(fetched.costs.filter(
                pl.col("account_id").is_in(mine) & pl.col("date").is_between(p.start, p.through)
            ).with_columns(pl.lit(month).alias("month")))
            fetches[(part.name, month)] = fetched
    raw = conform(pl.concat(frames, how="diagonal_relaxed"), "raw_costs") if frames else empty("raw_costs")
    # Sources that do not say otherwise report AWS cost in USD.
    raw = deduplicate_raw_costs(
        raw.with_columns(pl.col("provider").fill_null("aws"), pl.col("currency").fill_null("USD"))
    )

    duplicates = raw.height - raw.select(KEY).n_unique() if raw.height else 0
    with_data = set(raw.select("month", "account_id").unique().iter_rows())
    missing = sorted({(m, a) for m, a in partitions if periods[m].days_covered} - with_data)
    total = float(raw["cost_usd"].sum()) if raw.height else 0.0
    usage = pl.concat([
        source_usage_frame(context.run.run_id, part.name, [(m, a) for m, a in partitions if owner(a) == part.name],
                           periods, raw.filter(pl.col("account_id").is_in(
                               sorted({a for _, a in partitions if owner(a) == part.name}))),
                           {m: f for (name, m), f in fetches.items() if name == part.name})
        for part in parts
    ])
    append_log(warehouse.store(), "source_usage", usage)
    unregistered = sorted({a for cell in usage["unregistered_accounts"].to_list() for a in (cell or "").split(",") if a})
    yield run_output(
        context, raw,
        metadata={
            "rows": raw.height,
            "accounts": len({a for _, a in partitions}),
            "months": ", ".join(periods),
            "through": ", ".join(str(p.through) for p in periods.values()),
            "total_usd": dg.MetadataValue.float(round(total, 2)),
            "accounts_without_data": len(missing),
            "source": cost_source.name,
            "sources_unavailable": dg.MetadataValue.json(failed),
            "source_requests": int(usage["requests"].sum()),
            "source_retries": int(usage["retries"].sum()),
            "source_cost_usd": dg.MetadataValue.float(round(float(usage["cost_usd"].sum()), 6)),
            "unregistered_accounts": len(unregistered),
            "coverage": dg.MetadataValue.md(coverage_markdown(usage)),
        },
    )
    yield dg.AssetCheckResult(
        check_name="one_row_per_day_and_line",
        passed=duplicates == 0,
        metadata={"duplicate_rows": duplicates},
    )
    yield dg.AssetCheckResult(
        check_name="every_account_has_data",
        passed=not missing,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "accounts_without_data": len(missing),
            "sample": ", ".join(f"{a} ({m})" for m, a in missing[:20]) or "none",
        },
    )
    yield dg.AssetCheckResult(
        check_name="every_source_account_is_registered",
        passed=not unregistered,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "unregistered_accounts": len(unregistered),
            "unregistered_usd": dg.MetadataValue.float(round(float(usage["unregistered_usd"].sum()), 2)),
            "sample": ", ".join(unregistered[:20]) or "none",
        },
    )


def account_sources(teams: Sequence[Team], names: Sequence[str]) -> Callable[[str], str | None]:
    """Which of the configured sources ``names`` reports an account: the one its registry entry names, else
    the first AWS source configured; when it names a source that is not configured, the demo if it is (the
    demo generates its AI accounts itself), else None."""
    fallback = default_source(",".join(names))
    named = {t.aws_account_id: t.source for t in teams if t.source}

    def owner(account_id: str) -> str | None:
        source = named.get(account_id, fallback)
        return source if source in names else ("demo" if "demo" in names else None)

    return owner


def source_usage_frame(run_id: str, source: str, partitions: list[tuple[str, str]], periods: dict,
                       raw: pl.DataFrame, fetches: dict[str, SourceFetch]) -> pl.DataFrame:
    """One ``source_usage`` row per month of the run: calls and $ spent, accounts and days that came back."""
    now = datetime.now(UTC).isoformat(timespec="seconds")
    rows = []
    for month, p in periods.items():
        accounts = sorted({a for m, a in partitions if m == month})
        got = raw.filter(pl.col("month") == month)
        with_data = set(got["account_id"].to_list())
        days = got.group_by("account_id").agg(pl.col("date").n_unique().alias("days"))
        partial = sorted(days.filter(pl.col("days") < p.days_covered)["account_id"].to_list())
        fetched = fetches.get(month) or SourceFetch(empty("raw_costs"))
        rows.append({
            "month": month, "run_id": run_id, "recorded_at": now, "source": source,
            "requests": fetched.requests, "retries": fetched.retries, "cost_usd": fetched.cost_usd,
            "through_date": p.through, "days_covered": p.days_covered,
            "accounts_requested": len(accounts), "accounts_with_data": len(with_data),
            "account_days_with_data": got.select("account_id", "date").n_unique() if got.height else 0,
            "accounts_without_data": ",".join(a for a in accounts if a not in with_data),
            "unregistered_accounts": ",".join(fetched.unregistered["account_id"].to_list()),
            "unregistered_usd": float(fetched.unregistered["cost_usd"].sum() or 0.0),
            "notes": "; ".join(fetched.notes),
            "accounts_with_missing_days": ",".join(partial),
        })
    return conform(pl.DataFrame(rows), "source_usage") if rows else empty("source_usage")


def coverage_markdown(usage: pl.DataFrame) -> str:
    """A small table for the UI: per month, accounts and account-days with data, calls and $."""
    lines = ["| month | accounts with data | account-days | requests | retries | $ |", "|---|---|---|---|---|---|"]
    for r in usage.iter_rows(named=True):
        lines.append(f"| {r['month']} | {r['accounts_with_data']} / {r['accounts_requested']} | "
                     f"{r['account_days_with_data']} / {r['accounts_requested'] * r['days_covered']} | "
                     f"{r['requests']} | {r['retries']} | {r['cost_usd']:.4f} |")
    return "\n".join(lines)
