"""The send ledger and the run lease beside an S3 warehouse (moto's server on loopback): claims created
with If-None-Match, two runners on one bucket sending each email once, a replaced container, and the
lease object taken, refused, expired and taken over with conditional writes."""

from __future__ import annotations

import threading
import time
from collections import Counter

import pytest

from costagent_assets.delivery import SENT, Outgoing, SendResult, deliver_batch
from costagent_assets.resources.s3_ledger import (
    S3LeaseStorage,
    S3SendLedger,
    open_run_lease,
    open_send_ledger,
)
from costagent_assets.resources.s3_warehouse import open_store
from costagent_assets.run_lease import Holder, LeaseHeld, ObjectLease, hold
from costagent_assets.send_ledger import LedgerKey, SendLedger
from costagent_tests.peers.moto_server import WAREHOUSE_BUCKET
from costagent_tests.resources.test_smtp import (
    REPORT_DATE,
    child_sending,
    killed_at_message,
    outgoing,
    send,
    start_child,
)
from costagent_tests.smtp_peer import Recorder, SmtpPeer, make_certs

KEY = LedgerKey.of(REPORT_DATE, "team", "123456789012", "2026-11", "team@example.com")


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory):
    return make_certs(tmp_path_factory.mktemp("certs"))


def s3_ledger(endpoint: str, prefix: str = "prod", legacy=None) -> S3SendLedger:
    return S3SendLedger(open_store(f"s3://{WAREHOUSE_BUCKET}/{prefix}", endpoint, "us-east-1"), legacy=legacy)


def test_claims_are_conditional_objects_beside_the_warehouse(bucket):
    ledger = s3_ledger(bucket)
    assert ledger.claim(KEY, "run-1") is None
    assert ledger.claim(KEY, "run-2").status == "unconfirmed"
    ledger.confirm(KEY, "delivered", detail="250 ok", location="<id@x>")
    # Another host (its own client) sees the same ledger.
    other = S3SendLedger(open_store(f"s3://{WAREHOUSE_BUCKET}/prod", bucket, "us-east-1"))
    seen = other.claim(KEY, "run-3")
    assert (seen.status, seen.run_id, seen.location) == ("delivered", "run-1", "<id@x>")
    assert [e.key for e in other.entries(REPORT_DATE)] == [KEY] and other.report_dates() == [REPORT_DATE]
    keys = [o["Key"] for o in ledger.client.list_objects_v2(Bucket=WAREHOUSE_BUCKET)["Contents"]]
    assert keys == [f"prod/email_ledger/{REPORT_DATE}/{KEY.digest}.claim",
                    f"prod/email_ledger/{REPORT_DATE}/{KEY.digest}.outcome"]
    ledger.release(KEY)
    assert other.entry(KEY) is None and other.claim(KEY, "run-4") is None


