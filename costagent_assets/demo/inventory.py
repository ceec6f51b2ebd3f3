"""The demo organisation's AWS resources: planted idle and oversized ones among busy ones, deterministic.

What ``DemoScanner`` returns instead of calling AWS, so that ``make demo`` emails carry real-looking
savings found by the same rules as a real scan. Each account draws its resources from its id and the demo
seed: the same seed and account always give the same resources, ids and metrics (the metrics window ends
where the scan says). Healthy resources (busy instances, in-use gp3 volumes, production Multi-AZ, buckets
with lifecycle rules, young snapshots, associated addresses) sit beside the planted ones, so the rules
have something to leave alone.

They live in the account's home region, where its cost data has its lines, and are sized to its spend: a
planted resource costs at most a share of what the account spends on that kind of resource (an account
spending $600 a month is not offered an idle m5.4xlarge), and Savings Plans recommendations are sized
from its own on-demand compute. Their estimates use the list price table (``aws_prices``).
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence
from datetime import datetime, timedelta

import polars as pl

from costagent_assets import aws_prices as prices
from costagent_assets.demo import organisation
from costagent_assets.optimization import COMMITMENT_SCHEMA, INVENTORY_SCHEMA, family_of, frame

# The most of its family's monthly spend (EC2, EBS, RDS, S3) one planted resource may cost.
PLANTED_SHARE = 0.3


def home_region(seed: int, account_id: str) -> str:
    """The region where the demo account's regional costs are."""
    return organisation.account_home_region(seed, account_id)


def family_spend(seed: int, account_id: str) -> dict[str, float]:
    """The demo account's usual monthly spend per family (``optimization.family_of``) in its home region."""
    home = home_region(seed, account_id)
    out: dict[str, float] = {}
    for service, region, usd in organisation.account_lines(seed, account_id):
        family = family_of(service)
        if family and region in (home, "global"):
            out[family] = out.get(family, 0.0) + usd
    return out


def _fits(sizes: Sequence[str], monthly, budget: float) -> list[str]:
    return [size for size in sizes if (monthly(size) or 0.0) <= budget]


def _rng(seed: int, account_id: str, what: str) -> random.Random:
    digest = hashlib.blake2b(f"{seed}|{account_id}|{what}".encode(), digest_size=8).digest()
    return random.Random(int.from_bytes(digest, "big"))


def _id(prefix: str, rng: random.Random) -> str:
    return f"{prefix}-{rng.getrandbits(68):017x}"


def demo_inventory(account_ids: Sequence[str], seed: int, end: datetime, lookback_days: int) -> pl.DataFrame:
    """Every demo account's resources with their metrics over the lookback window."""
    return frame((row for a in account_ids for row in _account_resources(a, seed, end, lookback_days)),
                 INVENTORY_SCHEMA)


