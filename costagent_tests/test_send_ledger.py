"""The send ledger: O_EXCL claims, outcomes, releases, unconfirmed sends, and racing runs."""

from __future__ import annotations

import json
import threading

import pytest

from costagent_assets.delivery import SENT, UNKNOWN, Outgoing, SendResult, deliver_batch
from costagent_assets.home import Home
from costagent_assets.reporting import RenderedEmail, build_message
from costagent_assets.resources.s3_warehouse import ledger_dir
from costagent_assets.send_ledger import LedgerKey, SendLedger
from costagent_assets.settings import Settings

KEY = LedgerKey.of("2026-11-23", "team", "123456789012", "2026-11", " Team@Example.com ")
_PARTS = ("2026-11-23", "team", "123456789012", "2026-11", "team@example.com")


def test_first_claim_wins_and_later_claims_see_it(tmp_path):
    ledger = SendLedger(tmp_path)
    assert ledger.claim(KEY, "run-1") is None
    seen = ledger.claim(KEY, "run-2")
    assert seen.status == "unconfirmed" and seen.run_id == "run-1" and seen.key == KEY
    ledger.confirm(KEY, "delivered", detail="250 ok", location="<id@x>")
    seen = ledger.claim(KEY, "run-3")
    assert (seen.status, seen.detail, seen.location) == ("delivered", "250 ok", "<id@x>")
    assert [e.key for e in ledger.entries("2026-11-23")] == [KEY] and KEY.recipient == "team@example.com"


def test_release_lets_a_later_run_claim_again(tmp_path):
    ledger = SendLedger(tmp_path)
    ledger.claim(KEY, "run-1")
    ledger.release(KEY)
    assert ledger.entry(KEY) is None and ledger.claim(KEY, "run-2") is None


def test_confirm_needs_a_claim_and_a_known_outcome(tmp_path):
    ledger = SendLedger(tmp_path)
    with pytest.raises(RuntimeError, match="no claim"):
        ledger.confirm(KEY, "delivered")
    ledger.claim(KEY, "run-1")
    with pytest.raises(ValueError, match="outcome must be"):
        ledger.confirm(KEY, "unconfirmed")


def test_a_torn_claim_counts_as_unconfirmed(tmp_path):
    ledger = SendLedger(tmp_path)
    ledger.claim(KEY, "run-1")
    claim = next((tmp_path / "2026-11-23").glob("*.claim"))
    claim.write_bytes(b'{"report_da')  # a crash in the middle of writing it
    assert ledger.claim(KEY, "run-2").status == "unconfirmed"


def test_keys_differ_by_every_part():
    parts = ("2026-11-23", "team", "123456789012", "2026-11", "a@example.com")
    digests = {LedgerKey.of(*parts).digest}
    for i, other in enumerate(("2026-11-30", "admin", "123456789013", "2026-10", "b@example.com")):
        changed = list(parts)
        changed[i] = other
        digests.add(LedgerKey.of(*changed).digest)
    assert len(digests) == 6


