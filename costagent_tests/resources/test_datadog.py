"""Datadog as the cost source, against a local server answering like Datadog's v2 timeseries API."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import polars as pl
import pytest

from costagent_assets.defs.resources import build_resources
from costagent_assets.demo import organisation as demo
from costagent_assets.home import get_home
from costagent_assets.report_context import SPLIT_WORDS
from costagent_assets.resources.cost_source import CostSourceError
from costagent_assets.resources.datadog import DatadogCostSource, api_base_url, series_frame
from costagent_assets.settings import load_settings, with_setting
from costagent_tests.peers.datadog_server import RECORDING, DatadogPeer
from costagent_tests.peers.homes import (
    demo_accounts,
    prepare_home,
    raw_costs_metadata,
    run_weekly,
    sql,
    warehouse_month_totals,
)

AS_OF = date(2026, 11, 23)
TEAMS = demo_accounts(84)
ACCOUNTS = [t["aws_account_id"] for t in TEAMS]


@pytest.fixture(scope="module")
def org_costs() -> pl.DataFrame:
    """What Datadog holds: the demo organisation's October and November, per day, account and product."""
    return demo.generate_costs(ACCOUNTS, date(2026, 10, 1), date(2026, 11, 22), seed=42, as_of=AS_OF).group_by(
        ["date", "account_id", "service"]).agg(pl.col("cost_usd").sum())


@pytest.fixture
def peer(org_costs: pl.DataFrame):
    server = DatadogPeer(org_costs).start()
    yield server
    server.stop()


def source(peer: DatadogPeer, **fields) -> DatadogCostSource:
    return DatadogCostSource(api_key=peer.api_key, app_key=peer.app_key, site=peer.url,
                             **{"max_wait_seconds": 0.01, **fields})


def expected_month_totals(costs: pl.DataFrame, accounts: set[str] | None = None) -> dict[tuple[str, str], float]:
    month = costs.with_columns(pl.col("date").dt.strftime("%Y-%m").alias("month"))
    if accounts is not None:
        month = month.filter(pl.col("account_id").is_in(accounts))
    rows = month.group_by(["account_id", "month"]).agg(pl.col("cost_usd").sum()).iter_rows()
    return {(a, m): usd for a, m, usd in rows}


def configure(home: Path, peer: DatadogPeer, monkeypatch: pytest.MonkeyPatch, **settings: str) -> None:
    prepare_home(home, TEAMS, source="datadog", source_max_wait_seconds="0.01", **settings)
    monkeypatch.setenv("DATADOG_API_KEY", peer.api_key)
    monkeypatch.setenv("DATADOG_APP_KEY", peer.app_key)
    monkeypatch.setenv("DATADOG_SITE", peer.url)


def test_the_peer_answers_in_the_recorded_shape(peer: DatadogPeer):
    status, headers, body = peer.answer(
        "/api/v2/query/timeseries",
        {"DD-API-KEY": peer.api_key, "DD-APPLICATION-KEY": peer.app_key},
        b'{"data": {"type": "timeseries_request", "attributes": {"from": 1793491200000, "to": 1793577600000,'
        b' "queries": [{"data_source": "cloud_cost", "name": "a", "query": '
        b'"sum:aws.cost.amortized{*} by {aws_member_account_id,aws_product}.rollup(sum, 86400)"}]}}}',
    )
    recorded = RECORDING["response"]["body"]["data"]
    assert status == 200 and set(body["data"]) == set(recorded) and body["data"]["type"] == recorded["type"]
    attributes = body["data"]["attributes"]
    assert set(attributes) == set(recorded["attributes"])
    assert set(attributes["series"][0]) == set(recorded["attributes"]["series"][0])
    assert len(attributes["series"]) == len(attributes["values"]) > 84
    assert all(len(v) == len(attributes["times"]) for v in attributes["values"])
    assert {"X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset", "X-RateLimit-Period"} <= set(headers)


