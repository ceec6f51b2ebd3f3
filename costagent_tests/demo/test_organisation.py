"""The demo organisation: deterministic, realistic, and with a ground truth the MTD rule can be scored on."""

from __future__ import annotations

import re
from collections import Counter
from datetime import date, timedelta
from functools import lru_cache

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from costagent_assets.demo.organisation import (
    DEMO_EPOCH,
    SERVICES,
    PlantedAnomaly,
    demo_teams,
    generate_costs,
    planted_anomalies,
)

TODAY = date(2026, 11, 23)
KEY = ["date", "account_id", "service", "region", "usage_type"]


@lru_cache(maxsize=1)
def _teams() -> tuple[dict, ...]:
    return tuple(demo_teams())


def _ids() -> list[str]:
    return [team["aws_account_id"] for team in _teams()]


@lru_cache(maxsize=1)
def _history() -> pl.DataFrame:
    """All demo costs up to yesterday: the data the MTD tests are scored on."""
    return generate_costs(_ids(), DEMO_EPOCH, TODAY, as_of=TODAY)


@lru_cache(maxsize=1)
def _truth() -> tuple[PlantedAnomaly, ...]:
    return tuple(planted_anomalies(_ids(), "2024-01", "2026-11"))


def _month(day: date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def _first_day(month: str) -> date:
    return date(int(month[:4]), int(month[5:]), 1)


def _previous_month(month: str) -> str:
    return _month(_first_day(month) - timedelta(days=1))


def _next_month(month: str) -> str:
    return _month(_first_day(month) + timedelta(days=31))


def mtd_changes(costs: pl.DataFrame) -> pl.DataFrame:
    """Per (account, service, month, d): spend on days 1..d vs days 1..d of the month before.

    Last month's side stops at its last day (day 31 of March compares with all of February), and an
    (account, service) with no rows on a day counts as $0 that day.
    """
    daily = costs.group_by("account_id", "service", "date").agg(pl.col("cost_usd").sum())
    days = pl.DataFrame({"date": pl.date_range(costs["date"].min(), costs["date"].max(), eager=True)})
    grid = (
        daily.select("account_id", "service")
        .unique()
        .join(days, how="cross")
        .join(daily, on=["account_id", "service", "date"], how="left")
        .with_columns(
            pl.col("cost_usd").fill_null(0.0),
            month=pl.col("date").dt.strftime("%Y-%m"),
            d=pl.col("date").dt.day(),
        )
        .sort("account_id", "service", "date")
        .with_columns(mtd=pl.col("cost_usd").cum_sum().over("account_id", "service", "month"))
    )
    previous = grid.select(
        "account_id",
        "service",
        "d",
        "mtd",
        month=pl.col("date").dt.offset_by("1mo").dt.strftime("%Y-%m"),
        # The previous month's last MTD stands for every later d of a longer month.
        last_day=pl.col("date").dt.month_end().dt.day(),
    )
    previous = pl.concat(
        [
            previous.drop("last_day"),
            previous.filter(pl.col("d") == pl.col("last_day"))
            .join(pl.DataFrame({"extra_d": [29, 30, 31]}, schema={"extra_d": pl.Int8}), how="cross")
            .filter(pl.col("extra_d") > pl.col("d"))
            .select("account_id", "service", pl.col("extra_d").alias("d"), "mtd", "month"),
        ]
    )
    return (
        grid.select("account_id", "service", "month", "d", current="mtd")
        .join(previous.rename({"mtd": "previous"}), on=["account_id", "service", "month", "d"], how="inner")
        .with_columns(increase=pl.col("current") - pl.col("previous"))
    )


def _exempt(truth: tuple[PlantedAnomaly, ...]) -> pl.DataFrame:
    """(account, service, month) that may legitimately rise: a plant, or the carry-over of a lasting one."""
    rows = {(p.account_id, p.service, p.month) for p in truth}
    rows |= {
        (p.account_id, p.service, _next_month(p.month)) for p in truth if p.kind in ("step", "new_service")
    }
    return pl.DataFrame(sorted(rows), schema=["account_id", "service", "month"], orient="row")


@lru_cache(maxsize=1)
def _history_changes() -> pl.DataFrame:
    return mtd_changes(_history())


def _false_alarms(costs: pl.DataFrame, changes: pl.DataFrame) -> pl.DataFrame:
    """MTD rises of > 20% and > $100 on days d >= 7 that are neither planted nor carried over."""
    # An account's first month has no baseline at all; the pipeline cannot (and need not) judge it.
    has_baseline = costs.select(
        "account_id", month=pl.col("date").dt.offset_by("1mo").dt.strftime("%Y-%m")
    ).unique()
    return (
        changes.join(has_baseline, on=["account_id", "month"], how="semi")
        .join(_exempt(_truth()), on=["account_id", "service", "month"], how="anti")
        .filter(pl.col("d") >= 7, pl.col("increase") > 100, pl.col("increase") > 0.2 * pl.col("previous"))
    )


# --- Determinism and invariance ------------------------------------------------------------------------


def test_same_arguments_give_identical_frames():
    ids = _ids()[:30]
    first = generate_costs(ids, date(2026, 9, 1), date(2026, 10, 31))
    second = generate_costs(list(reversed(ids)), date(2026, 9, 1), date(2026, 10, 31))
    assert first.height > 0 and first.equals(second)
    assert planted_anomalies(ids, "2026-01", "2026-10") == planted_anomalies(ids, "2026-01", "2026-10")


@lru_cache(maxsize=1)
def _wide() -> pl.DataFrame:
    return generate_costs(_ids()[:24], date(2025, 11, 1), date(2026, 3, 31))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    accounts=st.sets(st.integers(0, 23), min_size=1, max_size=5),
    start=st.dates(date(2025, 11, 1), date(2026, 3, 31)),
    length=st.integers(0, 70),
    as_of=st.one_of(st.none(), st.dates(date(2025, 11, 1), date(2026, 4, 30))),
)
def test_a_window_or_subset_is_the_same_rows_of_a_larger_generation(accounts, start, length, as_of):
    ids = [_ids()[i] for i in accounts]
    end = min(start + timedelta(days=length), date(2026, 3, 31))
    part = generate_costs(ids, start, end, as_of=as_of)
    last = end if as_of is None else min(end, as_of - timedelta(days=1))
    expected = _wide().filter(pl.col("account_id").is_in(ids), pl.col("date").is_between(start, last))
    assert part.equals(expected)


