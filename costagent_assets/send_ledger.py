"""The ledger of sends: which report went to which recipient on which report date, over which channel,
exactly once.

One key per (report date, report kind, account or "organisation", month, recipient, channel); the account
is part of the key because two teams may share an address, and each must still get its own report. The
channel is ``mail`` (SMTP, and any other transport that reaches the mailboxes) or ``outbox`` (files): a
report written to the outbox was never delivered to anybody, so switching ``email_mode`` from ``outbox``
to ``smtp`` delivers the week once instead of finding every report "sent". ``mail`` keys keep the digest
they had before channels existed, so sends recorded by older versions stay sent.

Two storages, one protocol (``Ledger``):

- ``SendLedger``: files under ``<warehouse>/email_ledger/<report date>/<digest>.claim|.outcome``. A claim
  is created with ``O_CREAT | O_EXCL`` and fsynced (with its directory) *before* the message is handed to
  the server; of two runs racing for a key exactly one creates it. Holds on local filesystems and NFS v3+.
- ``resources.s3_ledger.S3SendLedger``: objects beside an S3 warehouse, each claim created with a
  conditional PUT (``If-None-Match: *``), so two hosts (or a replaced container) share one ledger.

Why it is safe:

1. **Claim before sending**, durably and exclusively (above). A crash at any later moment leaves the
   claim behind, so no later run sends that report again by itself.
2. **Confirm after.** Once the server has answered, the outcome (``delivered`` or a permanent ``failed``)
   is written beside the claim. Losing it only turns a known outcome into "unconfirmed", never into a
   second send.
3. **Release only what certainly did not leave.** A send the server certainly did not accept (4xx
   replies after every retry, no connection) deletes its claim, so the next run tries again.
4. **Unknown stays unknown.** A claim without an outcome means a run died between handing the message
   over and recording the answer (or is sending it right now). It is not re-sent automatically; the run
   summary and the admin report list it as *unconfirmed*; ``costagent resend`` sends it again on purpose.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from costagent_assets.fileio import _fsync_directory, atomic_write_bytes

LEDGER_TABLE = "email_ledger"

DELIVERED = "delivered"
FAILED = "failed"  # permanent (5xx): recorded, never retried automatically
# Some recipients have it, others refused it only for now (4xx): the next run sends it to those ("pending").
DEFERRED = "deferred"
UNCONFIRMED = "unconfirmed"  # claimed, outcome unknown
OUTCOMES = (DELIVERED, FAILED, DEFERRED)

MAIL = "mail"  # delivered to mailboxes (SMTP, or any transport that reaches them)
OUTBOX = "outbox"  # written to the outbox folder: nobody received it
CHANNELS = (MAIL, OUTBOX)
# The detail every outbox write recorded before keys had a channel: how such a record is recognised.
LEGACY_OUTBOX_DETAIL = "written to the outbox"
_KEY_FIELDS = ("report_date", "kind", "subject", "month", "recipient")


@dataclass(frozen=True)
class LedgerKey:
    """What makes two sends the same send."""

    report_date: str  # YYYY-MM-DD
    kind: str  # "team" | "admin"
    subject: str  # the account id of a team report, "organisation" for the admin report
    month: str  # the month the report is about
    recipient: str  # the To address, lower-cased
    channel: str = MAIL  # MAIL | OUTBOX

    @classmethod
    def of(cls, report_date: str, kind: str, subject: str, month: str, recipient: str,
           channel: str = MAIL) -> LedgerKey:
        if channel not in CHANNELS:
            raise ValueError(f"channel must be one of {CHANNELS}, not {channel!r}")
        return cls(report_date, kind, subject, month, recipient.strip().lower(), channel)

    @property
    def digest(self) -> str:
        """A file-name-safe, fixed-length name for the key (recipients can contain anything)."""
        parts = [self.report_date, self.kind, self.subject, self.month, self.recipient]
        # Mail keys hash as they did before channels existed: their old claims still count.
        if self.channel != MAIL:
            parts.append(self.channel)
        return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()[:40]


@dataclass(frozen=True)
class LedgerEntry:
    """What the ledger knows of one key: its claim and, once known, its outcome."""

    key: LedgerKey
    status: str  # delivered | failed | unconfirmed
    run_id: str
    claimed_at: str
    detail: str = ""
    location: str = ""
    pending: tuple[str, ...] = ()  # DEFERRED: the recipients still to send it to
    attempt: int = 0  # how many times the pending recipients were tried again


class Ledger:
    """The claim / confirm / release protocol over a storage of small named records (see the module
    docstring); subclasses provide the storage: ``_create`` (exclusive), ``_put``, ``_get``, ``_delete``,
    ``_names`` and ``_folders``. Record names are ``<report date>/<stem>.claim`` and ``.outcome``."""

    where: str = ""
    # A ledger this one replaced (an S3 warehouse's ledger used to live on the sending host's disk): what
    # it holds still counts, so moving the ledger never sends a week again.
    legacy: Ledger | None = None

    def _create(self, name: str, data: bytes) -> bool:
        """Create ``name`` durably unless it exists; True when this call created it."""
        raise NotImplementedError

    def _put(self, name: str, data: bytes) -> None:
        raise NotImplementedError

    def _get(self, name: str) -> bytes | None:
        raise NotImplementedError

    def _delete(self, name: str) -> None:
        raise NotImplementedError

    def _names(self, folder: str) -> list[str]:
        """The record names (without the folder) in one report date's folder."""
        raise NotImplementedError

    def _folders(self) -> list[str]:
        raise NotImplementedError

    def _stem(self, key: LedgerKey) -> str:
        # Before keys had a channel, an outbox write took the name a mail send of the same report now
        # has. Such a record is not a delivery: the mail send lives beside it under its own name.
        stem = f"{key.report_date}/{key.digest}"
        if key.channel == MAIL:
            entry = self._read(f"{stem}.claim", key)
            if entry is not None and entry.key.channel != MAIL:
                return f"{stem}-mail"
        return stem

    def claim(self, key: LedgerKey, run_id: str) -> LedgerEntry | None:
        """Claim ``key`` for sending: None when this call claimed it, else what the ledger already holds."""
        if self.legacy is not None and (earlier := self.legacy.entry(key)) is not None:
            return earlier
        stem = self._stem(key)
        record = {**asdict(key), "run_id": run_id, "claimed_at": _now()}
        if self._create(f"{stem}.claim", json.dumps(record).encode("utf-8")):
            return None
        return self._read(f"{stem}.claim", key) or _in_flight(key)

    def confirm(self, key: LedgerKey, status: str, *, detail: str = "", location: str = "",
                pending: tuple[str, ...] = (), attempt: int = 0) -> None:
        """Record the outcome of a claimed send: ``delivered``, a permanent ``failed``, or ``deferred`` with
        the ``pending`` recipients that refused it only for now, after ``attempt`` retries."""
        if status not in OUTCOMES:
            raise ValueError(f"outcome must be one of {OUTCOMES}, not {status!r}")
        stem = self._stem(key)
        if self._get(f"{stem}.claim") is None:
            raise RuntimeError(f"no claim for {key}: an outcome is only recorded for a claimed send")
        record = {"status": status, "detail": detail, "location": location, "at": _now(),
                  "pending": list(pending), "attempt": attempt}
        self._put(f"{stem}.outcome", json.dumps(record).encode("utf-8"))

    def claim_retry(self, key: LedgerKey, attempt: int, run_id: str) -> bool:
        """Claim the retry number ``attempt`` of a deferred send's pending recipients: True for exactly one
        caller, so two runs never both send it to them (a claim like the first one)."""
        record = {"run_id": run_id, "claimed_at": _now(), "attempt": attempt}
        return self._create(f"{self._stem(key)}.retry{attempt}", json.dumps(record).encode("utf-8"))

    def release(self, key: LedgerKey) -> None:
        """Drop the claim of a send the server certainly did not accept (or that is to be sent again on
        purpose, ``costagent resend``), so a later run sends it."""
        stem = self._stem(key)
        folder, _, base = stem.partition("/")
        for name in self._names(folder):
            if name.startswith(f"{base}.retry"):
                self._delete(f"{folder}/{name}")
        self._delete(f"{stem}.outcome")
        self._delete(f"{stem}.claim")

    def entry(self, key: LedgerKey) -> LedgerEntry | None:
        """What the ledger holds for ``key``; None when it was never claimed (or was released)."""
        found = self._read(f"{self._stem(key)}.claim", key)
        if found is None and self.legacy is not None:
            return self.legacy.entry(key)
        return found

    def entries(self, report_date: str, channel: str | None = None) -> list[LedgerEntry]:
        """Every entry of a report date (of one channel, if given), ordered by kind, subject and recipient."""
        found = []
        for name in self._names(report_date):
            if name.endswith(".claim"):
                entry = self._read(f"{report_date}/{name}", None)
                if entry is not None and channel in (None, entry.key.channel):
                    found.append(entry)
        return sorted(found, key=lambda e: (e.key.kind, e.key.subject, e.key.recipient, e.key.channel))

    def report_dates(self) -> list[str]:
        """The report dates the ledger holds entries for, oldest first."""
        return sorted(self._folders())

    def __iter__(self) -> Iterator[LedgerEntry]:
        for folder in self.report_dates():
            yield from self.entries(folder)

    def _read(self, claim_name: str, key: LedgerKey | None) -> LedgerEntry | None:
        claim = _parse(self._get(claim_name))
        if claim is None:
            return None
        outcome = _parse(self._get(claim_name.removesuffix(".claim") + ".outcome")) or {}
        stored = LedgerKey(*(str(claim.get(f, "?")) for f in _KEY_FIELDS), channel=_channel_of(claim, outcome))
        return LedgerEntry(
            key=stored if key is None or stored.channel != key.channel else key,
            status=outcome.get("status", UNCONFIRMED),
            run_id=str(claim.get("run_id", "")),
            claimed_at=str(claim.get("claimed_at", "")),
            detail=str(outcome.get("detail", "")),
            location=str(outcome.get("location", "")),
            pending=tuple(str(a) for a in outcome.get("pending", ())),
            attempt=int(outcome.get("attempt", 0) or 0),
        )