def _account_resources(account: str, seed: int, end: datetime, days: int) -> list[dict]:
    rng = _rng(seed, account, "resources")
    region = home_region(seed, account)
    spend = family_spend(seed, account)
    ec2, ebs, rds, s3 = (spend.get(f, 0.0) * PLANTED_SHARE for f in ("ec2", "ebs", "rds", "s3"))
    rows: list[dict] = []

    def add(resource_type: str, **values) -> None:
        rows.append({"account_id": account, "region": region, "resource_type": resource_type, **values})

    def instance(size: str, cpu: float, peak: float, network: float, **extra) -> None:
        add("ec2_instance", resource_id=_id("i", rng), size=size, state="running", metric_days=days,
            cpu_avg_pct=round(cpu, 1), cpu_peak_pct=round(peak, 1), network_mb_per_day=round(network, 1),
            data_volumes=extra.pop("data_volumes", 1), created=end - timedelta(days=rng.randint(60, 700)), **extra)

    # Busy instances: the rules leave them alone.
    for _ in range(rng.randint(1, 4)):
        instance(rng.choice(["m5.xlarge", "c5.2xlarge", "r5.large"]), rng.uniform(40, 75), rng.uniform(80, 99),
                 rng.uniform(2_000, 40_000))
    idle = _fits(["t3.medium", "t3.large", "t3.xlarge", "m5.2xlarge", "c5.2xlarge", "r5.xlarge", "m5.4xlarge"],
                 prices.ec2_monthly, ec2)
    if rng.random() < 0.45 and idle:
        instance(rng.choice(idle[-3:]), rng.uniform(0.3, 4.0), rng.uniform(2, 9), rng.uniform(0.1, 3.0),
                 name="legacy-batch")
    oversized = _fits(["m5.xlarge", "m5.2xlarge", "m6i.2xlarge", "r5.2xlarge", "c5.4xlarge", "m5.4xlarge"],
                      prices.ec2_monthly, ec2)
    if rng.random() < 0.5 and oversized:
        instance(rng.choice(oversized[-3:]), rng.uniform(6, 17), rng.uniform(20, 44), rng.uniform(300, 5_000),
                 name="api")
    members = rng.randint(2, 4)
    if rng.random() < 0.35 and members * (prices.ec2_monthly("c5.xlarge") or 0.0) <= ec2:  # a stateless group
        for _ in range(members):
            instance("c5.xlarge", rng.uniform(35, 60), rng.uniform(70, 95), rng.uniform(5_000, 20_000),
                     asg_name="web-frontend", asg_size=members, data_volumes=0)

    def volume(vol_type: str, size: int, state: str) -> None:
        add("ebs_volume", resource_id=_id("vol", rng), size=vol_type, size_gb=float(size), state=state,
            iops=3000.0 if vol_type == "gp3" else float(max(100, 3 * size)),
            throughput=125.0 if vol_type == "gp3" else None, created=end - timedelta(days=rng.randint(30, 900)))

    # gp2 at $0.10 per GB-month: planted volumes no larger than the account's EBS spend allows.
    volume("gp3", rng.randint(50, 500), "in-use")
    gp2_gb = int(ebs / 0.10) // 50 * 50
    if rng.random() < 0.4 and gp2_gb >= 100:
        volume("gp2", rng.randrange(100, min(gp2_gb, 2000) + 1, 50), "available")
    if rng.random() < 0.5 and gp2_gb >= 200:
        volume("gp2", rng.randrange(200, min(gp2_gb, 1500) + 1, 50), "in-use")

    def snapshot(age: int) -> None:
        add("ebs_snapshot", resource_id=_id("snap", rng), size_gb=float(rng.randrange(50, 1000, 50)),
            state="completed", created=end - timedelta(days=age), backs_image=False)

    snapshot(rng.randint(5, 60))
    if rng.random() < 0.5 and ebs / 0.05 >= 100:  # an old snapshot: $0.05 per GB-month
        add("ebs_snapshot", resource_id=_id("snap", rng), size_gb=float(rng.randrange(50, int(min(ebs / 0.05, 1000)), 50)),
            state="completed", created=end - timedelta(days=rng.randint(120, 600)), backs_image=False)

    def database(name: str, size: str, multi_az: bool, env: str, connections: float) -> None:
        add("rds_instance", resource_id=name, name=name, size=size, state="available", multi_az=multi_az,
            environment=env, size_gb=100.0, metric_days=days, connections_max=connections)

    database("orders-prod", "db.r5.xlarge", True, "production", float(rng.randint(40, 300)))
    idle_db = _fits(["db.t3.medium", "db.t3.large", "db.m5.xlarge"], prices.rds_monthly, rds)
    if rng.random() < 0.25 and idle_db:
        database("reporting-old", rng.choice(idle_db[-2:]), False, "dev", 0.0)
    if rng.random() < 0.3 and (prices.rds_monthly("db.r5.large", True) or 0.0) <= rds:
        database("orders-staging", "db.r5.large", True, "staging", float(rng.randint(3, 30)))

    if rng.random() < 0.4:
        memory = rng.choice([1536.0, 2048.0, 3008.0])
        invocations = rng.randint(200_000, 3_000_000) * days / 30
        add("lambda_function", resource_id=f"arn:aws:lambda:{region}:{account}:function:image-resize",
            name="image-resize", memory_mb=memory, architecture="x86_64", metric_days=days,
            memory_used_max_mb=float(rng.randint(150, 450)), invocations=float(round(invocations)),
            duration_ms_sum=float(round(invocations * rng.uniform(300, 1500))))

    def bucket(name: str, lifecycle: bool, gb: float) -> None:
        add("s3_bucket", resource_id=f"{name}-{account}", name=f"{name}-{account}", has_lifecycle=lifecycle,
            standard_gb=round(gb, 1), metric_days=days)

    bucket("app-assets", True, rng.uniform(10, 500))
    archive_gb = s3 / 0.023  # S3 Standard at $0.023 per GB-month
    if rng.random() < 0.5 and archive_gb >= 500:
        bucket("logs-archive", False, rng.uniform(500, min(archive_gb, 20_000)))

    def address(associated: bool) -> None:
        ip = f"3.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
        add("elastic_ip", resource_id=_id("eipalloc", rng), name=ip, associated=associated)

    address(True)
    if rng.random() < 0.35:
        address(False)
    return rows


def demo_commitments(account_ids: Sequence[str], seed: int, lookback_days: int) -> pl.DataFrame:
    """Cost Explorer-like Savings Plans recommendations and under-used Reserved Instances for some accounts."""
    rows = []
    for account in account_ids:
        rng = _rng(seed, account, "commitments")
        region = home_region(seed, account)
        spend = family_spend(seed, account)
        # Cost Explorer sizes a Savings Plan from the account's on-demand compute: here 30-60% of it.
        eligible = spend.get("ec2", 0.0) + spend.get("lambda", 0.0)
        hourly = round(eligible * rng.uniform(0.3, 0.6) * 0.75 / prices.HOURS_PER_MONTH, 3)
        if rng.random() < 0.3 and hourly >= 0.05:
            rows.append({"account_id": account, "kind": "sp_purchase", "service": "Savings Plans",
                         "resource_id": f"sp:compute:{account}", "region": None, "size": "Compute",
                         "quantity": hourly, "monthly_savings_usd": round(hourly * 730 * rng.uniform(0.18, 0.3), 2),
                         "term": "1 year", "payment_option": "no upfront", "window_days": 30.0,
                         "detail": f"expected utilisation {rng.uniform(92, 99.5):.1f}%"})
        # Reserved m5.large at about $43 a month each: no more of them than half the account's EC2 spend.
        reserved = min(rng.randint(2, 6), int(spend.get("ec2", 0.0) * 0.5 / 43.8))
        if rng.random() < 0.12 and reserved >= 1:
            purchased = 24.0 * lookback_days * reserved
            used = purchased * rng.uniform(0.35, 0.7)
            rows.append({"account_id": account, "kind": "ri_utilisation", "service": "Amazon EC2",
                         "resource_id": _id("ri", rng), "region": region, "size": "m5.large",
                         "utilisation_pct": used / purchased * 100, "unused_usd": (purchased - used) * 0.06,
                         "window_days": float(lookback_days),
                         "detail": f"{purchased - used:,.0f} of {purchased:,.0f} reserved hours unused"})
    return frame(rows, COMMITMENT_SCHEMA)
