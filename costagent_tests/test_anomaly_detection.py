"""The anomaly detectors on small hand-made tables and on the demo's planted ground truth."""

from __future__ import annotations

import random
from datetime import date, timedelta

import polars as pl
import pytest

from costagent_assets.analysis import compute_mom_changes, deduplicate_raw_costs
from costagent_assets.anomaly_detection import (
    AnomalyRule,
    budget_alerts,
    build_drivers,
    daily_baselines,
    detect_anomalies,
    run_key,
    sorted_enum,
    split_usage_rate_mix,
)
from costagent_assets.demo import organisation as demo
from costagent_assets.periods import month_start, period, report_month, shift_month
from costagent_assets.schemas import conform

A = "000000000001"


def series(first: date, last: date, usd, service: str = "EC2", line: str = "USE1-BoxUsage", **extra) -> list[dict]:
    """Daily rows; ``usd`` is a number or a function of the date."""
    out = []
    day = first
    while day <= last:
        out.append({"month": f"{day:%Y-%m}", "date": day, "account_id": A, "service": service, "region": "us-east-1",
                    "usage_type": line, "cost_usd": usd(day) if callable(usd) else usd, "source": "test",
                    **{k: v(day) if callable(v) else v for k, v in extra.items()}})
        day += timedelta(days=1)
    return out


def weekly(day: date) -> float:
    """$100 on weekdays, $60 at weekends: a pattern the detector must not flag."""
    return 60.0 if day.weekday() >= 5 else 100.0


def run(rows: list[dict], as_of: date, rule: AnomalyRule | None = None, **kwargs) -> pl.DataFrame:
    raw = pl.DataFrame(rows)
    extra = [c for c in raw.columns if c not in conform(raw, "raw_costs").columns]
    raw = pl.concat([conform(raw, "raw_costs"), raw.select(extra)], how="horizontal")
    month = report_month(as_of)
    mom = compute_mom_changes(raw, {month: period(month, as_of)}, [(month, A)])
    return detect_anomalies(mom, rule or AnomalyRule(), raw=raw, **kwargs)


def service_row(frame: pl.DataFrame, service: str = "EC2") -> dict | None:
    rows = frame.filter((pl.col("level") == "service") & (pl.col("service") == service))
    return rows.row(0, named=True) if rows.height else None


def test_a_spike_on_day_3_is_flagged_as_of_day_5_and_mondays_are_not():
    rows = series(date(2026, 9, 1), date(2026, 11, 4), lambda d: weekly(d) + (800.0 if d == date(2026, 11, 3) else 0))
    out = run(rows, date(2026, 11, 5))
    row = service_row(out)
    assert row["kind"] == "spike" and row["alerted"] and row["detector"] == "daily"
    assert row["start_date"] == date(2026, 11, 3) == row["end_date"]
    assert row["impact_usd"] == pytest.approx(800.0)
    assert row["severity"] == "medium"  # $800: 3x the floor or more; 10x would be high
    # The same series without the spike: weekends are $40 lower, nothing is flagged.
    quiet = run(series(date(2026, 9, 1), date(2026, 11, 4), weekly), date(2026, 11, 5))
    assert service_row(quiet) is None


def test_a_planted_demo_spike_on_day_3_is_alerted_as_of_day_5_before_the_month_to_date_rule_could():
    accounts = [t["aws_account_id"] for t in demo.demo_teams(84)]
    spike = next(p for p in demo.planted_anomalies(accounts, "2026-01", "2026-10")
                 if p.kind == "spike" and p.start.day == 3)
    as_of = spike.start + timedelta(days=2)
    assert spike.detectable_from >= as_of  # the month-to-date rule alone is not there yet
    month = report_month(as_of)
    raw = demo.generate_costs([spike.account_id], month_start(shift_month(month, -2)), as_of, as_of=as_of)
    raw = deduplicate_raw_costs(raw.with_columns(pl.col("date").dt.strftime("%Y-%m").alias("month")))
    mom = compute_mom_changes(raw, {month: period(month, as_of)}, [(month, spike.account_id)])
    out = detect_anomalies(mom, AnomalyRule(), raw=raw)
    row = out.filter(pl.col("service") == spike.service).row(0, named=True)
    assert row["kind"] == "spike" and row["alerted"] and row["start_date"] == spike.start


