"""The budget rule: one status for the emails, the AI packs and the SQL budgets view, at the configured levels."""

from __future__ import annotations

import itertools

import duckdb
import pytest

from costagent_assets.budgets import DEFAULT_ALERT_PCTS, budget_alert, budget_status, status_sql, warning_pct


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


@pytest.mark.parametrize(
    ("mtd", "projected", "elapsed_pct", "week_ago", "expected"),
    [
        (720, 960, 90.0, 560, None),  # 72% on day 27 of 30: on pace, the month lands under budget
        (720, 960, 90.0, None, None),  # on pace even when last week's figure is unknown
        (1630, None, 100.0, 1400, ("actual", 100.0)),  # over budget: every week, month complete or not
        (1630, 2000, 90.0, 1500, ("actual", 100.0)),
        (400, 1200, 30.0, 300, ("forecast", 100.0)),  # projected past it: the overrun is the alert
        (550, 900, 40.0, 450, ("actual", 50.0)),  # crossed 50% this week, ahead of a 40% pace
        (550, 900, 40.0, 499, ("actual", 50.0)),
        (610, 990, 40.0, 510, None),  # 50% already crossed a week ago: not news again
        (850, 990, 70.0, 790, ("actual", 80.0)),  # 80% crossed this week, ahead of pace
        (850, 990, 90.0, 790, None),  # the same, behind pace (projected under budget)
        (300, 600, 20.0, 100, None),  # under every level
    ],
)
def test_a_budget_alert_fires_on_a_new_level_ahead_of_pace_or_an_overrun(mtd, projected, elapsed_pct, week_ago, expected):
    assert budget_alert(mtd, projected, 1000.0, elapsed_pct=elapsed_pct, week_ago_mtd=week_ago) == expected


def test_a_budget_alert_reports_the_highest_level_reached_at_or_over_100():
    levels = (50.0, 100.0, 150.0)
    assert budget_alert(1600, None, 1000.0, elapsed_pct=100.0, alert_pcts=levels) == ("actual", 150.0)
    assert budget_alert(500, 1700, 1000.0, elapsed_pct=30.0, week_ago_mtd=450, alert_pcts=levels) == ("forecast", 150.0)
    assert budget_alert(1200, None, 1000.0, elapsed_pct=100.0, alert_pcts=(50.0, 80.0)) == ("actual", 100.0)
