"""The production instance profile on a real PostgreSQL server (a throwaway cluster on loopback): the
weekly job, a backfill, the schedule's on/off state and the daemon (the command its service runs), as on
the embedded SQLite profile."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from costagent_assets.cli.runner import prepare_instance
from costagent_assets.cli.schedule import schedule_state
from costagent_assets.home import get_home
from costagent_tests.peers.homes import run_cli
from costagent_tests.peers.services import served, wait_for


def test_weekly_job_backfill_and_schedule_on_postgres(postgres_home: Path, capsys):
    assert run_cli("instance", "show") == 0
    shown = capsys.readouterr().out
    assert "PostgresRunStorage" in shown and "PostgresEventLogStorage" in shown and "PostgresScheduleStorage" in shown
    events = prepare_instance(get_home(postgres_home)).event_log_storage
    # The profile's event log keeps a pooled connection (stock: a new connection per event outside the webserver).
    assert type(events._engine.pool).__name__ == "QueuePool"

    assert run_cli("demo", "--accounts", "4", "--history-months", "1", "--as-of", "2026-11-23") == 0
    outbox = postgres_home / "outbox" / "2026-11-23"
    assert len(list(outbox.glob("*-team-*.eml"))) == 4
    instance = prepare_instance(get_home(postgres_home))
    runs = instance.get_runs()
    assert {r.job_name for r in runs} == {"cost_history", "weekly_report"} and all(r.is_success for r in runs)

    assert run_cli("backfill", "--from", "2026-06", "--to", "2026-08") == 0
    done = prepare_instance(get_home(postgres_home)).get_materialized_partitions(dg.AssetKey("raw_costs"))
    assert {k.split("|")[1] for k in done} >= {"2026-06", "2026-07", "2026-08", "2026-09", "2026-10", "2026-11"}

    assert run_cli("schedule", "on") == 0
    with served(postgres_home, "daemon") as daemon:
        wait_for(lambda: schedule_state(prepare_instance(get_home(postgres_home))).will_tick,
                 "the schedule on with a live daemon", daemon)
    assert run_cli("schedule", "off") == 0
    assert not schedule_state(prepare_instance(get_home(postgres_home))).running


def test_a_missing_postgres_variable_is_named(postgres_home: Path, monkeypatch, capsys):
    monkeypatch.delenv("DAGSTER_POSTGRES_PASSWORD")
    monkeypatch.delenv("DAGSTER_POSTGRES_HOST")
    assert run_cli("status") == 2
    err = capsys.readouterr().err
    assert "DAGSTER_POSTGRES_HOST" in err and "not set" in err and "dagster.yaml" in err
