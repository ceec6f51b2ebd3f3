"""What every email delivery offers the ``emails`` asset: a session that sends built messages."""

from __future__ import annotations

from contextlib import AbstractContextManager

import dagster as dg

from costagent_assets.delivery import Session
from costagent_assets.send_ledger import MAIL


class EmailDelivery(dg.ConfigurableResource):
    """Base of the outbox (files) and SMTP deliveries.

    The ``emails`` asset opens one session per run and passes every message through the send ledger
    (``costagent_assets.delivery.deliver_batch``), so both deliveries send each report at most once.
    """

    @property
    def mode(self) -> str:
        raise NotImplementedError

    @property
    def ledger_channel(self) -> str:
        """The send ledger's channel: ``mail`` for anything that reaches mailboxes, so switching between
        mail transports never sends twice, while an outbox write never counts as a delivery."""
        return MAIL

    def sender_address(self) -> str:
        """The From address of the reports."""
        raise NotImplementedError

    def session(self, report_date: str) -> AbstractContextManager[Session]:
        """An open transport for one run's messages (one SMTP connection, or the outbox folder)."""
        raise NotImplementedError
