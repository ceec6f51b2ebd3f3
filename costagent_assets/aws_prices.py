"""A small, dated snapshot of AWS on-demand list prices, for savings where the cost data has no figure.

Where an account's own billed cost covers a resource (its usage type in ``raw_costs``), the savings use that
instead (see ``optimization.billed_unit_costs``). These are the public on-demand list prices of
**us-east-1** (EC2: Linux/Unix, shared tenancy; RDS: PostgreSQL, single-AZ), as AWS publishes them on its
pricing pages, where they stood unchanged through 2024 and 2025. The table was written down on
``PRICES_AS_OF`` from that published list: it is not fetched at run time and was not re-checked against AWS
that day, so verify a figure before quoting it. Other regions are priced at these us-east-1 figures (most
are 0-25% dearer, so estimates there are on the low side); for exact regional prices, use a cost source
with usage types (FOCUS/CUR), whose billed cost then takes over.
"""

from __future__ import annotations

import re

PRICES_AS_OF = "2026-11-23"
PRICE_REGION = "us-east-1"
HOURS_PER_MONTH = 730  # AWS's own convention for monthly estimates (8,760 hours / 12)

# USD per hour, on demand, Linux/Unix, us-east-1.
EC2_HOURLY: dict[str, float] = {
    "t2.micro": 0.0116, "t2.small": 0.023, "t2.medium": 0.0464, "t2.large": 0.0928, "t2.xlarge": 0.1856,
    "t2.2xlarge": 0.3712,
    "t3.nano": 0.0052, "t3.micro": 0.0104, "t3.small": 0.0208, "t3.medium": 0.0416, "t3.large": 0.0832,
    "t3.xlarge": 0.1664, "t3.2xlarge": 0.3328,
    "m5.large": 0.096, "m5.xlarge": 0.192, "m5.2xlarge": 0.384, "m5.4xlarge": 0.768, "m5.8xlarge": 1.536,
    "m5.12xlarge": 2.304, "m5.16xlarge": 3.072, "m5.24xlarge": 4.608,
    "m6i.large": 0.096, "m6i.xlarge": 0.192, "m6i.2xlarge": 0.384, "m6i.4xlarge": 0.768, "m6i.8xlarge": 1.536,
    "m6g.medium": 0.0385, "m6g.large": 0.077, "m6g.xlarge": 0.154, "m6g.2xlarge": 0.308, "m6g.4xlarge": 0.616,
    "c5.large": 0.085, "c5.xlarge": 0.17, "c5.2xlarge": 0.34, "c5.4xlarge": 0.68, "c5.9xlarge": 1.53,
    "c6i.large": 0.085, "c6i.xlarge": 0.17, "c6i.2xlarge": 0.34, "c6i.4xlarge": 0.68, "c6i.8xlarge": 1.36,
    "r5.large": 0.126, "r5.xlarge": 0.252, "r5.2xlarge": 0.504, "r5.4xlarge": 1.008, "r5.8xlarge": 2.016,
    "r6i.large": 0.126, "r6i.xlarge": 0.252, "r6i.2xlarge": 0.504, "r6i.4xlarge": 1.008,
    "r6g.medium": 0.0504, "r6g.large": 0.1008, "r6g.xlarge": 0.2016, "r6g.2xlarge": 0.4032,
}

# USD per hour, single-AZ, PostgreSQL, us-east-1 (MySQL is about 4% less). Multi-AZ (one standby) costs twice this.
RDS_HOURLY: dict[str, float] = {
    "db.t3.micro": 0.018, "db.t3.small": 0.036, "db.t3.medium": 0.072, "db.t3.large": 0.145,
    "db.m5.large": 0.178, "db.m5.xlarge": 0.356, "db.m5.2xlarge": 0.712, "db.m5.4xlarge": 1.424,
    "db.r5.large": 0.25, "db.r5.xlarge": 0.50, "db.r5.2xlarge": 1.00,
    "db.r6g.large": 0.225, "db.r6g.xlarge": 0.45, "db.m6g.large": 0.159, "db.m6g.xlarge": 0.318,
}

