"""SMTP delivery against aiosmtpd on loopback: STARTTLS with a test CA, AUTH, pacing, 4xx and 5xx replies."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import dagster as dg
import pytest

from costagent_assets.defs.resources import build_resources
from costagent_assets.delivery import Outgoing, deliver_batch
from costagent_assets.home import Home
from costagent_assets.reporting import RenderedEmail, build_message
from costagent_assets.resources.smtp import SmtpDelivery, SmtpError
from costagent_assets.send_ledger import LedgerKey, SendLedger
from costagent_assets.settings import Settings
from costagent_tests.smtp_peer import PASSWORD, USER, Recorder, SmtpPeer, make_certs

REPORT_DATE = "2026-11-23"
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory):
    return make_certs(tmp_path_factory.mktemp("certs"))


def delivery(peer: SmtpPeer, ca: Path, **overrides) -> SmtpDelivery:
    config = {
        "host": "127.0.0.1",
        "port": peer.port,
        "username": USER,
        "password": PASSWORD,
        "sender": "costagent@example.com",
        "ca_bundle": str(ca),
        "rate_per_minute": 6000.0,
        "retry_base_seconds": 0.01,
        "timeout_seconds": 10.0,
    }
    return SmtpDelivery(**{**config, **overrides})


def outgoing(n: int, *, cc: bool = False) -> list[Outgoing]:
    items = []
    for i in range(n):
        to = f"team{i:02d}@example.com"
        rendered = RenderedEmail(f"report {i}", f"<p>team {i}</p>", f"team {i}")
        message = build_message(rendered, sender="costagent@example.com", to=to,
                                cc=[f"lead{i:02d}@example.com"] if cc else ())
        key = LedgerKey.of(REPORT_DATE, "team", f"{100000000000 + i}", "2026-11", to)
        items.append(Outgoing(key, message, rendered.html, name=f"team-{i}"))
    return items


def send(peer: SmtpPeer, ca: Path, items, ledger: SendLedger, **overrides):
    with delivery(peer, ca, **overrides).session(REPORT_DATE) as session:
        return deliver_batch(session, items, ledger, run_id="test")


def test_delivers_over_verified_tls_with_auth_and_to_plus_cc(certs, tmp_path):
    with SmtpPeer(certs) as peer:
        results = send(peer, certs.ca, outgoing(5, cc=True), SendLedger(tmp_path / "ledger"))
    assert [r.status for r in results] == ["delivered"] * 5
    got = peer.recorder.messages
    assert len(got) == 5 and all(m.tls and m.authenticated for m in got)
    assert got[2].rcpt_tos == ["team02@example.com", "lead02@example.com"]
    assert got[2].message["To"] == "team02@example.com" and got[2].message["Cc"] == "lead02@example.com"
    assert peer.recorder.auth_attempts and all(over_tls for _, over_tls in peer.recorder.auth_attempts)
    # A rerun with the same ledger sends nothing.
    with SmtpPeer(certs) as again:
        results = send(again, certs.ca, outgoing(5, cc=True), SendLedger(tmp_path / "ledger"))
    assert [r.status for r in results] == ["already_sent"] * 5 and again.recorder.messages == []


def test_paced_over_one_connection(certs, tmp_path):
    with SmtpPeer(certs) as peer:
        start = time.monotonic()
        send(peer, certs.ca, outgoing(6), SendLedger(tmp_path / "ledger"), rate_per_minute=1200.0)
        elapsed = time.monotonic() - start
    # 1,200 a minute is one every 50 ms: six messages need at least five intervals.
    assert elapsed >= 5 * 0.05
    assert len({m.session_id for m in peer.recorder.messages}) == 1


def test_4xx_replies_are_retried_with_backoff(certs, tmp_path):
    recorder = Recorder(
        rcpt_replies={"team01@example.com": ["451 4.3.0 try again later", "452 4.2.2 mailbox busy", "250 OK"]},
        data_replies={"team03@example.com": ["451 4.7.1 greylisted"]},
    )
    with SmtpPeer(certs, recorder) as peer:
        results = send(peer, certs.ca, outgoing(5), SendLedger(tmp_path / "ledger"))
    assert [r.status for r in results] == ["delivered"] * 5
    assert recorder.rcpt_attempts["team01@example.com"] == 3
    assert recorder.rcpt_attempts["team03@example.com"] == 2
    assert recorder.by_recipient() == {f"team{i:02d}@example.com": 1 for i in range(5)}


def test_4xx_until_the_last_attempt_is_deferred_and_retried_by_the_next_run(certs, tmp_path):
    ledger = SendLedger(tmp_path / "ledger")
    recorder = Recorder(rcpt_replies={"team00@example.com": ["450 4.2.1 mailbox unavailable"]})
    with SmtpPeer(certs, recorder) as peer:
        results = send(peer, certs.ca, outgoing(2), ledger, retry_attempts=3)
    assert [r.status for r in results] == ["deferred", "delivered"]
    assert recorder.rcpt_attempts["team00@example.com"] == 3 and "450 4.2.1" in results[0].detail
    assert ledger.entry(results[0].key) is None  # released: it certainly was not sent
    with SmtpPeer(certs) as peer:
        results = send(peer, certs.ca, outgoing(2), ledger)
    assert [r.status for r in results] == ["delivered", "already_sent"]


def test_5xx_for_one_recipient_is_recorded_and_the_others_are_delivered(certs, tmp_path):
    ledger = SendLedger(tmp_path / "ledger")
    recorder = Recorder(rcpt_replies={"team02@example.com": ["550 5.1.1 no such user"]})
    with SmtpPeer(certs, recorder) as peer:
        results = send(peer, certs.ca, outgoing(5), ledger)
    assert [r.status for r in results] == ["delivered", "delivered", "failed", "delivered", "delivered"]
    assert recorder.rcpt_attempts["team02@example.com"] == 1  # not retried
    assert "team02@example.com" not in recorder.by_recipient() and len(recorder.messages) == 4
    entry = ledger.entry(results[2].key)
    assert entry.status == "failed" and "550 5.1.1 no such user" in entry.detail
    # The next run does not retry a permanent failure either; it reports it.
    with SmtpPeer(certs, recorder) as peer:
        results = send(peer, certs.ca, outgoing(5), ledger)
    assert [r.status for r in results].count("failed_earlier") == 1
    assert recorder.rcpt_attempts["team02@example.com"] == 1 and len(recorder.messages) == 4


def test_5xx_for_a_cc_still_delivers_to_the_team(certs, tmp_path):
    recorder = Recorder(rcpt_replies={"lead01@example.com": ["550 5.1.1 gone"]})
    with SmtpPeer(certs, recorder) as peer:
        results = send(peer, certs.ca, outgoing(2, cc=True), SendLedger(tmp_path / "ledger"))
    assert [r.status for r in results] == ["delivered", "delivered"]
    assert "lead01@example.com: 550 5.1.1 gone" in results[1].detail
    assert recorder.messages[1].rcpt_tos == ["team01@example.com"]


def test_untrusted_self_signed_certificate_fails_and_nothing_is_sent(certs, tmp_path):
    rogue = make_certs(tmp_path / "rogue", self_signed=True)
    ledger = SendLedger(tmp_path / "ledger")
    with SmtpPeer(rogue) as peer:
        with pytest.raises(SmtpError, match="TLS .* failed, nothing was sent"):
            send(peer, certs.ca, outgoing(3), ledger)
    assert peer.recorder.messages == [] and peer.recorder.auth_attempts == []
    assert list(ledger) == []


def test_a_server_without_starttls_is_refused(certs, tmp_path):
    with SmtpPeer(None, starttls=False) as peer:
        with pytest.raises(SmtpError, match="does not offer STARTTLS"):
            send(peer, certs.ca, outgoing(1), SendLedger(tmp_path / "ledger"))
    assert peer.recorder.messages == [] and peer.recorder.auth_attempts == []


def test_wrong_password_is_a_clear_error_without_the_password(certs, tmp_path):
    with SmtpPeer(certs) as peer:
        with pytest.raises(SmtpError) as caught:
            send(peer, certs.ca, outgoing(1), SendLedger(tmp_path / "ledger"), password="wrong-password")
    assert "login as 'costagent' refused" in str(caught.value) and "wrong-password" not in str(caught.value)
    assert peer.recorder.messages == []


def test_two_runs_at_once_send_each_report_once(certs, tmp_path):
    ledger_root = tmp_path / "ledger"
    with SmtpPeer(certs) as peer:
        results: list = []

        def run() -> None:
            results.extend(send(peer, certs.ca, outgoing(20), SendLedger(ledger_root), rate_per_minute=3000.0))

        threads = [threading.Thread(target=run) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert peer.recorder.by_recipient() == {f"team{i:02d}@example.com": 1 for i in range(20)}
    statuses = [r.status for r in results]
    assert statuses.count("delivered") == 20 and len(statuses) == 40
    # The losing run saw each report as sent by the other, or as still in flight (unconfirmed).
    assert set(statuses) <= {"delivered", "already_sent", "unconfirmed"}


def test_email_mode_smtp_binds_the_smtp_resource_from_environment_variables(tmp_path, monkeypatch):
    monkeypatch.setenv("SMTP_PORT", "2525")
    settings = Settings(email_mode="smtp", smtp_rate_per_minute=12.0)
    bound = build_resources(Home(tmp_path), settings)["email_delivery"]
    assert isinstance(bound, SmtpDelivery) and bound.rate_per_minute == 12.0
    # Secrets stay environment variables until a run reads them; unset optional ones are not bound.
    assert isinstance(bound.host, dg.EnvVar) and isinstance(bound.sender, dg.EnvVar)
    assert type(bound.port).__name__ == "IntEnvVar" and bound.port.env_var_name == "SMTP_PORT"
    assert bound.username is None and bound.password is None


def test_a_421_reply_reconnects_and_retries(certs, tmp_path):
    recorder = Recorder(rcpt_replies={"team01@example.com": ["421 4.7.0 too many connections, try later", "250"]})
    with SmtpPeer(certs, recorder) as peer:
        results = send(peer, certs.ca, outgoing(3), SendLedger(tmp_path / "ledger"))
    assert [r.status for r in results] == ["delivered"] * 3
    assert recorder.by_recipient() == {f"team{i:02d}@example.com": 1 for i in range(3)}
    assert len({m.session_id for m in recorder.messages}) == 2  # the server closed the first connection


def test_email_mode_smtp_without_its_variables_is_refused_before_a_run(tmp_path, capsys):
    from costagent_assets.cli import main as cli

    home = tmp_path / "home"
    assert cli.main(["--home", str(home), "config", "set", "email_mode", "smtp"]) == 0
    assert cli.main(["--home", str(home), "demo", "--accounts", "2", "--as-of", "2026-11-23"]) == 2
    assert "email_mode=smtp needs the environment variable(s) SMTP_HOST, SENDER_EMAIL" in capsys.readouterr().err


def test_a_4xx_on_the_to_address_with_the_cc_accepted_is_retried_for_the_to_alone(certs, tmp_path):
    ledger = SendLedger(tmp_path / "ledger")
    recorder = Recorder(rcpt_replies={"team01@example.com": ["452 4.2.2 Mailbox full"]})
    with SmtpPeer(certs, recorder) as peer:
        results = send(peer, certs.ca, outgoing(3, cc=True), ledger, retry_attempts=2)
    assert [r.status for r in results] == ["delivered", "deferred", "delivered"]
    assert "accepted by lead01@example.com" in results[1].detail and "452 4.2.2 Mailbox full" in results[1].detail
    entry = ledger.entry(results[1].key)
    assert (entry.status, entry.pending) == ("deferred", ("team01@example.com",))
    # The next run: the mailbox has room again. Only the To address gets it; the cc already has it.
    with SmtpPeer(certs) as peer:
        results = send(peer, certs.ca, outgoing(3, cc=True), ledger)
    assert [r.status for r in results] == ["already_sent", "delivered", "already_sent"]
    assert [m.rcpt_tos for m in peer.recorder.messages] == [["team01@example.com"]]
    assert ledger.entry(results[1].key).status == "delivered"
    # And a third run sends nothing.
    with SmtpPeer(certs) as peer:
        results = send(peer, certs.ca, outgoing(3, cc=True), ledger)
    assert [r.status for r in results] == ["already_sent"] * 3 and peer.recorder.messages == []


def test_a_4xx_on_a_cc_is_retried_for_the_cc_alone(certs, tmp_path):
    ledger = SendLedger(tmp_path / "ledger")
    recorder = Recorder(rcpt_replies={"lead00@example.com": ["451 4.3.0 try later"]})
    with SmtpPeer(certs, recorder) as peer:
        results = send(peer, certs.ca, outgoing(1, cc=True), ledger, retry_attempts=2)
    assert [r.status for r in results] == ["deferred"] and recorder.by_recipient() == {"team00@example.com": 1}
    with SmtpPeer(certs) as peer:
        results = send(peer, certs.ca, outgoing(1, cc=True), ledger)
    assert [r.status for r in results] == ["delivered"] and peer.recorder.by_recipient() == {"lead00@example.com": 1}


def test_two_runs_retrying_the_same_pending_recipient_send_it_once(certs, tmp_path):
    ledger_root = tmp_path / "ledger"
    recorder = Recorder(rcpt_replies={"team00@example.com": ["452 4.2.2 Mailbox full"]})
    with SmtpPeer(certs, recorder) as peer:
        send(peer, certs.ca, outgoing(1, cc=True), SendLedger(ledger_root), retry_attempts=1)
    results: list = []
    with SmtpPeer(certs) as peer:
        threads = [threading.Thread(target=lambda: results.extend(
            send(peer, certs.ca, outgoing(1, cc=True), SendLedger(ledger_root)))) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert peer.recorder.by_recipient() == {"team00@example.com": 1}
    # The other run found the retry claimed (still in flight: unconfirmed) or already done.
    assert sorted(r.status for r in results) in (["delivered", "unconfirmed"], ["already_sent", "delivered"])


def test_the_server_going_away_mid_run_defers_the_rest_and_the_next_run_sends_them_once(certs, tmp_path):
    ledger = SendLedger(tmp_path / "ledger")
    recorder = Recorder()
    peer = SmtpPeer(certs, recorder)

    stopped = threading.Event()

    def die() -> None:
        peer.controller.stop()
        stopped.set()

    def stop_after(count: int) -> None:
        if count == 4:  # the 4th message is acknowledged, then the server dies before the 5th
            threading.Timer(0.2, die).start()

    recorder.on_message = stop_after
    peer.controller.start()
    try:
        results = send(peer, certs.ca, outgoing(12), ledger, rate_per_minute=60.0, retry_attempts=2)
    finally:
        if not stopped.wait(5):
            peer.controller.stop()
    statuses = [r.status for r in results]
    assert statuses == ["delivered"] * 4 + ["deferred"] * 8
    assert all(ledger.entry(r.key) is None for r in results[4:])  # nobody has them: released
    with SmtpPeer(certs) as again:
        results = send(again, certs.ca, outgoing(12), ledger)
    assert [r.status for r in results] == ["already_sent"] * 4 + ["delivered"] * 8
    both = recorder.by_recipient() + again.recorder.by_recipient()
    assert both == {f"team{i:02d}@example.com": 1 for i in range(12)}


def test_a_451_on_data_that_persists_is_deferred_then_delivered(certs, tmp_path):
    ledger = SendLedger(tmp_path / "ledger")
    recorder = Recorder(data_replies={"team01@example.com": ["451 4.7.500 Server busy"] * 3})
    with SmtpPeer(certs, recorder) as peer:
        results = send(peer, certs.ca, outgoing(3), ledger, retry_attempts=3)
    assert [r.status for r in results] == ["delivered", "deferred", "delivered"]
    assert ledger.entry(results[1].key) is None  # nobody accepted it: released, sent whole next time
    with SmtpPeer(certs) as peer:
        results = send(peer, certs.ca, outgoing(3), ledger)
    assert [r.status for r in results] == ["already_sent", "delivered", "already_sent"]


def start_child(code: str) -> subprocess.Popen:
    """``python -c code`` in a process of its own (so that it can be SIGKILLed), printing to a pipe."""
    return subprocess.Popen([sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": str(REPO)},
                            stdout=subprocess.PIPE, text=True)


def child_sending(peer: SmtpPeer, ca: Path, n: int, ledger: str) -> str:
    """The code of a run in another process sending ``outgoing(n)`` to ``peer`` through the ledger that the
    code ``ledger`` assigns to ``ledger``."""
    return (
        "from pathlib import Path\n"
        "from costagent_assets.delivery import deliver_batch\n"
        "from costagent_assets.resources.smtp import SmtpDelivery\n"
        "from costagent_tests.resources.test_smtp import REPORT_DATE, outgoing\n"
        f"{ledger}\n"
        f"config = {delivery(peer, ca).model_dump()!r}\n"
        "with SmtpDelivery(**config).session(REPORT_DATE) as session:\n"
        f"    deliver_batch(session, outgoing({n}), ledger, run_id='doomed')\n"
    )


def local_ledger_code(root: Path) -> str:
    return f"from costagent_assets.send_ledger import SendLedger\nledger = SendLedger(Path({str(root)!r}))"


def killed_at_message(recorder: Recorder, proc: subprocess.Popen, count: int) -> None:
    """SIGKILL ``proc`` as the server accepts its ``count``-th message (before the sender hears so)."""
    def kill_at(n: int) -> None:
        if n == count:
            os.kill(proc.pid, signal.SIGKILL)

    recorder.on_message = kill_at
    try:
        assert proc.wait(timeout=120) == -signal.SIGKILL
    finally:
        recorder.on_message = None
        proc.kill()


def test_a_run_killed_after_claiming_a_batch_leaves_it_to_the_next_run_which_sends_each_once(certs, tmp_path):
    root = tmp_path / "ledger"
    # Stopped between its batch's claims being durable and its first send: a point the mail server cannot
    # see, so the run claims the batch itself (the ledger calls deliver_batch makes) and waits to be killed.
    proc = start_child(
        "import time\nfrom pathlib import Path\n"
        "from costagent_assets.send_ledger import SendLedger\n"
        "from costagent_tests.resources.test_smtp import outgoing\n"
        f"ledger = SendLedger(Path({str(root)!r}))\n"
        "assert ledger.claim_ahead([i.key for i in outgoing(20)], 'doomed', ledger.claim_lock()) == [None] * 20\n"
        "print('claimed', flush=True)\ntime.sleep(600)\n"
    )
    try:
        assert proc.stdout.readline().strip() == "claimed"
        with SmtpPeer(certs) as peer:
            # While the claimer lives its batch is its own: another run sends none of it.
            results = send(peer, certs.ca, outgoing(20), SendLedger(root))
        assert [r.status for r in results] == ["unconfirmed"] * 20 and peer.recorder.messages == []
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL
    finally:
        proc.kill()
        proc.wait()
    assert SendLedger(root).entries(REPORT_DATE) == []  # claimed by a dead run that sent nothing: nothing sent
    with SmtpPeer(certs) as peer:
        results = send(peer, certs.ca, outgoing(20), SendLedger(root))
        assert [r.status for r in results] == ["delivered"] * 20
        again = send(peer, certs.ca, outgoing(20), SendLedger(root))
    assert [r.status for r in again] == ["already_sent"] * 20
    assert peer.recorder.by_recipient() == {f"team{i:02d}@example.com": 1 for i in range(20)}


def test_a_run_killed_mid_batch_then_rerun_sends_the_rest_once_and_the_sent_never_again(certs, tmp_path):
    root = tmp_path / "ledger"
    recorder = Recorder()
    with SmtpPeer(certs, recorder) as peer:
        # The 5th message of a 20-message batch is accepted, and its sender dies before it hears so.
        proc = start_child(child_sending(peer, certs.ca, 20, local_ledger_code(root)))
        killed_at_message(recorder, proc, 5)
        assert Counter(e.status for e in SendLedger(root).entries(REPORT_DATE)) == {"delivered": 4, "unconfirmed": 1}
        results = send(peer, certs.ca, outgoing(20), SendLedger(root))
    assert [r.status for r in results] == ["already_sent"] * 4 + ["unconfirmed"] + ["delivered"] * 15
    # Every report arrived exactly once: the one in doubt too (the killed run's), and none twice.
    assert recorder.by_recipient() == {f"team{i:02d}@example.com": 1 for i in range(20)}


def test_two_runs_taking_over_a_killed_runs_batch_send_each_report_once(certs, tmp_path):
    root = tmp_path / "ledger"
    recorder = Recorder()
    with SmtpPeer(certs, recorder) as peer:
        proc = start_child(child_sending(peer, certs.ca, 30, local_ledger_code(root)))
        killed_at_message(recorder, proc, 3)
        results: list = []

        def run() -> None:
            results.extend(send(peer, certs.ca, outgoing(30), SendLedger(root), rate_per_minute=3000.0))

        threads = [threading.Thread(target=run) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert recorder.by_recipient() == {f"team{i:02d}@example.com": 1 for i in range(30)}
    assert Counter(r.status for r in results)["delivered"] == 27
