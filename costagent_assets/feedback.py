"""Admins' marks on anomalies (``costagent anomalies ack``): stored in the warehouse, applied on every run.

One small Parquet file, ``<warehouse>/anomaly_feedback.parquet``, one row per (month, account, service):
a later mark replaces an earlier one. A marked anomaly stays in the ``anomalies`` table with
``acknowledged`` true and is not alerted again for the same account, service and month.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from costagent_assets import warehouse
from costagent_assets.anomaly_detection import apply_feedback
from costagent_assets.schemas import FEEDBACK_SCHEMA

FEEDBACK_KINDS = ("expected", "false_positive")
WHOLE_ACCOUNT = "-"  # the SERVICE argument for account-level rows (whole-account changes, budgets)


def feedback_path(warehouse_dir: Path) -> Path:
    """Where the marks live."""
    return Path(warehouse_dir) / "anomaly_feedback.parquet"


def read_feedback(warehouse_dir: Path) -> pl.DataFrame:
    """Every mark (empty when none was ever made)."""
    path = feedback_path(warehouse_dir)
    if not path.exists():
        return pl.DataFrame(schema=FEEDBACK_SCHEMA)
    return pl.read_parquet(path).select([pl.col(c).cast(t) for c, t in FEEDBACK_SCHEMA.items()])


def record_feedback(
    warehouse_dir: Path,
    account_id: str,
    service: str,
    month: str,
    feedback: str,
    note: str | None = None,
    now: datetime | None = None,
) -> pl.DataFrame:
    """Store one mark (replacing an earlier one for the same key) and return the stored marks.

    Raises ValueError, saying what is allowed, for a bad account id, month or feedback kind.
    """
    if not re.fullmatch(r"\d{12}", account_id or ""):
        raise ValueError(f"account: {account_id!r} is not a 12-digit AWS account id")
    if not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", month or ""):
        raise ValueError(f"month: {month!r} is not a month like 2026-11")
    if feedback not in FEEDBACK_KINDS:
        raise ValueError(f"--as: {feedback!r} is not allowed; allowed: {', '.join(FEEDBACK_KINDS)}")
    service = "" if service.strip() == WHOLE_ACCOUNT else service.strip()
    row = pl.DataFrame(
        [{"month": month, "account_id": account_id, "service": service, "feedback": feedback, "note": note,
          "marked_at": now or datetime.now(UTC)}],
        schema=FEEDBACK_SCHEMA,
    )
    key = ["month", "account_id", "service"]
    marks = pl.concat([read_feedback(warehouse_dir).join(row.select(key), on=key, how="anti"), row]).sort(key)
    warehouse.write_parquet_atomic(marks, feedback_path(warehouse_dir))
    return marks


def acknowledge_stored(warehouse_dir: Path, account_id: str, month: str) -> pl.DataFrame | None:
    """Apply the marks to the stored anomalies partition of (month, account) now, so reports show the
    mark before the next run; returns the partition's rows (None if it was never materialized)."""
    path = warehouse.partition_path(Path(warehouse_dir), "anomalies", month, account_id)
    if not path.exists():
        return None
    stored = warehouse.read_partitions(Path(warehouse_dir), "anomalies", [(month, account_id)])
    # A row acknowledged earlier keeps alerted false: recompute from the marks alone.
    updated = apply_feedback(stored.drop("acknowledged", "feedback"), read_feedback(warehouse_dir))
    warehouse.write_parquet_atomic(updated, path)
    return updated
