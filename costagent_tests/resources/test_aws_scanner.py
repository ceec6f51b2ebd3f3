"""The AWS scanner and the savings rules against an organisation on moto's server (several accounts).

Planted per account: idle, oversized, busy and Auto Scaling instances with CloudWatch metrics, EBS volumes
and snapshots, RDS instances, Lambda functions, S3 buckets and Elastic IPs; Cost Explorer's commitment
answers come from the peer's JSON 1.1 layer (moto does not implement those operations). One account's role
is denied by an IAM policy that moto itself evaluates. The expected $ are computed here from the price
table's inputs (hourly price x 730 hours, $/GB-month x GB, ...), not read from the scanner's output.
"""

from __future__ import annotations

import email
import email.policy
import io
import re
import zipfile
from datetime import UTC, datetime, time, timedelta

import dagster as dg
import polars as pl
import pytest

from costagent_assets import aws_prices as P
from costagent_assets.defs import run_metadata
from costagent_assets.demo import organisation as demo
from costagent_assets.optimization import Thresholds, account_rows, find_opportunities
from costagent_assets.periods import period, report_month, shift_month
from costagent_assets.reporting import format_usd
from costagent_assets.resources.aws_scanner import AwsScanner
from costagent_tests.peers.aws_org import AwsOrgPeer, daily_points
from costagent_tests.peers.homes import prepare_home, run_weekly, sql
from costagent_tests.peers.moto_server import cost_and_usage_pages

A, B, DENIED, OUTSIDER = "111111111111", "222222222222", "333333333333", "999999999999"
ROLE = "CostagentReadOnly"
DAYS = 14
MONTH_HOURS = 730
END = datetime.combine(datetime.now(UTC).date(), time(), UTC)
NO_COSTS = pl.DataFrame(schema={"account_id": pl.String, "region": pl.String, "service": pl.String,
                                "usage_type": pl.String, "cost_usd": pl.Float64})


def _instance(ec2, image: str, size: str, name: str) -> str:
    return ec2.run_instances(ImageId=image, InstanceType=size, MinCount=1, MaxCount=1, TagSpecifications=[
        {"ResourceType": "instance", "Tags": [{"Key": "Name", "Value": name}]}])["Instances"][0]["InstanceId"]


def _cpu(cw, instance: str, low: float, high: float, network_mb: float) -> None:
    """Two CPU datapoints a day (so the daily Average is their mean and the Maximum the high one)."""
    daily_points(cw, "AWS/EC2", "CPUUtilization", {"InstanceId": instance}, END, DAYS, [low, high])
    for metric in ("NetworkIn", "NetworkOut"):
        daily_points(cw, "AWS/EC2", metric, {"InstanceId": instance}, END, DAYS, [network_mb * 1e6 / 2])


