"""From the analysis frames to the dicts the email templates render (one team, or the whole organisation).

Each team's context is built from rows filtered to that team's account alone, so nothing from
another account can reach its email.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TypeVar
from urllib.parse import quote

import polars as pl

from costagent_assets import forecast_confidence
from costagent_assets.anomaly_detection import alert_kind
from costagent_assets.budgets import DEFAULT_ALERT_PCTS, budget_status
from costagent_assets.delivery import SENT, Delivery, status_counts
from costagent_assets.isolation import UNAVAILABLE
from costagent_assets.optimization import KIND_LABELS
from costagent_assets.periods import Period, month_start, shift_month
from costagent_assets.reporting import format_usd_signed
from costagent_assets.teams.model import Team
from costagent_assets.warehouse.rollups import read_rollup
from costagent_assets.warehouse.store import Store, read_table

T = TypeVar("T")

# The trend chart covers up to a year; months before the first one with data are left out.
TREND_MONTHS = 12
# An alert's daily chart: five weeks, so a spike or step shows against about a month of ordinary days.
ALERT_CHART_DAYS = 35
ALERT_CHART_PX = 36

ACCOUNT_LABELS = {"openai": "OpenAI project", "anthropic": "Anthropic workspace"}

# An 80% range wider than a factor of this either side of the forecast tells a reader nothing ("$63 to
# $1,261,385"): the email says the forecast is too uncertain for a range instead (the confidence line says why).
USEFUL_RANGE_FACTOR = 3.0


def range_is_useful(point: float | None, low: float | None, high: float | None) -> bool:
    """Whether an 80% range is narrow enough to print: within USEFUL_RANGE_FACTOR of the point both ways."""
    if point is None or low is None or high is None or point <= 0:
        return low is not None and high is not None
    return high <= point * USEFUL_RANGE_FACTOR and low >= point / USEFUL_RANGE_FACTOR


def _rows_by_account(frame: pl.DataFrame | None) -> dict[str, list[dict]]:
    """account -> its rows as dicts, in the frame's order: one pass over every account's rows, so that a team's
    context is dict lookups rather than filters and sorts of a frame per team (5,000 teams a month)."""
    out: dict[str, list[dict]] = {}
    if frame is not None:
        for r in frame.iter_rows(named=True):
            out.setdefault(r["account_id"], []).append(r)
    return out


def _savings_by_account(optimization: pl.DataFrame | None, month: str) -> tuple[dict[str, dict], dict[str, list[dict]]]:
    """Each account's scan status (its first "account" record) and its findings, largest $ first: sorted once for
    the month rather than once per team (ties keep the stored order)."""
    if optimization is None or not optimization.height:
        return {}, {}
    rows = optimization.filter(pl.col("month") == month)
    status: dict[str, dict] = {}
    for r in rows.filter(pl.col("record") == "account").iter_rows(named=True):
        status.setdefault(r["account_id"], r)
    found = rows.filter(pl.col("record") == "finding").sort("monthly_savings_usd", descending=True, nulls_last=True,
                                                            maintain_order=True)
    return status, _rows_by_account(found)


def budget_context(
    team: Team,
    mtd: float | None,
    projected: float | None,
    alerts: pl.DataFrame | None = None,
    alert_pcts: Sequence[float] = DEFAULT_ALERT_PCTS,
) -> dict | None:
    """The team's budget as its email (and its AI evidence pack) shows it: % spent and projected, the status
    (``budgets.budget_status``) and the budget alerts that fired; None without a budget or data."""
    rows = alerts.filter(pl.col("kind") == "budget").iter_rows(named=True) if alerts is not None else ()
    return _budget(team, mtd, projected, rows, alert_pcts)


def _budget(team: Team, mtd: float | None, projected: float | None, alerts: Iterable[Mapping],
            alert_pcts: Sequence[float]) -> dict | None:
    """:func:`budget_context` from the account's anomaly rows as dicts (those of kind "budget" count)."""
    if not team.monthly_budget or mtd is None:
        return None
    # The budget alerts of the anomalies table (kind "budget"): actual and forecast, at the configured levels.
    alerts = budget_rows_as_shown(alerts, team, mtd, projected)
    fired = [
        {"basis": r["detector"].removeprefix("budget_"), "threshold_pct": r["budget_threshold_pct"],
         "amount_usd": r["current_usd"], "note": r["note"], "acknowledged": bool(r["acknowledged"]),
         "severity": r["severity"], "start_date": r["start_date"], "impact_usd": r["impact_usd"],
         "kind": "budget", "alerted": bool(r["alerted"])}
        for r in alerts if r["kind"] == "budget"
    ]
    budget = team.monthly_budget
    mtd_pct = mtd / budget * 100
    projected_pct = projected / budget * 100 if projected is not None else None
    status = budget_status(mtd_pct, projected_pct, alert_pcts)
    alert = next((a for a in fired if not a["acknowledged"]), None)
    return {"monthly_budget": team.monthly_budget, "mtd_pct": mtd_pct, "projected_pct": projected_pct, "status": status,
            "mtd_usd": mtd, "over_usd": max(mtd - team.monthly_budget, 0.0), "alerts": fired, "alert": alert,
            # What the subject line and the first screen say: over it, or projected past it (the alert's rule).
            "headline": "over" if status == "over" else "projected_over" if alert and alert["basis"] == "forecast"
            else None}


