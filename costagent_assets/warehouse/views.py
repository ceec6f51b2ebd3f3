"""The DuckDB side of the warehouse: the documented views over the Parquet objects, and connections.

Views, not tables: nothing is loaded into DuckDB, so the Parquet objects stay the single source of truth.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Sequence
from pathlib import Path

import duckdb
import polars as pl

from costagent_assets.anomaly_detection import alert_kind_sql
from costagent_assets.budgets import DEFAULT_ALERT_PCTS, status_sql
from costagent_assets.schemas import SCHEMAS
from costagent_assets.warehouse.log_tables import LOG_TABLES
from costagent_assets.warehouse.rollups import ROLLUP_SCHEMAS, ROLLUP_VIEWS, ensure_rollups
from costagent_assets.warehouse.store import PARTITIONED_TABLES, Store, as_store

# The budgets view's status column: budgets.status_sql at the configured levels, filled in by create_views.
BUDGET_STATUS = "{budget_status}"

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
        f"{BUDGET_STATUS} AS status "
        "FROM account_months WHERE monthly_budget > 0",
    ),
    "alerts": (
        "One row per alert (the alerted rows of anomalies), as the emails and the admin report count them: "
        "its kind (spike, step, new_service, mtd_rise, budget_actual, budget_forecast), severity, start date, "
        "the dollars at stake (impact_usd) and the note saying why.",
        "SELECT a.month, a.account_id, t.team_name, a.level, a.service, "
        f"{alert_kind_sql('a.kind', 'a.detector')} AS alert_kind, a.severity, a.start_date, a.end_date, "
        "a.impact_usd, a.current_usd, a.previous_usd, a.change_usd, a.change_pct, a.note, a.through_date "
        "FROM anomalies a LEFT JOIN teams t ON t.aws_account_id = a.account_id WHERE a.alerted",
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
    "ai_usage_daily": (
        "One row per day, account and model of the AI providers (OpenAI, Anthropic, and AI lines with token "
        "counts from any source): tokens by kind, requests and USD, with the team's name.",
        "SELECT r.month, r.date, r.account_id, t.team_name, r.source, r.provider, r.service AS model, "
        "sum(r.usage_quantity) FILTER (WHERE r.usage_type = 'input_tokens') AS input_tokens, "
        "sum(r.usage_quantity) FILTER (WHERE r.usage_type = 'cached_input_tokens') AS cached_input_tokens, "
        "sum(r.usage_quantity) FILTER (WHERE r.usage_type = 'cache_write_tokens') AS cache_write_tokens, "
        "sum(r.usage_quantity) FILTER (WHERE r.usage_type = 'output_tokens') AS output_tokens, "
        "sum(r.usage_quantity) FILTER (WHERE r.usage_type = 'requests') AS requests, "
        "sum(r.cost_usd) AS cost_usd "
        "FROM raw_costs r LEFT JOIN teams t ON t.aws_account_id = r.account_id "
        "WHERE r.provider IN ('openai', 'anthropic') OR r.usage_unit IN ('tokens', 'requests') "
        "GROUP BY ALL",
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
    "report_coverage": "Per run and team report: what it was built on (complete, no_data, incomplete, or held "
    "waiting for data), the last day with data and the days missing, and what became of it.",
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


def _missing_columns(con: duckdb.DuckDBPyConnection, table: str, sql: str) -> list[str]:
    """The columns of ``table``'s schema that ``sql`` does not give (binding reads only the footers needed)."""
    have = {row[0] for row in con.execute(f"DESCRIBE {sql}").fetchall()}
    return [c for c in SCHEMAS[table] if c not in have]


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
    con: duckdb.DuckDBPyConnection,
    root: Path | Store,
    teams: Sequence[dict],
    only: set[str] | None = None,
    budget_alert_pcts: Sequence[float] = DEFAULT_ALERT_PCTS,
) -> None:
    """(Re)create the documented views on ``con`` over the Parquet objects under ``root``: every one, or
    those in ``only`` (see ``views_needed``); ``budget_alert_pcts`` sets the ``budgets`` view's status."""
    store = as_store(root)
    store.configure_duckdb(con)
    for table in PARTITIONED_TABLES:
        if only is not None and table not in only:
            continue
        if store.has_any(f"{table}/"):
            glob = store.url(f"{table}/*/*.parquet").replace("'", "''")
            # Log tables keep one object per run or report date across versions: their files may differ in
            # columns, so DuckDB unions them by name. The account-month partitions are all written through
            # schemas.conform, so DuckDB takes the columns of the first file: unioning 180,000 files' schemas
            # costs ~20 s each time a view is bound. (A file that lacks one of those columns fails the query
            # with DuckDB's "schema mismatch in glob", naming the file; backfilling its month rewrites it.)
            by_name = "true" if table in LOG_TABLES else "false"
            sql = f"SELECT * FROM read_parquet('{glob}', union_by_name = {by_name}, hive_partitioning = false)"
            if table not in LOG_TABLES and _missing_columns(con, table, sql):
                # The first file predates a column (a warehouse written before it was added, e.g. raw_costs'
                # usage_quantity): union by name, which is slower, until the old months are backfilled, and
                # show a column no file has yet as null.
                sql = f"SELECT * FROM read_parquet('{glob}', union_by_name = true, hive_partitioning = false)"
                nulls = [f"CAST(NULL AS {_duck_type(SCHEMAS[table][c])}) AS {c}"
                         for c in _missing_columns(con, table, sql)]
                sql = f"SELECT *{''.join(', ' + n for n in nulls)} FROM ({sql})"
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
    status = status_sql("mtd_usd", "projected_month_end_usd", "monthly_budget", budget_alert_pcts)
    for name, (_doc, sql) in DERIVED_VIEWS.items():
        if only is None or name in only:
            con.execute(f"CREATE OR REPLACE VIEW {name} AS {sql.replace(BUDGET_STATUS, status)}")
    # Admins' marks on anomalies (costagent anomalies ack): one small file, not partitioned.
    marks_sql = (
        f"SELECT * FROM read_parquet('{store.url('anomaly_feedback/marks.parquet').replace(chr(39), chr(39) * 2)}')"
        if store.has_any("anomaly_feedback/")
        else "SELECT NULL::VARCHAR AS month, NULL::VARCHAR AS account_id, NULL::VARCHAR AS service, "
        "NULL::VARCHAR AS feedback, NULL::VARCHAR AS note, NULL::TIMESTAMPTZ AS marked_at WHERE false"
    )
    con.execute(f"CREATE OR REPLACE VIEW anomaly_feedback AS {marks_sql}")


