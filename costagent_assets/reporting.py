"""Render the weekly cost emails (team report, admin report) and wrap them as MIME messages.

Pure module: jinja2 and the standard library ``email`` package only; sending is the SMTP resource's job.

The templates live in ``reports/templates``. ``$COSTAGENT_TEMPLATES``, when set, is searched first, so an
installation can override one template and keep the bundled ones for the rest. HTML templates render with
autoescape on; ``.txt`` templates render with autoescape off (plain text is never interpreted as markup).
Both use ``StrictUndefined`` and refuse to print a bare ``None``, so a missing field or a stray None fails the
render instead of reaching a reader as a blank or the word "None".
"""

from __future__ import annotations

import binascii
import calendar
import csv
import email.generator
import email.parser
import email.policy
import email.quoprimime
import email.utils
import io
import math
import os
import random
import re
import sys
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal
from email.message import EmailMessage
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2

from costagent_assets.shipped import shipped_path
from costagent_assets.validation import HEADER_BREAK, encoded_word_problem

# In a checkout: reports/templates/; in an installed wheel: the copy inside the package.
TEMPLATES_DIR = shipped_path("reports/templates")

# ASCII hyphen-minus, not U+2212: figures pasted into a spreadsheet must still parse as numbers, and
# subjects stay pure ASCII (no RFC 2047 encoded words) whenever the team name is.
MINUS = "-"
NOT_AVAILABLE = "n/a"
# Cost language: spend going up is bad news.
INCREASE_COLOR = "#b42318"
DECREASE_COLOR = "#067647"
NEUTRAL_COLOR = "#475467"
SERVICES_SHOWN = 10
SUBJECT_NAME_MAX = 80

_CENT = Decimal("0.01")
_UNIT = Decimal("1")
_TENTH = Decimal("0.1")


@dataclass(frozen=True)
class RenderedEmail:
    """One email, rendered: the subject line and both alternatives of the body."""

    subject: str
    html: str
    text: str


def _check_number(x: Any) -> None:
    if isinstance(x, jinja2.Undefined):
        str(x)  # StrictUndefined raises UndefinedError, naming the missing field
    if isinstance(x, bool) or not isinstance(x, (int, float, Decimal)):
        raise TypeError(f"expected a number, got {type(x).__name__}: {x!r}")


def _decimal(x: float) -> Decimal | None:
    """``x`` as a Decimal of its shortest repr (so 2.675 rounds like a person expects), None if not finite."""
    _check_number(x)
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return Decimal(repr(x)) if isinstance(x, float) else Decimal(x)


def _magnitude_usd(d: Decimal) -> str:
    """``$1,234`` or ``$12.34`` for a non-negative amount already rounded to cents."""
    if d >= 1000:
        return f"${d.quantize(_UNIT, ROUND_HALF_UP):,.0f}"
    return f"${d:,.2f}"


def _sign(d: Decimal, signed: bool) -> str:
    if d < 0:
        return MINUS
    return "+" if signed and d > 0 else ""


def _formatted(text, x: float | None, signed: bool) -> str:
    """``text(x, signed)`` (``_usd_text`` or ``_pct_text``) of a checked number; ``n/a`` for None."""
    if x is None:
        return NOT_AVAILABLE
    _check_number(x)
    return text(x, signed)


# A report prints most figures twice (HTML and text) and an organisation's reports share many: formatted once.
# typed=True keeps 1, 1.0 and Decimal(1) apart; equal numbers of one type always format alike.
@lru_cache(maxsize=65536, typed=True)
def _usd_text(x: float, signed: bool) -> str:
    d = _decimal(x)
    if d is None:
        return NOT_AVAILABLE
    d = d.quantize(_CENT, ROUND_HALF_UP)
    # Sign after rounding, so -0.001 is "$0.00" rather than "-$0.00".
    return _sign(d, signed) + _magnitude_usd(abs(d))


def format_usd(x: float | None) -> str:
    """Dollars: ``$12.34``, ``$12,346`` (cents dropped from $1,000), ``-$56.00``; ``n/a`` for None."""
    return _formatted(_usd_text, x, False)


def format_usd_signed(x: float | None) -> str:
    """A change in dollars: ``+$1,234``, ``-$56.00``, ``$0.00`` for no change; ``n/a`` for None."""
    return _formatted(_usd_text, x, True)


@lru_cache(maxsize=65536, typed=True)
def _pct_text(x: float, signed: bool) -> str:
    d = _decimal(x)
    if d is None:
        return NOT_AVAILABLE
    d = d.quantize(_TENTH, ROUND_HALF_UP)
    magnitude = abs(d)
    body = f"{magnitude.quantize(_UNIT, ROUND_HALF_UP):,.0f}" if magnitude >= 1000 else f"{magnitude:,.1f}"
    return _sign(d, signed) + body + "%"