def budget_rows_as_shown(rows: Iterable[Mapping], team: Team, mtd: float | None,
                         projected: float | None) -> list[Mapping]:
    """An account's anomaly rows, its forecast budget alert restated from ``projected``: the anomalies stage raises
    it on the month's daily run rate, while the email and the admin report print the forecast as the month end
    ("Projected month end"), so the alert's dollars and note are those of the figure the reader sees beside it.
    Where the two agree, the stage's own note (with its crossing day) stays."""
    budget = team.monthly_budget
    if not budget or mtd is None or projected is None:
        return list(rows)
    shown = []
    for r in rows:
        if r["kind"] == "budget" and r["detector"] == "budget_forecast" and round(r["current_usd"]) != round(projected):
            r = {**r, "current_usd": projected, "change_usd": projected - budget,
                 "change_pct": projected / budget * 100 - 100, "impact_usd": max(projected - budget, 0.0), "note": (
                     f"Projected at ${projected:,.0f} by month end, "
                     + (f"${projected - budget:,.0f} over the ${budget:,.0f} budget" if projected > budget
                        else f"{_share(projected, budget)} of the ${budget:,.0f} budget")
                     + f" (spent {_share(mtd, budget)} so far).")}
        shown.append(r)
    return shown


def _share(usd: float, budget: float) -> str:
    """``usd`` as a whole percent of ``budget``; one decimal just under 100%, which is not yet "100%"."""
    pct = usd / budget * 100
    return f"{math.floor(pct * 10) / 10:.1f}%" if 99.5 <= pct < 100 else f"{pct:.0f}%"


def _available(rows: Sequence[Mapping] | None) -> bool:
    """True, or raises with the stage's note when the anomalies stage failed for the account (a row of
    kind "unavailable"): its email must not read "no anomalies"."""
    failed = next((r for r in rows or () if r["kind"] == UNAVAILABLE), None)
    if failed is not None:
        raise RuntimeError(failed["note"])
    return True


def _anomaly_rows(rows: Sequence[Mapping] | None) -> list[dict]:
    """The rows as the templates show them, with the alert model's fields (``alert_kind``, and for a budget
    row its ``basis`` and ``threshold_pct``) and the ``why`` of :func:`change_split`. ``rows`` come largest change
    first (``ReportFrames`` sorts the month's rows once)."""
    if rows is None:
        return []
    keys = ("service", "kind", "level", "current_usd", "previous_usd", "change_usd", "change_pct", "severity",
            "alerted", "impact_usd", "note", "start_date", "end_date", "acknowledged", "feedback", "drivers")
    return [
        {**{k: r[k] for k in keys}, "alert_kind": alert_kind(r["kind"], r["detector"]),
         "basis": (r["detector"] or "").removeprefix("budget_"), "threshold_pct": r["budget_threshold_pct"],
         "why": change_split(r)}
        for r in rows
    ]


# The usage / rate / mix split in a team lead's words. "Mix" is a usage type that was not there on one side
# of the comparison (anomaly_detection.split_usage_rate_mix): usage that started, or usage that stopped.
SPLIT_WORDS = {"usage": ("more usage", "less usage"), "rate": ("higher prices", "lower prices"),
               "mix": ("new kinds of usage", "usage that stopped")}
# Kinds whose dollars (impact_usd) are the excess over the usual daily cost, not the month-to-date change.
ABOVE_USUAL_KINDS = ("spike", "step")


def split_parts(usage: float | None, rate: float | None, mix: float | None) -> list[dict]:
    """The non-zero parts of a usage / rate / mix split, largest first: ``{"label": "more usage", "usd": 3900.0}``
    each. A part under half a cent would print as $0.00 and is left out; [] when the split is unknown."""
    if usage is None or rate is None or mix is None:
        return []
    parts = [{"label": SPLIT_WORDS[k][x < 0], "usd": x}
             for k, x in (("usage", usage), ("rate", rate), ("mix", mix)) if abs(x) >= 0.005]
    return sorted(parts, key=lambda p: -abs(p["usd"]))


def _driver_place(d: Mapping) -> str | None:
    """``USE1-BoxUsage:m5.large, us-east-1``: where a driver's dollars went; None for a service-level driver."""
    if not d.get("usage_type"):
        return None
    return ", ".join(x for x in (d["usage_type"], d.get("region")) if x)


def change_split(row: Mapping) -> dict | None:
    """Why an anomaly's dollars moved, from its usage / rate / mix split: None where the source gave no
    quantities (nothing is printed, never "$0").

    ``explains_usd`` is the amount the parts add up to (``impact_usd``: the month-to-date change, or for a
    spike or step the excess over the usual daily cost, ``above_usual``); ``parts`` is :func:`split_parts` of
    the whole anomaly; ``lines`` the usage types behind it, each with its own change and parts. One usage type
    that is the whole change is named beside the largest part instead of on a line of its own.
    """
    parts = split_parts(row.get("usage_change_usd"), row.get("rate_change_usd"), row.get("mix_change_usd"))
    if not parts:
        return None
    drivers = row.get("drivers") or []
    lines = [{"place": _driver_place(d), "change_usd": d["change_usd"],
              "parts": split_parts(d.get("usage_usd"), d.get("rate_usd"), d.get("mix_usd"))}
             for d in drivers if _driver_place(d)]
    lines = [line for line in lines if line["parts"]]
    if len(lines) == 1 and len(drivers) == 1:
        parts[0] = {**parts[0], "place": lines[0]["place"]}
        lines = []
    explains = row["impact_usd"] if row.get("impact_usd") is not None else row.get("change_usd")
    above_usual = row.get("kind") in ABOVE_USUAL_KINDS
    # Worded here, once, as plain text: the HTML template escapes it like any text, the text template prints it.
    return {"explains_usd": explains, "above_usual": above_usual, "parts": parts,
            "sentence": ("Why, compared with usual days: " if above_usual else "Why: ") + _parts_text(parts),
            "lines": [{**line, "text": f"{line['place']}: {_parts_text(line['parts'])}"} for line in lines]}


