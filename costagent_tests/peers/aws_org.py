"""An AWS organisation on loopback: moto's server with several accounts, plus what moto lacks.

moto 5.2.5 answers EC2, Auto Scaling, EBS, RDS, Lambda, S3, CloudWatch (``PutMetricData`` /
``GetMetricData``), STS and IAM for any account id: ``AssumeRole`` into ``arn:aws:iam::<id>:role/...``
returns credentials that act in that account. What it does not do, the layer in front of it does:

- Cost Explorer's ``GetReservationPurchaseRecommendation``, ``GetSavingsPlansPurchaseRecommendation``,
  ``GetReservationUtilization`` and ``GetSavingsPlansUtilizationDetails`` are not implemented by moto
  ("The get_reservation_purchase_recommendation action has not been implemented"). They are answered here
  in CE's JSON 1.1 protocol from pages set by the test (``NextPageToken`` chains them), and recorded.
- A denied ``AssumeRole``: moto evaluates IAM policies only when its auth is on, and then for every service
  (where its Lambda signature check fails on valid requests). With ``enforce_sts_iam`` the layer turns moto's
  own IAM enforcement on for STS requests only, so the denial comes from moto evaluating the caller's policy.
- Throttling: the next N calls of an EC2 action get AWS's ``RequestLimitExceeded`` (HTTP 503).
"""

from __future__ import annotations

import io
import json
import threading
import zipfile
from datetime import datetime, timedelta
from urllib.parse import parse_qs

import boto3
from moto import settings as moto_settings
from moto.core.authorization import ActionAuthenticatorMixin

from costagent_tests.peers.moto_server import CE_TARGET, MotoPeer

CE_COMMITMENT_OPERATIONS = ("GetReservationPurchaseRecommendation", "GetSavingsPlansPurchaseRecommendation",
                            "GetReservationUtilization", "GetSavingsPlansUtilizationDetails")
# The token field each operation pages with.
CE_TOKENS = {"GetSavingsPlansUtilizationDetails": "NextToken"}


