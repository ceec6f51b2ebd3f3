"""Scanning member accounts for savings: a read-only role per account, the configured regions, CloudWatch.

``AwsScanner`` assumes ``<role_name>`` in every account of the run (session name
``costagent-<run id prefix>-<account>``, so CloudTrail shows which run did what), then scans the configured
regions of all accounts concurrently in one thread pool: EC2 instances, volumes, snapshots, addresses and
Auto Scaling groups, RDS instances, Lambda functions, and (once per account) S3 buckets. Metrics come from
CloudWatch ``GetMetricData``, up to 500 metric queries per call, daily datapoints over the lookback window.
Cost Explorer's RI and Savings Plans recommendations and utilisation are read once per run with the
caller's own credentials (the management account sees every member account).

Every request is counted per account (retries included). An account whose role cannot be assumed is
"unavailable" with the reason and the others go on; a call that is still throttled after botocore's retries
(``adaptive`` mode, ``max_attempts``) leaves its account "partial" with the reason: the findings it would have
given are missing and said to be, never shown as $0 savings.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import dagster as dg
import polars as pl

from costagent_assets.optimization import COMMITMENT_SCHEMA, INVENTORY_SCHEMA, STATUS_SCHEMA, frame

# GetMetricData takes at most 500 metric queries per request.
METRIC_QUERIES_PER_CALL = 500
DAY = 86400
ENVIRONMENT_TAGS = ("environment", "env", "stage")  # tag keys read as the environment, any case
THROTTLING = {"Throttling", "ThrottlingException", "RequestLimitExceeded", "TooManyRequestsException",
              "RequestThrottled", "RequestThrottledException", "SlowDown", "LimitExceededException"}
# Cost Explorer bills every request, pages included.
CE_USD_PER_REQUEST = 0.01


@dataclass
class ScanResult:
    """What a scan found: the resources and their metrics, Cost Explorer's commitments, and each account's
    status (ok / partial / unavailable, with the reason and the API calls it took)."""

    inventory: pl.DataFrame
    commitments: pl.DataFrame
    status: pl.DataFrame
    organisation_calls: int = 0  # Cost Explorer requests made with the caller's credentials
    organisation_cost_usd: float = 0.0
    notes: list[str] = field(default_factory=list)
    calls_by_operation: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


class OptimizationScanner(dg.ConfigurableResource):
    """Base of the AWS, demo and disabled scanners; ``optimization_opportunities`` depends only on this."""

    @property
    def name(self) -> str:
        raise NotImplementedError

    def scan(self, account_ids: Sequence[str], end: datetime, lookback_days: int, label: str) -> ScanResult:
        """Resources, metrics over ``[end - lookback_days, end)``, commitments and a status per account.

        ``label`` (the run id's first 8 characters) goes into the role session name.
        """
        raise NotImplementedError


class DisabledScanner(OptimizationScanner):
    """``optimization_scanner=off`` (or ``auto`` on a non-demo source): nothing is scanned, and every account
    says so rather than showing "no savings"."""

    reason: str = "scanning is off (optimization_scanner)"

    @property
    def name(self) -> str:
        return "off"

    def scan(self, account_ids: Sequence[str], end: datetime, lookback_days: int, label: str) -> ScanResult:
        """No API calls; every account ``not_scanned`` with the reason."""
        status = frame(({"account_id": a, "status": "not_scanned", "reason": self.reason, "api_calls": 0,
                         "retries": 0, "resources": 0, "seconds": 0.0} for a in account_ids), STATUS_SCHEMA)
        return ScanResult(frame([], INVENTORY_SCHEMA), frame([], COMMITMENT_SCHEMA), status)


class _Meter:
    """Requests per account and per operation (retries included), thread-safe."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.calls: dict[str, int] = {}
        self.retries: dict[str, int] = {}
        self.by_operation: dict[str, int] = {}

    def add(self, account: str, operation: str, retries: int) -> None:
        with self.lock:
            self.calls[account] = self.calls.get(account, 0) + 1 + retries
            self.retries[account] = self.retries.get(account, 0) + retries
            self.by_operation[operation] = self.by_operation.get(operation, 0) + 1 + retries


class _CallFailed(Exception):
    """One API operation failed after its retries; the message says which, where and why."""


def _describe_error(exc: Exception) -> tuple[str, int]:
    """(code: message, retries made) of a botocore error."""
    response = getattr(exc, "response", None) or {}
    error = response.get("Error", {})
    retries = response.get("ResponseMetadata", {}).get("RetryAttempts", 0)
    if error:
        return f"{error.get('Code', 'Error')}: {error.get('Message', '')}".strip().rstrip(":"), retries
    return f"{type(exc).__name__}: {exc}", retries


class _AccountScan:
    """The calls of one account with its assumed-role credentials; every call is metered."""

    def __init__(self, scanner: AwsScanner, account: str, credentials: dict, meter: _Meter,
                 make_client: Callable[..., object]):
        self.scanner, self.account, self.credentials = scanner, account, credentials
        self.meter, self.make_client = meter, make_client
        self.errors: list[str] = []

    def client(self, service: str, region: str):
        return self.make_client(service, region, self.credentials)

    def call(self, client, operation: str, region: str, **params) -> dict:
        """One request; a failure after the retries raises ``_CallFailed`` naming the operation and region."""
        service = client.meta.service_model.service_name
        try:
            response = getattr(client, _snake(operation))(**params)
        except Exception as exc:  # botocore ClientError, connection errors: counted, then reported
            reason, retries = _describe_error(exc)
            self.meter.add(self.account, f"{service}:{operation}", retries)
            code = reason.split(":")[0]
            what = "throttled" if code in THROTTLING else "failed"
            raise _CallFailed(f"{service}:{operation} in {region} {what} after {retries + 1} attempt(s): "
                              f"{reason}") from None
        self.meter.add(self.account, f"{service}:{operation}", response.get("ResponseMetadata", {}).get("RetryAttempts", 0))
        return response

    def pages(self, client, operation: str, region: str, items: str, token_in: str = "NextToken",
              token_out: str = "NextToken", **params) -> list[dict]:
        """Every item of a paginated operation."""
        out, token = [], None
        while True:
            page = self.call(client, operation, region, **params, **({token_in: token} if token else {}))
            out.extend(page.get(items, []))
            token = page.get(token_out)
            if not token:
                return out

    def guarded(self, what: Callable[[], list[dict]]) -> list[dict]:
        """Run one collection; a failed call is recorded (the account becomes partial) and gives nothing."""
        try:
            return what()
        except _CallFailed as err:
            self.errors.append(str(err))
            return []

    # --- one region --------------------------------------------------------------------------------------

    def scan_region(self, region: str, end: datetime, lookback_days: int) -> list[dict]:
        """Every resource of one region with its metrics."""
        ec2 = self.client("ec2", region)
        asg_of = {}
        for group in self.guarded(lambda: self.pages(self.client("autoscaling", region), "DescribeAutoScalingGroups",
                                                     region, "AutoScalingGroups")):
            distribution = (group.get("MixedInstancesPolicy") or {}).get("InstancesDistribution") or {}
            if distribution.get("OnDemandPercentageAboveBaseCapacity", 100) < 100:
                continue  # already runs partly on Spot
            for inst in group.get("Instances", []):
                asg_of[inst["InstanceId"]] = (group["AutoScalingGroupName"], len(group.get("Instances", [])))
        rows = []
        for reservation in self.guarded(lambda: self.pages(ec2, "DescribeInstances", region, "Reservations")):
            for inst in reservation.get("Instances", []):
                state = inst.get("State", {}).get("Name")
                if state in ("terminated", "shutting-down"):
                    continue
                root = inst.get("RootDeviceName")
                asg = asg_of.get(inst["InstanceId"], (None, None))
                rows.append({
                    "account_id": self.account, "region": region, "resource_type": "ec2_instance",
                    "resource_id": inst["InstanceId"], "name": _tag(inst.get("Tags"), "name"),
                    "size": inst.get("InstanceType"), "state": state, "created": inst.get("LaunchTime"),
                    "environment": _environment(inst.get("Tags")), "asg_name": asg[0], "asg_size": asg[1],
                    "data_volumes": sum(1 for b in inst.get("BlockDeviceMappings", []) if b.get("DeviceName") != root),
                    "lifecycle": inst.get("InstanceLifecycle"),
                })
        for vol in self.guarded(lambda: self.pages(ec2, "DescribeVolumes", region, "Volumes")):
            rows.append({
                "account_id": self.account, "region": region, "resource_type": "ebs_volume",
                "resource_id": vol["VolumeId"], "name": _tag(vol.get("Tags"), "name"), "size": vol.get("VolumeType"),
                "state": vol.get("State"), "created": vol.get("CreateTime"), "size_gb": float(vol.get("Size") or 0),
                "iops": _float(vol.get("Iops")), "throughput": _float(vol.get("Throughput")),
                "environment": _environment(vol.get("Tags")),
            })
        image_snapshots = {
            b["Ebs"]["SnapshotId"]
            for image in self.guarded(lambda: self.call(ec2, "DescribeImages", region, Owners=["self"]).get("Images", []))
            for b in image.get("BlockDeviceMappings", []) if b.get("Ebs", {}).get("SnapshotId")
        }
        # The owner-id filter says the same as OwnerIds=self; moto honours only the filter (else it lists every
        # public AMI snapshot, ~1,300 per region).
        owned = {"OwnerIds": ["self"], "Filters": [{"Name": "owner-id", "Values": [self.account]}]}
        for snap in self.guarded(lambda: self.pages(ec2, "DescribeSnapshots", region, "Snapshots", **owned)):
            if snap.get("OwnerId", self.account) != self.account:
                continue
            rows.append({
                "account_id": self.account, "region": region, "resource_type": "ebs_snapshot",
                "resource_id": snap["SnapshotId"], "name": _tag(snap.get("Tags"), "name"), "state": snap.get("State"),
                "created": snap.get("StartTime"), "size_gb": float(snap.get("VolumeSize") or 0),
                "backs_image": snap["SnapshotId"] in image_snapshots
                or (snap.get("Description") or "").startswith("Created by CreateImage"),
            })
        for addr in self.guarded(lambda: self.call(ec2, "DescribeAddresses", region).get("Addresses", [])):
            rows.append({
                "account_id": self.account, "region": region, "resource_type": "elastic_ip",
                "resource_id": addr.get("AllocationId") or addr.get("PublicIp"), "name": addr.get("PublicIp"),
                "associated": bool(addr.get("AssociationId") or addr.get("InstanceId")
                                   or addr.get("NetworkInterfaceId")),
            })
        rds = self.client("rds", region)
        for db in self.guarded(lambda: self.pages(rds, "DescribeDBInstances", region, "DBInstances",
                                                  token_in="Marker", token_out="Marker")):
            rows.append({
                "account_id": self.account, "region": region, "resource_type": "rds_instance",
                "resource_id": db["DBInstanceIdentifier"], "name": db["DBInstanceIdentifier"],
                "size": db.get("DBInstanceClass"), "state": db.get("DBInstanceStatus"),
                "created": db.get("InstanceCreateTime"), "size_gb": _float(db.get("AllocatedStorage")),
                "multi_az": bool(db.get("MultiAZ")), "environment": _environment(db.get("TagList")),
            })
        lam = self.client("lambda", region)
        for fn in self.guarded(lambda: self.pages(lam, "ListFunctions", region, "Functions",
                                                  token_in="Marker", token_out="NextMarker")):
            rows.append({
                "account_id": self.account, "region": region, "resource_type": "lambda_function",
                "resource_id": fn.get("FunctionArn") or fn["FunctionName"], "name": fn["FunctionName"],
                "memory_mb": _float(fn.get("MemorySize")), "architecture": (fn.get("Architectures") or ["x86_64"])[0],
            })
        self.add_metrics(rows, region, end, lookback_days)
        return rows

    # --- S3, once per account ----------------------------------------------------------------------------

    def scan_buckets(self, end: datetime, lookback_days: int) -> list[dict]:
        """Every bucket of the account: its region, whether it has a lifecycle rule, its Standard size."""
        home = self.scanner.regions[0]
        s3 = self.client("s3", home)
        rows = []
        for bucket in self.guarded(lambda: self.call(s3, "ListBuckets", "global").get("Buckets", [])):
            name = bucket["Name"]
            region = bucket.get("BucketRegion")
            if not region:
                located = self.guarded(lambda n=name: [self.call(s3, "GetBucketLocation", "global", Bucket=n)])
                if not located:
                    continue
                region = located[0].get("LocationConstraint") or "us-east-1"
            rows.append({"account_id": self.account, "region": region, "resource_type": "s3_bucket",
                         "resource_id": name, "name": name, "created": bucket.get("CreationDate"),
                         "has_lifecycle": self._has_lifecycle(s3, name)})
        for region in sorted({r["region"] for r in rows}):
            self.add_metrics([r for r in rows if r["region"] == region], region, end, lookback_days)
        return rows

    def _has_lifecycle(self, s3, bucket: str) -> bool | None:
        try:
            self.call(s3, "GetBucketLifecycleConfiguration", "global", Bucket=bucket)
            return True
        except _CallFailed as err:
            if "NoSuchLifecycleConfiguration" in str(err):
                return False
            self.errors.append(str(err))
            return None

    # --- CloudWatch ------------------------------------------------------------------------------------

    def add_metrics(self, rows: list[dict], region: str, end: datetime, lookback_days: int) -> None:
        """Fill the rows' metric columns from ``GetMetricData``, 500 queries per request."""
        queries = [q for r in rows for q in _metric_queries(r)]
        if not queries:
            return
        cloudwatch = self.client("cloudwatch", region)
        values: dict[str, list[float]] = {}
        start = end - timedelta(days=lookback_days)
        for i in range(0, len(queries), METRIC_QUERIES_PER_CALL):
            batch = queries[i:i + METRIC_QUERIES_PER_CALL]
            request = [{"Id": f"q{i + j}", "MetricStat": {
                "Metric": {"Namespace": q["namespace"], "MetricName": q["metric"], "Dimensions": q["dimensions"]},
                "Period": DAY, "Stat": q["stat"]}, "ReturnData": True} for j, q in enumerate(batch)]
            try:
                results = self.pages(cloudwatch, "GetMetricData", region, "MetricDataResults",
                                     MetricDataQueries=request, StartTime=start, EndTime=end)
            except _CallFailed as err:
                self.errors.append(str(err))
                continue
            for result in results:
                values.setdefault(result["Id"], []).extend(result.get("Values", []))
        for i, q in enumerate(queries):
            q["apply"](q["row"], values.get(f"q{i}", []))


def _snake(operation: str) -> str:
    out = []
    for i, ch in enumerate(operation):
        if ch.isupper() and i and (not operation[i - 1].isupper() or (i + 1 < len(operation) and operation[i + 1].islower())):
            out.append("_")
        out.append(ch.lower())
    return "".join(out)


def _float(value) -> float | None:
    return None if value is None else float(value)


def _tag(tags: list[dict] | None, key: str) -> str | None:
    for tag in tags or []:
        if tag.get("Key", "").lower() == key:
            return tag.get("Value")
    return None


def _environment(tags: list[dict] | None) -> str | None:
    for key in ENVIRONMENT_TAGS:
        value = _tag(tags, key)
        if value:
            return value.strip().lower()
    return None


def _set(column: str, combine: Callable[[list[float]], float], days_column: bool = False):
    def apply(row: dict, values: list[float]) -> None:
        if values:
            row[column] = combine(values)
            if days_column:
                row["metric_days"] = len(values)

    return apply


def _network(row: dict, values: list[float]) -> None:
    # NetworkIn and NetworkOut both land here; per day, over the days with CPU data.
    if values:
        row["_network_bytes"] = row.get("_network_bytes", 0.0) + sum(values)
        days = max(row.get("metric_days") or len(values), 1)
        row["network_mb_per_day"] = row["_network_bytes"] / 1e6 / days


def _metric_queries(row: dict) -> list[dict]:
    """The CloudWatch queries a resource needs, each with how its values fill the row."""
    kind = row["resource_type"]

    def q(namespace, metric, dims, stat, apply):
        return {"namespace": namespace, "metric": metric, "dimensions": dims, "stat": stat, "apply": apply,
                "row": row}

    if kind == "ec2_instance" and row["state"] == "running":
        dims = [{"Name": "InstanceId", "Value": row["resource_id"]}]
        return [q("AWS/EC2", "CPUUtilization", dims, "Average", _set("cpu_avg_pct", lambda v: sum(v) / len(v), True)),
                q("AWS/EC2", "CPUUtilization", dims, "Maximum", _set("cpu_peak_pct", max)),
                q("AWS/EC2", "NetworkIn", dims, "Sum", _network), q("AWS/EC2", "NetworkOut", dims, "Sum", _network)]
    if kind == "rds_instance" and row["state"] == "available":
        dims = [{"Name": "DBInstanceIdentifier", "Value": row["resource_id"]}]
        return [q("AWS/RDS", "DatabaseConnections", dims, "Maximum", _set("connections_max", max, True))]
    if kind == "lambda_function":
        # Memory used comes from Lambda Insights (only functions with the extension enabled report it).
        return [q("LambdaInsights", "used_memory_max", [{"Name": "function_name", "Value": row["name"]}], "Maximum",
                  _set("memory_used_max_mb", max)),
                q("AWS/Lambda", "Duration", [{"Name": "FunctionName", "Value": row["name"]}], "Sum",
                  _set("duration_ms_sum", sum, True)),
                q("AWS/Lambda", "Invocations", [{"Name": "FunctionName", "Value": row["name"]}], "Sum",
                  _set("invocations", sum))]
    if kind == "s3_bucket":
        dims = [{"Name": "BucketName", "Value": row["resource_id"]}, {"Name": "StorageType", "Value": "StandardStorage"}]
        return [q("AWS/S3", "BucketSizeBytes", dims, "Average", _set("standard_gb", lambda v: v[-1] / 1e9, True))]
    return []


class AwsScanner(OptimizationScanner):
    """Scans member accounts through a read-only role (``optimization_role_name``) in each.

    Credentials come from the standard AWS chain (run it where the management account's, or a security
    account's, credentials are); ``AWS_ENDPOINT_URL`` is honoured. See the README for the IAM permission
    policy and trust policy the role needs.
    """

    role_name: str = "CostagentReadOnly"
    regions: list[str] = ["us-east-1"]
    max_workers: int = 16
    max_attempts: int = 5
    retry_mode: str = "adaptive"  # client-side rate limiting on top of the standard retries
    commitments: bool = True
    partition: str = "aws"

    @property
    def name(self) -> str:
        return "aws"

    def session_name(self, label: str, account_id: str) -> str:
        """The role session name CloudTrail records: ``costagent-<run id prefix>-<account>`` (at most 64 chars)."""
        return f"costagent-{label}-{account_id}"[:64]

    def scan(self, account_ids: Sequence[str], end: datetime, lookback_days: int, label: str) -> ScanResult:
        """Assume the role in every account, then scan every (account, region) and each account's buckets
        concurrently; Cost Explorer's commitments once. Never raises for one account's failure."""
        import boto3
        import botocore.config

        started = time.perf_counter()
        config = botocore.config.Config(
            retries={"mode": self.retry_mode, "total_max_attempts": self.max_attempts},
            connect_timeout=10, read_timeout=60, max_pool_connections=max(10, self.max_workers),
        )
        session = boto3.session.Session()
        lock = threading.Lock()  # creating clients from one session is not thread-safe; using them is

        def make_client(service: str, region: str, credentials: dict | None = None):
            with lock:
                return session.client(service, region_name=region, config=config, **(credentials or {}))

        meter = _Meter()
        sts = make_client("sts", self.regions[0])
        credentials: dict[str, dict] = {}
        unavailable: dict[str, str] = {}

        def assume(account: str) -> None:
            try:
                response = sts.assume_role(
                    RoleArn=f"arn:{self.partition}:iam::{account}:role/{self.role_name}",
                    RoleSessionName=self.session_name(label, account), DurationSeconds=3600,
                )
            except Exception as exc:  # AccessDenied, no credentials, unreachable: this account only
                reason, retries = _describe_error(exc)
                meter.add(account, "sts:AssumeRole", retries if getattr(exc, "response", None) else 0)
                unavailable[account] = f"role {self.role_name} could not be assumed: {reason}"
                return
            meter.add(account, "sts:AssumeRole", response.get("ResponseMetadata", {}).get("RetryAttempts", 0))
            c = response["Credentials"]
            credentials[account] = {"aws_access_key_id": c["AccessKeyId"],
                                    "aws_secret_access_key": c["SecretAccessKey"],
                                    "aws_session_token": c["SessionToken"]}

        workers = max(1, self.max_workers)
        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(assume, account_ids))
        scans = {a: _AccountScan(self, a, credentials[a], meter, make_client) for a in account_ids if a in credentials}
        tasks = [(a, r) for a in scans for r in self.regions] + [(a, "s3") for a in scans]
        seconds: dict[str, float] = {}

        def run(task: tuple[str, str]) -> list[dict]:
            account, region = task
            t0 = time.perf_counter()
            scan = scans[account]
            try:
                if region == "s3":
                    return scan.scan_buckets(end, lookback_days)
                return scan.scan_region(region, end, lookback_days)
            except Exception as exc:  # a bug or an unexpected reply must not hide the other accounts
                scan.errors.append(f"{region}: {type(exc).__name__}: {exc}")
                return []
            finally:
                with lock:
                    seconds[account] = seconds.get(account, 0.0) + time.perf_counter() - t0

        with ThreadPoolExecutor(max_workers=workers) as pool:
            found = [row for rows in pool.map(run, tasks) for row in rows]
        for row in found:
            row.pop("_network_bytes", None)
        inventory = frame(found, INVENTORY_SCHEMA)
        counts = dict(inventory.group_by("account_id").len().iter_rows()) if inventory.height else {}
        status_rows = []
        for account in account_ids:
            errors = scans[account].errors if account in scans else []
            status_rows.append({
                "account_id": account,
                "status": "unavailable" if account in unavailable else "partial" if errors else "ok",
                "reason": unavailable.get(account) or ("; ".join(errors[:5]) + (f"; and {len(errors) - 5} more"
                                                                                if len(errors) > 5 else "")
                                                       if errors else None),
                "api_calls": meter.calls.get(account, 0), "retries": meter.retries.get(account, 0),
                "regions": ",".join(self.regions), "resources": counts.get(account, 0),
                "seconds": round(seconds.get(account, 0.0), 3),
            })
        result = ScanResult(inventory, frame([], COMMITMENT_SCHEMA), frame(status_rows, STATUS_SCHEMA),
                            calls_by_operation=dict(meter.by_operation))
        if self.commitments:
            _commitments(make_client("ce", "us-east-1"), set(account_ids), end, lookback_days, result)
        result.calls_by_operation = dict(sorted(result.calls_by_operation.items()))
        result.seconds = time.perf_counter() - started
        return result