def _parts_text(parts: Sequence[Mapping]) -> str:
    """``more usage +$3,900 (USE1-BoxUsage:m5.large, us-east-1), higher prices +$220``."""
    return ", ".join(f"{p['label']} {format_usd_signed(p['usd'])}" + (f" ({p['place']})" if p.get("place") else "")
                     for p in parts)


def _daily_sums(daily: pl.DataFrame, charted: pl.DataFrame, through: date,
                days: int = ALERT_CHART_DAYS) -> dict[str, dict]:
    """account -> series -> day -> $ of the chart's ``days`` days to ``through``, for :func:`alert_chart`: the
    account total (under None) of each account of ``charted`` (its alerted or budget anomaly rows), and the
    series of each service with an alerted row. Summed once a month, for those series alone."""
    window = daily.filter(pl.col("account_id").is_in(charted["account_id"].unique().to_list())
                          & pl.col("date").is_between(through - timedelta(days=days - 1), through))
    services = charted.filter(pl.col("alerted") & (pl.col("level") == "service")).select("account_id", "service")
    out: dict[str, dict] = {}
    for account_id, day, usd in window.group_by("account_id", "date").agg(pl.col("cost_usd").sum()).rows():
        out.setdefault(account_id, {}).setdefault(None, {})[day] = usd
    by_service = window.join(services.unique(), on=["account_id", "service"], how="semi")
    for account_id, service, day, usd in by_service.group_by("account_id", "service", "date").agg(
            pl.col("cost_usd").sum()).rows():
        out[account_id].setdefault(service, {})[day] = usd
    return out


def alert_chart(by_day: Mapping[date, float], through: date, start: date | None, end: date | None,
                days: int = ALERT_CHART_DAYS) -> list[dict] | None:
    """The daily bars of one alert's series for the ``days`` days to ``through``, from its $ by day
    (:func:`_daily_sums`: a service's cost, or the account total). Each point has its ``date``, ``usd``, bar
    height ``h`` (px, 0 for a day without cost) and ``marked`` (from ``start`` to ``end``, or to ``through`` while
    it lasts); None without cost."""
    first = through - timedelta(days=days - 1)
    top = max(by_day.values(), default=0.0)
    if top <= 0:
        return None
    points = []
    for i in range(days):
        d = first + timedelta(days=i)
        usd = max(by_day.get(d, 0.0), 0.0)
        points.append({"date": d, "usd": usd, "h": max(round(usd / top * ALERT_CHART_PX), 1) if usd > 0 else 0,
                       "marked": start is not None and start <= d <= (end or through)})
    return points


def team_anomalies(rows: Sequence[Mapping] | None) -> list[Mapping] | None:
    """What a team's Alerts section lists: its services' rows and its whole-account alerts; its budget
    alert is shown from the budget context (one row, at the top)."""
    if rows is None:
        return None
    return [r for r in rows if r["level"] == "service"
            or (r["alerted"] and r["kind"] is not None and r["kind"] != "budget")]