def test_a_new_level_that_persists_is_a_step_not_a_spike():
    rows = series(date(2026, 9, 1), date(2026, 11, 20), lambda d: weekly(d) * (1.6 if d >= date(2026, 11, 3) else 1))
    row = service_row(run(rows, date(2026, 11, 21)))
    assert row["kind"] == "step" and row["alerted"]
    assert row["start_date"] == date(2026, 11, 3)
    assert (row["end_date"] - row["start_date"]).days + 1 >= 5


def test_a_series_without_history_is_not_judged_daily_and_says_so():
    rows = series(date(2026, 11, 1), date(2026, 11, 10), lambda d: 50.0 if d.day < 8 else 400.0)
    rows += series(date(2026, 10, 28), date(2026, 10, 31), 50.0)  # last month: only 4 days of it
    row = service_row(run(rows, date(2026, 11, 11)))
    assert row["detector"] == "month_to_date" and row["kind"] == "increase"
    # Shown as a notable change; with no history to say what is usual, not alerted (issue 17).
    assert not row["alerted"] and "too little daily history to tell" in row["note"]


def test_drivers_are_the_usage_types_and_add_up_to_the_impact():
    rows = series(date(2026, 9, 1), date(2026, 11, 10), weekly)
    rows += series(date(2026, 9, 1), date(2026, 11, 10), lambda d: 30.0 + (300.0 if d >= date(2026, 11, 6) else 0),
                   line="USE1-EBS:VolumeUsage")
    row = service_row(run(rows, date(2026, 11, 11)))
    assert row["kind"] in ("spike", "step")
    total = sum(d["change_usd"] for d in row["drivers"])
    assert total == pytest.approx(round(row["impact_usd"], 2), abs=0.005)
    top = row["drivers"][0]
    assert top["usage_type"] == "USE1-EBS:VolumeUsage" and top["change_usd"] > 0.9 * row["impact_usd"]


def test_usage_rate_mix_split_adds_up():
    # 100 units at $1 -> 150 units at $1.20: usage +$50, rate +$30.
    assert split_usage_rate_mix(100.0, 180.0, 100.0, 150.0) == pytest.approx((50.0, 30.0, 0.0))
    # A usage type that appears is a change of mix.
    assert split_usage_rate_mix(0.0, 40.0, 0.0, 10.0) == (0.0, 0.0, 40.0)
    assert split_usage_rate_mix(10.0, 20.0, None, None) is None
    lines = [
        {"service": "EC2", "region": "r", "usage_type": "a", "c0": 100.0, "c1": 180.0, "q0": 100.0, "q1": 150.0},
        {"service": "EC2", "region": "r", "usage_type": "b", "c0": 0.0, "c1": 40.0, "q0": 0.0, "q1": 10.0},
    ]
    drivers = build_drivers(lines, 120.0)
    assert [d["change_usd"] for d in drivers] == [80.0, 40.0]
    assert (drivers[0]["usage_usd"], drivers[0]["rate_usd"], drivers[1]["mix_usd"]) == (50.0, 30.0, 40.0)


@pytest.mark.parametrize(("units", "price", "cause"), [(2.0, 1.0, "usage_change_usd"), (1.0, 2.0, "rate_change_usd")])
def test_usage_quantities_split_an_anomaly_into_usage_rate_and_mix(units, price, cause):
    # From 5 November, twice the units at the same price, or the same units at twice the price.
    moved = date(2026, 11, 5)
    rows = series(date(2026, 9, 1), date(2026, 11, 10), lambda d: 100.0 * (units * price if d >= moved else 1),
                  usage_quantity=lambda d: 10.0 * (units if d >= moved else 1))
    row = service_row(run(rows, date(2026, 11, 11)))
    assert row["kind"] == "step" and row["impact_usd"] == pytest.approx(600.0)
    assert row[cause] == pytest.approx(row["impact_usd"], abs=0.01)
    other = {"usage_change_usd", "rate_change_usd", "mix_change_usd"} - {cause}
    assert all(row[c] == pytest.approx(0.0, abs=0.01) for c in other)
    assert row["drivers"][0][cause.replace("_change", "")] == pytest.approx(600.0, abs=0.01)


