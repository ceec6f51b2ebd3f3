"""Operator commands end to end over SMTP (aiosmtpd on loopback): one team on demand with `run --team`,
sent once and recorded like the weekly send, and no admin address meaning no admin email and a warning."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from costagent_assets.cli import main as cli
from costagent_assets.send_ledger import SendLedger
from costagent_assets.teams.registry import load_registry
from costagent_tests.end_to_end.test_emails import AS_OF, configure, run_cli
from costagent_tests.peers.homes import copy_home
from costagent_tests.smtp_peer import SmtpPeer, make_certs


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory):
    return make_certs(tmp_path_factory.mktemp("certs"))


def test_run_team_sends_one_team_once_and_no_admin_address_means_no_admin_email(
    demo_home: Path, tmp_path: Path, certs, capsys: pytest.CaptureFixture[str]
):
    home = copy_home(demo_home, tmp_path / "home")
    configure(home, certs.ca)
    assert cli.main(["--home", str(home), "config", "set", "global_admin_emails", ""]) == 0
    teams = load_registry(home / "teams.json")
    team = teams[5]

    with SmtpPeer(certs) as peer:
        assert run_cli(home, peer, "run", "--as-of", AS_OF, "--team", team.aws_account_id) == 0
    assert [m.message["To"] for m in peer.recorder.messages] == [team.team_email]
    err = capsys.readouterr().err
    assert "global_admin_emails is empty" in err
    # Recorded in the send ledger as the weekly send records it: the mail channel, this report date.
    ledger = SendLedger(home / "warehouse" / "email_ledger")
    mailed = [e.key for e in ledger.entries(AS_OF) if e.key.channel == "mail"]
    assert [(k.kind, k.subject) for k in mailed] == [("team", team.aws_account_id)]

    with SmtpPeer(certs) as peer:  # a second call sends nothing
        assert run_cli(home, peer, "run", "--as-of", AS_OF, "--team", team.aws_account_id) == 0
    assert peer.recorder.messages == []

    with SmtpPeer(certs) as peer:  # the week's run sends the others, and nothing to any admin
        assert run_cli(home, peer, "run", "--as-of", AS_OF) == 0
    got = Counter(m.message["To"] for m in peer.recorder.messages)
    assert got == Counter({t.team_email: 1 for t in teams if t is not team})
    assert all(m.message["From"] not in m.message["To"] for m in peer.recorder.messages)


def test_run_team_refuses_an_account_not_in_the_registry(demo_home: Path, certs, capsys):
    with SmtpPeer(certs) as peer:
        assert run_cli(demo_home, peer, "run", "--team", "999999999999") == 2
    assert "999999999999 is not in the teams registry" in capsys.readouterr().err
