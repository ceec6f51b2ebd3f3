"""A deterministic synthetic AWS organisation: the built-in demo the pipeline runs on without credentials.

Every cost is a pure function of (seed, account, service, line, day). Per-account parameters come from a
counter-based stream keyed on a BLAKE2 hash of the strings (Python's ``hash()`` is salted per process);
daily noise is splitmix64 of (line key, day), evaluated on UInt64 columns in polars. So a window or a
subset of accounts gives exactly the same values as the same rows of a larger generation, and ``as_of``
only clips.

The organisation has planted anomalies with a known ground truth (``planted_anomalies``), and is built so
that the month-to-date rule "days 1..d of this month vs days 1..d of last month, up by > 20% and > $100"
fires on planted anomalies only: trend, weekly seasonality and noise stay well inside it.

Polars and the standard library only: no numpy (not a project dependency), no I/O, no dagster.
"""

from __future__ import annotations

import calendar
import hashlib
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from functools import cache, lru_cache

import polars as pl

from costagent_assets.schemas import SCHEMAS

DEMO_SEED = 42
DEMO_EPOCH = date(2024, 1, 1)  # first day any demo data exists

SERVICES: list[str] = [
    "Amazon Elastic Compute Cloud - Compute",
    "EC2 - Other",
    "Amazon Relational Database Service",
    "Amazon Simple Storage Service",
    "AWS Lambda",
    "AmazonCloudWatch",
    "AWS Data Transfer",
    "Amazon DynamoDB",
    "Amazon Elastic Container Service",
    "Amazon Elastic Kubernetes Service",
    "Amazon ElastiCache",
    "Amazon OpenSearch Service",
    "Amazon Simple Queue Service",
    "Amazon Simple Notification Service",
    "Amazon Virtual Private Cloud",
    "Amazon Route 53",
    "AWS Key Management Service",
    "AWS Secrets Manager",
    "Amazon CloudFront",
    "Amazon Kinesis",
    "AWS Glue",
    "Amazon Athena",
    "Amazon SageMaker",
    "AWS Backup",
]

# The raw_costs columns a cost source delivers (the pipeline adds ``month``; the demo has one currency
# and no charge categories).
COST_SCHEMA = {
    name: SCHEMAS["raw_costs"][name]
    for name in ("date", "account_id", "service", "region", "usage_type", "cost_usd", "source")
}

# --- Shape of the organisation -------------------------------------------------------------------------

_CORE_SERVICES = SERVICES[0], "Amazon Simple Storage Service", "AmazonCloudWatch", "AWS Data Transfer"
_EMAIL_DOMAIN = "demo.costagent.example"  # .example is reserved (RFC 2606): demo mail can never be delivered
_REFERENCE = date(2025, 7, 1)  # where an account's scale is defined; trend compounds both ways from here
_BUDGET_REFERENCE = date(2026, 10, 15)  # budgets are set near the spend expected around this day
_DAYS_PER_MONTH = 30.44
_NOISE = 0.03  # daily noise is triangular on [-3%, +3%]
_LATE_SHARE = 0.08  # accounts created after the epoch
_LATE_FIRST = date(2025, 6, 1)
_LATE_MONTHS = 16  # 2025-06 .. 2026-09
_LATE_SERVICE_SHARE = 0.12  # optional services that appear during the history
_LATE_SERVICE_MONTHS = 47  # natural new services start in 2024-02 .. 2027-12
# A natural new service must be unambiguous for the MTD rule: clearly above its $100 floor within a week,
# or so small that its whole first month stays under $40. Anything in between starts with the account.
_NATURAL_NEW_TINY = 1.0
_NATURAL_NEW_MATERIAL = 60.0

# Plants: an account can only have one in every _PLANT_CYCLE months, so last month is always a clean
# baseline for this month's plant.
_PLANT_CYCLE = 6
# Accounts sharing a phase get evenly spaced plant rolls by slot, so each month has about the same number
# of plants (~14 x 0.66 above floor, ~14 x 0.26 below) instead of a binomial spread.
_PLANT_SLOTS = 14
_P_ABOVE = 0.66
_P_BELOW = 0.26
_GOLDEN_FRACTION = 0.6180339887498949
_DETECT_BY_DAY = 16
_MIN_MTD_DAY = 7  # the MTD rule needs a week of data
_FLOOR_USD = 100.0
_ABOVE_USD = 3 * _FLOOR_USD
_BELOW_MAX_USD = 40.0
_MATERIAL_SERVICE_USD = 15.0  # spikes and steps go on services at least this big, where there is one
_MIN_SERVICES, _MAX_SERVICES = 8, 20  # distinct services of an account, planted new ones included

_REGION_PREFIX = {
    "us-east-1": "USE1",
    "us-east-2": "USE2",
    "us-west-2": "USW2",
    "eu-west-1": "EUW1",
    "eu-central-1": "EUC1",
    "ap-southeast-2": "APS2",
    "ap-northeast-1": "APN1",
}
_HOME_REGIONS = ("us-east-1", "eu-west-1", "us-west-2", "eu-central-1", "ap-southeast-2", "ap-northeast-1")
_HOME_REGION_WEIGHTS = (45, 20, 15, 10, 5, 5)

# Weekend reduction by load profile: compute follows office hours, requests a little, storage not at all.
_DIP_RANGE = {"compute": (0.12, 0.28), "request": (0.03, 0.10), "storage": (0.0, 0.0)}


@dataclass(frozen=True)
class _ServiceSpec:
    name: str
    weight: tuple[float, float] | None  # share of the account's spend (log-uniform); None: small fixed cost
    usages: tuple[tuple[str, str], ...]  # (usage type template, load profile); {r}/{r2}: region prefixes
    is_global: bool = False


