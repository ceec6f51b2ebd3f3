"""FOCUS exports and legacy CUR files as the cost source: every trap, exact totals, local files and S3."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import boto3
import polars as pl
import pytest

from costagent_assets import focus
from costagent_assets.demo import organisation as demo
from costagent_assets.resources.cost_source import CostSourceError
from costagent_assets.resources.focus_files import FocusCostSource
from costagent_assets.teams.model import validate_team_fields
from costagent_tests.peers.focus_files import (
    AZURE_SUBSCRIPTION,
    GCP_PROJECT,
    LEADING_ZERO_AWS,
    UNREGISTERED_AWS,
    Export,
    cur_csv,
    cur_export,
    focus_export,
    write_files,
)
from costagent_tests.peers.homes import demo_accounts, prepare_home, raw_costs_metadata, run_weekly, sql
from costagent_tests.peers.moto_server import MotoPeer

AS_OF = date(2026, 11, 23)


def _teams() -> list[dict]:
    teams = demo_accounts(12)
    teams[0] = {**teams[0], "aws_account_id": LEADING_ZERO_AWS}
    teams.append({"team_name": "Azure Apps", "aws_account_id": f"/subscriptions/{AZURE_SUBSCRIPTION}",
                  "team_email": "azure@example.com"})
    teams.append({"team_name": "AI Research", "aws_account_id": GCP_PROJECT, "team_email": "ai@example.com"})
    return teams


TEAMS = _teams()
AWS_ACCOUNTS = [t["aws_account_id"] for t in TEAMS[:12]]
REGISTERED = [*AWS_ACCOUNTS, AZURE_SUBSCRIPTION.lower(), GCP_PROJECT]


@pytest.fixture(scope="module")
def export() -> Export:
    original = demo_accounts(12)[0]["aws_account_id"]
    costs = demo.generate_costs([t["aws_account_id"] for t in demo_accounts(12)], date(2026, 10, 1),
                                date(2026, 11, 22), seed=42, as_of=AS_OF)
    costs = costs.with_columns(pl.col("account_id").replace(original, LEADING_ZERO_AWS))
    return focus_export(costs)


@pytest.fixture(scope="module")
def files(export: Export) -> dict[str, bytes]:
    return write_files(export, n_files=3)


def read_all(files: dict[str, bytes], cost_column: str = "BilledCost") -> pl.DataFrame:
    frames = [focus.normalize_export(focus.read_export_bytes(b, n), n, cost_column) for n, b in files.items()]
    return focus.daily_rollup(pl.concat(frames))


def totals_of(daily: pl.DataFrame) -> dict[tuple[str, str], float]:
    month = daily.with_columns(pl.col("date").dt.strftime("%Y-%m").alias("month"))
    return {(a, m): usd for a, m, usd in month.group_by(["account_id", "month"]).agg(pl.col("cost_usd").sum()).iter_rows()}


def assert_totals(got: dict[tuple[str, str], float], expected: dict[tuple[str, str], Decimal]) -> None:
    assert set(got) == set(expected)
    for key, amount in expected.items():
        assert abs(got[key] - float(amount)) < 1e-6, (key, got[key], amount)


def test_files_hold_the_traps(export: Export, files: dict[str, bytes]):
    rows = export.rows
    assert {r["ChargeCategory"] for r in rows} >= {"Usage", "usage", "USAGE", "Credit", "TAX"}
    assert any(r["RegionId"] == "NULL" for r in rows) and any(Decimal(r["BilledCost"]) < 0 for r in rows)
    assert any(r["ChargePeriodStart"][11:13] not in ("00", "") for r in rows)  # hourly rows
    assert any("\n" in r["Tags"] and "," in r["Tags"] for r in rows)
    assert any(r["ChargePeriodStart"] < r["BillingPeriodStart"] for r in rows)  # straddles the boundary
    assert {n.rsplit(".", 1)[-1] for n in files} == {"csv", "gz", "parquet"}
    parquet = pl.read_parquet(files["nested/focus-part-2.parquet"])
    assert parquet["SubAccountId"].dtype == pl.Int64 and 123456789 in parquet["SubAccountId"].to_list()


def test_focus_totals_per_account_and_month_are_exact(export: Export, files: dict[str, bytes]):
    assert_totals(totals_of(read_all(files)), export.totals)


def test_traps_are_undone(files: dict[str, bytes]):
    daily = read_all(files)
    assert set(daily["charge_category"]) == {"usage", "credit", "tax"}
    assert set(daily["provider"]) == {"aws", "azure", "gcp"}
    assert set(daily["currency"]) == {"USD"}
    assert LEADING_ZERO_AWS in set(daily["account_id"])  # the Parquet integer got its zeros back
    assert AZURE_SUBSCRIPTION.lower() in set(daily["account_id"])
    assert daily["region"].null_count() > 0 and "NULL" not in set(daily["region"].drop_nulls())
    key = focus.DAILY_KEY
    assert daily.select(key).n_unique() == daily.height  # hourly rows rolled up into one per day
    assert daily.filter(pl.col("date") == date(2026, 10, 31), pl.col("cost_usd") == 42.0000000001).is_empty()


def test_effective_cost_can_be_chosen(export: Export, files: dict[str, bytes]):
    billed = read_all(files)["cost_usd"].sum()
    csv_only = {n: b for n, b in files.items() if not n.endswith(".parquet")}
    effective = read_all(csv_only, "EffectiveCost")["cost_usd"].sum()
    assert effective != pytest.approx(billed) and effective > 0


def test_legacy_cur_with_whole_month_tax_and_credits():
    costs = demo.generate_costs([t["aws_account_id"] for t in demo_accounts(3)], date(2026, 10, 1),
                                date(2026, 11, 5), seed=42, as_of=AS_OF)
    export = cur_export(costs)
    daily = read_all({"cur.csv.gz": __import__("gzip").compress(cur_csv(export))})
    assert_totals(totals_of(daily), export.totals)
    tax = daily.filter(pl.col("charge_category") == "tax")
    assert tax["date"].to_list() == [date(2026, 10, 1), date(2026, 11, 1)]  # on the day its period starts
    assert (daily.filter(pl.col("charge_category") == "credit")["cost_usd"] < 0).all()


@pytest.mark.parametrize(("content", "expected"), [
    (b"SubAccountId,ServiceName,BilledCost,ChargePeriodStart\n1,S,1.0,yesterday\n", "unreadable charge period start"),
    (b"SubAccountId,ServiceName,BilledCost,ChargePeriodStart\n1,S,one,2026-11-01\n", "unreadable cost"),
    (b"account,cost\n1,2\n", "neither a FOCUS export"),
    (b"ChargePeriodStart,BilledCost\n2026-11-01,2\n", "without the column(s) SubAccountId, ServiceName"),
])
def test_bad_files_are_refused_naming_the_file(content: bytes, expected: str):
    with pytest.raises(focus.ExportError) as caught:
        focus.normalize_export(focus.read_export_bytes(content, "bad.csv"), "bad.csv")
    assert str(caught.value).startswith("bad.csv: ") and expected in str(caught.value)


@pytest.mark.parametrize(("given", "stored"), [
    (f"/subscriptions/{AZURE_SUBSCRIPTION}", AZURE_SUBSCRIPTION.lower()),
    (GCP_PROJECT, GCP_PROJECT),
    ("ocid1.tenancy.oc1..aaaaaaaaba3pv6wkcr4jqae5f15p2b2m2yt2j6rx32uzr4h25vqstifsfdsq",
     "ocid1.tenancy.oc1..aaaaaaaaba3pv6wkcr4jqae5f15p2b2m2yt2j6rx32uzr4h25vqstifsfdsq"),
])
def test_registry_accepts_other_providers_ids(given: str, stored: str):
    team, problems = validate_team_fields({"team_name": "T", "aws_account_id": given, "team_email": "t@example.com"})
    assert not problems and team.aws_account_id == stored


@pytest.mark.parametrize("unsafe", ["../../etc/passwd", "a|b-project", "proj/ect-1", "x...y-project", ".hidden-1"])
def test_registry_refuses_ids_unsafe_as_partition_keys_or_file_names(unsafe: str):
    team, problems = validate_team_fields({"team_name": "T", "aws_account_id": unsafe, "team_email": "t@example.com"})
    assert team is None and problems[0].field == "aws_account_id"


def test_missing_path_fails_clearly(tmp_path: Path):
    with pytest.raises(CostSourceError, match="focus_path"):
        FocusCostSource(path="").fetch(REGISTERED, date(2026, 11, 1), date(2026, 11, 2), AS_OF)
    with pytest.raises(CostSourceError, match="no such file or directory"):
        FocusCostSource(path=str(tmp_path / "nowhere")).fetch(REGISTERED, date(2026, 11, 1), date(2026, 11, 2), AS_OF)


# ---------------------------------------------------------------------------------- end to end


def check_weekly_run(home: Path, export: Export) -> None:
    stored = sql(home, "select account_id, month, sum(cost_usd) as usd from raw_costs group by all")
    got = {(r["account_id"], r["month"]): r["usd"] for r in stored}
    expected = {k: v for k, v in export.totals.items() if k[0] in REGISTERED}
    assert_totals(got, expected)
    providers = sql(home, "select provider, count(distinct account_id) as n from raw_costs group by 1 order by 1")
    assert providers == [{"provider": "aws", "n": 12}, {"provider": "azure", "n": 1}, {"provider": "gcp", "n": 1}]
    usage = sql(home, "select month, source, unregistered_accounts, unregistered_usd from source_usage order by month")
    assert [(u["month"], u["source"], u["unregistered_accounts"]) for u in usage] == [
        ("2026-10", "focus", UNREGISTERED_AWS), ("2026-11", "focus", UNREGISTERED_AWS)]
    for u in usage:
        assert u["unregistered_usd"] == pytest.approx(float(export.totals[(UNREGISTERED_AWS, u["month"])]), abs=1e-6)
    metadata = raw_costs_metadata(home)
    assert all(m["unregistered_accounts"] == 1 and m["accounts_without_data"] == 0 for m in metadata)
    outbox = home / "outbox" / AS_OF.isoformat()
    assert (outbox / f"2026-11-team-{AZURE_SUBSCRIPTION.lower()}.eml").exists()
    assert len(list(outbox.glob("2026-11-team-*.eml"))) == 14


def test_weekly_run_from_local_focus_files(isolated: Path, files: dict[str, bytes], export: Export):
    exports = isolated.parent / "exports"
    for name, content in files.items():
        (exports / name).parent.mkdir(parents=True, exist_ok=True)
        (exports / name).write_bytes(content)
    (exports / "manifest.json").write_text("{}")  # not a data file: skipped
    prepare_home(isolated, TEAMS, source="focus", focus_path=str(exports))
    assert run_weekly(isolated, AS_OF) == 0
    check_weekly_run(isolated, export)
    usage = sql(isolated, "select requests, cost_usd from source_usage")
    assert usage == [{"requests": 0, "cost_usd": 0.0}] * 2  # local files cost nothing


def test_weekly_run_from_focus_files_on_s3(
    isolated: Path, files: dict[str, bytes], export: Export, monkeypatch: pytest.MonkeyPatch
):
    moto = MotoPeer()
    moto.start()
    try:
        monkeypatch.setenv("AWS_ENDPOINT_URL", moto.url)
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="billing-exports")
        for name, content in files.items():
            s3.put_object(Bucket="billing-exports", Key=f"focus/2026/{name}", Body=content)
        s3.put_object(Bucket="billing-exports", Key="other/ignored.csv", Body=b"x\n1\n")
        prepare_home(isolated, TEAMS, source="focus", focus_path="s3://billing-exports/focus/")
        assert run_weekly(isolated, AS_OF) == 0
        check_weekly_run(isolated, export)
        usage = sql(isolated, "select requests, cost_usd from source_usage")
        assert usage[0]["requests"] == 1 + len(files) and 0 < usage[0]["cost_usd"] < 0.001
    finally:
        moto.stop()


def test_consumed_quantity_is_read_and_splits_a_rise_into_usage_rate_and_mix(isolated: Path, tmp_path: Path):
    """One account, 1-22 November against 1-22 October: m5.large 100 -> 150 hours a day at $0.10 -> $0.12,
    m5.xlarge new at 20 hours a day for $0.20. FOCUS ConsumedQuantity/ConsumedUnit carry the hours."""
    team = _teams()[0]
    account = team["aws_account_id"]
    lines = {("USE1-BoxUsage:m5.large",): ((100.0, 0.10), (150.0, 0.12)),
             ("USE1-BoxUsage:m5.xlarge",): ((0.0, 0.20), (20.0, 0.20))}
    rows = []
    for month, last, side in (("2026-10", 31, 0), ("2026-11", 22, 1)):
        for day in range(1, last + 1):
            for (usage_type,), sides in lines.items():
                hours, price = sides[side]
                if hours:
                    rows.append({"ChargePeriodStart": f"{month}-{day:02d}T00:00:00Z", "SubAccountId": account,
                                 "ServiceName": "Amazon Elastic Compute Cloud", "ProviderName": "AWS",
                                 "ChargeCategory": "Usage", "BilledCost": repr(round(hours * price, 2)),
                                 "RegionId": "us-east-1", "x_UsageType": usage_type,
                                 "ConsumedQuantity": repr(hours), "ConsumedUnit": "Hours"})
    exports = tmp_path / "exports"
    exports.mkdir()
    pl.DataFrame(rows).write_csv(exports / "focus.csv")
    normalized = focus.daily_rollup(focus.normalize_export(focus.read_export_bytes(
        (exports / "focus.csv").read_bytes(), "focus.csv"), "focus.csv"))
    assert normalized.filter(pl.col("date") == date(2026, 11, 1)).select(
        "usage_type", "usage_quantity", "usage_unit").rows() == [
        ("USE1-BoxUsage:m5.large", 150.0, "Hours"), ("USE1-BoxUsage:m5.xlarge", 20.0, "Hours")]

    prepare_home(isolated, [team], source="focus", focus_path=str(exports))
    assert run_weekly(isolated, AS_OF) == 0
    [row] = sql(isolated, "select impact_usd, usage_change_usd, rate_change_usd, mix_change_usd, drivers "
                          "from anomalies where month = '2026-11' and level = 'service'")
    assert round(row["usage_change_usd"] + row["rate_change_usd"] + row["mix_change_usd"], 2) == row["impact_usd"]
    assert row["mix_change_usd"] == 84.0 and row["usage_change_usd"] > 0 and row["rate_change_usd"] > 0
    assert {d["usage_type"] for d in row["drivers"]} == {"USE1-BoxUsage:m5.large", "USE1-BoxUsage:m5.xlarge"}
