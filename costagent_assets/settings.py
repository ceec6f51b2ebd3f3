"""Installation settings: one validated JSON file, changed with ``costagent config set KEY VALUE``.

Every value, whether typed on the command line or read back from the file, goes through the same
parser for its key, so a hand-edited file is held to the same rules as the CLI.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
import re
import string
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from costagent_assets.fileio import atomic_write_text
from costagent_assets.validation import email_problem, parse_usd_amount

# USD per million tokens (input, output) of the Gemini API's paid tier, text; thinking tokens bill as output.
DEFAULT_AI_PRICES: dict[str, list[float]] = {
    "gemini-2.5-flash": [0.30, 2.50],
    "gemini-2.5-flash-lite": [0.10, 0.40],
    "gemini-2.5-pro": [1.25, 10.00],
    "gemini-3-flash-preview": [0.50, 3.00],
}

DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


@dataclass(frozen=True)
class Settings:
    """The settings of one installation; the defaults are what a fresh install runs with."""

    anomaly_threshold_pct: float = 20.0
    anomaly_min_usd: float = 100.0
    schedule_day: str = "monday"
    schedule_hour: int = 9  # UTC
    global_admin_emails: tuple[str, ...] = ()
    ai_enabled: bool = True
    source: str = "demo"
    email_mode: str = "outbox"
    demo_accounts: int = 84
    demo_seed: int = 42
    warehouse_uri: str = ""
    s3_endpoint_url: str = ""
    s3_region: str = ""
    datadog_metric: str = "aws.cost.amortized"
    datadog_account_tag: str = "aws_member_account_id"
    datadog_service_tag: str = "aws_product"
    cost_explorer_metric: str = "UnblendedCost"
    focus_path: str = ""
    focus_cost_column: str = "BilledCost"
    source_max_retries: int = 6
    source_max_wait_seconds: float = 60.0
    gemini_model: str = "gemini-2.5-flash"
    gemini_base_url: str = ""
    ai_requests_per_minute: int = 1000
    ai_timeout_seconds: float = 60.0
    ai_max_attempts: int = 5
    ai_prices: dict = dataclasses.field(default_factory=lambda: dict(DEFAULT_AI_PRICES))
    budget_alert_pcts: tuple[float, ...] = (50.0, 80.0, 100.0)
    smtp_rate_per_minute: float = 30.0
    smtp_ca_bundle: str = ""
    datadog_dashboard_url: str = ""
    # Issue 8: savings (optimization_opportunities). Thresholds are documented in SETTING_DOCS and the README.
    optimization_scanner: str = "auto"
    optimization_role_name: str = "CostagentReadOnly"
    optimization_regions: tuple[str, ...] = ("us-east-1",)
    optimization_lookback_days: int = 14
    optimization_max_workers: int = 16
    optimization_max_attempts: int = 5
    optimization_commitments: bool = True
    optimization_min_monthly_usd: float = 1.0
    idle_cpu_pct: float = 5.0
    idle_network_mb_per_day: float = 5.0
    underutilized_cpu_pct: float = 20.0
    underutilized_peak_cpu_pct: float = 50.0
    snapshot_max_age_days: int = 90
    rds_idle_max_connections: float = 0.0
    lambda_memory_used_max_pct: float = 50.0
    nonproduction_environments: tuple[str, ...] = (
        "dev", "development", "test", "testing", "qa", "staging", "stage", "sandbox",
    )
    spot_discount_pct: float = 70.0
    s3_cold_data_pct: float = 50.0
    commitment_min_utilisation_pct: float = 80.0


SETTING_DOCS: dict[str, str] = {
    "anomaly_threshold_pct": (
        "Month-over-month rise, in percent, that flags a service as an anomaly; a number > 0 and <= 1000, default 20."
    ),
    "anomaly_min_usd": (
        "Smallest monthly change in USD worth flagging, so a 300% rise on a $2 service stays quiet; "
        "a number >= 0, default 100 ($100/month is about where a change deserves a team's attention, the "
        "same order as the impact thresholds AWS Cost Anomaly Detection users commonly set)."
    ),
    "schedule_day": "Weekday the reports are sent; monday..sunday (or mon, tue, ...), default monday.",
    "schedule_hour": "Hour of the day, in UTC, the reports are sent; an integer 0..23, default 9.",
    "global_admin_emails": (
        "Addresses that receive the organisation-wide admin report; comma-separated, empty for none, default none."
    ),
    "ai_enabled": "Whether AI-written insights may be added to the reports; true/false (or yes/no, on/off, 1/0), default true. Gemini is used only when GEMINI_API_KEY is also set; otherwise the insights are the deterministic ones.",
    "source": (
        "Where cost data comes from: demo (generated data), datadog (Cloud Cost Management metrics), "
        "cost_explorer (AWS Cost Explorer API) or focus (FOCUS or CUR export files); default demo."
    ),
    "email_mode": (
        "How reports are delivered; outbox (files written to the outbox folder) or smtp (STARTTLS, "
        "SMTP_HOST, SMTP_PORT, SMTP_USER, SMTP_PASSWORD, SENDER_EMAIL from the environment), default outbox."
    ),
    "demo_accounts": "Number of AWS accounts the demo source generates; an integer 1..10000, default 84.",
    "demo_seed": "Random seed of the demo data, so the same seed gives the same costs; an integer >= 0, default 42.",
    "warehouse_uri": "Where the Parquet warehouse lives: s3://bucket/prefix, an absolute local directory, or empty for <home>/warehouse; default empty.",
    "s3_endpoint_url": "Endpoint of an S3-compatible store (MinIO, Ceph, ...) as http(s)://host[:port], or empty for AWS S3; default empty.",
    "s3_region": "AWS region of the warehouse bucket, e.g. eu-west-1, or empty to take it from the AWS configuration; default empty.",
    "datadog_metric": (
        "Datadog cost metric read by source=datadog, e.g. aws.cost.net.amortized or aws.cost.unblended; "
        "default aws.cost.amortized."
    ),
    "datadog_account_tag": "Datadog tag holding the account id; default aws_member_account_id.",
    "datadog_service_tag": "Datadog tag holding the service; default aws_product.",
    "cost_explorer_metric": (
        "Cost Explorer metric read by source=cost_explorer: UnblendedCost, AmortizedCost, "
        "NetAmortizedCost, NetUnblendedCost or BlendedCost; default UnblendedCost."
    ),
    "focus_path": (
        "Where source=focus reads FOCUS or CUR export files: a file, a directory or an s3://bucket/prefix "
        "(CSV, CSV.gz or Parquet, any number of files); default none."
    ),
    "focus_cost_column": (
        "FOCUS cost column read by source=focus: BilledCost, EffectiveCost, ListCost or ContractedCost; "
        "default BilledCost."
    ),
    "source_max_retries": (
        "Retries of a throttled or failing cost-source request before the run fails; an integer 0..20, default 6."
    ),
    "source_max_wait_seconds": (
        "Longest single wait, in seconds, before retrying a throttled cost-source request; a number > 0 "
        "and <= 3600, default 60."
    ),
    "gemini_model": (
        "The Gemini model that writes the insights, e.g. gemini-2.5-flash-lite; give it a price in ai_prices, "
        "or its cost is recorded as unknown; default gemini-2.5-flash."
    ),
    "gemini_base_url": (
        "Endpoint of the Gemini API: an http(s) URL of a gateway or proxy, or empty for Google's; default empty."
    ),
    "ai_requests_per_minute": (
        "Most Gemini requests started per minute (the calls run concurrently up to this rate); an integer "
        "1..10000, default 1000 (the paid tier 1 limit of Gemini Flash). Set it to your quota: about 10 on the free tier."
    ),
    "ai_timeout_seconds": "Timeout of one Gemini request, in seconds; a number > 0 and <= 600, default 60.",
    "ai_max_attempts": (
        "Attempts per Gemini request, retries on 408/429/5xx and timeouts included (exponential backoff); "
        "an integer 1..10, default 5."
    ),
    "ai_prices": (
        "USD per million tokens (input/output) per model, to record what AI costs: "
        "model=IN/OUT separated by commas, e.g. gemini-2.5-flash=0.30/2.50 (it replaces the whole table); "
        "default " + str(DEFAULT_AI_PRICES) + "."
    ),
    "budget_alert_pcts": (
        "Percentages of a team's monthly budget at which budget alerts fire, on actual spend and on the projected "
        "month end; comma-separated numbers > 0 and <= 1000, default 50,80,100."
    ),
    "smtp_rate_per_minute": (
        "Most emails sent per minute over the one SMTP connection; a number > 0 and <= 6000, default 30 "
        "(what Office 365 accepts)."
    ),
    "smtp_ca_bundle": (
        "PEM file of the certificate authorities trusted for the SMTP server's certificate; empty for the "
        "system's trust store, default empty."
    ),
    "datadog_dashboard_url": (
        "Link to each team's Datadog dashboard, an https URL template where {account_id} (and optionally "
        "{team_name}) is replaced per account, e.g. https://app.datadoghq.com/dashboard/abc-123?tpl_var_account={account_id}; "
        "empty for no link, default empty."
    ),
    "optimization_scanner": (
        "What finds savings (optimization_opportunities): aws (assume optimization_role_name in every account), "
        "demo (the demo organisation's planted resources), off, or auto (demo when source=demo, else off until "
        "the role is deployed and this is set to aws); default auto."
    ),
    "optimization_role_name": (
        "Name of the read-only IAM role costagent assumes in every member account (the README has its policies); "
        "default CostagentReadOnly."
    ),
    "optimization_regions": "AWS regions scanned, comma-separated, e.g. us-east-1,eu-west-1; default us-east-1.",
    "optimization_lookback_days": (
        "Days of CloudWatch metrics (and RI/SP utilisation) the rules judge; an integer 7..63, default 14."
    ),
    "optimization_max_workers": "Accounts and regions scanned at once (threads); an integer 1..64, default 16.",
    "optimization_max_attempts": (
        "Attempts per AWS request (botocore adaptive retries) before a throttled call is reported; "
        "an integer 1..20, default 5."
    ),
    "optimization_commitments": (
        "Whether Cost Explorer's RI/Savings Plans recommendations and utilisation are read (management account "
        "credentials; $0.01 per request); true/false, default true."
    ),
    "optimization_min_monthly_usd": "Smallest saving, in USD a month, worth listing; a number >= 0, default 1.",
    "idle_cpu_pct": (
        "An EC2 instance is idle when its average CPU % over the window is below this and its network is below "
        "idle_network_mb_per_day; a number 0..100, default 5."
    ),
    "idle_network_mb_per_day": (
        "Network in+out, MB per day, below which an instance with low CPU is idle (AWS Trusted Advisor's figure); "
        "a number >= 0, default 5."
    ),
    "underutilized_cpu_pct": (
        "An EC2 instance is oversized below this average CPU % (a size down is suggested); 0..100, default 20."
    ),
    "underutilized_peak_cpu_pct": (
        "An oversized instance's peak CPU % (the highest daily Maximum) must also be below this, so the next size "
        "down (half the vCPUs) still holds the peak; 0..100, default 50."
    ),
    "snapshot_max_age_days": "EBS snapshots older than this many days are listed; an integer 1..3650, default 90.",
    "rds_idle_max_connections": (
        "An RDS instance whose DatabaseConnections never exceeded this in the window is idle; >= 0, default 0."
    ),
    "lambda_memory_used_max_pct": (
        "A Lambda function whose peak memory use (Lambda Insights used_memory_max) stays below this % of its "
        "configured memory is oversized; 1..100, default 50."
    ),
    "nonproduction_environments": (
        "Values of an Environment/Env/Stage tag (any case) that mark a resource as not production, for "
        "Multi-AZ on non-production databases; comma-separated, default dev,development,test,testing,qa,staging,"
        "stage,sandbox."
    ),
    "spot_discount_pct": "Assumed Spot discount on on-demand, for Spot-eligible instances; 0..90, default 70.",
    "s3_cold_data_pct": (
        "Assumed share of a bucket without lifecycle rules that could move to Standard-IA; 0..100, default 50."
    ),
    "commitment_min_utilisation_pct": (
        "Reserved Instances and Savings Plans used below this % over the window are listed; 0..100, default 80."
    ),
}


class SettingError(ValueError):
    """A setting key or value was refused; the message says what is allowed."""


def _refuse(key: str, value: object, allowed: str, reason: str | None = None) -> SettingError:
    return SettingError(f"{key}: {reason or f'{value!r} is not allowed'}; allowed: {allowed}")


def _number_text(value: object) -> str | None:
    """The value as number text, or None for types no number can come from (bools included)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return repr(value)
    return value.strip() if isinstance(value, str) else None


