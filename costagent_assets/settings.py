"""Installation settings: one validated JSON file, changed with ``costagent config set KEY VALUE``.

Each setting is one field of :class:`Settings`: its type, its default, the rule that reads it and its
description. Every value, whether typed on the command line or read back from the file, goes through
that rule, so a hand-edited file is held to the same rules as the CLI; ``config show`` and the
README's table are written from the descriptions.
"""

from __future__ import annotations

import difflib
import ipaddress
import json
import math
import re
import string
from collections.abc import Callable
from pathlib import Path
from typing import Annotated
from urllib.parse import urlparse

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic_core import core_schema

from costagent_assets.budgets import DEFAULT_ALERT_PCTS
from costagent_assets.fileio import atomic_write_text
from costagent_assets.validation import (
    THRESHOLD_PCT_HIGH,
    THRESHOLD_PCT_LOW,
    email_problem,
    in_range,
    number_text,
    parse_number,
    parse_usd_amount,
)

# USD per million tokens (input, output) of the Gemini API's paid tier, text; thinking tokens bill as output.
DEFAULT_AI_PRICES: dict[str, list[float]] = {
    "gemini-2.5-flash": [0.30, 2.50],
    "gemini-2.5-flash-lite": [0.10, 0.40],
    "gemini-2.5-pro": [1.25, 10.00],
    "gemini-3-flash-preview": [0.50, 3.00],
}

DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")

URL_TEMPLATE_FIELDS = ("account_id", "team_name")


class SettingError(ValueError):
    """A setting key or value was refused; the message says what is allowed."""


# --------------------------------------------------------------------------- rules


class Rule:
    """How one kind of setting is read from command-line text or a JSON value (both go through ``read``).

    ``read`` returns the typed value or raises ValueError with the reason; a ValueError without a
    message refuses the value itself. Every refusal then says what is allowed (``allowed_text``).
    """

    allowed = ""

    def read(self, value: object) -> object:
        """The typed value of ``value``; ValueError if it is refused."""
        raise NotImplementedError

    def allowed_text(self, default: object) -> str:
        """What is allowed, said to someone whose value was refused; ``default`` can serve as the example."""
        return self.allowed

    def __get_pydantic_core_schema__(self, source: object, handler: object) -> core_schema.CoreSchema:
        # The rule is the whole validation: pydantic's own coercion would accept values that are refused.
        return core_schema.no_info_plain_validator_function(self.read)


class Custom(Rule):
    """The rule of one setting only: its own reading function and what it allows."""

    def __init__(self, read: Callable[[object], object], allowed: str) -> None:
        self.read = read
        self.allowed = allowed


class Integer(Rule):
    """A whole number from ``low`` to ``high`` (no upper bound when None); "9.5" and JSON 9.0 are refused."""

    def __init__(self, low: int, high: int | None = None) -> None:
        self.low, self.high = low, high

    def read(self, value: object) -> int:
        text = number_text(value)
        if text is None or not re.fullmatch(r"[+-]?[0-9]+", text):
            raise ValueError(f"{value!r} is not a whole number")
        number = int(text)
        if not in_range(number, self.low, self.high):
            raise ValueError
        return number

    def allowed_text(self, default: object) -> str:
        if self.high is None:
            return f"a whole number >= {self.low}, e.g. {default}"
        return f"a whole number from {self.low} to {self.high}, e.g. {default}"


class Number(Rule):
    """A finite number from ``low`` (excluded with ``above_low``) to ``high``; ``percent_sign`` accepts "20%".

    ``allowed`` replaces the range in refusals when a unit says it better ("a number of seconds ...").
    """

    def __init__(
        self,
        low: float,
        high: float | None = None,
        *,
        above_low: bool = False,
        percent_sign: bool = True,
        allowed: str = "",
    ) -> None:
        self.low, self.high, self.above_low, self.percent_sign, self.allowed = (
            low, high, above_low, percent_sign, allowed
        )

    def read(self, value: object) -> float:
        number = parse_number(value, percent_sign=self.percent_sign)
        if not in_range(number, self.low, self.high, above_low=self.above_low):
            raise ValueError
        return number

    def allowed_text(self, default: object) -> str:
        span = self.allowed or (
            f"a number from {self.low:g} to {self.high:g}" if self.high is not None else f"a number >= {self.low:g}"
        )
        return f"{span}, e.g. {default:g}"


class UsdAmount(Rule):
    """An amount in USD of 0 or more: "100", "$1,500", a JSON number (the teams' rule for amounts)."""

    def read(self, value: object) -> float:
        return parse_usd_amount(value)

    def allowed_text(self, default: object) -> str:
        return f"an amount in USD of 0 or more, e.g. {default:g}"


def _choice_key(text: str) -> str:
    return text.strip().lower().replace("-", "_")


class Choice(Rule):
    """One of ``options``, in any case and with "-" for "_"; the canonical spelling is what is stored,
    because the APIs these names go to want "UnblendedCost" exactly."""

    def __init__(self, *options: str) -> None:
        self.options = options
        self.allowed = ", ".join(options)
        self._by_key = {_choice_key(option): option for option in options}

    def read(self, value: object) -> str:
        key = _choice_key(value) if isinstance(value, str) else None
        if key not in self._by_key:
            raise ValueError
        return self._by_key[key]


