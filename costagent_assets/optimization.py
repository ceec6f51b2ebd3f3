"""Savings you can act on: idle and oversized resources and commitments, each with $ per month.

A scanner (``resources/aws_scanner.py``, or the demo one) gathers facts: one inventory row per resource
with the metrics of the lookback window, Cost Explorer's commitment recommendations and utilisation, and
a status per account. The rules here turn those facts into findings. Pure functions on polars frames: no
clients, no Dagster.

**What a saving is worth.** Each rule states the resource's current monthly cost at list price
(``aws_prices``) and the share of it the action saves. Where the account's own cost data bills the
resource's usage type in that region (``raw_costs.usage_type``, e.g. ``USE1-BoxUsage:m5.2xlarge`` in a
FOCUS/CUR export), the current cost is the billed one instead: the usage type's run rate over the month
so far, shared among the scanned resources of that type and region (per instance, per GB, per address).
The share saved is then applied to that billed cost. A finding with neither a price nor a billed cost has
no estimate (null), never $0. One finding per resource: when several rules fire, the largest saving
stands, so totals never count a resource twice.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import polars as pl

from costagent_assets import aws_prices as prices
from costagent_assets.settings import Settings

# ---------------------------------------------------------------------------------------------------------
# The scanners' frames

INVENTORY_SCHEMA: dict[str, pl.DataType] = {
    "account_id": pl.String,
    "region": pl.String,  # "global" never: S3 buckets carry their own region
    "resource_type": pl.String,  # ec2_instance, ebs_volume, ebs_snapshot, rds_instance, lambda_function, s3_bucket, elastic_ip
    "resource_id": pl.String,
    "name": pl.String,  # Name tag, function or bucket name, public IP
    "size": pl.String,  # instance type, DB instance class, volume type
    "state": pl.String,  # running, available, in-use, ...
    "created": pl.Datetime("us", "UTC"),  # snapshot start time, volume creation, ...
    "size_gb": pl.Float64,
    "iops": pl.Float64,
    "throughput": pl.Float64,
    "multi_az": pl.Boolean,
    "environment": pl.String,  # value of the Environment/Env/Stage tag (any case), lower-cased
    "asg_name": pl.String,  # EC2: the Auto Scaling group it belongs to
    "asg_size": pl.Int64,
    "data_volumes": pl.Int64,  # EC2: attached EBS volumes besides the root volume
    "lifecycle": pl.String,  # EC2: "spot" or null (on demand)
    "architecture": pl.String,  # Lambda: x86_64 | arm64
    "memory_mb": pl.Float64,  # Lambda: configured memory
    "associated": pl.Boolean,  # Elastic IP
    "has_lifecycle": pl.Boolean,  # S3
    "backs_image": pl.Boolean,  # snapshot behind an AMI (deleting it needs the AMI deregistered first)
    # Metrics of the lookback window (daily datapoints from CloudWatch GetMetricData).
    "metric_days": pl.Int64,  # days with a datapoint of the resource's main metric
    "cpu_avg_pct": pl.Float64,
    "cpu_peak_pct": pl.Float64,  # the highest datapoint of the Maximum statistic
    "network_mb_per_day": pl.Float64,  # NetworkIn + NetworkOut, MB (10^6 bytes) per day
    "connections_max": pl.Float64,  # RDS DatabaseConnections, Maximum
    "memory_used_max_mb": pl.Float64,  # Lambda Insights used_memory_max, Maximum
    "duration_ms_sum": pl.Float64,  # Lambda Duration, Sum over the window
    "invocations": pl.Float64,
    "standard_gb": pl.Float64,  # S3 BucketSizeBytes, StandardStorage, latest day
}

COMMITMENT_SCHEMA: dict[str, pl.DataType] = {
    "account_id": pl.String,
    "kind": pl.String,  # ri_purchase, sp_purchase, ri_utilisation, sp_utilisation
    "resource_id": pl.String,  # reservation / Savings Plan id, or the recommended offering
    "region": pl.String,
    "size": pl.String,  # instance type or family
    "service": pl.String,
    "quantity": pl.Float64,  # RIs to buy; hourly commitment of a Savings Plan
    "utilisation_pct": pl.Float64,
    "monthly_savings_usd": pl.Float64,  # purchase recommendations: Cost Explorer's estimate
    "unused_usd": pl.Float64,  # utilisation: unused commitment over the window
    "window_days": pl.Float64,
    "term": pl.String,
    "payment_option": pl.String,
    "detail": pl.String,  # Cost Explorer's figures worth quoting (break-even, upfront, ...)
}

STATUS_SCHEMA: dict[str, pl.DataType] = {
    "account_id": pl.String,
    "status": pl.String,  # ok | partial | unavailable
    "reason": pl.String,  # why unavailable or partial; null when ok
    "api_calls": pl.Int64,  # requests sent for this account, retries included
    "retries": pl.Int64,  # throttled or failed attempts that were retried
    "regions": pl.String,
    "resources": pl.Int64,
    "seconds": pl.Float64,
}


def frame(rows: Iterable[dict], schema: dict[str, pl.DataType]) -> pl.DataFrame:
    """Rows (dicts, missing keys null) as a frame with exactly ``schema``'s columns."""
    rows = list(rows)
    if not rows:
        return pl.DataFrame(schema=schema)
    return pl.DataFrame([{k: r.get(k) for k in schema} for r in rows], schema=schema)


# ---------------------------------------------------------------------------------------------------------
# Thresholds


