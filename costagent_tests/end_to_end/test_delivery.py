"""Delivery as an operator goes live: the demo in outbox mode, then `email_mode smtp` and the same week's
run (every email delivered once), a rerun (nothing), `costagent resend`, and `costagent status`."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import boto3
import pytest

from costagent_assets.cli import main as cli
from costagent_assets.home import Home
from costagent_assets.run_lease import FileLease
from costagent_assets.send_ledger import SendLedger
from costagent_assets.teams.registry import load_registry
from costagent_tests.end_to_end.test_emails import ADMIN, AS_OF, REPO, configure, run_cli, team_and_admin
from costagent_tests.peers.homes import DEMO_AS_OF, copy_home, demo_accounts, environment
from costagent_tests.peers.moto_server import WAREHOUSE_BUCKET as BUCKET
from costagent_tests.peers.token_server import CLIENT_ID, CLIENT_SECRET, TENANT, TokenServer
from costagent_tests.smtp_peer import Recorder, SmtpPeer, make_certs

assert AS_OF == DEMO_AS_OF.isoformat()  # the shared demo home's week is the week these tests send


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory):
    return make_certs(tmp_path_factory.mktemp("certs"))


@pytest.fixture(scope="module")
def live(demo_home: Path, tmp_path_factory: pytest.TempPathFactory, certs):
    """The go-live week: a copy of the demo home (outbox mode, this week already written to the outbox),
    switched to SMTP and run for the same week. Returns the home, what the server got, the exit code and
    the command's output."""
    home = copy_home(demo_home, tmp_path_factory.mktemp("live") / "home")
    configure(home, certs.ca)
    with SmtpPeer(certs) as peer:
        with pytest.MonkeyPatch.context() as mp:
            outputs = []
            mp.setattr("builtins.print", lambda *a, **k: outputs.append(" ".join(map(str, a))))
            code = run_cli(home, peer, "run", "--as-of", AS_OF)
    return home, peer.recorder, code, "\n".join(outputs)


def test_switching_from_the_outbox_to_smtp_delivers_the_week_once(live):
    home, recorder, code, output = live
    teams = load_registry(home / "teams.json")
    got, admins = team_and_admin(recorder)
    assert code == 0
    assert len(teams) == 84 and got == Counter({t.team_email: 1 for t in teams})
    assert len(admins) == 1 and len(recorder.messages) == 85
    assert "emails (smtp): 85 sent, 0 already sent, 0 deferred, 0 unconfirmed, 0 failed" in output
    # Both channels are in the ledger, each once per report.
    ledger = SendLedger(home / "warehouse" / "email_ledger")
    assert Counter(e.key.channel for e in ledger.entries(AS_OF)) == {"outbox": 85, "mail": 85}


def test_a_rerun_after_going_live_delivers_nothing(live, certs, capsys):
    home, *_ = live
    with SmtpPeer(certs) as peer:
        assert run_cli(home, peer, "run", "--as-of", AS_OF) == 0
    assert peer.recorder.messages == []
    assert "emails (smtp): 0 sent, 85 already sent, 0 deferred, 0 unconfirmed, 0 failed" in capsys.readouterr().out


def test_status_shows_the_last_runs_delivery(live, capsys):
    home, *_ = live
    capsys.readouterr()
    assert cli.main(["--home", str(home), "status"]) == 0
    out = capsys.readouterr().out
    # The go-live run (85 sent), or the rerun after it (85 already sent) when that test ran first.
    line = re.search(r"emails:      complete \(smtp\), run \w{8}: (\d+) sent, (\d+) already sent, "
                     r"0 deferred, 0 unconfirmed, 0 failed", out)
    assert line is not None and int(line[1]) + int(line[2]) == 85


def test_resend_says_what_it_will_do_and_sends_only_that_team_once(live, certs, capsys):
    home, *_ = live
    team = load_registry(home / "teams.json")[3]
    capsys.readouterr()
    # Without --yes it only says what it would do, and changes nothing.
    assert cli.main(["--home", str(home), "resend", "--week", AS_OF, "--team", team.aws_account_id]) == 0
    plan = capsys.readouterr().out
    assert f"would re-send 1 email of the week of {AS_OF} by mail" in plan and team.team_email in plan
    with SmtpPeer(certs) as peer:
        assert run_cli(home, peer, "resend", "--week", AS_OF, "--team", team.aws_account_id, "--yes") == 0
    assert [m.message["To"] for m in peer.recorder.messages] == [team.team_email]
    assert peer.recorder.messages[0].message["To"] != ADMIN