# Cost sources: the AWS ones (and the demo) give account costs; the AI providers give dollars and tokens per model.
AWS_SOURCES = ("demo", "datadog", "cost_explorer", "focus")
AI_SOURCES = ("openai", "anthropic")


class Sources(Rule):
    """One cost source or several separated by commas (``cost_explorer,openai,anthropic``), each a Choice of
    AWS_SOURCES + AI_SOURCES, none twice; stored as the canonical names joined by ",". """

    def __init__(self) -> None:
        self._choice = Choice(*AWS_SOURCES, *AI_SOURCES)
        self.allowed = f"one or more of {self._choice.allowed}, separated by commas"

    def read(self, value: object) -> str:
        if not isinstance(value, str):
            raise ValueError
        names = [self._choice.read(part) for part in value.split(",") if part.strip()]
        if not names or len(set(names)) != len(names):
            raise ValueError
        return ",".join(names)


def source_names(source: str) -> tuple[str, ...]:
    """The sources of the ``source`` setting, in order: ``"cost_explorer,openai"`` -> (cost_explorer, openai)."""
    return tuple(part for part in source.split(",") if part)


def default_source(source: str) -> str:
    """The source of a registry account that names none: the first AWS source of the setting (else the first)."""
    names = source_names(source)
    return next((n for n in names if n in AWS_SOURCES), names[0])


class Weekday(Rule):
    """A day of the week, or any unambiguous prefix of three letters or more: "wed", "thurs", "Saturday"."""

    allowed = "monday..sunday (or mon, tue, wed, thu, fri, sat, sun)"

    def read(self, value: object) -> str:
        text = value.strip().lower() if isinstance(value, str) else ""
        matches = [day for day in DAYS if len(text) >= 3 and day.startswith(text)]
        if len(matches) != 1:
            raise ValueError
        return matches[0]


_BOOLEANS = {"true": True, "yes": True, "on": True, "1": True, "false": False, "no": False, "off": False, "0": False}


class Flag(Rule):
    """A yes/no setting: a JSON boolean, or true/false, yes/no, on/off, 1/0 in any case."""

    allowed = "true/false, yes/no, on/off or 1/0"

    def read(self, value: object) -> bool:
        if isinstance(value, bool):
            return value
        text = value.strip().lower() if isinstance(value, str) else None
        if text not in _BOOLEANS:
            raise ValueError
        return _BOOLEANS[text]


class Pattern(Rule):
    """Text matching ``regex`` once stripped; ``optional`` also allows it empty, ``url`` drops trailing "/"."""

    def __init__(self, regex: str, allowed: str, *, optional: bool = False, url: bool = False) -> None:
        self.regex, self.allowed, self.optional, self.url = regex, allowed, optional, url

    def read(self, value: object) -> str:
        text = value.strip() if isinstance(value, str) else None
        if text is None or not ((self.optional and not text) or re.fullmatch(self.regex, text)):
            raise ValueError
        return text.rstrip("/") if self.url else text


def _comma_items(value: object) -> list[object] | None:
    """The items of a list setting: comma-separated text or a JSON list; None for anything else."""
    if isinstance(value, str):
        return list(value.split(","))
    return list(value) if isinstance(value, (list, tuple)) else None


class CommaList(Rule):
    """At least one name matching ``regex``, lower-cased and without repeats, in the order given."""

    def __init__(self, regex: str, allowed: str) -> None:
        self.regex, self.allowed = regex, allowed

    def read(self, value: object) -> tuple[str, ...]:
        items = _comma_items(value)
        if items is None:
            raise ValueError
        names = [item.strip().lower() if isinstance(item, str) else item for item in items]
        names = [name for name in names if name != ""]
        bad = [name for name in names if not isinstance(name, str) or not re.fullmatch(self.regex, name)]
        if bad:
            raise ValueError(f"{bad[0]!r} is not allowed")
        if not names:
            raise ValueError("at least one is needed")
        return tuple(dict.fromkeys(names))


# --------------------------------------------------------------------------- rules of one setting each


def _admin_emails(value: object) -> tuple[str, ...]:
    items = _comma_items(value)
    if items is None:
        raise ValueError
    addresses: list[str] = []
    reasons: list[str] = []
    for item in items:
        address = item.strip() if isinstance(item, str) else item
        if address == "":
            continue
        reason = email_problem(address)
        if reason:
            reasons.append(f"{address!r} {reason}")
        else:
            addresses.append(address)
    if reasons:
        raise ValueError("; ".join(reasons))
    return tuple(addresses)


def _warehouse_uri(value: object) -> str:
    text = value.strip() if isinstance(value, str) else None
    if text is None:
        raise ValueError
    if text == "" or (text.startswith("/") and "\n" not in text):
        return text.rstrip("/") if text != "/" else text
    if not re.fullmatch(r"s3://([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(/[A-Za-z0-9!_.*'()/-]*)?", text):
        raise ValueError("a bucket name is 3-63 lowercase letters, digits, dots or dashes")
    return text.rstrip("/")


def _has_control(text: str) -> bool:
    return any(ord(ch) < 32 or ord(ch) == 127 for ch in text)


def _focus_path(value: object) -> str:
    # Control characters are looked for before stripping: a trailing newline is a paste gone wrong.
    if not isinstance(value, str) or _has_control(value):
        raise ValueError
    text = value.strip()
    if text.lower().startswith("s3://") and not re.fullmatch(r"s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/.*)?", text):
        raise ValueError(f"{text!r} is not a valid s3://bucket/prefix")
    return text


