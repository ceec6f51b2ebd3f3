"""The per-month rollups of raw_costs, and writing raw_costs partitions together with them.

History queries read these rollups instead of the account-month partitions; they must follow every write
of raw_costs, so that write is one named step here (``write_raw_costs``), not a side effect of writing
partitions.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import polars as pl

from costagent_assets.analysis import MICRO, micro_sum
from costagent_assets.schemas import SCHEMAS, conform, empty
from costagent_assets.warehouse.store import (
    Store,
    as_store,
    parquet_bytes,
    partition_counts,
    put_frame_partitions,
)

# Rollups: per month, one object for all accounts, so that a history query opens one small file per month
# instead of one per account-month (5,000 accounts x 36 months is 180,000 files). They are rebuilt from
# raw_costs whenever a month's raw_costs partitions are written (``write_raw_costs``), from the same rows,
# in whole micro-dollars.
ROLLUP_SCHEMAS: dict[str, dict[str, pl.DataType]] = {
    "daily": {"month": pl.String, "account_id": pl.String, "service": pl.String, "date": pl.Date,
              "cost_usd": pl.Float64},
    "monthly": {"month": pl.String, "account_id": pl.String, "service": pl.String, "cost_usd": pl.Float64,
                "through_date": pl.Date},
}
# Small row groups over rows sorted by account: a one-account query reads one row group per month.
ROLLUP_ROW_GROUP = 50_000

# name -> (description, rollup, SQL over ``rollup``). Documented in the README.
ROLLUP_VIEWS: dict[str, tuple[str, str, str]] = {
    "daily_costs": (
        "One row per account and day: the account's total cost that day.",
        "daily",
        "SELECT account_id, date, month, sum(cost_usd) AS cost_usd FROM rollup GROUP BY ALL",
    ),
    "daily_service_costs": (
        "One row per account, service and day: the service's cost that day.",
        "daily",
        "SELECT account_id, service, date, month, cost_usd FROM rollup",
    ),
    "monthly_costs": (
        "One row per account, service and month: the month's total (month to date for the current month).",
        "monthly",
        "SELECT month, account_id, service, cost_usd, through_date FROM rollup",
    ),
}


def rollup_key(rollup: str, month: str) -> str:
    """The key of one month's rollup object."""
    return f"rollups/{rollup}/{month}.parquet"


def build_rollups(raw: pl.DataFrame) -> dict[str, pl.DataFrame]:
    """The daily (account, service, date) and monthly (account, service) sums of raw cost rows, in whole
    micro-dollars (so the figures do not depend on row order), sorted by account."""
    keys = ["month", "account_id", "service"]
    daily = raw.group_by(*keys, "date").agg(micro_sum("cost_usd").alias("micro"))
    monthly = daily.group_by(keys).agg(pl.col("micro").sum(), pl.col("date").max().alias("through_date"))
    return {
        "daily": daily.sort(*keys, "date").with_columns((pl.col("micro") / MICRO).alias("cost_usd"))
        .select(list(ROLLUP_SCHEMAS["daily"])),
        "monthly": monthly.sort(keys).with_columns((pl.col("micro") / MICRO).alias("cost_usd"))
        .select(list(ROLLUP_SCHEMAS["monthly"])),
    }


def _put_rollups(store: Store, month: str, raw: pl.DataFrame) -> None:
    for rollup, frame in build_rollups(raw).items():
        store.put(rollup_key(rollup, month), parquet_bytes(frame.cast(ROLLUP_SCHEMAS[rollup]), ROLLUP_ROW_GROUP))


_ROLLUP_COLUMNS = ["month", "account_id", "service", "date", "cost_usd"]


def refresh_rollups(root: Path | Store, raw: pl.DataFrame, written: Iterable[tuple[str, str]]) -> list[str]:
    """Rebuild the rollups of every month in ``written`` (the (month, account_id) raw_costs partitions
    just written, whose rows are ``raw``): the run's rows from memory, the month's other accounts from
    their stored partitions. Returns the months rebuilt."""
    store = as_store(root)
    by_month: dict[str, set[str]] = {}
    for month, account in written:
        by_month.setdefault(month, set()).add(account)
    raw = raw.select(_ROLLUP_COLUMNS)
    for month, accounts in sorted(by_month.items()):
        others = [k for k in store.keys(f"raw_costs/{month}/") if Path(k).stem not in accounts]
        parts = [raw.filter(pl.col("month") == month)]
        if others:
            parts.append(conform(store.read_parquet(others, SCHEMAS["raw_costs"]), "raw_costs").select(_ROLLUP_COLUMNS))
        _put_rollups(store, month, pl.concat(parts))
    return sorted(by_month)


def ensure_rollups(root: Path | Store) -> list[str]:
    """Build the rollups of any month that has raw_costs partitions but no rollup (a warehouse written
    before rollups existed, or a run killed between the two writes); returns the months built."""
    store = as_store(root)
    have = {Path(k).stem for k in store.keys("rollups/monthly/")} & {Path(k).stem for k in store.keys("rollups/daily/")}
    built = []
    for month in store.children("raw_costs/"):
        if month not in have:
            keys = store.keys(f"raw_costs/{month}/")
            raw = conform(store.read_parquet(keys, SCHEMAS["raw_costs"]), "raw_costs") if keys else empty("raw_costs")
            _put_rollups(store, month, raw.select(_ROLLUP_COLUMNS))
            built.append(month)
    return built


def write_raw_costs(
    root: Path | Store, frame: pl.DataFrame, keys: Iterable[tuple[str, str]]
) -> dict[tuple[str, str], int]:
    """Write raw_costs partitions (split and written as ``store.write_partitions`` does) and rebuild the rollups of their months
    (``refresh_rollups``): the one way raw_costs is written, so the rollups follow every write.

    Rows outside ``keys`` are refused before anything is touched. Returns the row count written per key.
    """
    store = as_store(root)
    frame = conform(frame, "raw_costs")
    keys = list(keys)
    partition_counts("raw_costs", frame, keys)  # refuses rows outside the run before anything is touched
    # The months' rollups go first and come back after the partitions: a run killed in between
    # leaves a month without rollups, which ensure_rollups rebuilds, never a stale one.
    for month in sorted({m for m, _ in keys}):
        for rollup in ROLLUP_SCHEMAS:
            store.delete(rollup_key(rollup, month))
    written = put_frame_partitions(store, "raw_costs", frame, keys)
    refresh_rollups(store, frame, keys)
    return written


def read_rollup(root: Path | Store, rollup: str, month: str) -> pl.DataFrame:
    """One month's rollup (``daily`` or ``monthly``), built first when its raw_costs have none yet
    (``ensure_rollups``); empty when the month has no raw_costs at all."""
    store = as_store(root)
    key = rollup_key(rollup, month)
    if key not in store.keys(f"rollups/{rollup}/"):
        ensure_rollups(store)
        if key not in store.keys(f"rollups/{rollup}/"):
            return pl.DataFrame(schema=ROLLUP_SCHEMAS[rollup])
    return store.read_parquet([key]).cast(ROLLUP_SCHEMAS[rollup])