# The defaults live in one place, the settings; the rules read them under their own names.
_DEFAULTS = Settings()


@dataclass(frozen=True)
class Thresholds:
    """The rules' thresholds, all settings (``costagent config set ...``); defaults documented in the README."""

    lookback_days: int = _DEFAULTS.optimization_lookback_days
    idle_cpu_pct: float = _DEFAULTS.idle_cpu_pct
    idle_network_mb_per_day: float = _DEFAULTS.idle_network_mb_per_day
    underutilized_cpu_pct: float = _DEFAULTS.underutilized_cpu_pct
    underutilized_peak_cpu_pct: float = _DEFAULTS.underutilized_peak_cpu_pct
    snapshot_max_age_days: int = _DEFAULTS.snapshot_max_age_days
    rds_idle_max_connections: float = _DEFAULTS.rds_idle_max_connections
    lambda_memory_used_max_pct: float = _DEFAULTS.lambda_memory_used_max_pct
    nonproduction_environments: tuple[str, ...] = _DEFAULTS.nonproduction_environments
    spot_discount_pct: float = _DEFAULTS.spot_discount_pct
    s3_cold_data_pct: float = _DEFAULTS.s3_cold_data_pct
    commitment_min_utilisation_pct: float = _DEFAULTS.commitment_min_utilisation_pct
    min_monthly_usd: float = _DEFAULTS.optimization_min_monthly_usd

    @classmethod
    def from_settings(cls, settings) -> Thresholds:
        """The thresholds of an installation's settings (same names, but for the two prefixed ones)."""
        renamed = {"lookback_days": "optimization_lookback_days", "min_monthly_usd": "optimization_min_monthly_usd"}
        return cls(**{f: getattr(settings, renamed.get(f, f)) for f in cls.__dataclass_fields__})

    @property
    def min_metric_days(self) -> int:
        """Days with data a metric rule needs: 80% of the window, so a resource a few days old is not judged."""
        return max(1, math.ceil(self.lookback_days * 0.8))


FINDING_COLUMNS: dict[str, pl.DataType] = {
    "account_id": pl.String,
    "kind": pl.String,
    "service": pl.String,
    "resource_type": pl.String,
    "resource_id": pl.String,
    "name": pl.String,
    "region": pl.String,
    "size": pl.String,
    "suggested": pl.String,
    "evidence": pl.String,
    "action": pl.String,
    "current_monthly_usd": pl.Float64,
    "monthly_savings_usd": pl.Float64,
    "estimate_basis": pl.String,  # billed | list_price | cost_explorer | none
    "period_start": pl.Date,
    "period_end": pl.Date,
}

SERVICE = {
    "ec2_instance": "Amazon EC2", "elastic_ip": "Amazon EC2", "ebs_volume": "Amazon EBS",
    "ebs_snapshot": "Amazon EBS", "rds_instance": "Amazon RDS", "lambda_function": "AWS Lambda",
    "s3_bucket": "Amazon S3",
}

# Rules in the order they win a tie for the same resource (an idle instance is not "also" underutilized).
KIND_ORDER = ("ec2_idle", "rds_idle", "ebs_unattached", "eip_unassociated", "ec2_underutilized", "ec2_spot",
              "rds_multi_az_nonprod", "ebs_gp2_to_gp3", "ebs_old_snapshot", "lambda_memory", "s3_no_lifecycle",
              "ri_underutilised", "sp_underutilised", "ri_purchase", "sp_purchase")

KIND_LABELS = {
    "ec2_idle": "Idle EC2 instance", "ec2_underutilized": "Oversized EC2 instance",
    "ec2_spot": "Spot-eligible EC2 instance", "ebs_unattached": "Unattached EBS volume",
    "ebs_gp2_to_gp3": "gp2 volume (gp3 is cheaper)", "ebs_old_snapshot": "Old EBS snapshot",
    "rds_idle": "Idle RDS instance", "rds_multi_az_nonprod": "Multi-AZ on a non-production database",
    "lambda_memory": "Lambda memory above use", "s3_no_lifecycle": "S3 bucket without lifecycle",
    "eip_unassociated": "Unassociated Elastic IP", "ri_purchase": "Reserved Instance purchase",
    "sp_purchase": "Savings Plan purchase", "ri_underutilised": "Underused Reserved Instances",
    "sp_underutilised": "Underused Savings Plan",
}

_DAYS_PER_MONTH = prices.HOURS_PER_MONTH / 24  # 30.42, the month the list prices use


BILLED_MAX_OVER_LIST = 1.5  # see resource_findings


def _money(x: float) -> str:
    return f"${x:,.2f}"


def _num(x: float | None, digits: int = 1) -> str:
    return "n/a" if x is None else f"{x:,.{digits}f}"


# ---------------------------------------------------------------------------------------------------------
# Usage types: the link between a resource and the account's billed cost


_REGION_PREFIX = re.compile(r"^[A-Z]{2,4}\d?-(?=[A-Za-z])")
_REGION_PREFIX_POLARS = r"^[A-Z]{2,4}\d?-([A-Za-z])"  # the same, for polars' regex (no look-ahead)


def usage_key(usage_type: str | None) -> str | None:
    """A usage type without its region prefix: ``USE1-BoxUsage:m5.large`` -> ``BoxUsage:m5.large``."""
    if usage_type is None:
        return None
    return _REGION_PREFIX.sub("", usage_type, count=1)