def _account_mom(mtd: float, projected: float, days: int = 10) -> pl.DataFrame:
    return conform(
        pl.DataFrame([{"month": "2026-11", "account_id": A, "level": "account", "current_mtd_usd": mtd,
                       "projected_month_end_usd": projected, "has_data": True, "days_covered": days,
                       "days_in_month": 30, "through_date": date(2026, 11, days)}]),
        "mom_changes",
    )


@pytest.mark.parametrize(
    ("mtd", "projected", "expected"),
    [
        (400.0, 900.0, set()),  # a projection under the budget is no alert, whatever level it reaches
        (500.0, 1500.0, {("budget_forecast", 100.0)}),  # one row: the overrun, not also the 50% level
        (850.0, 2550.0, {("budget_forecast", 100.0)}),
        (550.0, 900.0, {("budget_actual", 50.0)}),  # 55% on day 10 of 30: ahead of pace
        (1100.0, 3300.0, {("budget_actual", 100.0)}),  # the forecast adds nothing once it is over
        (300.0, 450.0, set()),
    ],
)
def test_budget_alerts_at_the_thresholds_on_actual_and_forecast(mtd, projected, expected):
    out = budget_alerts(_account_mom(mtd, projected), {A: 1000.0})
    assert {(r["detector"], r["budget_threshold_pct"]) for r in out.iter_rows(named=True)} == expected
    assert out["kind"].to_list() == ["budget"] * out.height and out["alerted"].all()


def test_budget_forecast_names_the_day_it_is_exceeded():
    # $500 in 10 days, projected $1,500: $50/day, so $1,000 is crossed 10 days after the 10th.
    note = budget_alerts(_account_mom(500.0, 1500.0), {A: 1000.0}).filter(
        pl.col("detector") == "budget_forecast")["note"][0]
    assert note == "Projected to exceed the $1,000 budget by $500 on the 20th (spent 50% so far)."


def test_custom_budget_levels_and_budgets_in_detect_anomalies():
    mom = _account_mom(700.0, 2100.0)
    out = detect_anomalies(mom, AnomalyRule(), budgets={A: 1000.0}, budget_alert_pcts=(60.0, 90.0))
    assert {(r["detector"], r["budget_threshold_pct"]) for r in out.iter_rows(named=True)} == {
        ("budget_forecast", 100.0)}
    ahead = detect_anomalies(_account_mom(650.0, 950.0), AnomalyRule(), budgets={A: 1000.0},
                             budget_alert_pcts=(60.0, 90.0))
    assert ahead.select("detector", "budget_threshold_pct").rows() == [("budget_actual", 60.0)]


def test_a_budget_level_crossed_before_this_week_is_not_alerted_again():
    # $40 a day for 20 of 30 days: 80% spent, projected 120%: the overrun alerts, dated when it will happen.
    rows = pl.DataFrame(series(date(2026, 11, 1), date(2026, 11, 20), lambda d: 40.0))
    over = budget_alerts(_account_mom(800.0, 1200.0, days=20), {A: 1000.0}, raw=rows)
    assert over.select("detector", "start_date").rows() == [("budget_forecast", date(2026, 11, 25))]
    # Projected under the budget: 80% was crossed on the 20th, this week, ahead of a 67% pace.
    crossed = budget_alerts(_account_mom(800.0, 990.0, days=20), {A: 1000.0}, raw=rows)
    assert crossed.select("detector", "budget_threshold_pct", "start_date").rows() == [
        ("budget_actual", 80.0, date(2026, 11, 20))]
    # A week later 80% is old news (and spend is behind pace): nothing to say while it stays under budget.
    later = pl.DataFrame(series(date(2026, 11, 1), date(2026, 11, 27), lambda d: 40.0 if d.day <= 20 else 1.0))
    assert budget_alerts(_account_mom(807.0, 810.0, days=27), {A: 1000.0}, raw=later).height == 0


