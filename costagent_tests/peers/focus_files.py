"""FOCUS and legacy CUR export files with the traps of real exports, and the totals they must give.

Every amount is written as decimal text and the expected totals are the exact (Decimal) sums of what
was written, per account and billing month, so a reader that drops, doubles or misplaces a row fails.
"""

from __future__ import annotations

import gzip
import io
import json
import random
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal

import polars as pl

AZURE_SUBSCRIPTION = "6F1A3C2E-9B0D-4E5F-8A7B-1C2D3E4F5A6B"
GCP_PROJECT = "ai-research-prod"
UNREGISTERED_AWS = "111122223333"
LEADING_ZERO_AWS = "000123456789"


@dataclass
class Export:
    """Rows written, and the exact totals per (account id as the registry knows it, YYYY-MM)."""

    rows: list[dict] = field(default_factory=list)
    totals: dict[tuple[str, str], Decimal] = field(default_factory=lambda: defaultdict(Decimal))

    def add(self, row: dict, account: str, billed_month: str, amount: Decimal) -> None:
        self.rows.append(row)
        self.totals[(account, billed_month)] += amount


def _amount(rng: random.Random, usd: float) -> Decimal:
    return Decimal(f"{usd * rng.uniform(0.8, 1.2):.10f}")


def _split(rng: random.Random, total: Decimal, parts: int) -> list[Decimal]:
    """``parts`` amounts (10 decimals) that add up to ``total`` exactly."""
    cuts = sorted(Decimal(f"{rng.random():.6f}") for _ in range(parts - 1))
    shares = [b - a for a, b in zip([Decimal(0), *cuts], [*cuts, Decimal(1)], strict=True)]
    amounts = [(total * s).quantize(Decimal("1E-10")) for s in shares]
    amounts[-1] += total - sum(amounts)
    return amounts


def _ts(moment: datetime, style: int) -> str:
    """The timestamp spellings exports use."""
    return [moment.strftime("%Y-%m-%dT%H:%M:%SZ"), moment.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
            moment.strftime("%Y-%m-%d %H:%M:%S"), moment.strftime("%Y-%m-%dT%H:%M:%S+00:00")][style % 4]


def _billing(day: date) -> tuple[datetime, datetime]:
    start = datetime(day.year, day.month, 1)
    end = datetime(day.year + (day.month == 12), day.month % 12 + 1, 1)
    return start, end