class ReportFrames:
    """The analysis frames of one month, indexed by account for the per-team contexts."""

    def __init__(
        self,
        month: str,
        period: Period,
        mom_changes: pl.DataFrame,
        anomalies: pl.DataFrame,
        ai_insights: pl.DataFrame,
        generated_at: datetime,
        history: pl.DataFrame | None = None,
        dashboard_url_template: str = "",
        forecasts: pl.DataFrame | None = None,
        optimization: pl.DataFrame | None = None,
        budget_alert_pcts: Sequence[float] = DEFAULT_ALERT_PCTS,
        daily: pl.DataFrame | None = None,
    ):
        """``history``: ``mom_changes`` rows of earlier months (account level is enough), for the trend
        chart; ``dashboard_url_template``: the ``datadog_dashboard_url`` setting; ``optimization``: the
        ``optimization_opportunities`` rows (savings), optional; ``daily``: the daily rollup of this month and
        the previous one (all accounts), for each alert's daily chart, optional."""
        self.month, self.period, self.generated_at = month, period, generated_at
        # Each table is split by account once for the month, as dicts; a team's context only looks them up.
        mom = mom_changes.filter(pl.col("month") == month)
        self.accounts = {a: rows[0] for a, rows in _rows_by_account(mom.filter(pl.col("level") == "account")).items()}
        # Largest first; ties keep the stage's order (a stable sort of the month is a stable sort of each account).
        # The columns the email shows: at 5,000 accounts the month has about 75,000 service rows held as dicts.
        self.services = _rows_by_account(mom.filter(pl.col("level") == "service").sort(
            "current_mtd_usd", descending=True, maintain_order=True).select(
            "account_id", "service", "current_mtd_usd", "previous_same_period_usd", "change_usd", "change_pct", "is_new"))
        month_anomalies = anomalies.filter(pl.col("month") == month)
        self.anomalies = _rows_by_account(month_anomalies)
        self.anomalies_by_change = _rows_by_account(month_anomalies.sort(
            "change_usd", descending=True, nulls_last=True, maintain_order=True))
        self.insights = {a: rows[0] for a, rows in _rows_by_account(ai_insights.filter(pl.col("month") == month)).items()}
        self.trend_months = [shift_month(month, -i) for i in range(TREND_MONTHS - 1, 0, -1)]
        self.history = _history_by_account(history, self.trend_months)
        self.dashboard_url_template = dashboard_url_template
        self.forecasts = _rows_by_account(forecasts.filter(pl.col("service").is_null() & (pl.col("month") == month))
                                          if forecasts is not None else None)
        # The month's rows grouped by account in the order the accounts first appear (as a split by account was).
        self.optimization = (optimization.filter(pl.col("month") == month)
                             .with_columns(pl.int_range(pl.len()).min().over("account_id").alias("_first"))
                             .sort("_first", maintain_order=True).drop("_first")) if optimization is not None else None
        self._optimized = set(self.optimization["account_id"].to_list()) if optimization is not None else set()
        self._scan_status, self._findings = _savings_by_account(optimization, month)
        self.budget_alert_pcts = tuple(budget_alert_pcts)
        # Only an alerted row, or a budget alert, gets a daily chart (_add_charts): the other accounts' days are
        # not kept (at 5,000 accounts the two months' daily rollup is millions of rows). account -> series (a
        # service, or None for the account total) -> day -> $: the charts' sums, done once for the month.
        charted = month_anomalies.filter(pl.col("alerted") | (pl.col("kind") == "budget"))
        self.daily = _daily_sums(daily, charted, period.through) if daily is not None and daily.height else {}
        # account -> section -> why it could not be built (shown as "unavailable" to the team and the admins).
        self.unavailable: dict[str, dict[str, str]] = {}

    def section(self, account_id: str, name: str, build: Callable[[], T]) -> T | None:
        """``build()``, or None when it fails for this account: the failure is recorded in
        ``unavailable`` (the team's email and the admin report say so) and the other sections and
        accounts go on. One account's odd rows must never stop every team's email."""
        try:
            return build()
        except Exception as err:  # any failure of one section is reported, not raised
            self.unavailable.setdefault(account_id, {})[name] = f"{type(err).__name__}: {err}"
            return None

    def unavailable_rows(self, teams: Sequence[Team]) -> list[dict]:
        """The sections that could not be built, per team, for the admin report."""
        names = {t.aws_account_id: t.team_name for t in teams}
        return [{"team_name": names.get(a, "?"), "aws_account_id": a, "section": name, "error": why}
                for a in sorted(self.unavailable) for name, why in sorted(self.unavailable[a].items())]

    def _common(self) -> dict:
        p = self.period
        return {
            "month": self.month,
            "month_label": p.label,
            "through_date": p.through.isoformat(),
            "complete": p.complete,
            "generated_at": self.generated_at.strftime("%Y-%m-%d %H:%M UTC"),
        }

    def account_row(self, account_id: str) -> dict | None:
        """The account's ``mom_changes`` row of the month (level "account"), None without one. Not to be changed."""
        return self.accounts.get(account_id)

    def team_context(self, team: Team) -> dict:
        """The context of one team's report: only this account's rows."""
        account_id = team.aws_account_id
        acct = self.account_row(account_id) or {}
        no_data = not acct.get("has_data", False)
        services = self.services.get(account_id, []) if not no_data else []
        total = acct.get("current_mtd_usd") or 0.0
        insight = self.insights.get(account_id)
        all_anomalies = self.anomalies.get(account_id)
        anomalies = team_anomalies(all_anomalies)
        forecast = self.section(account_id, "forecast", lambda: self.forecast(account_id))
        # The SQL forecast, where there is one, is the projection everywhere (headline, budget, AI).
        if forecast and forecast["month_end"] and not self.period.complete:
            acct = {**acct, "projected_month_end_usd": forecast["month_end"]["point_usd"]}
        budget = None if no_data else self.section(account_id, "budget", lambda: _budget(
            team, acct.get("current_mtd_usd"), acct.get("projected_month_end_usd"), all_anomalies or (),
            self.budget_alert_pcts,
        ))
        if forecast and not no_data:
            forecast = {**forecast, "risks": forecast_confidence.risks(
                anomalies if anomalies is not None else [],
                [s["service"] for s in services if s.get("is_new")], budget,
                forecast["month_end"] or forecast["next_month"], self.period.through)}
        anomaly_rows = self.section(account_id, "anomalies", lambda: _anomaly_rows(
            _available(all_anomalies) and team_anomalies(self.anomalies_by_change.get(account_id)))) or []
        self.section(account_id, "alert charts", lambda: self._add_charts(account_id, anomaly_rows, budget))
        return {
            **self._common(),
            "team": {
                "team_name": team.team_name,
                "aws_account_id": account_id,
                "team_email": team.team_email,
                # What the id is: an OpenAI project or an Anthropic workspace is not an AWS account.
                "account_label": ACCOUNT_LABELS.get(team.source or "", "AWS account"),
            },
            "days_covered": self.period.days_covered,
            "days_in_month": self.period.days_in_month,
            "no_data": no_data,
            # None (unknown) stays None, shown as "n/a": never turned into $0.
            "headline": {
                "mtd_usd": acct.get("current_mtd_usd") or 0.0,
                "previous_same_period_usd": acct.get("previous_same_period_usd"),
                "change_usd": acct.get("change_usd"),
                "change_pct": acct.get("change_pct"),
                "previous_month_total_usd": acct.get("previous_month_total_usd"),
                "projected_month_end_usd": None if self.period.complete else acct.get("projected_month_end_usd"),
            },
            "services": [
                {
                    "service": s["service"],
                    "mtd_usd": s["current_mtd_usd"],
                    "previous_same_period_usd": s["previous_same_period_usd"],
                    "change_usd": s["change_usd"],
                    "change_pct": s["change_pct"],
                    "share_pct": s["current_mtd_usd"] / total * 100 if total else 0.0,
                }
                for s in services
            ],
            "anomalies": anomaly_rows,
            "insight": {
                "source": insight["source"] if insight else "deterministic",
                "summary": insight["summary"] if insight else "",
                "drivers": list(insight["drivers"] or []) if insight else [],
                "ai_note": insight["ai_note"] if insight else None,
                # What to do, ranked by $ a month: computed, reworded by Gemini where it was on.
                "recommendations": list(insight.get("recommendations") or []) if insight else [],
            },
            "budget": budget,
            "trend": self.section(account_id, "trend", lambda: self._trend(
                self.history.get(account_id, {}), acct if not no_data else {})) or [],
            "dashboard_url": dashboard_url(self.dashboard_url_template, team),
            "forecast": None if no_data else forecast,
            "savings": self.section(account_id, "savings", lambda: self.team_savings(account_id)),
            # Sections that failed for this account: named in the email rather than stopping it.
            "unavailable": sorted(self.unavailable.get(account_id, {})),
        }

    def _add_charts(self, account_id: str, rows: list[dict], budget: dict | None) -> None:
        """Give each alerted row, and the budget alert, its daily chart (``chart``): a service's own series, the
        account total for whole-account and budget alerts; a budget alert marks the month's days from its start."""
        daily, through = self.daily.get(account_id, {}), self.period.through
        for r in rows:
            if r["alerted"]:
                r["chart"] = alert_chart(daily.get(r["service"] if r["level"] == "service" else None, {}), through,
                                           r["start_date"], r["end_date"])
        alert = budget and budget["alert"]
        if alert:
            # Over budget: from the day it went over. Projected over: the crossing is still ahead (its date is
            # after the data), so the month's days so far, the spend that is heading over, are marked.
            start = alert["start_date"] if alert["start_date"] and alert["start_date"] <= through else None
            alert["chart"] = alert_chart(daily.get(None, {}), through, start or month_start(self.month), None)

    def team_savings(self, account_id: str) -> dict | None:
        """The account's savings for its email: the scan's status, the total, and the top 3 by $/month.
        None when the account was not scanned this month (scanning off, a backfill): the admins are told
        why, the team's email has no section to explain it."""
        if account_id not in self._optimized:
            return None
        s = self._scan_status.get(account_id, {})
        if s.get("scan_status") == "not_scanned":
            return None
        found = self._findings.get(account_id, [])
        return {
            "status": s.get("scan_status", "ok"),
            "reason": s.get("reason"),
            "total_monthly_usd": s.get("monthly_savings_usd"),
            "count": len(found),
            "top": [_finding_row(r) for r in found[:TOP_SAVINGS]],
        }

    def org_savings(self, teams: Sequence[Team]) -> dict | None:
        """The organisation's addressable savings: the total, by kind, the largest findings (ranked by $
        across accounts) and the accounts that could not be scanned, with why. None without a scan."""
        names = {t.aws_account_id: t.team_name for t in teams}
        if not self._optimized & names.keys():
            return None
        rows = self.optimization.filter(pl.col("account_id").is_in(list(names)))
        status = rows.filter(pl.col("record") == "account")
        found = rows.filter(pl.col("record") == "finding").sort(["monthly_savings_usd", "account_id", "rank"],
                                                                descending=[True, False, False], nulls_last=True)
        by_kind = (
            found.group_by("kind").agg(pl.len().alias("count"), pl.col("monthly_savings_usd").sum().alias("usd"))
            .sort("usd", descending=True).to_dicts() if found.height else []
        )
        problems = status.filter(pl.col("scan_status") != "ok").sort("scan_status", "account_id")
        return {
            "total_monthly_usd": float(found["monthly_savings_usd"].sum() or 0.0) if found.height else 0.0,
            "findings": found.height,
            "accounts_with_findings": found["account_id"].n_unique() if found.height else 0,
            "accounts_scanned": status.filter(pl.col("scan_status").is_in(["ok", "partial"])).height,
            "accounts": status.height,
            "api_calls": int(status["api_calls"].sum() or 0) if status.height else 0,
            "by_kind": [{"label": KIND_LABELS.get(k["kind"], k["kind"]), "count": k["count"], "usd": k["usd"]}
                        for k in by_kind],
            "ranked": [{**_finding_row(r), "team_name": names.get(r["account_id"]), "aws_account_id": r["account_id"]}
                       for r in found.head(ORG_SAVINGS_SHOWN).iter_rows(named=True)],
            "groups": savings_groups(found, names),
            "not_scanned": [{"team_name": names.get(r["account_id"]), "aws_account_id": r["account_id"],
                             "status": r["scan_status"], "reason": r["reason"]}
                            for r in problems.iter_rows(named=True)],
        }

    def org_budgets(self, teams: Sequence[Team], accounts: Sequence[Mapping]) -> list[dict]:
        """Every team with a budget and data: % used, projected %, the $ over (actual, else projected) and
        its budget alert; over budget first, then projected over, each by the dollars, then the rest by % used."""
        by_id = {a["aws_account_id"]: a for a in accounts}
        rows = []
        for team in teams:
            a = by_id.get(team.aws_account_id)
            if not team.monthly_budget or a is None or a["no_data"]:
                continue
            b = _budget(team, a["mtd_usd"], a["projected_month_end_usd"], self.anomalies.get(team.aws_account_id, ()),
                        self.budget_alert_pcts)
            projected = a["projected_month_end_usd"]
            rows.append({**b, "team_name": team.team_name, "aws_account_id": team.aws_account_id,
                         "projected_usd": projected,
                         "projected_over_usd": max(projected - team.monthly_budget, 0.0) if projected is not None else 0.0})
        rank = {"over": 0, "projected_over": 1}
        rows.sort(key=lambda r: (rank.get(r["headline"], 2), -(r["over_usd"] or r["projected_over_usd"]), -r["mtd_pct"]))
        return rows

    def projected(self, account_id: str, acct: Mapping) -> float | None:
        """The month end: the SQL forecast where there is one, else the run-rate projection."""
        forecast = self.section(account_id, "forecast", lambda: self.forecast(account_id))
        if forecast and forecast["month_end"]:
            return forecast["month_end"]["point_usd"]
        return acct.get("projected_month_end_usd")

    def next_month(self, account_id: str) -> float | None:
        """The account's next-month forecast (point), None without one."""
        forecast = self.section(account_id, "forecast", lambda: self.forecast(account_id))
        return forecast["next_month"]["point_usd"] if forecast and forecast["next_month"] else None

    def forecast(self, account_id: str) -> dict | None:
        """The account's forecasts (month end while the month runs, next month) and its track record."""
        rows = self.forecasts.get(account_id)
        if not rows:
            return None
        by_horizon = {r["horizon"]: r for r in rows}
        if any(r["method"] == UNAVAILABLE for r in by_horizon.values()):
            raise RuntimeError("the forecasts stage could not compute it for this account (see that run's log)")
        month_end, next_month = by_horizon.get("month_end"), by_horizon.get("next_month")
        any_row = month_end or next_month

        def band(row: dict | None) -> dict | None:
            if row is None or row["point_usd"] is None:
                return None
            return {"point_usd": row["point_usd"], "low_usd": row["low_usd"], "high_usd": row["high_usd"],
                    "target_month": row["target_month"], "label": f"{month_start(row['target_month']):%B %Y}",
                    "range_shown": range_is_useful(row["point_usd"], row["low_usd"], row["high_usd"])}

        return {
            "month_end": None if self.period.complete else band(month_end),
            "next_month": band(next_month),
            "method": any_row["method"],
            "history_days": any_row["history_days"],
            "growth_pct_per_month": any_row["growth_pct_per_month"],
            "track_record": track_record_sentence(any_row["track_months"], any_row["track_inside"],
                                                  any_row["track_mape_pct"]),
            "interval_note": INTERVAL_NOTES.get(any_row.get("interval_basis")),
            # How sure, in words (risks are added by team_context, which has the anomalies and budget).
            "confidence": forecast_confidence.confidence(any_row["history_days"], any_row["track_months"],
                                                         any_row["track_mape_pct"]),
            "risks": [],
        }

    def _trend(self, past: Mapping[str, float], current: Mapping) -> list[dict]:
        """Month totals of the trend months that have data (a gap inside the range shows as missing),
        then this month: its month to date and, while incomplete, the projected month end."""
        months = self.trend_months
        first = next((i for i, m in enumerate(months) if m in past), len(months))
        points = [
            {"month": m, "label": f"{month_start(m):%b}", "usd": past.get(m), "projected_usd": None,
             "current": False}
            for m in months[first:]
        ]
        projected = None if self.period.complete else current.get("projected_month_end_usd")
        points.append({
            "month": self.month, "label": f"{month_start(self.month):%b}",
            "usd": current.get("current_mtd_usd"), "projected_usd": projected, "current": True,
        })
        return points

    def admin_context(self, teams: Sequence[Team]) -> dict:
        """The organisation's report: every account ranked by $ change, alerts, accounts with no data."""
        accounts, no_data, alerts, acknowledged, budget_alerts = [], [], [], [], []
        for team in teams:
            acct = self.account_row(team.aws_account_id) or {}
            has = acct.get("has_data", False)
            projected = self.projected(team.aws_account_id, acct) if has else None
            an = self.anomalies_by_change.get(team.aws_account_id)
            if an is not None:
                an = budget_rows_as_shown(an, team, acct.get("current_mtd_usd"), projected)
                # Marked by an admin: shown apart, no longer counted as alerts.
                for row in _anomaly_rows([r for r in an if r["acknowledged"]]):
                    acknowledged.append({**row, "team_name": team.team_name, "aws_account_id": team.aws_account_id})
                for row in _anomaly_rows([r for r in an if r["kind"] == "budget" and r["alerted"]]):
                    budget_alerts.append({**row, "team_name": team.team_name, "aws_account_id": team.aws_account_id})
            # Every alert of the account (services, whole account, budget): the same count as its email's.
            account_alerts = [r for r in an if r["alerted"]] if an is not None else None
            for row in _anomaly_rows(account_alerts):
                alerts.append({**row, "team_name": team.team_name, "aws_account_id": team.aws_account_id})
            if not has:
                no_data.append({"team_name": team.team_name, "aws_account_id": team.aws_account_id})
            accounts.append(
                {
                    "team_name": team.team_name,
                    "aws_account_id": team.aws_account_id,
                    "mtd_usd": acct.get("current_mtd_usd") if has else None,
                    "previous_same_period_usd": acct.get("previous_same_period_usd") if has else None,
                    "change_usd": acct.get("change_usd") if has else None,
                    "change_pct": acct.get("change_pct") if has else None,
                    "projected_month_end_usd": projected,
                    "alerts": len(account_alerts) if account_alerts is not None else 0,
                    "no_data": not has,
                    "next_month_usd": self.next_month(team.aws_account_id) if has else None,
                    "dashboard_url": dashboard_url(self.dashboard_url_template, team),
                }
            )
        accounts.sort(key=lambda a: (a["no_data"], -(a["change_usd"] or 0.0)))
        budgets = self.section("(organisation)", "budgets", lambda: self.org_budgets(teams, accounts)) or []
        # Needs action first: the most dollars at stake at the top.
        alerts.sort(key=lambda a: (-(a["impact_usd"] or 0.0), a["team_name"], a["service"] or ""))
        with_data = [a for a in accounts if not a["no_data"]]
        mtd = sum(a["mtd_usd"] for a in with_data)
        # Accounts whose previous month was never loaded have no comparison; they count in the month
        # to date but not in the change.
        comparable = [a for a in with_data if a["previous_same_period_usd"] is not None]
        prev = sum(a["previous_same_period_usd"] for a in comparable)
        change = sum(a["change_usd"] for a in comparable)
        return {
            **self._common(),
            "totals": {
                "accounts": len(accounts),
                "accounts_with_data": len(with_data),
                "mtd_usd": mtd,
                "previous_same_period_usd": prev,
                "change_usd": change,
                "change_pct": change / prev * 100 if prev else None,
                "comparable_accounts": len(comparable),
                "projected_month_end_usd": None
                if self.period.complete
                else sum(a["projected_month_end_usd"] or 0.0 for a in with_data),
                "alerted_anomalies": len(alerts),
                # Next month: the sum of the accounts' SQL forecasts, and how many accounts have one.
                "next_month_usd": sum(a["next_month_usd"] for a in with_data if a["next_month_usd"] is not None),
                "next_month_accounts": sum(a["next_month_usd"] is not None for a in with_data),
                "next_month_label": f"{month_start(shift_month(self.month, 1)):%B %Y}",
            },
            "accounts": accounts,
            "anomalies": alerts,
            "acknowledged_anomalies": acknowledged,
            "budget_alerts": budget_alerts,
            "budgets": budgets,
            "no_data_accounts": no_data,
            "unavailable": self.unavailable_rows(teams),
            "trend": self._trend(
                _sum_months(self.history, {t.aws_account_id for t in teams}),
                {"current_mtd_usd": mtd if with_data else None,
                 "projected_month_end_usd": sum(a["projected_month_end_usd"] or 0.0 for a in with_data)},
            ),
            "savings": self.org_savings(teams),
            # Filled in by the emails asset once the team emails are out; other stages add run_cost.
            "delivery": None,
            "run_cost": None,
        }