def _gemini_base_url(value: object) -> str:
    return _keyed_endpoint(value, "Gemini")


def _ai_admin_base_url(value: object) -> str:
    return _keyed_endpoint(value, "admin API")


def _keyed_endpoint(value: object, what: str) -> str:
    """An endpoint a key is sent to: https, or plain http only on this machine; never a metadata service."""
    text = _GEMINI_URL.read(value)
    if not text:
        return text
    parsed = urlparse(text)
    host = (parsed.hostname or "").lower()
    if parsed.scheme != "https" and not _is_loopback(host):
        # The API key travels in a header of every request: in clear text over plain HTTP.
        raise ValueError(f"{text!r} is plain http: the API key would travel unencrypted; use https "
                         "(plain http only to a gateway on this machine: localhost, 127.0.0.1, [::1])")
    if _is_link_local_or_metadata(host):
        raise ValueError(f"{text!r} is a link-local address (a cloud metadata service), not a {what} endpoint")
    return text


def _is_loopback(host: str) -> bool:
    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _is_link_local_or_metadata(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_link_local
    except ValueError:
        return host in ("metadata.google.internal", "metadata")


_GEMINI_URL = Pattern(r"https?://[^\s/]+(/\S*)?", "", optional=True, url=True)


def focus_path_problem(focus_path: str) -> str | None:
    """Why a local ``focus_path`` cannot be read (it does not exist), or None (S3 prefixes are checked by the
    run that lists them). Checked when the setting is set and before a run, not when settings are loaded,
    so a folder that disappears never locks the other commands out."""
    if not focus_path or focus_path.lower().startswith("s3://"):
        return None
    if not Path(focus_path).expanduser().exists():
        return (f"focus_path {focus_path!r} does not exist: give the file or directory of FOCUS/CUR exports "
                "(or s3://bucket/prefix)")
    return None


_REGION = r"[a-z]{2}(-[a-z0-9]+)+-[0-9]+"
_DATADOG_TAG = r"[A-Za-z][A-Za-z0-9_./-]{0,199}"
_GEMINI_MODEL = Pattern(r"[a-z0-9][a-z0-9.\-]{1,80}", "a Gemini model name such as gemini-2.5-flash")


def _prices(value: object) -> dict[str, list[float]]:
    if isinstance(value, str):
        items: dict[str, object] = {}
        for part in filter(None, (p.strip() for p in value.split(","))):
            model, _, price = part.partition("=")
            items[model.strip()] = price.split("/")
    elif isinstance(value, dict):
        items = value
    else:
        raise ValueError
    prices = {}
    for model, price in items.items():
        try:
            numbers = [float(x) for x in price] if isinstance(price, (list, tuple)) else []
        except (TypeError, ValueError):
            numbers = []
        if len(numbers) != 2 or not all(math.isfinite(x) and x >= 0 for x in numbers):
            raise ValueError(f"bad price for {model!r}: {price!r}")
        try:
            prices[_GEMINI_MODEL.read(model)] = numbers
        except ValueError:
            raise ValueError(f"{model!r} is not {_GEMINI_MODEL.allowed}") from None
    return prices


_ALERT_LEVEL = Number(0, 1000, above_low=True)


def _alert_levels(value: object) -> tuple[float, ...]:
    items = _comma_items(value)
    if items is None:
        raise ValueError
    if isinstance(value, str):
        items = [item for item in items if item.strip()]  # "50,,80," is a typing slip, not a level
    levels = []
    for item in items:
        try:
            levels.append(_ALERT_LEVEL.read(item))
        except ValueError as err:
            raise ValueError(str(err) or f"{item!r} is out of range") from None
    if not levels:
        raise ValueError("at least one level is needed")
    return tuple(sorted(set(levels)))


def _ca_bundle(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError
    text = value.strip()
    if text and not Path(text).expanduser().is_file():
        raise ValueError(f"{text!r} is not a file")
    # Stored absolute, so the file is found whatever directory the scheduler runs in.
    return str(Path(text).expanduser().resolve()) if text else ""


def _base_url(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError
    text = value.strip().rstrip("/")
    if not re.fullmatch(r"https?://[^\s\"'<>\\]+", text):
        raise ValueError(f"{value!r} is not an http:// or https:// URL without spaces or quotes")
    return text


def _url_template(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError
    text = value.strip()
    if not text:
        return ""
    # The URL lands in an HTML href: quotes and angle brackets would break out of the attribute.
    if not text.lower().startswith("https://") or re.search(r"[\s\"'<>\\]", text):
        raise ValueError(f"{text!r} is not an https URL without spaces or quotes")
    try:
        fields = [f for _, f, _, _ in string.Formatter().parse(text) if f is not None]
    except ValueError as err:
        raise ValueError(f"{text!r}: {err}") from None
    unknown = [f for f in fields if f not in URL_TEMPLATE_FIELDS]
    if unknown:
        raise ValueError(f"unknown placeholder {{{unknown[0]}}}")
    return text


Percent = Annotated[float, Number(0, 100)]
NonNegative = Annotated[float, Number(0)]
Bool = Annotated[bool, Flag()]


def _price_list(prices: dict[str, list[float]]) -> str:
    return ", ".join(f"`{model}={price_in:g}/{price_out:g}`" for model, (price_in, price_out) in prices.items())


# --------------------------------------------------------------------------- the settings


class Settings(BaseModel):
    """The settings of one installation; the defaults are what a fresh install runs with.

    Each field is the whole of a setting: type, default, rule and description. Building one validates
    every value given (a refusal raises SettingError); the defaults are trusted.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    anomaly_threshold_pct: Annotated[float, Number(
        THRESHOLD_PCT_LOW, THRESHOLD_PCT_HIGH, above_low=True,
        allowed=f"a percentage greater than {THRESHOLD_PCT_LOW:g} and at most {THRESHOLD_PCT_HIGH:g}",
    )] = Field(20.0, description=(
        "Rise, in percent, of month to date against the same days of last month that makes a change an anomaly; "
        "a number > 0 and <= 1000 (`20%` works too), default 20. A team can have its own (see "
        "[Anomalies, budgets and feedback](#anomalies-budgets-and-feedback))."
    ))
    anomaly_min_usd: Annotated[float, UsdAmount()] = Field(100.0, description=(
        "Dollar floor: a change must also be at least this many USD a month, so a 300% rise on a $2 service stays "
        "quiet; an amount >= 0 (`$1,500` works too), default 100. $100/month is about where a change deserves a "
        "team's attention, the same order as the impact thresholds AWS Cost Anomaly Detection users commonly set."
    ))
    schedule_day: Annotated[str, Weekday()] = Field("monday", description=(
        "Weekday of the weekly run, when the reports are sent; monday..sunday (or mon, tue, ...), default monday."
    ))
    schedule_hour: Annotated[int, Integer(0, 23)] = Field(9, description=(
        "Hour of the weekly run, in UTC; an integer 0..23, default 9."
    ))
    global_admin_emails: Annotated[tuple[str, ...], Custom(
        _admin_emails, "e-mail addresses separated by commas, or an empty value for none"
    )] = Field((), description=(
        "Addresses that receive the organisation-wide admin report; comma-separated, empty for none, default none."
    ))
    ai_enabled: Bool = Field(True, description=(
        "Whether AI-written insights may be added to the reports; true/false (or yes/no, on/off, 1/0), default "
        "true. Gemini is used only when `GEMINI_API_KEY` is also set (see [AI insights](#ai-insights-gemini)); "
        "otherwise the insights are the deterministic ones."
    ))
    source: Annotated[str, Sources()] = Field("demo", description=(
        "Where cost data comes from: `demo` (generated data), `datadog` (Cloud Cost Management metrics), "
        "`cost_explorer` (the AWS Cost Explorer API), `focus` (FOCUS or CUR export files), `openai` (the "
        "organisation's Costs and Usage APIs, `OPENAI_ADMIN_KEY`) or `anthropic` (the Admin API's cost and usage "
        "reports, `ANTHROPIC_ADMIN_KEY`), or several separated by commas, e.g. `cost_explorer,openai,anthropic`; "
        "default demo. See [Cost sources](#cost-sources) and [AI spend](#ai-spend-openai-and-anthropic)."
    ))
    email_mode: Annotated[str, Choice("outbox", "smtp")] = Field("outbox", description=(
        "How reports are delivered: `outbox` (files written to the outbox folder) or `smtp` (STARTTLS, with "
        "`SMTP_HOST`, `SMTP_PORT`, `SMTP_USER`, `SMTP_PASSWORD` and `SENDER_EMAIL` from the environment; see "
        "[Email delivery](#email-delivery)); default outbox."
    ))
    demo_accounts: Annotated[int, Integer(1, 10000)] = Field(84, description=(
        "Accounts in the demo organisation; an integer 1..10000, default 84."
    ))
    demo_ai_accounts: Annotated[int, Integer(0, 4)] = Field(0, description=(
        "AI accounts (OpenAI projects and Anthropic workspaces, with a planted runaway key and a new expensive "
        "model) added to the demo organisation by `costagent demo`; an integer 0..4, default 0 (`make demo` "
        "uses 4)."
    ))
    demo_seed: Annotated[int, Integer(0)] = Field(42, description=(
        "Seed of the demo data: the same seed and date give the same costs; an integer >= 0, default 42."
    ))
    warehouse_uri: Annotated[str, Custom(
        _warehouse_uri, "empty (the default <home>/warehouse), s3://bucket/prefix, or an absolute local directory"
    )] = Field("", description=(
        "Where the Parquet warehouse lives: `s3://bucket/prefix` (see [The warehouse on S3](#the-warehouse-on-s3)), "
        "an absolute local directory, or empty for `<home>/warehouse`; default empty."
    ))
    s3_endpoint_url: Annotated[str, Pattern(
        r"https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?/?", "empty for AWS, or http(s)://host[:port]", optional=True, url=True
    )] = Field("", description=(
        "Endpoint of an S3-compatible store (MinIO, Ceph, ...) as `http(s)://host[:port]`, or empty for AWS S3; "
        "default empty."
    ))
    s3_region: Annotated[str, Pattern(_REGION, "empty, or a region name such as eu-west-1", optional=True)] = Field(
        "", description=(
            "AWS region of the warehouse bucket, e.g. `eu-west-1`, or empty to take it from the AWS configuration; "
            "default empty."
        )
    )
    datadog_metric: Annotated[str, Pattern(
        r"[A-Za-z][A-Za-z0-9_.]{0,199}", "a Datadog metric name, e.g. aws.cost.amortized"
    )] = Field("aws.cost.amortized", description=(
        "Datadog cost metric read by `source=datadog`, e.g. `aws.cost.net.amortized` or `aws.cost.unblended`; "
        "default `aws.cost.amortized`."
    ))
    datadog_account_tag: Annotated[str, Pattern(
        _DATADOG_TAG, "a Datadog tag name, e.g. aws_member_account_id"
    )] = Field("aws_member_account_id", description=(
        "Datadog tag holding the account id; default `aws_member_account_id`."
    ))
    datadog_service_tag: Annotated[str, Pattern(_DATADOG_TAG, "a Datadog tag name, e.g. aws_product")] = Field(
        "aws_product", description="Datadog tag holding the service; default `aws_product`."
    )
    datadog_usage_type_tag: Annotated[str, Pattern(
        _DATADOG_TAG, "a Datadog tag name, e.g. aws_usage_type, or empty to leave usage types out", optional=True
    )] = Field("aws_usage_type", description=(
        "Datadog tag holding the usage type behind each cost (drivers then name it, e.g. `USE1-BoxUsage:m5.large`); "
        "empty to leave usage types out; default `aws_usage_type`, the name in Datadog's Cloud Cost documentation."
    ))
    datadog_region_tag: Annotated[str, Pattern(
        _DATADOG_TAG, "a Datadog tag name, e.g. aws_region, or empty to leave regions out", optional=True
    )] = Field("aws_region", description=(
        "Datadog tag holding the region of each cost; empty to leave regions out; default `aws_region`, the name "
        "in Datadog's Cloud Cost documentation."
    ))
    datadog_usage_metric: Annotated[str, Pattern(
        r"[A-Za-z][A-Za-z0-9_.]{0,199}", "a Datadog metric name, e.g. aws.usage, or empty for no quantities",
        optional=True,
    )] = Field("aws.usage", description=(
        "Datadog metric of the usage quantities behind the costs, read in the same request as the cost metric "
        "(no extra request), so that the usage / rate / mix split fills; empty to leave quantities out; default "
        "`aws.usage`."
    ))
    datadog_usage_unit_tag: Annotated[str, Pattern(
        _DATADOG_TAG, "a Datadog tag name, e.g. aws_pricing_usage_unit, or empty for no quantities", optional=True
    )] = Field("aws_pricing_usage_unit", description=(
        "Datadog tag holding the unit of `datadog_usage_metric` (a line mixing units gets no quantity); empty to "
        "leave quantities out; default `aws_pricing_usage_unit`."
    ))
    datadog_timeout_seconds: Annotated[float, Number(
        0, 600, above_low=True, percent_sign=False, allowed="a number of seconds > 0 and <= 600"
    )] = Field(60.0, description=(
        "Timeout of one Datadog request, in seconds (a timeout is retried like a 5xx); a number > 0 and <= 600, "
        "default 60."
    ))
    cost_explorer_metric: Annotated[str, Choice(
        "UnblendedCost", "AmortizedCost", "NetAmortizedCost", "NetUnblendedCost", "BlendedCost"
    )] = Field("UnblendedCost", description=(
        "Cost Explorer metric read by `source=cost_explorer`: `UnblendedCost`, `AmortizedCost`, "
        "`NetAmortizedCost`, `NetUnblendedCost` or `BlendedCost`; default `UnblendedCost`."
    ))
    cost_explorer_usage_types: Bool = Field(True, description=(
        "Also read Cost Explorer by usage type with `UsageQuantity`, so that drivers name usage types and the "
        "usage / rate / mix split fills: one more request ($0.01) per service per month loaded; default true."
    ))
    focus_path: Annotated[str, Custom(
        _focus_path, "a local file or directory, or s3://bucket/prefix; empty for none"
    )] = Field("", description=(
        "Where `source=focus` reads FOCUS or CUR export files: a file, a directory (read recursively) or "
        "`s3://bucket/prefix`, of CSV, CSV.gz or Parquet files, any number of them; default none."
    ))
    focus_cost_column: Annotated[str, Choice("BilledCost", "EffectiveCost", "ListCost", "ContractedCost")] = Field(
        "BilledCost", description=(
            "FOCUS cost column read by `source=focus`: `BilledCost`, `EffectiveCost`, `ListCost` or "
            "`ContractedCost`; default `BilledCost`."
        )
    )
    openai_base_url: Annotated[str, Custom(
        _ai_admin_base_url, "an https URL (http only to localhost/127.0.0.1/[::1]), or empty for OpenAI's endpoint"
    )] = Field("", description=(
        "Endpoint of OpenAI's organisation Costs and Usage APIs read by `source=openai`: the `https://` URL of a "
        "gateway (plain `http://` only on this machine), or empty for `https://api.openai.com`; default empty."
    ))
    anthropic_base_url: Annotated[str, Custom(
        _ai_admin_base_url, "an https URL (http only to localhost/127.0.0.1/[::1]), or empty for Anthropic's endpoint"
    )] = Field("", description=(
        "Endpoint of Anthropic's Admin API read by `source=anthropic`: the `https://` URL of a gateway (plain "
        "`http://` only on this machine), or empty for `https://api.anthropic.com`; default empty."
    ))
    source_max_retries: Annotated[int, Integer(0, 20)] = Field(6, description=(
        "Retries of a throttled or failing cost-source request before the run fails; an integer 0..20, default 6."
    ))
    source_max_wait_seconds: Annotated[float, Number(
        0, 3600, above_low=True, percent_sign=False, allowed="a number of seconds > 0 and <= 3600"
    )] = Field(60.0, description=(
        "Longest single wait, in seconds, before retrying a throttled cost-source request (a 429's announced "
        "reset is capped at this); a number > 0 and <= 3600, default 60."
    ))
    incomplete_data_wait_days: Annotated[int, Integer(0, 14)] = Field(2, description=(
        "Days after its report date that a team report whose source data end early or have gaps is held, "
        "waiting for the data (a rerun of that report date sends it once they are in); past that it goes out "
        "with the real data-through date and the missing days in its headline, and a later complete run sends "
        "a correction. See [Incomplete source data](#incomplete-source-data); an integer 0..14, default 2."
    ))
    gemini_model: Annotated[str, _GEMINI_MODEL] = Field("gemini-2.5-flash", description=(
        "The Gemini model that writes the insights, e.g. `gemini-2.5-flash-lite`; give a new model a price in "
        "`ai_prices`, or its cost is recorded as unknown; default `gemini-2.5-flash`."
    ))
    gemini_base_url: Annotated[str, Custom(
        _gemini_base_url, "an https URL (http only to localhost/127.0.0.1/[::1]), or empty for Google's endpoint"
    )] = Field("", description=(
        "Endpoint of the Gemini API: the `https://` URL of a gateway or proxy (plain `http://` only on this "
        "machine: localhost, 127.0.0.1, [::1], since the API key goes with every request), or empty for "
        "Google's; default empty."
    ))
    ai_requests_per_minute: Annotated[int, Integer(1, 10000)] = Field(1000, description=(
        "Most Gemini requests started per minute (the calls run concurrently up to this rate); an integer "
        "1..10000, default 1000 (the paid tier 1 limit of Gemini Flash). Set it to your quota: about 10 on the "
        "free tier."
    ))
    ai_timeout_seconds: Annotated[float, Number(
        0, 600, above_low=True, percent_sign=False, allowed="a number of seconds greater than 0 and at most 600"
    )] = Field(60.0, description="Timeout of one Gemini request, in seconds; a number > 0 and <= 600, default 60.")
    ai_max_attempts: Annotated[int, Integer(1, 10)] = Field(5, description=(
        "Attempts per Gemini request, retries on 408/429/5xx and timeouts included, with exponential backoff; "
        "an integer 1..10, default 5."
    ))
    ai_prices: Annotated[dict[str, list[float]], Custom(
        _prices, "model=IN/OUT (USD per million tokens) separated by commas, e.g. gemini-2.5-flash=0.30/2.50"
    )] = Field(default_factory=lambda: dict(DEFAULT_AI_PRICES), description=(
        "USD per million tokens (input/output) per model, to record what the AI costs: `model=IN/OUT` separated "
        "by commas, e.g. `gemini-2.5-flash=0.30/2.50` (it replaces the whole table); default "
        + _price_list(DEFAULT_AI_PRICES) + "."
    ))
    budget_alert_pcts: Annotated[tuple[float, ...], Custom(
        _alert_levels, "percentages > 0 and <= 1000 separated by commas, e.g. 50,80,100"
    )] = Field(DEFAULT_ALERT_PCTS, description=(
        "Levels, in percent of a team's monthly budget, of its budget alerts: over the budget (every week while "
        "it is), projected past it, or a level below 100 crossed this week while spend runs ahead of the month's "
        "pace (72% spent on day 27 of 30 is on pace: no alert); the highest level below 100 is also where a "
        "budget shows as at risk (\"warning\") in the "
        "emails and the `budgets` view; comma-separated numbers > 0 and <= 1000, default `50,80,100`."
    ))
    smtp_rate_per_minute: Annotated[float, Number(
        0, 6000, above_low=True, percent_sign=False,
        allowed="a number of emails per minute greater than 0 and at most 6000",
    )] = Field(30.0, description=(
        "Most emails sent per minute over the one SMTP connection; a number > 0 and <= 6000, default 30 (what "
        "Office 365 accepts)."
    ))
    smtp_ca_bundle: Annotated[str, Custom(
        _ca_bundle, "the path of a PEM file of CA certificates, or an empty value for the system's trust store"
    )] = Field("", description=(
        "PEM file of the certificate authorities trusted for the SMTP server's certificate (stored as an absolute "
        "path); empty for the system's trust store, default empty."
    ))
    smtp_auth: Annotated[str, Choice("basic", "xoauth2")] = Field("basic", description=(
        "How costagent logs in to the SMTP server: `basic` (`SMTP_USER` and `SMTP_PASSWORD`; no AUTH without a "
        "user) or `xoauth2` (OAuth 2.0 client credentials from `SMTP_OAUTH_TENANT`, `SMTP_OAUTH_CLIENT_ID` and "
        "`SMTP_OAUTH_CLIENT_SECRET`, as Office 365 requires; see [Office 365](#office-365-oauth-20)); "
        "default basic."
    ))
    smtp_oauth_authority: Annotated[str, Pattern(
        r"https://[A-Za-z0-9.-]+(:[0-9]{1,5})?/?|http://(127\.0\.0\.1|localhost)(:[0-9]{1,5})?/?",
        "an https://host[:port] URL (http only on 127.0.0.1 or localhost)", url=True,
    )] = Field("https://login.microsoftonline.com", description=(
        "Where `smtp_auth=xoauth2` gets its tokens: the identity platform's host, to which "
        "`/<tenant>/oauth2/v2.0/token` is added; default `https://login.microsoftonline.com`."
    ))
    datadog_dashboard_url: Annotated[str, Custom(
        _url_template,
        "an https:// URL where {account_id} and {team_name} are replaced per account, or an empty value for no link",
    )] = Field("", description=(
        "Link to each team's Datadog dashboard: an `https://` URL template where `{account_id}` (and optionally "
        "`{team_name}`) is replaced, URL-encoded, per account, e.g. "
        "`https://app.datadoghq.com/dashboard/abc-123?tpl_var_account={account_id}`; empty for no link, "
        "default empty."
    ))
    ui_url: Annotated[str, Custom(_base_url, "an http:// or https:// URL")] = Field(
        "http://127.0.0.1:3000", description=(
            "Where operators reach the Dagster UI (behind your proxy in production): the run-failure email links "
            "a failed run there; default `http://127.0.0.1:3000`."
        ))
    optimization_scanner: Annotated[str, Choice("auto", "aws", "demo", "off")] = Field("auto", description=(
        "What finds savings ([Savings](#savings-optimization_opportunities)): `aws` (assume "
        "`optimization_role_name` in every account), `demo` (the demo organisation's planted resources), `off`, "
        "or `auto`: `demo` on the demo source, else `off` until the role is deployed and this says `aws`; "
        "default auto."
    ))
    optimization_role_name: Annotated[str, Pattern(
        r"[\w+=,.@-]{1,64}", "an IAM role name (letters, digits and +=,.@_-), e.g. CostagentReadOnly"
    )] = Field("CostagentReadOnly", description=(
        "Name of the read-only IAM role costagent assumes in every member account (its policies are under "
        "[Scanning real accounts](#scanning-real-accounts-optimization_scanneraws)); default `CostagentReadOnly`."
    ))
    optimization_regions: Annotated[tuple[str, ...], CommaList(
        _REGION, "AWS region names separated by commas, e.g. us-east-1,eu-west-1"
    )] = Field(("us-east-1",), description=(
        "AWS regions scanned, comma-separated, e.g. `us-east-1,eu-west-1`; default `us-east-1`. S3 buckets are "
        "found in every region."
    ))
    optimization_lookback_days: Annotated[int, Integer(7, 63)] = Field(14, description=(
        "Days of CloudWatch metrics (and RI/SP utilisation) the rules judge; an integer 7..63, default 14."
    ))
    optimization_max_workers: Annotated[int, Integer(1, 64)] = Field(16, description=(
        "Accounts and regions scanned at once (threads); an integer 1..64, default 16."
    ))
    optimization_max_attempts: Annotated[int, Integer(1, 20)] = Field(5, description=(
        "Attempts per AWS request (botocore's adaptive retries) before a throttled call is reported; an integer "
        "1..20, default 5."
    ))
    optimization_commitments: Bool = Field(True, description=(
        "Whether Cost Explorer's RI/Savings Plans recommendations and utilisation are read (management account "
        "credentials; $0.01 per request); true/false, default true."
    ))
    optimization_min_monthly_usd: NonNegative = Field(1.0, description=(
        "Smallest saving listed, in USD a month; a number >= 0, default 1."
    ))
    idle_cpu_pct: Percent = Field(5.0, description=(
        "EC2 idle: average CPU % over the window below this, and network below `idle_network_mb_per_day`; "
        "0..100, default 5."
    ))
    idle_network_mb_per_day: NonNegative = Field(5.0, description=(
        "EC2 idle, with low CPU: network in+out below this many MB a day (AWS Trusted Advisor's low-utilization "
        "figure); a number >= 0, default 5."
    ))
    underutilized_cpu_pct: Percent = Field(20.0, description=(
        "EC2 oversized (a size down is suggested): average CPU % below this; 0..100, default 20."
    ))
    underutilized_peak_cpu_pct: Percent = Field(50.0, description=(
        "EC2 oversized, also: peak CPU % (the highest daily Maximum) below this, so the next size down (half the "
        "vCPUs) still holds the peak; 0..100, default 50."
    ))
    snapshot_max_age_days: Annotated[int, Integer(1, 3650)] = Field(90, description=(
        "EBS snapshots older than this many days are listed; an integer 1..3650, default 90."
    ))
    rds_idle_max_connections: NonNegative = Field(0.0, description=(
        "RDS idle: `DatabaseConnections` never above this in the window; a number >= 0, default 0."
    ))
    lambda_memory_used_max_pct: Annotated[float, Number(1, 100)] = Field(50.0, description=(
        "Lambda oversized: peak memory used (Lambda Insights `used_memory_max`) below this % of the configured "
        "memory; 1..100, default 50."
    ))
    nonproduction_environments: Annotated[tuple[str, ...], CommaList(
        r"[a-z0-9][a-z0-9_.:/+-]{0,63}", "tag values separated by commas, e.g. dev,test,staging"
    )] = Field(("dev", "development", "test", "testing", "qa", "staging", "stage", "sandbox"), description=(
        "Values of an `Environment`/`Env`/`Stage` tag (any case) that mean \"not production\", for the Multi-AZ "
        "rule on non-production databases; comma-separated, default `dev,development,test,testing,qa,staging,"
        "stage,sandbox`."
    ))
    spot_discount_pct: Annotated[float, Number(0, 90)] = Field(70.0, description=(
        "Assumed Spot discount on on-demand, for Spot-eligible instances; 0..90, default 70."
    ))
    s3_cold_data_pct: Percent = Field(50.0, description=(
        "Assumed share of a bucket without lifecycle rules that could move to Standard-IA; 0..100, default 50."
    ))
    commitment_min_utilisation_pct: Percent = Field(80.0, description=(
        "Reserved Instances and Savings Plans used below this % over the window are listed; 0..100, default 80."
    ))

    def __init__(self, **values: object) -> None:
        """Settings from ``values`` (any not given take their defaults); SettingError names every refused key."""
        try:
            super().__init__(**values)
        except ValidationError as err:
            raise _refusals(err, list(values)) from None


# --------------------------------------------------------------------------- reading and writing


def setting_rule(key: str) -> Rule:
    """The rule of setting ``key`` (a field name): what it accepts, and what a refusal says is allowed."""
    return next(item for item in Settings.model_fields[key].metadata if isinstance(item, Rule))


def _refusals(err: ValidationError, order: list[str]) -> SettingError:
    """One SettingError line per refused key, in the order the keys were given (reprs keep it one line)."""
    position = {key: index for index, key in enumerate(order)}
    lines = []
    for error in sorted(err.errors(), key=lambda error: position.get(error["loc"][0], len(order))):
        key = str(error["loc"][0])
        if error["type"] == "extra_forbidden":
            line = _unknown_key(key)
        else:
            default = Settings.model_fields[key].get_default(call_default_factory=True)
            reason = str(error.get("ctx", {}).get("error", "")) or f"{error['input']!r} is not allowed"
            line = f"{key}: {reason}; allowed: {setting_rule(key).allowed_text(default)}"
        lines.append(line)
    return SettingError("\n".join(lines))


def _unknown_key(key: object) -> str:
    close = difflib.get_close_matches(str(key), Settings.model_fields, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"unknown setting {key!r}{hint}; known settings: {', '.join(Settings.model_fields)}"


def setting_name(key: str) -> str:
    """The field name of setting ``key``: case-insensitive, dashes allowed; SettingError if there is none."""
    name = key.strip().lower().replace("-", "_")
    if name not in Settings.model_fields:
        raise SettingError(_unknown_key(key))
    return name


def _validated(data: dict, where: str | None = None) -> Settings:
    """Settings from ``data``; each line of a refusal is prefixed with ``where`` (the file) when given."""
    try:
        return Settings(**data)
    except SettingError as err:
        if where is None:
            raise
        raise SettingError("\n".join(f"{where}: {line}" for line in str(err).split("\n"))) from None


def parse_setting(key: str, raw: str) -> object:
    """The typed value of setting ``key`` from command-line text ``raw``.

    Keys are case-insensitive and may use dashes. Raises SettingError saying what is allowed.
    """
    name = setting_name(key)
    return getattr(_validated({name: raw}), name)


def with_setting(settings: Settings, key: str, raw: str) -> Settings:
    """A copy of ``settings`` with ``key`` set from command-line text ``raw``."""
    name = setting_name(key)
    # The new value was just validated and the others already were: no need to validate the copy again.
    return settings.model_copy(update={name: parse_setting(name, raw)})


def settings_as_dict(settings: Settings) -> dict:
    """The settings as a JSON-ready dict in declaration order (tuples become lists)."""
    data = {}
    for name in Settings.model_fields:
        value = getattr(settings, name)
        data[name] = list(value) if isinstance(value, tuple) else value
    return data


def load_settings(path: Path) -> Settings:
    """The settings stored at ``path``; defaults if the file does not exist.

    Keys missing from the file take their defaults. An unreadable file, an unknown key or an invalid
    value raises SettingError naming the file and every bad key.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return Settings()
    except UnicodeDecodeError:
        raise SettingError(f"{path}: is not UTF-8 text") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise SettingError(
            f"{path}: invalid JSON at line {err.lineno}, column {err.colno}: {err.msg}"
        ) from None
    if not isinstance(data, dict):
        raise SettingError(f'{path}: expected a JSON object of settings, like {{"schedule_hour": 9}}')
    return _validated(data, str(path))


def save_settings(path: Path, settings: Settings) -> None:
    """Atomically write all settings to ``path`` as indented JSON, after validating every value.

    Validation first means settings copied in code with a bad value (``model_copy`` does not validate)
    cannot produce a file that :func:`load_settings` would refuse.
    """
    data = settings_as_dict(settings)
    _validated(data, "cannot save settings")
    atomic_write_text(Path(path), json.dumps(data, indent=2, ensure_ascii=False) + "\n")


# --------------------------------------------------------------------------- documentation

_MARKDOWN_LINK = re.compile(r"\[([^\]]+)\]\([^)]*\)")


def setting_help(key: str) -> str:
    """The description of setting ``key`` as plain text for a terminal: links keep their text, no backticks."""
    return _MARKDOWN_LINK.sub(r"\1", Settings.model_fields[key].description or "").replace("`", "")


def settings_table_markdown() -> str:
    """The README's table of settings (``| setting | meaning |``), one row per setting in declaration order."""
    rows = ["| setting | meaning |", "|---|---|"]
    rows += [f"| `{name}` | {field.description} |" for name, field in Settings.model_fields.items()]
    return "\n".join(rows) + "\n"
