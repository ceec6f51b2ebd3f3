"""The Parquet warehouse layout and the DuckDB views over it.

One Parquet object per asset partition: ``<root>/<table>/<YYYY-MM>/<account_id>.parquet``, where the
root is a local directory (the default) or ``s3://bucket/prefix``. A rerun of a partition replaces
exactly that object, written whole (a renamed file locally, a single PUT on S3), so a reader sees the
old object or the new one, never half. DuckDB reads the objects through views; nothing is loaded into
DuckDB itself, so the Parquet objects stay the single source of truth.

Functions take a ``Store`` (or a local ``Path``, for the default layout): the local one is here, the S3
one lives with the other outside systems in ``resources/s3_warehouse.py``.
"""

from __future__ import annotations

import io
import os
import tempfile
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Protocol

import duckdb
import polars as pl

from costagent_assets.schemas import SCHEMAS, conform, empty

PARTITIONED_TABLES = tuple(SCHEMAS)

# name -> (description, SQL over the partition tables). Documented in the README.
DERIVED_VIEWS: dict[str, tuple[str, str]] = {
    "daily_costs": (
        "One row per account and day: the account's total cost that day.",
        "SELECT account_id, date, month, sum(cost_usd) AS cost_usd FROM raw_costs GROUP BY ALL",
    ),
    "monthly_costs": (
        "One row per account, service and month: the month's total (month to date for the current month).",
        "SELECT month, account_id, service, sum(cost_usd) AS cost_usd, max(date) AS through_date "
        "FROM raw_costs GROUP BY ALL",
    ),
    "account_months": (
        "One row per account and month with the team's name: spend, change on the same days of the "
        "previous month, projection and budget.",
        "SELECT m.month, m.account_id, t.team_name, m.current_mtd_usd AS mtd_usd, m.previous_same_period_usd, "
        "m.change_usd, m.change_pct, m.previous_month_total_usd, m.projected_month_end_usd, m.through_date, "
        "t.monthly_budget FROM mom_changes m LEFT JOIN teams t ON t.aws_account_id = m.account_id "
        "WHERE m.level = 'account'",
    ),
    "ai_run_costs": (
        "One row per run that used the AI stage: Gemini calls made, cache hits, tokens in and out, USD.",
        "SELECT run_id, month, report_date, any_value(model) AS model, "
        "count(*) FILTER (WHERE status IN ('called', 'failed')) AS calls, "
        "count(*) FILTER (WHERE status = 'cached') AS cache_hits, "
        "count(*) FILTER (WHERE status = 'failed') AS failed_calls, sum(rejections) AS rejections, "
        "sum(input_tokens) AS input_tokens, sum(output_tokens) AS output_tokens, "
        "sum(cost_usd) AS cost_usd, count(*) FILTER (WHERE status = 'called' AND cost_usd IS NULL) AS unpriced_calls "
        "FROM ai_usage GROUP BY run_id, month, report_date",
    ),
    "ai_org_summaries": (
        "The organisation's executive summary and top recommendations, per month and report date.",
        "SELECT month, report_date, run_id, source, summary AS executive_summary, "
        "recommendations_json AS top_recommendations_json, ai_note, model FROM ai_insight_history "
        "WHERE scope = 'organisation'",
    ),
    "savings": (
        "One row per savings finding with the team's name, ranked by $/month across the organisation: resource, "
        "evidence, action, estimate and its basis.",
        "SELECT o.month, o.account_id, t.team_name, rank() OVER (PARTITION BY o.month ORDER BY "
        "o.monthly_savings_usd DESC NULLS LAST) AS org_rank, o.rank AS account_rank, o.kind, o.service, "
        "o.resource_type, o.resource_id, o.name, o.region, o.size, o.suggested, o.evidence, o.action, "
        "o.current_monthly_usd, o.monthly_savings_usd, o.estimate_basis, o.period_start, o.period_end, o.scanned_at "
        "FROM optimization_opportunities o LEFT JOIN teams t ON t.aws_account_id = o.account_id "
        "WHERE o.record = 'finding'",
    ),
    "savings_accounts": (
        "One row per account and month: whether its scan worked (ok, partial, unavailable, not_scanned) and why, "
        "its API calls, findings and total addressable $/month (null when it could not be scanned).",
        "SELECT o.month, o.account_id, t.team_name, o.scan_status, o.reason, o.api_calls, o.retries, o.regions, "
        "o.resources_scanned, o.findings, o.monthly_savings_usd, o.scanner, o.scanned_at "
        "FROM optimization_opportunities o LEFT JOIN teams t ON t.aws_account_id = o.account_id "
        "WHERE o.record = 'account'",
    ),
}