def test_two_runs_at_once_one_refused_by_name_and_no_email_twice(demo_home, tmp_path, certs, capsys):
    home = copy_home(demo_home, tmp_path / "home")
    configure(home, certs.ca)
    lease = FileLease(home / "warehouse" / ".run_lease")
    with SmtpPeer(certs) as peer:
        env = {**os.environ, **peer.env(), "PYTHONPATH": str(REPO), "COSTAGENT_HOME": str(home),
               "DAGSTER_HOME": str(home / "dagster")}
        first = subprocess.Popen(
            [sys.executable, "-m", "costagent_assets.cli.main", "--home", str(home), "run", "--as-of", AS_OF],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        try:
            deadline = time.monotonic() + 120
            while (lease.holder() is None or lease.holder().pid != first.pid) and time.monotonic() < deadline:
                time.sleep(0.2)
            assert lease.holder().pid == first.pid
            capsys.readouterr()
            assert run_cli(home, peer, "run", "--as-of", AS_OF) == 4
            refusal = capsys.readouterr().err
            assert f"another run holds this installation's run lease ({home / 'warehouse' / '.run_lease'})" in refusal
            assert f"costagent weekly_report 2026-11 (pid {first.pid} on " in refusal
            output, _ = first.communicate(timeout=600)
        finally:
            first.kill()
    assert first.returncode == 0, output
    got, admins = team_and_admin(peer.recorder)
    assert got == Counter({t.team_email: 1 for t in load_registry(home / "teams.json")}) and len(admins) == 1
    assert "emails (smtp): 85 sent, 0 already sent, 0 deferred, 0 unconfirmed, 0 failed" in output


def test_a_replaced_container_with_the_warehouse_on_s3_sends_nothing_again(bucket, tmp_path, certs):
    settings = (("warehouse_uri", f"s3://{BUCKET}/prod"), ("s3_endpoint_url", bucket), ("s3_region", "us-east-1"))
    first = tmp_path / "container-1"
    configure(first, certs.ca)
    for key, value in settings:
        assert cli.main(["--home", str(first), "config", "set", key, value]) == 0
    with SmtpPeer(certs) as peer:
        assert run_cli(first, peer, "demo", "--accounts", "4", "--history-months", "0", "--as-of", AS_OF) == 0
    assert len(peer.recorder.messages) == 5
    # The replacement starts from its image and configuration: settings and teams, nothing else on disk.
    second = tmp_path / "container-2"
    second.mkdir()
    for name in ("settings.json", "teams.json"):
        shutil.copy(first / name, second / name)
    with SmtpPeer(certs) as peer:
        assert run_cli(second, peer, "run", "--as-of", AS_OF) == 0
    assert peer.recorder.messages == []
    s3 = boto3.client("s3", endpoint_url=bucket, region_name="us-east-1")
    claims = [o["Key"] for p in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix="prod/email_ledger/")
              for o in p.get("Contents", []) if o["Key"].endswith(".claim")]
    assert len(claims) == 5 and not (second / "email_ledger").exists()


