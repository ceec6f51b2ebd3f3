"""The append-only log tables: one object per run (or report date) and month, never a partition.

``source_usage``, ``ai_usage``, ``ai_insight_history`` and ``optimization_scans`` keep every run's rows
(a rerun adds its own object) instead of replacing account-month partitions; ``append_log`` is the one
writer of all of them, so their layout is defined in one place.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from costagent_assets.schemas import conform
from costagent_assets.warehouse.store import Store, as_store, parquet_bytes

# table -> (the column whose value names the object, the object's name). One object per month and value:
# a rerun adds its own object (a new run id), except ai_insight_history's, which a rerun on the same report
# date replaces (same week, same insights) while each week adds its own.
LOG_OBJECTS: dict[str, tuple[str, str]] = {
    "source_usage": ("run_id", "run-{}"),
    "report_coverage": ("run_id", "run-{}"),
    "optimization_scans": ("run_id", "run-{}"),
    "ai_usage": ("run_id", "{}"),
    "ai_insight_history": ("report_date", "{}"),
}
LOG_TABLES = frozenset(LOG_OBJECTS)


def append_log(root: Path | Store, table: str, frame: pl.DataFrame) -> list[str]:
    """Store the rows of log ``table``: one object per month and run (or report date, see ``LOG_OBJECTS``),
    ``<table>/<month>/<name>.parquet``; returns the keys written (none for an empty frame)."""
    if table not in LOG_OBJECTS:
        raise ValueError(f"{table} is not a log table: {', '.join(sorted(LOG_OBJECTS))}")
    column, name = LOG_OBJECTS[table]
    store = as_store(root)
    frame = conform(frame, table)
    keys = []
    for (month, value), part in frame.partition_by(["month", column], as_dict=True).items():
        keys.append(f"{table}/{month}/{name.format(value)}.parquet")
        store.put(keys[-1], parquet_bytes(part))
    return keys