def plant(peer: AwsOrgPeer) -> dict:
    """The organisation; returns the ids the tests expect findings for."""
    ids: dict[str, str] = {}
    # --- account A, us-east-1: EC2 and EBS -------------------------------------------------------------
    s = peer.account_session(A, "us-east-1")
    ec2, cw = s.client("ec2"), s.client("cloudwatch")
    image = ec2.describe_images()["Images"][0]["ImageId"]
    ids["idle"] = _instance(ec2, image, "m5.2xlarge", "forgotten")
    _cpu(cw, ids["idle"], 1.0, 3.0, network_mb=1.0)  # avg 2%, 1 MB/day: idle
    ids["oversized"] = _instance(ec2, image, "r5.2xlarge", "api")
    _cpu(cw, ids["oversized"], 8.0, 12.0, network_mb=900.0)  # avg 10%, peak 12%: oversized, not idle
    ids["busy"] = _instance(ec2, image, "c5.xlarge", "busy")
    _cpu(cw, ids["busy"], 55.0, 90.0, network_mb=20_000.0)
    s.client("autoscaling").create_launch_configuration(LaunchConfigurationName="web", ImageId=image,
                                                         InstanceType="c5.large")
    s.client("autoscaling").create_auto_scaling_group(AutoScalingGroupName="web", LaunchConfigurationName="web",
                                                      MinSize=2, MaxSize=2, DesiredCapacity=2,
                                                      AvailabilityZones=["us-east-1a"])
    ids["unattached"] = ec2.create_volume(Size=400, VolumeType="gp2", AvailabilityZone="us-east-1a")["VolumeId"]
    ids["gp2"] = ec2.create_volume(Size=500, VolumeType="gp2", AvailabilityZone="us-east-1a")["VolumeId"]
    ec2.attach_volume(VolumeId=ids["gp2"], InstanceId=ids["busy"], Device="/dev/sdf")
    gp3 = ec2.create_volume(Size=300, VolumeType="gp3", AvailabilityZone="us-east-1a")["VolumeId"]
    ec2.attach_volume(VolumeId=gp3, InstanceId=ids["oversized"], Device="/dev/sdg")  # in use, gp3: fine
    ids["old_snapshot"] = ec2.create_snapshot(VolumeId=ids["gp2"])["SnapshotId"]
    peer.backdate_snapshot(A, "us-east-1", ids["old_snapshot"], END - timedelta(days=120))
    ec2.create_snapshot(VolumeId=ids["unattached"])  # young: left alone
    ids["eip"] = ec2.allocate_address(Domain="vpc")["AllocationId"]
    used = ec2.allocate_address(Domain="vpc")["AllocationId"]
    ec2.associate_address(AllocationId=used, InstanceId=ids["busy"])
    # --- account A, eu-west-1: RDS, Lambda, S3 --------------------------------------------------------
    s = peer.account_session(A, "eu-west-1")
    rds, cw = s.client("rds"), s.client("cloudwatch")

    def database(name: str, size: str, multi_az: bool, env: str, connections: float) -> None:
        rds.create_db_instance(DBInstanceIdentifier=name, DBInstanceClass=size, Engine="postgres",
                               MasterUsername="admin1", MasterUserPassword="password1", AllocatedStorage=100,
                               MultiAZ=multi_az, Tags=[{"Key": "Environment", "Value": env}])
        daily_points(cw, "AWS/RDS", "DatabaseConnections", {"DBInstanceIdentifier": name}, END, DAYS, [connections])

    database("reporting-old", "db.t3.large", False, "dev", 0.0)
    database("orders-staging", "db.m5.large", True, "Staging", 5.0)
    database("orders-prod", "db.m5.large", True, "production", 80.0)
    role = s.client("iam").create_role(RoleName="lambda-exec", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("handler.py", "def handle(event, context):\n    return event\n")
    lam = s.client("lambda")
    for name, memory in (("resize", 2048), ("tiny", 128)):
        lam.create_function(FunctionName=name, Runtime="python3.12", Role=role, Handler="handler.handle",
                            Code={"ZipFile": buffer.getvalue()}, MemorySize=memory)
    daily_points(cw, "LambdaInsights", "used_memory_max", {"function_name": "resize"}, END, DAYS, [300.0])
    daily_points(cw, "AWS/Lambda", "Duration", {"FunctionName": "resize"}, END, DAYS, [1e8])  # ms a day
    daily_points(cw, "AWS/Lambda", "Invocations", {"FunctionName": "resize"}, END, DAYS, [50_000.0])
    s3 = s.client("s3")
    for bucket in ("a-logs", "a-kept", "a-unsized"):
        s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    s3.put_bucket_lifecycle_configuration(Bucket="a-kept", LifecycleConfiguration={"Rules": [
        {"ID": "expire", "Status": "Enabled", "Filter": {"Prefix": ""}, "Expiration": {"Days": 30}}]})
    for bucket in ("a-logs", "a-kept"):
        daily_points(cw, "AWS/S3", "BucketSizeBytes", {"BucketName": bucket, "StorageType": "StandardStorage"},
                     END, DAYS, [1000e9])
    # --- account B, us-east-1 ---------------------------------------------------------------------------
    s = peer.account_session(B, "us-east-1")
    ec2 = s.client("ec2")
    ids["b_idle"] = _instance(ec2, image, "t3.large", "old-bastion")
    _cpu(s.client("cloudwatch"), ids["b_idle"], 0.5, 1.5, network_mb=0.2)
    ids["b_eip"] = ec2.allocate_address(Domain="vpc")["AllocationId"]
    # --- the denied account has an idle instance that must not be reported -----------------------------
    s = peer.account_session(DENIED, "us-east-1")
    hidden = _instance(s.client("ec2"), image, "m5.4xlarge", "hidden")
    _cpu(s.client("cloudwatch"), hidden, 0.1, 0.2, network_mb=0.0)
    # --- Cost Explorer (the peer's JSON 1.1 layer) --------------------------------------------------------
    ec2_service = "Amazon Elastic Compute Cloud - Compute"
    peer.ce_pages[f"GetReservationPurchaseRecommendation:{ec2_service}"] = [
        {"Recommendations": [{"RecommendationDetails": [_ri_rec(A, "m5.large", "3", "45.10")]}]},
        {"Recommendations": [{"RecommendationDetails": [_ri_rec(OUTSIDER, "c5.large", "9", "300")]}]},
    ]
    peer.ce_pages["GetSavingsPlansPurchaseRecommendation"] = [{"SavingsPlansPurchaseRecommendation": {
        "SavingsPlansPurchaseRecommendationDetails": [
            {"AccountId": B, "HourlyCommitmentToPurchase": "0.5", "EstimatedMonthlySavingsAmount": "120.50",
             "EstimatedAverageUtilization": "97", "RecommendationDetailId": "rec-b"}]}}]
    peer.ce_pages["GetReservationUtilization"] = [{"UtilizationsByTime": [{
        "TimePeriod": {"Start": "x", "End": "y"},
        "Groups": [{"Key": "SUBSCRIPTION_ID", "Value": "sub-a", "Attributes": {
            "accountId": A, "region": "us-east-1", "instanceType": "m5.large"}, "Utilization": {
            "PurchasedHours": "672", "TotalActualHours": "268.8", "UnusedHours": "403.2",
            "RICostForUnusedHours": "56", "UtilizationPercentage": "40"}}]}]}]
    peer.ce_pages["GetSavingsPlansUtilizationDetails"] = [{"SavingsPlansUtilizationDetails": [
        {"SavingsPlanArn": f"arn:aws:savingsplans::{A}:savingsplan/sp-a", "Attributes": {},
         "Utilization": {"TotalCommitment": "80", "UsedCommitment": "40", "UnusedCommitment": "40",
                         "UtilizationPercentage": "50"}},
        {"SavingsPlanArn": f"arn:aws:savingsplans::{B}:savingsplan/sp-b", "Attributes": {},
         "Utilization": {"TotalCommitment": "100", "UsedCommitment": "95", "UnusedCommitment": "5",
                         "UtilizationPercentage": "95"}}]}]
    return ids


def _ri_rec(account: str, size: str, count: str, savings: str) -> dict:
    return {"AccountId": account, "InstanceDetails": {"EC2InstanceDetails": {"InstanceType": size, "Region": "us-east-1"}},
            "RecommendedNumberOfInstancesToPurchase": count, "EstimatedMonthlySavingsAmount": savings,
            "EstimatedBreakEvenInMonths": "7", "AverageUtilization": "90"}


def expected_savings(ids: dict) -> dict[tuple[str, str, str], float | None]:
    """(account, kind, resource) -> $/month, from the price table's inputs."""
    month_days = MONTH_HOURS / 24
    lambda_gb_s = 1e8 * DAYS / 1000 * (2048 / 1024) * month_days / DAYS
    lambda_suggested = 512  # 300 MB peak + 50% headroom, rounded up to 64 MB
    return {
        (A, "ec2_idle", ids["idle"]): P.EC2_HOURLY["m5.2xlarge"] * MONTH_HOURS,
        (A, "ec2_underutilized", ids["oversized"]): (P.EC2_HOURLY["r5.2xlarge"] - P.EC2_HOURLY["r5.xlarge"]) * MONTH_HOURS,
        (A, "ec2_spot", "web"): 2 * P.EC2_HOURLY["c5.large"] * MONTH_HOURS * 0.70,
        (A, "ebs_unattached", ids["unattached"]): 400 * P.EBS_GB_MONTH["gp2"],
        (A, "ebs_gp2_to_gp3", ids["gp2"]): 500 * P.EBS_GB_MONTH["gp2"] - 500 * P.EBS_GB_MONTH["gp3"],
        (A, "ebs_old_snapshot", ids["old_snapshot"]): 500 * P.SNAPSHOT_GB_MONTH,
        (A, "eip_unassociated", ids["eip"]): P.PUBLIC_IPV4_HOURLY * MONTH_HOURS,
        (A, "rds_idle", "reporting-old"): P.RDS_HOURLY["db.t3.large"] * MONTH_HOURS,
        (A, "rds_multi_az_nonprod", "orders-staging"): P.RDS_HOURLY["db.m5.large"] * MONTH_HOURS,  # the standby
        (A, "lambda_memory", f"arn:aws:lambda:eu-west-1:{A}:function:resize"):
            lambda_gb_s * P.LAMBDA_GB_SECOND["x86_64"] * (1 - lambda_suggested / 2048),
        (A, "s3_no_lifecycle", "a-logs"): 1000 * 0.5 * (P.S3_STANDARD_GB_MONTH - P.S3_STANDARD_IA_GB_MONTH),
        (A, "s3_no_lifecycle", "a-unsized"): None,  # no size metric: listed without an estimate, never $0
        (A, "ri_purchase", "ri:m5.large:us-east-1"): 45.10,
        (A, "ri_underutilised", "sub-a"): 56 / DAYS * month_days,
        (A, "sp_underutilised", "sp-a"): 40 / DAYS * month_days,
        (B, "ec2_idle", ids["b_idle"]): P.EC2_HOURLY["t3.large"] * MONTH_HOURS,
        (B, "eip_unassociated", ids["b_eip"]): P.PUBLIC_IPV4_HOURLY * MONTH_HOURS,
        (B, "sp_purchase", "rec-b"): 120.50,
    }


@pytest.fixture(scope="module")
def org():
    """The organisation on a moto server, scanned once; the denied account's role refused by IAM."""
    with pytest.MonkeyPatch.context() as mp:
        for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                            "AWS_DEFAULT_REGION": "us-east-1"}.items():
            mp.setenv(name, value)
        peer = AwsOrgPeer()
        peer.start()
        mp.setenv("AWS_ENDPOINT_URL", peer.url)
        ids = plant(peer)
        caller = peer.caller_with_policy({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": f"arn:aws:iam::*:role/{ROLE}"},
            {"Effect": "Deny", "Action": "sts:AssumeRole", "Resource": f"arn:aws:iam::{DENIED}:role/{ROLE}"},
        ]})
        for name, value in caller.items():
            mp.setenv(name, value)
        peer.enforce_sts_iam = True
        peer.requests.clear()
        scanner = AwsScanner(role_name=ROLE, regions=["us-east-1", "eu-west-1"], max_workers=8, max_attempts=3)
        result = scanner.scan([A, B, DENIED], END, DAYS, "run12345")
        findings = find_opportunities(result.inventory, result.commitments, NO_COSTS, 20, END, Thresholds())
        yield {"peer": peer, "ids": ids, "result": result, "findings": findings, "caller": caller}
        peer.stop()


