"""One tick of the weekly schedule, end to end: the scheduler's own iteration (Dagster's daemon code, run
here with the clock at the next Monday tick) queues the weekly plan, and a real daemon (the command the
daemon service runs) launches the queued runs, which write the emails dated that Monday. On both
instance profiles."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster._daemon  # noqa: F401  (first: dagster._scheduler imports it in a cycle)
import pytest
from dagster._cli.workspace.cli_target import workspace_opts_to_load_target
from dagster._core.storage.dagster_run import DagsterRunStatus
from dagster._core.workspace.context import WorkspaceProcessContext
from dagster._scheduler.scheduler import launch_scheduled_runs
from dagster._utils.schedules import cron_string_iterator
from dagster_shared.cli import WorkspaceOpts

from costagent_assets.cli.runner import prepare_instance
from costagent_assets.defs.automation import weekly_cron
from costagent_assets.home import get_home
from costagent_assets.settings import load_settings
from costagent_assets.shipped import shipped_path
from costagent_tests.peers.homes import run_cli
from costagent_tests.peers.services import served, wait_for


@pytest.fixture(params=["embedded", "postgres"])
def profile_home(request, isolated: Path) -> Path:
    return request.getfixturevalue("postgres_home") if request.param == "postgres" else isolated


def test_one_tick_queues_the_weekly_plan_and_the_daemon_sends_its_emails(profile_home: Path):
    assert run_cli("demo", "--accounts", "3", "--history-months", "0") == 0
    assert run_cli("schedule", "on") == 0
    home = get_home(profile_home)
    instance = prepare_instance(home)
    cron = weekly_cron(load_settings(home.settings_path))
    tick = next(cron_string_iterator(datetime.now(UTC).timestamp(), cron, "UTC"))
    target = workspace_opts_to_load_target(WorkspaceOpts(workspace=[str(shipped_path("workspace.yaml"))]), False)
    with WorkspaceProcessContext(instance=instance, version="", read_only=False,
                                 workspace_load_target=target) as context:
        list(launch_scheduled_runs(context, logging.getLogger("test-scheduler"),
                                   (tick + timedelta(seconds=1)).astimezone(UTC), {}))
    queued = [r for r in instance.get_runs() if r.tags.get("dagster/schedule_name") == "weekly_cost_report"]
    assert "weekly_report" in {r.job_name for r in queued}
    assert all(r.status == DagsterRunStatus.QUEUED for r in queued)

    with served(profile_home, "daemon") as daemon:
        wait_for(lambda: all(r.status in (DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE)
                             for r in prepare_instance(home).get_runs()), "the queued runs to finish", daemon, 300)
    runs = prepare_instance(home).get_runs()
    assert all(r.status == DagsterRunStatus.SUCCESS for r in runs), [(r.job_name, r.status) for r in runs]
    outbox = profile_home / "outbox" / tick.date().isoformat()
    assert len(list(outbox.glob("*-team-*.eml"))) == 3
