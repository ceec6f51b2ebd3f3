"""The Parquet warehouse as Dagster resources: where every asset partition and every side table lives.

``WarehouseResource`` is the one place that knows the warehouse's location (a local directory, or
``s3://bucket/prefix``); the IO manager and every asset that writes a side table (``source_usage``,
``ai_usage``, ...) reach the store through it, so the two can never point at different warehouses.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import dagster as dg
import polars as pl
from dagster._core.execution.context.metadata_logging import AssetMetadataHandle, OutputMetadataAccumulator

from costagent_assets.partition_keys import split_key
from costagent_assets.resources.s3_warehouse import open_store
from costagent_assets.warehouse.rollups import write_raw_costs
from costagent_assets.warehouse.store import Store, partition_key, read_partitions, write_partitions


class WarehouseResource(dg.ConfigurableResource):
    """The warehouse: asset partitions, side tables, and the send ledger beside them."""

    root: str  # a local directory, or s3://bucket/prefix
    s3_endpoint_url: str = ""  # an S3-compatible store (MinIO, Ceph, moto in tests); empty for AWS
    s3_region: str = ""
    # The send ledger's directory beside a local warehouse; with S3, the host-local ledger of older
    # versions (the ledger itself is objects in the bucket: resources/s3_ledger.py).
    ledger_dir: str

    def store(self) -> Store:
        """The store the partitions and side tables live in."""
        return open_store(self.root, self.s3_endpoint_url, self.s3_region)

    @property
    def ledger_path(self) -> Path:
        """Where the send ledger keeps its claims."""
        return Path(self.ledger_dir)


def add_partition_metadata(context: dg.OutputContext, per_partition: Mapping[str, Mapping[str, Any]]) -> None:
    """Attach ``per_partition[partition_key]`` to that partition's materialization of the output being handled.

    ``AssetExecutionContext.add_asset_metadata(partition_key=...)`` does the same one partition at a time, but
    re-lists the run's partition range and copies every metadata entry so far on each call: quadratic, about
    a minute at 5,000 accounts. This adds them all in one step to the same accumulator Dagster reads when it
    builds the partitions' events (``StepExecutionContext.get_asset_metadata``).
    """
    step = context.step_context
    accumulator = step._metadata_accumulator  # noqa: SLF001 (see the docstring)
    entries = dict(accumulator.per_output_metadata)
    for key, metadata in per_partition.items():
        handle = AssetMetadataHandle(asset_key=context.asset_key, partition_key=key)
        entries[handle] = {**entries.get(handle, {}), **metadata}
    step._metadata_accumulator = OutputMetadataAccumulator(per_output_metadata=entries)  # noqa: SLF001


class ParquetWarehouseIOManager(dg.ConfigurableIOManager):
    """Stores each asset's output as one Parquet file per (month, account) partition.

    A ranged run's output covers many partitions; it is split by its ``month`` and ``account_id``
    columns and every partition of the run gets its file, empty when it has no rows, so a rerun
    replaces exactly the partitions it ran. Inputs read whichever upstream partitions exist, which
    lets the first month load a previous month that was never materialized; an input whose ``AssetIn``
    metadata lists ``columns`` reads only those.

    raw_costs takes one more step: its partitions are written by ``rollups.write_raw_costs``, which also
    rebuilds the per-month rollups (daily and monthly sums) of the months written, which history queries
    and the ``daily_costs`` / ``monthly_costs`` views read.
    """

    warehouse: WarehouseResource

    def _table(self, context: dg.InputContext | dg.OutputContext) -> str:
        return context.asset_key.path[-1]

    def handle_output(self, context: dg.OutputContext, obj: pl.DataFrame) -> None:
        if not context.has_asset_partitions:
            raise dg.Failure(f"{context.asset_key.to_user_string()}: costagent assets are partitioned")
        keys = [split_key(k) for k in context.asset_partition_keys]
        store = self.warehouse.store()
        table = self._table(context)
        if table == "raw_costs":
            # The explicit rollup step: the months' rollups are removed, the partitions written, then the
            # rollups rebuilt from them, so history queries never read a stale month.
            written = write_raw_costs(store, obj, keys)
        else:
            written = write_partitions(store, table, obj, keys)
        # Each partition's materialization says only what is its own; the run-wide figures are recorded
        # once per run (run_metadata.py), not copied onto every partition.
        add_partition_metadata(context, {
            key: {"rows": written[part], "path": dg.MetadataValue.path(store.url(partition_key(table, *part)))}
            for key, part in zip(context.asset_partition_keys, keys, strict=True)
        })

    def load_input(self, context: dg.InputContext) -> pl.DataFrame:
        keys = [split_key(k) for k in context.asset_partition_keys] if context.has_asset_partitions else []
        # An input declared with ``dg.AssetIn(metadata={"columns": [...]})`` (the convention of Dagster's own
        # database IO managers) reads only those columns: every stage would otherwise hold all of raw_costs'.
        columns = (context.definition_metadata or {}).get("columns")
        return read_partitions(self.warehouse.store(), self._table(context), keys, columns)
