"""The budget rule: one status for the emails, the AI packs and the SQL budgets view, at the configured levels."""

from __future__ import annotations

import itertools

import duckdb
import pytest

from costagent_assets.budgets import DEFAULT_ALERT_PCTS, budget_status, status_sql, warning_pct


@pytest.mark.parametrize(
    ("levels", "expected"),
    [(DEFAULT_ALERT_PCTS, 80.0), ((50, 90, 100, 120), 90), ((100, 150), 100.0), ((75,), 75)],
)
def test_a_budget_is_at_risk_from_the_highest_level_below_100(levels, expected):
    assert warning_pct(levels) == expected


@pytest.mark.parametrize(
    ("mtd_pct", "projected_pct", "expected"),
    [(100, None, "over"), (120, 90, "over"), (80, None, "warning"), (79.9, 99.9, "ok"), (10, 100, "warning"),
     (79.9, None, "ok")],
)
def test_status_with_the_default_levels(mtd_pct, projected_pct, expected):
    assert budget_status(mtd_pct, projected_pct) == expected


@pytest.mark.parametrize("levels", [DEFAULT_ALERT_PCTS, (50.0, 90.0), (100.0,), (25.0, 60.0, 100.0, 150.0)])
def test_the_sql_view_and_the_emails_give_the_same_status(levels):
    budget = 1000.0
    grid = list(itertools.product([0, 250, 599, 600, 799, 800, 899, 900, 999.99, 1000, 1500], [None, 500, 999, 1000, 2000]))
    con = duckdb.connect()
    con.execute("CREATE TABLE t (mtd DOUBLE, projected DOUBLE, budget DOUBLE)")
    con.executemany("INSERT INTO t VALUES (?, ?, ?)", [(m, p, budget) for m, p in grid])
    sql = con.execute(f"SELECT mtd, projected, {status_sql('mtd', 'projected', 'budget', levels)} FROM t").fetchall()
    python = [(m, p, budget_status(m / budget * 100, None if p is None else p / budget * 100, levels)) for m, p in grid]
    assert sorted(sql, key=str) == sorted(python, key=str)
    assert {s for _, _, s in python} >= {"ok", "over"}