def _resource_usage(r: dict) -> tuple[str | None, float]:
    """The usage type (without region prefix) a resource is billed under, and how many units of it it is."""
    kind = r["resource_type"]
    if kind == "ec2_instance" and r["state"] == "running" and r["lifecycle"] != "spot":
        return f"BoxUsage:{r['size']}", 1.0
    if kind == "rds_instance" and r["state"] == "available":
        return f"{'Multi-AZUsage' if r['multi_az'] else 'InstanceUsage'}:{r['size']}", 1.0
    if kind == "ebs_volume" and r["size_gb"]:
        vol = r["size"] or "standard"
        return ("EBS:VolumeUsage" if vol == "standard" else f"EBS:VolumeUsage.{vol}"), float(r["size_gb"])
    if kind == "ebs_snapshot" and r["size_gb"]:
        return "EBS:SnapshotUsage", float(r["size_gb"])
    if kind == "elastic_ip" and not r["associated"]:
        return "PublicIPv4:IdleAddress", 1.0
    if kind == "s3_bucket" and r["standard_gb"]:
        return "TimedStorage-ByteHrs", float(r["standard_gb"])
    return None, 0.0


# Older CURs bill idle addresses as ElasticIP:IdleAddress; both mean the same thing.
_USAGE_ALIASES = {"ElasticIP:IdleAddress": "PublicIPv4:IdleAddress"}

# The services a usage type must be billed under to be the resource's: DocumentDB also bills
# "InstanceUsage:db.r5.large", and CloudWatch and DynamoDB "TimedStorage-ByteHrs". Service names differ
# by source (CUR "Amazon Elastic Compute Cloud", Cost Explorer "EC2 - Other", public IPv4 under VPC).
_USAGE_SERVICES = {
    "BoxUsage": re.compile(r"(?i)elastic compute cloud|\bec2\b"),
    "InstanceUsage": re.compile(r"(?i)relational database|\brds\b"),
    "Multi-AZUsage": re.compile(r"(?i)relational database|\brds\b"),
    "EBS": re.compile(r"(?i)elastic compute cloud|\bec2\b|elastic block store|\bebs\b"),
    "PublicIPv4": re.compile(r"(?i)elastic compute cloud|\bec2\b|virtual private cloud|\bvpc\b"),
    "TimedStorage-ByteHrs": re.compile(r"(?i)simple storage service|\bs3\b"),
}


def _billed_under(key: str, service: str | None) -> bool:
    pattern = _USAGE_SERVICES.get(key.split(":")[0])
    return bool(pattern and service and pattern.search(service))


def billed_unit_costs(raw_costs: pl.DataFrame, inventory: pl.DataFrame, days_covered: int) -> dict:
    """(account, region, usage key) -> billed USD per unit per month, where the cost data has the usage type.

    The usage type's cost over the days covered, brought to a month, divided by the units of it the scan
    found in that account and region (instances, GB, addresses).
    """
    if not raw_costs.height or not inventory.height or days_covered <= 0:
        return {}
    billed = (
        raw_costs.filter(pl.col("usage_type").is_not_null() & pl.col("region").is_not_null())
        .with_columns(pl.col("usage_type").str.replace(_REGION_PREFIX_POLARS, "$1").alias("key"))
        .with_columns(pl.col("key").replace(_USAGE_ALIASES))
        .group_by("account_id", "region", "service", "key")
        .agg(pl.col("cost_usd").sum())
    )
    units: dict[tuple[str, str, str], float] = {}
    for r in inventory.iter_rows(named=True):
        key, n = _resource_usage(r)
        if key:
            units[(r["account_id"], r["region"], key)] = units.get((r["account_id"], r["region"], key), 0.0) + n
    out: dict[tuple[str, str, str], float] = {}
    for account, region, service, key, usd in billed.iter_rows():
        n = units.get((account, region, key))
        if n and usd and usd > 0 and _billed_under(key, service):
            out[(account, region, key)] = out.get((account, region, key), 0.0) + usd / days_covered * _DAYS_PER_MONTH / n
    return out


# ---------------------------------------------------------------------------------------------------------
# The rules: one dict per finding, before pricing


def _period(end: datetime, days: int) -> tuple:
    return (end - timedelta(days=days)).date(), (end - timedelta(days=1)).date()


def _finding(r: dict, kind: str, evidence: str, action: str, list_usd: float | None, fraction: float | None,
             suggested: str | None = None, group: str | None = None, how: str = "") -> dict:
    """One rule's finding: ``evidence`` is what was measured, ``how`` how the dollars were computed (after the
    measurement's dates), ``action`` (the title) what to do; the evidence never repeats the title."""
    return {"row": r, "kind": kind, "evidence": evidence, "action": action, "list_usd": list_usd,
            "fraction": fraction, "suggested": suggested, "group": group, "how": how}


WHOLE_COST = "the saving is its whole monthly cost"


def _window(t: Thresholds) -> str:
    return f"over {t.lookback_days} days"


