"""The code location loads, and every asset shares the partitions and the single-run backfill policy."""

from __future__ import annotations

import dagster as dg

from costagent_assets.defs.automation import REPORT_ASSETS
from costagent_assets.defs.partitions import month_account_partitions


def load() -> dg.Definitions:
    from costagent_assets.definitions import defs

    return defs()


def test_definitions_load_with_the_six_assets_jobs_and_schedule():
    defs = load()
    graph = defs.resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    assert set(REPORT_ASSETS) <= keys
    assert defs.resolve_job_def("weekly_report") is not None
    assert defs.resolve_job_def("cost_history") is not None
    schedule = defs.resolve_schedule_def("weekly_cost_report")
    assert schedule.cron_schedule == "0 9 * * 1"  # default: Monday 09:00 UTC
    assert schedule.execution_timezone == "UTC"


def test_every_asset_is_month_by_account_with_single_run_backfills():
    graph = load().resolve_asset_graph()
    for name in REPORT_ASSETS:
        node = graph.get(dg.AssetKey(name))
        assert node.partitions_def == month_account_partitions, name
        assert node.backfill_policy == dg.BackfillPolicy.single_run(), name


def test_lineage_follows_the_pipeline():
    graph = load().resolve_asset_graph()
    parents = {
        name: {p.to_user_string() for p in graph.get(dg.AssetKey(name)).parent_keys} for name in REPORT_ASSETS
    }
    assert parents["service_breakdown"] == {"raw_costs"}
    assert parents["mom_changes"] == {"raw_costs", "service_breakdown"}
    assert parents["anomalies"] == {"mom_changes", "raw_costs"}
    assert parents["ai_insights"] == {"mom_changes", "anomalies", "forecasts", "optimization_opportunities"}
    assert parents["emails"] == {"mom_changes", "anomalies", "ai_insights", "forecasts", "optimization_opportunities"}
    assert parents["optimization_opportunities"] == {"raw_costs"}
    assert parents["forecasts"] == {"raw_costs", "forecast_backtest"}
    assert parents["forecast_backtest"] == {"raw_costs"}


def test_schedule_follows_the_settings(isolated):
    from costagent_assets.defs.automation import build_weekly_schedule
    from costagent_assets.settings import Settings

    schedule = build_weekly_schedule(Settings(schedule_day="friday", schedule_hour=17))
    assert schedule.cron_schedule == "0 17 * * 5"