def _parse_min_usd(value: object) -> float:
    try:
        return parse_usd_amount(value)
    except ValueError as err:
        raise _refuse("anomaly_min_usd", value, "an amount in USD of 0 or more, e.g. 100", str(err)) from None


def _parse_day(value: object) -> str:
    allowed = "monday..sunday (or mon, tue, wed, thu, fri, sat, sun)"
    text = value.strip().lower() if isinstance(value, str) else ""
    # Any unambiguous prefix of three letters or more: "wed", "thurs", "saturday".
    matches = [day for day in DAYS if len(text) >= 3 and day.startswith(text)]
    if len(matches) != 1:
        raise _refuse("schedule_day", value, allowed)
    return matches[0]


def _integer_parser(key: str, low: int, high: int | None, example: int) -> Callable[[object], int]:
    allowed = f"a whole number from {low} to {high}" if high is not None else f"a whole number >= {low}"
    allowed += f", e.g. {example}"

    def parse(value: object) -> int:
        text = _number_text(value)
        if text is None or not re.fullmatch(r"[+-]?[0-9]+", text):
            raise _refuse(key, value, allowed, f"{value!r} is not a whole number")
        number = int(text)
        if number < low or (high is not None and number > high):
            raise _refuse(key, value, allowed)
        return number

    return parse