def format_pct(x: float | None) -> str:
    """A share or ratio: ``12.3%`` (``1,234%`` from 1,000%); ``n/a`` for None."""
    return _formatted(_pct_text, x, False)


def format_pct_signed(x: float | None) -> str:
    """A change in percent: ``+12.3%``, ``-4.0%``, ``0.0%``; ``n/a`` for None (no comparison base)."""
    return _formatted(_pct_text, x, True)


def trend_color(x: float | None) -> str:
    """Text colour for a change: red for more spend, green for less, grey for none or unknown."""
    if x is not None:
        _check_number(x)
    if x is None or not math.isfinite(x) or round(x, 2) == 0:
        return NEUTRAL_COLOR
    return INCREASE_COLOR if x > 0 else DECREASE_COLOR


NEGLIGIBLE_PCT = 1.0  # a change smaller than this (+0.2%) is shown in grey: no alarm red for noise


def change_color(usd: float | None, pct: float | None = None) -> str:
    """:func:`trend_color`, grey when the change is under ``NEGLIGIBLE_PCT`` percent."""
    if pct is not None and math.isfinite(pct) and abs(pct) < NEGLIGIBLE_PCT:
        return NEUTRAL_COLOR
    return trend_color(usd)


def shares_meaningful(drivers: Sequence[Mapping[str, Any]]) -> bool:
    """Whether "share of change" means something: every driver moved the way the total did (each share in
    0..100%). Drivers that offset each other give 85.8% and -49.2% of a $211 change: left out."""
    shares = [d.get("share_of_change_pct") for d in drivers]
    return bool(shares) and all(s is not None and 0 <= s <= 100.05 for s in shares)


def bar_width(pct: float | None) -> int:
    """A CSS bar width in whole percent, 0..100; any non-zero share gets at least 1% so it stays visible."""
    if pct is not None:
        _check_number(pct)
    if pct is None or not math.isfinite(pct) or pct <= 0:
        return 0
    return max(1, min(100, round(pct)))


def _sum_known(values: Iterable[float | None]) -> float | None:
    """The sum, or None when any value is unknown (an unknown is never counted as $0)."""
    total = 0.0
    for value in values:
        if value is None:
            return None
        total += value
    return total


def top_services(services: Sequence[Mapping[str, Any]], limit: int = SERVICES_SHOWN) -> dict[str, Any]:
    """The first ``limit`` services (input is sorted by spend) and one summed row for the rest, or None.

    Done here rather than upstream so the full list stays in the context (the text part and the
    warehouse keep every service) and the email decides only what fits on a phone.
    """
    services = list(services)
    if len(services) == limit + 1:  # "Other services (1)" would hide a name to save no space
        limit += 1
    rest = services[limit:]
    other = None
    if rest:
        mtd = sum(s["mtd_usd"] for s in rest)
        previous = _sum_known(s["previous_same_period_usd"] for s in rest)
        other = {
            "count": len(rest),
            "mtd_usd": mtd,
            "previous_same_period_usd": previous,
            "change_usd": _sum_known(s["change_usd"] for s in rest),
            "change_pct": (mtd - previous) / previous * 100 if previous else None,
            "share_pct": sum(s["share_pct"] for s in rest),
        }
    return {"shown": services[:limit], "other": other}


def format_usd_compact(x: float | None) -> str:
    """A short amount for chart labels: ``$980``, ``$12k``, ``$1.2k``, ``$3.4M``; ``n/a`` for None."""
    d = None if x is None else _decimal(x)
    if d is None:
        return NOT_AVAILABLE
    magnitude = abs(d)
    sign = MINUS if d.quantize(_UNIT, ROUND_HALF_UP) < 0 else ""
    body = f"{magnitude.quantize(_UNIT, ROUND_HALF_UP)}"
    for unit, suffix in ((Decimal(1000), "k"), (Decimal(1_000_000), "M")):
        if magnitude < unit - unit / 2000:  # 999.5 is "$1k", 999,500 is "$1M"
            break
        scaled = magnitude / unit
        tenths = scaled.quantize(_TENTH, ROUND_HALF_UP)
        # One decimal below 10 ("$1.2k"), none above ("$12k"); "$1.0k" reads as "$1k".
        body = (f"{tenths}".removesuffix(".0") if tenths < 10 else f"{scaled.quantize(_UNIT, ROUND_HALF_UP)}") + suffix
    return f"{sign}${body}"


TREND_BAR_PX = 84  # height of the tallest bar of a trend chart