def test_one_grouped_request_returns_every_account_and_service(peer: DatadogPeer, org_costs: pl.DataFrame):
    got = source(peer).fetch(ACCOUNTS, date(2026, 10, 1), date(2026, 10, 31), as_of=date(2026, 11, 1))
    assert got.requests == 1 and got.retries == 0 and len(peer.received) == 1
    query = peer.received[0].body["data"]["attributes"]["queries"][0]
    assert query["data_source"] == "cloud_cost"
    assert query["query"] == ("sum:aws.cost.amortized{*} by {aws_member_account_id,aws_product,aws_usage_type,"
                              "aws_region}.rollup(sum, 86400)")
    assert got.costs["account_id"].n_unique() == 84
    totals = got.costs.group_by("account_id").agg(pl.col("cost_usd").sum())
    expected = expected_month_totals(org_costs)
    for account, usd in totals.iter_rows():
        assert usd == pytest.approx(expected[(account, "2026-10")], abs=1e-6)


def test_configured_metric_and_tags_are_the_ones_queried(org_costs: pl.DataFrame):
    peer = DatadogPeer(org_costs, metric="aws.cost.net.amortized", account_tag="subaccountid",
                       service_tag="servicename").start()
    try:
        got = source(peer, metric="aws.cost.net.amortized", account_tag="subaccountid",
                     service_tag="servicename").fetch(ACCOUNTS[:5], date(2026, 11, 1), date(2026, 11, 3), AS_OF)
        assert set(got.costs["account_id"]) == set(ACCOUNTS[:5])
        # The other metric is another series in Datadog: nothing, not the wrong numbers.
        none = source(peer).fetch(ACCOUNTS[:5], date(2026, 11, 1), date(2026, 11, 3), AS_OF)
        assert none.costs.is_empty()
    finally:
        peer.stop()


def test_usage_type_and_region_are_read_under_datadogs_documented_tag_names(isolated: Path):
    """Datadog's Cloud Cost docs name the tags on aws.cost.* aws_usage_type and aws_region: the defaults ask for
    those, and the peer (which answers under them) has nothing under the old guesses usage_type and region."""
    costs = quantity_costs(ACCOUNTS[0])
    server = DatadogPeer(costs).start()
    try:
        settings = load_settings(get_home(isolated).settings_path)
        built = build_resources(get_home(isolated), settings.model_copy(update={"source": "datadog"}))["cost_source"]
        assert (built.usage_type_tag, built.region_tag) == ("aws_usage_type", "aws_region")
        assert (DatadogCostSource.model_fields["usage_type_tag"].default,
                DatadogCostSource.model_fields["region_tag"].default) == ("aws_usage_type", "aws_region")
        window = (ACCOUNTS[:1], date(2026, 11, 1), date(2026, 11, 3), AS_OF)
        got = source(server).fetch(*window).costs
        assert got["usage_type"].null_count() == 0 and set(got["region"]) == {"us-east-1"}
        old = source(server, usage_type_tag="usage_type", region_tag="region").fetch(*window).costs
        assert old["usage_type"].null_count() == old["region"].null_count() == old.height > 0
    finally:
        server.stop()