def test_a_team_override_changes_the_threshold_and_floor():
    rows = series(date(2026, 9, 1), date(2026, 11, 10), lambda d: 10.0 if d.month < 11 else 13.0)
    assert service_row(run(rows, date(2026, 11, 11))) is None  # +$30: under the $100 floor
    own = {A: AnomalyRule(threshold_pct=20.0, min_usd=20.0)}
    row = service_row(run(rows, date(2026, 11, 11), overrides=own))
    assert row["alerted"] and row["min_usd"] == 20.0


def test_an_acknowledged_anomaly_is_kept_apart_and_not_alerted():
    rows = series(date(2026, 9, 1), date(2026, 11, 4), lambda d: weekly(d) + (1000.0 if d == date(2026, 11, 3) else 0))
    marks = pl.DataFrame([{"month": "2026-11", "account_id": A, "service": "EC2", "feedback": "expected"}])
    row = service_row(run(rows, date(2026, 11, 5), feedback=marks))
    assert row["acknowledged"] and not row["alerted"] and row["feedback"] == "expected"
    other_month = marks.with_columns(pl.lit("2026-10").alias("month"))
    assert service_row(run(rows, date(2026, 11, 5), feedback=other_month))["alerted"]


def test_a_step_from_last_month_is_a_carry_over_not_a_new_alert():
    # Up 70% from 20 October: November's first days are above October's, but not above late October.
    rows = series(date(2026, 9, 1), date(2026, 11, 8), lambda d: weekly(d) * (1.7 if d >= date(2026, 10, 20) else 1))
    row = service_row(run(rows, date(2026, 11, 9)))
    assert row["kind"] == "step" and not row["alerted"]
    assert row["note"].startswith("Continues a step that began on 20 Oct")
    # Judged by the month-to-date rule alone (no daily history), the rise is a carry-over too.
    rows = [r for r in rows if r["date"] >= date(2026, 10, 15)]
    row = service_row(run(rows, date(2026, 11, 9)))
    assert row["kind"] == "increase" and not row["alerted"] and row["note"].startswith("Carry-over")


def test_decreases_are_reported_not_alerted():
    rows = series(date(2026, 9, 1), date(2026, 11, 10), lambda d: weekly(d) * (0.5 if d.month == 11 else 1))
    row = service_row(run(rows, date(2026, 11, 11)))
    assert row["kind"] == "decrease" and not row["alerted"]


def test_raising_demo_noise_is_a_parameter_and_the_default_is_unchanged():
    ids = [t["aws_account_id"] for t in demo.demo_teams(3)]
    base = demo.generate_costs(ids, date(2026, 10, 1), date(2026, 10, 14))
    assert base.equals(demo.generate_costs(ids, date(2026, 10, 1), date(2026, 10, 14), noise=0.03))
    noisy = demo.generate_costs(ids, date(2026, 10, 1), date(2026, 10, 14), noise=0.2)
    ratio = (noisy["cost_usd"] / base["cost_usd"]).filter(base["cost_usd"] > 1)
    assert ratio.max() > 1.05 and ratio.min() < 0.95 and ratio.max() < 1.21


def test_a_day_at_2_2x_is_a_spike_on_a_steady_series_and_usual_on_a_heavy_tailed_one():
    rng = random.Random(3)
    spike_day = date(2026, 11, 9)
    found = {}
    for name, factors in (("heavy", [0.7, 0.8, 0.9, 1.0, 1.1, 1.3, 1.8]), ("steady", [0.98, 1.0, 1.02])):
        noise = [rng.choice(factors) for _ in range(110)]
        rows = series(date(2026, 8, 1), date(2026, 11, 10),
                      lambda d, n=noise: 500 * n[(d - date(2026, 8, 1)).days] * (2.2 if d == spike_day else 1))
        found[name] = service_row(run(rows, date(2026, 11, 11)))
    steady, heavy = found["steady"], found["heavy"]
    assert steady["kind"] == "spike" and steady["alerted"] and steady["start_date"] == spike_day
    # The heavy-tailed series often has days at 1.8x: one at 2.2x is within its own volatility.
    assert heavy is None or (heavy["detector"] == "month_to_date" and not heavy["alerted"])


