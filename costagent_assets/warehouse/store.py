"""Where the warehouse's Parquet objects live and the asset tables' account-month partitions in it.

One Parquet object per asset partition: ``<root>/<table>/<YYYY-MM>/<account_id>.parquet``, where the
root is a local directory (the default) or ``s3://bucket/prefix``. A rerun of a partition replaces
exactly that object, written whole (a renamed file locally, a single PUT on S3), so a reader sees the
old object or the new one, never half. DuckDB reads the objects through views (``views``); nothing is
loaded into DuckDB itself, so the Parquet objects stay the single source of truth.

Functions take a ``Store`` (or a local ``Path``, for the default layout): the local one is here, the S3
one lives with the other outside systems in ``resources/s3_warehouse.py``.
"""

from __future__ import annotations

import io
import os
import tempfile
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Protocol, TypeVar

import duckdb
import polars as pl

from costagent_assets.schemas import SCHEMAS, conform, empty

PARTITIONED_TABLES = tuple(SCHEMAS)
T = TypeVar("T")


class Store(Protocol):
    """Where the Parquet objects live; keys are relative paths like ``raw_costs/2026-11/<account>.parquet``."""

    def url(self, key: str) -> str:
        """The path or URL DuckDB and users see for ``key``."""

    def put(self, key: str, data: bytes) -> None:
        """Replace the object at ``key`` whole."""

    def delete(self, key: str) -> None:
        """Remove the object at ``key`` if there is one."""

    def keys(self, prefix: str) -> list[str]:
        """Every key under ``prefix``, sorted."""

    def children(self, prefix: str) -> list[str]:
        """The names of the folders directly under ``prefix`` (ending in "/"), sorted."""

    def has_any(self, prefix: str) -> bool:
        """Whether any key starts with ``prefix``."""

    def read_parquet(self, keys: Sequence[str], schema: Mapping[str, pl.DataType] | None = None,
                     columns: Sequence[str] | None = None) -> pl.DataFrame:
        """The rows of these Parquet objects (all of them exist); with ``schema``, columns a file lacks (one
        written before the column existed) are null in its rows, whichever file comes first. With ``columns``,
        only those (of the ones the files have) are read."""

    def configure_duckdb(self, con: duckdb.DuckDBPyConnection) -> None:
        """Make ``con`` able to read ``url(...)`` (S3 needs httpfs and a secret)."""