def focus_export(costs: pl.DataFrame, *, seed: int = 5) -> Export:
    """FOCUS 1.0 rows from daily demo rows (``date``, ``account_id``, ``service``, ``region``, ``usage_type``,
    ``cost_usd``), plus an unregistered account, Azure and GCP rows, credits, tax, and a straddling row."""
    rng = random.Random(seed)
    out = Export()
    categories = ["Usage", "usage", "USAGE"]
    providers = ["AWS", "aws", "Amazon Web Services"]
    for i, (day, account, service, region, usage_type, usd) in enumerate(
        costs.select("date", "account_id", "service", "region", "usage_type", "cost_usd").iter_rows()
    ):
        amount = _amount(rng, usd)
        billing_start, billing_end = _billing(day)
        hourly = i % 5 == 0  # some lines come hour by hour
        parts = _split(rng, amount, 4) if hourly else [amount]
        hours = [0, 7, 15, 23] if hourly else [0]
        for hour, part in zip(hours, parts, strict=True):
            start = datetime(day.year, day.month, day.day, hour)
            row = {
                "BillingPeriodStart": _ts(billing_start, i), "BillingPeriodEnd": _ts(billing_end, i),
                "ChargePeriodStart": _ts(start, i + hour),
                "ChargePeriodEnd": _ts(start + (timedelta(hours=1) if hourly else timedelta(days=1)), i),
                "ProviderName": providers[i % 3], "BillingAccountId": "999988887777",
                "SubAccountId": account, "ServiceName": service,
                "RegionId": "NULL" if i % 17 == 0 else region, "x_UsageType": usage_type,
                "ChargeCategory": categories[i % 3], "BillingCurrency": "USD" if i % 2 else "usd",
                "BilledCost": str(part), "EffectiveCost": str(part * Decimal("0.9")),
                # Tags: JSON inside a CSV field, with commas, quotes and a line break.
                "Tags": "NULL" if i % 4 else json.dumps({"team": f"t{i % 7}", "note": 'a, "b"'}, indent=1),
            }
            out.add(row, account, day.strftime("%Y-%m"), part)
        if i % 9 == 0:  # a credit on the same line, negative
            credit = -(amount / 7).quantize(Decimal("1E-10"))
            out.add({**row, "ChargeCategory": "Credit", "ChargePeriodStart": _ts(datetime(day.year, day.month, day.day), i),
                     "BilledCost": str(credit), "EffectiveCost": str(credit)}, account, day.strftime("%Y-%m"), credit)
    accounts = sorted(set(costs["account_id"]))
    days = sorted(set(costs["date"]))
    first = days[0]
    template = dict(out.rows[0])
    # Tax for the first account, once per month, on a whole-month charge period.
    for month_start in sorted({date(d.year, d.month, 1) for d in days}):
        b_start, b_end = _billing(month_start)
        tax = Decimal("123.4567890123")
        out.add({**template, "SubAccountId": accounts[0], "ServiceName": "Tax", "ChargeCategory": "TAX",
                 "BillingPeriodStart": _ts(b_start, 0), "BillingPeriodEnd": _ts(b_end, 0),
                 "ChargePeriodStart": _ts(b_start, 0), "ChargePeriodEnd": _ts(b_end, 0),
                 "BilledCost": str(tax), "EffectiveCost": str(tax), "RegionId": "NULL", "x_UsageType": "NULL"},
                accounts[0], month_start.strftime("%Y-%m"), tax)
    # A charge period straddling the billing-period boundary: billed in the later month.
    boundary = next((d for d in days if d.day == 1 and d != first), None)
    if boundary is not None:
        b_start, b_end = _billing(boundary)
        amount = Decimal("42.0000000001")
        out.add({**template, "SubAccountId": accounts[1], "ServiceName": "Amazon Elastic Compute Cloud",
                 "BillingPeriodStart": _ts(b_start, 0), "BillingPeriodEnd": _ts(b_end, 0),
                 "ChargePeriodStart": _ts(datetime.combine(boundary, datetime.min.time()) - timedelta(hours=2), 0),
                 "ChargePeriodEnd": _ts(datetime.combine(boundary, datetime.min.time()) + timedelta(hours=2), 0),
                 "BilledCost": str(amount), "EffectiveCost": str(amount)}, accounts[1], boundary.strftime("%Y-%m"), amount)
    # Other providers, and an AWS account nobody registered.
    for day in days:
        month = day.strftime("%Y-%m")
        b_start, b_end = _billing(day)
        base = {**template, "BillingPeriodStart": _ts(b_start, 0), "BillingPeriodEnd": _ts(b_end, 0),
                "ChargePeriodStart": _ts(datetime.combine(day, datetime.min.time()), 0),
                "ChargePeriodEnd": _ts(datetime.combine(day, datetime.min.time()) + timedelta(days=1), 0)}
        for provider, sub_account, registry_id, service in (
            ("Microsoft", f"/subscriptions/{AZURE_SUBSCRIPTION}", AZURE_SUBSCRIPTION.lower(), "Virtual Machines"),
            ("Google Cloud", GCP_PROJECT, GCP_PROJECT, "Vertex AI"),
            ("AWS", UNREGISTERED_AWS, UNREGISTERED_AWS, "Amazon Simple Storage Service"),
        ):
            amount = _amount(rng, 20.0)
            out.add({**base, "ProviderName": provider, "SubAccountId": sub_account, "ServiceName": service,
                     "RegionId": "westeurope" if provider == "Microsoft" else "NULL", "x_UsageType": "NULL",
                     "BilledCost": str(amount), "EffectiveCost": str(amount)}, registry_id, month, amount)
    return out


