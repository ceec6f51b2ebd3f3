"""The demo's weekly job with the warehouse on S3 (moto's server on loopback): the bucket holds it, SQL reads it."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest

from costagent_assets.cli import main as cli
from costagent_tests.peers.homes import run_cli
from costagent_tests.peers.moto_server import WAREHOUSE_BUCKET as BUCKET


def test_demo_run_lands_in_the_bucket_and_sql_answers_from_it(
    bucket: str, isolated: Path, capsys: pytest.CaptureFixture[str]
):
    home = str(isolated)
    for key, value in (("warehouse_uri", f"s3://{BUCKET}/prod"), ("s3_endpoint_url", bucket), ("s3_region", "us-east-1")):
        assert cli.main(["--home", home, "config", "set", key, value]) == 0
    assert run_cli("--home", home, "demo", "--accounts", "6", "--as-of", "2026-11-23") == 0
    assert not (isolated / "warehouse").exists() or not any((isolated / "warehouse").rglob("*.parquet"))
    s3 = boto3.client("s3", endpoint_url=bucket, region_name="us-east-1")
    objects = [o["Key"] for p in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix="prod/")
               for o in p.get("Contents", [])]
    assert sum(k.startswith("prod/raw_costs/2026-11/") for k in objects) == 6
    assert sum(k.startswith("prod/emails/2026-11/") for k in objects) == 6
    capsys.readouterr()
    assert cli.main(["--home", home, "sql", "select count(distinct account_id) as n from raw_costs", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == [{"n": 6}]
    # The per-month rollups are in the bucket too, and the history views read them.
    assert {k for k in objects if k.startswith("prod/rollups/")} == {
        f"prod/rollups/{r}/2026-{m:02d}.parquet" for r in ("daily", "monthly") for m in range(4, 12)}  # 6 + 2 months
    same = ("select (select round(sum(cost_usd), 4) from monthly_costs) = (select round(sum(cost_usd), 4) "
            "from raw_costs) and (select count(distinct account_id) from daily_costs) = 6 as ok")
    assert cli.main(["--home", home, "sql", same, "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == [{"ok": True}]
    # Read-only on S3 too: nothing outside the warehouse prefix is readable, nothing is written.
    outside = f"select count(*) from read_parquet('s3://{BUCKET}/prod-other/*.parquet')"
    assert cli.main(["--home", home, "sql", outside]) == 2 and "reads only the warehouse" in capsys.readouterr().err
    copy = f"copy (select 1 as x) to 's3://{BUCKET}/prod/raw_costs/2026-11/x.parquet'"
    assert cli.main(["--home", home, "sql", copy]) == 2 and "read-only" in capsys.readouterr().err
    assert len(list((isolated / "outbox" / "2026-11-23").glob("*-team-*.eml"))) == 6