def test_racing_claims_on_one_bucket_have_exactly_one_winner(bucket):
    winners, barrier = [], threading.Barrier(6)

    def race(n: int) -> None:
        ledger = s3_ledger(bucket)
        barrier.wait()
        if ledger.claim(KEY, f"run-{n}") is None:
            winners.append(n)

    threads = [threading.Thread(target=race, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(winners) == 1


def test_two_runners_on_one_bucket_send_each_email_once(bucket, certs):
    results: list = []
    with SmtpPeer(certs) as peer:
        def runner() -> None:
            results.extend(send(peer, certs.ca, outgoing(20), s3_ledger(bucket), rate_per_minute=3000.0))

        threads = [threading.Thread(target=runner) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert peer.recorder.by_recipient() == {f"team{i:02d}@example.com": 1 for i in range(20)}
    statuses = [r.status for r in results]
    assert statuses.count("delivered") == 20 and set(statuses) <= {"delivered", "already_sent", "unconfirmed"}


def test_a_replaced_container_sends_nothing_again(bucket, certs, tmp_path):
    first_host = open_send_ledger(f"s3://{WAREHOUSE_BUCKET}/prod", bucket, "us-east-1", str(tmp_path / "a" / "ledger"))
    with SmtpPeer(certs) as peer:
        send(peer, certs.ca, outgoing(5), first_host)
    # The new container has an empty disk; the ledger is in the bucket.
    new_host = open_send_ledger(f"s3://{WAREHOUSE_BUCKET}/prod", bucket, "us-east-1", str(tmp_path / "b" / "ledger"))
    with SmtpPeer(certs) as peer:
        results = send(peer, certs.ca, outgoing(5), new_host)
    assert [r.status for r in results] == ["already_sent"] * 5 and peer.recorder.messages == []


class _Accepting:
    """A transport that accepts everything and counts: stands in for the mail server, not for costagent."""

    def __init__(self) -> None:
        self.sent = 0

    def send(self, item: Outgoing) -> SendResult:
        self.sent += 1
        return SendResult(SENT)


def test_a_free_key_costs_one_request_to_claim_and_one_to_confirm(bucket):
    ledger = s3_ledger(bucket)
    requests: Counter[str] = Counter()
    ledger.client.meta.events.register("before-send.s3.*", lambda request, **_: requests.update([request.method]))
    results = deliver_batch(_Accepting(), outgoing(10), ledger, "run-1")
    assert [r.status for r in results] == ["delivered"] * 10
    assert requests == {"PUT": 20}  # a conditional PUT per claim, a PUT per outcome; nothing read
    assert [e.status for e in s3_ledger(bucket).entries(REPORT_DATE)] == ["delivered"] * 10


def test_a_run_killed_mid_run_on_s3_then_rerun_sends_the_rest_once(bucket, certs):
    recorder = Recorder()
    ledger_code = ("from costagent_assets.resources.s3_ledger import S3SendLedger\n"
                   "from costagent_assets.resources.s3_warehouse import open_store\n"
                   f"ledger = S3SendLedger(open_store('s3://{WAREHOUSE_BUCKET}/prod', {bucket!r}, 'us-east-1'))")
    with SmtpPeer(certs, recorder) as peer:
        # The 5th message is accepted, and its sender dies before it hears so.
        killed_at_message(recorder, start_child(child_sending(peer, certs.ca, 20, ledger_code)), 5)
        # Nothing is claimed ahead on S3: the claims are those of the messages handed over.
        entries = s3_ledger(bucket).entries(REPORT_DATE)
        assert Counter(e.status for e in entries) == {"delivered": 4, "unconfirmed": 1}
        results = send(peer, certs.ca, outgoing(20), s3_ledger(bucket))
    assert [r.status for r in results] == ["already_sent"] * 4 + ["unconfirmed"] + ["delivered"] * 15
    assert recorder.by_recipient() == {f"team{i:02d}@example.com": 1 for i in range(20)}


def test_what_the_host_local_ledger_of_older_versions_holds_still_counts(bucket, tmp_path):
    items = [Outgoing(o.key, o.message, o.html, o.name) for o in outgoing(3)]
    local = SendLedger(tmp_path / "ledger")
    deliver_batch(_Accepting(), items[:2], local, "old-version-run")
    ledger = open_send_ledger(f"s3://{WAREHOUSE_BUCKET}/prod", bucket, "us-east-1", str(tmp_path / "ledger"))
    transport = _Accepting()
    results = deliver_batch(transport, items, ledger, "new-run")
    assert [r.status for r in results] == ["already_sent", "already_sent", "delivered"] and transport.sent == 1


def test_the_lease_object_is_exclusive_renewed_and_released(bucket):
    store = open_store(f"s3://{WAREHOUSE_BUCKET}/prod", bucket, "us-east-1")
    lease = ObjectLease(S3LeaseStorage(store), ttl_seconds=0.6)
    holder = lease.try_acquire("costagent weekly_report 2026-11")  # as another host holding it
    other = ObjectLease(S3LeaseStorage(store), ttl_seconds=0.6)
    with pytest.raises(LeaseHeld, match=r"s3://costagent-test-warehouse/prod/_run_lease.json\): costagent weekly"):
        with hold(other, "second host"):
            pass
    time.sleep(1.0)  # longer than the time to live: only renewals keep it
    assert other.try_acquire("second host") is None and not lease.lost
    assert other.holder().token == holder.token and other.holder().expires > time.time()
    lease.release(holder)
    assert lease.storage.read() is None  # released
    assert open_run_lease(f"s3://{WAREHOUSE_BUCKET}/prod", bucket, "us-east-1").where.endswith("prod/_run_lease.json")


def test_an_expired_lease_is_taken_over_by_exactly_one_run(bucket):
    store = open_store(f"s3://{WAREHOUSE_BUCKET}/prod", bucket, "us-east-1")
    storage = S3LeaseStorage(store)
    dead = Holder("dead-token", "a run whose host died", "host-a", 1, "2026-11-23T07:00:00+00:00", time.time() - 1)
    assert storage.write(dead.to_bytes(), replacing=None) is not None
    winners, barrier = [], threading.Barrier(4)
    leases = [ObjectLease(S3LeaseStorage(store), ttl_seconds=30) for _ in range(4)]

    def take(n: int) -> None:
        barrier.wait()
        if leases[n].try_acquire(f"run {n}") is not None:
            winners.append(n)

    threads = [threading.Thread(target=take, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(winners) == 1
    leases[winners[0]].release(None)
    assert storage.read() is None