# ---------------------------------------------------------------------------------------------------------
# Cost Explorer: commitments, once per run with the caller's credentials

RI_SERVICES = {"Amazon Elastic Compute Cloud - Compute": ("EC2InstanceDetails", "Amazon EC2"),
               "Amazon Relational Database Service": ("RDSInstanceDetails", "Amazon RDS")}
RECOMMENDATION_TERMS = {"TermInYears": "ONE_YEAR", "PaymentOption": "NO_UPFRONT",
                        "LookbackPeriodInDays": "THIRTY_DAYS", "AccountScope": "LINKED"}
TERM, PAYMENT, RECOMMENDATION_DAYS = "1 year", "no upfront", 30.0


def _commitments(ce, accounts: set[str], end: datetime, lookback_days: int, result: ScanResult) -> None:
    """RI and Savings Plans purchase recommendations and utilisation, attributed to the run's accounts.

    Each operation is independent: one that fails (not the management account, Cost Explorer not enabled,
    throttled past the retries) adds a note and leaves its findings out. Requests answered are billed.
    """
    rows: list[dict] = []
    period = {"Start": (end - timedelta(days=lookback_days)).date().isoformat(), "End": end.date().isoformat()}
    answered = [0]

    def pages(operation: str, items: Callable[[dict], list], token_in: str, token_out: str, **params) -> list:
        out, token = [], None
        while True:
            try:
                page = getattr(ce, _snake(operation))(**params, **({token_in: token} if token else {}))
            except Exception as exc:
                reason, retries = _describe_error(exc)
                _count(result, f"ce:{operation}", 1 + retries)
                result.notes.append(f"Cost Explorer {operation} failed after {retries + 1} attempt(s): {reason}")
                return out
            _count(result, f"ce:{operation}", 1 + page.get("ResponseMetadata", {}).get("RetryAttempts", 0))
            answered[0] += 1
            out.extend(items(page))
            token = page.get(token_out)
            if not token:
                return out

    common = {"term": TERM, "payment_option": PAYMENT, "window_days": RECOMMENDATION_DAYS}
    for service, (details_key, service_name) in RI_SERVICES.items():
        recs = pages("GetReservationPurchaseRecommendation", lambda p: p.get("Recommendations", []),
                     "NextPageToken", "NextPageToken", Service=service, **RECOMMENDATION_TERMS)
        for d in (d for rec in recs for d in rec.get("RecommendationDetails", [])):
            inst = (d.get("InstanceDetails") or {}).get(details_key) or {}
            rows.append({
                **common, "account_id": d.get("AccountId"), "kind": "ri_purchase", "service": service_name,
                "resource_id": f"ri:{inst.get('InstanceType')}:{inst.get('Region')}",
                "region": inst.get("Region"), "size": inst.get("InstanceType"),
                "quantity": _float(d.get("RecommendedNumberOfInstancesToPurchase")),
                "monthly_savings_usd": _float(d.get("EstimatedMonthlySavingsAmount")),
                "detail": f"break-even in {_float(d.get('EstimatedBreakEvenInMonths')) or 0:g} months, "
                          f"expected utilisation {_float(d.get('AverageUtilization')) or 0:g}%",
            })
    sp = pages("GetSavingsPlansPurchaseRecommendation",
               lambda p: (p.get("SavingsPlansPurchaseRecommendation") or {}).get(
                   "SavingsPlansPurchaseRecommendationDetails", []),
               "NextPageToken", "NextPageToken", SavingsPlansType="COMPUTE_SP", **RECOMMENDATION_TERMS)
    for d in sp:
        rows.append({
            **common, "account_id": d.get("AccountId"), "kind": "sp_purchase", "service": "Savings Plans",
            "resource_id": d.get("RecommendationDetailId") or f"sp:compute:{d.get('AccountId')}",
            "region": (d.get("SavingsPlansDetails") or {}).get("Region"), "size": "Compute",
            "quantity": _float(d.get("HourlyCommitmentToPurchase")),
            "monthly_savings_usd": _float(d.get("EstimatedMonthlySavingsAmount")),
            "detail": f"expected utilisation {_float(d.get('EstimatedAverageUtilization')) or 0:g}%",
        })
    by_subscription: dict[str, dict] = {}
    groups = pages("GetReservationUtilization",
                   lambda p: [g for t in p.get("UtilizationsByTime", []) for g in t.get("Groups", [])],
                   "NextPageToken", "NextPageToken", TimePeriod=period,
                   GroupBy=[{"Type": "DIMENSION", "Key": "SUBSCRIPTION_ID"}])
    for g in groups:
        # Grouped by subscription, each group carries the reservation's attributes (accountId, region, ...).
        attrs = {k.lower(): v for k, v in (g.get("Attributes") or {}).items()}
        u = g.get("Utilization") or {}
        s = by_subscription.setdefault(g.get("Value"), {
            "account_id": attrs.get("accountid"), "region": attrs.get("region"), "size": attrs.get("instancetype"),
            "purchased": 0.0, "used": 0.0, "unused_usd": 0.0})
        s["purchased"] += _float(u.get("PurchasedHours")) or 0.0
        s["used"] += _float(u.get("TotalActualHours")) or 0.0
        s["unused_usd"] += _float(u.get("RICostForUnusedHours")) or 0.0
    for sub, s in by_subscription.items():
        if s["purchased"] > 0:
            rows.append({"account_id": s["account_id"], "kind": "ri_utilisation", "service": "Amazon EC2",
                         "resource_id": sub, "region": s["region"], "size": s["size"],
                         "utilisation_pct": s["used"] / s["purchased"] * 100, "unused_usd": s["unused_usd"],
                         "window_days": float(lookback_days),
                         "detail": f"{s['purchased'] - s['used']:,.0f} of {s['purchased']:,.0f} reserved hours unused"})
    details = pages("GetSavingsPlansUtilizationDetails", lambda p: p.get("SavingsPlansUtilizationDetails", []),
                    "NextToken", "NextToken", TimePeriod=period)
    for d in details:
        # arn:aws:savingsplans::<owner account>:savingsplan/<id>
        arn = d.get("SavingsPlanArn") or ""
        u = d.get("Utilization") or {}
        attrs = d.get("Attributes") or {}
        rows.append({"account_id": arn.split(":")[4] if arn.count(":") >= 5 else None, "kind": "sp_utilisation",
                     "service": "Savings Plans", "resource_id": arn.rsplit("/", 1)[-1] or arn,
                     "region": attrs.get("Region"), "size": attrs.get("SavingsPlansType"),
                     "utilisation_pct": _float(u.get("UtilizationPercentage")),
                     "unused_usd": _float(u.get("UnusedCommitment")), "window_days": float(lookback_days),
                     "detail": f"${_float(u.get('TotalCommitment')) or 0:,.2f} committed"})
    result.commitments = frame([r for r in rows if r["account_id"] in accounts], COMMITMENT_SCHEMA)
    result.organisation_calls = sum(v for k, v in result.calls_by_operation.items() if k.startswith("ce:"))
    result.organisation_cost_usd = round(answered[0] * CE_USD_PER_REQUEST, 2)


def _count(result: ScanResult, operation: str, attempts: int) -> None:
    result.calls_by_operation[operation] = result.calls_by_operation.get(operation, 0) + attempts