def connect(
    root: Path | Store,
    teams: Sequence[dict],
    database: str | Path = ":memory:",
    only: set[str] | None = None,
    budget_alert_pcts: Sequence[float] = DEFAULT_ALERT_PCTS,
    read_only: bool = False,
) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with the views in place (all, or ``only`` those), in memory unless a database
    file is given; ``read_only`` locks it down once the views exist (see ``lock_down``)."""
    con = duckdb.connect(str(database))
    create_views(con, root, teams, only, budget_alert_pcts)
    if read_only:
        lock_down(con, as_store(root))
    return con


# What `costagent sql` runs: queries only (SHOW, DESCRIBE, SUMMARIZE and PRAGMA show_tables parse as SELECT).
READ_ONLY_STATEMENTS = frozenset({duckdb.StatementType.SELECT, duckdb.StatementType.EXPLAIN})


def read_only_problem(query: str) -> str | None:
    """Why ``query`` is refused on a read-only connection (a statement that is not a query: COPY, ATTACH,
    INSTALL, CREATE, SET, ...), or None. A query DuckDB cannot parse is left to report its own error."""
    try:
        statements = duckdb.extract_statements(query)
    except duckdb.Error:
        return None
    # A PIVOT without an IN list expands to an internal CREATE TYPE (an in-memory enum of the pivot values),
    # which has no text of its own; a CREATE the user wrote always has.
    refused = sorted({s.type.name for s in statements if s.type not in READ_ONLY_STATEMENTS
                      and not (s.type == duckdb.StatementType.CREATE and not s.query.strip())})
    if refused:
        return (f"costagent sql is read-only: {', '.join(refused)} statements are refused (queries only: SELECT, "
                "WITH, SHOW, DESCRIBE, SUMMARIZE, EXPLAIN); nothing was run")
    return None


def lock_down(con: duckdb.DuckDBPyConnection, store: Store) -> None:
    """Make ``con`` unable to reach anything but the warehouse: no file or URL outside it (so no
    ``/etc/passwd``, no ATTACHed database file, no download), no extension installed or loaded, and the
    configuration locked so that a query cannot undo it. Writes are kept out by ``read_only_problem``
    (DuckDB's allowed directories are readable *and* writable)."""
    root = store.url("")
    root = root if root.endswith("/") else root + "/"
    for statement in (
        "SET autoinstall_known_extensions = false",
        "SET autoload_known_extensions = false",
        f"SET allowed_directories = ['{root.replace(chr(39), chr(39) * 2)}']",
        "SET enable_external_access = false",
        "SET lock_configuration = true",
    ):
        con.execute(statement)


def refresh_database_file(
    path: Path, root: Path | Store, teams: Sequence[dict], budget_alert_pcts: Sequence[float] = DEFAULT_ALERT_PCTS
) -> None:
    """Rewrite the views in the DuckDB file that users open with the DuckDB CLI."""
    con = duckdb.connect(str(path))
    try:
        create_views(con, root, teams, budget_alert_pcts=budget_alert_pcts)
    finally:
        con.close()