class AwsOrgPeer(MotoPeer):
    """moto on loopback with Cost Explorer's commitment operations, STS-only IAM enforcement, EC2 throttling."""

    def __init__(self) -> None:
        super().__init__()
        self.ce_pages: dict[str, list[dict]] = {}  # operation (or "operation:Service") -> its reply pages
        self.ce_requests: list[tuple[str, dict]] = []
        self.enforce_sts_iam = False
        self.throttle_ec2: dict[str, int] = {}  # EC2 action -> answers still to throttle
        self.ec2_throttled: list[str] = []
        self.requests: list[str] = []  # "service:Action" of every request that reached the layer
        self._auth_lock = threading.Lock()

    def front(self, environ, start_response, app):
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        form = parse_qs(body.decode("utf-8", "replace")) if b"Action=" in body[:200] else {}
        action = (form.get("Action") or [""])[0]
        self.requests.append(target.rsplit(".", 1)[-1] if target else action or environ.get("PATH_INFO", ""))
        operation = target.removeprefix(CE_TARGET)
        if target.startswith(CE_TARGET) and operation in CE_COMMITMENT_OPERATIONS and self.throttle_ce <= 0:
            return self._ce_answer(operation, json.loads(body or b"{}"), start_response)
        if action and self.throttle_ec2.get(action, 0) > 0:
            self.throttle_ec2[action] -= 1
            self.ec2_throttled.append(action)
            return _respond(start_response, "503 Service Unavailable", "text/xml", (
                b"<Response><Errors><Error><Code>RequestLimitExceeded</Code><Message>Request limit exceeded."
                b"</Message></Error></Errors><RequestID>throttled</RequestID></Response>"))
        if self.enforce_sts_iam:
            # One request at a time while enforcement may be on: it is a module-level switch in moto.
            with self._auth_lock:
                if action == "AssumeRole":
                    saved = moto_settings.INITIAL_NO_AUTH_ACTION_COUNT, ActionAuthenticatorMixin.request_count
                    moto_settings.INITIAL_NO_AUTH_ACTION_COUNT, ActionAuthenticatorMixin.request_count = 0, 0
                    try:
                        return super().front(environ, start_response, app)
                    finally:
                        moto_settings.INITIAL_NO_AUTH_ACTION_COUNT, ActionAuthenticatorMixin.request_count = saved
                return super().front(environ, start_response, app)
        return super().front(environ, start_response, app)

    def _ce_answer(self, operation: str, request: dict, start_response):
        self.ce_requests.append((operation, request))
        self.ce_calls.append("ok")
        # Pages per operation, or per operation and service ("GetReservationPurchaseRecommendation:<Service>").
        pages = self.ce_pages.get(f"{operation}:{request.get('Service')}") or self.ce_pages.get(operation) or [{}]
        token_field = CE_TOKENS.get(operation, "NextPageToken")
        index = int(str(request.get(token_field) or "page-1").removeprefix("page-")) - 1
        page = dict(pages[index])
        if index + 1 < len(pages):
            page[token_field] = f"page-{index + 2}"
        return _respond(start_response, "200 OK", "application/x-amz-json-1.1", json.dumps(page).encode())

    # --- setting up accounts (before enforcement is on) ----------------------------------------------

    def account_session(self, account: str, region: str = "us-east-1") -> boto3.session.Session:
        """A session acting in ``account`` (moto maps an assumed role's keys to the role's account)."""
        creds = boto3.client("sts", region_name=region).assume_role(
            RoleArn=f"arn:aws:iam::{account}:role/setup", RoleSessionName="test-setup")["Credentials"]
        return boto3.session.Session(aws_access_key_id=creds["AccessKeyId"],
                                     aws_secret_access_key=creds["SecretAccessKey"],
                                     aws_session_token=creds["SessionToken"], region_name=region)

    def caller_with_policy(self, policy: dict, user: str = "costagent") -> dict:
        """An IAM user of moto's default account with ``policy`` inline; its access key as boto3 arguments."""
        iam = boto3.client("iam", region_name="us-east-1")
        iam.create_user(UserName=user)
        iam.put_user_policy(UserName=user, PolicyName="costagent", PolicyDocument=json.dumps(policy))
        key = iam.create_access_key(UserName=user)["AccessKey"]
        return {"AWS_ACCESS_KEY_ID": key["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"]}

    def assumed_session_names(self, account: str) -> list[str]:
        """Session names of the roles assumed into ``account`` (what CloudTrail would show)."""
        from moto.sts.models import sts_backends

        return [r.session_name for r in sts_backends[account]["aws"].assumed_roles]

    def backdate_snapshot(self, account: str, region: str, snapshot_id: str, when: datetime) -> None:
        """Give a snapshot an older start time (moto stamps the creation time and has no API to change it)."""
        from moto.ec2.models import ec2_backends

        # moto keeps naive UTC datetimes.
        ec2_backends[account][region].snapshots[snapshot_id].start_time = when.replace(tzinfo=None)


def _respond(start_response, status: str, content_type: str, body: bytes):
    start_response(status, [("Content-Type", content_type), ("Content-Length", str(len(body)))])
    return [body]


def daily_points(cloudwatch, namespace: str, metric: str, dimensions: dict[str, str], end: datetime,
                 days: int, values_per_day: list[float]) -> None:
    """``values_per_day`` as datapoints at 10:00, 14:00, ... of each of the ``days`` days before ``end``."""
    dims = [{"Name": k, "Value": v} for k, v in dimensions.items()]
    data = [
        {"MetricName": metric, "Dimensions": dims, "Value": value,
         "Timestamp": end - timedelta(days=day) + timedelta(hours=10 + 4 * i)}
        for day in range(1, days + 1) for i, value in enumerate(values_per_day)
    ]
    for start in range(0, len(data), 500):
        cloudwatch.put_metric_data(Namespace=namespace, MetricData=data[start:start + 500])