def _parse_admin_emails(value: object) -> tuple[str, ...]:
    key, allowed = "global_admin_emails", "e-mail addresses separated by commas, or an empty value for none"
    if isinstance(value, str):
        items: list[object] = list(value.split(","))
    elif isinstance(value, (list, tuple)):
        items = list(value)
    else:
        raise _refuse(key, value, allowed)
    addresses: list[str] = []
    reasons: list[str] = []
    for item in items:
        address = item.strip() if isinstance(item, str) else item
        reason = email_problem(address) if isinstance(address, str) else "is not text"
        if address == "":
            continue
        if reason:
            reasons.append(f"{address!r} {reason}")
        else:
            addresses.append(address)
    if reasons:
        raise _refuse(key, value, allowed, "; ".join(reasons))
    return tuple(addresses)


_BOOLEANS = {
    "true": True,
    "yes": True,
    "on": True,
    "1": True,
    "false": False,
    "no": False,
    "off": False,
    "0": False,
}


def _parse_bool(value: object) -> bool:
    if isinstance(value, bool):
        return value
    text = value.strip().lower() if isinstance(value, str) else None
    if text not in _BOOLEANS:
        raise _refuse("ai_enabled", value, "true/false, yes/no, on/off or 1/0")
    return _BOOLEANS[text]


