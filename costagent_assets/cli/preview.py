"""Render reports from what the warehouse holds, without sending anything."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import polars as pl

from costagent_assets.completeness import (
    Coverage,
    account_coverage,
    incomplete_accounts,
    mark_incomplete,
    without_missing_days,
)
from costagent_assets.home import Home
from costagent_assets.insights.history import admin_ai_context
from costagent_assets.periods import Period, period
from costagent_assets.report_context import ReportFrames, alert_chart_daily, report_frames, trend_months
from costagent_assets.reporting import RenderedEmail, render_admin_report, render_team_report
from costagent_assets.resources.s3_warehouse import home_store
from costagent_assets.settings import load_settings
from costagent_assets.teams.registry import load_registry
from costagent_assets.warehouse.rollups import read_rollup
from costagent_assets.warehouse.store import Store, read_table, stored_months

# The tables the emails stage reads, beside mom_changes (read with its trend months).
REPORT_TABLES = ("anomalies", "ai_insights", "forecasts", "optimization_opportunities")


class PreviewError(ValueError):
    """Nothing to preview: unknown account, or a month the warehouse does not hold."""


def _stored_month(store: Store, month: str | None) -> str:
    """``month``, or the latest stored, once the warehouse is known to hold its analysis."""
    stored = stored_months(store, "mom_changes")
    if not stored:
        raise PreviewError("the warehouse is empty: run `costagent run` or `costagent demo` first")
    month = month or stored[-1]
    if month not in stored:
        raise PreviewError(f"no analysis stored for {month}; stored months: {', '.join(stored[-6:])}")
    return month


def _frames(home: Home, month: str | None) -> tuple[ReportFrames, Store, dict[str, Coverage]]:
    """The report frames of ``month`` (default: the latest stored), the store they were read from, and the
    accounts with missing days (their figures gated as the emails stage gates them)."""
    settings = load_settings(home.settings_path)
    store = home_store(home, settings)
    month = _stored_month(store, month)
    tables = {name: read_table(store, name, [month]) for name in REPORT_TABLES}
    tables["mom_changes"] = read_table(store, "mom_changes", trend_months(month))
    through = tables["mom_changes"].filter(pl.col("month") == month)["through_date"].max()
    p: Period = period(month, through + timedelta(days=1))
    accounts = [t.aws_account_id for t in load_registry(home.teams_path)]
    coverage = account_coverage(read_rollup(store, "daily", month), p, accounts)
    gaps = {a: c for a, c in coverage.items() if not c.no_data and not c.complete}
    frames = report_frames(month, p, without_missing_days(tables, month, gaps), generated_at=datetime.now(UTC),
                           dashboard_url_template=settings.datadog_dashboard_url,
                           budget_alert_pcts=settings.budget_alert_pcts, daily=alert_chart_daily(store, month))
    return frames, store, gaps


def preview_team(home: Home, account_id: str, month: str | None = None) -> RenderedEmail:
    """The team report of ``account_id`` for ``month`` (default: the latest stored)."""
    team = team_of(home, account_id)
    frames, _, gaps = _frames(home, month)
    ctx = frames.team_context(team)
    return render_team_report(mark_incomplete(ctx, gaps[account_id]) if account_id in gaps else ctx)


def stored_report_date(home: Home, month: str | None = None) -> tuple[str, date]:
    """The month to preview (default: the latest stored) and the report date its analysis was computed for."""
    store = home_store(home, load_settings(home.settings_path))
    month = _stored_month(store, month)
    through = read_table(store, "mom_changes", [month])["through_date"].max()
    return month, through + timedelta(days=1)


def team_of(home: Home, account_id: str):
    """The registry's team of ``account_id``; PreviewError naming it when there is none."""
    team = next((t for t in load_registry(home.teams_path) if t.aws_account_id == account_id), None)
    if team is None:
        raise PreviewError(f"account {account_id} is not in the teams registry")
    return team


def preview_admin(home: Home, month: str | None = None) -> RenderedEmail:
    """The admin report for ``month`` (default: the latest stored)."""
    frames, store, gaps = _frames(home, month)
    teams = load_registry(home.teams_path)
    context = frames.admin_context(teams)
    incomplete = incomplete_accounts(gaps, {t.aws_account_id: t.team_name for t in teams})
    return render_admin_report({**context, "ai": admin_ai_context(store, frames.month),
                                "incomplete_accounts": incomplete})
