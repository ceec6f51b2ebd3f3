"""Delivering a batch of built messages through the send ledger, whatever the transport.

Pure orchestration: the transport (outbox files or SMTP) is a session object with one ``send`` method;
this module decides, per message, whether it may be sent at all (the ledger) and records the answer.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from email.message import EmailMessage
from typing import Protocol

from costagent_assets.reporting import MimeMessage
from costagent_assets.send_ledger import DEFERRED as LEDGER_DEFERRED
from costagent_assets.send_ledger import DELIVERED, FAILED, Ledger, LedgerEntry, LedgerKey

# What one send can end as (SendResult.status).
SENT = "delivered"  # the server (or the outbox) accepted it
REFUSED = "failed"  # a permanent (5xx) refusal: recorded, not retried
DEFERRED = "deferred"  # certainly not accepted (4xx after every retry, no connection): retried next run
UNKNOWN = "unknown"  # the connection broke while the message was being handed over

# What a message of this run ended as (Delivery.status): the above plus the ledger's answers.
ALREADY_SENT = "already_sent"  # an earlier run delivered it
FAILED_EARLIER = "failed_earlier"  # an earlier run recorded a permanent failure
UNCONFIRMED = "unconfirmed"  # claimed earlier (or now) with no known outcome: never re-sent automatically


@dataclass(frozen=True)
class Outgoing:
    """One message to deliver, with its ledger key and the name its files get in an outbox."""

    key: LedgerKey
    message: EmailMessage | MimeMessage  # what goes on the wire: bytes(message)
    html: str
    name: str
    attachments: tuple[tuple[str, bytes], ...] = ()  # (file suffix, bytes) an outbox writes beside the .eml
    only: tuple[str, ...] = ()  # the envelope recipients, when not every To and Cc (a retry of the pending ones)


@dataclass(frozen=True)
class SendResult:
    """The transport's answer for one message."""

    status: str  # SENT | REFUSED | DEFERRED | UNKNOWN
    detail: str = ""
    location: str = ""
    refused: dict[str, str] = field(default_factory=dict)  # recipient -> server reply
    accepted: tuple[str, ...] = ()  # recipients that have it (SMTP)
    pending: tuple[str, ...] = ()  # DEFERRED: recipients that refused it only for now, for the next run


class Session(Protocol):
    """An open transport: one connection for a whole batch."""

    def send(self, outgoing: Outgoing) -> SendResult: ...


@dataclass(frozen=True)
class Delivery:
    """What happened to one message in this run."""

    key: LedgerKey
    status: str  # delivered | failed | deferred | unconfirmed | already_sent | failed_earlier
    detail: str = ""
    location: str = ""

    @property
    def sent_now(self) -> bool:
        return self.status == SENT


_EARLIER = {DELIVERED: ALREADY_SENT, FAILED: FAILED_EARLIER}


def deliver_batch(session: Session, outgoing: Iterable[Outgoing], ledger: Ledger, run_id: str) -> list[Delivery]:
    """Send each message at most once per recipient across all runs (see ``send_ledger``), in order.

    A message some recipients have and others refused only for now (4xx) is recorded as deferred with
    those recipients; the next run sends it to them alone, under a retry claim. An exception from the
    transport leaves the message's claim in place (its outcome is unknown) and propagates; the messages
    claimed ahead of it are released.
    """
    results = []
    # Claimed a batch ahead where the ledger makes that cheap, each claim durable and marked before its send
    # (send_ledger.Claims); the claims of messages never reached are released if the transport raises.
    with ledger.claiming(outgoing, run_id, key=lambda item: item.key) as claims:
        for item, existing in claims:
            if existing is None:
                results.append(_record(ledger, item, session.send(item), attempt=0))
            elif existing.status == LEDGER_DEFERRED and existing.pending:
                results.append(_retry(session, ledger, item, existing, run_id))
            else:
                status = _EARLIER.get(existing.status, UNCONFIRMED)
                results.append(Delivery(item.key, status, existing.detail, existing.location))
    return results


def _retry(session: Session, ledger: Ledger, item: Outgoing, earlier: LedgerEntry, run_id: str) -> Delivery:
    attempt = earlier.attempt + 1
    if not ledger.claim_retry(item.key, attempt, run_id):
        # Another run is retrying it, or died doing so: the pending recipients' outcome is unknown.
        return Delivery(item.key, UNCONFIRMED, f"retry {attempt} to {', '.join(earlier.pending)} claimed earlier")
    answer = session.send(replace(item, only=earlier.pending))
    return _record(ledger, item, answer, attempt=attempt, earlier=earlier.detail)


