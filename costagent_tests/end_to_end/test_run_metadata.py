"""The demo's runs as the Dagster UI shows them: run-wide figures once per asset and run, beside the run, and
each account's partition with only its own (issue 13: "team_emails 84" and the previews on one account)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import dagster as dg
from dagster._core.workspace.context import WorkspaceProcessContext
from dagster._core.workspace.load_target import EmptyWorkspaceTarget
from dagster_graphql.test.utils import execute_dagster_graphql

from costagent_assets.defs import run_metadata

STAGES = ["raw_costs", "service_breakdown", "mom_changes", "anomalies", "forecasts", "ai_insights", "emails"]
UI_QUERY = """query($key: AssetKeyInput!) { assetOrError(assetKey: $key) { ... on Asset {
  assetObservations(limit: 100) { runId partition metadataEntries { label ... on IntMetadataEntry { intValue } } }
} } }"""


def test_every_run_records_each_stage_figures_exactly_once_and_partitions_only_their_own(demo_home: Path):
    instance = dg.DagsterInstance.from_config(str(demo_home / "dagster"))
    try:
        for stage in STAGES:
            materialized = {r.run_id for r in instance.fetch_materializations(dg.AssetKey(stage), limit=10000).records}
            observed = Counter(r.run_id for r in instance.fetch_observations(dg.AssetKey(stage), limit=1000).records
                               if r.asset_observation.partition is None)
            assert materialized and observed == Counter(materialized), stage
        emails = run_metadata.latest(instance, "emails")
        partitions = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=dg.AssetKey("emails")), limit=10000).records
        weekly = [r for r in partitions if r.run_id == emails.run_id]
    finally:
        instance.dispose()
    assert emails.asset_observation.metadata["team_emails"].value == 84
    assert "WEEKLY COST REPORT" in emails.asset_observation.metadata["preview_team"].value
    assert len(weekly) == 84 and {frozenset(r.asset_materialization.metadata) for r in weekly} == {
        frozenset({"rows", "path"})}


def test_the_ui_shows_the_run_wide_record_of_the_emails(demo_home: Path):
    instance = dg.DagsterInstance.from_config(str(demo_home / "dagster"))
    try:
        with WorkspaceProcessContext(instance, EmptyWorkspaceTarget()) as process:
            answer = execute_dagster_graphql(process.create_request_context(), UI_QUERY, {"key": {"path": ["emails"]}})
        latest = run_metadata.latest(instance, "emails")
    finally:
        instance.dispose()
    assert answer.errors is None
    [shown] = [o for o in answer.data["assetOrError"]["assetObservations"] if o["runId"] == latest.run_id]
    assert shown["partition"] is None
    assert {m["label"]: m.get("intValue") for m in shown["metadataEntries"]}["team_emails"] == 84