def test_finds_exactly_the_planted_resources_with_their_savings(org):
    got = {(r["account_id"], r["kind"], r["resource_id"]): r["monthly_savings_usd"]
           for r in org["findings"].iter_rows(named=True)}
    expected = expected_savings(org["ids"])
    assert set(got) == set(expected)
    for key, usd in expected.items():
        assert got[key] == (None if usd is None else pytest.approx(round(usd, 2), abs=0.005)), key


def test_findings_are_ranked_by_dollars_within_each_account(org):
    for account in (A, B):
        rows = org["findings"].filter(pl.col("account_id") == account)
        dollars = [x for x in rows["monthly_savings_usd"].to_list() if x is not None]
        assert dollars == sorted(dollars, reverse=True)
        assert rows["rank"].to_list() == list(range(1, rows.height + 1))
        assert rows["monthly_savings_usd"].to_list()[-1] is None or account == B  # unknown estimates last


def test_each_finding_carries_evidence_with_its_metrics_and_period(org):
    f = {r["kind"]: r for r in org["findings"].filter(pl.col("account_id") == A).iter_rows(named=True)}
    start, stop = (END - timedelta(days=DAYS)).date(), (END - timedelta(days=1)).date()
    idle = f["ec2_idle"]
    assert "average CPU 2.0%" in idle["evidence"] and "(peak 3.0%)" in idle["evidence"]
    assert "1.0 MB/day" in idle["evidence"] and f"({start:%Y-%m-%d} to {stop:%Y-%m-%d})" in idle["evidence"]
    assert idle["region"] == "us-east-1" and idle["size"] == "m5.2xlarge" and idle["estimate_basis"] == "list_price"
    assert f["ec2_underutilized"]["suggested"] == "r5.xlarge" and "average CPU 10.0%, peak 12.0%" in f["ec2_underutilized"]["evidence"]
    assert "no database connections over 14 days" in f["rds_idle"]["evidence"]
    assert "environment=staging" in f["rds_multi_az_nonprod"]["evidence"]
    assert "at most 300 MB used" in f["lambda_memory"]["evidence"] and f["lambda_memory"]["suggested"] == "512 MB"
    assert "120 days old" in f["ebs_old_snapshot"]["evidence"]
    assert f["ri_purchase"]["estimate_basis"] == "cost_explorer" and "used 40.0%" in f["ri_underutilised"]["evidence"]


