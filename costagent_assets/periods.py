"""Which days a month's report covers, as of a date.

Cost data for a day is complete the day after, so a report made on ``as_of`` covers its month up to
``as_of - 1 day``; the weekly report is about the month that yesterday belongs to.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, timedelta


@dataclass(frozen=True)
class Period:
    """The days of ``month`` that a report as of ``as_of`` covers."""

    month: str  # "YYYY-MM"
    start: date
    end: date  # last day of the month
    through: date  # last day with data: min(end, as_of - 1)

    @property
    def days_in_month(self) -> int:
        return self.end.day

    @property
    def days_covered(self) -> int:
        return max(0, (self.through - self.start).days + 1)

    @property
    def complete(self) -> bool:
        return self.through >= self.end

    @property
    def label(self) -> str:
        return f"{calendar.month_name[self.start.month]} {self.start.year}"


def month_start(month: str) -> date:
    """First day of a "YYYY-MM" month."""
    year, mon = (int(x) for x in month.split("-"))
    return date(year, mon, 1)


def month_of(day: date) -> str:
    """The "YYYY-MM" month of a date."""
    return f"{day.year:04d}-{day.month:02d}"


def shift_month(month: str, delta: int) -> str:
    """The month ``delta`` months after ``month`` (negative for before)."""
    start = month_start(month)
    index = start.year * 12 + start.month - 1 + delta
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def months_between(first: str, last: str) -> list[str]:
    """Every month from ``first`` to ``last`` inclusive."""
    out, current = [], first
    while current <= last:
        out.append(current)
        current = shift_month(current, 1)
    return out


def period(month: str, as_of: date) -> Period:
    """The period of ``month`` that a report made on ``as_of`` covers."""
    start = month_start(month)
    end = date(start.year, start.month, calendar.monthrange(start.year, start.month)[1])
    through = min(end, as_of - timedelta(days=1))
    return Period(month=month, start=start, end=end, through=through)


def report_month(as_of: date) -> str:
    """The month a report made on ``as_of`` is about: the month of yesterday."""
    return month_of(as_of - timedelta(days=1))


def default_as_of(month: str, today: date) -> date:
    """As-of date for materializing ``month``: today for the current month, the day after its end for past months."""
    end = period(month, today).end
    return min(today, end + timedelta(days=1))
