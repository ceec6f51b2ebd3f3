"""The warehouse on S3 (or an S3-compatible store): one object per partition, read by DuckDB offline.

Objects are written with a single PUT each, so a reader sees the old object or the new one. DuckDB
reads them through its httpfs extension loaded from the pip package ``duckdb-extension-httpfs`` (pinned
to DuckDB's exact version): nothing is downloaded at run time, which locked-down hosts cannot do.
Credentials come from the standard AWS chain (environment, profile, instance or task role).
"""

from __future__ import annotations

import functools
import io
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlparse

import duckdb
import polars as pl

from costagent_assets.home import Home
from costagent_assets.send_ledger import LEDGER_TABLE
from costagent_assets.settings import Settings
from costagent_assets.warehouse.store import DamagedFileError, LocalStore, Store


def httpfs_extension_path() -> Path:
    """The httpfs extension shipped by the ``duckdb-extension-httpfs`` package for this DuckDB version."""
    import duckdb_extension_httpfs

    path = Path(duckdb_extension_httpfs.__file__).parent / "extensions" / f"v{duckdb.__version__}" / "httpfs.duckdb_extension"
    if not path.exists():
        raise RuntimeError(
            f"no httpfs extension for DuckDB {duckdb.__version__} in {path.parent.parent}: install "
            f"duckdb-extension-httpfs=={duckdb.__version__}"
        )
    return path


class S3Store:
    """``s3://bucket/prefix`` through one boto3 client (from dagster-aws's S3Resource)."""

    def __init__(self, uri: str, endpoint_url: str = "", region: str = ""):
        parsed = urlparse(uri)
        if parsed.scheme != "s3" or not parsed.netloc:
            raise ValueError(f"warehouse_uri must look like s3://bucket/prefix, got {uri!r}")
        self.bucket, self.prefix = parsed.netloc, parsed.path.strip("/")
        self.endpoint_url, self.region = endpoint_url or None, region or None
        # Imported here: dagster-aws loads its components on import (~0.7 s), paid only with an S3 warehouse.
        from dagster_aws.s3 import S3Resource

        resource = S3Resource(endpoint_url=self.endpoint_url, region_name=self.region)
        # Standard retries back off on throttling (503 SlowDown) as well as on connection errors.
        self.client = resource.get_client()
        self.client.meta.config.retries = {"mode": "standard", "max_attempts": 5}
        import boto3

        self._session = boto3.Session(region_name=self.region)

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def url(self, key: str) -> str:
        return f"s3://{self.bucket}/{self._key(key)}"

    def put(self, key: str, data: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data)

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self._key(key))

    def keys(self, prefix: str) -> list[str]:
        strip = len(self._key(""))
        out = []
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self._key(prefix)):
            out.extend(o["Key"][strip:] for o in page.get("Contents", []) if o["Key"].endswith(".parquet"))
        return sorted(out)

    def children(self, prefix: str) -> list[str]:
        # One delimited listing: the "folders" under prefix, without listing every object in them.
        strip = len(self._key(prefix))
        out = []
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self._key(prefix), Delimiter="/"
        )
        for page in pages:
            out.extend(p["Prefix"][strip:].rstrip("/") for p in page.get("CommonPrefixes", []))
        return sorted(out)

    def has_any(self, prefix: str) -> bool:
        page = self.client.list_objects_v2(Bucket=self.bucket, Prefix=self._key(prefix), MaxKeys=1)
        return page.get("KeyCount", 0) > 0

    def read_parquet(self, keys: Sequence[str], schema: Mapping[str, pl.DataType] | None = None,
                     columns: Sequence[str] | None = None) -> pl.DataFrame:
        # Each object is read on its own and the frames are unioned by name, so ``schema`` is not needed.
        def fetch(key: str) -> pl.DataFrame:
            body = self.client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"].read()
            try:
                frame = pl.read_parquet(io.BytesIO(body))
                return frame if columns is None else frame.select([c for c in columns if c in frame.columns])
            except pl.exceptions.ComputeError as exc:
                raise DamagedFileError(
                    f"damaged warehouse object (not readable as Parquet): {self.url(key)}. Delete it and load its "
                    f"month again (`costagent backfill --from M --to M`); nothing else was changed ({exc})"
                ) from exc

        with ThreadPoolExecutor(max_workers=16) as pool:
            frames = list(pool.map(fetch, keys))
        return pl.concat(frames, how="diagonal_relaxed")

    def resolved_endpoint(self) -> str | None:
        """The endpoint the writer's boto3 client really uses: the ``s3_endpoint_url`` setting, else what boto3
        resolved from ``AWS_ENDPOINT_URL_S3``/``AWS_ENDPOINT_URL`` or the profile; None for AWS's own S3."""
        url = self.endpoint_url or self.client.meta.endpoint_url
        return None if (urlparse(url).hostname or "").endswith(".amazonaws.com") else url

    def configure_duckdb(self, con: duckdb.DuckDBPyConnection) -> None:
        """Point DuckDB's httpfs at the same endpoint, region and credentials as the writer (DuckDB itself
        reads none of the AWS_* variables boto3 honours)."""
        con.execute(f"LOAD '{httpfs_extension_path()}'")
        credentials = self._session.get_credentials()
        frozen = credentials.get_frozen_credentials() if credentials else None
        options = {"REGION": self.region or self.client.meta.region_name or "us-east-1"}
        if frozen:
            options |= {"KEY_ID": frozen.access_key, "SECRET": frozen.secret_key}
            if frozen.token:
                options["SESSION_TOKEN"] = frozen.token
        resolved = self.resolved_endpoint()
        if resolved:
            endpoint = urlparse(resolved)
            options |= {"ENDPOINT": endpoint.netloc, "URL_STYLE": "path", "USE_SSL": endpoint.scheme == "https"}
        body = ", ".join(f"{k} {_sql_literal(v)}" for k, v in options.items())
        # A temporary secret: it lives in this connection only and is never written to disk.
        con.execute(f"CREATE OR REPLACE TEMPORARY SECRET costagent_s3 (TYPE s3, {body})")


def _sql_literal(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "'" + str(value).replace("'", "''") + "'"


def warehouse_root(home: Home, settings: Settings) -> str:
    """Where an installation's warehouse lives: ``warehouse_uri`` if set, else ``<home>/warehouse``.

    The only place that resolves ``warehouse_uri``: the resources, the CLI and the send ledger all ask here.
    """
    return settings.warehouse_uri or str(home.warehouse_dir)


def ledger_dir(home: Home, settings: Settings) -> Path:
    """Where the send ledger's files live: beside the Parquet tables in a local warehouse. With the warehouse
    on S3 the ledger is objects in the bucket (``resources.s3_ledger``) and this host-local directory, where
    older versions kept it, is only read (what it holds still counts)."""
    root = warehouse_root(home, settings)
    return home.root / LEDGER_TABLE if root.startswith("s3://") else Path(root).expanduser() / LEDGER_TABLE


def home_store(home: Home, settings: Settings) -> Store:
    """The warehouse of an installation."""
    return open_store(warehouse_root(home, settings), settings.s3_endpoint_url, settings.s3_region)


@functools.lru_cache(maxsize=8)
def open_store(uri: str, endpoint_url: str = "", region: str = "") -> Store:
    """The warehouse at ``uri``: ``s3://bucket/prefix``, or a local directory.

    Cached: building a boto3 client loads its service model (most of a second), and one client is safe
    to share between threads.
    """
    if uri.startswith("s3://"):
        return S3Store(uri, endpoint_url, region)
    return LocalStore(Path(uri).expanduser())

