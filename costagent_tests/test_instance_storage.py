"""costagent's batched SQLite event log (instance_storage.py, which overrides private Dagster methods)
stores what Dagster's stock SQLite event log stores for the same runs, and lets go of each run's engine."""

from __future__ import annotations

from collections import Counter
from datetime import date
from pathlib import Path

import dagster as dg

from costagent_assets.cli.runner import prepare_instance
from costagent_assets.defs.automation import REPORT_ASSETS
from costagent_assets.home import get_home
from costagent_assets.instance_storage import BatchedSqliteEventLogStorage
from costagent_tests.peers.homes import run_cli

STOCK = """telemetry:
  enabled: false
run_queue:
  max_concurrent_runs: 1
"""


def _stored(home: Path) -> dict:
    instance = prepare_instance(get_home(home))
    runs = sorted(instance.get_runs(), key=lambda r: r.job_name)
    events = {r.job_name: Counter(e.dagster_event.event_type_value for e in instance.all_logs(r.run_id)
                                  if e.dagster_event) for r in runs}
    partitions = {a: sorted(instance.get_materialized_partitions(dg.AssetKey(a))) for a in REPORT_ASSETS}
    latest = {a: instance.get_latest_materialization_event(dg.AssetKey(a)).asset_materialization.partition
              for a in REPORT_ASSETS}
    return {"events": events, "partitions": partitions, "latest": latest}


def test_batched_event_log_stores_what_the_stock_one_stores(tmp_path: Path):
    stock_home = tmp_path / "stock"
    (stock_home / "dagster").mkdir(parents=True)
    (stock_home / "dagster" / "dagster.yaml").write_text(STOCK)
    batched_home = tmp_path / "batched"
    for home in (stock_home, batched_home):
        assert run_cli("--home", str(home), "demo", "--accounts", "3", "--history-months", "1",
                       "--as-of", "2026-11-23") == 0
    assert isinstance(prepare_instance(get_home(batched_home)).event_log_storage, BatchedSqliteEventLogStorage)
    assert not isinstance(prepare_instance(get_home(stock_home)).event_log_storage, BatchedSqliteEventLogStorage)
    stock, batched = _stored(stock_home), _stored(batched_home)
    assert batched == stock
    assert sum(stock["events"]["weekly_report"].values()) > 50


def test_a_finished_run_leaves_no_engine_open(isolated: Path):
    from costagent_assets.cli.runner import run_weekly, sync_account_partitions
    from costagent_assets.demo import organisation as demo
    from costagent_assets.teams.model import Team
    from costagent_assets.teams.registry import save_registry

    home = get_home(isolated).ensure()
    teams = [Team.from_dict(t) for t in demo.demo_teams(2, seed=7)]
    save_registry(home.teams_path, teams)
    instance = prepare_instance(home)
    sync_account_partitions(instance, [t.aws_account_id for t in teams])
    outcomes = run_weekly(instance, date(2026, 11, 23), [t.aws_account_id for t in teams])
    assert outcomes and all(o.success for o in outcomes)
    storage = instance.event_log_storage
    assert not {o.run_id for o in outcomes} & set(storage._engines), "a finished run's engine is still open"


def test_each_batched_event_gets_its_own_id_and_index_tags(tmp_path: Path):
    # The batch is inserted with one executemany per database: the index's ids come back in order, so each
    # materialization's indexed tags (its partition's dimensions) belong to that materialization.
    assert run_cli("--home", str(tmp_path), "demo", "--accounts", "3", "--history-months", "0",
                   "--as-of", "2026-11-23") == 0
    instance = prepare_instance(get_home(tmp_path))
    storage = instance.event_log_storage
    for asset in REPORT_ASSETS:
        records = instance.fetch_materializations(dg.AssetKey(asset), limit=1000).records
        assert len(records) >= 3 and len({r.storage_id for r in records}) == len(records)
        for record in records:
            [tags] = storage.get_event_tags_for_asset(dg.AssetKey(asset), filter_event_id=record.storage_id)
            account, month = record.asset_materialization.partition.split("|")
            assert tags["dagster/partition/account"] == account and tags["dagster/partition/month"] == month
            assert record.event_log_entry.run_id in {r.run_id for r in instance.get_runs()}


def _database_layout(path: Path) -> tuple:
    import sqlite3

    with sqlite3.connect(path) as conn:
        return (conn.execute("pragma journal_mode").fetchone(), conn.execute("select * from alembic_version").fetchall(),
                sorted(conn.execute("select type, name, sql from sqlite_master").fetchall(), key=str))


def test_new_databases_are_laid_out_as_dagster_does_with_the_migration_scripts_read_once(
    tmp_path: Path, monkeypatch
):
    # Dagster reads its ~90 migration scripts twice for every database it opens, and each run has its own.
    from alembic.script import ScriptDirectory
    from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage

    from costagent_assets import instance_storage

    reads = []
    load = ScriptDirectory._load_revisions
    monkeypatch.setattr(ScriptDirectory, "_load_revisions", lambda self: reads.append(1) or load(self))
    instance_storage._migration_scripts.cache_clear()
    stock = SqliteEventLogStorage(str(tmp_path / "stock"))
    batched = BatchedSqliteEventLogStorage(str(tmp_path / "batched"))
    reads.clear()
    for run_id in ("run-a", "run-b", "run-c"):
        assert batched.get_logs_for_run(run_id) == []
    assert len(reads) <= 1
    stock.get_logs_for_run("run-a")
    for name in ("index", "run-a"):
        assert _database_layout(tmp_path / "batched" / f"{name}.db") == _database_layout(tmp_path / "stock" / f"{name}.db")
    # A database that is already stamped is used as it is, scripts not read again.
    reads.clear()
    assert BatchedSqliteEventLogStorage(str(tmp_path / "batched")).get_logs_for_run("run-a") == []
    assert reads == []
    batched.dispose()
    stock.dispose()
