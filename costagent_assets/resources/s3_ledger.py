"""The send ledger and the run lease as objects beside an S3 warehouse, written with conditional PUTs.

S3 has no ``O_EXCL``, but it has conditional writes: ``If-None-Match: *`` creates an object only if no
object has that key (412 otherwise), and ``If-Match: <etag>`` replaces or deletes one only if nobody
changed it since it was read. With them two hosts (or a container and its replacement) share one ledger
and one lease, and cannot both claim a message or both hold the lease.
"""

from __future__ import annotations

from pathlib import Path

import botocore.exceptions

from costagent_assets.resources.s3_warehouse import S3Store, open_store
from costagent_assets.run_lease import LEASE_FILE, FileLease, LeaseStorage, ObjectLease
from costagent_assets.send_ledger import LEDGER_TABLE, Ledger, SendLedger

# 412: the condition did not hold. 409: another conditional write to the key is in flight (S3 answers
# ConditionalRequestConflict): either way somebody else got there first.
_LOST_RACE = {"PreconditionFailed", "ConditionalRequestConflict", "412", "409"}


def _lost_race(err: botocore.exceptions.ClientError) -> bool:
    return str(err.response.get("Error", {}).get("Code", "")) in _LOST_RACE


class S3SendLedger(Ledger):
    """The send ledger under ``<warehouse>/email_ledger/`` in the warehouse's bucket; claims are created
    with ``If-None-Match: *`` (see ``send_ledger``), one at a time, each just before its send.

    Why not claims made ahead, as the local ledger makes them: there, a batch of claims shares one round of
    fsyncs, and marking each message just before its send is a cheap unsynced file. Here each claim is one
    conditional PUT, durable on its own when S3 answers, and a mark that could arbitrate between a run and
    its taker would have to be a conditional PUT too, just as dear; so claiming ahead would add requests
    rather than save them. Nor is there a sound proof that a claimer is dead: no flock, and the run lease's
    expiry only says it stopped renewing (a paused process may wake and send). One claim at a time needs no
    takeover: a claim without an outcome is unconfirmed, as always. What makes it fast is that a free key
    costs exactly one request to claim and one to confirm (``Ledger._claim``, and the stems it remembers).
    """

    def __init__(self, store: S3Store, legacy: Ledger | None = None):
        super().__init__()
        self.client, self.bucket = store.client, store.bucket
        self.prefix = f"{store.prefix}/{LEDGER_TABLE}" if store.prefix else LEDGER_TABLE
        self.where = f"s3://{self.bucket}/{self.prefix}"
        self.legacy = legacy

    def _key(self, name: str) -> str:
        return f"{self.prefix}/{name}"

    def _create(self, name: str, data: bytes) -> bool:
        try:
            self.client.put_object(Bucket=self.bucket, Key=self._key(name), Body=data, IfNoneMatch="*")
        except botocore.exceptions.ClientError as err:
            if _lost_race(err):
                return False
            raise
        return True

    def _put(self, name: str, data: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=self._key(name), Body=data)

    def _get(self, name: str) -> bytes | None:
        try:
            return self.client.get_object(Bucket=self.bucket, Key=self._key(name))["Body"].read()
        except self.client.exceptions.NoSuchKey:
            return None

    def _delete(self, name: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self._key(name))

    def _names(self, folder: str) -> list[str]:
        start = len(self._key(f"{folder}/"))
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self._key(f"{folder}/"))
        return sorted(o["Key"][start:] for page in pages for o in page.get("Contents", []))

    def _folders(self) -> list[str]:
        start = len(self._key(""))
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self._key(""), Delimiter="/"
        )
        return [p["Prefix"][start:].rstrip("/") for page in pages for p in page.get("CommonPrefixes", [])]


class S3LeaseStorage(LeaseStorage):
    """The run lease as one object, ``<warehouse>/_run_lease.json``, changed only by conditional writes."""

    def __init__(self, store: S3Store):
        self.client, self.bucket = store.client, store.bucket
        self.key = f"{store.prefix}/_run_lease.json" if store.prefix else "_run_lease.json"
        self.where = f"s3://{self.bucket}/{self.key}"

    def read(self) -> tuple[bytes, str] | None:
        try:
            reply = self.client.get_object(Bucket=self.bucket, Key=self.key)
        except self.client.exceptions.NoSuchKey:
            return None
        return reply["Body"].read(), reply["ETag"]

    def write(self, data: bytes, *, replacing: str | None) -> str | None:
        condition = {"IfMatch": replacing} if replacing else {"IfNoneMatch": "*"}
        try:
            return self.client.put_object(Bucket=self.bucket, Key=self.key, Body=data, **condition)["ETag"]
        except botocore.exceptions.ClientError as err:
            if _lost_race(err):
                return None
            raise

    def delete(self, version: str) -> None:
        try:
            self.client.delete_object(Bucket=self.bucket, Key=self.key, IfMatch=version)
        except botocore.exceptions.ClientError as err:
            if not _lost_race(err) and err.response.get("Error", {}).get("Code") != "NoSuchKey":
                raise


def open_send_ledger(root: str, endpoint_url: str, region: str, local_dir: str) -> Ledger:
    """The send ledger of a warehouse: objects beside an S3 warehouse (with the host-local ledger older
    versions kept as ``legacy``), else files in ``local_dir`` (beside a local warehouse)."""
    local = SendLedger(local_dir)
    if root.startswith("s3://"):
        store = open_store(root, endpoint_url, region)
        return S3SendLedger(store, legacy=local if local.root.is_dir() else None)
    return local


def open_run_lease(root: str, endpoint_url: str, region: str) -> FileLease | ObjectLease:
    """The run lease of a warehouse: an object beside an S3 warehouse, else a locked file in it."""
    if root.startswith("s3://"):
        return ObjectLease(S3LeaseStorage(open_store(root, endpoint_url, region)))
    return FileLease(Path(root).expanduser() / LEASE_FILE)