def test_every_datadog_setting_reaches_the_source_it_configures(isolated: Path, monkeypatch: pytest.MonkeyPatch):
    """`costagent config set datadog_*` (settings.json) is what the bound resource asks Datadog for: a peer that
    tags its costs and quantities under other names answers with usage types, regions and quantities."""
    account = ACCOUNTS[0]
    server = DatadogPeer(quantity_costs(account), metric="aws.cost.unblended", account_tag="subaccountid",
                         service_tag="servicename", usage_type_tag="usagetype", region_tag="regionname",
                         usage_metric="aws.usage.volume", unit_tag="usageunit").start()
    try:
        configure(isolated, server, monkeypatch, datadog_metric="aws.cost.unblended",
                  datadog_account_tag="subaccountid", datadog_service_tag="servicename",
                  datadog_usage_type_tag="usagetype", datadog_region_tag="regionname",
                  datadog_usage_metric="aws.usage.volume", datadog_usage_unit_tag="usageunit",
                  datadog_timeout_seconds="7.5")
        home = get_home(isolated)
        bound = build_resources(home, load_settings(home.settings_path))["cost_source"]
        resource = bound.process_config_and_initialize()  # dg.EnvVar read, as at run time
        assert (resource.usage_type_tag, resource.region_tag, resource.usage_metric, resource.usage_unit_tag,
                resource.timeout_seconds) == ("usagetype", "regionname", "aws.usage.volume", "usageunit", 7.5)
        got = resource.fetch([account], date(2026, 11, 1), date(2026, 11, 1), AS_OF).costs
    finally:
        server.stop()
    assert got.sort("usage_type").select("service", "usage_type", "region", "usage_quantity", "usage_unit").rows() == [
        ("ec2", "USE1-BoxUsage:m5.large", "us-east-1", 150.0, "Hrs"),
        ("ec2", "USE1-BoxUsage:m5.xlarge", "us-east-1", 20.0, "Hrs"),
        ("s3", "USE1-TimedStorage-ByteHrs", "us-east-1", 1000.0, "GB-Mo")]
    # Empty turns a part off: no usage types asked for, no quantity query in the request.
    emptied = with_setting(with_setting(load_settings(home.settings_path), "datadog_usage_type_tag", ""),
                           "datadog_usage_metric", "")
    off = build_resources(home, emptied)["cost_source"]
    assert off.usage_query() is None and "usagetype" not in off.query()


def test_refused_keys_fail_at_once_without_the_key_in_the_message(peer: DatadogPeer):
    secret = "dd-secret-api-key-0123456789abcdef"
    wrong = DatadogCostSource(api_key=secret, app_key="also-secret-app-key", site=peer.url, max_wait_seconds=0.01)
    with pytest.raises(CostSourceError) as caught:
        wrong.fetch(ACCOUNTS, date(2026, 11, 1), date(2026, 11, 3), AS_OF)
    message = str(caught.value)
    assert "403" in message and "DATADOG_API_KEY" in message
    assert secret not in message and "also-secret-app-key" not in message
    assert peer.statuses() == [403]  # no retry of a refusal


def test_server_errors_are_retried_then_succeed(peer: DatadogPeer):
    peer.fail_next = [500, 503]
    got = source(peer).fetch(ACCOUNTS, date(2026, 11, 1), date(2026, 11, 3), AS_OF)
    assert peer.statuses() == [500, 503, 200]
    assert got.retries == 2 and got.requests == 3 and got.costs["account_id"].n_unique() == 84


def test_retries_are_capped_and_the_failure_is_reported(peer: DatadogPeer):
    peer.fail_next = [502] * 10
    with pytest.raises(CostSourceError, match="still failing after 3 attempts"):
        source(peer, max_retries=2).fetch(ACCOUNTS, date(2026, 11, 1), date(2026, 11, 3), AS_OF)
    assert peer.statuses() == [502, 502, 502]


def test_a_429_waits_for_the_announced_reset(peer: DatadogPeer):
    import time

    peer.throttle_rate, peer.reset_seconds = 1.0, 1
    started = time.perf_counter()
    with pytest.raises(CostSourceError, match="HTTP 429"):
        source(peer, max_retries=2, max_wait_seconds=0.3).fetch(ACCOUNTS, date(2026, 11, 1), date(2026, 11, 3), AS_OF)
    # Two waits, each the announced 1 s capped at max_wait_seconds=0.3.
    assert 0.55 < time.perf_counter() - started < 5
    assert peer.statuses() == [429, 429, 429]