def write_files(export: Export, n_files: int = 3) -> dict[str, bytes]:
    """The rows split over CSV, gzipped CSV and Parquet files (names -> bytes), ids kept as text in CSV.

    In the Parquet file, numeric-looking SubAccountIds are stored as integers, as some tools do,
    so a leading zero is lost there and must be restored by the reader.
    """
    files: dict[str, bytes] = {}
    columns = list(export.rows[0])
    chunks = [export.rows[i::n_files] for i in range(n_files)]
    for index, chunk in enumerate(chunks):
        frame = pl.DataFrame(chunk, schema={c: pl.String for c in columns})
        kind = index % 3
        if kind == 0:
            files[f"focus-part-{index}.csv"] = _csv(frame)
        elif kind == 1:
            files[f"focus-part-{index}.csv.gz"] = gzip.compress(_csv(frame))
        else:
            numeric = frame["SubAccountId"].str.contains(r"^[0-9]+$")
            as_int = frame.filter(numeric).with_columns(pl.col("SubAccountId").cast(pl.Int64))
            files[f"nested/focus-part-{index}.parquet"] = _parquet(as_int)
            files[f"nested/focus-part-{index}-other.parquet"] = _parquet(frame.filter(~numeric))
    return files


def _parquet(frame: pl.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.with_columns(pl.col("BilledCost").cast(pl.Float64)).write_parquet(buffer)
    return buffer.getvalue()


def _csv(frame: pl.DataFrame) -> bytes:
    return frame.write_csv(quote_style="necessary").encode()


def cur_export(costs: pl.DataFrame, *, seed: int = 9) -> Export:
    """Legacy CUR rows (``lineItem/...`` columns): hourly usage, a credit, and a whole-month tax line."""
    rng = random.Random(seed)
    out = Export()
    for i, (day, account, service, region, usage_type, usd) in enumerate(
        costs.select("date", "account_id", "service", "region", "usage_type", "cost_usd").iter_rows()
    ):
        amount = _amount(rng, usd)
        b_start, b_end = _billing(day)
        for hour, part in zip([1, 13], _split(rng, amount, 2), strict=True):
            start = datetime(day.year, day.month, day.day, hour)
            out.add({
                "identity/LineItemId": f"li-{i}-{hour}", "bill/BillingPeriodStartDate": _ts(b_start, 0),
                "bill/BillingPeriodEndDate": _ts(b_end, 0), "lineItem/UsageAccountId": account,
                "lineItem/LineItemType": "Usage", "lineItem/UsageStartDate": _ts(start, 0),
                "lineItem/UsageEndDate": _ts(start + timedelta(hours=1), 0),
                "lineItem/ProductCode": "AmazonEC2", "lineItem/UsageType": usage_type,
                "lineItem/UnblendedCost": str(part), "lineItem/CurrencyCode": "USD",
                "product/ProductName": service, "product/region": region,
            }, account, day.strftime("%Y-%m"), part)
    template = out.rows[0]
    months = sorted({d.strftime("%Y-%m") for d in costs["date"]})
    for month in months:
        b_start, b_end = _billing(date.fromisoformat(f"{month}-01"))
        for line_type, amount in (("Tax", Decimal("77.1234567891")), ("Credit", Decimal("-12.5000000001"))):
            out.add({**template, "identity/LineItemId": f"{line_type}-{month}", "lineItem/LineItemType": line_type,
                     "bill/BillingPeriodStartDate": _ts(b_start, 0), "bill/BillingPeriodEndDate": _ts(b_end, 0),
                     "lineItem/UsageStartDate": _ts(b_start, 0), "lineItem/UsageEndDate": _ts(b_end, 0),
                     "lineItem/UnblendedCost": str(amount), "product/ProductName": "NULL", "product/region": ""},
                    template["lineItem/UsageAccountId"], month, amount)
    return out


def cur_csv(export: Export) -> bytes:
    """The CUR rows as one CSV file."""
    return _csv(pl.DataFrame(export.rows, schema={c: pl.String for c in export.rows[0]}))
