"""Run-wide metadata: recorded once per asset and run, beside the run, not on every partition.

Dagster (1.13, ``execute_step._get_output_asset_events``) copies an output's metadata, and its IO manager's,
onto the AssetMaterialization of *every* partition of a ranged run. A stage's run-wide figures (totals,
markdown tables, email previews) were therefore stored once per account, which was most of the time Dagster
spent serialising events at 1,000 accounts, and the UI showed them on whichever account's partition came last.

So a stage returns ``run_output(context, frame, metadata)``: the run-wide metadata goes into one
``AssetObservation`` of the asset with no partition key, logged by the step. The UI shows it in the run's
event log and in the asset's events (GraphQL ``assetObservations``); each partition's materialization keeps
only its own figures (its row count and file, added by the IO manager: ``resources.warehouse.add_partition_metadata``).
Readers find the record with ``latest`` (from the instance) or ``from_events`` (from a run's events).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import dagster as dg
import polars as pl

# Marks the run-wide record, so a reader never mistakes another observation of the asset for it.
RUN_WIDE_KEY = "run_wide"


def run_output(context: dg.AssetExecutionContext, value: pl.DataFrame, metadata: Mapping[str, Any]) -> dg.Output:
    """``value`` as the step's output, with ``metadata`` (plus the run's partition counts) recorded once, on
    an observation of the asset without a partition key; the partitions' materializations do not repeat it."""
    keys = context.partition_keys
    with_rows = value.select("month", "account_id").n_unique() if value.height else 0
    context.log_event(dg.AssetObservation(
        asset_key=context.asset_key,
        metadata={**metadata, "partitions": len(keys), "empty_partitions": len(keys) - with_rows, RUN_WIDE_KEY: True},
    ))
    return dg.Output(value)


def _is_run_wide(observation: dg.AssetObservation) -> bool:
    return observation.partition is None and RUN_WIDE_KEY in observation.metadata


def from_events(events: Iterable[dg.DagsterEvent], asset: str) -> dict[str, dg.MetadataValue] | None:
    """The run-wide metadata of ``asset`` among a run's events (``ExecuteInProcessResult.all_events``, or
    stored events); None when the asset did not record one."""
    for event in events:
        if event.is_asset_observation:
            observation = event.asset_observation_data.asset_observation
            if observation.asset_key == dg.AssetKey(asset) and _is_run_wide(observation):
                return dict(observation.metadata)
    return None


def latest(instance: dg.DagsterInstance, asset: str, run_id: str | None = None) -> dg.EventLogRecord | None:
    """The latest run-wide record of ``asset`` (of run ``run_id`` when given), None when there is none; its
    metadata is ``record.asset_observation.metadata``."""
    cursor = None
    while True:
        result = instance.fetch_observations(dg.AssetKey(asset), limit=50, cursor=cursor)
        for record in result.records:
            if _is_run_wide(record.asset_observation) and run_id in (None, record.run_id):
                return record
        if not result.has_more:
            return None
        cursor = result.cursor


def latest_metadata(instance: dg.DagsterInstance, asset: str) -> dict[str, dg.MetadataValue] | None:
    """The metadata of ``latest(instance, asset)``, None when there is none."""
    record = latest(instance, asset)
    return None if record is None else dict(record.asset_observation.metadata)