TABLE_DOCS: dict[str, str] = {
    "raw_costs": "Daily cost rows: date, account, service, region, usage type, cost in USD and source.",
    "service_breakdown": "Per account, month and service: month-to-date and (once complete) full-month totals.",
    "mom_changes": "Month to date against the same days of the previous month, per account and per service.",
    "anomalies": "Changes past the % threshold and the $ floor (alerted), new services, and reported decreases.",
    "ai_insights": "Per account and month: the explanation of the change and its drivers.",
    "emails": "Per account and report date: what was written or sent, to whom.",
    "ai_usage": "One row per Gemini call or cache hit: run, account, status, tokens in and out, USD.",
    "ai_insight_history": "Every week's insights per account and the organisation's summary, with the "
    "evidence pack sent and Gemini's reply (also the cache: the same pack is never paid for twice).",
    "teams": "The teams registry: team name, AWS account id, email, cc, monthly budget.",
    "forecasts": "Per account (and main service) and month: month-end and next-month forecasts, 80% interval, track record.",
    "forecast_backtest": "Per complete month: the forecast made the month before, the actual, errors and baselines.",
    "source_usage": "Per run and month: the cost source's API calls and $ spent, and which accounts and days came back.",
    "anomaly_feedback": "Admins' marks on anomalies (expected / false_positive), from `costagent anomalies ack`.",
    "optimization_opportunities": "Per account and month: the savings scan's status row and its findings "
    "(resource, evidence, action, $/month), ranked by $.",
    "optimization_scans": "Per scan and account: status, API calls (retries included), Cost Explorer $, seconds.",
}


class Store(Protocol):
    """Where the Parquet objects live; keys are relative paths like ``raw_costs/2026-11/<account>.parquet``."""

    def url(self, key: str) -> str:
        """The path or URL DuckDB and users see for ``key``."""

    def put(self, key: str, data: bytes) -> None:
        """Replace the object at ``key`` whole."""

    def keys(self, prefix: str) -> list[str]:
        """Every key under ``prefix``, sorted."""

    def has_any(self, prefix: str) -> bool:
        """Whether any key starts with ``prefix``."""

    def read_parquet(self, keys: Sequence[str]) -> pl.DataFrame:
        """The rows of these Parquet objects (all of them exist)."""

    def configure_duckdb(self, con: duckdb.DuckDBPyConnection) -> None:
        """Make ``con`` able to read ``url(...)`` (S3 needs httpfs and a secret)."""


class LocalStore:
    """A directory on local disk."""

    def __init__(self, root: Path):
        self.root = Path(root)

    def url(self, key: str) -> str:
        return str(self.root / key)

    def put(self, key: str, data: bytes) -> None:
        path = self.root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def keys(self, prefix: str) -> list[str]:
        base = self.root / prefix
        if not base.exists():
            return []
        return sorted(str(p.relative_to(self.root)) for p in base.rglob("*.parquet"))

    def has_any(self, prefix: str) -> bool:
        base = self.root / prefix
        return base.exists() and next(base.rglob("*.parquet"), None) is not None

    def read_parquet(self, keys: Sequence[str]) -> pl.DataFrame:
        # One scan over all files: polars reads them in parallel, far faster than a loop of small reads.
        return pl.scan_parquet([self.url(k) for k in keys], missing_columns="insert", extra_columns="ignore").collect()

    def configure_duckdb(self, con: duckdb.DuckDBPyConnection) -> None:
        return None