# What the 80% range rests on (forecast.interval_factors), said where it is less than the account's own record.
INTERVAL_NOTES = {
    "organisation": "This account has too few past forecasts of its own yet: its range is as wide as the "
                    "organisation's past errors.",
    "model": "Too few past forecasts to check the range against yet: too little history to be sure of it.",
}


def track_record_sentence(months: int | None, inside: int | None, mape: float | None) -> str | None:
    """The forecast's track record in one sentence; None without backtested months. A track record whose
    months all had $0 actuals (an account that stopped spending) has no % error: it says so."""
    if not months:
        return None
    error = f"typical error {mape:.1f}%" if mape is not None else "no % error to measure (no spend in those months)"
    return (f"Over the last {months} month{'s' if months != 1 else ''}, the actual fell inside our range "
            f"{inside or 0} time{'s' if inside != 1 else ''}; {error}.")


TOP_SAVINGS = 3  # a team email's savings: the three largest
GROUP_EXAMPLES = 3  # a group of near-identical findings names its largest three


def savings_groups(found: pl.DataFrame, names: Mapping[str, str]) -> list[dict]:
    """The findings grouped by kind ("7 Savings Plan purchases, $X a month"), the largest total first; each
    group with its count, total, accounts and largest findings. A kind with one finding is that finding."""
    if not found.height:
        return []
    groups = []
    for (kind,), rows in found.partition_by("kind", as_dict=True).items():
        # Ties (the demo's many $560.64 idle instances) by account: the same email whatever order the rows came in.
        rows = rows.sort(["monthly_savings_usd", "account_id", "resource_id"], descending=[True, False, False],
                         nulls_last=True)
        top = [{**_finding_row(r), "team_name": names.get(r["account_id"]), "aws_account_id": r["account_id"]}
               for r in rows.head(GROUP_EXAMPLES).iter_rows(named=True)]
        groups.append({"kind": kind, "label": KIND_LABELS.get(kind, kind), "count": rows.height,
                       "usd": float(rows["monthly_savings_usd"].sum() or 0.0),
                       "accounts": rows["account_id"].n_unique(), "top": top})
    return sorted(groups, key=lambda g: (-g["usd"], g["kind"]))
