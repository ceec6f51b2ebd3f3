"""Email delivery to a local outbox: .eml and .html files instead of SMTP."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from costagent_assets.delivery import SENT, Outgoing, SendResult
from costagent_assets.fileio import atomic_write_bytes
from costagent_assets.resources.email_delivery import EmailDelivery
from costagent_assets.send_ledger import LEGACY_OUTBOX_DETAIL, OUTBOX

OUTBOX_SENDER = "costagent@localhost"


@dataclass
class _OutboxSession:
    folder: Path

    def send(self, outgoing: Outgoing) -> SendResult:
        # Not fsynced: 170 fsyncs cost a second per run, and the ledger, not these files, says what was sent.
        name = outgoing.name
        atomic_write_bytes(self.folder / f"{name}.eml", bytes(outgoing.message), durable=False)
        atomic_write_bytes(self.folder / f"{name}.html", outgoing.html.encode("utf-8"), durable=False)
        for suffix, data in outgoing.attachments:
            atomic_write_bytes(self.folder / f"{name}.{suffix}", data, durable=False)
        return SendResult(SENT, detail=LEGACY_OUTBOX_DETAIL, location=str(self.folder / f"{name}.eml"))


class OutboxDelivery(EmailDelivery):
    """Writes each message as ``<name>.eml`` (the exact MIME message) and ``<name>.html`` (to open in a
    browser), plus its attachments (the admin report's CSV) as ``<name>.<suffix>``, under
    ``<directory>/<report date>/``. Goes through the send ledger like SMTP: a rerun writes nothing new.
    """

    directory: str

    @property
    def mode(self) -> str:
        return "outbox"

    @property
    def ledger_channel(self) -> str:
        """Outbox files are not deliveries: their ledger entries never stop a later SMTP send."""
        return OUTBOX

    def sender_address(self) -> str:
        """The From address of outbox messages."""
        return OUTBOX_SENDER

    @contextmanager
    def session(self, report_date: str) -> Iterator[_OutboxSession]:
        """The outbox folder of ``report_date``."""
        yield _OutboxSession(Path(self.directory) / report_date)
