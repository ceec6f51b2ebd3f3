"""Shared fixtures: every test runs in its own COSTAGENT_HOME and can reach nothing but loopback."""

from __future__ import annotations

import ipaddress
import os
import socket
from pathlib import Path

import pytest

from costagent_tests.peers.moto_server import WAREHOUSE_BUCKET

_real_connect = socket.socket.connect


def _loopback_only(self: socket.socket, address):  # noqa: ANN001
    host = address[0] if isinstance(address, tuple) else None
    if host is not None:
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            ip = None if host == "localhost" else ipaddress.ip_address("192.0.2.1")
        if ip is not None and not ip.is_loopback:
            raise ConnectionRefusedError(f"tests may only reach loopback, not {host}")
    return _real_connect(self, address)


@pytest.fixture(autouse=True)
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A fresh home per test, no real credentials, and no connection beyond 127.0.0.1."""
    home = tmp_path / "home"
    monkeypatch.setenv("COSTAGENT_HOME", str(home))
    monkeypatch.setenv("DAGSTER_HOME", str(home / "dagster"))
    for name in list(os.environ):
        if name.startswith(("AWS_", "DATADOG_", "DD_", "GEMINI_", "GOOGLE_", "SMTP_", "OPENAI_", "ANTHROPIC_")):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setattr(socket.socket, "connect", _loopback_only)
    return home


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def moto_endpoint():
    """moto's S3 on a loopback port, for the tests of one module."""
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def bucket(moto_endpoint: str, isolated: Path) -> str:
    """An empty WAREHOUSE_BUCKET on moto for one test (emptied and deleted after); yields the endpoint."""
    import boto3

    s3 = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1")
    s3.create_bucket(Bucket=WAREHOUSE_BUCKET)
    yield moto_endpoint
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=WAREHOUSE_BUCKET):
        for obj in page.get("Contents", []):
            s3.delete_object(Bucket=WAREHOUSE_BUCKET, Key=obj["Key"])
    s3.delete_bucket(Bucket=WAREHOUSE_BUCKET)


@pytest.fixture(scope="session")
def postgres():
    """A throwaway PostgreSQL server on loopback for the whole session (skipped when not installed)."""
    from costagent_tests.peers.postgres import postgres_server

    with postgres_server() as server:
        yield server


@pytest.fixture
def postgres_home(postgres, isolated: Path, monkeypatch: pytest.MonkeyPatch, request) -> Path:
    """The test's home with the production instance profile on a database of its own."""
    import re

    from costagent_assets.cli.runner import write_instance_config
    from costagent_assets.home import get_home

    name = re.sub(r"[^a-z0-9_]", "_", request.node.name.lower())[:50] + f"_{os.getpid()}"
    for key, value in postgres.new_database(name).items():
        monkeypatch.setenv(key, value)
    write_instance_config(get_home(isolated), "postgres")
    return isolated
