"""The demo organisation's AWS resources: planted idle and oversized ones among busy ones, deterministic.

What ``DemoScanner`` returns instead of calling AWS, so that ``make demo`` emails carry real-looking
savings found by the same rules as a real scan. Each account draws its resources from its id and the demo
seed: the same seed and account always give the same resources, ids and metrics (the metrics window ends
where the scan says). Healthy resources (busy instances, in-use gp3 volumes, production Multi-AZ, buckets
with lifecycle rules, young snapshots, associated addresses) sit beside the planted ones, so the rules
have something to leave alone.

They live in ``DEMO_REGIONS``, where the demo's cost data has no lines, so their estimates use the list
price table (``aws_prices``), the way an account whose cost source has no usage types would.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence
from datetime import datetime, timedelta

import polars as pl

from costagent_assets.optimization import COMMITMENT_SCHEMA, INVENTORY_SCHEMA, frame

DEMO_REGIONS = ("us-east-2", "eu-west-2")


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
    region = rng.choice(DEMO_REGIONS)
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
    if rng.random() < 0.45:  # idle
        instance(rng.choice(["m5.2xlarge", "m5.4xlarge", "c5.2xlarge", "t3.xlarge", "r5.xlarge"]),
                 rng.uniform(0.3, 4.0), rng.uniform(2, 9), rng.uniform(0.1, 3.0), name="legacy-batch")
    if rng.random() < 0.5:  # oversized
        instance(rng.choice(["m5.4xlarge", "c5.4xlarge", "r5.2xlarge", "m6i.2xlarge"]), rng.uniform(6, 17),
                 rng.uniform(20, 44), rng.uniform(300, 5_000), name="api")
    if rng.random() < 0.35:  # a stateless Auto Scaling group
        members = rng.randint(2, 4)
        for _ in range(members):
            instance("c5.xlarge", rng.uniform(35, 60), rng.uniform(70, 95), rng.uniform(5_000, 20_000),
                     asg_name="web-frontend", asg_size=members, data_volumes=0)

    def volume(vol_type: str, size: int, state: str) -> None:
        add("ebs_volume", resource_id=_id("vol", rng), size=vol_type, size_gb=float(size), state=state,
            iops=3000.0 if vol_type == "gp3" else float(max(100, 3 * size)),
            throughput=125.0 if vol_type == "gp3" else None, created=end - timedelta(days=rng.randint(30, 900)))

    volume("gp3", rng.randint(50, 500), "in-use")
    if rng.random() < 0.4:
        volume("gp2", rng.randrange(100, 2000, 50), "available")
    if rng.random() < 0.5:
        volume("gp2", rng.randrange(200, 1500, 50), "in-use")

    def snapshot(age: int) -> None:
        add("ebs_snapshot", resource_id=_id("snap", rng), size_gb=float(rng.randrange(50, 1000, 50)),
            state="completed", created=end - timedelta(days=age), backs_image=False)

    snapshot(rng.randint(5, 60))
    if rng.random() < 0.5:
        snapshot(rng.randint(120, 600))

    def database(name: str, size: str, multi_az: bool, env: str, connections: float) -> None:
        add("rds_instance", resource_id=name, name=name, size=size, state="available", multi_az=multi_az,
            environment=env, size_gb=100.0, metric_days=days, connections_max=connections)

    database("orders-prod", "db.r5.xlarge", True, "production", float(rng.randint(40, 300)))
    if rng.random() < 0.25:
        database("reporting-old", rng.choice(["db.t3.large", "db.m5.xlarge"]), False, "dev", 0.0)
    if rng.random() < 0.3:
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
    if rng.random() < 0.5:
        bucket("logs-archive", False, rng.uniform(500, 20_000))

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
        region = _rng(seed, account, "resources").choice(DEMO_REGIONS)
        if rng.random() < 0.3:
            hourly = round(rng.uniform(0.5, 6.0), 3)
            rows.append({"account_id": account, "kind": "sp_purchase", "service": "Savings Plans",
                         "resource_id": f"sp:compute:{account}", "region": None, "size": "Compute",
                         "quantity": hourly, "monthly_savings_usd": round(hourly * 730 * rng.uniform(0.18, 0.3), 2),
                         "term": "1 year", "payment_option": "no upfront", "window_days": 30.0,
                         "detail": f"expected utilisation {rng.uniform(92, 99.5):.1f}%"})
        if rng.random() < 0.12:
            purchased = 24.0 * lookback_days * rng.randint(2, 6)
            used = purchased * rng.uniform(0.35, 0.7)
            rows.append({"account_id": account, "kind": "ri_utilisation", "service": "Amazon EC2",
                         "resource_id": _id("ri", rng), "region": region, "size": "m5.large",
                         "utilisation_pct": used / purchased * 100, "unused_usd": (purchased - used) * 0.06,
                         "window_days": float(lookback_days),
                         "detail": f"{purchased - used:,.0f} of {purchased:,.0f} reserved hours unused"})
    return frame(rows, COMMITMENT_SCHEMA)