def _choice_parser(key: str, available: tuple[str, ...], planned: tuple[str, ...]) -> Callable[[object], str]:
    allowed = ", ".join(available)

    def parse(value: object) -> str:
        text = value.strip().lower().replace("-", "_") if isinstance(value, str) else None
        if text in available:
            return text
        if text in planned:
            raise _refuse(key, value, allowed, f"{text} is planned but not available in this version")
        raise _refuse(key, value, allowed)

    return parse


def _parse_warehouse_uri(value: object) -> str:
    allowed = "empty (the default <home>/warehouse), s3://bucket/prefix, or an absolute local directory"
    text = value.strip() if isinstance(value, str) else None
    if text is None:
        raise _refuse("warehouse_uri", value, allowed)
    if text == "" or (text.startswith("/") and "\n" not in text):
        return text.rstrip("/") if text != "/" else text
    match = re.fullmatch(r"s3://([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(/[A-Za-z0-9!_.*'()/-]*)?", text)
    if not match:
        raise _refuse("warehouse_uri", value, allowed, "a bucket name is 3-63 lowercase letters, digits, dots or dashes")
    return text.rstrip("/")


def _parse_endpoint(value: object) -> str:
    allowed = "empty for AWS, or http(s)://host[:port]"
    text = value.strip() if isinstance(value, str) else None
    if text is None or (text and not re.fullmatch(r"https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?/?", text)):
        raise _refuse("s3_endpoint_url", value, allowed)
    return text.rstrip("/")