def test_a_success_with_no_calls_remaining_waits_for_the_reset(peer: DatadogPeer):
    import time

    peer.limit, peer.reset_seconds = 1, 1
    started = time.perf_counter()
    got = source(peer, max_wait_seconds=0.4).fetch(ACCOUNTS, date(2026, 11, 1), date(2026, 11, 2), AS_OF)
    assert got.requests == 1 and peer.statuses() == [200]
    assert time.perf_counter() - started >= 0.4  # waited (the announced 1 s, capped) before any next call


def test_null_points_are_days_without_data_not_zero():
    payload = {"data": {"attributes": {
        "series": [{"group_tags": ["aws_member_account_id:000000000001", "aws_product:ec2"]},
                   {"group_tags": ["aws_product:s3"]}],
        "times": [1793491200000, 1793577600000],
        "values": [[1.5, None], [2.0, 3.0]],
    }}}
    frame = series_frame(payload, "aws_member_account_id", "aws_product")
    assert frame.to_dicts() == [{"date": date(2026, 11, 1), "account_id": "000000000001", "service": "ec2",
                                 "usage_type": None, "region": None, "cost_usd": 1.5}]


@pytest.mark.parametrize(("site", "url"), [
    ("datadoghq.com", "https://api.datadoghq.com"),
    ("us3", "https://api.us3.datadoghq.com"),
    ("app.datadoghq.eu", "https://api.datadoghq.eu"),
    ("ap1.datadoghq.com", "https://api.ap1.datadoghq.com"),
    ("http://127.0.0.1:9/", "http://127.0.0.1:9"),
])
def test_sites(site: str, url: str):
    assert api_base_url(site) == url


def test_unknown_site_is_refused():
    with pytest.raises(CostSourceError, match="not a Datadog site"):
        api_base_url("datadog.example.com")


# ---------------------------------------------------------------------------------- end to end


def test_weekly_run_84_accounts_two_months_in_two_requests(
    isolated: Path, peer: DatadogPeer, org_costs: pl.DataFrame, monkeypatch: pytest.MonkeyPatch
):
    configure(isolated, peer, monkeypatch)
    assert run_weekly(isolated, AS_OF) == 0
    assert peer.statuses() == [200, 200]  # October (first load) and November: at most 4 allowed
    stored = {(a, m): usd for a, m, usd in warehouse_month_totals(isolated).iter_rows()}
    expected = expected_month_totals(org_costs)
    assert set(stored) == set(expected) and len(stored) == 84 * 2
    for key, usd in expected.items():
        assert stored[key] == pytest.approx(usd, abs=1e-6)
    usage = sql(isolated, "select month, source, requests, retries, cost_usd, accounts_with_data "
                          "from source_usage order by month")
    assert usage == [
        {"month": "2026-10", "source": "datadog", "requests": 1, "retries": 0, "cost_usd": 0.0, "accounts_with_data": 84},
        {"month": "2026-11", "source": "datadog", "requests": 1, "retries": 0, "cost_usd": 0.0, "accounts_with_data": 84},
    ]
    metadata = raw_costs_metadata(isolated)
    assert sorted(m["source_requests"] for m in metadata) == [1, 1]
    assert all(m["source"] == "datadog" and m["accounts_without_data"] == 0 for m in metadata)
    assert len(list((isolated / "outbox" / AS_OF.isoformat()).glob("2026-11-team-*.eml"))) == 84


def test_weekly_run_completes_under_a_30_percent_429_storm(
    isolated: Path, peer: DatadogPeer, org_costs: pl.DataFrame, monkeypatch: pytest.MonkeyPatch
):
    peer.storm(0.3, seed=3)
    configure(isolated, peer, monkeypatch)
    assert run_weekly(isolated, AS_OF) == 0
    statuses = peer.statuses()
    assert 429 in statuses and statuses.count(200) == 2
    rows = sql(isolated, "select month, count(distinct account_id) as n from raw_costs group by month order by month")
    assert rows == [{"month": "2026-10", "n": 84}, {"month": "2026-11", "n": 84}]
    usage = sql(isolated, "select sum(requests) as requests, sum(retries) as retries from source_usage")
    assert usage == [{"requests": len(statuses), "retries": statuses.count(429)}]