def trend_bars(points: Sequence[Mapping[str, Any]], height: int = TREND_BAR_PX) -> list[dict[str, Any]]:
    """Pixel heights of a trend chart's bars: ``h`` for the amount, ``h_rest`` for the projected rest of
    the current month (drawn lighter above it), scaled so the tallest is ``height``. A month without data
    gets ``missing`` and no bar; a month with data never disappears (at least 2 px)."""
    tops = [max(p["usd"] or 0.0, p.get("projected_usd") or 0.0) for p in points]
    peak = max(tops, default=0.0)
    bars = []
    for p in points:
        usd, projected = p["usd"], p.get("projected_usd")
        h = 0 if usd is None or peak <= 0 else max(2, round(max(usd, 0.0) / peak * height))
        top = 0 if projected is None or peak <= 0 else round(max(projected, 0.0) / peak * height)
        bars.append({**p, "h": h, "h_rest": max(0, top - h), "missing": usd is None})
    return bars


STACK_COLORS = ("#1570ef", "#f79009", "#12b76a", "#7a5af8", "#ee46bc")
STACK_OTHER_COLOR = "#98a2b3"


def other_services_label(count: int) -> str:
    """``Other services (6)``: one wording for the rest, in the bar, the table and the AI drivers alike."""
    return f"Other services ({count})"


def stack_segments(services: Sequence[Mapping[str, Any]], limit: int = len(STACK_COLORS)) -> list[dict[str, Any]]:
    """The service breakdown as one stacked bar: the top ``limit`` services and "Other", each with its
    share, a colour and a whole-percent width; the widths add up to exactly 100 (largest remainders)."""
    services = list(services)
    if len(services) == limit + 1:
        limit += 1
    colors = (*STACK_COLORS, STACK_OTHER_COLOR)
    segments = [
        {"name": s["service"], "share_pct": s["share_pct"], "color": color}
        for s, color in zip(services[:limit], colors, strict=False)
    ]
    rest = services[limit:]
    if rest:
        label = other_services_label(len(rest))
        segments.append({"name": label, "share_pct": sum(s["share_pct"] for s in rest), "color": STACK_OTHER_COLOR})
    total = sum(max(seg["share_pct"], 0.0) for seg in segments)
    if total <= 0:
        return []
    exact = [max(seg["share_pct"], 0.0) / total * 100 for seg in segments]
    widths = [math.floor(x) for x in exact]
    by_remainder = sorted(range(len(exact)), key=lambda i: exact[i] - widths[i], reverse=True)
    for i in by_remainder[: 100 - sum(widths)]:
        widths[i] += 1
    return [{**seg, "width": w} for seg, w in zip(segments, widths, strict=True)]


def paragraphs(text: str) -> list[str]:
    """Split prose on blank lines; the template escapes and wraps each piece."""
    return [p.strip() for p in re.split(r"\n\s*\n", text.strip()) if p.strip()]


def cell(value: Any, width: int, right: bool = False) -> str:
    """Fixed-width column for the plain-text part: truncated with an ellipsis, then padded."""
    s = one_line(str(value))
    if len(s) > width:
        s = s[: width - 1] + "…"
    return s.rjust(width) if right else s.ljust(width)


