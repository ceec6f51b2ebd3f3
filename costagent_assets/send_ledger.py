"""The ledger of sends: which report went to which recipient on which report date, exactly once.

Stored in the warehouse (``<home>/warehouse/email_ledger/<report date>/<key digest>.claim|.outcome``).
One key per (report date, report kind, account or "organisation", month, recipient); the account is part
of the key because two teams may share an address, and each must still get its own report.

Why it is safe, on a local (POSIX) filesystem:

1. **Claim before sending.** A run creates ``<digest>.claim`` with ``O_CREAT | O_EXCL`` and fsyncs the
   file and its directory *before* handing the message to the server. ``O_EXCL`` creation is atomic:
   of two runs racing for the same key exactly one creates the file; the other sees it exists and
   does not send. Because the claim is durable before the send, a crash at any later moment leaves it
   behind, so no later run can send that report again.
2. **Confirm after.** Once the server has answered, the outcome (``delivered`` or a permanent
   ``failed``) is written beside the claim (write to a temporary file, rename). The outcome is not
   fsynced: losing it in a power cut only turns a known outcome into "unconfirmed", never into a
   second send.
3. **Release only what certainly did not leave.** A send the server certainly did not accept (4xx
   replies after every retry, a connection refused before the message was transferred) deletes its
   claim, so the next run tries again.
4. **Unknown stays unknown.** A claim without an outcome means a run crashed between handing the
   message over and recording the answer, or another run is sending it right now. Either way it is
   not re-sent automatically; the admin report lists it as *unconfirmed*. Delete the claim file to
   send it again, after checking the mail server's log.

Object stores have no ``O_EXCL``: with the warehouse on S3 the ledger stays on the sending machine's
disk (``<home>/email_ledger``); a ledger on S3 itself would need a conditional PUT (``If-None-Match: *``)
for the claim. NFS v3+ honours ``O_EXCL``.
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
UNCONFIRMED = "unconfirmed"  # claimed, outcome unknown
OUTCOMES = (DELIVERED, FAILED)


@dataclass(frozen=True)
class LedgerKey:
    """What makes two sends the same send."""

    report_date: str  # YYYY-MM-DD
    kind: str  # "team" | "admin"
    subject: str  # the account id of a team report, "organisation" for the admin report
    month: str  # the month the report is about
    recipient: str  # the To address, lower-cased

    @classmethod
    def of(cls, report_date: str, kind: str, subject: str, month: str, recipient: str) -> LedgerKey:
        return cls(report_date, kind, subject, month, recipient.strip().lower())

    @property
    def digest(self) -> str:
        """A file-name-safe, fixed-length name for the key (recipients can contain anything)."""
        text = "\x1f".join((self.report_date, self.kind, self.subject, self.month, self.recipient))
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:40]


@dataclass(frozen=True)
class LedgerEntry:
    """What the ledger knows of one key: its claim and, once known, its outcome."""

    key: LedgerKey
    status: str  # delivered | failed | unconfirmed
    run_id: str
    claimed_at: str
    detail: str = ""
    location: str = ""


class SendLedger:
    """The ledger under ``root`` (``<warehouse>/email_ledger``); see the module docstring."""

    def __init__(self, root: Path):
        self.root = Path(root)

    def _paths(self, key: LedgerKey) -> tuple[Path, Path]:
        folder = self.root / key.report_date
        return folder / f"{key.digest}.claim", folder / f"{key.digest}.outcome"

    def claim(self, key: LedgerKey, run_id: str) -> LedgerEntry | None:
        """Claim ``key`` for sending: None when this call claimed it, else what the ledger already holds."""
        claim_path, _ = self._paths(key)
        claim_path.parent.mkdir(parents=True, exist_ok=True)
        record = {**asdict(key), "run_id": run_id, "claimed_at": _now()}
        try:
            fd = os.open(claim_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            return self.entry(key)
        try:
            os.write(fd, json.dumps(record).encode("utf-8"))
            os.fsync(fd)
        finally:
            os.close(fd)
        _fsync_directory(claim_path.parent)
        return None

    def confirm(self, key: LedgerKey, status: str, *, detail: str = "", location: str = "") -> None:
        """Record the outcome of a claimed send (``delivered`` or a permanent ``failed``)."""
        if status not in OUTCOMES:
            raise ValueError(f"outcome must be one of {OUTCOMES}, not {status!r}")
        claim_path, outcome_path = self._paths(key)
        if not claim_path.exists():
            raise RuntimeError(f"no claim for {key}: an outcome is only recorded for a claimed send")
        record = {"status": status, "detail": detail, "location": location, "at": _now()}
        atomic_write_bytes(outcome_path, json.dumps(record).encode("utf-8"), durable=False)

    def release(self, key: LedgerKey) -> None:
        """Drop the claim of a send the server certainly did not accept, so a later run retries it."""
        claim_path, outcome_path = self._paths(key)
        outcome_path.unlink(missing_ok=True)
        claim_path.unlink(missing_ok=True)

    def entry(self, key: LedgerKey) -> LedgerEntry | None:
        """What the ledger holds for ``key``; None when it was never claimed (or was released)."""
        claim_path, outcome_path = self._paths(key)
        return _read_entry(claim_path, outcome_path, key)

    def entries(self, report_date: str) -> list[LedgerEntry]:
        """Every entry of a report date, ordered by kind, subject and recipient."""
        folder = self.root / report_date
        found = []
        for claim_path in sorted(folder.glob("*.claim")) if folder.exists() else []:
            entry = _read_entry(claim_path, claim_path.with_suffix(".outcome"), None)
            if entry is not None:
                found.append(entry)
        return sorted(found, key=lambda e: (e.key.kind, e.key.subject, e.key.recipient))

    def __iter__(self) -> Iterator[LedgerEntry]:
        for folder in sorted(self.root.glob("*")) if self.root.exists() else []:
            yield from self.entries(folder.name)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _load(path: Path) -> dict | None:
    with contextlib.suppress(FileNotFoundError):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError):
            # A claim torn by a crash in the middle of its write: the send may or may not have begun.
            return {}
        return data if isinstance(data, dict) else {}
    return None


def _read_entry(claim_path: Path, outcome_path: Path, key: LedgerKey | None) -> LedgerEntry | None:
    claim = _load(claim_path)
    if claim is None:
        return None
    if key is None:
        fields = ("report_date", "kind", "subject", "month", "recipient")
        key = LedgerKey(*(str(claim.get(f, "?")) for f in fields))
    outcome = _load(outcome_path) or {}
    return LedgerEntry(
        key=key,
        status=outcome.get("status", UNCONFIRMED),
        run_id=str(claim.get("run_id", "")),
        claimed_at=str(claim.get("claimed_at", "")),
        detail=str(outcome.get("detail", "")),
        location=str(outcome.get("location", "")),
    )
