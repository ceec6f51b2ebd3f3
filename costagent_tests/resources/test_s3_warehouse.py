"""The warehouse on S3 (resources/s3_warehouse.py), against moto's server on loopback: write, overwrite, read back, SQL."""

from __future__ import annotations

import polars as pl

from costagent_assets.resources.s3_warehouse import S3Store
from costagent_assets.schemas import conform
from costagent_assets.warehouse.rollups import write_raw_costs
from costagent_assets.warehouse.store import read_partitions
from costagent_assets.warehouse.views import connect
from costagent_tests.peers.moto_server import WAREHOUSE_BUCKET as BUCKET


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


def test_reader_resolves_the_endpoint_and_region_as_the_writer_does(bucket: str, monkeypatch):
    # No s3_endpoint_url setting: boto3 takes AWS_ENDPOINT_URL, and DuckDB (which ignores it) must follow.
    monkeypatch.setenv("AWS_ENDPOINT_URL", bucket)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    store = S3Store(f"s3://{BUCKET}/by-env")
    assert store.resolved_endpoint() == bucket
    write_raw_costs(store, rows("000000000003", 2.5), [("2026-11", "000000000003")])
    con = connect(store, [])
    assert con.execute("select sum(cost_usd) from raw_costs").fetchone() == (2.5,)
    region = con.execute("select value from duckdb_settings() where name = 's3_region'").fetchone()
    secret = con.execute("select secret_string from duckdb_secrets() where name = 'costagent_s3'").fetchone()[0]
    assert "eu-west-1" in secret or region == ("eu-west-1",)


def test_columns_are_read_alone_from_s3_too(bucket: str):
    store = S3Store(f"s3://{BUCKET}/columns", endpoint_url=bucket, region="us-east-1")
    keys = [("2026-11", "000000000001"), ("2026-11", "000000000002")]
    write_raw_costs(store, pl.concat([rows(a, 2.0) for _, a in keys]), keys)
    back = read_partitions(store, "raw_costs", keys, ["cost_usd", "account_id"]).sort("account_id")
    assert back.rows() == [("000000000001", 2.0), ("000000000002", 2.0)]
