"""Whether a month's source data are complete enough to report as fact, per account.

A source can answer with fewer days than asked (Datadog returns null points while its cost data lag,
Cost Explorer's last days are estimated, a FOCUS export may stop early) without any error. A report built
on those rows would compare 10 days of this month with 22 days of the last one and mail the result as a
fall in spend. So before a team email is built, each account's days with data are compared with the days
the report claims (``Period``): see :func:`account_coverage` and :func:`report_basis`.

What a team report can be built on (its *basis*):

- ``complete``: a row for every day of the period that the account has data for (days before its first
  day with data count as "not yet created", as for a new account);
- ``no_data``: nothing at all came back; the email says so and shows no figure. Never final: a later run
  of the same report date that finds the data sends the report, marked as a correction;
- ``waiting``: data end early or have gaps, and the deadline (``incomplete_data_wait_days`` after the
  report date) has not passed: the email is held, a rerun of the report date sends it;
- ``incomplete``: as ``waiting`` but past the deadline: the email goes out with the real data-through date
  and the number of missing days in its headline, and none of the figures built on the missing days (the
  change against last month, projections, forecasts, alerts, AI text). A later complete run corrects it.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta

import polars as pl

from costagent_assets.periods import Period

COMPLETE, NO_DATA, WAITING, INCOMPLETE = "complete", "no_data", "waiting", "incomplete"
# Reports built on these are provisional: a later run of the same report date with complete data corrects them.
PROVISIONAL = frozenset({NO_DATA, INCOMPLETE})


@dataclass(frozen=True)
class Coverage:
    """Which days of the report's period one account has data for."""

    account_id: str
    period_through: date  # the last day the report claims
    first_day: date | None  # first day with data in the period
    last_day: date | None  # last day with data in the period
    days_with_data: int
    missing_days: int  # days from the first day with data to the period's end without a row
    contiguous_through: date | None = None  # last day of the unbroken run of days from the first one

    @property
    def no_data(self) -> bool:
        return self.days_with_data == 0

    @property
    def complete(self) -> bool:
        return not self.no_data and self.missing_days == 0

    @property
    def data_through(self) -> date | None:
        """The last day up to which every day has data (from the first one): what a report may claim."""
        if self.first_day is None:
            return None
        return self.period_through if self.complete else self.contiguous_through

    def describe(self) -> str:
        """``data through 2026-11-10, 12 days missing`` (or ``no data``)."""
        if self.no_data:
            return "no data"
        if self.complete:
            return f"data through {self.period_through}"
        return f"data through {self.data_through}, {self.missing_days} day{'s' if self.missing_days != 1 else ''} missing"


def account_coverage(daily: pl.DataFrame, period: Period, accounts: Iterable[str]) -> dict[str, Coverage]:
    """Each account's coverage of ``period`` from rows with ``account_id`` and ``date`` (raw costs or the
    daily rollup; any other columns are ignored). Accounts without a row get a ``no data`` coverage."""
    days = (
        daily.filter(pl.col("date").is_between(period.start, period.through))
        .select("account_id", "date").unique()
        if daily.height else pl.DataFrame(schema={"account_id": pl.String, "date": pl.Date})
    )
    by_account: dict[str, list[date]] = {}
    for account_id, day in days.sort("account_id", "date").iter_rows():
        by_account.setdefault(account_id, []).append(day)
    out = {}
    for account_id in accounts:
        got = by_account.get(account_id, [])
        if not got:
            out[account_id] = Coverage(account_id, period.through, None, None, 0, 0)
            continue
        expected = (period.through - got[0]).days + 1
        out[account_id] = Coverage(
            account_id, period.through, got[0], got[-1], len(got), expected - len(got), _contiguous_through(got)
        )
    return out


def _contiguous_through(days: list[date]) -> date:
    """The last day of the unbroken run of days that starts at the first one (``days`` sorted, unique)."""
    through = days[0]
    for day in days[1:]:
        if day != through + timedelta(days=1):
            break
        through = day
    return through


