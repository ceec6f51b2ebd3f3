"""AWS Cost Explorer as a cost source: GetCostAndUsage, daily, grouped by linked account and service."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta

import polars as pl

from costagent_assets.resources.cost_source import CostSource, CostSourceError, SourceFetch, split_registered

# Every GetCostAndUsage request is billed, pages included (AWS Cost Explorer pricing).
USD_PER_REQUEST = 0.01

# Region short codes that prefix usage types ("EUW2-BoxUsage:m5.large"), as AWS publishes them:
# https://docs.aws.amazon.com/global-infrastructure/latest/regions/aws-region-billing-codes.html
# CE allows two group-bys (linked account and usage type here), so the region comes from this prefix.
REGION_BILLING_CODES = {
    "USE1": "us-east-1", "USE2": "us-east-2", "USW1": "us-west-1", "USW2": "us-west-2",
    "CAN1": "ca-central-1", "CAN2": "ca-west-1", "MXC1": "mx-central-1", "AFS1": "af-south-1",
    "APE1": "ap-east-1", "APE2": "ap-east-2", "APN1": "ap-northeast-1", "APN2": "ap-northeast-2",
    "APN3": "ap-northeast-3", "APS1": "ap-southeast-1", "APS2": "ap-southeast-2", "APS3": "ap-south-1",
    "APS4": "ap-southeast-3", "APS5": "ap-south-2", "APS6": "ap-southeast-4", "APS7": "ap-southeast-5",
    "APS8": "ap-southeast-6", "APS9": "ap-southeast-7",
    "EU": "eu-west-1", "EUC1": "eu-central-1", "EUC2": "eu-central-2", "EUN1": "eu-north-1",
    "EUS1": "eu-south-1", "EUS2": "eu-south-2", "EUW2": "eu-west-2", "EUW3": "eu-west-3",
    "ILC1": "il-central-1", "MEC1": "me-central-1", "MES1": "me-south-1", "SAE1": "sa-east-1",
    "UGE1": "us-gov-east-1", "UGW1": "us-gov-west-1",
}
# Services whose usage-type prefixes are not regions: CloudFront's are edge geographies ("EU-", "US-", "JP-"),
# and its "EU" is Europe's edge locations, not eu-west-1.
_NOT_REGION_PREFIXED = ("CloudFront",)


def region_of_usage_type(usage_type: str | None, service: str | None = None) -> str | None:
    """The region a usage type's prefix names (``"EUW2-BoxUsage:m5.large"`` is eu-west-2), or None where the
    prefix is missing or unknown (some services leave us-east-1 unprefixed: that is ambiguous, so None).
    A transfer between regions (``"USE1-EUW2-AWS-Out-Bytes"``) is billed in the first."""
    if not usage_type or "-" not in usage_type or any(s in (service or "") for s in _NOT_REGION_PREFIXED):
        return None
    return REGION_BILLING_CODES.get(usage_type.split("-", 1)[0])


class CostExplorerCostSource(CostSource):
    """Daily cost per linked account and service from the AWS Cost Explorer API (run in the payer account).

    Credentials come from the standard AWS chain (environment, profile, instance or task role); an
    ``AWS_ENDPOINT_URL`` is honoured. botocore's "standard" retry mode is used because the default
    ("legacy") mode does not retry CE's ``LimitExceededException``. Each request costs $0.01 and is counted.
    """

    metric: str = "UnblendedCost"
    max_retries: int = 6
    region_name: str = "us-east-1"  # Cost Explorer's one endpoint
    timeout_seconds: float = 60.0
    # Also read each service by linked account and usage type, with UsageQuantity, for the usage / rate /
    # mix split: one more billed request (and its pages) per service in the month.
    usage_types: bool = False

    @property
    def name(self) -> str:
        return "cost_explorer"

    def _client(self):
        import boto3  # imported when used: boto3 adds ~0.5 s to every CLI start otherwise
        import botocore.config

        config = botocore.config.Config(
            retries={"mode": "standard", "total_max_attempts": self.max_retries + 1},
            connect_timeout=10,
            read_timeout=self.timeout_seconds,
        )
        return boto3.session.Session().client("ce", region_name=self.region_name, config=config)

    def fetch(self, account_ids: Sequence[str], start: date, end: date, as_of: date) -> SourceFetch:
        """Daily rows from ``start`` to ``end`` inclusive for every linked account, following every page;
        with ``usage_types``, per usage type with its quantity (one more request per service)."""
        client = self._client()
        request = {
            # CE's End is exclusive.
            "TimePeriod": {"Start": start.isoformat(), "End": (end + timedelta(days=1)).isoformat()},
            "Granularity": "DAILY",
            "Metrics": [self.metric],
            "GroupBy": [{"Type": "DIMENSION", "Key": "LINKED_ACCOUNT"}, {"Type": "DIMENSION", "Key": "SERVICE"}],
        }
        pages, attempts = self._pages(client, request)
        frame = results_frame(pages, self.metric)
        requests = len(pages)
        if self.usage_types and frame.height:
            # CE groups by two dimensions at most: one more query per service, grouped by linked account and
            # usage type, with UsageQuantity. Services are far fewer than accounts at every size we run.
            details = []
            for service in sorted(frame["service"].unique().to_list()):
                detail_request = {
                    **request, "Metrics": [self.metric, "UsageQuantity"],
                    "Filter": {"Dimensions": {"Key": "SERVICE", "Values": [service]}},
                    "GroupBy": [{"Type": "DIMENSION", "Key": "LINKED_ACCOUNT"},
                                {"Type": "DIMENSION", "Key": "USAGE_TYPE"}],
                }
                detail_pages, detail_attempts = self._pages(client, detail_request)
                requests += len(detail_pages)
                attempts += detail_attempts
                details.append(usage_frame(detail_pages, self.metric, service))
            frame = with_usage_detail(frame, details)
        frame = frame.filter(pl.col("date").is_between(start, end))
        costs, unregistered = split_registered(frame, account_ids)
        costs = costs.with_columns(
            pl.lit("cost_explorer").alias("source"), pl.lit("aws").alias("provider")
        )
        # Throttled attempts are refused before CE does any work; AWS bills the requests it answers.
        return SourceFetch(costs, requests=requests, cost_usd=round(requests * USD_PER_REQUEST, 2),
                           retries=attempts - requests, unregistered=unregistered)

    def _pages(self, client, request: dict) -> tuple[list[dict], int]:
        """Every page of one GetCostAndUsage request, and the attempts it took (retries included)."""
        import botocore.exceptions

        pages, attempts, token = [], 0, None
        while True:
            try:
                page = client.get_cost_and_usage(**request, **({"NextPageToken": token} if token else {}))
            except botocore.exceptions.NoCredentialsError:
                raise CostSourceError(
                    "Cost Explorer: no AWS credentials found; set AWS_PROFILE or AWS_ACCESS_KEY_ID/"
                    "AWS_SECRET_ACCESS_KEY, or run with a role that allows ce:GetCostAndUsage"
                ) from None
            except botocore.exceptions.ClientError as exc:
                error = exc.response.get("Error", {})
                attempts += 1 + exc.response.get("ResponseMetadata", {}).get("RetryAttempts", 0)
                raise CostSourceError(
                    f"Cost Explorer: {error.get('Code', 'error')}: {error.get('Message', '')} "
                    f"(after {attempts} billed attempts); nothing was stored"
                ) from None
            attempts += 1 + page.get("ResponseMetadata", {}).get("RetryAttempts", 0)
            pages.append(page)
            token = page.get("NextPageToken")
            if not token:
                return pages, attempts


def results_frame(pages: Sequence[dict], metric: str) -> pl.DataFrame:
    """Daily rows (``date``, ``account_id``, ``service``, ``cost_usd``, ``currency``) from GetCostAndUsage pages.

    Groups come as ``Keys: [account, service]`` per ``ResultsByTime`` day. An account with no group on a
    day has no row that day (not a $0 row).
    """
    rows: dict[str, list] = {"date": [], "account_id": [], "service": [], "cost_usd": [], "currency": []}
    for page in pages:
        for result in page.get("ResultsByTime", []):
            day = date.fromisoformat(result["TimePeriod"]["Start"])
            for group in result.get("Groups", []):
                keys = group.get("Keys", [])
                amount = group.get("Metrics", {}).get(metric)
                if len(keys) != 2 or amount is None:
                    continue
                rows["date"].append(day)
                rows["account_id"].append(keys[0])
                rows["service"].append(keys[1])
                rows["cost_usd"].append(float(amount["Amount"]))
                rows["currency"].append(amount.get("Unit", "USD"))
    frame = pl.DataFrame(rows, schema={"date": pl.Date, "account_id": pl.String, "service": pl.String,
                                       "cost_usd": pl.Float64, "currency": pl.String})
    # Pages split a day's groups and never repeat one; should a group come twice, count it once.
    return frame.unique(subset=["date", "account_id", "service"], keep="last").sort(["date", "account_id", "service"])


def usage_frame(pages: Sequence[dict], metric: str, service: str) -> pl.DataFrame:
    """Daily rows per (account, usage type) of one service, with the region its prefix names, the cost,
    UsageQuantity and its unit."""
    rows = []
    for page in pages:
        for result in page.get("ResultsByTime", []):
            day = date.fromisoformat(result["TimePeriod"]["Start"])
            for group in result.get("Groups", []):
                keys, metrics = group.get("Keys", []), group.get("Metrics", {})
                if len(keys) != 2 or metric not in metrics:
                    continue
                quantity = metrics.get("UsageQuantity") or {}
                unit = quantity.get("Unit")
                rows.append({"date": day, "account_id": keys[0], "service": service, "usage_type": keys[1],
                             "region": region_of_usage_type(keys[1], service),
                             "cost_usd": float(metrics[metric]["Amount"]), "currency": metrics[metric].get("Unit", "USD"),
                             "usage_quantity": float(quantity["Amount"]) if "Amount" in quantity else None,
                             # CE says "N/A" when a group mixes units: no quantity to compare then.
                             "usage_unit": None if unit in (None, "N/A") else unit})
    return pl.DataFrame(rows, schema=USAGE_SCHEMA)


USAGE_SCHEMA = {"date": pl.Date, "account_id": pl.String, "service": pl.String, "usage_type": pl.String,
                "region": pl.String, "cost_usd": pl.Float64, "currency": pl.String, "usage_quantity": pl.Float64, "usage_unit": pl.String}


def with_usage_detail(frame: pl.DataFrame, details: Sequence[pl.DataFrame]) -> pl.DataFrame:
    """The service-level rows with each (day, account, service) that has usage-type rows replaced by them.
    Where a detail query gave nothing for a day the service row stays, so the totals never change."""
    detail = pl.concat([d for d in details if d.height], how="vertical") if any(d.height for d in details) else None
    if detail is None:
        return frame
    key = ["date", "account_id", "service"]
    kept = frame.join(detail.select(key).unique(), on=key, how="anti")
    return pl.concat([kept, detail], how="diagonal_relaxed").sort([*key, "usage_type"], nulls_last=False)