def test_ground_truth_does_not_depend_on_which_accounts_are_asked_about():
    some = _ids()[10:20]
    assert planted_anomalies(some, "2024-01", "2026-11") == [p for p in _truth() if p.account_id in some]
    assert planted_anomalies(_ids(), "2026-03", "2026-05") == [
        p for p in _truth() if "2026-03" <= p.month <= "2026-05"
    ]


# --- Shape of the rows ---------------------------------------------------------------------------------


def test_schema_key_order_and_values():
    costs = generate_costs(_ids(), date(2026, 10, 1), date(2026, 10, 31))
    assert dict(costs.schema) == (
        {
            "date": pl.Date,
            "account_id": pl.String,
            "service": pl.String,
            "region": pl.String,
            "usage_type": pl.String,
            "cost_usd": pl.Float64,
            "source": pl.String,
        }
    )
    assert costs.select(KEY).is_unique().all()
    assert costs.equals(costs.sort("account_id", "date", "service", "region", "usage_type"))
    assert costs["cost_usd"].min() >= 0
    assert (costs["cost_usd"] * 1e4 - (costs["cost_usd"] * 1e4).round()).abs().max() < 1e-6
    assert costs["source"].unique().to_list() == ["demo"]
    assert costs["account_id"].str.contains(r"^\d{12}$").all()
    assert set(costs["service"]) <= set(SERVICES) and 18 <= len(SERVICES) <= 24
    assert costs["usage_type"].str.contains(r"^([A-Z]{2,4}\d?-)?[A-Za-z0-9.:\-]+$").all()
    regions = set(costs["region"])
    assert {"us-east-1", "eu-west-1", "global"} <= regions

    per_account = costs.group_by("account_id").agg(pl.col("service").unique())
    for services in per_account["service"]:
        assert 8 <= len(services) <= 20
        assert {
            "Amazon Elastic Compute Cloud - Compute",
            "Amazon Simple Storage Service",
            "AmazonCloudWatch",
            "AWS Data Transfer",
        } <= set(services)
    lines = (
        costs.select("account_id", "service", "region", "usage_type")
        .unique()
        .group_by("account_id", "service")
        .len()
    )
    assert lines["len"].max() <= 2