def test_a_denied_role_leaves_the_other_accounts_intact(org):
    status = {r["account_id"]: r for r in org["result"].status.iter_rows(named=True)}
    assert status[DENIED]["status"] == "unavailable"
    assert "AccessDenied" in status[DENIED]["reason"] and ROLE in status[DENIED]["reason"]
    assert status[A]["status"] == "ok" and status[B]["status"] == "ok", (status[A]["reason"], status[B]["reason"])
    assert org["findings"].filter(pl.col("account_id") == DENIED).height == 0
    rows = {r["account_id"]: r for r in account_rows([A, B, DENIED], org["result"].status, org["findings"], "aws")
            .iter_rows(named=True)}
    # Unknown, never $0; the others' totals are their findings'.
    assert rows[DENIED]["monthly_savings_usd"] is None and rows[DENIED]["scan_status"] == "unavailable"
    assert rows[A]["monthly_savings_usd"] == pytest.approx(
        sum(v for (a, _, _), v in expected_savings(org["ids"]).items() if a == A and v is not None), abs=0.05)


def test_role_sessions_are_named_after_the_run_and_account(org):
    for account in (A, B):
        assert f"costagent-run12345-{account}" in org["peer"].assumed_session_names(account)


def test_api_calls_are_counted_per_account_and_metrics_are_batched(org):
    result, requests = org["result"], org["peer"].requests
    status = {r["account_id"]: r for r in result.status.iter_rows(named=True)}
    # Every request of the scan reached the peer once (no retries here): the per-account counts add up.
    scan_requests = [r for r in requests if r not in ("GetReservationPurchaseRecommendation",
                     "GetSavingsPlansPurchaseRecommendation", "GetReservationUtilization",
                     "GetSavingsPlansUtilizationDetails")]
    assert sum(s["api_calls"] for s in status.values()) == len(scan_requests)
    assert status[DENIED]["api_calls"] == 1  # the refused AssumeRole
    # A: one GetMetricData per region with metrics (us-east-1 EC2; eu-west-1 RDS + Lambda; S3's buckets).
    by_op = result.calls_by_operation
    assert by_op["cloudwatch:GetMetricData"] == sum(1 for r in requests if r.endswith("GetMetricData"))
    assert by_op["cloudwatch:GetMetricData"] == 4  # A us-east-1, A eu-west-1, A's buckets, B us-east-1
    assert by_op["sts:AssumeRole"] == 3
    # Cost Explorer: 2 RI services (EC2 over 2 pages, RDS 1) + SP + RI and SP utilisation, at $0.01 each.
    assert result.organisation_calls == 6 and result.organisation_cost_usd == pytest.approx(0.06)


