"""One writer at a time: the exclusive lease every run takes on an installation's warehouse.

Runs rewrite partitions and rollups and send emails; two at once (a `costagent run` from a shell while
the schedule's run is going, or two hosts sharing an S3 warehouse) would interleave their writes. Each
run therefore holds the lease from start to end, and a second run is refused with the name of the run
that holds it (or, given ``wait_seconds``, waits for it).

- **Local warehouse**: ``fcntl.flock`` on ``<warehouse>/.run_lease``. The kernel drops the lock when the
  holding process ends, however it ends (SIGKILL included), so a crashed run never leaves it stuck.
- **S3 warehouse**: one object written with conditional PUTs (``resources.s3_ledger.S3LeaseStorage``):
  created with ``If-None-Match: *``, renewed every third of its time to live with ``If-Match`` on its
  ETag, deleted with ``If-Match``. A holder that died stops renewing; once the lease has expired another
  run takes it over, again with ``If-Match``, so of two runs taking over exactly one wins.

A process that holds the lease exports its token in ``COSTAGENT_RUN_LEASE``; the same lease taken again
inside that process (the CLI holds it, then the job's ``run_lease`` resource asks for it) is re-entrant.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

LEASE_ENV = "COSTAGENT_RUN_LEASE"
LEASE_FILE = ".run_lease"  # in a local warehouse
DEFAULT_TTL_SECONDS = 600.0


@dataclass(frozen=True)
class Holder:
    """Who holds the lease: a token, what they are doing, where, and until when (object leases)."""

    token: str
    what: str
    host: str
    pid: int
    since: str
    expires: float = 0.0  # epoch seconds; 0 for a file lock, which needs no expiry

    def describe(self) -> str:
        """``costagent run --as-of 2026-11-23 (pid 4242 on host-a, since 2026-11-23T07:00:01+00:00)``."""
        return f"{self.what} (pid {self.pid} on {self.host}, since {self.since})"

    @classmethod
    def new(cls, what: str, ttl_seconds: float = 0.0) -> Holder:
        return cls(uuid.uuid4().hex, what, socket.gethostname(), os.getpid(),
                   datetime.now(UTC).isoformat(timespec="seconds"), time.time() + ttl_seconds if ttl_seconds else 0.0)

    def to_bytes(self) -> bytes:
        return json.dumps(asdict(self)).encode("utf-8")

    @classmethod
    def parse(cls, data: bytes) -> Holder | None:
        try:
            return cls(**json.loads(data.decode("utf-8")))
        except (ValueError, TypeError):
            return None


class LeaseHeld(RuntimeError):
    """Another run holds the lease."""

    def __init__(self, holder: Holder | None, where: str):
        self.holder = holder
        who = holder.describe() if holder else "another run (it has not written its name yet)"
        super().__init__(f"another run holds this installation's run lease ({where}): {who}; "
                         "wait for it to finish, then run again")


class LeaseStorage:
    """Where an object lease lives: read with a version, write only if the version still holds."""

    where: str = ""

    def read(self) -> tuple[bytes, str] | None:
        """The lease's bytes and version (ETag), or None when nobody holds it."""
        raise NotImplementedError

    def write(self, data: bytes, *, replacing: str | None) -> str | None:
        """Write the lease if it is absent (``replacing=None``) or still at version ``replacing``; the
        new version, or None when somebody else changed it first."""
        raise NotImplementedError

    def delete(self, version: str) -> None:
        """Delete the lease if it is still at ``version``."""
        raise NotImplementedError


class FileLease:
    """The lease of a local warehouse: ``flock`` on a file (see the module docstring)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.where = str(self.path)
        self._fd: int | None = None

    def holder(self) -> Holder | None:
        """Who holds (or last held) the lease, as written in the file."""
        with contextlib.suppress(FileNotFoundError):
            return Holder.parse(self.path.read_bytes())
        return None

    def try_acquire(self, what: str) -> Holder | None:
        """Take the lease; None when another process holds it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        holder = Holder.new(what)
        os.ftruncate(fd, 0)
        os.pwrite(fd, holder.to_bytes(), 0)
        self._fd = fd
        return holder

    def release(self, holder: Holder) -> None:
        """Give the lease back (closing the file drops the lock)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class ObjectLease:
    """The lease of an S3 warehouse: one object with a time to live, renewed while held."""

    def __init__(self, storage: LeaseStorage, ttl_seconds: float = DEFAULT_TTL_SECONDS):
        self.storage, self.ttl = storage, ttl_seconds
        self.where = storage.where
        self._version: str | None = None
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None
        self.lost = False  # set when a renewal found somebody else's lease: this run's writes are unprotected

    def holder(self) -> Holder | None:
        """Who holds the lease (expired or not)."""
        found = self.storage.read()
        return Holder.parse(found[0]) if found else None

    def try_acquire(self, what: str) -> Holder | None:
        """Take the lease if it is free or its holder let it expire; None when somebody holds it."""
        holder = Holder.new(what, self.ttl)
        found = self.storage.read()
        if found is not None:
            current = Holder.parse(found[0])
            if current is not None and current.expires > time.time():
                return None
        version = self.storage.write(holder.to_bytes(), replacing=found[1] if found else None)
        if version is None:
            return None
        self._version = version
        self._stop.clear()
        self._renewer = threading.Thread(target=self._renew, args=(holder,), daemon=True, name="run-lease")
        self._renewer.start()
        return holder

    def _renew(self, holder: Holder) -> None:
        while not self._stop.wait(self.ttl / 3):
            renewed = Holder(**{**asdict(holder), "expires": time.time() + self.ttl})
            try:
                version = self.storage.write(renewed.to_bytes(), replacing=self._version)
            except Exception:  # noqa: BLE001 - a network blip: two more tries before the lease can expire
                continue
            if version is None:
                self.lost = True
                return
            self._version = version

    def release(self, holder: Holder) -> None:
        """Stop renewing and delete the lease (only if it is still ours)."""
        self._stop.set()
        if self._renewer is not None:
            self._renewer.join()
            self._renewer = None
        if self._version is not None:
            self.storage.delete(self._version)
            self._version = None


@contextlib.contextmanager
def hold(lease: FileLease | ObjectLease, what: str, *, wait_seconds: float = 0.0,
         poll_seconds: float = 1.0) -> Iterator[Holder | None]:
    """Hold ``lease`` for the block, exporting its token in ``COSTAGENT_RUN_LEASE``; re-entrant within a
    process that already holds it (yields None then). Raises ``LeaseHeld`` naming the holder when it is
    still held after ``wait_seconds``."""
    current = lease.holder()
    if (current is not None and current.token == os.environ.get(LEASE_ENV) and current.pid == os.getpid()
            and current.host == socket.gethostname()):
        yield None
        return
    deadline = time.monotonic() + wait_seconds
    while (holder := lease.try_acquire(what)) is None:
        if time.monotonic() >= deadline:
            raise LeaseHeld(lease.holder(), lease.where)
        time.sleep(poll_seconds)
    previous = os.environ.get(LEASE_ENV)
    os.environ[LEASE_ENV] = holder.token
    try:
        yield holder
    finally:
        if previous is None:
            os.environ.pop(LEASE_ENV, None)
        else:
            os.environ[LEASE_ENV] = previous
        lease.release(holder)
