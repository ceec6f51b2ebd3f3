"""How sure a forecast is, in words, and what could move it: from the backtest and the account's own data.

``confidence`` grades an account's forecast high / medium / low from its backtested error (the typical %
error of past forecasts against what happened) and how much history it rests on; ``risks`` lists what in
this month's data could move it: a step change still settling, a new service with little history, a budget
near or past its limit, a wide range.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date

# A grade needs a track record: months of backtested forecasts and the typical error over them.
HIGH_MAX_ERROR_PCT, HIGH_MIN_MONTHS = 5.0, 6
MEDIUM_MAX_ERROR_PCT, MEDIUM_MIN_MONTHS = 15.0, 3
MIN_HISTORY_DAYS = 56  # under 8 weeks the forecast assumes no trend (forecast.py): never better than low
SETTLING_DAYS = 14  # a step this recent has not yet shown where it levels off
WIDE_RANGE_PCT = 30.0  # an 80% range wider than this share of the point (either side) is called wide


def confidence(history_days: int | None, track_months: int | None, error_pct: float | None) -> dict:
    """{"level": "high" | "medium" | "low", "reason": why, in words from the figures}."""
    months = track_months or 0
    if history_days is not None and history_days < MIN_HISTORY_DAYS:
        return {"level": "low", "reason": f"only {history_days} days of history"}
    if months < MEDIUM_MIN_MONTHS or error_pct is None:
        return {"level": "low", "reason": f"{months} month{'s' if months != 1 else ''} of track record"}
    said = f"typical error {error_pct:.1f}% over {months} months"
    if error_pct <= HIGH_MAX_ERROR_PCT and months >= HIGH_MIN_MONTHS:
        return {"level": "high", "reason": said}
    if error_pct <= MEDIUM_MAX_ERROR_PCT:
        return {"level": "medium", "reason": said}
    return {"level": "low", "reason": said}


def risks(anomalies: Sequence[Mapping], new_services: Sequence[str], budget: Mapping | None,
          band: Mapping | None, through: date) -> list[str]:
    """What could move the forecast, each from this month's data; empty when nothing does."""
    out = []
    for a in anomalies:
        start = a.get("start_date")
        if a.get("kind") == "step" and start is not None and (through - start).days < SETTLING_DAYS:
            days = (through - start).days + 1
            out.append(f"a step up in {a['service']} since {start:%-d %b} is still settling "
                       f"({days} day{'s' if days != 1 else ''} of it so far)")
    for service in new_services:
        out.append(f"{service} is new this month: little history to forecast it from")
    if budget and budget.get("status") in ("warning", "over"):
        projected = budget.get("projected_pct")
        out.append(f"the budget is {budget['mtd_pct']:.0f}% used"
                   + (f" and projected at {projected:.0f}%" if projected is not None else ""))
    if band and band.get("point_usd") and band.get("low_usd") is not None and band.get("high_usd") is not None:
        spread = (band["high_usd"] - band["low_usd"]) / 2 / band["point_usd"] * 100
        if spread > WIDE_RANGE_PCT:
            out.append(f"the 80% range is wide (about ±{spread:.0f}%)")
    return out