def as_store(root: Path | str | Store) -> Store:
    """A store for ``root``: a local path, or a store as it is."""
    return LocalStore(Path(root)) if isinstance(root, (str, os.PathLike)) else root


def partition_key(table: str, month: str, account_id: str) -> str:
    """The key of one account-month partition of ``table``."""
    return f"{table}/{month}/{account_id}.parquet"


def partition_path(root: Path, table: str, month: str, account_id: str) -> Path:
    """Where one account-month partition of ``table`` lives in a local warehouse."""
    return Path(root) / partition_key(table, month, account_id)


def parquet_bytes(frame: pl.DataFrame) -> bytes:
    """``frame`` as a Parquet object (zstd, with statistics)."""
    buffer = io.BytesIO()
    frame.write_parquet(buffer, compression="zstd", statistics=True)
    return buffer.getvalue()


def write_parquet_atomic(frame: pl.DataFrame, path: Path) -> None:
    """Write ``frame`` to a local ``path`` so that readers see the old file or the new one, never half."""
    LocalStore(path.parent).put(path.name, parquet_bytes(frame))


def record_source_usage(root: Path | Store, frame: pl.DataFrame) -> list[str]:
    """Store one ``source_usage`` object per (month, run): each run's spend is kept, a rerun adds its own."""
    return record_run_rows(root, "source_usage", frame)


def record_run_rows(root: Path | Store, table: str, frame: pl.DataFrame) -> list[str]:
    """Store one ``table`` object per (month, run): ``<table>/<month>/run-<run id>.parquet``; reruns add their own."""
    store = as_store(root)
    frame = conform(frame, table)
    keys = []
    for (month, run_id), part in frame.partition_by(["month", "run_id"], as_dict=True).items():
        keys.append(f"{table}/{month}/run-{run_id}.parquet")
        store.put(keys[-1], parquet_bytes(part))
    return keys


def write_partitions(
    root: Path | Store, table: str, frame: pl.DataFrame, keys: Iterable[tuple[str, str]]
) -> dict[tuple[str, str], int]:
    """Split ``frame`` by (month, account_id) and write one object per key; keys without rows get an empty one.

    Rows outside ``keys`` are refused: an asset must not write partitions its run does not own.
    Returns the row count written per key.
    """
    store = as_store(root)
    frame = conform(frame, table)
    keys = list(keys)
    wanted = set(keys)
    groups = dict(frame.partition_by(["month", "account_id"], as_dict=True)) if len(frame) else {}
    stray = set(groups) - wanted
    if stray:
        sample = ", ".join(f"{a}|{m}" for m, a in sorted(stray)[:5])
        raise ValueError(f"{table}: output has rows for partitions outside this run: {sample}")
    blank = empty(table)
    written: dict[tuple[str, str], int] = {}

    def _write(key: tuple[str, str]) -> None:
        part = groups.get(key, blank)
        store.put(partition_key(table, *key), parquet_bytes(part))
        written[key] = len(part)

    # Encoding releases the GIL and S3 PUTs wait on the network: a few threads overlap the many small writes.
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(_write, keys))
    return written


def read_partitions(root: Path | Store, table: str, keys: Iterable[tuple[str, str]]) -> pl.DataFrame:
    """The rows of the given (month, account_id) partitions that exist; missing ones are skipped."""
    store = as_store(root)
    keys = list(keys)
    present: set[str] = set()
    for month in sorted({m for m, _ in keys}):
        present.update(store.keys(f"{table}/{month}/"))
    wanted = [k for k in (partition_key(table, m, a) for m, a in keys) if k in present]
    return conform(store.read_parquet(wanted), table) if wanted else empty(table)


def read_table(root: Path | Store, table: str, months: Sequence[str] | None = None) -> pl.DataFrame:
    """Every stored partition of ``table`` (optionally only some months)."""
    store = as_store(root)
    prefixes = [f"{table}/{m}/" for m in months] if months else [f"{table}/"]
    wanted = [k for prefix in prefixes for k in store.keys(prefix)]
    return conform(store.read_parquet(wanted), table) if wanted else empty(table)