def one_line(value: str) -> str:
    """``value`` with every control or line-separator character turned into a space, runs collapsed."""
    # A printable string has none of those characters (isprintable is False for Cc, Cf, Zl and Zp): the
    # common case skips the per-character look-up, which was a third of rendering a report.
    cleaned = value if value.isprintable() else "".join(
        " " if unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") else ch for ch in value)
    return " ".join(cleaned.split())


@lru_cache(maxsize=256)
def _month_start(month: str) -> date:
    return datetime.strptime(month, "%Y-%m").date()


def period_label(month: str, days: int) -> str:
    """``1–22 November 2026``: the days of ``month`` a month-to-date figure covers."""
    start = _month_start(month)
    return f"1–{days} {start:%B %Y}"


def previous_period_label(month: str, days: int) -> str:
    """The same days of the previous month, clamped to its length (March 1–31 compares with all of February)."""
    start = _month_start(month)
    year, prev = (start.year, start.month - 1) if start.month > 1 else (start.year - 1, 12)
    days = min(days, calendar.monthrange(year, prev)[1])
    return f"1–{days} {date(year, prev, 1):%B %Y}"


def previous_month_label(month: str) -> str:
    """``October 2026`` for ``2026-11``."""
    start = _month_start(month)
    year, prev = (start.year, start.month - 1) if start.month > 1 else (start.year - 1, 12)
    return f"{date(year, prev, 1):%B %Y}"


def month_name(month: str) -> str:
    """``November 2026`` for ``2026-11``."""
    return f"{_month_start(month):%B %Y}"


def day_of_month(iso_date: str) -> int:
    """22 for ``2026-11-22``: how many days of the month a through-date covers."""
    return date.fromisoformat(iso_date).day


def _refuse_none(value: Any) -> Any:
    # A bare None in {{ }} would print "None" to a reader; formatted fields go through the filters above.
    if value is None:
        raise ValueError("template printed a None value; format it (usd, pct_signed...) or guard it with if")
    return value


def alert_when(a: Mapping[str, Any]) -> str | None:
    """What kind of alert and since when: ``Spike from 04 Nov (3 days)``, ``Step from 10 Nov (still
    elevated)``, ``New service from 05 Nov``, ``Month-to-date rise since 01 Nov``; None without a start date."""
    start, end = a.get("start_date"), a.get("end_date")
    if start is None:
        return None
    kind = a.get("kind")
    if kind in ("spike", "step") and end is not None:
        days = (end - start).days + 1
        label = "Spike" if kind == "spike" else "Step to a new level"
        return f"{label} from {start:%d %b} ({days} day{'s' if days != 1 else ''})"
    if kind == "new_service":
        return f"New service from {start:%d %b}"
    if kind == "increase":
        return f"Month-to-date rise since {start:%d %b}"
    if kind == "decrease":
        return f"Month-to-date fall since {start:%d %b}"
    return None


def budget_headline(budget: Mapping[str, Any] | None) -> str | None:
    """``Over budget, 163% of $240,000`` or ``Projected over budget, 130% of $240,000``, for the subject line
    and the first screen; None when the team is within its budget (or has none)."""
    if not budget or not budget.get("headline"):
        return None
    if budget["headline"] == "over":
        return f"Over budget, {format_pct(budget['mtd_pct'])} of {format_usd(budget['monthly_budget'])}"
    projected = budget.get("projected_pct")
    if projected is not None and projected >= 100:
        return f"Projected over budget, {format_pct(projected)} of {format_usd(budget['monthly_budget'])}"
    return f"Projected over its {format_usd(budget['monthly_budget'])} budget"


FILTERS = {
    "usd": format_usd,
    "usd_signed": format_usd_signed,
    "usd_compact": format_usd_compact,
    "trend_bars": trend_bars,
    "stack_segments": stack_segments,
    "pct": format_pct,
    "pct_signed": format_pct_signed,
    "trend_color": trend_color,
    "bar_width": bar_width,
    "top_services": top_services,
    "paragraphs": paragraphs,
    "cell": cell,
    "one_line": one_line,
}
GLOBALS = {
    "month_name": month_name,
    "period_label": period_label,
    "previous_period_label": previous_period_label,
    "previous_month_label": previous_month_label,
    "day_of_month": day_of_month,
    "change_color": change_color,
    "shares_meaningful": shares_meaningful,
    "other_services_label": other_services_label,
    "budget_headline": budget_headline,
    "alert_when": alert_when,
    "INCREASE_COLOR": INCREASE_COLOR,
    "DECREASE_COLOR": DECREASE_COLOR,
    "NEUTRAL_COLOR": NEUTRAL_COLOR,
}


def templates_search_path() -> list[str]:
    """``$COSTAGENT_TEMPLATES`` (if set) first, then the bundled templates."""
    override = os.environ.get("COSTAGENT_TEMPLATES")
    paths = [str(Path(override).expanduser().resolve())] if override else []
    return [*paths, str(TEMPLATES_DIR)]


# A dict's own attributes (``items``, ``get``, ...): ``x.get`` in a template must stay the method.
_DICT_ATTRIBUTES = frozenset(dir(dict))


class _Environment(jinja2.Environment):
    """jinja2's environment, with ``x.name`` on a plain dict looked up as ``x["name"]`` first.

    The contexts are dicts, so jinja2's ``getattr`` (attribute first) raised and caught an AttributeError on
    nearly every ``a.service`` in the templates: about a tenth of a team email's render time. The result is
    the same: a dict has no attribute of any other name, so jinja2 would have fallen back to the key."""

    def getattr(self, obj: Any, attribute: str) -> Any:
        if type(obj) is dict and attribute not in _DICT_ATTRIBUTES:
            try:
                return obj[attribute]
            except KeyError:
                pass
        return super().getattr(obj, attribute)


@lru_cache(maxsize=8)
def _environment(search_path: tuple[str, ...]) -> jinja2.Environment:
    env = _Environment(
        loader=jinja2.FileSystemLoader(list(search_path)),
        # Escape everything except plain text, including any template with an unexpected extension.
        autoescape=jinja2.select_autoescape(
            enabled_extensions=("html", "htm", "xml"),
            disabled_extensions=("txt",),
            default_for_string=True,
            default=True,
        ),
        undefined=jinja2.StrictUndefined,
        finalize=_refuse_none,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(FILTERS)
    env.globals.update(GLOBALS)
    return env


def environment() -> jinja2.Environment:
    """The jinja2 environment for the current template search path (cached per path)."""
    return _environment(tuple(templates_search_path()))


def _render(name: str, ctx: Mapping[str, Any], subject: str) -> tuple[str, str]:
    env = environment()
    html = env.get_template(f"{name}.html").render(**ctx, subject=subject)
    text = env.get_template(f"{name}.txt").render(**ctx, subject=subject)
    return html, text


def _subject_name(name: str) -> str:
    name = one_line(name)
    return name if len(name) <= SUBJECT_NAME_MAX else name[: SUBJECT_NAME_MAX - 1] + "…"


def team_subject(ctx: Mapping[str, Any]) -> str:
    """``[costagent] {team}: {month} to date {mtd} ({pct} vs same period last month)``.

    An account with no data says so instead of showing $0 as if it were spend.
    """
    team = _subject_name(ctx["team"]["team_name"])
    # A correction says so first; a report on incomplete data gives the real data-through date instead of a change.
    prefix = "[costagent] Correction: " if ctx.get("correction") else "[costagent] "
    if ctx["no_data"]:
        return f"{prefix}{team}: {ctx['month_label']}{_to_date(ctx)}: no cost data received"
    headline = ctx["headline"]
    if ctx.get("data_gap"):
        return f"{prefix}{team}: {ctx['month_label']}{_to_date(ctx)} {format_usd(headline['mtd_usd'])} ({ctx['data_gap']['text']})"
    # Over budget, or projected past it, comes before the figures: a phone shows the start of a subject.
    budget = budget_headline(ctx.get("budget"))
    return (
        f"{prefix}{team}: {budget + '; ' if budget else ''}{ctx['month_label']}{_to_date(ctx)} {format_usd(headline['mtd_usd'])} "
        f"({format_pct_signed(headline['change_pct'])} vs same period last month)"
    )



def _to_date(ctx: Mapping[str, Any]) -> str:
    """`` to date`` while the month runs; nothing once it is complete ("August 2026 $X", not "to date")."""
    return "" if ctx.get("complete") else " to date"


def admin_subject(ctx: Mapping[str, Any]) -> str:
    """``[costagent] Organisation cost report {month}: {mtd} across {n} accounts ({pct})``.

    Accounts that sent no data are appended, because the total silently excludes them.
    """
    totals = ctx["totals"]
    subject = (
        f"[costagent] Organisation cost report {one_line(ctx['month_label'])}: "
        f"{format_usd(totals['mtd_usd'])} across {totals['accounts']} accounts "
        f"({format_pct_signed(totals['change_pct'])})"
    )
    missing = totals["accounts"] - totals["accounts_with_data"]
    incomplete = len(ctx.get("incomplete_accounts") or [])
    return (subject + (f"; {missing} without data" if missing > 0 else "")
            + (f"; {incomplete} with incomplete data" if incomplete else ""))


def render_team_report(ctx: dict) -> RenderedEmail:
    """The weekly email for one team's account; ``ctx`` is the team context (see README, reports)."""
    subject = team_subject(ctx)
    html, text = _render("team_report", ctx, subject)
    return RenderedEmail(subject=subject, html=html, text=text)


def render_admin_report(ctx: dict) -> RenderedEmail:
    """The weekly organisation-wide email for the FinOps admin: every account on one page."""
    subject = admin_subject(ctx)
    html, text = _render("admin_report", ctx, subject)
    return RenderedEmail(subject=subject, html=html, text=text)


# Spreadsheets run a cell that starts with one of these as a formula (CSV injection); a tab or CR
# at the start is also stripped by some before they look, so they get the same treatment.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
ADMIN_CSV_COLUMNS = (
    "rank", "team_name", "aws_account_id", "mtd_usd", "previous_same_period_usd", "change_usd", "change_pct",
    "projected_month_end_usd", "alerts", "no_data", "email_status",
)


def csv_cell(value: Any) -> Any:
    """A value safe to open in a spreadsheet: numbers stay numbers (rounded to cents), booleans become
    true/false, None an empty cell, and text that would start a formula gets a leading apostrophe."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return round(value, 2) if math.isfinite(value) else ""
    text = one_line(str(value))
    return "'" + text if text.startswith(FORMULA_PREFIXES) else text


def admin_csv(ctx: Mapping[str, Any]) -> bytes:
    """The admin report's account table as CSV (UTF-8, CRLF rows, header first), formula-safe.

    ``email_status`` is the delivery status of the account's team email, when the context has it.
    """
    delivery = ctx.get("delivery") or {}
    statuses = delivery.get("by_account", {})
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(ADMIN_CSV_COLUMNS)
    for rank, a in enumerate(ctx["accounts"], start=1):
        row = {**a, "rank": rank, "email_status": statuses.get(a["aws_account_id"])}
        if a["no_data"]:  # unknown, not $0
            row.update(mtd_usd=None, previous_same_period_usd=None, change_usd=None, change_pct=None,
                       projected_month_end_usd=None)
        writer.writerow([csv_cell(row.get(column)) for column in ADMIN_CSV_COLUMNS])
    # The BOM makes Excel read UTF-8 team names correctly.
    return ("\ufeff" + out.getvalue()).encode("utf-8")


_OWN_HEADERS = frozenset(
    {"subject", "from", "to", "cc", "date", "message-id", "mime-version", "content-type"}
)
_HEADER_NAME = re.compile(r"^[!-9;-~]+$")  # RFC 5322 ftext: printable ASCII except colon


def _check_header(name: str, value: str) -> str:
    if "\r" in value or "\n" in value:
        raise ValueError(f"refusing header {name!r}: value contains CR or LF")
    if HEADER_BREAK.search(value):
        raise ValueError(f"refusing header {name!r}: value contains a line separator or control character")
    problem = encoded_word_problem(value)
    if problem:
        raise ValueError(f"refusing header {name!r}: value {problem}")
    return value


def _verify_header_block(msg: EmailMessage, expected: Sequence[str]) -> None:
    """Parse the message as it will be sent and check that its top-level header lines are exactly
    ``expected`` (each once): whatever the email package does on this Python version, no value set
    above can have added a header line or ended the header block early."""
    # The header block exactly as the generator writes it (BytesGenerator folds each header with
    # policy.fold_binary), without serializing the ~60 KB body.
    _verify_header_lines(b"".join(msg.policy.fold_binary(name, value) for name, value in msg.items()), expected)


def _verify_header_lines(head: bytes, expected: Sequence[str]) -> None:
    """Parse a folded header block and check its header lines are exactly ``expected`` (each once)."""
    parsed = email.parser.BytesHeaderParser(policy=email.policy.default).parsebytes(head + b"\r\n")
    found = sorted(k.lower() for k in parsed.keys())
    if found != sorted(k.lower() for k in expected):
        raise ValueError(f"refusing message: its header lines came out as {sorted(parsed.keys())}, "
                         f"not {sorted(expected)} (header injection)")


def _check_message_headers(rendered: RenderedEmail, sender: str, to: str, cc: Sequence[str],
                           message_id_domain: str, extra: Mapping[str, str]) -> None:
    """Refuse an empty sender or recipient and any header value that could break the header block."""
    for name, value in (("From", sender), ("To", to)):
        if not value.strip():
            raise ValueError(f"{name} must not be empty")
    _check_header("Subject", rendered.subject)
    _check_header("From", sender)
    _check_header("To", to)
    for address in cc:
        _check_header("Cc", address)
    _check_header("Message-ID domain", message_id_domain)
    for name, value in extra.items():
        if not _HEADER_NAME.match(name):
            raise ValueError(f"refusing header name {name!r}")
        if name.lower() in _OWN_HEADERS:
            raise ValueError(f"header {name!r} is set by build_message; pass it as an argument")
        _check_header(name, value)


def build_message(
    rendered: RenderedEmail,
    *,
    sender: str,
    to: str,
    cc: Sequence[str] = (),
    message_id_domain: str = "costagent.local",
    headers: Mapping[str, str] | None = None,
    attachments: Sequence[tuple[str, bytes, str]] = (),
) -> EmailMessage:
    """A ``multipart/alternative`` message (text/plain, then text/html) ready for SMTP; with
    ``attachments`` ((filename, bytes, MIME type) each), a ``multipart/mixed`` around it.

    Raises ValueError for any header value containing CR or LF (header injection), an empty sender or
    recipient, or an extra header that is malformed or would replace one set here.
    """
    if isinstance(cc, str):
        cc = (cc,)
    extra = dict(headers or {})
    _check_message_headers(rendered, sender, to, cc, message_id_domain, extra)

    msg = EmailMessage(policy=email.policy.SMTP)
    msg["Subject"] = rendered.subject
    msg["From"] = sender
    msg["To"] = to
    if cc:
        msg["Cc"] = ", ".join(cc)
    msg["Date"] = email.utils.format_datetime(datetime.now(UTC))
    msg["Message-ID"] = email.utils.make_msgid(domain=message_id_domain)
    for name, value in extra.items():
        msg[name] = value
    msg.set_content(rendered.text, subtype="plain", charset="utf-8")
    msg.add_alternative(rendered.html, subtype="html", charset="utf-8")
    for filename, data, mime_type in attachments:
        maintype, _, subtype = mime_type.partition("/")
        _check_header("attachment filename", filename)
        msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    _verify_header_block(msg, ["Subject", "From", "To", *(["Cc"] if cc else []), "Date", "Message-ID", *extra,
                               "MIME-Version", "Content-Type"])
    return msg


class MimeMessage:
    """A built message as the bytes that go on the wire (``bytes(m)``, ``m.as_bytes()``) and its top-level
    headers (``m["To"]``, ``m.get_all("Cc")``, ``m.items()``): what the outbox and SMTP deliveries read.

    Made by :func:`build_mime_message`, which writes the bytes the ``email`` package would write for
    :func:`build_message`'s message, without building and re-parsing its object tree."""

    __slots__ = ("_headers", "_raw")

    def __init__(self, raw: bytes, headers: Sequence[tuple[str, str]]):
        self._raw, self._headers = raw, tuple(headers)

    def __bytes__(self) -> bytes:
        return self._raw

    def as_bytes(self) -> bytes:
        return self._raw

    def items(self) -> list[tuple[str, str]]:
        return list(self._headers)

    def get_all(self, name: str, failobj: Any = None) -> list[str] | Any:
        found = [v for k, v in self._headers if k.lower() == name.lower()]
        return found or failobj

    def get(self, name: str, failobj: Any = None) -> str | Any:
        return next((v for k, v in self._headers if k.lower() == name.lower()), failobj)

    def __getitem__(self, name: str) -> str | None:
        return self.get(name)


_WIRE = email.policy.SMTP
_NL = re.compile(r"\r\n|\r|\n")  # what the email package's generator turns into CRLF (generator.NLCRE)
_BOUNDARY_SHAPE = "=" * 15 + "0" * 19 + "=="  # email.generator's boundaries: 15 "=", 19 digits, "=="


@lru_cache(maxsize=4096)
def _folded(name: str, value: str) -> tuple[bytes, str]:
    """One header line (folded) as the email package writes it, and the value its parsed header reads as:
    the same header object ``msg[name] = value`` makes, folded as the generator folds it. Cached: the
    sender, the date and the MIME headers repeat from message to message."""
    header = _WIRE.header_factory(name, value)
    return _WIRE.fold_binary(name, header), str(header)


# Quoted-printable as email.quoprimime.body_encode writes it: each character its table does not keep is "=XX".
_QP_KEPT = "".join(chr(c) for c, out in enumerate(email.quoprimime._QUOPRI_BODY_ENCODE_MAP) if out == chr(c))
_QP_QUOTED = re.compile("[^" + re.escape(_QP_KEPT + "=") + "]")


def _qp_body(body: str, maxlinelen: int) -> str:
    """``email.quoprimime.body_encode(body, maxlinelen)``, the same text, quoting with C string methods instead of
    one table look-up per character (most of the cost of a 40 KB report)."""
    if not body:
        return body
    body = _QP_QUOTED.sub(lambda m: f"={ord(m.group()):02X}", body.replace("=", "=3D"))
    soft_break = "=\n"
    maxlinelen1 = maxlinelen - 1
    encoded = []
    append = encoded.append
    for line in body.splitlines():
        # Below: body_encode's line breaking, unchanged (never inside an "=XX", a trailing blank quoted).
        start = 0
        laststart = len(line) - 1 - maxlinelen
        while start <= laststart:
            stop = start + maxlinelen1
            if line[stop - 2] == "=":
                append(line[start:stop - 1])
                start = stop - 2
            elif line[stop - 1] == "=":
                append(line[start:stop])
                start = stop - 1
            else:
                append(line[start:stop] + "=")
                start = stop
        if line and line[-1] in " \t":
            room = start - laststart
            if room >= 3:
                q = email.quoprimime.quote(line[-1])
            elif room == 2:
                q = line[-1] + soft_break
            else:
                q = soft_break + email.quoprimime.quote(line[-1])
            append(line[start:-1] + q)
        else:
            append(line[start:])
    if body[-1] in "\r\n":
        append("")
    return "\n".join(encoded)


def _encode_text(string: str, policy: email.policy.EmailPolicy) -> tuple[str, str]:
    """``email.contentmanager._encode_text(string, "utf-8", None, policy)``: the transfer encoding
    ``set_content`` picks for a UTF-8 text (7bit, 8bit, quoted-printable or base64) and the encoded payload."""
    lines = string.encode("utf-8").splitlines()
    linesep = policy.linesep.encode("ascii")
    if max(map(len, lines), default=0) <= policy.max_line_length:
        normal = b"\n".join(lines) + b"\n"
        try:
            return "7bit", normal.decode("ascii")
        except UnicodeDecodeError:
            pass
        if policy.cte_type == "8bit":
            return "8bit", normal.decode("ascii", "surrogateescape")
    sniff = linesep.join(lines[:10]) + linesep
    sniff_qp = _qp_body(sniff.decode("latin-1"), policy.max_line_length)
    if len(sniff_qp) > len(binascii.b2a_base64(sniff)):
        data, per_line = linesep.join(lines) + linesep, policy.max_line_length // 4 * 3
        return "base64", "".join(binascii.b2a_base64(data[i:i + per_line]).decode("ascii")
                                 for i in range(0, len(data), per_line))
    if len(lines) <= 10:
        return "quoted-printable", sniff_qp
    return "quoted-printable", _qp_body((b"\n".join(lines) + b"\n").decode("latin-1"), policy.max_line_length)


def _on_a_line_alone(text: bytes, delimiter: bytes) -> bool:
    """Whether ``delimiter`` (or it followed by "--") is a whole line of ``text``: what the generator's
    ``^--boundary(--)?$`` multiline search finds, without compiling a pattern per message."""
    for found in (delimiter, delimiter + b"--"):
        at = text.find(found)
        while at >= 0:
            end = at + len(found)
            if (at == 0 or text[at - 1] == 10) and (end == len(text) or text[end] == 10):
                return True
            at = text.find(found, at + 1)
    return False


def _make_boundary(text: bytes) -> str:
    """``email.generator.Generator._make_boundary(text)``: a random boundary, suffixed until no line is it."""
    boundary = "=" * 15 + email.generator._fmt % random.randrange(sys.maxsize) + "=="
    b, counter = boundary, 0
    while _on_a_line_alone(text, f"--{b}".encode()):
        b = f"{boundary}.{counter}"
        counter += 1
    return b


def _text_part(text: str, subtype: str, alternative: bool) -> bytes:
    """One text part of a ``multipart/alternative`` message, as ``EmailMessage.set_content`` (the first part) or
    ``add_alternative`` (the others, which carry their own MIME-Version) encode it and the generator writes it."""
    cte, payload = _encode_text(text, _WIRE)
    head = _folded("Content-Type", f'text/{subtype}; charset="utf-8"')[0] + _folded("Content-Transfer-Encoding", cte)[0]
    if alternative:
        head += _folded("MIME-Version", "1.0")[0]
    payload = payload.replace("\n", "\r\n") if "\r" not in payload else _NL.sub("\r\n", payload)
    return head + b"\r\n" + payload.encode("ascii", "surrogateescape")


def build_mime_message(
    rendered: RenderedEmail,
    *,
    sender: str,
    to: str,
    cc: Sequence[str] = (),
    message_id_domain: str = "costagent.local",
) -> MimeMessage:
    """:func:`build_message`'s message (no extra headers, no attachments), byte for byte as the ``email``
    package writes it, at a fraction of the cost: the team reports of a whole organisation go through here.
    The same checks refuse the same header values."""
    if isinstance(cc, str):
        cc = (cc,)
    _check_message_headers(rendered, sender, to, cc, message_id_domain, {})
    fields = [("Subject", rendered.subject), ("From", sender), ("To", to)]
    if cc:
        fields.append(("Cc", ", ".join(cc)))
    fields += [("Date", email.utils.format_datetime(datetime.now(UTC))),
               ("Message-ID", email.utils.make_msgid(domain=message_id_domain)), ("MIME-Version", "1.0")]
    parts = [_text_part(rendered.text, "plain", False), _text_part(rendered.html, "html", True)]
    boundary = _make_boundary(b"\r\n".join(parts))
    if len(boundary) == len(_BOUNDARY_SHAPE):
        content_type = _folded("Content-Type", f'multipart/alternative; boundary="{_BOUNDARY_SHAPE}"')[0].replace(
            _BOUNDARY_SHAPE.encode(), boundary.encode())
    else:  # a boundary that had to be made unique in the text (never seen in practice)
        content_type = _folded("Content-Type", f'multipart/alternative; boundary="{boundary}"')[0]
    lines = [_folded(name, value) for name, value in fields]
    head = b"".join(line for line, _ in lines) + content_type
    _verify_header_lines(head, [name for name, _ in fields] + ["Content-Type"])
    delimiter = f"--{boundary}".encode()
    raw = (head + b"\r\n" + delimiter + b"\r\n" + parts[0] + b"\r\n" + delimiter + b"\r\n" + parts[1]
           + b"\r\n" + delimiter + b"--\r\n")
    headers = [(name, value) for (name, _), (_, value) in zip(fields, lines, strict=True)]
    return MimeMessage(raw, [*headers, ("Content-Type", f'multipart/alternative; boundary="{boundary}"')])
