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
import re
import tempfile
import warnings
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Protocol

import duckdb
import polars as pl

from costagent_assets.analysis import BUDGET_WARNING_PCT, MICRO, micro_sum
from costagent_assets.schemas import SCHEMAS, conform, empty

PARTITIONED_TABLES = tuple(SCHEMAS)

# name -> (description, SQL over the partition tables). Documented in the README.
DERIVED_VIEWS: dict[str, tuple[str, str]] = {
    "account_months": (
        "One row per account and month with the team's name: spend, change on the same days of the "
        "previous month, the month-end forecast with its 80% range (the run rate where there is no "
        "forecast), next month's forecast, and the budget.",
        "SELECT m.month, m.account_id, t.team_name, m.current_mtd_usd AS mtd_usd, m.previous_same_period_usd, "
        "m.change_usd, m.change_pct, m.previous_month_total_usd, "
        "coalesce(fe.point_usd, m.projected_month_end_usd) AS projected_month_end_usd, "
        "fe.low_usd AS month_end_low_usd, fe.high_usd AS month_end_high_usd, "
        "fn.point_usd AS next_month_usd, fn.low_usd AS next_month_low_usd, fn.high_usd AS next_month_high_usd, "
        "m.through_date, t.monthly_budget FROM mom_changes m LEFT JOIN teams t ON t.aws_account_id = m.account_id "
        "LEFT JOIN forecasts fe ON fe.month = m.month AND fe.account_id = m.account_id AND fe.service IS NULL "
        "AND fe.horizon = 'month_end' "
        "LEFT JOIN forecasts fn ON fn.month = m.month AND fn.account_id = m.account_id AND fn.service IS NULL "
        "AND fn.horizon = 'next_month' "
        "WHERE m.level = 'account'",
    ),
    "budgets": (
        "One row per account with a monthly budget and month: budget, spend so far and % used, the projected "
        "month end and its % of the budget, and the status the team email shows (over / warning / ok).",
        "SELECT month, account_id, team_name, monthly_budget, mtd_usd, mtd_usd / monthly_budget * 100 AS used_pct, "
        "projected_month_end_usd, projected_month_end_usd / monthly_budget * 100 AS projected_pct, "
        "CASE WHEN mtd_usd >= monthly_budget THEN 'over' "
        f"WHEN mtd_usd >= monthly_budget * {BUDGET_WARNING_PCT} / 100 "
        "OR projected_month_end_usd >= monthly_budget THEN 'warning' ELSE 'ok' END AS status "
        "FROM account_months WHERE monthly_budget > 0",
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

    def delete(self, key: str) -> None:
        """Remove the object at ``key`` if there is one."""

    def keys(self, prefix: str) -> list[str]:
        """Every key under ``prefix``, sorted."""

    def children(self, prefix: str) -> list[str]:
        """The names of the folders directly under ``prefix`` (ending in "/"), sorted."""

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

    def delete(self, key: str) -> None:
        (self.root / key).unlink(missing_ok=True)

    def keys(self, prefix: str) -> list[str]:
        base = self.root / prefix
        if not base.exists():
            return []
        return sorted(str(p.relative_to(self.root)) for p in base.rglob("*.parquet"))

    def children(self, prefix: str) -> list[str]:
        base = self.root / prefix
        return sorted(p.name for p in base.iterdir() if p.is_dir()) if base.is_dir() else []

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


def parquet_bytes(frame: pl.DataFrame, row_group_size: int | None = None) -> bytes:
    """``frame`` as a Parquet object (zstd, with statistics)."""
    buffer = io.BytesIO()
    frame.write_parquet(buffer, compression="zstd", statistics=True, row_group_size=row_group_size)
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
    Writing raw_costs also rebuilds the months' rollups (see ``refresh_rollups``).

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
    if table == "raw_costs":
        # The months' rollups go first and come back after the partitions: a run killed in between
        # leaves a month without rollups, which ensure_rollups rebuilds, never a stale one.
        for month in sorted({m for m, _ in keys}):
            for rollup in ROLLUP_SCHEMAS:
                store.delete(rollup_key(rollup, month))

    def _write(key: tuple[str, str]) -> None:
        part = groups.get(key, blank)
        store.put(partition_key(table, *key), parquet_bytes(part))
        written[key] = len(part)

    # Encoding releases the GIL and S3 PUTs wait on the network: a few threads overlap the many small writes.
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(_write, keys))
    if table == "raw_costs":
        refresh_rollups(store, frame, keys)
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


# Rollups: per month, one object for all accounts, so that a history query opens one small file per month
# instead of one per account-month (5,000 accounts x 36 months is 180,000 files). They are rebuilt from
# raw_costs whenever a month's raw_costs partitions are written, from the same rows, in whole micro-dollars.
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
            parts.append(conform(store.read_parquet(others), "raw_costs").select(_ROLLUP_COLUMNS))
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
            raw = conform(store.read_parquet(keys), "raw_costs") if keys else empty("raw_costs")
            _put_rollups(store, month, raw.select(_ROLLUP_COLUMNS))
            built.append(month)
    return built


def _empty_select(table: str, schema: dict[str, pl.DataType] | None = None) -> str:
    cols = ", ".join(
        f"CAST(NULL AS {_duck_type(dtype)}) AS {name}" for name, dtype in (schema or SCHEMAS[table]).items()
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


# One object per run or report date, kept across versions: their files may differ in columns, so DuckDB
# unions them by name. The account-month partitions are all written through schemas.conform, so DuckDB
# takes the columns of the first file: unioning 180,000 files' schemas costs ~20 s each time a view is
# bound. (A file that lacks one of those columns fails the query with DuckDB's "schema mismatch in glob",
# naming the file; backfilling its month rewrites it.)
LOG_TABLES = frozenset({"ai_usage", "ai_insight_history", "source_usage", "optimization_scans"})


TEAM_COLUMNS = {"team_name": "VARCHAR", "aws_account_id": "VARCHAR", "team_email": "VARCHAR",
                "cc_emails": "VARCHAR", "monthly_budget": "DOUBLE"}


def _teams_select(teams: Sequence[dict]) -> str:
    """The registry as SQL literals: no Arrow round trip, whose first use imports pyarrow (~0.3 s)."""

    def literal(value: object) -> str:
        if value is None:
            return "NULL"
        if isinstance(value, (int, float)):
            return repr(float(value))
        return "'" + str(value).replace("'", "''") + "'"

    typed = ", ".join(f"CAST({c} AS {t}) AS {c}" for c, t in TEAM_COLUMNS.items())
    if not teams:
        return f"SELECT {typed} FROM (SELECT {', '.join(f'NULL AS {c}' for c in TEAM_COLUMNS)}) WHERE false"
    rows = ", ".join(
        "(" + ", ".join(literal(v) for v in (
            t["team_name"], t["aws_account_id"], t["team_email"], "; ".join(t.get("cc_emails") or []),
            t.get("monthly_budget"),
        )) + ")"
        for t in teams
    )
    return f"SELECT {typed} FROM (VALUES {rows}) AS v({', '.join(TEAM_COLUMNS)})"


def views_needed(query: str) -> set[str] | None:
    """The views ``query`` names, with the views those are built on; None (all of them) when it names
    none, as in ``SHOW TABLES``. Binding a view over the account-month partitions lists every one of its
    files, so ``costagent sql`` creates only what a query uses."""
    words = set(re.findall(r"[a-z_][a-z0-9_]*", query.lower()))
    names = set(PARTITIONED_TABLES) | set(ROLLUP_VIEWS) | set(DERIVED_VIEWS) | {"teams", "anomaly_feedback"}
    wanted = words & names
    if not wanted:
        return None
    while True:  # a derived view may be built on another one
        more = {w for n in wanted if n in DERIVED_VIEWS
                for w in re.findall(r"[a-z_][a-z0-9_]*", DERIVED_VIEWS[n][1].lower())} & names
        if more <= wanted:
            return wanted
        wanted |= more


def create_views(
    con: duckdb.DuckDBPyConnection, root: Path | Store, teams: Sequence[dict], only: set[str] | None = None
) -> None:
    """(Re)create the documented views on ``con`` over the Parquet objects under ``root``: every one, or
    those in ``only`` (see ``views_needed``)."""
    store = as_store(root)
    store.configure_duckdb(con)
    for table in PARTITIONED_TABLES:
        if only is not None and table not in only:
            continue
        if store.has_any(f"{table}/"):
            glob = store.url(f"{table}/*/*.parquet").replace("'", "''")
            by_name = "true" if table in LOG_TABLES else "false"
            sql = f"SELECT * FROM read_parquet('{glob}', union_by_name = {by_name}, hive_partitioning = false)"
        else:
            sql = _empty_select(table)
        con.execute(f"CREATE OR REPLACE VIEW {table} AS {sql}")
    con.execute(f"CREATE OR REPLACE TABLE teams AS {_teams_select(teams)}")
    try:
        ensure_rollups(store)
    except Exception as exc:  # e.g. read-only credentials: the views still open, without those months
        warnings.warn(f"could not build missing cost rollups ({exc}); daily and monthly views may lack months",
                      stacklevel=2)
    rollups = {Path(k).parent.name for k in store.keys("rollups/")}
    for name, (_doc, rollup, sql) in ROLLUP_VIEWS.items():
        if only is not None and name not in only:
            continue
        if rollup in rollups:
            glob = store.url(f"rollups/{rollup}/*.parquet").replace("'", "''")
            source = f"read_parquet('{glob}', hive_partitioning = false)"
        else:
            source = f"({_empty_select('', ROLLUP_SCHEMAS[rollup])})"
        con.execute(f"CREATE OR REPLACE VIEW {name} AS WITH rollup AS (SELECT * FROM {source}) {sql}")
    for name, (_doc, sql) in DERIVED_VIEWS.items():
        if only is None or name in only:
            con.execute(f"CREATE OR REPLACE VIEW {name} AS {sql}")
    # Admins' marks on anomalies (costagent anomalies ack): one small file, not partitioned.
    marks_sql = (
        f"SELECT * FROM read_parquet('{store.url('anomaly_feedback/marks.parquet').replace(chr(39), chr(39) * 2)}')"
        if store.has_any("anomaly_feedback/")
        else "SELECT NULL::VARCHAR AS month, NULL::VARCHAR AS account_id, NULL::VARCHAR AS service, "
        "NULL::VARCHAR AS feedback, NULL::VARCHAR AS note, NULL::TIMESTAMPTZ AS marked_at WHERE false"
    )
    con.execute(f"CREATE OR REPLACE VIEW anomaly_feedback AS {marks_sql}")


def connect(
    root: Path | Store, teams: Sequence[dict], database: str | Path = ":memory:", only: set[str] | None = None
) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with the views in place (all, or ``only`` those), in memory unless a database
    file is given."""
    con = duckdb.connect(str(database))
    create_views(con, root, teams, only)
    return con


def refresh_database_file(path: Path, root: Path | Store, teams: Sequence[dict]) -> None:
    """Rewrite the views in the DuckDB file that users open with the DuckDB CLI."""
    con = duckdb.connect(str(path))
    try:
        create_views(con, root, teams)
    finally:
        con.close()