ORG_SAVINGS_SHOWN = 15  # the admin report's ranked list


def _finding_row(r: Mapping) -> dict:
    return {"label": KIND_LABELS.get(r["kind"], r["kind"]), "kind": r["kind"], "resource_id": r["resource_id"],
            "name": r["name"], "region": r["region"], "size": r["size"], "suggested": r["suggested"],
            "evidence": r["evidence"], "action": r["action"], "monthly_savings_usd": r["monthly_savings_usd"],
            "basis": r["estimate_basis"]}


def teams_by_account(teams: Sequence[Team]) -> Mapping[str, Team]:
    """The registry indexed by account id."""
    return {t.aws_account_id: t for t in teams}


def trend_months(month: str) -> list[str]:
    """The months a report on ``month`` reads ``mom_changes`` for: the year before it, and itself."""
    return [shift_month(month, -i) for i in range(TREND_MONTHS - 1, -1, -1)]


def report_frames(
    month: str,
    period: Period,
    tables: Mapping[str, pl.DataFrame],
    *,
    generated_at: datetime,
    dashboard_url_template: str,
    budget_alert_pcts: Sequence[float] = DEFAULT_ALERT_PCTS,
    daily: pl.DataFrame | None = None,
) -> ReportFrames:
    """The frames of one month's reports, for the emails stage and ``costagent preview`` alike.

    ``tables`` holds the analysis tables by asset name: ``mom_changes`` (with the months of
    :func:`trend_months` for the trend chart), ``anomalies``, ``ai_insights``, ``forecasts`` and
    ``optimization_opportunities``; ``daily`` the daily rollup of ``month`` and the month before (for the
    alerts' daily charts, as :func:`alert_chart_daily` reads it).
    """
    mom = tables["mom_changes"]
    return ReportFrames(
        month, period, mom, tables["anomalies"], tables["ai_insights"], generated_at=generated_at,
        history=mom.filter(pl.col("level") == "account"), dashboard_url_template=dashboard_url_template,
        forecasts=tables["forecasts"], optimization=tables["optimization_opportunities"],
        budget_alert_pcts=budget_alert_pcts, daily=daily,
    )


