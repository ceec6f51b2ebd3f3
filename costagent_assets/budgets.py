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


def budget_alert(
    mtd: float,
    projected: float | None,
    budget: float,
    *,
    elapsed_pct: float,
    week_ago_mtd: float | None = None,
    alert_pcts: Sequence[float] = DEFAULT_ALERT_PCTS,
) -> tuple[str, float] | None:
    """Whether this week's report raises a budget alert, as ``(basis, level)``, else None.

    - ``("actual", level)`` while spend is over the budget (a team over budget hears it every week);
    - ``("forecast", level)`` when the month is projected past the budget (``projected`` is None once the
      month is complete);
    - ``("actual", level)`` for a level below 100% only when it was crossed this week (``week_ago_mtd``, the
      month to date seven days earlier, was under it; None: not known) AND spend runs ahead of the month's
      pace (``elapsed_pct``, the share of the month's days covered). 72% spent on day 27 of 30 is on pace:
      no alert, since that is simply what a month that lands on budget looks like.
    """
    if budget <= 0:
        return None
    levels = sorted(float(p) for p in alert_pcts)
    mtd_pct = mtd / budget * 100
    if mtd_pct >= 100:
        return "actual", max((p for p in levels if 100 <= p <= mtd_pct), default=100.0)
    if projected is not None and projected >= budget:
        return "forecast", max((p for p in levels if 100 <= p <= projected / budget * 100), default=100.0)
    level = max((p for p in levels if p <= mtd_pct), default=None)
    if level is None:
        return None
    newly = week_ago_mtd is None or week_ago_mtd / budget * 100 < level
    return ("actual", level) if newly and mtd_pct > elapsed_pct else None