def test_as_of_clips_and_nothing_precedes_the_epoch_or_an_account():
    costs = generate_costs(_ids(), date(2023, 6, 1), date(2026, 12, 31), as_of=TODAY)
    assert costs["date"].max() == TODAY - timedelta(days=1)
    assert costs["date"].min() == DEMO_EPOCH
    assert generate_costs(_ids(), date(2026, 11, 23), date(2026, 11, 30), as_of=TODAY).is_empty()
    assert generate_costs(_ids(), date(2023, 1, 1), date(2023, 12, 31)).is_empty()

    # Late accounts: nothing before their first day, which is the 1st of a month between 2025-06 and 2026-09.
    first_days = costs.group_by("account_id").agg(pl.col("date").min())
    late = first_days.filter(pl.col("date") > DEMO_EPOCH)
    assert 4 <= late.height <= 10
    for first in late["date"]:
        assert first.day == 1 and date(2025, 6, 1) <= first <= date(2026, 9, 1)


def test_any_twelve_digit_id_works_and_other_ids_are_refused():
    costs = generate_costs(["000000000001", "123456789012"], date(2026, 1, 1), date(2026, 1, 31))
    assert costs["account_id"].n_unique() == 2
    with pytest.raises(ValueError):
        generate_costs(["12345"], date(2026, 1, 1), date(2026, 1, 31))


# --- The teams -----------------------------------------------------------------------------------------


def test_demo_teams():
    teams = _teams()
    assert len(teams) == 84
    ids = [team["aws_account_id"] for team in teams]
    assert len(set(ids)) == 84 and all(re.fullmatch(r"\d{12}", i) for i in ids)
    assert sum(i.startswith("0") for i in ids) >= 3
    assert len({team["team_name"] for team in teams}) == 84
    assert len({team["team_email"] for team in teams}) == 84
    for team in teams:
        assert re.fullmatch(r"[A-Z][A-Za-z]+( [A-Z][A-Za-z]+)+( \d+)?", team["team_name"])
        for email in [team["team_email"], *team["cc_emails"]]:
            assert re.fullmatch(r"[a-z0-9.\-]+@demo\.costagent\.example", email)
    assert 0 < sum(bool(team["cc_emails"]) for team in teams) < 42
    assert all(len(team["cc_emails"]) <= 2 for team in teams)

    budgets = [team for team in teams if team["monthly_budget"] is not None]
    assert 30 <= len(budgets) <= 54
    spend = dict(
        generate_costs(ids, date(2026, 10, 1), date(2026, 10, 31))
        .group_by("account_id")
        .agg(pl.col("cost_usd").sum())
        .iter_rows()
    )
    ratios = [team["monthly_budget"] / spend[team["aws_account_id"]] for team in budgets]
    assert all(0.5 <= r <= 1.5 for r in ratios)  # near typical spend...
    assert 2 <= sum(r < 0.85 for r in ratios) <= 10  # ...a few clearly below it


def test_a_smaller_org_is_a_prefix_and_names_stay_unique_at_scale():
    large = demo_teams(2000)
    assert large[:84] == list(_teams())
    assert len({t["team_name"] for t in large}) == 2000
    assert len({t["aws_account_id"] for t in large}) == 2000
    assert any(re.search(r" \d+$", t["team_name"]) for t in large)
    assert demo_teams(84, seed=7) != list(_teams())


# --- Realism -------------------------------------------------------------------------------------------


def test_most_accounts_have_over_fourteen_months_of_history():
    months = _history().group_by("account_id").agg(pl.col("date").dt.strftime("%Y-%m").n_unique().alias("n"))
    assert months.filter(pl.col("n") >= 15).height >= 0.85 * len(_ids())


def test_spend_spans_orders_of_magnitude():
    october = _history().filter(pl.col("date").dt.strftime("%Y-%m") == "2026-10")
    daily = october.group_by("account_id").agg((pl.col("cost_usd").sum() / 31).alias("per_day"))
    assert daily["per_day"].min() < 20 and daily["per_day"].max() > 5_000
    assert daily["per_day"].max() / daily["per_day"].min() > 500


def test_weekly_seasonality_on_compute_not_on_storage():
    recent = _history().filter(pl.col("date") >= date(2026, 9, 1))
    by_weekend = (
        recent.with_columns(weekend=pl.col("date").dt.weekday() >= 6)
        .group_by("service", "weekend", "date")
        .agg(pl.col("cost_usd").sum())
        .group_by("service", "weekend")
        .agg(pl.col("cost_usd").mean())
    )

    def weekend_ratio(service: str) -> float:
        rows = dict(by_weekend.filter(pl.col("service") == service).select("weekend", "cost_usd").iter_rows())
        return rows[True] / rows[False]

    assert weekend_ratio("Amazon Elastic Compute Cloud - Compute") < 0.9
    assert weekend_ratio("AWS Lambda") < 0.9
    assert 0.97 < weekend_ratio("AWS Backup") < 1.03