class LocalStore:
    """A directory on local disk."""

    def __init__(self, root: Path):
        self.root = Path(root)
        # Paths as strings: a ranged run lists and names thousands of partition files, and pathlib's parsing
        # of each was a third of reading a month's partitions (cProfile, 1,000 accounts).
        self._root = str(self.root)
        self._prefix = "" if self._root == "." else f"{self._root.rstrip('/')}/"

    def url(self, key: str) -> str:
        return f"{self._prefix}{key}"

    def put(self, key: str, data: bytes) -> None:
        path = self.url(key)
        folder, name = os.path.split(path)
        prefix = f".{name.rsplit('.', 1)[0]}."
        try:
            fd, tmp = tempfile.mkstemp(dir=folder, prefix=prefix, suffix=".tmp")
        except FileNotFoundError:  # the folder's first object: one mkdir per folder, not a stat per object
            os.makedirs(folder, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=folder, prefix=prefix, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def delete(self, key: str) -> None:
        (self.root / key).unlink(missing_ok=True)

    def keys(self, prefix: str) -> list[str]:
        out = []
        for folder, _dirs, files in os.walk(self.url(prefix), followlinks=True):
            rel = os.path.relpath(folder, self._root)
            out.extend(name if rel == "." else f"{rel}/{name}" for name in files if name.endswith(".parquet"))
        return sorted(out)

    def children(self, prefix: str) -> list[str]:
        base = self.root / prefix
        return sorted(p.name for p in base.iterdir() if p.is_dir()) if base.is_dir() else []

    def has_any(self, prefix: str) -> bool:
        base = self.root / prefix
        return base.exists() and next(base.rglob("*.parquet"), None) is not None

    def read_parquet(self, keys: Sequence[str], schema: Mapping[str, pl.DataType] | None = None,
                     columns: Sequence[str] | None = None) -> pl.DataFrame:
        # One scan over all files: polars reads them in parallel, far faster than a loop of small reads.
        # Without a schema polars takes the first file's columns and drops the others' extra ones, so a new
        # column would vanish whenever an older file sorts first.
        urls = [self.url(k) for k in keys]
        try:
            if schema is not None:
                try:
                    scan = pl.scan_parquet(urls, schema=dict(schema), missing_columns="insert", extra_columns="ignore")
                    return scan.select(columns).collect() if columns is not None else scan.collect()
                except pl.exceptions.SchemaError:
                    pass  # a file with an older type of some column: read by its own columns, conform casts
            frame = pl.scan_parquet(urls, missing_columns="insert", extra_columns="ignore").collect()
            return frame if columns is None else frame.select([c for c in columns if c in frame.columns])
        except (pl.exceptions.ComputeError, OSError) as exc:
            raise damaged_file_error(self, keys, exc) from exc

    def configure_duckdb(self, con: duckdb.DuckDBPyConnection) -> None:
        return None


class DamagedFileError(RuntimeError):
    """A warehouse file that cannot be read as Parquet (truncated, overwritten, zero bytes): names it and what
    to do, instead of the reader's error about bytes."""


def damaged_file_error(store: Store, keys: Sequence[str], cause: BaseException) -> BaseException:
    """The error for a read of ``keys`` that failed with ``cause``: a DamagedFileError naming the files that do
    not read on their own, or ``cause`` itself when each of them reads (the problem is elsewhere)."""
    bad = []
    for key in keys:
        try:
            pl.read_parquet_schema(store.url(key))
        except Exception:  # noqa: BLE001 (any failure to read the footer means the file is damaged)
            bad.append(key)
    if not bad:
        return cause
    parts = sorted({tuple(k.split("/")[:2]) for k in bad})
    months = ", ".join(sorted({p[1] for p in parts if len(p) > 1}))
    return DamagedFileError(
        f"damaged warehouse file{'s' if len(bad) > 1 else ''} (not readable as Parquet): "
        + ", ".join(store.url(k) for k in bad[:5]) + (f" and {len(bad) - 5} more" if len(bad) > 5 else "")
        + f". Delete {'them' if len(bad) > 1 else 'it'} and load the month again "
        f"(`costagent backfill --from M --to M` for {months or 'its month'}); nothing else was changed ({cause})"
    )


def as_store(root: Path | str | Store) -> Store:
    """A store for ``root``: a local path, or a store as it is."""
    return LocalStore(Path(root)) if isinstance(root, (str, os.PathLike)) else root


def partition_key(table: str, month: str, account_id: str) -> str:
    """The key of one account-month partition of ``table``."""
    return f"{table}/{month}/{account_id}.parquet"


def partition_path(root: Path, table: str, month: str, account_id: str) -> Path:
    """Where one account-month partition of ``table`` lives in a local warehouse."""
    return Path(root) / partition_key(table, month, account_id)


def parquet_bytes(frame: pl.DataFrame, row_group_size: int | None = None) -> bytes:
    """``frame`` as a Parquet object (zstd, with statistics)."""
    buffer = io.BytesIO()
    frame.write_parquet(buffer, compression="zstd", statistics=True, row_group_size=row_group_size)
    return buffer.getvalue()


def write_parquet_atomic(frame: pl.DataFrame, path: Path) -> None:
    """Write ``frame`` to a local ``path`` so that readers see the old file or the new one, never half."""
    LocalStore(path.parent).put(path.name, parquet_bytes(frame))


def split_partitions(
    table: str, frame: pl.DataFrame, keys: Sequence[tuple[str, str]]
) -> dict[tuple[str, str], pl.DataFrame]:
    """``frame`` (conformed to ``table``) split by (month, account_id). Rows outside ``keys`` raise ValueError
    before anything is written: an asset must not write partitions its run does not own."""
    groups = dict(frame.partition_by(["month", "account_id"], as_dict=True)) if len(frame) else {}
    _refuse_stray(table, groups, keys)
    return groups


def write_partitions(
    root: Path | Store, table: str, frame: pl.DataFrame, keys: Iterable[tuple[str, str]]
) -> dict[tuple[str, str], int]:
    """Split ``frame`` by (month, account_id) and write one object per key; keys without rows get an empty one.
    Only the partitions: raw_costs is written with its months' rollups by ``rollups.write_raw_costs``.

    Rows outside ``keys`` are refused (``split_partitions``). Returns the row count written per key.
    """
    keys = list(keys)
    return put_frame_partitions(as_store(root), table, conform(frame, table), keys)


# The largest partition ``encode_partitions`` is trusted with: polars' partitioned sink cuts a partition of
# 131,072 rows or more into other row groups than ``write_parquet`` of the partition alone (122,880 still
# matched, checked up to 200 MB per partition); half of that, for a margin.
ONE_PASS_MAX_ROWS = 65_536


def put_frame_partitions(
    store: Store, table: str, frame: pl.DataFrame, keys: Sequence[tuple[str, str]]
) -> dict[tuple[str, str], int]:
    """Write ``frame`` (conformed to ``table``) as one object per key, an empty one where a key has no rows;
    rows outside ``keys`` are refused before anything is written. Returns the row count written per key."""
    counts = partition_counts(table, frame, keys)
    small = max(counts.values(), default=0) <= ONE_PASS_MAX_ROWS
    encoded = encode_partitions(frame) if small else None
    if encoded is None or encoded.keys() != counts.keys():  # not parquet_bytes' objects: one frame at a time
        return put_partitions(store, table, split_partitions(table, frame, keys), keys)
    blank = parquet_bytes(empty(table))
    _in_threads(lambda key: store.put(partition_key(table, *key), encoded.get(key, blank)), keys)
    return {key: counts.get(key, 0) for key in keys}


def partition_counts(table: str, frame: pl.DataFrame, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], int]:
    """The rows of ``frame`` per (month, account_id); ValueError for rows outside ``keys`` (see ``split_partitions``)."""
    counts = {(m, a): n for m, a, n in frame.group_by(["month", "account_id"]).len().iter_rows()} if len(frame) else {}
    _refuse_stray(table, counts, keys)
    return counts


