"""AWS Cost Explorer as the cost source, against moto's server on loopback (pagination and throttling)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import polars as pl
import pytest

from costagent_assets.demo import organisation as demo
from costagent_assets.resources.cost_explorer import (
    CostExplorerCostSource,
    region_of_usage_type,
    results_frame,
)
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
    # Answers another module queued and did not consume never reach these tests: each test queues its own,
    # and queueing first drops moto's earlier queue and remembered answers (MotoPeer.queue_cost_and_usage).
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
    prepare_home(isolated, TEAMS, source="cost_explorer", cost_explorer_metric="NetAmortizedCost",
                 cost_explorer_usage_types="false")
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


# One account whose EC2 moved on two usage lines, 1-22 November against 1-22 October: m5.large ran 150 hours a
# day instead of 100 at $0.12 instead of $0.10 (usage +$110, rate +$66), and m5.xlarge appeared at 20 hours a
# day for $0.20 (mix +$88); S3 stayed flat. Change: +$264.00, all of it EC2's.
EC2, S3 = "Amazon Elastic Compute Cloud - Compute", "Amazon Simple Storage Service"
LINES = {  # (service, usage type, unit) -> (October hours/day, price), (November hours/day, price)
    (EC2, "USE1-BoxUsage:m5.large", "Hrs"): ((100.0, 0.10), (150.0, 0.12)),
    (EC2, "USE1-BoxUsage:m5.xlarge", "Hrs"): ((0.0, 0.20), (20.0, 0.20)),
    (S3, "USE1-TimedStorage-ByteHrs", "GB-Mo"): ((1000.0, 0.005), (1000.0, 0.005)),
}


def usage_answers(account: str, start: date, end: date, metric: str = "UnblendedCost") -> list[dict]:
    """GetCostAndUsage answers as the source asks them: by account and service, then each service (in name
    order) by account and usage type with UsageQuantity."""
    days = [date.fromordinal(d) for d in range(start.toordinal(), end.toordinal() + 1)]
    october = start.month == 10

    def lines(service=None):
        for (svc, usage_type, unit), (before, after) in LINES.items():
            qty, price = before if october else after
            if qty and service in (None, svc):
                yield svc, usage_type, unit, qty, round(qty * price, 2)

    def answer(groups):
        return {"ResultsByTime": [{"TimePeriod": {"Start": d.isoformat(), "End": date.fromordinal(d.toordinal() + 1)
                                                  .isoformat()}, "Total": {}, "Groups": groups, "Estimated": False}
                                  for d in days], "DimensionValueAttributes": []}

    by_service: dict[str, float] = {}
    for svc, _, _, _, usd in lines():
        by_service[svc] = by_service.get(svc, 0.0) + usd
    main = answer([{"Keys": [account, svc], "Metrics": {metric: {"Amount": repr(usd), "Unit": "USD"}}}
                   for svc, usd in sorted(by_service.items())])
    details = [answer([{"Keys": [account, usage_type], "Metrics": {
        metric: {"Amount": repr(usd), "Unit": "USD"}, "UsageQuantity": {"Amount": repr(qty), "Unit": unit}}}
        for _, usage_type, unit, qty, usd in lines(svc)]) for svc in sorted(by_service)]
    return [main, *details]


def test_usage_types_and_quantities_split_the_change_exactly(
    isolated: Path, moto: MotoPeer, capsys: pytest.CaptureFixture[str]
):
    team = TEAMS[0]
    account = team["aws_account_id"]
    moto.queue_cost_and_usage(usage_answers(account, date(2026, 10, 1), date(2026, 10, 31))
                              + usage_answers(account, date(2026, 11, 1), date(2026, 11, 22)))
    prepare_home(isolated, [team], source="cost_explorer")
    assert run_weekly(isolated, AS_OF) == 0
    # One request per month by service, one per service by usage type: 3 a month, counted and billed.
    usage = sql(isolated, "select month, requests, cost_usd from source_usage order by month")
    assert usage == [{"month": "2026-10", "requests": 3, "cost_usd": 0.03},
                     {"month": "2026-11", "requests": 3, "cost_usd": 0.03}]
    # The region comes from the usage type's prefix (USE1 is us-east-1).
    stored = sql(isolated, "select usage_type, region, usage_unit, sum(usage_quantity) as qty from raw_costs "
                           "where month = '2026-11' group by all order by usage_type")
    assert stored == [
        {"usage_type": "USE1-BoxUsage:m5.large", "region": "us-east-1", "usage_unit": "Hrs", "qty": 3300.0},
        {"usage_type": "USE1-BoxUsage:m5.xlarge", "region": "us-east-1", "usage_unit": "Hrs", "qty": 440.0},
        {"usage_type": "USE1-TimedStorage-ByteHrs", "region": "us-east-1", "usage_unit": "GB-Mo", "qty": 22000.0}]
    [row] = sql(isolated, "select impact_usd, usage_change_usd, rate_change_usd, mix_change_usd, drivers "
                          f"from anomalies where month = '2026-11' and service = '{EC2}'")
    # The daily detector reports the step of 1 November against its usual day: m5.large's hours and price both
    # rose (usage, rate), m5.xlarge is new (mix); the three add up to the anomaly's $ impact to the cent.
    assert (row["usage_change_usd"], row["rate_change_usd"], row["mix_change_usd"]) == (63.0, 63.0, 84.0)
    assert round(row["usage_change_usd"] + row["rate_change_usd"] + row["mix_change_usd"], 2) == row["impact_usd"]
    assert [(d["usage_type"], d["region"], d["usage_usd"], d["rate_usd"], d["mix_usd"]) for d in row["drivers"]] == [
        ("USE1-BoxUsage:m5.large", "us-east-1", 63.0, 63.0, 0.0),
        ("USE1-BoxUsage:m5.xlarge", "us-east-1", 0.0, 0.0, 84.0)]
    assert round(sum(d["change_usd"] for d in row["drivers"]), 2) == row["impact_usd"]
    # The team's email names the usage type behind the rise in what to do about it.
    capsys.readouterr()
    from costagent_assets.cli import main as cli

    assert cli.main(["--home", str(isolated), "preview", "team", account]) == 0
    text = capsys.readouterr().out
    assert f"Review the rise in {EC2} (USE1-BoxUsage:m5." in text
    # And beside the alert, in words: $84 + $63 + $63 is the step's $210.00 over its usual days, per usage type.
    assert ("     Why, compared with usual days: new kinds of usage +$84.00, more usage +$63.00, higher prices +$63.00\n"
            "       USE1-BoxUsage:m5.large, us-east-1: more usage +$63.00, higher prices +$63.00\n"
            "       USE1-BoxUsage:m5.xlarge, us-east-1: new kinds of usage +$84.00\n") in text


@pytest.mark.parametrize(("usage_type", "service", "region"), [
    ("EUW2-BoxUsage:m5.large", "Amazon Elastic Compute Cloud - Compute", "eu-west-2"),
    ("EU-BoxUsage:m5.large", "Amazon Elastic Compute Cloud - Compute", "eu-west-1"),
    ("APS3-TimedStorage-ByteHrs", "Amazon Simple Storage Service", "ap-south-1"),
    ("USE1-EUW2-AWS-Out-Bytes", "AWS Data Transfer", "us-east-1"),  # billed where it leaves
    ("BoxUsage:m5.large", "Amazon Elastic Compute Cloud - Compute", None),  # us-east-1 unprefixed: not assumed
    ("EU-DataTransfer-Out-Bytes", "Amazon CloudFront", None),  # an edge geography, not eu-west-1
    ("Global-SoftwareUsage", "AWS Marketplace", None),
    (None, "Tax", None),
])
def test_the_region_is_the_usage_types_published_prefix(usage_type, service, region):
    assert region_of_usage_type(usage_type, service) == region
