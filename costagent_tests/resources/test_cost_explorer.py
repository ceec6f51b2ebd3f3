"""AWS Cost Explorer as the cost source, against moto's server on loopback (pagination and throttling)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import polars as pl
import pytest

from costagent_assets.demo import organisation as demo
from costagent_assets.resources.cost_explorer import CostExplorerCostSource, results_frame
from costagent_assets.resources.cost_source import CostSourceError
from costagent_tests.peers.homes import demo_accounts, prepare_home, raw_costs_metadata, run_weekly, sql
from costagent_tests.peers.moto_server import MotoPeer, cost_and_usage_pages

AS_OF = date(2026, 11, 23)
TEAMS = demo_accounts(84)
ACCOUNTS = [t["aws_account_id"] for t in TEAMS]
OUTSIDER = "999999999999"  # in the organisation, not in the registry


@pytest.fixture
def moto(monkeypatch: pytest.MonkeyPatch):
    server = MotoPeer()
    server.start()
    monkeypatch.setenv("AWS_ENDPOINT_URL", server.url)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def org_costs() -> pl.DataFrame:
    costs = demo.generate_costs(ACCOUNTS, date(2026, 10, 1), date(2026, 11, 22), seed=42, as_of=AS_OF)
    outsider = costs.filter(pl.col("account_id") == ACCOUNTS[0]).with_columns(pl.lit(OUTSIDER).alias("account_id"))
    return pl.concat([costs, outsider]).group_by(["date", "account_id", "service"]).agg(pl.col("cost_usd").sum())


def month_totals(costs: pl.DataFrame) -> dict[tuple[str, str], float]:
    frame = costs.with_columns(pl.col("date").dt.strftime("%Y-%m").alias("month"))
    return {(a, m): usd for a, m, usd in frame.group_by(["account_id", "month"]).agg(pl.col("cost_usd").sum()).iter_rows()}


def test_results_frame_reads_groups_and_skips_other_metrics():
    page = {"ResultsByTime": [{"TimePeriod": {"Start": "2026-11-01", "End": "2026-11-02"}, "Groups": [
        {"Keys": ["012345678901", "Amazon S3"], "Metrics": {"AmortizedCost": {"Amount": "-1.25", "Unit": "USD"}}},
        {"Keys": ["012345678901", "AWS Lambda"], "Metrics": {"UnblendedCost": {"Amount": "3", "Unit": "USD"}}},
    ]}]}
    frame = results_frame([page], "AmortizedCost")
    assert frame.to_dicts() == [{"date": date(2026, 11, 1), "account_id": "012345678901", "service": "Amazon S3",
                                 "cost_usd": -1.25, "currency": "USD"}]


def test_every_page_is_followed_and_counted(moto: MotoPeer, org_costs: pl.DataFrame):
    moto.queue_cost_and_usage(cost_and_usage_pages(org_costs, date(2026, 11, 1), date(2026, 11, 22), "AmortizedCost", 4))
    got = CostExplorerCostSource(metric="AmortizedCost").fetch(ACCOUNTS, date(2026, 11, 1), date(2026, 11, 22), AS_OF)
    assert got.requests == 4 and got.cost_usd == pytest.approx(0.04) and moto.ce_calls == ["ok"] * 4
    assert got.costs["account_id"].n_unique() == 84 and got.costs["date"].n_unique() == 22
    assert got.unregistered["account_id"].to_list() == [OUTSIDER]


def test_throttling_is_retried_in_standard_mode(moto: MotoPeer, org_costs: pl.DataFrame):
    moto.queue_cost_and_usage(cost_and_usage_pages(org_costs, date(2026, 11, 1), date(2026, 11, 3), "UnblendedCost", 1))
    moto.throttle_ce = 2
    got = CostExplorerCostSource().fetch(ACCOUNTS, date(2026, 11, 1), date(2026, 11, 3), AS_OF)
    assert moto.ce_calls == ["throttled", "throttled", "ok"]
    assert got.requests == 1 and got.retries == 2 and got.costs["account_id"].n_unique() == 84


def test_throttling_past_the_retries_fails_clearly(moto: MotoPeer):
    moto.throttle_ce = 10
    with pytest.raises(CostSourceError, match="LimitExceededException"):
        CostExplorerCostSource(max_retries=1).fetch(ACCOUNTS, date(2026, 11, 1), date(2026, 11, 3), AS_OF)
    assert moto.ce_calls == ["throttled", "throttled"]


def test_weekly_run_from_cost_explorer(
    isolated: Path, moto: MotoPeer, org_costs: pl.DataFrame, monkeypatch: pytest.MonkeyPatch
):
    # The weekly run loads October first (never loaded), then November; three pages each.
    moto.queue_cost_and_usage(cost_and_usage_pages(org_costs, date(2026, 10, 1), date(2026, 10, 31), "NetAmortizedCost", 3)
                              + cost_and_usage_pages(org_costs, date(2026, 11, 1), date(2026, 11, 22), "NetAmortizedCost", 3))
    moto.throttle_ce = 1
    prepare_home(isolated, TEAMS, source="cost_explorer", cost_explorer_metric="NetAmortizedCost")
    assert run_weekly(isolated, AS_OF) == 0
    assert moto.ce_calls == ["throttled"] + ["ok"] * 6
    stored = sql(isolated, "select account_id, month, sum(cost_usd) as usd from raw_costs group by all")
    expected = month_totals(org_costs)
    assert len(stored) == 84 * 2
    for row in stored:
        assert row["usd"] == pytest.approx(expected[(row["account_id"], row["month"])], abs=1e-6)
    usage = sql(isolated, "select month, requests, retries, cost_usd, unregistered_accounts from source_usage order by month")
    assert usage == [
        {"month": "2026-10", "requests": 3, "retries": 1, "cost_usd": 0.03, "unregistered_accounts": OUTSIDER},
        {"month": "2026-11", "requests": 3, "retries": 0, "cost_usd": 0.03, "unregistered_accounts": OUTSIDER},
    ]
    metadata = raw_costs_metadata(isolated)
    assert sorted(m["source_cost_usd"] for m in metadata) == [0.03, 0.03]
    assert all(m["source_requests"] == 3 and m["unregistered_accounts"] == 1 for m in metadata)
