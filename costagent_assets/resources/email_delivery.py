"""What every email delivery offers the ``emails`` asset: deliver one built message."""

from __future__ import annotations

from email.message import EmailMessage

import dagster as dg


class EmailDelivery(dg.ConfigurableResource):
    """Base of the outbox (files) and SMTP deliveries."""

    @property
    def mode(self) -> str:
        raise NotImplementedError

    def deliver(self, message: EmailMessage, html: str, *, report_date: str, name: str) -> str:
        """Deliver one message; returns where it went (a path or a message id)."""
        raise NotImplementedError