# fmt: off
_SPECS = {
    spec.name: spec
    for spec in (
        _ServiceSpec(SERVICES[0], (15, 40), (
            ("{r}-BoxUsage:m5.xlarge", "compute"), ("{r}-BoxUsage:c6i.2xlarge", "compute"),
            ("{r}-BoxUsage:r6g.large", "compute"), ("{r}-SpotUsage:m5.2xlarge", "compute"))),
        _ServiceSpec("EC2 - Other", (3, 12), (
            ("{r}-EBS:VolumeUsage.gp3", "storage"), ("{r}-NatGateway-Hours", "storage"),
            ("{r}-EBS:SnapshotUsage", "storage"), ("{r}-NatGateway-Bytes", "request"))),
        _ServiceSpec("Amazon Relational Database Service", (5, 25), (
            ("{r}-InstanceUsage:db.r6g.xlarge", "storage"), ("{r}-RDS:GP3-Storage", "storage"),
            ("{r}-Multi-AZUsage:db.m5.large", "storage"))),
        _ServiceSpec("Amazon Simple Storage Service", (2, 15), (
            ("{r}-TimedStorage-ByteHrs", "storage"), ("{r}-Requests-Tier1", "request"),
            ("{r}-TimedStorage-INT-FA-ByteHrs", "storage"))),
        _ServiceSpec("AWS Lambda", (0.5, 8), (
            ("{r}-Lambda-GB-Second", "compute"), ("{r}-Request", "compute"),
            ("{r}-Lambda-GB-Second-ARM", "compute"))),
        _ServiceSpec("AmazonCloudWatch", (1, 5), (
            ("{r}-CW:MetricMonitorUsage", "storage"), ("{r}-DataProcessing-Bytes", "request"),
            ("{r}-TimedStorage-ByteHrs", "storage"))),
        _ServiceSpec("AWS Data Transfer", (1, 8), (
            ("{r}-DataTransfer-Out-Bytes", "request"), ("{r}-DataTransfer-Regional-Bytes", "request"),
            ("{r}-{r2}-AWS-Out-Bytes", "request"))),
        _ServiceSpec("Amazon DynamoDB", (1, 10), (
            ("{r}-ReadRequestUnits", "request"), ("{r}-WriteRequestUnits", "request"),
            ("{r}-TimedStorage-ByteHrs", "storage"))),
        _ServiceSpec("Amazon Elastic Container Service", (2, 12), (
            ("{r}-Fargate-vCPU-Hours:perCPU", "compute"), ("{r}-Fargate-GB-Hours", "compute"))),
        _ServiceSpec("Amazon Elastic Kubernetes Service", (1, 5), (
            ("{r}-AmazonEKS-Hours:perCluster", "storage"), ("{r}-AmazonEKS-Hours:ExtendedSupport", "storage"))),
        _ServiceSpec("Amazon ElastiCache", (1, 8), (
            ("{r}-NodeUsage:cache.r6g.large", "storage"), ("{r}-NodeUsage:cache.m5.large", "storage"))),
        _ServiceSpec("Amazon OpenSearch Service", (2, 12), (
            ("{r}-ESInstance:r6g.large.search", "storage"), ("{r}-ES:GP3-Storage", "storage"))),
        _ServiceSpec("Amazon Simple Queue Service", None, (
            ("{r}-Requests-Tier1", "request"), ("{r}-Requests-FIFO-Tier1", "request"))),
        _ServiceSpec("Amazon Simple Notification Service", None, (
            ("{r}-Requests-Tier1", "request"), ("{r}-DeliveryAttempts-HTTP", "request"))),
        _ServiceSpec("Amazon Virtual Private Cloud", (0.5, 3), (
            ("{r}-VpcEndpoint-Hours", "storage"), ("{r}-PublicIPv4:InUseAddress", "storage"))),
        _ServiceSpec("Amazon Route 53", None, (("HostedZone", "storage"), ("DNS-Queries", "request")),
                     is_global=True),
        _ServiceSpec("AWS Key Management Service", None, (
            ("{r}-KMS-Keys", "storage"), ("{r}-KMS-Requests", "request"))),
        _ServiceSpec("AWS Secrets Manager", None, (
            ("{r}-AWSSecretsManager-Secrets", "storage"), ("{r}-AWSSecretsManagerAPIRequest", "request"))),
        _ServiceSpec("Amazon CloudFront", (1, 8), (
            ("US-DataTransfer-Out-Bytes", "request"), ("EU-DataTransfer-Out-Bytes", "request"),
            ("US-Requests-Tier1", "request")), is_global=True),
        _ServiceSpec("Amazon Kinesis", (1, 6), (
            ("{r}-ShardHour", "storage"), ("{r}-PutRequestPayloadUnits", "request"))),
        _ServiceSpec("AWS Glue", (1, 6), (("{r}-ETL-DPU-Hour", "compute"), ("{r}-Crawler-DPU-Hour", "compute"))),
        _ServiceSpec("Amazon Athena", (0.3, 3), (("{r}-DataScannedInTB", "compute"),)),
        _ServiceSpec("Amazon SageMaker", (2, 15), (
            ("{r}-Host:ml.m5.xlarge", "storage"), ("{r}-Train:ml.p3.2xlarge", "compute"),
            ("{r}-Notebk:ml.t3.medium", "compute"))),
        _ServiceSpec("AWS Backup", (0.5, 4), (
            ("{r}-WarmStorage-ByteHrs-EBS", "storage"), ("{r}-WarmStorage-ByteHrs-EFS", "storage"))),
    )
}
# fmt: on
assert list(_SPECS) == SERVICES