def test_a_month_to_date_rise_within_the_series_usual_swings_is_a_notable_change_not_an_alert():
    def swinging(d: date) -> float:  # batch jobs every other week: whole weeks at $1,300 or $700 a day
        return 1300.0 if (d - date(2026, 8, 3)).days // 7 % 2 == 0 else 700.0

    rows = series(date(2026, 8, 3), date(2026, 11, 10), lambda d: swinging(d) * (1.5 if d.month == 11 else 1))
    row = service_row(run(rows, date(2026, 11, 11)))
    assert row["kind"] == "increase" and row["change_pct"] > 20 and row["change_usd"] > 100  # notable
    assert not row["alerted"] and row["note"].startswith("Notable change, not an anomaly: month-to-date moves of up to")
    # The same +50% on a series that never swings is an anomaly.
    steady = service_row(run(series(date(2026, 8, 3), date(2026, 11, 10), lambda d: 1500.0 if d.month == 11 else 1000.0),
                             date(2026, 11, 11)))
    assert steady["alerted"]


def test_run_key_gives_the_groups_of_over_on_the_sorted_columns():
    """run_key numbers each run of equal account and service (nulls included) once: windows over it equal
    windows over the string columns, which the daily detector relies on for speed."""
    frame = pl.DataFrame({
        "account_id": ["a", "a", "a", "a", "b", "b", "b", "c"],
        "service": [None, None, "EC2", "EC2", "EC2", "S3", "S3", None],
        "cost_usd": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0],
    }).sort("account_id", "service", nulls_last=False, maintain_order=True)
    out = frame.with_columns(
        run_key("account_id", "service").alias("key"),
        pl.col("cost_usd").cum_sum().over("account_id", "service").alias("by_strings"),
        pl.col("cost_usd").cum_sum().over(run_key("account_id", "service")).alias("by_key"),
    )
    assert out["by_key"].to_list() == out["by_strings"].to_list()
    assert out.group_by("account_id", "service").agg(pl.col("key").n_unique())["key"].to_list() == [1] * 5
    assert out["key"].n_unique() == 5


def test_sorted_enum_codes_sort_as_the_strings_do():
    values = pl.Series(["b", None, "a", "B", "*", "ab", "a"])
    enum = sorted_enum(values, "*", "zz")
    coded = pl.DataFrame({"s": values}).with_columns(pl.col("s").cast(enum).alias("e"))
    assert coded.sort("e")["s"].to_list() == coded.sort("s")["s"].to_list() == [None, "*", "B", "a", "a", "ab", "b"]
    assert list(enum.categories) == ["*", "B", "a", "ab", "b", "zz"]


def test_a_series_baseline_never_reaches_into_the_series_before_it_in_the_grid():
    """The lags are shifts masked to the same series: the first days of service "y" must not take the days of
    service "x" just before them in the grid, even where those are exactly a week earlier."""
    day = date(2026, 9, 1)
    x = [("111111111111", "x", day + timedelta(days=i), 100.0) for i in range(7)]
    y = [("111111111111", "y", day + timedelta(days=7 + i), 5.0) for i in range(28)]
    grid = pl.DataFrame(x + y, schema={"account_id": pl.String, "service": pl.String, "date": pl.Date,
                                       "cost_usd": pl.Float64}, orient="row")
    out = daily_baselines(grid).filter(pl.col("service") == "y").sort("date")
    assert out["baseline_points"].to_list()[:7] == [0] * 7
    assert out["baseline_points"].to_list()[7:14] == [1] * 7
    assert out["baseline_usd"].to_list()[7] == 5.0