def test_ce_requests_ask_for_linked_account_recommendations_over_the_window(org):
    sent = dict(org["peer"].ce_requests)
    assert sent["GetSavingsPlansPurchaseRecommendation"]["AccountScope"] == "LINKED"
    assert sent["GetReservationUtilization"]["TimePeriod"] == {
        "Start": (END - timedelta(days=DAYS)).date().isoformat(), "End": END.date().isoformat()}
    assert sent["GetReservationUtilization"]["GroupBy"] == [{"Type": "DIMENSION", "Key": "SUBSCRIPTION_ID"}]


def test_throttling_is_retried_then_reported_never_as_zero(org, monkeypatch: pytest.MonkeyPatch):
    peer = org["peer"]
    monkeypatch.setenv("AWS_ENDPOINT_URL", peer.url)  # the default credentials ("testing"), no IAM checks
    peer.enforce_sts_iam = False
    scanner = AwsScanner(role_name=ROLE, regions=["us-east-1"], max_workers=2, max_attempts=3, commitments=False)
    # Two throttled answers: the third attempt succeeds, and the retries are counted.
    peer.throttle_ec2["DescribeAddresses"] = 2
    result = scanner.scan([B], END, DAYS, "retry")
    b = result.status.row(0, named=True)
    assert b["status"] == "ok" and b["retries"] == 2 and peer.ec2_throttled == ["DescribeAddresses"] * 2
    assert result.inventory.filter(pl.col("resource_type") == "elastic_ip").height == 1
    # Throttled past the attempts: the account is partial, says why, and the addresses are missing, not $0.
    peer.throttle_ec2["DescribeAddresses"] = 10
    result = scanner.scan([B], END, DAYS, "throttle")
    b = result.status.row(0, named=True)
    assert b["status"] == "partial"
    assert "ec2:DescribeAddresses in us-east-1 throttled after 3 attempt(s): RequestLimitExceeded" in b["reason"]
    findings = find_opportunities(result.inventory, result.commitments, NO_COSTS, 20, END, Thresholds())
    assert set(findings["kind"].to_list()) == {"ec2_idle"}  # the idle instance is still found
    peer.throttle_ec2.clear()


