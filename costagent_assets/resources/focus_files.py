"""FOCUS exports and legacy CUR files as a cost source, from a local path or ``s3://bucket/prefix``."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import date
from pathlib import Path

import polars as pl

from costagent_assets import focus
from costagent_assets.resources.cost_source import CostSource, CostSourceError, SourceFetch, split_registered

# S3 request prices (us-east-1 standard): LIST $0.005 and GET $0.0004 per 1,000 requests.
USD_PER_LIST = 0.005 / 1000
USD_PER_GET = 0.0004 / 1000


class FocusCostSource(CostSource):
    """Daily costs from FOCUS 1.0+ exports (any provider) or the legacy AWS CUR CSV layout.

    ``path`` is a file, a directory (read recursively) or ``s3://bucket/prefix``; files may be CSV,
    gzipped CSV or Parquet, in any number. S3 uses the standard AWS credential chain (and
    ``AWS_ENDPOINT_URL``). Accounts in the files that the run did not ask for are returned as
    ``unregistered`` with their totals, so they are reported rather than dropped.
    """

    path: str
    cost_column: str = "BilledCost"
    max_retries: int = 6

    @property
    def name(self) -> str:
        return "focus"

    def fetch(self, account_ids: Sequence[str], start: date, end: date, as_of: date) -> SourceFetch:
        """Daily rows for ``account_ids`` from ``start`` to ``end`` inclusive, read from every export file."""
        if not self.path.strip():
            raise CostSourceError("source=focus needs focus_path: `costagent config set focus_path DIR_OR_S3_URI`")
        usage = {"list": 0, "get": 0}
        frames = []
        for name, content in self._files(usage):
            try:
                rows = focus.normalize_export(focus.read_export_bytes(content, name), name, self.cost_column)
            except focus.ExportError as exc:
                raise CostSourceError(str(exc)) from None
            frames.append(rows.filter(pl.col("date").is_between(start, end)))
        if not frames:
            raise CostSourceError(f"focus_path {self.path}: no export files (.csv, .csv.gz, .parquet) found")
        daily = focus.daily_rollup(pl.concat(frames))
        costs, unregistered = split_registered(daily, account_ids)
        costs = costs.with_columns(pl.lit("focus").alias("source"))
        currencies = sorted(c for c in costs["currency"].unique().to_list() if c)
        notes = [f"files read: {len(frames)}"]
        if currencies not in ([], ["USD"]):
            notes.append(f"billing currencies: {', '.join(currencies)} (amounts are as billed, not converted)")
        return SourceFetch(
            costs,
            requests=usage["list"] + usage["get"],
            cost_usd=usage["list"] * USD_PER_LIST + usage["get"] * USD_PER_GET,
            unregistered=unregistered,
            notes=notes,
        )

    def _files(self, usage: dict[str, int]) -> Iterator[tuple[str, bytes]]:
        if self.path.strip().lower().startswith("s3://"):
            yield from self._s3_files(usage)
            return
        root = Path(self.path).expanduser()
        if root.is_file():
            yield str(root), root.read_bytes()
            return
        if not root.is_dir():
            raise CostSourceError(f"focus_path {self.path}: no such file or directory")
        for file in sorted(p for p in root.rglob("*") if p.is_file()):
            if focus.is_export_file(str(file.relative_to(root))):
                yield str(file), file.read_bytes()

    def _s3_files(self, usage: dict[str, int]) -> Iterator[tuple[str, bytes]]:
        import boto3  # imported when used: boto3 adds ~0.5 s to every CLI start otherwise
        import botocore.config
        import botocore.exceptions

        bucket, _, prefix = self.path.strip()[5:].partition("/")
        config = botocore.config.Config(retries={"mode": "standard", "total_max_attempts": self.max_retries + 1})
        client = boto3.session.Session().client("s3", config=config)
        try:
            keys = []
            for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
                usage["list"] += 1
                keys += [o["Key"] for o in page.get("Contents", []) if focus.is_export_file(o["Key"])]
            for key in sorted(keys):
                usage["get"] += 1
                yield f"s3://{bucket}/{key}", client.get_object(Bucket=bucket, Key=key)["Body"].read()
        except botocore.exceptions.NoCredentialsError:
            raise CostSourceError(f"{self.path}: no AWS credentials found for S3") from None
        except botocore.exceptions.ClientError as exc:
            error = exc.response.get("Error", {})
            raise CostSourceError(f"{self.path}: S3 {error.get('Code', 'error')}: {error.get('Message', '')}") from None