def _parse_region(value: object) -> str:
    allowed = "empty, or a region name such as eu-west-1"
    text = value.strip() if isinstance(value, str) else None
    if text is None or (text and not re.fullmatch(r"[a-z]{2}(-[a-z0-9]+)+-[0-9]+", text)):
        raise _refuse("s3_region", value, allowed)
    return text


def _pattern_parser(key: str, pattern: str, allowed: str) -> Callable[[object], str]:
    def parse(value: object) -> str:
        text = value.strip() if isinstance(value, str) else None
        if text is None or not re.fullmatch(pattern, text):
            raise _refuse(key, value, allowed)
        return text

    return parse


def _canonical_choice(key: str, available: tuple[str, ...]) -> Callable[[object], str]:
    """Case-insensitive choice that stores the canonical spelling (APIs want "UnblendedCost" exactly)."""
    by_lower = {name.lower(): name for name in available}

    def parse(value: object) -> str:
        text = value.strip().lower() if isinstance(value, str) else None
        if text not in by_lower:
            raise _refuse(key, value, ", ".join(available))
        return by_lower[text]

    return parse


def _parse_focus_path(value: object) -> str:
    allowed = "a local file or directory, or s3://bucket/prefix; empty for none"
    if not isinstance(value, str) or _has_control(value):
        raise _refuse("focus_path", value, allowed)
    text = value.strip()
    if text.lower().startswith("s3://") and not re.fullmatch(r"s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/.*)?", text):
        raise _refuse("focus_path", value, allowed, f"{text!r} is not a valid s3://bucket/prefix")
    return text


def _has_control(text: str) -> bool:
    return any(ord(ch) < 32 or ord(ch) == 127 for ch in text)


def _parse_model(value: object) -> str:
    text = value.strip() if isinstance(value, str) else ""
    if not re.fullmatch(r"[a-z0-9][a-z0-9.\-]{1,80}", text):
        raise _refuse("gemini_model", value, "a Gemini model name such as gemini-2.5-flash")
    return text


def _parse_base_url(value: object) -> str:
    text = value.strip() if isinstance(value, str) else None
    if text is None or (text and not re.fullmatch(r"https?://[^\s/]+(/\S*)?", text)):
        raise _refuse("gemini_base_url", value, "an http(s) URL, or empty for Google's endpoint")
    return text.rstrip("/")


def _parse_prices(value: object) -> dict:
    allowed = "model=IN/OUT (USD per million tokens) separated by commas, e.g. gemini-2.5-flash=0.30/2.50"
    if isinstance(value, str):
        items: dict[str, object] = {}
        for part in filter(None, (p.strip() for p in value.split(","))):
            model, _, price = part.partition("=")
            items[model.strip()] = price.split("/")
    elif isinstance(value, dict):
        items = value
    else:
        raise _refuse("ai_prices", value, allowed)
    prices = {}
    for model, price in items.items():
        try:
            numbers = [float(x) for x in price] if isinstance(price, (list, tuple)) else []
        except (TypeError, ValueError):
            numbers = []
        if len(numbers) != 2 or not all(math.isfinite(x) and x >= 0 for x in numbers):
            raise _refuse("ai_prices", value, allowed, f"bad price for {model!r}: {price!r}")
        prices[_parse_model(model)] = numbers
    return prices


