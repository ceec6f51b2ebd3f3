"""A failed run emails the admins once, through the same delivery and send ledger as the reports: the
sensor (built with the definitions) evaluated on a real failed run of the weekly job."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import dagster as dg

from costagent_assets.cli.runner import prepare_instance, run_weekly
from costagent_assets.defs.resources import build_resources
from costagent_assets.home import get_home
from costagent_assets.settings import load_settings
from costagent_tests.peers.homes import run_cli


def test_a_failed_run_emails_the_admins_once_with_its_link_and_error(isolated: Path):
    assert run_cli("demo", "--accounts", "2", "--history-months", "0", "--as-of", "2026-11-23") == 0
    broken = isolated / "focus-export.csv"
    broken.write_text("this is not a FOCUS export\n")
    assert run_cli("config", "set", "source", "focus") == 0
    assert run_cli("config", "set", "focus_path", str(broken)) == 0
    assert run_cli("config", "set", "ui_url", "https://dagster.example.com") == 0

    home = get_home(isolated)
    instance = prepare_instance(home)
    (outcome, *_) = run_weekly(instance, date(2026, 11, 24), [])
    assert not outcome.success
    run = instance.get_run_by_id(outcome.run_id)
    failure = next(e.dagster_event for e in instance.all_logs(run.run_id)
                   if e.dagster_event and e.dagster_event.event_type == dg.DagsterEventType.RUN_FAILURE)

    from costagent_assets.definitions import defs

    sensor = defs().get_sensor_def("run_failure_email")
    settings = load_settings(home.settings_path)
    resources = build_resources(home, settings)
    for _ in range(2):  # evaluated twice (a daemon restart with an old cursor): still one email
        context = dg.build_run_status_sensor_context(
            sensor_name="run_failure_email", dagster_instance=instance, dagster_run=run, dagster_event=failure,
            resources={"email_delivery": resources["email_delivery"], "warehouse": resources["warehouse"]},
        ).for_run_failure()
        sensor(context)

    notices = list((isolated / "outbox").rglob(f"run-failure-{run.run_id[:8]}*.eml"))
    assert len(notices) == 1
    text = notices[0].read_text(encoding="utf-8")
    assert f"https://dagster.example.com/runs/{run.run_id}" in text
    assert "raw_costs" in text and "finops@demo.costagent.example" in text
    assert f"the {run.job_name} run {run.run_id[:8]} failed" in text


def test_with_no_admin_address_a_failure_notice_is_not_mailed_to_the_sender(
    isolated: Path, tmp_path: Path, monkeypatch
):
    from costagent_tests.smtp_peer import SmtpPeer, make_certs

    assert run_cli("demo", "--accounts", "2", "--history-months", "0", "--as-of", "2026-11-23") == 0
    broken = isolated / "focus-export.csv"
    broken.write_text("this is not a FOCUS export\n")
    certs = make_certs(tmp_path / "certs")
    for key, value in (("source", "focus"), ("focus_path", str(broken)), ("email_mode", "smtp"),
                       ("smtp_ca_bundle", str(certs.ca)), ("global_admin_emails", "")):
        assert run_cli("config", "set", key, value) == 0
    home = get_home(isolated)
    instance = prepare_instance(home)
    with SmtpPeer(certs) as peer:
        for name, value in peer.env().items():
            monkeypatch.setenv(name, value)
        (outcome, *_) = run_weekly(instance, date(2026, 11, 24), [])
        assert not outcome.success
        run = instance.get_run_by_id(outcome.run_id)
        failure = next(e.dagster_event for e in instance.all_logs(run.run_id)
                       if e.dagster_event and e.dagster_event.event_type == dg.DagsterEventType.RUN_FAILURE)
        from costagent_assets.definitions import defs

        resources = build_resources(home, load_settings(home.settings_path))
        context = dg.build_run_status_sensor_context(
            sensor_name="run_failure_email", dagster_instance=instance, dagster_run=run, dagster_event=failure,
            resources={"email_delivery": resources["email_delivery"], "warehouse": resources["warehouse"]},
        ).for_run_failure()
        defs().get_sensor_def("run_failure_email")(context)
    assert peer.recorder.messages == []