def encode_partitions(frame: pl.DataFrame) -> dict[tuple[str, str], bytes] | None:
    """Each (month, account_id) partition of ``frame`` as the Parquet object ``parquet_bytes`` makes of it, byte
    for byte (partitions of at most ``ONE_PASS_MAX_ROWS`` rows), encoded in one pass of polars' partitioned sink;
    None if some partition came out as several objects.

    Measured on a 1,000-account month (6 tables, 6,000 objects): 5.5-6.6 s of CPU against 7.7-10.0 s for
    ``parquet_bytes`` on each partition's frame, most of which is polars' fixed cost per call.
    """
    if not len(frame):
        return {}
    buffers: dict[tuple[str, str], io.BytesIO] = {}
    split = False

    def target(args) -> io.BytesIO:  # noqa: ANN001 (polars' FileProviderArgs)
        nonlocal split
        key = tuple(args.partition_keys.row(0))
        split = split or key in buffers
        buffers[key] = io.BytesIO()
        return buffers[key]

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", pl.exceptions.UnstableWarning)
        sink = pl.PartitionBy("", file_path_provider=target, key=["month", "account_id"], include_key=True)
    frame.lazy().sink_parquet(sink, compression="zstd", statistics=True, maintain_order=True)
    return None if split else {key: buffer.getvalue() for key, buffer in buffers.items()}


def _refuse_stray(table: str, groups: Mapping[tuple[str, str], object], keys: Sequence[tuple[str, str]]) -> None:
    stray = set(groups) - set(keys)
    if stray:
        sample = ", ".join(f"{a}|{m}" for m, a in sorted(stray)[:5])
        raise ValueError(f"{table}: output has rows for partitions outside this run: {sample}")


def _in_threads(write: Callable[[T], object], items: Iterable[T]) -> None:
    # Encoding releases the GIL and S3 PUTs wait on the network: a few threads overlap the many small writes.
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(write, items))


def put_partitions(
    store: Store, table: str, groups: dict[tuple[str, str], pl.DataFrame], keys: Sequence[tuple[str, str]]
) -> dict[tuple[str, str], int]:
    """Write one object per key from ``groups`` (``split_partitions``), an empty one where a key has no rows."""
    blank = empty(table)
    written: dict[tuple[str, str], int] = {}

    def _write(key: tuple[str, str]) -> None:
        part = groups.get(key, blank)
        store.put(partition_key(table, *key), parquet_bytes(part))
        written[key] = len(part)

    _in_threads(_write, keys)
    return written


def read_partitions(root: Path | Store, table: str, keys: Iterable[tuple[str, str]],
                    columns: Sequence[str] | None = None) -> pl.DataFrame:
    """The rows of the given (month, account_id) partitions that exist; missing ones are skipped. ``columns``:
    only those of ``table``'s columns (in the table's order), the others are not read at all: a stage that
    needs 4 of raw_costs' 13 columns holds a third of the memory (strings dominate)."""
    store = as_store(root)
    keys = list(keys)
    present: set[str] = set()
    for month in sorted({m for m, _ in keys}):
        present.update(store.keys(f"{table}/{month}/"))
    wanted = [k for k in (partition_key(table, m, a) for m, a in keys) if k in present]
    if columns is None:
        return conform(store.read_parquet(wanted, SCHEMAS[table]), table) if wanted else empty(table)
    unknown = sorted(set(columns) - set(SCHEMAS[table]))
    if unknown:
        raise ValueError(f"{table} has no column {', '.join(unknown)}")
    names = [c for c in SCHEMAS[table] if c in set(columns)]
    frame = store.read_parquet(wanted, SCHEMAS[table], names) if wanted else empty(table)
    return conform(frame, table).select(names)


def read_table(root: Path | Store, table: str, months: Sequence[str] | None = None) -> pl.DataFrame:
    """Every stored partition of ``table`` (optionally only some months)."""
    store = as_store(root)
    prefixes = [f"{table}/{m}/" for m in months] if months else [f"{table}/"]
    wanted = [k for prefix in prefixes for k in store.keys(prefix)]
    return conform(store.read_parquet(wanted, SCHEMAS[table]), table) if wanted else empty(table)


def stored_months(root: Path | Store, table: str) -> list[str]:
    """The months for which ``table`` holds at least one partition."""
    return sorted({k.split("/")[1] for k in as_store(root).keys(f"{table}/")})