def _parse_budget_pcts(value: object) -> tuple[float, ...]:
    key, allowed = "budget_alert_pcts", "percentages > 0 and <= 1000 separated by commas, e.g. 50,80,100"
    if isinstance(value, str):
        items: list[object] = [item for item in value.split(",") if item.strip()]
    elif isinstance(value, (list, tuple)):
        items = list(value)
    else:
        raise _refuse(key, value, allowed)
    levels = []
    for item in items:
        text = _number_text(item)
        try:
            pct = float((text or "").removesuffix("%"))
        except ValueError:
            raise _refuse(key, value, allowed, f"{item!r} is not a number") from None
        if not (math.isfinite(pct) and 0 < pct <= 1000):
            raise _refuse(key, value, allowed, f"{item!r} is out of range")
        levels.append(pct)
    if not levels:
        raise _refuse(key, value, allowed, "at least one level is needed")
    return tuple(sorted(set(levels)))


def _parse_ca_bundle(value: object) -> str:
    allowed = "the path of a PEM file of CA certificates, or an empty value for the system's trust store"
    if not isinstance(value, str):
        raise _refuse("smtp_ca_bundle", value, allowed)
    text = value.strip()
    if text and not Path(text).expanduser().is_file():
        raise _refuse("smtp_ca_bundle", value, allowed, f"{text!r} is not a file")
    return str(Path(text).expanduser().resolve()) if text else ""


URL_TEMPLATE_FIELDS = ("account_id", "team_name")


def _parse_url_template(value: object) -> str:
    key = "datadog_dashboard_url"
    allowed = (
        "an https:// URL where {account_id} and {team_name} are replaced per account, or an empty value for no link"
    )
    if not isinstance(value, str):
        raise _refuse(key, value, allowed)
    text = value.strip()
    if not text:
        return ""
    if not text.lower().startswith("https://") or re.search(r"[\s\"'<>\\]", text):
        raise _refuse(key, value, allowed, f"{text!r} is not an https URL without spaces or quotes")
    try:
        fields = [f for _, f, _, _ in string.Formatter().parse(text) if f is not None]
    except ValueError as err:
        raise _refuse(key, value, allowed, f"{text!r}: {err}") from None
    unknown = [f for f in fields if f not in URL_TEMPLATE_FIELDS]
    if unknown:
        raise _refuse(key, value, allowed, f"unknown placeholder {{{unknown[0]}}}")
    return text


def _number_parser(
    key: str,
    low: float,
    high: float | None,
    example: float,
    *,
    above_low: bool = False,
    percent_sign: bool = True,
    allowed: str | None = None,
) -> Callable[[object], float]:
    """A parser of a number from ``low`` (excluded with ``above_low``) to ``high``; ``percent_sign`` accepts
    a trailing "%". The refusal says ``allowed``, by default the range and the example."""
    if allowed is None:
        allowed = f"a number from {low:g} to {high:g}" if high is not None else f"a number >= {low:g}"
        allowed += f", e.g. {example:g}"

    def parse(value: object) -> float:
        text = _number_text(value) or ""
        try:
            number = float(text.removesuffix("%") if percent_sign else text)
        except ValueError:
            raise _refuse(key, value, allowed, f"{value!r} is not a number") from None
        in_range = (number > low if above_low else number >= low) and (high is None or number <= high)
        if not (math.isfinite(number) and in_range):
            raise _refuse(key, value, allowed)
        return number

    return parse


def _bool_parser(key: str) -> Callable[[object], bool]:
    def parse(value: object) -> bool:
        try:
            return _parse_bool(value)
        except SettingError:
            raise _refuse(key, value, "true/false, yes/no, on/off or 1/0") from None

    return parse


def _list_parser(key: str, pattern: str, allowed: str) -> Callable[[object], tuple[str, ...]]:
    def parse(value: object) -> tuple[str, ...]:
        items = value.split(",") if isinstance(value, str) else list(value) if isinstance(value, (list, tuple)) else None
        if items is None:
            raise _refuse(key, value, allowed)
        out = [item.strip().lower() if isinstance(item, str) else item for item in items]
        out = [item for item in out if item != ""]
        bad = [item for item in out if not isinstance(item, str) or not re.fullmatch(pattern, item)]
        if bad or not out:
            raise _refuse(key, value, allowed, f"{bad[0]!r} is not allowed" if bad else "at least one is needed")
        return tuple(dict.fromkeys(out))

    return parse