def alert_chart_daily(store: Store, month: str) -> pl.DataFrame | None:
    """The daily rollup of ``month`` and the month before, all accounts, for the alerts' daily charts: two
    reads per report month, not one per team; None when neither month has costs."""
    frames = [read_rollup(store, "daily", m) for m in (shift_month(month, -1), month)]
    frames = [f.select("account_id", "service", "date", "cost_usd") for f in frames if f.height]
    return pl.concat(frames) if frames else None


def dashboard_url(template: str, team: Team) -> str | None:
    """The team's dashboard link from the URL template, values URL-encoded; None without a template."""
    if not template:
        return None
    return template.format(
        account_id=quote(team.aws_account_id, safe=""), team_name=quote(team.team_name, safe="")
    )


def _history_by_account(history: pl.DataFrame | None, months: Sequence[str]) -> dict[str, dict[str, float]]:
    """account -> month -> the month's total (month to date for a month still running when stored)."""
    if history is None or history.height == 0:
        return {}
    rows = history.filter(
        (pl.col("level") == "account") & pl.col("has_data") & pl.col("month").is_in(list(months))
    ).select("account_id", "month", "current_mtd_usd")
    out: dict[str, dict[str, float]] = {}
    for account_id, month, usd in rows.iter_rows():
        out.setdefault(account_id, {})[month] = usd
    return out


