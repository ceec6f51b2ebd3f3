"""A team's monthly budget: the levels its alerts fire at, and the status every report shows.

One rule, in one place: the team email and the admin report (``report_context``), the AI evidence packs
(``insights.evidence``), the ``anomalies`` stage's budget alerts (their default levels) and the SQL
``budgets`` view (``status_sql``) all take it from here, with the levels of ``budget_alert_pcts``.
"""

from __future__ import annotations

from collections.abc import Sequence

# Percentages of the monthly budget at which alerts fire, on actual spend and on the projected month end.
DEFAULT_ALERT_PCTS: tuple[float, ...] = (50.0, 80.0, 100.0)


def warning_pct(alert_pcts: Sequence[float] = DEFAULT_ALERT_PCTS) -> float:
    """The share of the budget spent from which it is "at risk": the highest alert level below 100%
    (80% by default), else 100%, where only a projection past the budget warns."""
    below = [p for p in alert_pcts if p < 100]
    return max(below) if below else 100.0


def budget_status(mtd_pct: float, projected_pct: float | None, alert_pcts: Sequence[float] = DEFAULT_ALERT_PCTS) -> str:
    """``over`` (spent the budget), ``warning`` (spent ``warning_pct`` of it, or the month is projected past
    it) or ``ok``."""
    if mtd_pct >= 100:
        return "over"
    if mtd_pct >= warning_pct(alert_pcts) or (projected_pct or 0) >= 100:
        return "warning"
    return "ok"


def status_sql(mtd: str, projected: str, budget: str, alert_pcts: Sequence[float] = DEFAULT_ALERT_PCTS) -> str:
    """:func:`budget_status` as a SQL CASE over the columns ``mtd``, ``projected`` and ``budget``."""
    return (
        f"CASE WHEN {mtd} >= {budget} THEN 'over' "
        f"WHEN {mtd} >= {budget} * {warning_pct(alert_pcts)} / 100 OR {projected} >= {budget} THEN 'warning' "
        "ELSE 'ok' END"
    )