def _ec2_rules(r: dict, t: Thresholds) -> list[dict]:
    if r["state"] != "running" or r["lifecycle"] == "spot":
        return []
    out = []
    price = prices.ec2_monthly(r["size"])
    rid, size = r["resource_id"], r["size"]
    enough = (r["metric_days"] or 0) >= t.min_metric_days and r["cpu_avg_pct"] is not None
    if enough and r["cpu_avg_pct"] < t.idle_cpu_pct and (r["network_mb_per_day"] or 0.0) < t.idle_network_mb_per_day:
        out.append(_finding(
            r, "ec2_idle",
            f"average CPU {_num(r['cpu_avg_pct'])}% (peak {_num(r['cpu_peak_pct'])}%) and network "
            f"{_num(r['network_mb_per_day'])} MB/day {_window(t)}",
            f"Stop or terminate {rid} ({size}); snapshot its volumes first if you need the data", price, 1.0,
            how=WHOLE_COST))
    if enough and r["cpu_avg_pct"] < t.underutilized_cpu_pct and (r["cpu_peak_pct"] or 0.0) < t.underutilized_peak_cpu_pct:
        smaller = prices.smaller_size(size, prices.EC2_HOURLY)
        smaller_price = prices.ec2_monthly(smaller)
        fraction = 1 - smaller_price / price if smaller and price else None
        if smaller:
            out.append(_finding(
                r, "ec2_underutilized",
                f"average CPU {_num(r['cpu_avg_pct'])}%, peak {_num(r['cpu_peak_pct'])}% {_window(t)}; "
                f"{smaller} is the next size down in the {size.split('.')[0]} family",
                f"Resize {rid} from {size} to {smaller}", price, fraction, suggested=smaller,
                how="the saving is the price difference between the two sizes"))
    if r["asg_name"] and (r["asg_size"] or 0) >= 2 and (r["data_volumes"] or 0) == 0:
        out.append(_finding(
            r, "ec2_spot", "", f"Run Auto Scaling group {r['asg_name']} on Spot (a mixed instances policy with "
            "several instance types)", price, t.spot_discount_pct / 100, group=r["asg_name"]))
    return out


def _ebs_rules(r: dict, t: Thresholds) -> list[dict]:
    out = []
    rid, size_gb, vol = r["resource_id"], r["size_gb"] or 0.0, r["size"]
    price = prices.ebs_monthly(vol, size_gb, r["iops"], r["throughput"])
    if r["state"] == "available":
        out.append(_finding(
            r, "ebs_unattached",
            f"{size_gb:,.0f} GB {vol} volume attached to nothing (state available)"
            + (f", created {r['created']:%Y-%m-%d}" if r["created"] else ""),
            f"Snapshot {rid} if you need its data, then delete it", price, 1.0, how=WHOLE_COST))
    if vol == "gp2" and price:
        iops = prices.gp2_baseline_iops(size_gb)
        gp3 = prices.ebs_monthly("gp3", size_gb, max(iops, prices.GP3_FREE_IOPS), prices.GP3_FREE_THROUGHPUT)
        if gp3 is not None and gp3 < price:
            out.append(_finding(
                r, "ebs_gp2_to_gp3",
                f"{size_gb:,.0f} GB gp2 ({iops:,.0f} IOPS baseline); gp3 gives at least 3,000 IOPS and "
                f"125 MB/s for {_money(gp3)}/month against {_money(price)}",
                f"Change {rid} from gp2 to gp3 (online, no downtime)", price, 1 - gp3 / price, suggested="gp3",
                how="the saving is the difference between the two monthly prices"))
    return out


def _snapshot_rules(r: dict, t: Thresholds, end: datetime) -> list[dict]:
    if r["created"] is None or r["backs_image"]:
        return []
    age = (end - r["created"]).days
    if age <= t.snapshot_max_age_days:
        return []
    size_gb = r["size_gb"] or 0.0
    return [_finding(
        r, "ebs_old_snapshot",
        f"{size_gb:,.0f} GB snapshot taken {r['created']:%Y-%m-%d}, {age} days old",
        f"Delete {r['resource_id']} if nothing restores from it, or move it to the archive tier",
        size_gb * prices.SNAPSHOT_GB_MONTH, 1.0,
        how="the saving counts the full volume size at the snapshot rate: snapshots are incremental, so it is an "
            "upper bound")]


def _rds_rules(r: dict, t: Thresholds) -> list[dict]:
    if r["state"] != "available":
        return []
    out = []
    rid, size = r["resource_id"], r["size"]
    price = prices.rds_monthly(size, bool(r["multi_az"]))
    enough = (r["metric_days"] or 0) >= t.min_metric_days and r["connections_max"] is not None
    if enough and r["connections_max"] <= t.rds_idle_max_connections:
        out.append(_finding(
            r, "rds_idle",
            (f"no database connections {_window(t)}" if r["connections_max"] <= 0
             else f"at most {_num(r['connections_max'], 0)} database connections {_window(t)}")
            + (" (Multi-AZ)" if r["multi_az"] else ""),
            f"Stop or delete DB instance {rid} ({size}), after a final snapshot", price, 1.0, how=WHOLE_COST))
    if r["multi_az"] and r["environment"] in t.nonproduction_environments:
        out.append(_finding(
            r, "rds_multi_az_nonprod",
            f"Multi-AZ on a database tagged environment={r['environment']}",
            f"Turn off Multi-AZ on {rid}: a non-production database rarely needs a standby", price, 0.5,
            how="the saving is half the instance's cost: the standby doubles it"))
    return out


def suggested_lambda_memory(used_max_mb: float) -> int:
    """Memory to suggest for a function: its peak use plus 50% headroom, rounded up to 64 MB, at least 128 MB."""
    return max(128, int(math.ceil(used_max_mb * 1.5 / 64.0) * 64))