def test_no_credentials_makes_every_account_unavailable_without_failing(monkeypatch):
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    result = AwsScanner(commitments=False).scan([A, B], END, DAYS, "nocreds")
    assert result.status["status"].to_list() == ["unavailable", "unavailable"]
    assert all("Unable to locate credentials" in r for r in result.status["reason"].to_list())


def _text_part(path) -> str:
    message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    return message.get_body(preferencelist=("plain",)).get_content()


def test_weekly_run_scans_the_organisation_and_mails_the_savings(org, isolated, monkeypatch: pytest.MonkeyPatch):
    """`costagent run` with source=cost_explorer and optimization_scanner=aws: the denied account is listed
    as unavailable with the reason in the admin report, the others' top savings reach their teams' emails."""
    peer = org["peer"]
    monkeypatch.setenv("AWS_ENDPOINT_URL", peer.url)
    for name, value in org["caller"].items():
        monkeypatch.setenv(name, value)
    peer.enforce_sts_iam = True
    as_of = END.date()
    month = report_month(as_of)
    previous = shift_month(month, -1)
    teams = [{"team_name": f"Team {a[0]}", "aws_account_id": a, "team_email": f"team{a[0]}@example.com"}
             for a in (A, B, DENIED)]
    accounts = [t["aws_account_id"] for t in teams]
    p_prev, p_now = period(previous, as_of), period(month, as_of)
    costs = demo.generate_costs(accounts, p_prev.start, p_now.through, seed=42, as_of=as_of).group_by(
        ["date", "account_id", "service"]).agg(pl.col("cost_usd").sum())
    peer.queue_cost_and_usage(cost_and_usage_pages(costs, p_prev.start, p_prev.through, "UnblendedCost", 1)
                              + cost_and_usage_pages(costs, p_now.start, p_now.through, "UnblendedCost", 1))
    # The queued answers are the by-service pages only: the by-usage-type requests (one per service) are
    # test_cost_explorer's subject, and moto's answer queue is shared by the whole test process.
    prepare_home(isolated, teams, source="cost_explorer", optimization_scanner="aws",
                 optimization_regions="us-east-1,eu-west-1", optimization_role_name=ROLE,
                 cost_explorer_usage_types="false")
    assert run_weekly(isolated, as_of) == 0

    stored = sql(isolated, "select account_id, kind, resource_id, monthly_savings_usd, org_rank from savings "
                           f"where month = '{month}' order by org_rank")
    expected = {k: v for k, v in expected_savings(org["ids"]).items()}
    assert {(r["account_id"], r["kind"], r["resource_id"]) for r in stored} == set(expected)
    status = {r["account_id"]: r for r in sql(isolated, f"select * from savings_accounts where month = '{month}'")}
    assert status[DENIED]["scan_status"] == "unavailable" and status[DENIED]["monthly_savings_usd"] is None
    assert status[A]["api_calls"] > 0 and status[A]["scan_status"] == "ok"
    scans = {r["account_id"]: r for r in sql(isolated, "select account_id, status, api_calls, cost_usd "
                                                       "from optimization_scans")}
    assert set(scans) == {A, B, DENIED, "organisation"} and scans[DENIED]["status"] == "unavailable"
    assert scans["organisation"]["api_calls"] == 6 and scans["organisation"]["cost_usd"] == pytest.approx(0.06)
    instance = dg.DagsterInstance.from_config(str(isolated / "dagster"))
    try:
        metadata = run_metadata.latest_metadata(instance, "optimization_opportunities")
        meta = {k: getattr(v, "value", v) for k, v in metadata.items()}
    finally:
        instance.dispose()
    assert meta["api_calls"] == sum(scans[a]["api_calls"] for a in (A, B, DENIED))
    assert meta["accounts_unavailable"] == 1 and meta["accounts_ok"] == 2 and meta["cost_explorer_calls"] == 6
    assert meta["calls_by_operation"]["cloudwatch:GetMetricData"] == 4

    outbox = isolated / "outbox" / as_of.isoformat()
    admin = _text_part(outbox / f"{month}-admin.eml")
    total = sum(v for v in expected.values() if v is not None)
    assert f"Total addressable savings    {format_usd(total)} a month" in admin
    assert f"Team 3 ({DENIED}) unavailable: role {ROLE} could not be assumed: AccessDenied" in admin
    ranked = [line for line in admin.splitlines() if re.match(r"\s+\d+\. \$", line)]
    amounts = [float(re.search(r"\$([\d,.]+)", line).group(1).replace(",", "")) for line in ranked]
    # Grouped by kind (near-identical findings together), the largest total first.
    by_kind: dict[str, float] = {}
    for (_, kind, _), v in expected.items():
        by_kind[kind] = by_kind.get(kind, 0.0) + (round(v, 2) if v is not None else 0.0)
    assert amounts == pytest.approx(sorted(by_kind.values(), reverse=True), abs=0.011)

    team_a = _text_part(outbox / f"{month}-team-{A}.eml")
    top3 = sorted(((v, k) for k, v in expected.items() if k[0] == A and v is not None), reverse=True)[:3]
    section = team_a[team_a.index("TOP 3 SAVINGS"):team_a.index("SPEND BY SERVICE")]
    positions = [section.index(f"{format_usd(v)}/month") for v, _ in top3]
    assert positions == sorted(positions) and all(k[2] in section for _, k in top3)
    assert "average CPU 2.0% (peak 3.0%) and network 1.0 MB/day over 14 days" in section
    denied = _text_part(outbox / f"{month}-team-{DENIED}.eml")
    assert "could not be scanned for savings this week" in denied and "not zero savings" in denied