def plant_typical_account(peer: AwsOrgPeer, account: str, regions: list[str], end: datetime, days: int,
                          buckets: int = 3) -> None:
    """A typical small account, for benchmarks: per region three instances (one idle) with CPU and network
    metrics, two volumes (one unattached), a snapshot, two Elastic IPs (one free), an RDS instance with its
    connections metric and a Lambda function with Duration and Lambda Insights metrics; ``buckets`` S3
    buckets in the first region, one with a lifecycle rule."""
    zipped = io.BytesIO()
    with zipfile.ZipFile(zipped, "w") as archive:
        archive.writestr("handler.py", "def handle(event, context):\n    return event\n")
    for region in regions:
        s = peer.account_session(account, region)
        ec2, cw = s.client("ec2"), s.client("cloudwatch")
        image = ec2.describe_images()["Images"][0]["ImageId"]
        instances = [ec2.run_instances(ImageId=image, InstanceType=size, MinCount=1, MaxCount=1)["Instances"][0]
                     ["InstanceId"] for size in ("m5.xlarge", "c5.large", "t3.medium")]
        for instance, cpu in zip(instances, (1.0, 45.0, 12.0), strict=True):
            daily_points(cw, "AWS/EC2", "CPUUtilization", {"InstanceId": instance}, end, days, [cpu])
            for metric in ("NetworkIn", "NetworkOut"):
                daily_points(cw, "AWS/EC2", metric, {"InstanceId": instance}, end, days, [1e6 if cpu < 5 else 1e9])
        zone = f"{region}a"
        ec2.create_volume(Size=200, VolumeType="gp2", AvailabilityZone=zone)
        used = ec2.create_volume(Size=100, VolumeType="gp3", AvailabilityZone=zone)["VolumeId"]
        ec2.attach_volume(VolumeId=used, InstanceId=instances[1], Device="/dev/sdf")
        ec2.create_snapshot(VolumeId=used)
        ec2.allocate_address(Domain="vpc")
        bound = ec2.allocate_address(Domain="vpc")["AllocationId"]
        ec2.associate_address(AllocationId=bound, InstanceId=instances[1])
        s.client("rds").create_db_instance(
            DBInstanceIdentifier="db", DBInstanceClass="db.t3.medium", Engine="postgres", MasterUsername="admin1",
            MasterUserPassword="password1", AllocatedStorage=20)
        daily_points(cw, "AWS/RDS", "DatabaseConnections", {"DBInstanceIdentifier": "db"}, end, days, [3.0])
        role = s.client("iam").get_role(RoleName="lambda-exec")["Role"]["Arn"] if region != regions[0] else \
            s.client("iam").create_role(RoleName="lambda-exec", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        s.client("lambda").create_function(FunctionName="fn", Runtime="python3.12", Role=role,
                                           Handler="handler.handle", Code={"ZipFile": zipped.getvalue()},
                                           MemorySize=1024)
        daily_points(cw, "AWS/Lambda", "Duration", {"FunctionName": "fn"}, end, days, [5e6])
        daily_points(cw, "LambdaInsights", "used_memory_max", {"function_name": "fn"}, end, days, [200.0])
    s = peer.account_session(account, regions[0])
    s3 = s.client("s3")
    for i in range(buckets):
        name = f"b{i}-{account}"
        kwargs = {} if regions[0] == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": regions[0]}}
        s3.create_bucket(Bucket=name, **kwargs)
        if i == 0:
            s3.put_bucket_lifecycle_configuration(Bucket=name, LifecycleConfiguration={"Rules": [
                {"ID": "expire", "Status": "Enabled", "Filter": {"Prefix": ""}, "Expiration": {"Days": 30}}]})