def _lambda_rules(r: dict, t: Thresholds) -> list[dict]:
    configured, used = r["memory_mb"], r["memory_used_max_mb"]
    if not configured or used is None or r["duration_ms_sum"] is None or not r["metric_days"]:
        return []
    if used / configured * 100 >= t.lambda_memory_used_max_pct:
        return []
    suggested = suggested_lambda_memory(used)
    if suggested >= configured:
        return []
    # The window's duration brought to a month (a function idle on some days is not scaled up as if busy daily).
    gb_seconds = r["duration_ms_sum"] / 1000 * configured / 1024 * _DAYS_PER_MONTH / t.lookback_days
    per_gb_s = prices.LAMBDA_GB_SECOND.get(r["architecture"] or "x86_64", prices.LAMBDA_GB_SECOND["x86_64"])
    return [_finding(
        r, "lambda_memory",
        f"{configured:,.0f} MB configured, at most {used:,.0f} MB used {_window(t)} (Lambda Insights "
        f"used_memory_max); {gb_seconds:,.0f} GB-seconds a month",
        f"Lower {r['name'] or r['resource_id']}'s memory from {configured:,.0f} MB to {suggested:,} MB",
        gb_seconds * per_gb_s, 1 - suggested / configured, suggested=f"{suggested} MB",
        how="the saving is the GB-seconds the lower memory cuts, assuming the duration stays the same")]


def _s3_rules(r: dict, t: Thresholds) -> list[dict]:
    if r["has_lifecycle"] is not False:
        return []
    gb = r["standard_gb"]
    share = t.s3_cold_data_pct / 100 * (1 - prices.S3_STANDARD_IA_GB_MONTH / prices.S3_STANDARD_GB_MONTH)
    size = f"{gb:,.0f} GB in S3 Standard" if gb is not None else "size unknown (no BucketSizeBytes metric)"
    return [_finding(
        r, "s3_no_lifecycle",
        f"no lifecycle rule; {size}",
        f"Add a lifecycle rule to bucket {r['resource_id']} (e.g. to Standard-IA after 30 days, expire old versions)",
        gb * prices.S3_STANDARD_GB_MONTH if gb is not None else None, share,
        how=f"the saving assumes {t.s3_cold_data_pct:g}% of it is cold enough for Standard-IA's lower rate")]


def _eip_rules(r: dict, t: Thresholds) -> list[dict]:
    if r["associated"]:
        return []
    return [_finding(
        r, "eip_unassociated", "not associated with an instance or network interface",
        f"Release Elastic IP {r['name']} ({r['resource_id']}) if nothing needs the address",
        prices.monthly(prices.PUBLIC_IPV4_HOURLY), 1.0,
        how=f"the saving is AWS's ${prices.PUBLIC_IPV4_HOURLY:g} an hour for a public IPv4 address, over a month")]


def resource_findings(inventory: pl.DataFrame, raw_costs: pl.DataFrame, days_covered: int, end: datetime,
                      t: Thresholds) -> pl.DataFrame:
    """The findings about scanned resources (``FINDING_COLUMNS``), priced, one per resource."""
    billed = billed_unit_costs(raw_costs, inventory, days_covered)
    start, stop = _period(end, t.lookback_days)
    rows = []
    for r in inventory.iter_rows(named=True):
        kind = r["resource_type"]
        found = (
            _ec2_rules(r, t) if kind == "ec2_instance"
            else _ebs_rules(r, t) if kind == "ebs_volume"
            else _snapshot_rules(r, t, end) if kind == "ebs_snapshot"
            else _rds_rules(r, t) if kind == "rds_instance"
            else _lambda_rules(r, t) if kind == "lambda_function"
            else _s3_rules(r, t) if kind == "s3_bucket"
            else _eip_rules(r, t) if kind == "elastic_ip"
            else []
        )
        key, units = _resource_usage(r)
        unit_cost = billed.get((r["account_id"], r["region"], key)) if key else None
        for f in found:
            current, basis = f["list_usd"], "list_price"
            # A billed cost per unit far above the on-demand list price means the scan did not see every
            # unit the usage type bills (or the cost data lumps several together): the list price stands.
            if unit_cost is not None and (current is None or unit_cost * units <= current * BILLED_MAX_OVER_LIST):
                current, basis = unit_cost * units, "billed"
            savings = current * f["fraction"] if current is not None and f["fraction"] is not None else None
            rows.append({
                "account_id": r["account_id"], "kind": f["kind"], "service": SERVICE[kind], "resource_type": kind,
                "resource_id": r["resource_id"], "name": r["name"], "region": r["region"], "size": r["size"],
                "suggested": f["suggested"], "evidence": f["evidence"] + (
                    f" ({start:%Y-%m-%d} to {stop:%Y-%m-%d})" if kind not in ("ebs_snapshot", "elastic_ip") else ""
                ) + (f"; {f['how']}" if f["how"] else ""),
                "action": f["action"], "current_monthly_usd": current, "monthly_savings_usd": savings,
                "estimate_basis": basis if savings is not None else "none",
                "period_start": start, "period_end": stop, "_group": f["group"],
            })
    found = one_per_resource(frame(rows, {**FINDING_COLUMNS, "_group": pl.String}))
    return pl.concat([found.filter(pl.col("kind") != "ec2_spot").drop("_group"), _spot_groups(found, t)])