def _sum_months(history: Mapping[str, Mapping[str, float]], accounts: set[str]) -> dict[str, float]:
    totals: dict[str, float] = {}
    for account_id, months in history.items():
        if account_id in accounts:
            for month, usd in months.items():
                totals[month] = totals.get(month, 0.0) + usd
    return totals


STATUS_TEXT = {
    "delivered": "delivered",
    "already_sent": "already sent by an earlier run",
    "failed": "refused by the mail server (permanent, not retried)",
    "failed_earlier": "refused by the mail server in an earlier run (not retried)",
    "deferred": "not accepted yet (temporary errors); the next run retries",
    "unconfirmed": "outcome unknown (the run stopped while sending); not re-sent automatically",
}


def delivery_summary(mode: str, deliveries: Sequence[Delivery], teams: Sequence[Team]) -> dict:
    """The admin report's view of the team emails: counts per status and every one that needs a look."""
    names = {t.aws_account_id: t.team_name for t in teams}
    problems = [
        {
            "team_name": names.get(d.key.subject, "?"),
            "aws_account_id": d.key.subject,
            "recipient": d.key.recipient,
            "status": d.status,
            "status_text": STATUS_TEXT.get(d.status, d.status),
            "detail": d.detail,
        }
        for d in deliveries
        if d.status not in (SENT, "already_sent")
    ]
    counts = status_counts(deliveries)
    return {
        "mode": mode,
        "total": len(deliveries),
        "ok": counts[SENT] + counts["already_sent"],
        "counts": counts,
        "labels": {k: STATUS_TEXT[k] for k in counts},
        "problems": sorted(problems, key=lambda p: (p["status"], p["team_name"], p["aws_account_id"])),
        "by_account": {d.key.subject: d.status for d in deliveries},
    }


def run_cost(ai: Mapping | None, store: Path | Store, month: str, run_id: str) -> dict | None:
    """What this run cost, for the admin report: the cost source's API calls (and $, when it has a price)
    from ``source_usage``, and the AI stage's tokens and $ (``ai``, from ``insights.history.admin_ai_context``).
    A figure nobody recorded is left out rather than shown as 0; None when nothing was recorded."""
    usage = read_table(store, "source_usage", [month]).filter(pl.col("run_id") == run_id)
    cost: dict = {}
    if usage.height:
        cost["source_api_calls"] = int(usage["requests"].sum() or 0)
        if usage["cost_usd"].null_count() == 0:
            cost["source_usd"] = float(usage["cost_usd"].sum())
    if ai:
        cost["ai_tokens"] = int(ai.get("input_tokens") or 0) + int(ai.get("output_tokens") or 0)
        if ai.get("cost_usd") is not None:
            cost["ai_usd"] = float(ai["cost_usd"])
    return cost or None
