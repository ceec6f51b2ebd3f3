"""ai_insights: why each account's cost changed, naming the services that drove it with their $ and %."""


import dagster as dg
import polars as pl

from costagent_assets import markdown
from costagent_assets.analysis import DRIVERS_TOLERANCE_USD, drivers_gap, explain_changes
from costagent_assets.anomaly_detection import anomaly_rules
from costagent_assets.defs.partitions import (
    month_account_asset,
    run_as_of,
    run_parameters,
    run_partitions,
    run_periods,
)
from costagent_assets.defs.run_metadata import run_output
from costagent_assets.forecast import with_forecast_projection
from costagent_assets.insights.history import cached_replies, write_history, write_usage
from costagent_assets.insights.stage import run_ai_insights
from costagent_assets.resources.gemini import GeminiRequest, GeminiResource
from costagent_assets.resources.teams_registry import TeamsRegistry
from costagent_assets.resources.warehouse import WarehouseResource
from costagent_assets.settings import Settings


@month_account_asset(
    group_name="analysis",
    kinds={"polars", "parquet", "gemini"},
    check_specs=[
        dg.AssetCheckSpec("drivers_add_up_to_change", asset="ai_insights", blocking=True,
                          description="Each explanation's drivers sum to the account's total change."),
    ],
)
def ai_insights(
    context: dg.AssetExecutionContext,
    mom_changes: pl.DataFrame,
    anomalies: pl.DataFrame,
    forecasts: pl.DataFrame,
    optimization_opportunities: pl.DataFrame,
    settings: dg.ResourceParam[Settings],
    teams_registry: TeamsRegistry,
    warehouse: WarehouseResource,
    gemini: GeminiResource,
):
    """The explanation per account: the month so far against the same days of last month, the services
    that moved most (each with $ and %; the rest as one line, so the drivers add up to the total), the
    alerts and the projected month end, computed from the data. For accounts with something to explain
    (an alerted anomaly, a material change, a budget at risk) Gemini rewrites it from an evidence pack of
    that account's figures and its savings findings, with the outlook and up to 3 savings with $/month, and writes the
    organisation's executive summary; any figure, account or service not in the pack sends that section
    back to the computed text. Tokens and $ per call go to `ai_usage`, every week's text to
    `ai_insight_history` (which is also the cache: an unchanged pack is never paid for twice)."""
    partitions = run_partitions(context)
    periods = run_periods(context, partitions)
    root = warehouse.store()
    # The month-end projection everyone reads is the SQL forecast (forecasts asset), not a run rate.
    mom_changes = with_forecast_projection(mom_changes, forecasts)
    deterministic = explain_changes(mom_changes, anomalies, periods)
    # History runs (backfills, the previous month's refresh) mail nobody: paying for prose there buys nothing.
    history_run = run_parameters(context).ai_off
    # `costagent preview team --ai` refreshes one account: no organisation summary of that account alone.
    one_account = run_parameters(context).trigger == "preview"
    unavailable = (
        "not requested for this run" if history_run
        else "it is switched off in the settings (ai_enabled)" if not settings.ai_enabled
        else "no GEMINI_API_KEY is set" if not gemini.available
        else None
    )

    teams = teams_registry.teams()
    # The same rules the anomalies stage used: the team's own threshold and floor where it has them.
    rule, overrides = anomaly_rules(settings, teams)

    def generate(batch):
        return gemini.generate_many([GeminiRequest(i, data, schema) for i, data, schema in batch])

    outcome = run_ai_insights(
        deterministic, mom_changes, anomalies, periods, teams, rule, overrides=overrides,
        generate=generate, unavailable=unavailable,
        cached={} if unavailable else cached_replies(root, list(periods)),
        model=gemini.model, prices={m: tuple(p) for m, p in settings.ai_prices.items()},
        findings=optimization_opportunities, budget_alert_pcts=settings.budget_alert_pcts,
        with_organisation=not one_account,
    )
    report_date = run_as_of(context)
    # Nobody is mailed from a history run: no "AI unavailable" note to store either.
    frame = outcome.insights.with_columns(pl.lit(None, pl.String).alias("ai_note")) if history_run else outcome.insights
    usage = write_usage(root, context.run_id, report_date, gemini.model, [] if history_run else outcome.calls)
    # The history keeps one file per month and report date: one account's rows would replace the week's.
    if not history_run and not one_account:
        write_history(root, context.run_id, report_date, gemini.model, frame, outcome.organisation, outcome.calls)
    billed = usage.filter(pl.col("status").is_in(["called", "failed"]))
    rejections = [f"{c.account_id}: {r}" for c in outcome.calls for r in c.rejections]
    for line in rejections[:20]:
        context.log.warning(f"AI text rejected by the grounding check, computed text used instead: {line}")
    failures = [f"{c.account_id}: {c.failure}" for c in outcome.calls if c.failure]
    if failures:
        context.log.warning(f"{len(failures)} AI call(s) without a usable answer; first: {failures[0]}")
    cost = None if billed.filter(pl.col("cost_usd").is_null()).height else float(billed["cost_usd"].sum() or 0.0)
    gap = drivers_gap(frame, "total_change_usd", pl.col("total_change_usd").is_not_null())
    yield run_output(
        context, frame,
        metadata={
            "rows": frame.height,
            "source": "gemini" if frame.height and (frame["source"] == "gemini").any() else "deterministic",
            "ai_unavailable": unavailable or "",
            "ai_model": gemini.model,
            "ai_calls": billed.height,
            "ai_cache_hits": usage.filter(pl.col("status") == "cached").height,
            "ai_failed_calls": len(failures),
            "ai_rejections": len(rejections),
            "ai_tokens_in": int(usage["input_tokens"].sum() or 0),
            "ai_tokens_out": int(usage["output_tokens"].sum() or 0),
            "ai_tokens": int((usage["input_tokens"].sum() or 0) + (usage["output_tokens"].sum() or 0)),
            # Unknown (a model without a price in ai_prices) is shown as such, never as $0.
            "ai_cost_usd": cost if cost is not None else "unknown: no price for this model in ai_prices",
            "executive_summary": dg.MetadataValue.md(
                "\n\n".join(f"**{m}**: {o['executive_summary']}" for m, o in outcome.organisation.items())
            ),
            "preview": dg.MetadataValue.md(
                markdown.table(
                    frame.head(5).iter_rows(named=True),
                    [("account", lambda r: r["account_id"]), ("source", lambda r: r["source"]),
                     ("summary", lambda r: r["summary"])],
                )
            ),
        },
    )
    yield dg.AssetCheckResult(
        check_name="drivers_add_up_to_change",
        passed=gap <= DRIVERS_TOLERANCE_USD,
        metadata={"largest_gap_usd": gap},
    )