def _spot_groups(found: pl.DataFrame, t: Thresholds) -> pl.DataFrame:
    """Spot findings per Auto Scaling group (one action for the group), from its members' findings."""
    spot = found.filter(pl.col("kind") == "ec2_spot")
    if not spot.height:
        return frame([], FINDING_COLUMNS)
    groups = spot.group_by("account_id", "region", "_group", maintain_order=True).agg(
        pl.len().alias("n"), pl.col("size").unique().sort().str.join(", ").alias("sizes"),
        pl.col("resource_id").sort().str.join(", ").alias("members"),
        *[pl.when(pl.col(c).is_null().all()).then(None).otherwise(pl.col(c).sum()).alias(c)
          for c in ("current_monthly_usd", "monthly_savings_usd")],
        pl.col("action", "service", "estimate_basis", "period_start", "period_end").first(),
    )
    return groups.select(
        "account_id", pl.lit("ec2_spot").alias("kind"), "service",
        pl.lit("auto_scaling_group").alias("resource_type"), pl.col("_group").alias("resource_id"),
        pl.col("_group").alias("name"), "region", pl.col("sizes").alias("size"),
        pl.lit("Spot").alias("suggested"),
        pl.format("{} on-demand {} instances ({}), none with data volumes (stateless) ({} to {}); the saving "
                  f"assumes Spot prices {t.spot_discount_pct:g}% below on-demand",
                  "n", "sizes", "members", pl.col("period_start").dt.strftime("%Y-%m-%d"),
                  pl.col("period_end").dt.strftime("%Y-%m-%d")).alias("evidence"),
        "action", "current_monthly_usd", "monthly_savings_usd", "estimate_basis", "period_start", "period_end",
    ).cast(FINDING_COLUMNS)


def one_per_resource(findings: pl.DataFrame) -> pl.DataFrame:
    """Each resource's largest saving only (ties: the rule listed first in ``KIND_ORDER``)."""
    if not findings.height:
        return findings
    order = {k: i for i, k in enumerate(KIND_ORDER)}
    return (
        findings.with_columns(pl.col("kind").replace_strict(order, default=len(order)).alias("_order"))
        .sort(["monthly_savings_usd", "_order"], descending=[True, False], nulls_last=True)
        .unique(subset=["account_id", "resource_type", "resource_id"], keep="first", maintain_order=True)
        .drop("_order")
    )


# ---------------------------------------------------------------------------------------------------------
# Commitments (Cost Explorer)


def commitment_findings(commitments: pl.DataFrame, end: datetime, t: Thresholds) -> pl.DataFrame:
    """Purchase recommendations (Cost Explorer's monthly savings) and under-used RIs and Savings Plans (the
    unused commitment over the window, brought to a month), as findings."""
    rows = []
    for c in commitments.iter_rows(named=True):
        kind, rid = c["kind"], c["resource_id"]
        start, stop = _period(end, int(c["window_days"] or t.lookback_days))
        base = {"account_id": c["account_id"], "resource_id": rid, "region": c["region"], "size": c["size"],
                "period_start": start, "period_end": stop, "estimate_basis": "cost_explorer"}
        terms = f"{c['term'] or '1 year'}, {c['payment_option'] or 'no upfront'}"
        if kind == "ri_purchase" and (c["monthly_savings_usd"] or 0) > 0:
            count = c["quantity"] or 0
            rows.append({**base, "kind": kind, "service": c["service"] or "Amazon EC2",
                         "resource_type": "reserved_instance", "suggested": f"{count:g} x {c['size']}",
                         "evidence": _cost_explorer("on-demand instance usage", c["detail"]),
                         "action": f"Buy {count:g} {c['size']} Reserved Instances in {c['region']} ({terms})",
                         "monthly_savings_usd": c["monthly_savings_usd"]})
        elif kind == "sp_purchase" and (c["monthly_savings_usd"] or 0) > 0:
            rows.append({**base, "kind": kind, "service": "Savings Plans", "resource_type": "savings_plan",
                         "suggested": f"${c['quantity']:,.3f}/hour",
                         "evidence": _cost_explorer("eligible on-demand compute", c["detail"]),
                         "action": f"Buy a {c['size'] or 'Compute'} Savings Plan committing "
                                   f"${c['quantity']:,.3f}/hour ({terms})",
                         "monthly_savings_usd": c["monthly_savings_usd"]})
        elif kind in ("ri_utilisation", "sp_utilisation") and c["utilisation_pct"] is not None:
            if c["utilisation_pct"] >= t.commitment_min_utilisation_pct or not c["unused_usd"]:
                continue
            days = c["window_days"] or t.lookback_days
            monthly_unused = c["unused_usd"] / days * _DAYS_PER_MONTH
            what = "Reserved Instances" if kind == "ri_utilisation" else "Savings Plan"
            rows.append({**base, "kind": "ri_underutilised" if kind == "ri_utilisation" else "sp_underutilised",
                         "service": "Amazon EC2" if kind == "ri_utilisation" else "Savings Plans",
                         "resource_type": "reserved_instance" if kind == "ri_utilisation" else "savings_plan",
                         "evidence": f"{what} {rid} used {c['utilisation_pct']:.1f}% {_window_days(days)}: "
                                     f"{_money(c['unused_usd'])} of commitment unused; {c['detail'] or ''}".rstrip("; ")
                                     + "; the saving is the unused commitment brought to a month",
                         "action": (f"Move matching usage onto reservation {rid} ({c['size'] or 'its type'}) or "
                                    "exchange it (convertible) / sell it on the RI Marketplace (standard)")
                         if kind == "ri_utilisation"
                         else f"Move eligible compute onto Savings Plan {rid} before buying more commitment",
                         "current_monthly_usd": monthly_unused, "monthly_savings_usd": monthly_unused})
    return frame(rows, FINDING_COLUMNS)