_PARSERS: dict[str, Callable[[object], object]] = {
    "anomaly_threshold_pct": _number_parser(
        "anomaly_threshold_pct", 0, 1000, 20, above_low=True,
        allowed="a percentage greater than 0 and at most 1000, e.g. 20"),
    "anomaly_min_usd": _parse_min_usd,
    "schedule_day": _parse_day,
    "schedule_hour": _integer_parser("schedule_hour", 0, 23, 9),
    "global_admin_emails": _parse_admin_emails,
    "ai_enabled": _parse_bool,
    "source": _choice_parser("source", ("demo", "datadog", "cost_explorer", "focus"), ()),
    "email_mode": _choice_parser("email_mode", ("outbox", "smtp"), ()),
    "demo_accounts": _integer_parser("demo_accounts", 1, 10000, 84),
    "demo_seed": _integer_parser("demo_seed", 0, None, 42),
    "warehouse_uri": _parse_warehouse_uri,
    "s3_endpoint_url": _parse_endpoint,
    "s3_region": _parse_region,
    "datadog_metric": _pattern_parser(
        "datadog_metric", r"[A-Za-z][A-Za-z0-9_.]{0,199}", "a Datadog metric name, e.g. aws.cost.amortized"
    ),
    "datadog_account_tag": _pattern_parser(
        "datadog_account_tag", r"[A-Za-z][A-Za-z0-9_./-]{0,199}", "a Datadog tag name, e.g. aws_member_account_id"
    ),
    "datadog_service_tag": _pattern_parser(
        "datadog_service_tag", r"[A-Za-z][A-Za-z0-9_./-]{0,199}", "a Datadog tag name, e.g. aws_product"
    ),
    "cost_explorer_metric": _canonical_choice(
        "cost_explorer_metric",
        ("UnblendedCost", "AmortizedCost", "NetAmortizedCost", "NetUnblendedCost", "BlendedCost"),
    ),
    "focus_path": _parse_focus_path,
    "focus_cost_column": _canonical_choice(
        "focus_cost_column", ("BilledCost", "EffectiveCost", "ListCost", "ContractedCost")
    ),
    "source_max_retries": _integer_parser("source_max_retries", 0, 20, 6),
    "source_max_wait_seconds": _number_parser(
        "source_max_wait_seconds", 0, 3600, 60, above_low=True, percent_sign=False,
        allowed="a number of seconds > 0 and <= 3600, e.g. 60"),
    "gemini_model": _parse_model,
    "gemini_base_url": _parse_base_url,
    "ai_requests_per_minute": _integer_parser("ai_requests_per_minute", 1, 10000, 1000),
    "ai_timeout_seconds": _number_parser(
        "ai_timeout_seconds", 0, 600, 60, above_low=True, percent_sign=False,
        allowed="a number of seconds greater than 0 and at most 600, e.g. 60"),
    "ai_max_attempts": _integer_parser("ai_max_attempts", 1, 10, 5),
    "ai_prices": _parse_prices,
    "budget_alert_pcts": _parse_budget_pcts,
    "smtp_rate_per_minute": _number_parser(
        "smtp_rate_per_minute", 0, 6000, 30, above_low=True, percent_sign=False,
        allowed="a number of emails per minute greater than 0 and at most 6000, e.g. 30"),
    "smtp_ca_bundle": _parse_ca_bundle,
    "datadog_dashboard_url": _parse_url_template,
    "optimization_scanner": _choice_parser("optimization_scanner", ("auto", "aws", "demo", "off"), ()),
    "optimization_role_name": _pattern_parser(
        "optimization_role_name", r"[\w+=,.@-]{1,64}", "an IAM role name (letters, digits and +=,.@_-), e.g. CostagentReadOnly"
    ),
    "optimization_regions": _list_parser(
        "optimization_regions", r"[a-z]{2}(-[a-z0-9]+)+-[0-9]+", "AWS region names separated by commas, e.g. us-east-1,eu-west-1"
    ),
    "optimization_lookback_days": _integer_parser("optimization_lookback_days", 7, 63, 14),
    "optimization_max_workers": _integer_parser("optimization_max_workers", 1, 64, 16),
    "optimization_max_attempts": _integer_parser("optimization_max_attempts", 1, 20, 5),
    "optimization_commitments": _bool_parser("optimization_commitments"),
    "optimization_min_monthly_usd": _number_parser("optimization_min_monthly_usd", 0, None, 1),
    "idle_cpu_pct": _number_parser("idle_cpu_pct", 0, 100, 5),
    "idle_network_mb_per_day": _number_parser("idle_network_mb_per_day", 0, None, 5),
    "underutilized_cpu_pct": _number_parser("underutilized_cpu_pct", 0, 100, 20),
    "underutilized_peak_cpu_pct": _number_parser("underutilized_peak_cpu_pct", 0, 100, 50),
    "snapshot_max_age_days": _integer_parser("snapshot_max_age_days", 1, 3650, 90),
    "rds_idle_max_connections": _number_parser("rds_idle_max_connections", 0, None, 0),
    "lambda_memory_used_max_pct": _number_parser("lambda_memory_used_max_pct", 1, 100, 50),
    "nonproduction_environments": _list_parser(
        "nonproduction_environments", r"[a-z0-9][a-z0-9_.:/+-]{0,63}", "tag values separated by commas, e.g. dev,test,staging"
    ),
    "spot_discount_pct": _number_parser("spot_discount_pct", 0, 90, 70),
    "s3_cold_data_pct": _number_parser("s3_cold_data_pct", 0, 100, 50),
    "commitment_min_utilisation_pct": _number_parser("commitment_min_utilisation_pct", 0, 100, 80),
}


