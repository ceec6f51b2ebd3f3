"""The Parquet warehouse layout and the DuckDB views over it.

One Parquet file per asset partition: ``<root>/<table>/<YYYY-MM>/<account_id>.parquet``. A rerun of a
partition replaces exactly that file (written beside it, then renamed, so a reader sees the old file
or the new one). DuckDB reads the files through views; nothing is loaded into DuckDB itself, so the
Parquet files stay the single source of truth.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

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
}


def partition_path(root: Path, table: str, month: str, account_id: str) -> Path:
    """Where one account-month partition of ``table`` lives."""
    return root / table / month / f"{account_id}.parquet"


def write_parquet_atomic(frame: pl.DataFrame, path: Path) -> None:
    """Write ``frame`` to ``path`` so that readers see the old file or the new one, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".tmp")
    os.close(fd)
    try:
        frame.write_parquet(tmp, compression="zstd", statistics=True)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_partitions(
    root: Path, table: str, frame: pl.DataFrame, keys: Iterable[tuple[str, str]]
) -> dict[tuple[str, str], int]:
    """Split ``frame`` by (month, account_id) and write one file per key; keys without rows get an empty file.

    Rows outside ``keys`` are refused: an asset must not write partitions its run does not own.
    Returns the row count written per key.
    """
    frame = conform(frame, table)
    keys = list(keys)
    wanted = set(keys)
    groups = {k: g for k, g in frame.partition_by(["month", "account_id"], as_dict=True).items()} if len(frame) else {}
    stray = set(groups) - wanted
    if stray:
        sample = ", ".join(f"{a}|{m}" for m, a in sorted(stray)[:5])
        raise ValueError(f"{table}: output has rows for partitions outside this run: {sample}")
    blank = empty(table)
    written: dict[tuple[str, str], int] = {}

    def _write(key: tuple[str, str]) -> None:
        part = groups.get(key, blank)
        write_parquet_atomic(part, partition_path(root, table, *key))
        written[key] = len(part)

    # Parquet encoding releases the GIL, so a few threads overlap the many small writes.
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(_write, keys))
    return written


def read_partitions(root: Path, table: str, keys: Iterable[tuple[str, str]]) -> pl.DataFrame:
    """The rows of the given (month, account_id) partitions that exist; missing ones are skipped."""
    paths = [p for p in (partition_path(root, table, m, a) for m, a in keys) if p.exists()]
    return _read_many(paths, table)


def _read_many(paths: list[Path], table: str) -> pl.DataFrame:
    if not paths:
        return empty(table)
    # One scan over all files: polars reads them in parallel, far faster than a loop of small reads.
    return conform(pl.scan_parquet(paths, missing_columns="insert", extra_columns="ignore").collect(), table)


def read_table(root: Path, table: str, months: Sequence[str] | None = None) -> pl.DataFrame:
    """Every stored partition of ``table`` (optionally only some months)."""
    base = root / table
    dirs = [base / m for m in months] if months else sorted(base.glob("*")) if base.exists() else []
    paths = [p for d in dirs if d.is_dir() for p in sorted(d.glob("*.parquet"))]
    return _read_many(paths, table)


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


def create_views(con: duckdb.DuckDBPyConnection, root: Path, teams: Sequence[dict]) -> None:
    """(Re)create every documented view on ``con`` over the Parquet files under ``root``."""
    for table in PARTITIONED_TABLES:
        has_files = any((root / table).glob("*/*.parquet")) if (root / table).exists() else False
        if has_files:
            glob = str(root / table / "*" / "*.parquet").replace("'", "''")
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


def connect(root: Path, teams: Sequence[dict], database: str | Path = ":memory:") -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with every view in place (in memory unless a database file is given)."""
    con = duckdb.connect(str(database))
    create_views(con, root, teams)
    return con


def refresh_database_file(path: Path, root: Path, teams: Sequence[dict]) -> None:
    """Rewrite the views in the DuckDB file that users open with the DuckDB CLI."""
    con = duckdb.connect(str(path))
    try:
        create_views(con, root, teams)
    finally:
        con.close()