def _cost_explorer(usage: str, detail: str | None) -> str:
    """A purchase recommendation's evidence: where Cost Explorer looked and how it priced the saving (the
    commitment itself is in the title)."""
    return (f"Cost Explorer's lookback of this account's {usage}{', ' + detail if detail else ''}; "
            "the saving is its estimate against on-demand rates")


def _window_days(days: float) -> str:
    return f"over {days:g} days"


# ---------------------------------------------------------------------------------------------------------
# Savings a team believes: never more than the account spends where the saving would come from

# Spend families of the cost data: each service, in any source's spelling, in one family (first match wins).
_FAMILIES = (
    ("rds", re.compile(r"(?i)relational database|\brds\b")),
    ("lambda", re.compile(r"(?i)lambda")),
    ("s3", re.compile(r"(?i)simple storage service|\bs3\b")),
    ("ebs", re.compile(r"(?i)ec2 - other|elastic block store|\bebs\b")),
    ("ec2", re.compile(r"(?i)elastic compute cloud|\bec2\b")),
    ("vpc", re.compile(r"(?i)virtual private cloud|\bvpc\b")),
)
# The families whose spend a finding's saving comes out of (an idle address is billed under VPC or EC2).
FINDING_FAMILIES = {
    "ec2_instance": ("ec2",), "auto_scaling_group": ("ec2",), "ebs_volume": ("ebs",), "ebs_snapshot": ("ebs",),
    "elastic_ip": ("vpc", "ebs", "ec2"), "rds_instance": ("rds",), "lambda_function": ("lambda",),
    "s3_bucket": ("s3",), "reserved_instance": ("ec2",), "savings_plan": ("ec2", "lambda"),
}
# A Savings Plan is sized to cover at most this share of the eligible on-demand spend: usage dips, and a
# commitment above the floor of the usage is paid for unused.
SP_MAX_COVERAGE = 0.8
_NO_REGION = ("global", "", None)


def family_of(service: str | None) -> str | None:
    """The spend family of a cost-data service name (``Amazon Elastic Compute Cloud - Compute`` -> ``ec2``)."""
    return next((name for name, pattern in _FAMILIES if service and pattern.search(service)), None)


def monthly_spend(raw_costs: pl.DataFrame, days_covered: int) -> pl.DataFrame:
    """account_id, family, region, usd: each account's spend per family and region, brought to a month."""
    if not raw_costs.height or days_covered <= 0:
        return pl.DataFrame(schema={"account_id": pl.String, "family": pl.String, "region": pl.String, "usd": pl.Float64})
    services = raw_costs["service"].unique().to_list()
    families = pl.DataFrame({"service": services, "family": [family_of(s) for s in services]},
                            schema={"service": pl.String, "family": pl.String})
    return (
        raw_costs.join(families, on="service", how="left")
        .group_by("account_id", pl.col("family").fill_null("other"), pl.col("region").fill_null("global"))
        .agg((pl.col("cost_usd").sum() / days_covered * _DAYS_PER_MONTH).alias("usd"))
    )


def relevant_spend(spend: pl.DataFrame) -> tuple[dict, dict, dict]:
    """(per (account, family, region), per (account, family), per account) monthly spend, from :func:`monthly_spend`."""
    by_region: dict[tuple, float] = {}
    by_family: dict[tuple, float] = {}
    total: dict[str, float] = {}
    for account, family, region, usd in spend.iter_rows():
        by_region[(account, family, region)] = by_region.get((account, family, region), 0.0) + usd
        by_family[(account, family)] = by_family.get((account, family), 0.0) + usd
        total[account] = total.get(account, 0.0) + usd
    return by_region, by_family, total


def believable(findings: pl.DataFrame, raw_costs: pl.DataFrame, days_covered: int) -> pl.DataFrame:
    """The findings an account's own spend supports (accounts without cost data are left as they are).

    A finding in a region or service where the account has no cost is dropped: the resource is not its, or
    not billed to it. The findings drawing on the same spend (family, and region where the cost data has
    regions) never add up to more than it: larger ones are scaled down, saying so. A Savings Plan purchase is
    sized to at most ``SP_MAX_COVERAGE`` of the account's eligible on-demand compute (EC2 and Lambda), its
    hourly commitment scaled with it. Last, an account's findings never add up to more than its whole spend.
    """
    if not findings.height or not raw_costs.height or days_covered <= 0:
        return findings
    by_region, by_family, total = relevant_spend(monthly_spend(raw_costs, days_covered))
    regional = {(a, f) for a, f, r in by_region if r not in _NO_REGION}
    rows, groups = [], {}
    for r in findings.iter_rows(named=True):
        account = r["account_id"]
        families = FINDING_FAMILIES.get(r["resource_type"])
        if account not in total or families is None:
            rows.append(r)
            continue
        by_place = r["region"] not in _NO_REGION and any((account, f) in regional for f in families)
        region = r["region"] if by_place else None
        bound = sum(by_region.get((account, f, region), 0.0) if by_place else by_family.get((account, f), 0.0)
                    for f in families)
        if bound <= 0:
            continue  # no cost there: not a saving this account can make
        where = f" in {region}" if region else ""
        if r["kind"] == "sp_purchase":
            r = _size_savings_plan(r, bound)
            if r is None:
                continue
        groups.setdefault((account, families, region), (bound, where, []))[2].append(len(rows))
        rows.append(r)
    for (_account, families, _region), (bound, where, members) in groups.items():
        known = sum(rows[i]["monthly_savings_usd"] or 0.0 for i in members)
        if known > bound:
            label = "/".join(f.upper() if len(f) <= 3 else f.capitalize() for f in families)
            for i in members:
                rows[i] = _scaled(rows[i], bound / known,
                                  f"scaled to this account's {_money(bound)} a month of {label} spend{where}")
    out = frame(rows, FINDING_COLUMNS)
    sums = out.group_by("account_id").agg(pl.col("monthly_savings_usd").sum()).iter_rows()
    for account, usd in list(sums):
        if account in total and usd and usd > total[account]:
            out = pl.concat([out.filter(pl.col("account_id") != account), frame(
                (_scaled(r, total[account] / usd, f"scaled to this account's {_money(total[account])} a month in all")
                 for r in out.filter(pl.col("account_id") == account).iter_rows(named=True)), FINDING_COLUMNS)])
    return out


