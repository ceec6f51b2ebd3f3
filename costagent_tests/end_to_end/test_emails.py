"""The emails asset by SMTP, end to end: the demo organisation's weekly run against aiosmtpd on loopback
(STARTTLS with a test CA), a rerun, and a run killed halfway through sending."""

from __future__ import annotations

import csv
import io
import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import dagster as dg
import pytest

from costagent_assets.cli import main as cli
from costagent_assets.defs import run_metadata
from costagent_assets.send_ledger import SendLedger
from costagent_assets.teams.registry import load_registry
from costagent_tests.smtp_peer import Recorder, SmtpPeer, make_certs

AS_OF = "2026-11-23"
ADMIN = "finops@example.com"
REPO = Path(__file__).resolve().parents[2]


def configure(home: Path, ca: Path) -> None:
    for key, value in (
        ("email_mode", "smtp"),
        ("smtp_ca_bundle", str(ca)),
        ("smtp_rate_per_minute", "6000"),
        ("global_admin_emails", ADMIN),
        ("datadog_dashboard_url", "https://app.datadoghq.com/dashboard/abc-123?tpl_var_account={account_id}"),
    ):
        assert cli.main(["--home", str(home), "config", "set", key, value]) == 0


def run_cli(home: Path, peer: SmtpPeer, *args: str) -> int:
    """``costagent`` in-process with the SMTP variables set only while it runs."""
    with pytest.MonkeyPatch.context() as mp:
        for name, value in peer.env().items():
            mp.setenv(name, value)
        for name in ("COSTAGENT_HOME", "DAGSTER_HOME"):
            mp.setenv(name, os.environ.get(name, str(home)))
        return cli.main(["--home", str(home), *args])


def team_and_admin(recorder: Recorder) -> tuple[Counter, list]:
    teams = Counter(m.message["To"] for m in recorder.messages if m.message["To"] != ADMIN)
    admins = [m for m in recorder.messages if m.message["To"] == ADMIN]
    return teams, admins


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory):
    return make_certs(tmp_path_factory.mktemp("certs"))


@pytest.fixture(scope="module")
def sent(tmp_path_factory: pytest.TempPathFactory, certs):
    """The demo's weekly run by SMTP: the home and what the server received."""
    home = tmp_path_factory.mktemp("smtp") / "home"
    configure(home, certs.ca)
    with SmtpPeer(certs) as peer:
        assert run_cli(home, peer, "demo", "--as-of", AS_OF) == 0
    return home, peer.recorder


def test_84_team_emails_and_the_admin_email_are_delivered(sent):
    home, recorder = sent
    teams = load_registry(home / "teams.json")
    got, admins = team_and_admin(recorder)
    assert len(teams) == 84 and got == Counter({t.team_email: 1 for t in teams})
    assert len(admins) == 1 and len(recorder.messages) == 85
    assert all(m.tls and m.authenticated for m in recorder.messages)
    for m in recorder.messages:
        team = next((t for t in teams if t.team_email == m.message["To"]), None)
        if team is not None:  # its own address and cc, nobody else
            assert m.rcpt_tos == [team.team_email, *team.cc_emails]
            html = m.message.get_body(("html",)).get_content()
            assert f"tpl_var_account={team.aws_account_id}" in html and "Monthly trend" in html
    admin = admins[0].message
    text = admin.get_body(("plain",)).get_content()
    assert "84 of 84" in text and "COST OF THIS RUN" in text and "Source API calls" in text
    attachment = next(admin.iter_attachments())
    assert attachment.get_filename() == "costagent-2026-11-accounts.csv"
    rows = list(csv.DictReader(io.StringIO(attachment.get_content().lstrip("\ufeff"))))
    assert len(rows) == 84 and {r["email_status"] for r in rows} == {"delivered"}
    assert {r["aws_account_id"] for r in rows} == {t.aws_account_id for t in teams}


def test_the_ui_shows_previews_of_the_emails(sent):
    home, _ = sent
    instance = dg.DagsterInstance.from_config(str(home / "dagster"))
    try:
        metadata = run_metadata.latest_metadata(instance, "emails")
    finally:
        instance.dispose()
    assert "ORGANISATION COST REPORT" in metadata["preview_admin"].value
    assert "WEEKLY COST REPORT" in metadata["preview_team"].value
    assert metadata["team_delivered"].value == 84 and metadata["admin_status"].value == "delivered"


def test_a_rerun_delivers_nothing(sent, certs, capsys: pytest.CaptureFixture[str]):
    home, _ = sent
    with SmtpPeer(certs) as peer:
        assert run_cli(home, peer, "run", "--as-of", AS_OF) == 0
    assert peer.recorder.messages == []
    capsys.readouterr()
    assert cli.main(["--home", str(home), "sql", "select status, count(*) as n from emails group by 1",
                     "--format", "csv"]) == 0
    assert capsys.readouterr().out.splitlines()[1:] == ["already_sent,84"]


def test_a_run_killed_halfway_then_rerun_delivers_the_rest_once(tmp_path, certs):
    home = tmp_path / "killed"
    configure(home, certs.ca)
    recorder = Recorder()
    with SmtpPeer(certs, recorder) as peer:
        env = {**os.environ, **peer.env(), "PYTHONPATH": str(REPO), "COSTAGENT_HOME": str(home),
               "DAGSTER_HOME": str(home / "dagster")}
        proc = subprocess.Popen(
            [sys.executable, "-m", "costagent_assets.cli.main", "--home", str(home), "demo", "--as-of", AS_OF],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )

        # The 40th message is accepted by the server, and the sender dies before it hears so:
        # exactly the "crash between acceptance and the ledger write" case.
        def kill_at(count: int) -> None:
            if count == 40:
                os.kill(proc.pid, signal.SIGKILL)

        recorder.on_message = kill_at
        assert proc.wait(timeout=300) == -signal.SIGKILL
        recorder.on_message = None
        assert len(recorder.messages) == 40
        ledger = SendLedger(home / "warehouse" / "email_ledger")
        assert Counter(e.status for e in ledger.entries(AS_OF)) == {"delivered": 39, "unconfirmed": 1}

        # 3: the run finished, but one email's outcome is unknown, so the week is only partly delivered.
        assert run_cli(home, peer, "run", "--as-of", AS_OF) == 3

    teams = load_registry(home / "teams.json")
    got, admins = team_and_admin(recorder)
    assert got == Counter({t.team_email: 1 for t in teams})  # all 84, none twice
    assert len(admins) == 1
    text = admins[0].message.get_body(("plain",)).get_content()
    assert "83 of 84 delivered" in text and "outcome unknown" in text
    assert Counter(e.status for e in ledger.entries(AS_OF)) == {"delivered": 84, "unconfirmed": 1}


def test_an_untrusted_certificate_fails_the_run_and_sends_nothing(tmp_path, certs):
    home = tmp_path / "rogue"
    configure(home, certs.ca)
    rogue = make_certs(tmp_path / "rogue-certs", self_signed=True)
    with SmtpPeer(rogue) as peer:
        assert run_cli(home, peer, "demo", "--as-of", AS_OF) == 1
    assert peer.recorder.messages == [] and peer.recorder.auth_attempts == []
    assert list(SendLedger(home / "warehouse" / "email_ledger")) == []