# --- Ground truth --------------------------------------------------------------------------------------


def test_ground_truth_shape_and_monthly_mix():
    truth = _truth()
    assert truth == tuple(sorted(truth, key=lambda p: (p.month, p.account_id, p.start, p.service)))
    for p in truth:
        assert p.kind in ("spike", "step", "new_service") and p.service in SERVICES
        assert p.month == _month(p.start) and p.detectable_from.strftime("%Y-%m") == p.month
        assert 7 <= p.detectable_from.day <= 16 and p.detectable_from >= p.start
        natural = p.start.day == 1  # a natural new service; everything planted starts on days 3..12
        assert p.kind == "new_service" if natural else 3 <= p.start.day <= 12
        assert (p.end is None) == (p.kind != "spike")
        if p.kind == "spike":
            assert 1 <= (p.end - p.start).days + 1 <= 4
        if p.kind == "new_service" and p.above_floor and not natural:
            assert p.extra_usd_per_day >= 30

    months = ["2024-02"]
    while months[-1] < "2026-10":
        months.append(_next_month(months[-1]))
    above = Counter(p.month for p in truth if p.above_floor)
    below = Counter(p.month for p in truth if not p.above_floor)
    assert all(6 <= above[m] <= 14 for m in months) and 8 <= sum(above[m] for m in months) / len(months) <= 12
    assert all(1 <= below[m] <= 8 for m in months) and 3 <= sum(below[m] for m in months) / len(months) <= 5
    assert {p.kind for p in truth if p.above_floor} == {"spike", "step", "new_service"}


def test_ground_truth_magnitudes_hold_in_the_generated_costs():
    truth = pl.DataFrame(
        [
            (p.account_id, p.service, p.month, p.detectable_from.day, p.above_floor)
            for p in _truth()
            if p.month <= "2026-10"
        ],
        schema=["account_id", "service", "month", "detectable", "above_floor"],
        orient="row",
    )
    scored = truth.join(_history_changes(), on=["account_id", "service", "month"]).filter(
        pl.col("d") >= pl.col("detectable")
    )
    assert scored.select("account_id", "service", "month").unique().height == truth.height
    half = pl.col("increase") >= 0.5 * pl.col("previous")
    above = scored.filter(pl.col("above_floor"))
    assert above.filter(~half | (pl.col("increase") < 300)).is_empty()
    below = scored.filter(~pl.col("above_floor"))
    assert below.filter(~half | (pl.col("increase") <= 0) | (pl.col("increase") > 40)).is_empty()
    # ...through the last day of each month.
    assert scored.group_by("account_id", "service", "month").agg(pl.col("d").max())["d"].min() >= 28


def test_planted_services_exist_exactly_when_they_should():
    first_seen = {
        (account_id, service): first
        for account_id, service, first in _history()
        .group_by("account_id", "service")
        .agg(pl.col("date").min())
        .iter_rows()
    }
    for p in _truth():
        first = first_seen[(p.account_id, p.service)]
        if p.kind == "new_service":
            assert first == p.start
        else:  # a spike or step needs all of last month as its baseline
            assert first <= _first_day(_previous_month(p.month))


# --- The property the pipeline relies on ---------------------------------------------------------------


@pytest.mark.parametrize("as_of", [TODAY, date(2026, 8, 17), date(2026, 3, 29), date(2026, 4, 1)])
def test_no_false_alarms_at_a_report_date(as_of):
    yesterday = as_of - timedelta(days=1)
    costs = generate_costs(_ids(), date(2025, 12, 1), date(2026, 12, 31), as_of=as_of)
    alarms = _false_alarms(costs, mtd_changes(costs)).filter(
        pl.col("month") == _month(yesterday), pl.col("d") == yesterday.day
    )
    assert alarms.is_empty(), alarms


def test_no_false_alarms_on_any_day_of_the_history():
    alarms = _false_alarms(_history(), _history_changes())
    assert alarms.is_empty(), alarms
    # ...while the same rule does fire on what was planted.
    planted = _history_changes().join(_exempt(_truth()), on=["account_id", "service", "month"], how="semi")
    assert not planted.filter(
        pl.col("increase") > 100, pl.col("increase") > 0.2 * pl.col("previous")
    ).is_empty()