def test_accounts_the_server_omits_are_no_data_never_zero(
    isolated: Path, peer: DatadogPeer, monkeypatch: pytest.MonkeyPatch
):
    omitted = set(ACCOUNTS[10:13])
    peer.omit_accounts = omitted
    configure(isolated, peer, monkeypatch)
    assert run_weekly(isolated, AS_OF) == 0
    stored = sql(isolated, "select distinct account_id from raw_costs where month = '2026-11'")
    assert len(stored) == 81 and not omitted & {r["account_id"] for r in stored}
    months = sql(isolated, "select account_id, mtd_usd from account_months where month = '2026-11'")
    by_account = {r["account_id"]: r["mtd_usd"] for r in months}
    assert all(by_account.get(a) is None for a in omitted)  # null, not $0
    emails = sql(isolated, "select account_id, no_data from emails where month = '2026-11'")
    assert {r["account_id"] for r in emails if r["no_data"]} == omitted
    admin = (isolated / "outbox" / AS_OF.isoformat() / "2026-11-admin.html").read_text()
    assert "sent no cost data" in admin and all(a in admin for a in omitted)
    usage = sql(isolated, "select accounts_without_data, accounts_with_missing_days from source_usage "
                          "where month = '2026-11'")
    assert set(usage[0]["accounts_without_data"].split(",")) == omitted
    assert usage[0]["accounts_with_missing_days"] == ""  # the others came back for every day
    meta = [m for m in raw_costs_metadata(isolated) if m["months"] == "2026-11"][0]
    assert meta["accounts_without_data"] == 3


def test_a_30_percent_429_storm_over_many_windows_loses_nothing(peer: DatadogPeer, org_costs: pl.DataFrame):
    peer.storm(0.3, seed=11)
    dd = source(peer)
    windows = [(date(2026, 10, d), date(2026, 10, d + 2)) for d in range(1, 31, 3)]  # Oct 1-3 ... Oct 28-30
    frames = []
    for start, end in windows:
        got = dd.fetch(ACCOUNTS, start, end, AS_OF)
        assert got.costs["account_id"].n_unique() == 84 and got.retries == got.requests - 1
        frames.append(got.costs)
    statuses = peer.statuses()
    assert statuses.count(200) == len(windows) and 0.15 < statuses.count(429) / len(statuses) < 0.45
    fetched = pl.concat(frames)["cost_usd"].sum()
    assert fetched == pytest.approx(org_costs.filter(pl.col("date") < date(2026, 10, 31))["cost_usd"].sum(), abs=1e-6)


def test_a_refused_key_fails_the_run_clearly_and_stores_nothing(
    isolated: Path, peer: DatadogPeer, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
):
    configure(isolated, peer, monkeypatch)
    secret = "dd-wrong-key-5f2c9e"
    monkeypatch.setenv("DATADOG_API_KEY", secret)
    assert run_weekly(isolated, AS_OF) == 1
    out = capfd.readouterr()
    assert "Datadog refused the credentials" in out.out + out.err and secret not in out.out + out.err
    assert not list((isolated / "warehouse").glob("raw_costs/*/*.parquet"))
    assert not (isolated / "outbox" / AS_OF.isoformat()).exists() or not any((isolated / "outbox").rglob("*.eml"))


def test_unset_credentials_are_named_before_any_run(isolated: Path, monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]):
    prepare_home(isolated, TEAMS[:3], source="datadog")
    monkeypatch.setenv("DATADOG_API_KEY", "set")
    assert run_weekly(isolated, AS_OF) == 2
    assert "DATADOG_APP_KEY, DATADOG_SITE" in capsys.readouterr().err