def _unknown_key(key: object) -> SettingError:
    close = difflib.get_close_matches(str(key), _PARSERS, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return SettingError(f"unknown setting {key!r}{hint}; known settings: {', '.join(_PARSERS)}")


def _setting_key(key: str) -> str:
    name = key.strip().lower().replace("-", "_")
    if name not in _PARSERS:
        raise _unknown_key(key)
    return name


def parse_setting(key: str, raw: str) -> object:
    """The typed value of setting ``key`` from command-line text ``raw``.

    Keys are case-insensitive and may use dashes. Raises SettingError saying what is allowed.
    """
    name = _setting_key(key)
    return _PARSERS[name](raw)


def with_setting(settings: Settings, key: str, raw: str) -> Settings:
    """A copy of ``settings`` with ``key`` set from command-line text ``raw``."""
    name = _setting_key(key)
    return dataclasses.replace(settings, **{name: _PARSERS[name](raw)})


def settings_as_dict(settings: Settings) -> dict:
    """The settings as a JSON-ready dict in declaration order (tuples become lists)."""
    data = {}
    for field in dataclasses.fields(settings):
        value = getattr(settings, field.name)
        data[field.name] = list(value) if isinstance(value, tuple) else value
    return data


def _from_dict(data: dict, where: str) -> Settings:
    errors, values = [], {}
    for key, value in data.items():
        if key not in _PARSERS:
            errors.append(f"{where}: {_unknown_key(key)}")
            continue
        try:
            values[key] = _PARSERS[key](value)
        except SettingError as err:
            errors.append(f"{where}: {err}")
    if errors:
        raise SettingError("\n".join(errors))
    return Settings(**values)


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
    return _from_dict(data, str(path))


def save_settings(path: Path, settings: Settings) -> None:
    """Atomically write all settings to ``path`` as indented JSON, after validating every value.

    Validation first means a ``Settings`` built in code with a bad value cannot produce a file
    that :func:`load_settings` would refuse.
    """
    data = settings_as_dict(settings)
    _from_dict(data, "cannot save settings")
    atomic_write_text(Path(path), json.dumps(data, indent=2, ensure_ascii=False) + "\n")