def _in_flight(key: LedgerKey) -> LedgerEntry:
    # A claim released between our failed create and our read: another run is handling it.
    return LedgerEntry(key, UNCONFIRMED, run_id="", claimed_at="", detail="claimed by another run")


def _channel_of(claim: dict, outcome: dict) -> str:
    if "channel" in claim:
        return str(claim["channel"])
    # Written before keys had a channel: the outbox said so in its detail, everything else was mail.
    return OUTBOX if outcome.get("detail") == LEGACY_OUTBOX_DETAIL else MAIL


class SendLedger(Ledger):
    """The ledger in a local (POSIX) directory, ``<warehouse>/email_ledger``; see the module docstring."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.where = str(self.root)

    def _create(self, name: str, data: bytes) -> bool:
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            return False
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        _fsync_directory(path.parent)
        return True

    def _put(self, name: str, data: bytes) -> None:
        # Not fsynced: losing an outcome only makes a known send "unconfirmed" (see the module docstring).
        atomic_write_bytes(self.root / name, data, durable=False)

    def _get(self, name: str) -> bytes | None:
        with contextlib.suppress(FileNotFoundError):
            return (self.root / name).read_bytes()
        return None

    def _delete(self, name: str) -> None:
        (self.root / name).unlink(missing_ok=True)

    def _names(self, folder: str) -> list[str]:
        path = self.root / folder
        return sorted(p.name for p in path.iterdir() if not p.name.startswith(".")) if path.is_dir() else []

    def _folders(self) -> list[str]:
        return [p.name for p in self.root.iterdir() if p.is_dir()] if self.root.is_dir() else []


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _parse(data: bytes | None) -> dict | None:
    if data is None:
        return None
    try:
        parsed = json.loads(data.decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        # A claim torn by a crash in the middle of its write: the send may or may not have begun.
        return {}
    return parsed if isinstance(parsed, dict) else {}