_TEAM_DOMAINS = (
    "Payments",
    "Search",
    "Checkout",
    "Identity",
    "Fraud",
    "Billing",
    "Catalog",
    "Recommendations",
    "Messaging",
    "Notifications",
    "Mobile",
    "Growth",
    "Analytics",
    "Data",
    "Machine Learning",
    "Logistics",
    "Inventory",
    "Pricing",
    "Ads",
    "Marketplace",
    "Onboarding",
    "Support",
    "Security",
    "Observability",
    "Developer",
    "Media",
    "Streaming",
    "Maps",
    "Reviews",
    "Loyalty",
    "Subscriptions",
    "Orders",
    "Shipping",
    "Customer",
    "Partner",
    "Risk",
    "Compliance",
    "Ledger",
    "Warehouse",
    "Edge",
)
_TEAM_FUNCTIONS = (
    "Platform",
    "Relevance",
    "Services",
    "API",
    "Infrastructure",
    "Pipeline",
    "Core",
    "Experience",
    "Insights",
    "Engineering",
    "Backend",
    "Frontend",
    "Tooling",
    "Gateway",
    "Storage",
    "Ingestion",
    "Automation",
    "Reliability",
    "Experiments",
    "Integrations",
)
_CC_POOL = (
    "finops",
    "cloud-governance",
    "platform-leads",
    "amara.okafor",
    "lucas.meyer",
    "priya.raman",
    "tom.nguyen",
    "sofia.rossi",
    "kenji.sato",
    "elena.petrova",
    "david.cohen",
    "fatima.haddad",
)

# --- Hashing -------------------------------------------------------------------------------------------

_MASK = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15
_MIX1 = 0xBF58476D1CE4E5B9
_MIX2 = 0x94D049BB133111EB
_UNIX_EPOCH = date(1970, 1, 1)  # polars' Date is days since this


def _stable_key(*parts: object) -> int:
    """A 64-bit key for strings and numbers that is the same in every process and Python version."""
    text = "\x1f".join(str(part) for part in parts)
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")


def _mix64(x: int) -> int:
    """The splitmix64 finaliser on a Python int."""
    x = ((x ^ (x >> 30)) * _MIX1) & _MASK
    x = ((x ^ (x >> 27)) * _MIX2) & _MASK
    return x ^ (x >> 31)


