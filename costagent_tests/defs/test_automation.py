"""The weekly plan and the schedule's tick: as few runs as possible, idempotent run keys."""

from __future__ import annotations

from datetime import UTC, date, datetime

import dagster as dg
import pytest

from costagent_assets.cli.runner import prepare_instance, sync_account_partitions
from costagent_assets.defs.automation import build_weekly_schedule, plan_weekly_runs
from costagent_assets.defs.resources import build_resources
from costagent_assets.home import get_home
from costagent_assets.run_parameters import AS_OF_TAG
from costagent_assets.settings import Settings

ACCOUNTS = ["000000000001", "000000000002", "000000000003"]
START, END = "dagster/asset_partition_range_start", "dagster/asset_partition_range_end"


def test_mid_month_with_history_is_one_run_over_every_account():
    (run,) = plan_weekly_runs(date(2026, 11, 23), ACCOUNTS, previous_month_missing=False)
    assert run.job_name == "weekly_report" and run.month == "2026-11"
    assert run.tags[START] == "000000000001|2026-11" and run.tags[END] == "000000000003|2026-11"
    assert run.tags[AS_OF_TAG] == "2026-11-23"


def test_missing_previous_month_adds_a_history_run_first():
    runs = plan_weekly_runs(date(2026, 11, 23), ACCOUNTS, previous_month_missing=True)
    assert [(r.job_name, r.month) for r in runs] == [("cost_history", "2026-10"), ("weekly_report", "2026-11")]


@pytest.mark.parametrize(
    ("as_of", "expected"),
    [
        # On the 1st the newest complete day is the 30th: the report is about all of November.
        (date(2026, 12, 1), [("weekly_report", "2026-11")]),
        # Early in a month, last month's charges may still change: refresh it, without emails.
        (date(2026, 12, 3), [("cost_history", "2026-11"), ("weekly_report", "2026-12")]),
        (date(2026, 12, 14), [("weekly_report", "2026-12")]),
    ],
)
def test_month_boundaries(as_of, expected):
    runs = plan_weekly_runs(as_of, ACCOUNTS, previous_month_missing=False)
    assert [(r.job_name, r.month) for r in runs] == expected


def test_run_keys_are_stable_per_tick_and_distinct_between_ticks():
    a = plan_weekly_runs(date(2026, 11, 23), ACCOUNTS, True)
    b = plan_weekly_runs(date(2026, 11, 23), ACCOUNTS, True)
    c = plan_weekly_runs(date(2026, 11, 30), ACCOUNTS, True)
    assert [r.run_key for r in a] == [r.run_key for r in b]
    assert not {r.run_key for r in a} & {r.run_key for r in c}


def test_no_accounts_no_runs():
    assert plan_weekly_runs(date(2026, 11, 23), [], True) == []


def test_schedule_tick_requests_ranged_runs_over_the_registered_accounts(isolated):
    instance = prepare_instance(get_home())
    schedule = build_weekly_schedule(Settings())
    tick = datetime(2026, 11, 23, 9, tzinfo=UTC)
    resources = {"warehouse": build_resources(get_home(), Settings())["warehouse"]}
    with dg.build_schedule_context(instance=instance, scheduled_execution_time=tick, resources=resources) as context:
        skipped = schedule.evaluate_tick(context)
    assert not skipped.run_requests and "No teams" in (skipped.skip_message or "")

    sync_account_partitions(instance, ACCOUNTS)
    with dg.build_schedule_context(instance=instance, scheduled_execution_time=tick, resources=resources) as context:
        result = schedule.evaluate_tick(context)
    requests = result.run_requests
    # Nothing materialized yet, so the previous month is loaded first.
    assert [r.job_name for r in requests] == ["cost_history", "weekly_report"]
    assert requests[1].tags[START] == "000000000001|2026-11"
    assert requests[1].tags[END] == "000000000003|2026-11"
    assert len({r.run_key for r in requests}) == 2


def test_held_reports_are_retried_daily_with_their_report_date(isolated):
    import polars as pl

    from costagent_assets.defs.automation import build_held_reports_schedule
    from costagent_assets.home import Home
    from costagent_tests.peers.stages import write_table

    home = Home(get_home().root).ensure()
    instance = prepare_instance(home)
    sync_account_partitions(instance, ACCOUNTS)
    schedule = build_held_reports_schedule(Settings())
    resources = {"warehouse": build_resources(home, Settings())["warehouse"]}
    tick = datetime(2026, 11, 25, 9, tzinfo=UTC)

    def evaluate():
        with dg.build_schedule_context(instance=instance, scheduled_execution_time=tick, resources=resources) as ctx:
            return schedule.evaluate_tick(ctx)

    assert "No team report is waiting" in (evaluate().skip_message or "")
    rows = [{"month": "2026-11", "account_id": a, "report_date": date(2026, 11, 23), "kind": "team",
             "status": "held" if a == ACCOUNTS[1] else "delivered"} for a in ACCOUNTS]
    write_table(home, "emails", pl.DataFrame(rows))
    [request] = evaluate().run_requests
    assert request.job_name == "weekly_report" and request.tags[AS_OF_TAG] == "2026-11-23"
    assert request.tags[START] == "000000000001|2026-11" and request.tags[END] == "000000000003|2026-11"
    assert request.run_key == "held-2026-11-23-retry-2026-11-25"
