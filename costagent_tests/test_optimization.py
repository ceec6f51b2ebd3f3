"""The savings rules on small hand-made inventories: thresholds, one finding per resource, the billed basis."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import polars as pl
import pytest

from costagent_assets import aws_prices as P
from costagent_assets.optimization import (
    COMMITMENT_SCHEMA,
    INVENTORY_SCHEMA,
    Thresholds,
    account_rows,
    billed_unit_costs,
    find_opportunities,
    frame,
    suggested_lambda_memory,
    usage_key,
)
from costagent_assets.settings import Settings, with_setting

END = datetime(2026, 11, 23, tzinfo=UTC)
ACCOUNT = "012345678901"
RAW = ["account_id", "region", "service", "usage_type", "cost_usd", "date"]


def instance(rid: str, size: str = "m5.large", cpu: float = 2.0, peak: float = 4.0, network: float = 1.0,
             days: int = 14, **extra) -> dict:
    return {"account_id": ACCOUNT, "region": "us-east-1", "resource_type": "ec2_instance", "resource_id": rid,
            "size": size, "state": "running", "metric_days": days, "cpu_avg_pct": cpu, "cpu_peak_pct": peak,
            "network_mb_per_day": network, "data_volumes": 0, **extra}


def findings(rows: list[dict], raw: pl.DataFrame | None = None, t: Thresholds | None = None,
             commitments: list[dict] | None = None) -> pl.DataFrame:
    raw = raw if raw is not None else pl.DataFrame(schema=dict.fromkeys(RAW[:4], pl.String) | {"cost_usd": pl.Float64})
    return find_opportunities(frame(rows, INVENTORY_SCHEMA), frame(commitments or [], COMMITMENT_SCHEMA), raw, 10,
                              END, t or Thresholds())


def by_resource(f: pl.DataFrame) -> dict[str, tuple[str, float | None]]:
    return {r["resource_id"]: (r["kind"], r["monthly_savings_usd"]) for r in f.iter_rows(named=True)}


def test_idle_oversized_and_busy_instances():
    got = by_resource(findings([
        instance("i-idle", "m5.xlarge", cpu=2.0, network=1.0),
        instance("i-chatty", "m5.xlarge", cpu=2.0, peak=10.0, network=900.0),  # low CPU, busy network
        instance("i-spiky", "m5.xlarge", cpu=10.0, peak=80.0, network=900.0),  # peaks too high to halve
        instance("i-busy", "m5.xlarge", cpu=60.0, peak=95.0, network=900.0),
        instance("i-young", "m5.xlarge", cpu=1.0, days=10),  # 10 of 14 days: under 80%, not judged
    ]))
    m5x, m5l = P.EC2_HOURLY["m5.xlarge"] * 730, P.EC2_HOURLY["m5.large"] * 730
    assert got == {"i-idle": ("ec2_idle", round(m5x, 2)), "i-chatty": ("ec2_underutilized", round(m5x - m5l, 2))}


def test_thresholds_come_from_the_settings():
    settings = Settings()
    for key, value in (("idle_cpu_pct", "1"), ("underutilized_cpu_pct", "1"), ("optimization_lookback_days", "7")):
        settings = with_setting(settings, key, value)
    t = Thresholds.from_settings(settings)
    assert (t.idle_cpu_pct, t.underutilized_cpu_pct, t.lookback_days, t.min_metric_days) == (1.0, 1.0, 7, 6)
    assert findings([instance("i-idle", cpu=2.0)], t=t).height == 0
    assert by_resource(findings([instance("i-idle", cpu=0.5)], t=t))["i-idle"][0] == "ec2_idle"


def test_one_finding_per_resource_the_largest():
    # Idle (saves all) and in a stateless group (Spot saves 70%): idle wins, and the group has no one left.
    got = findings([instance("i-1", asg_name="web", asg_size=2), instance("i-2", cpu=50.0, peak=90.0, network=1e4,
                                                                          asg_name="web", asg_size=2)])
    assert sorted(got["kind"].to_list()) == ["ec2_idle", "ec2_spot"]
    spot = got.filter(pl.col("kind") == "ec2_spot").row(0, named=True)
    assert spot["resource_id"] == "web" and "1 on-demand m5.large instances (i-2)" in spot["evidence"]
    assert spot["monthly_savings_usd"] == pytest.approx(round(P.EC2_HOURLY["m5.large"] * 730 * 0.7, 2))


def test_spot_needs_a_stateless_group_of_two():
    busy = {"cpu": 50.0, "peak": 90.0, "network": 1e4}
    got = findings([instance("i-alone", asg_name="solo", asg_size=1, **busy),
                    instance("i-data", asg_name="db", asg_size=3, data_volumes=1, **busy),
                    instance("i-spot", asg_name="web", asg_size=2, lifecycle="spot", **busy)])
    assert got.height == 0


def test_volumes_snapshots_addresses_and_buckets():
    got = by_resource(findings([
        {"account_id": ACCOUNT, "region": "us-east-1", "resource_type": "ebs_volume", "resource_id": "vol-big",
         "size": "gp2", "size_gb": 2000.0, "state": "in-use"},
        {"account_id": ACCOUNT, "region": "us-east-1", "resource_type": "ebs_snapshot", "resource_id": "snap-ami",
         "size_gb": 100.0, "created": END - timedelta(days=400), "backs_image": True},
        {"account_id": ACCOUNT, "region": "us-east-1", "resource_type": "ebs_snapshot", "resource_id": "snap-90",
         "size_gb": 100.0, "created": END - timedelta(days=90), "backs_image": False},
        {"account_id": ACCOUNT, "region": "us-east-1", "resource_type": "elastic_ip", "resource_id": "eipalloc-1",
         "name": "3.3.3.3", "associated": True},
        {"account_id": ACCOUNT, "region": "eu-west-1", "resource_type": "s3_bucket", "resource_id": "b",
         "has_lifecycle": None, "standard_gb": 10.0},  # unknown (access denied): not a finding
    ]))
    # 2,000 GB gp2 has 6,000 IOPS: gp3 needs 3,000 provisioned IOPS above its free 3,000.
    gp3 = 2000 * P.EBS_GB_MONTH["gp3"] + 3000 * P.EBS_IOPS_MONTH["gp3"]
    assert got == {"vol-big": ("ebs_gp2_to_gp3", round(2000 * P.EBS_GB_MONTH["gp2"] - gp3, 2))}


def test_lambda_memory_suggestion_and_saving():
    assert [suggested_lambda_memory(x) for x in (10, 300, 700)] == [128, 512, 1088]
    row = {"account_id": ACCOUNT, "region": "us-east-1", "resource_type": "lambda_function", "resource_id": "fn",
           "name": "fn", "memory_mb": 1024.0, "architecture": "arm64", "metric_days": 3,
           "memory_used_max_mb": 100.0, "duration_ms_sum": 14 * 3.6e6}  # an hour a day
    f = findings([row]).row(0, named=True)
    gb_s = 3600 * 14 * 1.0 * (730 / 24) / 14  # the window's seconds x 1 GB, brought to a month
    assert f["suggested"] == "192 MB"
    assert f["monthly_savings_usd"] == pytest.approx(round(gb_s * P.LAMBDA_GB_SECOND["arm64"] * (1 - 192 / 1024), 2))


def test_billed_cost_replaces_the_list_price_where_the_usage_type_is_billed():
    inventory = [instance("i-idle"), instance("i-busy", cpu=70.0, peak=90.0, network=1e4),
                 {"account_id": ACCOUNT, "region": "us-east-1", "resource_type": "rds_instance", "resource_id": "db",
                  "size": "db.r5.large", "state": "available", "multi_az": False, "metric_days": 14,
                  "connections_max": 0.0}]
    raw = pl.DataFrame({
        "account_id": [ACCOUNT] * 4, "region": ["us-east-1"] * 4,
        "service": ["Amazon Elastic Compute Cloud", "Amazon DocumentDB (with MongoDB compatibility)",
                    "Amazon Elastic Compute Cloud", "Amazon Relational Database Service"],
        "usage_type": ["USE1-BoxUsage:m5.large", "USE1-InstanceUsage:db.r5.large", "USE1-BoxUsage:c5.large",
                       "USE1-RDS:GP3-Storage"],
        "cost_usd": [50.0, 999.0, 7.0, 200.0],
    })
    got = findings(inventory, raw=raw)
    idle = got.filter(pl.col("resource_id") == "i-idle").row(0, named=True)
    # $50 over the 10 days covered, brought to a 730-hour month, shared by the 2 running m5.large.
    assert idle["estimate_basis"] == "billed"
    assert idle["monthly_savings_usd"] == pytest.approx(round(50 / 10 * (730 / 24) / 2, 2))
    # DocumentDB bills "InstanceUsage:db.r5.large" too; it is not this RDS instance's cost.
    db = got.filter(pl.col("resource_id") == "db").row(0, named=True)
    assert db["estimate_basis"] == "list_price"
    assert db["monthly_savings_usd"] == pytest.approx(round(P.RDS_HOURLY["db.r5.large"] * 730, 2))
    units = billed_unit_costs(raw, frame(inventory, INVENTORY_SCHEMA), 10)
    assert set(units) == {(ACCOUNT, "us-east-1", "BoxUsage:m5.large")}


def test_usage_keys_drop_the_region_prefix_only():
    assert [usage_key(u) for u in ("USE1-BoxUsage:m5.large", "EU-BoxUsage:t3.micro", "BoxUsage:t3.micro",
                                   "Lambda-GB-Second", "APN1-EBS:VolumeUsage.gp2")] == [
        "BoxUsage:m5.large", "BoxUsage:t3.micro", "BoxUsage:t3.micro", "Lambda-GB-Second", "EBS:VolumeUsage.gp2"]


def test_commitments_below_the_utilisation_floor_and_purchases():
    got = by_resource(findings([], commitments=[
        {"account_id": ACCOUNT, "kind": "ri_utilisation", "resource_id": "sub-1", "utilisation_pct": 85.0,
         "unused_usd": 10.0, "window_days": 14.0},
        {"account_id": ACCOUNT, "kind": "sp_utilisation", "resource_id": "sp-1", "utilisation_pct": 60.0,
         "unused_usd": 28.0, "window_days": 14.0},
        {"account_id": ACCOUNT, "kind": "sp_purchase", "resource_id": "rec", "quantity": 1.25,
         "monthly_savings_usd": 0.0},  # nothing to save: no finding
    ]))
    assert got == {"sp-1": ("sp_underutilised", round(28 / 14 * 730 / 24, 2))}


def test_an_unscanned_account_has_no_total_not_zero():
    status = frame([{"account_id": ACCOUNT, "status": "unavailable", "reason": "AccessDenied", "api_calls": 1},
                    {"account_id": "111111111111", "status": "ok", "api_calls": 9},
                    {"account_id": "333333333333", "status": "not_scanned", "reason": "an openai account", "api_calls": 0}],
                   {"account_id": pl.String, "status": pl.String, "reason": pl.String, "api_calls": pl.Int64,
                    "retries": pl.Int64, "regions": pl.String, "resources": pl.Int64})
    rows = {r["account_id"]: r for r in account_rows([ACCOUNT, "111111111111", "222222222222", "333333333333"], status,
                                                     findings([]), "aws").iter_rows(named=True)}
    assert rows[ACCOUNT]["monthly_savings_usd"] is None and rows[ACCOUNT]["reason"] == "AccessDenied"
    assert rows["111111111111"]["monthly_savings_usd"] == 0.0  # scanned, nothing found
    assert rows["222222222222"]["scan_status"] == "not_scanned" and rows["222222222222"]["monthly_savings_usd"] is None
    # A status row that says "not scanned" (a past month, a disabled scanner, an AI provider's account) too.
    assert rows["333333333333"]["scan_status"] == "not_scanned" and rows["333333333333"]["monthly_savings_usd"] is None


def test_price_table_is_dated_and_sizes_step_down_within_a_family():
    assert P.PRICES_AS_OF == "2026-11-23" and date.fromisoformat(P.PRICES_AS_OF)
    assert P.smaller_size("m5.4xlarge", P.EC2_HOURLY) == "m5.2xlarge"
    assert P.smaller_size("t3.nano", P.EC2_HOURLY) is None and P.smaller_size("x9.large", P.EC2_HOURLY) is None
    assert P.smaller_size("db.r5.xlarge", P.RDS_HOURLY) == "db.r5.large"


def spend(*lines: tuple[str, str, float], account: str = ACCOUNT) -> pl.DataFrame:
    """Cost rows over the 10 days ``findings`` covers: (service, region, USD over the 10 days)."""
    return pl.DataFrame({"account_id": [account] * len(lines), "region": [r for _, r, _ in lines],
                         "service": [s for s, _, _ in lines], "usage_type": ["Usage"] * len(lines),
                         "cost_usd": [usd for _, _, usd in lines]})


MONTH_OF_10_DAYS = 730 / 24 / 10  # what findings() brings 10 days of cost to


def test_no_finding_where_the_account_has_no_cost():
    inventory = [instance("i-here", "m5.xlarge"), {**instance("i-there", "m5.xlarge"), "region": "eu-west-2"},
                 {"account_id": ACCOUNT, "region": "us-east-1", "resource_type": "rds_instance", "resource_id": "db",
                  "size": "db.r5.large", "state": "available", "multi_az": False, "metric_days": 14,
                  "connections_max": 0.0}]
    got = by_resource(findings(inventory, raw=spend(("Amazon Elastic Compute Cloud - Compute", "us-east-1", 1000.0))))
    assert set(got) == {"i-here"}  # no EC2 cost in eu-west-2, no RDS cost at all


def test_findings_never_add_up_to_more_than_the_spend_they_come_from():
    # Two idle m5.4xlarge ($560 a month each at list price) in an account spending ~$304 a month on EC2.
    inventory = [instance("i-a", "m5.4xlarge"), instance("i-b", "m5.4xlarge")]
    got = findings(inventory, raw=spend(("Amazon Elastic Compute Cloud - Compute", "us-east-1", 100.0),
                                        ("Amazon Simple Storage Service", "us-east-1", 900.0)))
    ec2 = 100.0 * MONTH_OF_10_DAYS
    assert got["monthly_savings_usd"].sum() == pytest.approx(ec2, abs=0.02)
    assert all("a month of EC2 spend in us-east-1" in e for e in got["evidence"])


def test_a_savings_plan_is_sized_from_the_accounts_eligible_on_demand_spend():
    sp = {"account_id": ACCOUNT, "kind": "sp_purchase", "resource_id": "rec", "quantity": 3.223, "size": "Compute",
          "monthly_savings_usd": 600.0, "window_days": 30.0}
    # About $608 a month of EC2 and Lambda: a $3.223/hour (~$2,350 a month) commitment is not believable.
    got = findings([], commitments=[sp], raw=spend(("Amazon Elastic Compute Cloud - Compute", "us-east-1", 150.0),
                                                   ("AWS Lambda", "us-east-1", 50.0)))
    [row] = got.iter_rows(named=True)
    eligible = 200.0 * MONTH_OF_10_DAYS
    factor = eligible * 0.8 / (3.223 * 730 + 600.0)
    assert row["monthly_savings_usd"] == pytest.approx(round(600.0 * factor, 2))
    assert row["suggested"] == f"${3.223 * factor:,.3f}/hour" and row["suggested"] in row["action"]
    assert "eligible on-demand compute" in row["evidence"]
    assert row["monthly_savings_usd"] < eligible


def test_an_idle_database_has_no_connections_not_at_most_zero():
    db = {"account_id": ACCOUNT, "region": "us-east-1", "resource_type": "rds_instance", "resource_id": "db",
          "size": "db.r5.large", "state": "available", "multi_az": False, "metric_days": 14}
    got = findings([{**db, "connections_max": 0.0}])
    [evidence] = got["evidence"].to_list()
    assert evidence.startswith("no database connections over 14 days") and "at most 0" not in evidence