# EBS, USD per GB-month (and per provisioned IOPS / MB/s-month where they are billed).
EBS_GB_MONTH: dict[str, float] = {
    "gp2": 0.10, "gp3": 0.08, "io1": 0.125, "io2": 0.125, "st1": 0.045, "sc1": 0.015, "standard": 0.05,
}
EBS_IOPS_MONTH = {"io1": 0.065, "io2": 0.065, "gp3": 0.005}  # gp3: above its free 3,000 IOPS
EBS_THROUGHPUT_MBPS_MONTH = 0.04  # gp3: above its free 125 MB/s
GP3_FREE_IOPS, GP3_FREE_THROUGHPUT = 3000, 125
SNAPSHOT_GB_MONTH = 0.05  # standard tier
RDS_STORAGE_GB_MONTH = 0.115  # gp2, single-AZ (Multi-AZ doubles it)

# A public IPv4 address, idle or in use, since February 2024.
PUBLIC_IPV4_HOURLY = 0.005

# Lambda, x86: per GB-second of duration (the first pricing tier); Arm is 20% less.
LAMBDA_GB_SECOND = {"x86_64": 0.0000166667, "arm64": 0.0000133334}

# S3 Standard against Standard-Infrequent Access, first 50 TB, per GB-month.
S3_STANDARD_GB_MONTH = 0.023
S3_STANDARD_IA_GB_MONTH = 0.0125

_SIZE = re.compile(r"^(?P<family>(?:db\.)?[a-z0-9-]+)\.(?P<size>[a-z0-9]+)$")


def monthly(hourly: float | None) -> float | None:
    """A month of an hourly price (730 hours)."""
    return None if hourly is None else hourly * HOURS_PER_MONTH


def ec2_monthly(instance_type: str | None) -> float | None:
    """List price of a month of an EC2 instance type; None when the table does not have it."""
    return monthly(EC2_HOURLY.get(instance_type or ""))


def rds_monthly(instance_class: str | None, multi_az: bool = False) -> float | None:
    """List price of a month of an RDS instance class (twice that with a Multi-AZ standby)."""
    hourly = RDS_HOURLY.get(instance_class or "")
    return None if hourly is None else hourly * HOURS_PER_MONTH * (2 if multi_az else 1)


def ebs_monthly(volume_type: str | None, size_gb: float, iops: float | None = None,
                throughput: float | None = None) -> float | None:
    """List price of a month of an EBS volume: storage, plus the IOPS and throughput billed beyond the free part."""
    per_gb = EBS_GB_MONTH.get(volume_type or "")
    if per_gb is None:
        return None
    total = size_gb * per_gb
    if volume_type in ("io1", "io2") and iops:
        total += iops * EBS_IOPS_MONTH[volume_type]
    if volume_type == "gp3":
        total += max(0.0, (iops or GP3_FREE_IOPS) - GP3_FREE_IOPS) * EBS_IOPS_MONTH["gp3"]
        total += max(0.0, (throughput or GP3_FREE_THROUGHPUT) - GP3_FREE_THROUGHPUT) * EBS_THROUGHPUT_MBPS_MONTH
    return total


def gp2_baseline_iops(size_gb: float) -> float:
    """A gp2 volume's baseline IOPS: 3 per GB, at least 100 and at most 16,000."""
    return min(16000.0, max(100.0, 3.0 * size_gb))


def smaller_size(type_name: str | None, prices: dict[str, float]) -> str | None:
    """The next smaller size of the same family in ``prices`` (``m5.2xlarge`` -> ``m5.xlarge``); None if none."""
    match = _SIZE.match(type_name or "")
    if not match or type_name not in prices:
        return None
    family = match.group("family")
    same = sorted(
        (price, name) for name, price in prices.items()
        if (m := _SIZE.match(name)) and m.group("family") == family and price < prices[type_name]
    )
    return same[-1][1] if same else None
