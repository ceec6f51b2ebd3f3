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