def _scaled(r: dict, factor: float, why: str) -> dict:
    def scale(x: float | None) -> float | None:
        return None if x is None else x * factor

    return {**r, "monthly_savings_usd": scale(r["monthly_savings_usd"]),
            "current_monthly_usd": scale(r["current_monthly_usd"]), "evidence": f"{r['evidence']}; {why}"}


def _size_savings_plan(r: dict, eligible: float) -> dict | None:
    """A Savings Plan purchase no larger than ``SP_MAX_COVERAGE`` of the eligible on-demand spend."""
    saved = r["monthly_savings_usd"] or 0.0
    hourly = _hourly(r["suggested"])
    if hourly is None or saved <= 0:
        return r
    covered = hourly * prices.HOURS_PER_MONTH + saved  # the on-demand spend the commitment replaces
    cap = eligible * SP_MAX_COVERAGE
    if covered <= cap:
        return r
    factor = cap / covered
    new_hourly = hourly * factor
    if new_hourly < 0.001:
        return None
    old, new = f"${hourly:,.3f}/hour", f"${new_hourly:,.3f}/hour"
    return {**r, "monthly_savings_usd": saved * factor, "suggested": new,
            "action": r["action"].replace(old, new),
            "evidence": r["evidence"].replace(old, new) + (
                f"; sized to {SP_MAX_COVERAGE:.0%} of this account's {_money(eligible)} a month of eligible "
                f"on-demand compute (Cost Explorer suggested {old})")}


def _hourly(suggested: str | None) -> float | None:
    match = re.fullmatch(r"\$([\d,]+\.?\d*)/hour", suggested or "")
    return float(match.group(1).replace(",", "")) if match else None


# ---------------------------------------------------------------------------------------------------------
# Together


def find_opportunities(inventory: pl.DataFrame, commitments: pl.DataFrame, raw_costs: pl.DataFrame,
                       days_covered: int, end: datetime, t: Thresholds) -> pl.DataFrame:
    """Every finding of the scanned accounts, ranked by $/month within each account (1 = largest).

    Findings the account's own spend does not support are dropped or scaled down (:func:`believable`);
    findings below ``min_monthly_usd`` are dropped; those without an estimate are kept, ranked last.
    """
    both = believable(pl.concat([resource_findings(inventory, raw_costs, days_covered, end, t),
                                 commitment_findings(commitments, end, t)]), raw_costs, days_covered)
    kept = both.filter(pl.col("monthly_savings_usd").is_null() | (pl.col("monthly_savings_usd") >= t.min_monthly_usd))
    return rank(kept)


def rank(findings: pl.DataFrame) -> pl.DataFrame:
    """Findings sorted by account, then $/month (largest first, unknown last), with ``rank`` within the account."""
    ordered = findings.with_columns(pl.col("monthly_savings_usd").round(2), pl.col("current_monthly_usd").round(2)).sort(
        ["account_id", "monthly_savings_usd", "kind", "resource_id"], descending=[False, True, False, False],
        nulls_last=True,
    )
    return ordered.with_columns(pl.int_range(1, pl.len() + 1).over("account_id").cast(pl.Int32).alias("rank"))


def account_rows(accounts: Sequence[str], status: pl.DataFrame, findings: pl.DataFrame,
                 scanner: str) -> pl.DataFrame:
    """One row per account of the run: the scan's status, why, its API calls, and the findings' total."""
    by_id = {r["account_id"]: r for r in status.iter_rows(named=True)}
    totals = dict(
        findings.group_by("account_id").agg(pl.col("monthly_savings_usd").sum()).iter_rows()
    ) if findings.height else {}
    counts = dict(findings.group_by("account_id").len().iter_rows()) if findings.height else {}
    rows = []
    for account in accounts:
        s = by_id.get(account)
        rows.append({
            "account_id": account,
            "scan_status": s["status"] if s else "not_scanned",
            "reason": s["reason"] if s else "the scanner returned nothing for this account",
            "api_calls": s["api_calls"] if s else 0,
            "retries": s["retries"] if s else 0,
            "regions": s["regions"] if s else None,
            "resources_scanned": s["resources"] if s else 0,
            "findings": counts.get(account, 0),
            # Unavailable or not scanned: unknown, never $0.
            "monthly_savings_usd": (None if (s is None or s["status"] in ("unavailable", "not_scanned"))
                                    else round(totals.get(account, 0.0), 2)),
            "scanner": scanner,
        })
    return pl.DataFrame(rows, schema={
        "account_id": pl.String, "scan_status": pl.String, "reason": pl.String, "api_calls": pl.Int64,
        "retries": pl.Int64, "regions": pl.String, "resources_scanned": pl.Int64, "findings": pl.Int64,
        "monthly_savings_usd": pl.Float64, "scanner": pl.String,
    })