def test_usage_type_and_region_tags_name_the_lines_behind_a_rise(
    isolated: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    """The demo's own lines (service, region, usage type) served with their tags: the stored rows and the
    anomalies' drivers carry them, and the team email names the usage type behind a rise. Without quantities
    under aws.usage, the usage / rate / mix split stays empty rather than invented."""
    accounts = ACCOUNTS[:6]
    costs = demo.generate_costs(accounts, date(2026, 10, 1), date(2026, 11, 22), seed=42, as_of=AS_OF)
    server = DatadogPeer(costs).start()
    try:
        configure(isolated, server, monkeypatch)
        prepare_home(isolated, TEAMS[:6], source="datadog", source_max_wait_seconds="0.01")
        assert run_weekly(isolated, AS_OF) == 0
    finally:
        server.stop()
    stored = sql(isolated, "select count(*) as n, count(usage_type) as typed, count(region) as regions, "
                           "count(usage_quantity) as quantities from raw_costs")[0]
    assert stored["n"] == stored["typed"] == stored["regions"] > 0 and stored["quantities"] == 0
    drivers = sql(isolated, "select d.usage_type, d.region, d.usage_usd from (select unnest(drivers) as d "
                            "from anomalies where month = '2026-11' and level = 'service') where d.usage_type "
                            "is not null")
    assert drivers and all(d["region"] and d["usage_usd"] is None for d in drivers)
    known = set(costs["usage_type"].unique().to_list())
    assert {d["usage_type"] for d in drivers} <= known
    # The emails print no split either: the alerts are there, the words of a split are not.
    outbox = "".join(p.read_text() for p in (isolated / "outbox").rglob("*-team-*.html"))
    assert "Alerts" in outbox and "the same days last month" in outbox
    assert not any(words in outbox for pair in SPLIT_WORDS.values() for words in pair)


# One account whose EC2 moved on two usage lines, 1-22 November against 1-22 October (the Cost Explorer test's
# figures): m5.large ran 150 hours a day instead of 100 at $0.12 instead of $0.10, m5.xlarge appeared at 20 hours
# a day for $0.20; S3 stayed flat. Datadog holds the dollars in aws.cost.* and the hours in aws.usage.
QUANTITY_LINES = {  # (product, usage type, unit) -> (October quantity/day, price), (November quantity/day, price)
    ("ec2", "USE1-BoxUsage:m5.large", "Hrs"): ((100.0, 0.10), (150.0, 0.12)),
    ("ec2", "USE1-BoxUsage:m5.xlarge", "Hrs"): ((0.0, 0.20), (20.0, 0.20)),
    ("s3", "USE1-TimedStorage-ByteHrs", "GB-Mo"): ((1000.0, 0.005), (1000.0, 0.005)),
}


def quantity_costs(account: str) -> pl.DataFrame:
    rows = []
    for day in pl.date_range(date(2026, 10, 1), date(2026, 11, 22), eager=True).to_list():
        for (product, usage_type, unit), (before, after) in QUANTITY_LINES.items():
            qty, price = before if day.month == 10 else after
            if qty:
                rows.append({"date": day, "account_id": account, "service": product, "usage_type": usage_type,
                             "region": "us-east-1", "usage_quantity": qty, "usage_unit": unit,
                             "cost_usd": round(qty * price, 2)})
    return pl.DataFrame(rows)


def test_usage_quantities_come_in_the_same_request_and_split_the_change_exactly(
    isolated: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    team = TEAMS[0]
    account = team["aws_account_id"]
    server = DatadogPeer(quantity_costs(account)).start()
    try:
        configure(isolated, server, monkeypatch)
        prepare_home(isolated, [team], source="datadog", source_max_wait_seconds="0.01")
        assert run_weekly(isolated, AS_OF) == 0
        queries = [q["query"] for q in server.received[0].body["data"]["attributes"]["queries"]]
    finally:
        server.stop()
    assert queries[1] == ("sum:aws.usage{*} by {aws_member_account_id,aws_product,aws_usage_type,aws_region,"
                          "aws_pricing_usage_unit}.rollup(sum, 86400)")
    # The quantities ride in the month's one request: still one request a month.
    usage = sql(isolated, "select month, requests from source_usage order by month")
    assert usage == [{"month": "2026-10", "requests": 1}, {"month": "2026-11", "requests": 1}]
    stored = sql(isolated, "select usage_type, usage_unit, sum(usage_quantity) as qty from raw_costs "
                           "where month = '2026-11' group by all order by usage_type")
    assert stored == [{"usage_type": "USE1-BoxUsage:m5.large", "usage_unit": "Hrs", "qty": 3300.0},
                      {"usage_type": "USE1-BoxUsage:m5.xlarge", "usage_unit": "Hrs", "qty": 440.0},
                      {"usage_type": "USE1-TimedStorage-ByteHrs", "usage_unit": "GB-Mo", "qty": 22000.0}]
    [row] = sql(isolated, "select impact_usd, usage_change_usd, rate_change_usd, mix_change_usd, drivers "
                          "from anomalies where month = '2026-11' and service = 'ec2'")
    assert (row["usage_change_usd"], row["rate_change_usd"], row["mix_change_usd"]) == (63.0, 63.0, 84.0)
    assert round(row["usage_change_usd"] + row["rate_change_usd"] + row["mix_change_usd"], 2) == row["impact_usd"]
    assert [(d["usage_type"], d["region"], d["usage_usd"], d["rate_usd"], d["mix_usd"]) for d in row["drivers"]] == [
        ("USE1-BoxUsage:m5.large", "us-east-1", 63.0, 63.0, 0.0), ("USE1-BoxUsage:m5.xlarge", "us-east-1", 0.0, 0.0, 84.0)]
    capsys.readouterr()
    from costagent_assets.cli import main as cli

    assert cli.main(["--home", str(isolated), "preview", "team", account]) == 0
    out = capsys.readouterr().out
    assert "Review the rise in ec2 (USE1-BoxUsage:m5." in out
    # The email says it in words, under the alert: $84 + $63 + $63 is the step's $210 over its usual days.
    assert ("ec2: +$264.00 (+120.0%), $484.00 vs $220.00 the same days last month; Step to a new level from 01 Nov "
            "(21 days)\n"
            "     Why, compared with usual days: new kinds of usage +$84.00, more usage +$63.00, higher prices +$63.00\n"
            "       USE1-BoxUsage:m5.large, us-east-1: more usage +$63.00, higher prices +$63.00\n"
            "       USE1-BoxUsage:m5.xlarge, us-east-1: new kinds of usage +$84.00\n") in out


def test_a_line_with_two_units_has_no_quantity():
    """Summing GB-hours and requests means nothing: such a line keeps its dollars and loses its quantity."""
    payload = {"data": {"attributes": {"times": [1793491200000], "series": [
        {"group_tags": ["a:1", "s:x", "u:T", "r:eu-west-2", "unit:Hrs"], "query_index": 1},
        {"group_tags": ["a:1", "s:x", "u:T", "r:eu-west-2", "unit:Requests"], "query_index": 1},
        {"group_tags": ["a:1", "s:y", "u:V", "r:N/A", "unit:GB"], "query_index": 1},
        {"group_tags": ["a:1", "s:y", "u:V", "r:N/A"], "query_index": 0},
    ], "values": [[5.0], [7.0], [2.5], [9.0]]}}}
    got = series_frame(payload, "a", "s", "u", "r", query_index=1, unit_tag="unit")
    assert got.select("service", "usage_quantity", "usage_unit").rows() == [("x", None, None), ("y", 2.5, "GB")]
    costs = series_frame(payload, "a", "s", "u", "r", query_index=0)
    assert costs.select("service", "region", "cost_usd").rows() == [("y", None, 9.0)]
