"""The warehouse on S3, against moto's server on loopback: write, overwrite, read back, SQL, offline."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import boto3
import polars as pl
import pytest
from moto.server import ThreadedMotoServer

from costagent_assets.cli import main as cli
from costagent_assets.resources.s3_warehouse import S3Store
from costagent_assets.schemas import conform
from costagent_assets.warehouse.rollups import write_raw_costs
from costagent_assets.warehouse.store import read_partitions
from costagent_assets.warehouse.views import connect
from costagent_tests.peers.homes import run_cli

BUCKET = "costagent-test-warehouse"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def moto_endpoint():
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def bucket(moto_endpoint: str, isolated: Path) -> str:
    s3 = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1")
    s3.create_bucket(Bucket=BUCKET)
    yield moto_endpoint
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET):
        for obj in page.get("Contents", []):
            s3.delete_object(Bucket=BUCKET, Key=obj["Key"])
    s3.delete_bucket(Bucket=BUCKET)


def rows(account: str, usd: float) -> pl.DataFrame:
    from datetime import date

    return conform(
        pl.DataFrame([{"month": "2026-11", "date": date(2026, 11, 1), "account_id": account, "service": "EC2",
                       "region": "us-east-1", "usage_type": "x", "cost_usd": usd, "source": "test"}]),
        "raw_costs",
    )


def test_write_overwrite_read_and_query(bucket: str):
    store = S3Store(f"s3://{BUCKET}/wh", endpoint_url=bucket, region="us-east-1")
    keys = [("2026-11", "000000000001"), ("2026-11", "000000000002")]
    write_raw_costs(store, pl.concat([rows(a, 1.0) for _, a in keys]), keys)
    write_raw_costs(store, rows("000000000001", 7.0), keys[:1])  # a rerun of one partition
    assert store.keys("raw_costs/") == [f"raw_costs/2026-11/{a}.parquet" for _, a in keys]
    back = read_partitions(store, "raw_costs", keys + [("2026-10", "000000000001")]).sort("account_id")
    assert back["cost_usd"].to_list() == [7.0, 1.0]
    # DuckDB reads the bucket through the httpfs extension shipped as a pip package: no download.
    con = connect(store, [])
    assert con.execute("select count(*), sum(cost_usd) from raw_costs").fetchone() == (2, 8.0)
    assert con.execute(
        "select extension_name from duckdb_extensions() where loaded and extension_name = 'httpfs'"
    ).fetchone() == ("httpfs",)


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
    assert len(list((isolated / "outbox" / "2026-11-23").glob("*-team-*.eml"))) == 6