def _record(ledger: Ledger, item: Outgoing, answer: SendResult, *, attempt: int, earlier: str = "") -> Delivery:
    detail = f"{earlier}; then {answer.detail}" if earlier else answer.detail
    if answer.status in (SENT, REFUSED):
        ledger.confirm(item.key, answer.status, detail=detail, location=answer.location, attempt=attempt)
        return Delivery(item.key, answer.status, detail, answer.location)
    if answer.status == DEFERRED and (answer.accepted or attempt):
        # Somebody has it already: only the pending recipients are tried again, by the next run.
        ledger.confirm(item.key, LEDGER_DEFERRED, detail=detail, location=answer.location,
                       pending=answer.pending, attempt=attempt)
        return Delivery(item.key, DEFERRED, detail, answer.location)
    if answer.status == DEFERRED:
        ledger.release(item.key)
        return Delivery(item.key, DEFERRED, detail)
    return Delivery(item.key, UNCONFIRMED, detail or "outcome unknown")


def status_counts(deliveries: Sequence[Delivery]) -> dict[str, int]:
    """How many messages ended in each status, in a fixed order (zeros included)."""
    counts = Counter(d.status for d in deliveries)
    order = (SENT, ALREADY_SENT, REFUSED, FAILED_EARLIER, DEFERRED, UNCONFIRMED)
    return {status: counts.get(status, 0) for status in order}


# What `costagent run` and `costagent status` report per run, team and admin emails together.
SUMMARY_FIELDS = ("sent", "already_sent", "deferred", "unconfirmed", "failed")


def run_summary(deliveries: Sequence[Delivery]) -> dict[str, int]:
    """How many emails of a run were sent now, already sent, deferred (retried by the next run),
    unconfirmed (outcome unknown, not re-sent automatically) and failed (permanently refused, now or earlier)."""
    counts = Counter(d.status for d in deliveries)
    return {
        "sent": counts[SENT],
        "already_sent": counts[ALREADY_SENT],
        "deferred": counts[DEFERRED],
        "unconfirmed": counts[UNCONFIRMED],
        "failed": counts[REFUSED] + counts[FAILED_EARLIER],
    }


def is_partial(summary: dict[str, int]) -> bool:
    """True when some email of the run has not (certainly) reached its recipient."""
    return any(summary.get(k, 0) for k in ("deferred", "unconfirmed", "failed"))


def summary_text(summary: dict[str, int]) -> str:
    """One line: ``84 sent, 1 already sent, 0 deferred, 0 unconfirmed, 0 failed``."""
    return ", ".join(f"{summary.get(k, 0)} {k.replace('_', ' ')}" for k in SUMMARY_FIELDS)


# Shown in the admins' delivery-failure notice, one line per email that did not (certainly) arrive.
_PROBLEM_TEXT = {
    DEFERRED: "not accepted yet (temporary errors): the next run tries again",
    UNCONFIRMED: "outcome unknown: not re-sent automatically (check the mail server's trace; "
                 "`costagent resend` sends it again)",
    REFUSED: "refused permanently by the mail server",
    FAILED_EARLIER: "refused permanently by the mail server in an earlier run",
}


def delivery_problems(deliveries: Sequence[Delivery]) -> list[Delivery]:
    """The emails of a run that did not (certainly) reach every recipient, in a stable order."""
    problems = [d for d in deliveries if d.status in _PROBLEM_TEXT]
    return sorted(problems, key=lambda d: (d.key.kind, d.key.subject, d.key.month, d.key.recipient))


def failure_notice(problems: Sequence[Delivery], report_date: str, names: Mapping[str, str]) -> tuple[str, str, str]:
    """A short plain notice for the admins: (fingerprint, subject, text). The fingerprint names this set of
    problems, so the same set is notified once however often the week is rerun, and a new set again."""
    text_lines = [f"costagent could not deliver {len(problems)} email(s) of the report of {report_date}:", ""]
    for d in problems:
        who = "the admin report" if d.key.kind == "admin" else f"{names.get(d.key.subject, '?')} ({d.key.subject})"
        text_lines += [f"- {who}, {d.key.month}, to {d.key.recipient}: {_PROBLEM_TEXT[d.status]}",
                       f"  {d.detail}" if d.detail else ""]
    text_lines += ["", "`costagent status` shows the last run's counts; `costagent resend --week "
                   f"{report_date}` lists what can be sent again."]
    identity = "\n".join(f"{d.key.kind}|{d.key.subject}|{d.key.month}|{d.key.recipient}|{d.status}" for d in problems)
    fingerprint = hashlib.sha256(identity.encode("utf-8")).hexdigest()[:12]
    subject = f"costagent: {len(problems)} email(s) of {report_date} not delivered"
    return fingerprint, subject, "\n".join(line for line in text_lines if line is not None)