def stored_months(root: Path | Store, table: str) -> list[str]:
    """The months for which ``table`` holds at least one partition."""
    return sorted({k.split("/")[1] for k in as_store(root).keys(f"{table}/")})


def _empty_select(table: str) -> str:
    cols = ", ".join(
        f"CAST(NULL AS {_duck_type(dtype)}) AS {name}" for name, dtype in SCHEMAS[table].items()
    )
    return f"SELECT {cols} WHERE false"


def _duck_type(dtype: pl.DataType) -> str:
    mapping = {
        pl.String: "VARCHAR",
        pl.Date: "DATE",
        pl.Float64: "DOUBLE",
        pl.Int32: "INTEGER",
        pl.Int64: "BIGINT",
        pl.Boolean: "BOOLEAN",
    }
    for base, name in mapping.items():
        if dtype == base:
            return name
    if isinstance(dtype, pl.List):
        return f"{_duck_type(dtype.inner)}[]"
    if isinstance(dtype, pl.Struct):
        return "STRUCT(" + ", ".join(f"{f.name} {_duck_type(f.dtype)}" for f in dtype.fields) + ")"
    raise TypeError(f"no DuckDB type for {dtype}")


def create_views(con: duckdb.DuckDBPyConnection, root: Path | Store, teams: Sequence[dict]) -> None:
    """(Re)create every documented view on ``con`` over the Parquet objects under ``root``."""
    store = as_store(root)
    store.configure_duckdb(con)
    for table in PARTITIONED_TABLES:
        if store.has_any(f"{table}/"):
            glob = store.url(f"{table}/*/*.parquet").replace("'", "''")
            sql = f"SELECT * FROM read_parquet('{glob}', union_by_name = true, hive_partitioning = false)"
        else:
            sql = _empty_select(table)
        con.execute(f"CREATE OR REPLACE VIEW {table} AS {sql}")
    teams_frame = pl.DataFrame(
        [
            {
                "team_name": t["team_name"],
                "aws_account_id": t["aws_account_id"],
                "team_email": t["team_email"],
                "cc_emails": "; ".join(t.get("cc_emails") or []),
                "monthly_budget": t.get("monthly_budget"),
            }
            for t in teams
        ],
        schema={
            "team_name": pl.String,
            "aws_account_id": pl.String,
            "team_email": pl.String,
            "cc_emails": pl.String,
            "monthly_budget": pl.Float64,
        },
    )
    con.register("teams_frame", teams_frame.to_arrow())
    con.execute("CREATE OR REPLACE TABLE teams AS SELECT * FROM teams_frame")
    con.unregister("teams_frame")
    for name, (_doc, sql) in DERIVED_VIEWS.items():
        con.execute(f"CREATE OR REPLACE VIEW {name} AS {sql}")
    # Admins' marks on anomalies (costagent anomalies ack): one small file, not partitioned.
    marks_sql = (
        f"SELECT * FROM read_parquet('{store.url('anomaly_feedback/marks.parquet').replace(chr(39), chr(39) * 2)}')"
        if store.has_any("anomaly_feedback/")
        else "SELECT NULL::VARCHAR AS month, NULL::VARCHAR AS account_id, NULL::VARCHAR AS service, "
        "NULL::VARCHAR AS feedback, NULL::VARCHAR AS note, NULL::TIMESTAMPTZ AS marked_at WHERE false"
    )
    con.execute(f"CREATE OR REPLACE VIEW anomaly_feedback AS {marks_sql}")


def connect(root: Path | Store, teams: Sequence[dict], database: str | Path = ":memory:") -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with every view in place (in memory unless a database file is given)."""
    con = duckdb.connect(str(database))
    create_views(con, root, teams)
    return con


def refresh_database_file(path: Path, root: Path | Store, teams: Sequence[dict]) -> None:
    """Rewrite the views in the DuckDB file that users open with the DuckDB CLI."""
    con = duckdb.connect(str(path))
    try:
        create_views(con, root, teams)
    finally:
        con.close()