def test_a_run_with_an_undelivered_email_is_partial_and_the_admins_hear_of_it_once(tmp_path, certs, capsys):
    home = tmp_path / "home"
    configure(home, certs.ca)
    full = demo_accounts(4)[1]["team_email"]  # this team's mailbox is full for two runs
    recorder = Recorder(rcpt_replies={full: ["452 4.2.2 Mailbox full"]})
    with SmtpPeer(certs, recorder) as peer:
        assert run_cli(home, peer, "demo", "--accounts", "4", "--history-months", "0", "--as-of", AS_OF) == 3
        out = capsys.readouterr().out
        assert "PARTIAL" in out and "emails (smtp): 4 sent, 0 already sent, 1 deferred, 0 unconfirmed, 0 failed" in out
        assert cli.main(["--home", str(home), "status"]) == 0
        status = capsys.readouterr().out
        assert "emails:      partial (smtp), run " in status and "1 deferred" in status
        account = demo_accounts(4)[1]["aws_account_id"]
        assert f"team {account} to {full}: deferred" in status  # which one
        # The admin report of this run was delivered and lists it: no separate notice.
        admin_text = team_and_admin(recorder)[1][0].message.get_body(("plain",)).get_content()
        assert full in admin_text
        # Rerun, still full: the admin report was sent before, so the admins get the short notice, once.
        assert run_cli(home, peer, "run", "--as-of", AS_OF) == 3
        assert run_cli(home, peer, "run", "--as-of", AS_OF) == 3
    notices = [m for m in recorder.messages if "not delivered" in m.message["Subject"]]
    assert len(notices) == 1 and notices[0].message["To"] == ADMIN
    text = notices[0].message.get_body(("plain",)).get_content()
    assert f"to {full}: not accepted yet (temporary errors)" in text and "452 4.2.2 Mailbox full" in text
    # The mailbox has room again: the next run delivers it, and only it.
    with SmtpPeer(certs) as peer:
        assert run_cli(home, peer, "run", "--as-of", AS_OF) == 0
        assert "emails (smtp): 1 sent, 4 already sent, 0 deferred, 0 unconfirmed, 0 failed" in capsys.readouterr().out
    assert [m.message["To"] for m in peer.recorder.messages] == [full]
    everyone = recorder.by_recipient() + peer.recorder.by_recipient()
    teams = load_registry(home / "teams.json")
    assert all(everyone[t.team_email] == 1 for t in teams) and all(everyone[c] == 1 for t in teams for c in t.cc_emails)


def test_a_run_launched_outside_the_cli_fails_at_start_while_the_lease_is_held(demo_home, tmp_path):
    """What the schedule and the UI launch: the weekly job itself, with no CLI around it."""
    from costagent_assets.cli.runner import _definitions, prepare_instance
    from costagent_assets.defs.automation import plan_weekly_runs

    home = copy_home(demo_home, tmp_path / "home")
    with environment():
        instance = prepare_instance(Home(home))
        try:
            planned = plan_weekly_runs(DEMO_AS_OF, list(instance.get_dynamic_partitions("account")), False)[0]
            job = _definitions(str(home)).resolve_job_def(planned.job_name)
            lease = FileLease(home / "warehouse" / ".run_lease")
            holder = lease.try_acquire("costagent weekly_report 2026-11")  # another process's CLI run
            try:
                result = job.execute_in_process(instance=instance, tags=planned.tags, raise_on_error=False)
            finally:
                lease.release(holder)
            failure = next(e for e in result.all_events if e.is_failure)
            assert not result.success and "another run holds this installation's run lease" in str(failure.event_specific_data)
            assert result.get_asset_materialization_events() == []  # nothing was written
            result = job.execute_in_process(instance=instance, tags=planned.tags, raise_on_error=False)
            assert result.success  # free again: the same launch runs
        finally:
            instance.dispose()


def test_office365_style_xoauth2_delivers_and_a_wrong_secret_fails_the_run_without_printing_it(
        tmp_path, certs, capfd):
    home = tmp_path / "home"
    configure(home, certs.ca)
    with TokenServer() as tokens:
        for key, value in (("smtp_auth", "xoauth2"), ("smtp_oauth_authority", tokens.authority)):
            assert cli.main(["--home", str(home), "config", "set", key, value]) == 0
        oauth = {"SMTP_USER": None, "SMTP_PASSWORD": None, "SMTP_OAUTH_TENANT": TENANT,
                 "SMTP_OAUTH_CLIENT_ID": CLIENT_ID}
        with SmtpPeer(certs, Recorder(oauth_tokens=tokens.issued)) as peer:
            with environment(**oauth, SMTP_OAUTH_CLIENT_SECRET="not-the-secret-value"):
                assert run_cli(home, peer, "demo", "--accounts", "2", "--history-months", "0", "--as-of", AS_OF) == 1
            printed = capfd.readouterr()
            assert "not-the-secret-value" not in printed.out + printed.err
            assert "AADSTS7000215" in printed.err and peer.recorder.messages == []
            with environment(**oauth, SMTP_OAUTH_CLIENT_SECRET=CLIENT_SECRET):
                assert run_cli(home, peer, "run", "--as-of", AS_OF) == 0
            assert CLIENT_SECRET not in "".join(capfd.readouterr())
    assert len(peer.recorder.messages) == 3 and all(m.authenticated for m in peer.recorder.messages)
    assert {m for m, _ in peer.recorder.auth_attempts} == {"XOAUTH2"}
    assert len(tokens.requests) == 2  # the refused one, then one token for the whole run