def report_basis(coverage: Coverage, report_date: date, today: date, wait_days: int) -> str:
    """What a team report on ``coverage`` may be built on (see the module docstring): complete, no data,
    held (``waiting``) until ``wait_days`` after ``report_date``, then ``incomplete``."""
    if coverage.no_data:
        return NO_DATA
    if coverage.complete:
        return COMPLETE
    return WAITING if today < report_date + timedelta(days=wait_days) else INCOMPLETE


def retry_date(report_date: date, wait_days: int) -> date:
    """When a held report goes out anyway, marked incomplete."""
    return report_date + timedelta(days=wait_days)


def mark_incomplete(ctx: Mapping, coverage: Coverage) -> dict:
    """A team context whose figures stop at the real data-through date: the headline says so, and every
    figure that the missing days would change is dropped (the comparison with the same days of last month,
    the projection, the forecast, alerts, the budget's projection and the AI text), never shown as fact."""
    ctx = dict(ctx)
    headline = dict(ctx["headline"])
    headline.update(previous_same_period_usd=None, change_usd=None, change_pct=None, projected_month_end_usd=None)
    if coverage.last_day == coverage.data_through:
        # Only the last days are missing: the period shown ends where the data end.
        ctx.update(through_date=coverage.data_through.isoformat(),
                   days_covered=coverage.data_through.day)
    ctx.update(
        headline=headline,
        data_gap={"data_through": coverage.data_through.isoformat(), "missing_days": coverage.missing_days,
                  "claimed_through": coverage.period_through.isoformat(), "text": coverage.describe()},
        forecast=None,
        anomalies=[],
        budget=None,
        trend=[{**p, "projected_usd": None} for p in ctx.get("trend") or []],
        insight={"source": "deterministic", "summary": "", "drivers": [],
                 "ai_note": "No explanation this week: the cost source's data for this account are incomplete."},
        services=[{**s, "previous_same_period_usd": None, "change_usd": None, "change_pct": None}
                  for s in ctx.get("services") or []],
    )
    return ctx


def correction_of(earlier_basis: str, earlier_through: str | None) -> dict:
    """What a correction's banner says about the report it replaces."""
    if earlier_basis == NO_DATA:
        said = "said no cost data had been received for this account"
    else:
        said = f"was built on incomplete data (through {earlier_through})"
    return {"earlier_basis": earlier_basis, "text": f"This corrects the report sent earlier for this week, which {said}."}


# mom_changes figures that compare with the same days of last month or project the month: wrong when days are missing.
_COMPARISONS = ("previous_same_period_usd", "change_usd", "change_pct", "projected_month_end_usd")


def without_missing_days(tables: Mapping[str, pl.DataFrame], month: str,
                         accounts: Collection[str]) -> dict[str, pl.DataFrame]:
    """The report tables with nothing built on missing days for ``accounts`` in ``month``: their comparisons
    and projections in ``mom_changes`` become unknown (null, shown as n/a, left out of the admin totals'
    change), and their alerts and forecasts are left out. Applied at the stage, before any report is
    built, so the team and admin reports agree; the analysis stages themselves are unchanged."""
    if not accounts:
        return dict(tables)
    ids = list(accounts)
    hit = (pl.col("month") == month) & pl.col("account_id").is_in(ids)
    out = dict(tables)
    mom = tables["mom_changes"]
    out["mom_changes"] = mom.with_columns(
        [pl.when(hit).then(None).otherwise(pl.col(c)).alias(c) for c in _COMPARISONS if c in mom.columns])
    for name in ("anomalies", "forecasts"):
        if name in tables and tables[name].height:
            out[name] = tables[name].filter(~hit)
    return out


def incomplete_accounts(gaps: Mapping[str, Coverage], team_names: Mapping[str, str]) -> list[dict]:
    """The admin report's list of registered accounts with missing days: team, account, what is missing."""
    return [{"team_name": team_names[a], "aws_account_id": a, "text": c.describe()}
            for a, c in sorted(gaps.items()) if a in team_names]
