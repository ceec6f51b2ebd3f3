"""Admins' marks on anomalies (``costagent anomalies ack``): stored in the warehouse, applied on every run.

One small Parquet object, ``<warehouse>/anomaly_feedback/marks.parquet`` (local or S3, wherever the
warehouse is), one row per (month, account, service):
a later mark replaces an earlier one. A marked anomaly stays in the ``anomalies`` table with
``acknowledged`` true and is not alerted again for the same account, service and month.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from costagent_assets.anomaly_detection import apply_feedback
from costagent_assets.schemas import FEEDBACK_SCHEMA
from costagent_assets.warehouse.store import Store, as_store, parquet_bytes, partition_key, read_partitions

FEEDBACK_KINDS = ("expected", "false_positive")
WHOLE_ACCOUNT = "-"  # the SERVICE argument for account-level rows (whole-account changes, budgets)


FEEDBACK_KEY = "anomaly_feedback/marks.parquet"


def read_feedback(root: Path | Store) -> pl.DataFrame:
    """Every mark (empty when none was ever made)."""
    store = as_store(root)
    if not store.keys("anomaly_feedback/"):
        return pl.DataFrame(schema=FEEDBACK_SCHEMA)
    return store.read_parquet([FEEDBACK_KEY]).select([pl.col(c).cast(t) for c, t in FEEDBACK_SCHEMA.items()])


def record_feedback(
    root: Path | Store,
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
    marks = pl.concat([read_feedback(root).join(row.select(key), on=key, how="anti"), row]).sort(key)
    as_store(root).put(FEEDBACK_KEY, parquet_bytes(marks))
    return marks


def acknowledge_stored(root: Path | Store, account_id: str, month: str) -> pl.DataFrame | None:
    """Apply the marks to the stored anomalies partition of (month, account) now, so reports show the
    mark before the next run; returns the partition's rows (None if it was never materialized)."""
    store = as_store(root)
    key = partition_key("anomalies", month, account_id)
    if key not in store.keys(f"anomalies/{month}/"):
        return None
    stored = read_partitions(store, "anomalies", [(month, account_id)])
    # A row acknowledged earlier keeps alerted false: recompute from the marks alone.
    updated = apply_feedback(stored.drop("acknowledged", "feedback"), read_feedback(store))
    store.put(key, parquet_bytes(updated))
    return updated
