"""Usage quantities for the demo organisation's cost lines, so its anomalies split into usage / rate / mix.

Each usage type has a unit and a list price close to AWS's public us-east-1 prices; other regions cost a
fixed few percent more, drawn once per (seed, region). A day's quantity is its cost at that price, so the
dollars (and with them every planted anomaly) stay exactly what ``organisation.generate_costs`` gives.
"""

from __future__ import annotations

import polars as pl

from costagent_assets.demo.organisation import DEMO_SEED, _Draws

# Usage type without its region prefix -> (unit, USD per unit in us-east-1). Month units (GB-Mo, keys,
# secrets, hosted zones) are used a fraction a day, as in the Cost and Usage Report.
# fmt: off
PRICES: dict[str, tuple[str, float]] = {
    "BoxUsage:m5.xlarge": ("Hrs", 0.192), "BoxUsage:c6i.2xlarge": ("Hrs", 0.34),
    "BoxUsage:r6g.large": ("Hrs", 0.1008), "SpotUsage:m5.2xlarge": ("Hrs", 0.1450),
    "EBS:VolumeUsage.gp3": ("GB-Mo", 0.08), "NatGateway-Hours": ("Hrs", 0.045),
    "EBS:SnapshotUsage": ("GB-Mo", 0.05), "NatGateway-Bytes": ("GB", 0.045),
    "InstanceUsage:db.r6g.xlarge": ("Hrs", 0.519), "RDS:GP3-Storage": ("GB-Mo", 0.115),
    "Multi-AZUsage:db.m5.large": ("Hrs", 0.342),
    "TimedStorage-ByteHrs": ("GB-Mo", 0.023), "Requests-Tier1": ("Requests", 0.000005),
    "TimedStorage-INT-FA-ByteHrs": ("GB-Mo", 0.023),
    "Lambda-GB-Second": ("Lambda-GB-Second", 0.0000166667), "Request": ("Requests", 0.0000002),
    "Lambda-GB-Second-ARM": ("Lambda-GB-Second", 0.0000133334),
    "CW:MetricMonitorUsage": ("Metrics", 0.30), "DataProcessing-Bytes": ("GB", 0.50),
    "DataTransfer-Out-Bytes": ("GB", 0.09), "DataTransfer-Regional-Bytes": ("GB", 0.01),
    "AWS-Out-Bytes": ("GB", 0.02),
    "ReadRequestUnits": ("ReadRequestUnits", 0.000000125), "WriteRequestUnits": ("WriteRequestUnits", 0.000000625),
    "Fargate-vCPU-Hours:perCPU": ("hours", 0.04048), "Fargate-GB-Hours": ("hours", 0.004445),
    "AmazonEKS-Hours:perCluster": ("Hours", 0.10), "AmazonEKS-Hours:ExtendedSupport": ("Hours", 0.60),
    "NodeUsage:cache.r6g.large": ("NodeHours", 0.206), "NodeUsage:cache.m5.large": ("NodeHours", 0.156),
    "ESInstance:r6g.large.search": ("Hrs", 0.167), "ES:GP3-Storage": ("GB-Mo", 0.122),
    "Requests-FIFO-Tier1": ("Requests", 0.0000005), "DeliveryAttempts-HTTP": ("Notifications", 0.0000006),
    "VpcEndpoint-Hours": ("Hrs", 0.01), "PublicIPv4:InUseAddress": ("Hrs", 0.005),
    "HostedZone": ("HostedZone", 0.50), "DNS-Queries": ("Queries", 0.0000004),
    "KMS-Keys": ("Keys", 1.00), "KMS-Requests": ("Requests", 0.000003),
    "AWSSecretsManager-Secrets": ("Secrets", 0.40), "AWSSecretsManagerAPIRequest": ("API Requests", 0.000005),
    "ShardHour": ("ShardHour", 0.015), "PutRequestPayloadUnits": ("PutRequestPayloadUnits", 0.000000014),
    "ETL-DPU-Hour": ("DPU-Hour", 0.44), "Crawler-DPU-Hour": ("DPU-Hour", 0.44),
    "DataScannedInTB": ("Terabytes", 5.0),
    "Host:ml.m5.xlarge": ("Hrs", 0.23), "Train:ml.p3.2xlarge": ("Hrs", 3.825), "Notebk:ml.t3.medium": ("Hrs", 0.05),
    "WarmStorage-ByteHrs-EBS": ("GB-Mo", 0.05), "WarmStorage-ByteHrs-EFS": ("GB-Mo", 0.05),
}
# fmt: on


def _price_key(usage_type: str) -> str:
    """``"USE1-BoxUsage:m5.xlarge"`` -> ``"BoxUsage:m5.xlarge"``; ``"USE1-USW2-AWS-Out-Bytes"`` -> ``"AWS-Out-Bytes"``;
    CloudFront's edge prefixes (``"US-"``, ``"EU-"``) go too."""
    if usage_type in PRICES:
        return usage_type
    parts = usage_type.split("-")
    for i in range(1, len(parts)):
        rest = "-".join(parts[i:])
        if rest in PRICES:
            return rest
    return usage_type


def unit_price(usage_type: str, region: str, seed: int = DEMO_SEED) -> tuple[str, float] | None:
    """(unit, USD per unit) of a demo line, or None for a usage type the table does not know."""
    found = PRICES.get(_price_key(usage_type))
    if found is None:
        return None
    unit, price = found
    if region not in ("us-east-1", "global"):
        price *= 1 + round(_Draws(seed, "price", region).uniform(0.02, 0.15), 2)
    return unit, price


def with_quantities(costs: pl.DataFrame, seed: int = DEMO_SEED) -> pl.DataFrame:
    """``costs`` (demo rows with region and usage_type) with ``usage_quantity`` and ``usage_unit``: the cost at
    the line's unit price. Deterministic per seed; the dollars are not touched."""
    if costs.is_empty():
        return costs.with_columns(pl.lit(None, pl.Float64).alias("usage_quantity"),
                                  pl.lit(None, pl.String).alias("usage_unit"))
    lines = costs.select("region", "usage_type").unique()
    priced = [(region, usage_type, *(unit_price(usage_type, region, seed) or (None, None)))
              for region, usage_type in lines.iter_rows()]
    table = pl.DataFrame(priced, schema={"region": pl.String, "usage_type": pl.String, "usage_unit": pl.String,
                                         "price": pl.Float64}, orient="row")
    return (costs.join(table, on=["region", "usage_type"], how="left", nulls_equal=True, maintain_order="left")
            .with_columns((pl.col("cost_usd") / pl.col("price")).alias("usage_quantity"))
            .select(*costs.columns, "usage_quantity", "usage_unit"))