def test_racing_claims_have_exactly_one_winner(tmp_path):
    winners = []
    barrier = threading.Barrier(8)

    def race(n: int) -> None:
        barrier.wait()
        if SendLedger(tmp_path).claim(KEY, f"run-{n}") is None:
            winners.append(n)

    threads = [threading.Thread(target=race, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(winners) == 1


class _Answers:
    """A transport session answering from a script: stands in for the mail server, not for costagent."""

    def __init__(self, *answers: SendResult):
        self.answers = list(answers)
        self.sent: list[str] = []

    def send(self, outgoing: Outgoing) -> SendResult:
        self.sent.append(outgoing.key.recipient)
        return self.answers.pop(0)


def _outgoing(n: int) -> list[Outgoing]:
    items = []
    for i in range(n):
        rendered = RenderedEmail(f"s{i}", "<p>h</p>", "t")
        message = build_message(rendered, sender="c@example.com", to=f"t{i}@example.com")
        key = LedgerKey.of("2026-11-23", "team", str(i), "2026-11", f"t{i}@example.com")
        items.append(Outgoing(key, message, rendered.html, f"n{i}"))
    return items


def test_an_unknown_outcome_is_never_resent(tmp_path):
    ledger = SendLedger(tmp_path)
    first = _Answers(SendResult(SENT), SendResult(UNKNOWN, detail="connection lost"), SendResult(SENT))
    results = deliver_batch(first, _outgoing(3), ledger, "run-1")
    assert [r.status for r in results] == ["delivered", "unconfirmed", "delivered"]
    second = _Answers()
    results = deliver_batch(second, _outgoing(3), ledger, "run-2")
    assert [r.status for r in results] == ["already_sent", "unconfirmed", "already_sent"] and second.sent == []


def test_the_ledger_lives_beside_a_local_warehouse_and_on_local_disk_for_s3(tmp_path):
    home = Home(tmp_path / "home")
    assert ledger_dir(home, Settings()) == home.warehouse_dir / "email_ledger"
    assert ledger_dir(home, Settings(warehouse_uri=str(tmp_path / "wh"))) == tmp_path / "wh" / "email_ledger"
    assert ledger_dir(home, Settings(warehouse_uri="s3://bucket/costagent")) == home.root / "email_ledger"


def test_an_outbox_write_and_a_mail_send_of_one_report_are_separate_entries(tmp_path):
    ledger = SendLedger(tmp_path)
    outbox = LedgerKey.of(*_PARTS, channel="outbox")
    mail = LedgerKey.of(*_PARTS)
    assert mail.channel == "mail" and outbox.digest != mail.digest
    assert ledger.claim(outbox, "demo") is None
    ledger.confirm(outbox, "delivered", detail="written to the outbox")
    assert ledger.claim(mail, "go-live") is None  # the outbox write does not count as a delivery
    assert [e.key.channel for e in ledger.entries("2026-11-23")] == ["mail", "outbox"]
    assert [e.key for e in ledger.entries("2026-11-23", "outbox")] == [outbox]
    with pytest.raises(ValueError, match="channel must be one of"):
        LedgerKey.of(*_PARTS, channel="pigeon")


def test_a_mail_key_hashes_as_before_channels_existed():
    # Claims written by older versions must still stop a second send.
    # The digest the version before channels gave this key (computed with that version's send_ledger.py).
    assert LedgerKey.of(*_PARTS).digest == "4281be31a09b95ccea22857a492be350210fccfb"


def test_an_outbox_write_recorded_before_channels_existed_does_not_stop_the_smtp_send(tmp_path):
    ledger = SendLedger(tmp_path)
    mail = LedgerKey.of(*_PARTS)
    # What an older version left after `costagent demo`: the outbox write under the key a mail send now has.
    ledger.claim(mail, "old-demo")
    (tmp_path / "2026-11-23" / f"{mail.digest}.claim").write_text(
        json.dumps({f: getattr(mail, f) for f in ("report_date", "kind", "subject", "month", "recipient")}
                   | {"run_id": "old-demo", "claimed_at": "2026-11-23T07:00:00+00:00"}))
    ledger.confirm(mail, "delivered", detail="written to the outbox")
    assert ledger.entry(mail) is None  # not a mail delivery
    assert ledger.claim(mail, "go-live") is None and ledger.claim(mail, "again").run_id == "go-live"
    assert sorted(e.key.channel for e in ledger.entries("2026-11-23")) == ["mail", "outbox"]


def test_release_also_drops_the_retry_claims(tmp_path):
    ledger = SendLedger(tmp_path)
    ledger.claim(KEY, "run-1")
    ledger.confirm(KEY, "deferred", pending=("team@example.com",), attempt=0)
    assert ledger.entry(KEY).pending == ("team@example.com",)
    assert ledger.claim_retry(KEY, 1, "run-2") and not ledger.claim_retry(KEY, 1, "run-3")
    ledger.release(KEY)  # `costagent resend`
    assert list((tmp_path / "2026-11-23").iterdir()) == []
    assert ledger.claim(KEY, "run-4") is None
