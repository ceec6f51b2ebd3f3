"""The send ledger: O_EXCL claims, outcomes, releases, unconfirmed sends, and racing runs."""

from __future__ import annotations

import json
import threading

import pytest

from costagent_assets import send_ledger
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


class _Failing(_Answers):
    """A transport session that loses its connection at one message (raises, as a dropped socket does)."""

    def __init__(self, fail_at: int):
        super().__init__()
        self.fail_at = fail_at

    def send(self, outgoing: Outgoing) -> SendResult:
        self.sent.append(outgoing.key.recipient)
        if len(self.sent) == self.fail_at + 1:
            raise ConnectionResetError("connection reset by peer")
        return SendResult(SENT)


def test_a_run_makes_its_claims_durable_a_batch_at_a_time(tmp_path, monkeypatch):
    syncs: list[int] = []
    real = send_ledger.sync_files
    monkeypatch.setattr(send_ledger, "sync_files", lambda paths: (syncs.append(len(paths)), real(paths)))
    results = deliver_batch(_Answers(*[SendResult(SENT)] * 120), _outgoing(120), SendLedger(tmp_path), "run-1")
    assert [r.status for r in results] == ["delivered"] * 120
    assert syncs == [send_ledger.CLAIM_BATCH, send_ledger.CLAIM_BATCH, 120 - 2 * send_ledger.CLAIM_BATCH]
    # Every claim is on disk, exclusive: another run finds them all taken; the run's lock is gone with it.
    assert all(SendLedger(tmp_path).claim(item.key, "run-2").status == "delivered" for item in _outgoing(120))
    assert list((tmp_path / send_ledger.LOCKS).iterdir()) == [] and SendLedger(tmp_path).report_dates() == ["2026-11-23"]


def test_a_transport_error_keeps_the_claim_in_hand_and_releases_the_unsent_ones(tmp_path):
    ledger = SendLedger(tmp_path)
    items = _outgoing(10)
    with pytest.raises(ConnectionResetError):
        deliver_batch(_Failing(fail_at=2), items, ledger, "run-1")
    assert [ledger.entry(i.key).status for i in items[:3]] == ["delivered", "delivered", "unconfirmed"]
    assert [ledger.entry(i.key) for i in items[3:]] == [None] * 7
    # The next run sends only the messages that certainly did not leave, and never the one in doubt.
    again = _Answers(*[SendResult(SENT)] * 7)
    results = deliver_batch(again, _outgoing(10), SendLedger(tmp_path), "run-2")
    assert [r.status for r in results] == ["already_sent"] * 2 + ["unconfirmed"] + ["delivered"] * 7
    assert again.sent == [f"t{i}@example.com" for i in range(3, 10)]


def test_a_live_runs_batch_is_never_taken_over_even_under_the_same_run_id(tmp_path):
    # How the first version of batched claims sent reports twice: a second run took over the live run's
    # unsent batch, and both trusted a mark carrying the same run id.
    items = _outgoing(5)
    first = _Answers(*[SendResult(SENT)] * 5)
    ledger = SendLedger(tmp_path)
    with ledger.claiming(items, "test", key=lambda item: item.key) as claims:
        progress = iter(claims)
        item, existing = next(progress)  # the batch is claimed, the first message marked
        assert existing is None
        second = _Answers()
        results = deliver_batch(second, _outgoing(5), SendLedger(tmp_path), "test")
        assert [r.status for r in results] == ["unconfirmed"] * 5 and second.sent == []
        first.send(item)
        for item, existing in progress:
            assert existing is None
            first.send(item)
    assert first.sent == [f"t{i}@example.com" for i in range(5)]


def test_a_dead_runs_unmarked_batch_is_sent_by_the_next_run_and_a_marked_one_never(tmp_path):
    ledger = SendLedger(tmp_path)
    items = _outgoing(6)
    lock = ledger.claim_lock()
    assert ledger.claim_ahead([i.key for i in items], "run-dead", lock) == [None] * 6
    assert ledger.begin(items[0].key, "run-dead")
    ledger.confirm(items[0].key, "delivered")
    assert ledger.begin(items[1].key, "run-dead")  # handed over when the run died: outcome unknown
    assert [e.status for e in SendLedger(tmp_path).entries("2026-11-23")] == ["delivered"] + ["unconfirmed"] * 5
    lock.close()  # as the kernel does when the process dies (a real SIGKILL: test_smtp.py)
    assert [e.status for e in SendLedger(tmp_path).entries("2026-11-23")] == ["delivered", "unconfirmed"]
    again = _Answers(*[SendResult(SENT)] * 4)
    results = deliver_batch(again, _outgoing(6), SendLedger(tmp_path), "run-2")
    assert [r.status for r in results] == ["already_sent", "unconfirmed"] + ["delivered"] * 4
    assert again.sent == [f"t{i}@example.com" for i in range(2, 6)]


def test_after_a_restart_an_unmarked_batch_claim_stays_unconfirmed(tmp_path):
    # The mark is not synced: a crash of the machine may have lost the mark of a message handed over.
    ledger = SendLedger(tmp_path)
    [item] = _outgoing(1)
    lock = ledger.claim_lock()
    assert ledger.claim_ahead([item.key], "run-1", lock) == [None]
    lock.close()
    [claim] = tmp_path.glob("*/*.claim")
    record = json.loads(claim.read_text())
    assert record["ahead"] == {"lock": lock.name, "boot": send_ledger.BOOT_ID}
    claim.write_text(json.dumps({**record, "ahead": {**record["ahead"], "boot": "an-earlier-boot"}}))
    again = _Answers()
    assert [r.status for r in deliver_batch(again, [item], SendLedger(tmp_path), "run-2")] == ["unconfirmed"]
    assert again.sent == []


def test_an_abandoned_batch_claim_is_taken_over_by_exactly_one_run(tmp_path):
    [item] = _outgoing(1)
    dead = SendLedger(tmp_path)
    lock = dead.claim_lock()
    assert dead.claim_ahead([item.key], "run-dead", lock) == [None]
    lock.close()
    sent, barrier = [], threading.Barrier(6)

    def race(n: int) -> None:
        answers = _Answers(SendResult(SENT))
        barrier.wait()
        deliver_batch(answers, [item], SendLedger(tmp_path), f"run-{n}")
        sent.extend(answers.sent)

    threads = [threading.Thread(target=race, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sent == ["t0@example.com"]
    # The dead run, were it only slow, would find the message taken and not send it.
    assert not dead.begin(item.key, "run-dead")


def test_a_claim_released_after_it_was_found_abandoned_is_not_sent_by_its_taker(tmp_path):
    [item] = _outgoing(1)
    dead = SendLedger(tmp_path)
    lock = dead.claim_lock()
    dead.claim_ahead([item.key], "run-dead", lock)
    lock.close()
    taker, other = SendLedger(tmp_path), SendLedger(tmp_path)
    taker_lock, other_lock = taker.claim_lock(), other.claim_lock()
    assert taker.claim_ahead([item.key], "run-2", taker_lock) == [None]
    SendLedger(tmp_path).release(item.key)  # `costagent resend`, say
    assert other.claim_ahead([item.key], "run-3", other_lock) == [None]
    assert not taker.begin(item.key, "run-2") and other.begin(item.key, "run-3")
    taker_lock.close()
    other_lock.close()