def _mix64_expr(x: pl.Expr) -> pl.Expr:
    """The splitmix64 finaliser on a UInt64 column (polars integer arithmetic wraps; // is a right shift)."""

    def u64(value: int) -> pl.Expr:
        return pl.lit(value, dtype=pl.UInt64)

    x = (x ^ (x // u64(1 << 30))) * u64(_MIX1)
    x = (x ^ (x // u64(1 << 27))) * u64(_MIX2)
    return x ^ (x // u64(1 << 31))


class _Draws:
    """A counter-based stream of uniform draws keyed on strings: draw n depends on nothing but (key, n)."""

    def __init__(self, *key: object) -> None:
        self._base = _stable_key(*key)
        self._count = 0

    def random(self) -> float:
        self._count += 1
        return (_mix64((self._base + self._count * _GOLDEN) & _MASK) >> 11) * 2.0**-53

    def uniform(self, low: float, high: float) -> float:
        return low + (high - low) * self.random()

    def loguniform(self, low: float, high: float) -> float:
        return math.exp(self.uniform(math.log(low), math.log(high)))

    def integer(self, low: int, high: int) -> int:
        """An integer in low..high inclusive."""
        return low + min(int(self.random() * (high - low + 1)), high - low)

    def chance(self, probability: float) -> bool:
        return self.random() < probability

    def choice(self, items: Sequence):
        return items[self.integer(0, len(items) - 1)]

    def weighted(self, items: Sequence, weights: Sequence[float]):
        target = self.random() * sum(weights)
        for item, weight in zip(items, weights, strict=True):
            target -= weight
            if target < 0:
                return item
        return items[-1]

    def sample(self, items: Sequence, k: int) -> list:
        """k distinct items, in their original order."""
        pool = list(range(len(items)))
        for i in range(k):
            j = self.integer(i, len(pool) - 1)
            pool[i], pool[j] = pool[j], pool[i]
        return [items[i] for i in sorted(pool[:k])]


# --- Calendar ------------------------------------------------------------------------------------------


def _month_index(day: date) -> int:
    """Months since DEMO_EPOCH's month."""
    return (day.year - DEMO_EPOCH.year) * 12 + day.month - DEMO_EPOCH.month


def _month_start(index: int) -> date:
    year, month0 = divmod(DEMO_EPOCH.month - 1 + index, 12)
    return date(DEMO_EPOCH.year + year, month0 + 1, 1)


def _month_end(index: int) -> date:
    start = _month_start(index)
    return start.replace(day=calendar.monthrange(start.year, start.month)[1])


def _parse_month(month: str) -> int:
    match = re.fullmatch(r"(\d{4})-(\d{2})", month)
    if not match or not 1 <= int(match[2]) <= 12:
        raise ValueError(f"expected a month as 'YYYY-MM', got {month!r}")
    return _month_index(date(int(match[1]), int(match[2]), 1))


def _unix_day(day: date) -> int:
    return (day - _UNIX_EPOCH).days


# --- The organisation ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlantedAnomaly:
    """One anomaly of the demo's ground truth (planted, or a natural new service starting on the 1st).

    ``above_floor`` True: the service's month-to-date increase over the same days of last month is at
    least 3 x $100 and at least 50% on every day from ``detectable_from`` to the end of ``month``.
    False: it is at least 50% on those days (or the service is new), but at most $40 all month.
    ``detectable_from`` is a "yesterday": the rule fires for as_of = detectable_from + 1 day onwards;
    it is never before the 7th (the rule needs a week) nor after the 16th.
    """

    account_id: str
    service: str
    kind: str  # "spike" | "step" | "new_service"
    start: date  # first affected day
    end: date | None  # last affected day; None = persists
    month: str  # "YYYY-MM" of start: the month whose report must show it
    extra_usd_per_day: float
    above_floor: bool
    detectable_from: date


@dataclass(frozen=True)
class _Segment:
    """A run of daily cost on one (service, region, usage_type) line; lines are the sum of their segments."""

    service: str
    region: str
    usage_type: str
    level: float  # weekday USD/day at `anchor`
    anchor: date
    rate: float  # daily log-growth
    dip: float  # weekend reduction
    first: date
    last: date | None
    noise_key: int

    def weekday_level(self, day: date) -> float:
        """The noise-free weekday cost on `day` (0 outside the segment)."""
        if day < self.first or (self.last is not None and day > self.last):
            return 0.0
        return self.level * math.exp(self.rate * (day - self.anchor).days)


@dataclass(frozen=True)
class _Event:
    """An anomaly before its detectable_from is measured on generated data."""

    kind: str
    service: str
    start: date
    end: date | None
    extra_usd_per_day: float
    above_floor: bool
    segment: _Segment | None  # the planted cost; None for a natural new service (it is a natural line)


@dataclass(frozen=True)
class _Account:
    account_id: str
    created: date
    scale: float  # weekday USD/day at _REFERENCE
    growth: float  # monthly
    home_region: str
    lines: tuple[_Segment, ...]
    natural_new: tuple[_Event, ...]


def _validate_account_id(account_id: str) -> str:
    if not (isinstance(account_id, str) and len(account_id) == 12 and account_id.isdigit()):
        raise ValueError(f"an AWS account id is 12 digits, got {account_id!r}")
    return account_id


@cache
def _trait_salt(seed: int) -> int:
    return _stable_key(seed, "traits")


def _traits(seed: int, account_id: str) -> tuple[int, int, float]:
    """(plant phase, plant slot, lateness draw) of an account, from its id alone.

    Cheap on purpose: demo_teams draws ids until these match the team's index (see _demo_account_id).
    """
    mixed = _mix64(int(account_id) ^ _trait_salt(seed))
    phase, slot = divmod(mixed % (_PLANT_CYCLE * _PLANT_SLOTS), _PLANT_SLOTS)
    return phase, slot, _lateness(mixed)


def _lateness(mixed: int) -> float:
    return (_mix64(mixed) >> 11) * 2.0**-53


def _created(seed: int, account_id: str) -> date:
    late = _traits(seed, account_id)[2]
    if late >= _LATE_SHARE:
        return DEMO_EPOCH
    # Below the threshold the draw is still uniform: reuse it to pick the month.
    return _month_start(_month_index(_LATE_FIRST) + int(late / _LATE_SHARE * _LATE_MONTHS))


def _usage_type(template: str, region: str, home: str) -> str:
    second = "us-west-2" if home == "us-east-1" else "us-east-1"
    return template.format(r=_REGION_PREFIX.get(region, ""), r2=_REGION_PREFIX[second])


def _line_specs(draws: _Draws, spec: _ServiceSpec, home: str) -> list[tuple[str, str, str]]:
    """One or two (region, usage_type, profile) lines of a service in an account."""
    second = "us-west-2" if home == "us-east-1" else "us-east-1"
    regions = ("global", "global") if spec.is_global else (home, second)
    first_usage, *others = draws.sample(spec.usages, len(spec.usages))
    lines = [(regions[0], *first_usage)]
    if draws.chance(0.4):
        if others and (spec.is_global or draws.chance(0.6)):
            lines.append((regions[0], *draws.choice(others)))
        elif not spec.is_global:
            lines.append((regions[1], *first_usage))
    return [(region, _usage_type(template, region, home), profile) for region, template, profile in lines]


# Bounded: a long-lived process may see many (seed, account, month) combinations.
@lru_cache(maxsize=20_000)
def _account(seed: int, account_id: str) -> _Account:
    """The natural (unplanted) shape of one account: its services, lines, levels, trend and seasonality."""
    draws = _Draws(seed, "account", account_id)
    created = _created(seed, account_id)
    scale = draws.loguniform(5, 20_000)
    growth = draws.uniform(-0.02, 0.045)
    home = draws.weighted(_HOME_REGIONS, _HOME_REGION_WEIGHTS)
    optional = [name for name in SERVICES if name not in _CORE_SERVICES]
    n_services = draws.integer(_MIN_SERVICES, _MAX_SERVICES - 2)  # room for planted new services
    chosen = set(_CORE_SERVICES) | set(draws.sample(optional, n_services - len(_CORE_SERVICES)))
    services = [name for name in SERVICES if name in chosen]
    weights = {name: draws.loguniform(*_SPECS[name].weight) for name in services if _SPECS[name].weight}
    per_weight = scale / sum(weights.values())

    lines: list[_Segment] = []
    natural_new: list[_Event] = []
    for name in services:
        spec = _SPECS[name]
        sdraws = _Draws(seed, "service", account_id, name)
        level = (
            weights[name] * per_weight
            if name in weights
            else sdraws.loguniform(0.03, 2.5) * (scale / 300) ** 0.15
        )
        rate = math.log1p(growth + sdraws.uniform(-0.005, 0.005)) / _DAYS_PER_MONTH
        first = created
        if name not in _CORE_SERVICES and sdraws.chance(_LATE_SERVICE_SHARE):
            start = _month_start(sdraws.integer(1, _LATE_SERVICE_MONTHS))
            at_start = level * math.exp(rate * (start - _REFERENCE).days)
            if start > created and not _NATURAL_NEW_TINY < at_start < _NATURAL_NEW_MATERIAL:
                first = start
                natural_new.append(
                    _Event(
                        "new_service",
                        name,
                        start,
                        None,
                        round(at_start, 2),
                        at_start >= _NATURAL_NEW_MATERIAL,
                        None,
                    )
                )
        specs = _line_specs(sdraws, spec, home)
        split = sdraws.uniform(0.55, 0.9) if len(specs) == 2 else 1.0
        for i, (region, usage_type, profile) in enumerate(specs):
            lines.append(
                _Segment(
                    service=name,
                    region=region,
                    usage_type=usage_type,
                    level=level * (split if i == 0 else 1 - split),
                    anchor=_REFERENCE,
                    rate=rate,
                    dip=sdraws.uniform(*_DIP_RANGE[profile]),
                    first=first,
                    last=None,
                    noise_key=_stable_key(seed, account_id, name, region, usage_type, "natural"),
                )
            )
    return _Account(account_id, created, scale, growth, home, tuple(lines), tuple(natural_new))


def account_home_region(seed: int, account_id: str) -> str:
    """The region where the account's regional services run (a second region may carry some lines)."""
    return _account(seed, _validate_account_id(account_id)).home_region


def account_lines(seed: int, account_id: str) -> list[tuple[str, str, float]]:
    """(service, region, usual USD a month) of the account's natural lines: what the demo's savings scanner
    sizes its planted resources from."""
    acct = _account(seed, _validate_account_id(account_id))
    return [(seg.service, seg.region, seg.level * _DAYS_PER_MONTH) for seg in acct.lines]


def _plant_segment(
    seed: int,
    account_id: str,
    index: int,
    line: tuple[str, str, str],
    *,
    level: float,
    start: date,
    rate: float,
    last: date | None = None,
) -> _Segment:
    """Planted cost on a (service, region, usage_type) line: its own noise stream, flat through the week."""
    return _Segment(
        *line,
        level=level,
        anchor=start,
        rate=rate,
        dip=0.0,
        first=start,
        last=last,
        noise_key=_stable_key(seed, account_id, *line, "plant", index),
    )


def _baselines(acct: _Account, earlier: Sequence[_Event], index: int, day: date) -> dict[str, float]:
    """Weekday USD/day on `day` of each service that existed all last month, earlier steps included.

    Spikes and steps only go on these, so last month is a like-for-like baseline.
    """
    baseline_from = _month_start(index - 1)
    levels: dict[str, float] = {}
    for seg in acct.lines:
        if seg.first <= baseline_from:
            levels[seg.service] = levels.get(seg.service, 0.0) + seg.weekday_level(day)
    for event in earlier:
        if event.segment is not None and event.service in levels:
            levels[event.service] += event.segment.weekday_level(day)
    return levels


def _main_line(acct: _Account, service: str) -> tuple[tuple[str, str, str], float]:
    """(service, region, usage_type) and growth rate of the service's first line, where plants land."""
    seg = next(seg for seg in acct.lines if seg.service == service)
    return (seg.service, seg.region, seg.usage_type), seg.rate


def _plant_on_service(
    seed: int, acct: _Account, index: int, draws: _Draws, kind: str, earlier: Sequence[_Event]
) -> _Event | None:
    """An above-floor spike or step on a material service, or None if the account has none."""
    # Steps start early enough that the MTD total is up 50% by the 16th without absurd multiples.
    start = _month_start(index).replace(day=draws.integer(3, 9 if kind == "step" else 12))
    levels = _baselines(acct, earlier, index, start)
    candidates = [s for s, level in levels.items() if level >= _MATERIAL_SERVICE_USD]
    if not candidates and kind == "spike" and levels:
        candidates = [max(levels, key=levels.__getitem__)]  # the last resort of _plant_month
    if not candidates:
        return None
    service = draws.choice(candidates)
    level, (line, rate) = levels[service], _main_line(acct, service)
    if kind == "spike":
        n_days = draws.integer(1, 4)
        # Big enough to keep the month >= 50% up on its last day, and clearly over 3 x the floor.
        total = max(draws.uniform(0.9, 2.0) * _month_end(index).day * level, 1.4 * _ABOVE_USD)
        end = start + timedelta(days=n_days - 1)
        segment = _plant_segment(
            seed, acct.account_id, index, line, level=total / n_days, start=start, rate=0.0, last=end
        )
        return _Event("spike", service, start, end, round(total / n_days, 2), True, segment)
    by_day_16 = _DETECT_BY_DAY + 1 - start.day  # affected days up to the 16th
    factor = max(draws.uniform(0.6, 1.6), 12 / by_day_16)
    extra = max(factor * level, 1.25 * _ABOVE_USD / by_day_16)
    segment = _plant_segment(seed, acct.account_id, index, line, level=extra, start=start, rate=rate)
    return _Event("step", service, start, None, round(extra, 2), True, segment)


def _plant_tiny_step(
    seed: int, acct: _Account, index: int, draws: _Draws, earlier: Sequence[_Event]
) -> _Event | None:
    """A below-floor step: a tiny service triples, staying under $40 of extra all month."""
    start = _month_start(index).replace(day=draws.integer(3, 10))
    affected = _month_end(index).day - start.day + 1
    cap = 0.9 * _BELOW_MAX_USD / (2 * affected * (1 + _NOISE))
    levels = _baselines(acct, earlier, index, start)
    candidates = [s for s, level in levels.items() if 0.02 <= level <= cap]
    if not candidates:
        return None
    service = draws.choice(candidates)
    extra = 2 * levels[service]
    line, rate = _main_line(acct, service)
    segment = _plant_segment(seed, acct.account_id, index, line, level=extra, start=start, rate=rate)
    return _Event("step", service, start, None, round(extra, 4), False, segment)


def _plant_new_service(
    seed: int, acct: _Account, index: int, draws: _Draws, above: bool, used_new: set[str]
) -> _Event | None:
    """A service the account never had: material (above floor) or tiny (below), persisting."""
    natural = {seg.service for seg in acct.lines}
    free = [s for s in SERVICES if s not in used_new and s not in natural]
    if not free or len(natural) + len(used_new) >= _MAX_SERVICES:
        return None
    service = draws.choice(free)
    start = _month_start(index).replace(day=draws.integer(3, 12 if above else 10))
    if above:
        needed = 1.25 * _ABOVE_USD / (_DETECT_BY_DAY + 1 - start.day)
        extra = max(draws.loguniform(30, max(40.0, 0.15 * acct.scale)), needed)
    else:
        affected = _month_end(index).day - start.day + 1
        extra = draws.uniform(0.3, 0.9) * _BELOW_MAX_USD / (affected * (1 + _NOISE))
    used_new.add(service)
    region = "global" if _SPECS[service].is_global else acct.home_region
    line = (service, region, _usage_type(_SPECS[service].usages[0][0], region, acct.home_region))
    segment = _plant_segment(
        seed,
        acct.account_id,
        index,
        line,
        level=extra,
        start=start,
        rate=math.log1p(acct.growth) / _DAYS_PER_MONTH,
    )
    return _Event("new_service", service, start, None, round(extra, 2 if above else 4), above, segment)


def _plant_month(
    seed: int, acct: _Account, index: int, earlier: Sequence[_Event], used_new: set[str]
) -> _Event | None:
    """What, if anything, is planted in one of the account's plant months."""
    slot = _traits(seed, acct.account_id)[1]
    roll = ((slot + 0.5) / _PLANT_SLOTS + (index // _PLANT_CYCLE) * _GOLDEN_FRACTION) % 1.0
    if roll >= _P_ABOVE + _P_BELOW:
        return None
    draws = _Draws(seed, "plant", acct.account_id, index)
    above = roll < _P_ABOVE
    event = None
    if above:
        kind = draws.weighted(("spike", "step", "new_service"), (0.45, 0.4, 0.15))
        if kind != "new_service":
            event = _plant_on_service(seed, acct, index, draws, kind, earlier)
    elif draws.chance(0.7):
        event = _plant_tiny_step(seed, acct, index, draws, earlier)
    # Small accounts have no material service to spike, and some no tiny one to triple: a new service fits
    # all, while the account has room for one; failing that, even a small service can carry a big spike.
    event = event or _plant_new_service(seed, acct, index, draws, above, used_new)
    if event is None and above:
        event = _plant_on_service(seed, acct, index, draws, "spike", earlier)
    return event


@lru_cache(maxsize=20_000)
def _plants(seed: int, account_id: str, through_index: int) -> tuple[tuple[int, _Event], ...]:
    """(month index, event) of every plant in the account's history up to and including a month."""
    acct = _account(seed, account_id)
    phase = _traits(seed, account_id)[0]
    # Never in the creation month: a brand-new account has no baseline to compare with.
    first = max(1, _month_index(acct.created) + 1)
    first += (-(first + phase)) % _PLANT_CYCLE
    events: list[tuple[int, _Event]] = []
    used_new: set[str] = set()
    for index in range(first, through_index + 1, _PLANT_CYCLE):
        event = _plant_month(seed, acct, index, [e for _, e in events], used_new)
        if event is not None:
            events.append((index, event))
    return tuple(events)


def _segments(seed: int, account_id: str, through_index: int) -> list[_Segment]:
    planted = [event.segment for _, event in _plants(seed, account_id, through_index)]
    return [*_account(seed, account_id).lines, *planted]


# --- Generation ----------------------------------------------------------------------------------------


def _daily_values(segments: pl.DataFrame, noise: float = _NOISE) -> pl.DataFrame:
    """Cost per (group, line, day) from segment rows, each already clipped to [first, last] (unix days).

    Columns in: group, line, first, last, level, anchor, rate, dip, noise_key. Out: group, line, day,
    value (rounded to 4 decimals like a bill; several segments of a line are summed first). ``noise`` is
    the half-width of the triangular daily noise (the default keeps the organisation's guarantees).
    """
    day = pl.col("day")
    hashed = _mix64_expr(pl.col("noise_key") + day.cast(pl.UInt64) * pl.lit(_GOLDEN, dtype=pl.UInt64))
    low = (hashed & pl.lit(0xFFFFFFFF, dtype=pl.UInt64)).cast(pl.Float64)
    high = (hashed // pl.lit(1 << 32, dtype=pl.UInt64)).cast(pl.Float64)
    noise = noise * ((low + high) / 2.0**32 - 1.0)  # triangular: bounded, so guarantees are provable
    weekend = ((day + 3) % 7) >= 5  # unix day 0 was a Thursday
    value = (
        pl.col("level")
        * ((day - pl.col("anchor")).cast(pl.Float64) * pl.col("rate")).exp()
        * pl.when(weekend).then(1.0 - pl.col("dip")).otherwise(1.0)
        * (1.0 + noise)
    )
    return (
        segments.lazy()
        .with_columns(day=pl.int_ranges("first", pl.col("last") + 1, dtype=pl.Int32))
        .explode("day")
        # Summed in integer nano-dollars: exact, so the result cannot depend on the order of summation.
        .group_by("group", "line", "day")
        .agg(nano=(value * 1e9).round().cast(pl.Int64).sum())
        .select("group", "line", "day", value=(pl.col("nano").cast(pl.Float64) / 1e9).round(4))
        .collect()
    )


def _segment_frame(rows: list[tuple[int, int, _Segment]], first: date, last: date) -> pl.DataFrame:
    """(group, line, segment) rows clipped to first..last, as the input of _daily_values."""
    lo, hi = _unix_day(first), _unix_day(last)
    kept = []
    for group, line, seg in rows:
        seg_lo = max(lo, _unix_day(seg.first))
        seg_hi = hi if seg.last is None else min(hi, _unix_day(seg.last))
        if seg_lo <= seg_hi:
            kept.append(
                (
                    group,
                    line,
                    seg_lo,
                    seg_hi,
                    seg.level,
                    _unix_day(seg.anchor),
                    seg.rate,
                    seg.dip,
                    seg.noise_key,
                )
            )
    columns = list(zip(*kept, strict=True)) if kept else [()] * 9
    return pl.DataFrame(
        {
            "group": pl.Series(columns[0], dtype=pl.UInt32),
            "line": pl.Series(columns[1], dtype=pl.UInt32),
            "first": pl.Series(columns[2], dtype=pl.Int32),
            "last": pl.Series(columns[3], dtype=pl.Int32),
            "level": pl.Series(columns[4], dtype=pl.Float64),
            "anchor": pl.Series(columns[5], dtype=pl.Int32),
            "rate": pl.Series(columns[6], dtype=pl.Float64),
            "dip": pl.Series(columns[7], dtype=pl.Float64),
            "noise_key": pl.Series(columns[8], dtype=pl.UInt64),
        }
    )


def generate_costs(
    account_ids: Sequence[str],
    start: date,
    end: date,
    *,
    seed: int = DEMO_SEED,
    as_of: date | None = None,
    noise: float = _NOISE,
) -> pl.DataFrame:
    """Daily demo cost rows for days start..end inclusive, in the schema of ``COST_SCHEMA``.

    With ``as_of``, no row is dated on or after it (yesterday is the latest complete day); it only clips.
    No rows before DEMO_EPOCH or an account's creation. Unique on (date, account_id, service, region,
    usage_type); sorted by account_id, date, service, region, usage_type. ``noise`` (default 0.03: daily
    costs within +-3%) can be raised to test how detection degrades; the planted anomalies stay the same.
    """
    last = end if as_of is None else min(end, as_of - timedelta(days=1))
    first = max(start, DEMO_EPOCH)
    ids = sorted({_validate_account_id(a) for a in account_ids})
    if first > last or not ids:
        return pl.DataFrame(schema=COST_SCHEMA)

    through = _month_index(last)
    by_account = {a: _segments(seed, a, through) for a in ids}
    # Line ids follow the output order, so sorting on integers gives the required string order.
    keys = sorted({(a, s.service, s.region, s.usage_type) for a, segs in by_account.items() for s in segs})
    line_of = {key: i for i, key in enumerate(keys)}
    rows = [
        (0, line_of[(a, s.service, s.region, s.usage_type)], s)
        for a, segs in by_account.items()
        for s in segs
    ]
    values = _daily_values(_segment_frame(rows, first, last), noise)

    account_rank = {a: i for i, a in enumerate(ids)}
    lines = pl.DataFrame(
        [(a, service, region, usage, account_rank[a]) for a, service, region, usage in keys],
        schema={
            "account_id": pl.String,
            "service": pl.String,
            "region": pl.String,
            "usage_type": pl.String,
            "rank": pl.UInt32,
        },
        orient="row",
    )
    ordered = values.with_columns(rank=lines["rank"].gather(values["line"])).sort("rank", "day", "line")
    index = ordered["line"]
    return pl.DataFrame(
        {
            "date": ordered["day"].cast(pl.Date),
            "account_id": lines["account_id"].gather(index),
            "service": lines["service"].gather(index),
            "region": lines["region"].gather(index),
            "usage_type": lines["usage_type"].gather(index),
            "cost_usd": ordered["value"],
            "source": pl.repeat("demo", len(ordered), dtype=pl.String, eager=True),
        }
    )


# --- Ground truth --------------------------------------------------------------------------------------


def _detectable_from(current: list[float], previous: list[float], start_day: int, above: bool) -> int | None:
    """First day d (>= the 7th and the start) from which the MTD rule holds on every day to month end."""

    def fires(d: int) -> bool:
        now, before = sum(current[:d]), sum(previous[:d])
        increase = now - before
        big_enough = increase >= _ABOVE_USD if above else increase > 0
        return big_enough and (before == 0 or increase >= 0.5 * before)

    found = None
    for d in range(len(current), max(_MIN_MTD_DAY, start_day) - 1, -1):
        if not fires(d):
            break
        found = d
    return found


def planted_anomalies(
    account_ids: Sequence[str], start_month: str, end_month: str, *, seed: int = DEMO_SEED
) -> list[PlantedAnomaly]:
    """Ground truth: every anomaly in months start_month..end_month ("YYYY-MM") for these accounts.

    Includes natural new services (they start on the 1st). Sorted by month, account_id, start, service.
    ``detectable_from`` is measured on the generated costs themselves.
    """
    lo, hi = _parse_month(start_month), _parse_month(end_month)
    found: list[tuple[int, str, _Event]] = []
    for account_id in sorted({_validate_account_id(a) for a in account_ids}):
        acct = _account(seed, account_id)
        natural = [(_month_index(e.start), e) for e in acct.natural_new]
        for index, event in [*natural, *_plants(seed, account_id, hi)]:
            if lo <= index <= hi:
                found.append((index, account_id, event))
    found.sort(key=lambda item: (item[0], item[1], item[2].start, item[2].service))
    if not found:
        return []

    # Generate each event's whole service over last month and this month, in one vectorised pass.
    frames = []
    for group, (index, account_id, event) in enumerate(found):
        segments = _segments(seed, account_id, index)
        keys = sorted({(s.region, s.usage_type) for s in segments if s.service == event.service})
        rows = [
            (group, keys.index((s.region, s.usage_type)), s) for s in segments if s.service == event.service
        ]
        frames.append(_segment_frame(rows, _month_start(index - 1), _month_end(index)))
    daily = _daily_values(pl.concat(frames)).group_by("group", "day").agg(pl.col("value").sum())
    by_group: dict[int, dict[int, float]] = {}
    for group, day, value in daily.iter_rows():
        by_group.setdefault(group, {})[day] = value

    truth = []
    for group, (index, account_id, event) in enumerate(found):
        values = by_group.get(group, {})
        prev_start, start = _unix_day(_month_start(index - 1)), _unix_day(_month_start(index))
        previous = [values.get(d, 0.0) for d in range(prev_start, start)]
        current = [values.get(d, 0.0) for d in range(start, _unix_day(_month_end(index)) + 1)]
        day = _detectable_from(current, previous, event.start.day, event.above_floor)
        month_start = _month_start(index)
        truth.append(
            PlantedAnomaly(
                account_id=account_id,
                service=event.service,
                kind=event.kind,
                start=event.start,
                end=event.end,
                month=f"{month_start.year:04d}-{month_start.month:02d}",
                extra_usd_per_day=event.extra_usd_per_day,
                above_floor=event.above_floor,
                # A design failure would show as month end; the tests assert it never happens.
                detectable_from=month_start.replace(day=day or len(current)),
            )
        )
    return truth


# --- Teams ---------------------------------------------------------------------------------------------


def _team_names(count: int, seed: int) -> list[str]:
    """Unique plausible names; the order depends on the seed only, so a smaller org is a prefix."""
    combos = sorted(
        (f"{d} {f}" for d in _TEAM_DOMAINS for f in _TEAM_FUNCTIONS),
        key=lambda name: _stable_key(seed, "team-name", name),
    )
    return [
        combos[i % len(combos)] + (f" {i // len(combos) + 1}" if i >= len(combos) else "")
        for i in range(count)
    ]


def _demo_account_id(seed: int, index: int, taken: set[str]) -> str:
    """A unique 12-digit id whose id-derived traits are balanced across the demo organisation.

    The generator derives an account's plant phase, plant slot and creation date from its id alone;
    drawing ids until those match the index gives every month the same number of plants and exactly
    1 in 12 late accounts. Every 10th id starts with 0, so leading zeros are always exercised.
    """
    # Each block of 12 indexes covers every (phase, slot) pair of its 6-index halves exactly once.
    want_phase, want_slot = (index + index // 12) % _PLANT_CYCLE, (index // _PLANT_CYCLE) % _PLANT_SLOTS
    want_traits = want_phase * _PLANT_SLOTS + want_slot
    want_late = index % 12 == 7
    base, salt = _stable_key(seed, "account-id", index), _trait_salt(seed)
    for attempt in range(10_000_000):
        number = _mix64((base + attempt * _GOLDEN) & _MASK) % 10**12
        if index % 10 == 3:
            number %= 10**11
        elif number < 10**11:
            number += 10**11
        # Inlined _traits: this loop runs ~100 times per team (~1000 for a late one).
        mixed = _mix64(number ^ salt)
        if (
            mixed % (_PLANT_CYCLE * _PLANT_SLOTS) != want_traits
            or (_lateness(mixed) < _LATE_SHARE) != want_late
        ):
            continue
        candidate = f"{number:012d}"
        if candidate not in taken:
            return candidate
    raise RuntimeError("could not draw a demo account id")  # pragma: no cover


def _nice_round(amount: float) -> float:
    """Two significant figures, as people write budgets."""
    if amount <= 0:
        return 0.0
    return float(round(amount, 1 - int(math.floor(math.log10(amount)))))


def _typical_monthly_spend(seed: int, account_id: str) -> float:
    """Expected spend of a month around _BUDGET_REFERENCE, weekends and lasting plants included."""
    day = _BUDGET_REFERENCE
    segments = _segments(seed, account_id, _month_index(day))
    daily = sum(seg.weekday_level(day) * (1 - 2 * seg.dip / 7) for seg in segments)
    return daily * _DAYS_PER_MONTH


def demo_teams(n_accounts: int = 84, seed: int = DEMO_SEED) -> list[dict]:
    """The demo organisation's teams, one AWS account each; a smaller n gives a prefix of a larger one.

    Keys: team_name (unique), aws_account_id (12-digit str, unique), team_email (at the reserved .example
    TLD), cc_emails (list[str]; most teams none), monthly_budget (float | None; about half the teams have
    one near their typical spend, a few of them clearly below it so budget alerts happen).
    """
    names = _team_names(n_accounts, seed)
    taken: set[str] = set()
    teams = []
    for index, name in enumerate(names):
        account_id = _demo_account_id(seed, index, taken)
        taken.add(account_id)
        draws = _Draws(seed, "team", index)
        cc = (
            [f"{who}@{_EMAIL_DOMAIN}" for who in draws.sample(_CC_POOL, draws.integer(1, 2))]
            if draws.chance(0.25)
            else []
        )
        budget = None
        if draws.chance(0.5):
            factor = draws.uniform(0.55, 0.8) if draws.chance(0.15) else draws.uniform(1.05, 1.3)
            budget = max(_nice_round(factor * _typical_monthly_spend(seed, account_id)), 10.0)
        slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
        teams.append(
            {
                "team_name": name,
                "aws_account_id": account_id,
                "team_email": f"{slug}@{_EMAIL_DOMAIN}",
                "cc_emails": cc,
                "monthly_budget": budget,
            }
        )
    return teams
