"""Email delivery to a local outbox: .eml and .html files instead of SMTP."""

from __future__ import annotations

from email.message import EmailMessage
from pathlib import Path

from costagent_assets.fileio import atomic_write_bytes
from costagent_assets.resources.email_delivery import EmailDelivery


class OutboxDelivery(EmailDelivery):
    """Writes each message as ``<name>.eml`` (the exact MIME message) and ``<name>.html`` (to open in a browser).

    Files are keyed by report date and recipient kind, so a retried run rewrites the same files rather
    than adding copies.
    """

    directory: str

    @property
    def mode(self) -> str:
        return "outbox"

    def deliver(self, message: EmailMessage, html: str, *, report_date: str, name: str) -> str:
        """Write one message; returns where it went."""
        folder = Path(self.directory) / report_date
        # Not fsynced: a rerun rewrites the same files, and 170 fsyncs cost a second per run.
        atomic_write_bytes(folder / f"{name}.eml", bytes(message), durable=False)
        atomic_write_bytes(folder / f"{name}.html", html.encode("utf-8"), durable=False)
        return str(folder / f"{name}.eml")
