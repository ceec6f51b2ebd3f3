"""The DuckDB forecast on small synthetic series: seasonality, trend, spikes, steps, short history."""

from __future__ import annotations

import math
from datetime import date, timedelta

import polars as pl
import pytest

from costagent_assets.forecast import compute_backtest, compute_forecasts, forecast_sums
from costagent_assets.periods import period
from costagent_assets.schemas import empty

A = "000000000001"


def series(first: date, last: date, value) -> pl.DataFrame:  # noqa: ANN001
    days = [first + timedelta(d) for d in range((last - first).days + 1)]
    return pl.DataFrame(
        {"account_id": A, "service": "*", "date": days, "cost_usd": [float(value(d)) for d in days]}
    )


def next_month(daily: pl.DataFrame, cutoff: date, start: date, end: date) -> dict:
    targets = pl.DataFrame(
        {"target_id": [0], "account_id": [A], "service": ["*"], "cutoff": [cutoff],
         "target_start": [start], "target_end": [end]}
    )
    return forecast_sums(daily, targets).row(0, named=True)


CUTOFF = date(2026, 10, 31)
NOV = (date(2026, 11, 1), date(2026, 11, 30))


def test_flat_series_with_a_spike_is_not_dragged_up():
    daily = series(date(2026, 8, 1), CUTOFF, lambda d: 5000 if d == date(2026, 10, 28) else 100)
    out = next_month(daily, CUTOFF, *NOV)
    assert out["point_usd"] == pytest.approx(3000, rel=0.01)
    assert out["low_usd"] < out["point_usd"] < out["high_usd"]


def test_a_step_change_is_the_new_level():
    daily = series(date(2026, 8, 1), CUTOFF, lambda d: 200 if d >= date(2026, 10, 12) else 100)
    out = next_month(daily, CUTOFF, *NOV)
    assert out["point_usd"] == pytest.approx(6000, rel=0.03)  # 200/day, not a blend, not "growth"


def test_weekly_seasonality_follows_the_calendar():
    daily = series(date(2026, 8, 1), CUTOFF, lambda d: 50 if d.isoweekday() >= 6 else 100)
    out = next_month(daily, CUTOFF, *NOV)
    days = [NOV[0] + timedelta(i) for i in range(30)]
    expected = sum(50 if d.isoweekday() >= 6 else 100 for d in days)
    assert out["point_usd"] == pytest.approx(expected, rel=0.01)


def test_trend_is_carried_forward():
    growth = 0.05  # per month
    daily = series(date(2026, 8, 1), CUTOFF, lambda d: 100 * (1 + growth) ** ((d - date(2026, 8, 1)).days / 30))
    out = next_month(daily, CUTOFF, *NOV)
    expected = sum(100 * (1 + growth) ** ((NOV[0] + timedelta(i) - date(2026, 8, 1)).days / 30) for i in range(30))
    assert out["point_usd"] == pytest.approx(expected, rel=0.01)
    assert out["growth"] == pytest.approx(growth, abs=0.005)


def test_a_drifting_level_is_not_projected_as_a_trend_and_widens_the_range():
    """A level that wanders week to week (as real usage does) has no trend to carry forward: the weeks
    disagree, so the forecast stays near the recent level instead of extrapolating the median week's
    rise, and the range is wider than for a steady series."""
    # Week-on-week log changes, oldest to newest, of the 8 weeks up to the cutoff: their median is +0.04
    # (+19% a month if taken at face value), their spread (MAD) 0.12.
    steps = [0.15, -0.12, 0.04, -0.14, 0.16, 0.05, -0.10]
    levels = [100.0]
    for step in steps:
        levels.append(levels[-1] * math.exp(step))
    levels.reverse()  # by age in weeks: levels[0] is the last week before the cutoff

    def cost(d: date) -> float:
        return levels[min((CUTOFF - d).days // 7, len(levels) - 1)]

    daily = series(date(2026, 8, 1), CUTOFF, cost)
    out = next_month(daily, CUTOFF, *NOV)
    # Shrunk by its standard error (0.12 x 1.48 / sqrt(7)) to about a quarter: under +5% a month.
    assert 0 < out["growth"] < 0.06
    recent = daily.filter(pl.col("date") > CUTOFF - timedelta(days=14))["cost_usd"].median()
    assert out["point_usd"] == pytest.approx(recent * 30, rel=0.05)
    flat = next_month(series(date(2026, 8, 1), CUTOFF, lambda d: 100), CUTOFF, *NOV)
    assert out["high_usd"] / out["point_usd"] > 1.2 * flat["high_usd"] / flat["point_usd"]


def test_short_history_gets_no_forecast():
    daily = series(date(2026, 10, 22), CUTOFF, lambda d: 100)
    out = next_month(daily, CUTOFF, *NOV)
    assert out["method"] == "insufficient_history" and out["point_usd"] is None


def raw_rows(daily: pl.DataFrame) -> pl.DataFrame:
    return daily.with_columns(pl.lit("EC2").alias("service"), pl.col("date").dt.strftime("%Y-%m").alias("month"))


def test_month_end_is_actual_so_far_plus_the_days_left():
    raw = raw_rows(series(date(2026, 8, 1), date(2026, 11, 10), lambda d: 100))
    periods = {"2026-11": period("2026-11", date(2026, 11, 11))}
    out = compute_forecasts(raw, periods, [("2026-11", A)], backtests=empty("forecast_backtest"))
    acct = {r["horizon"]: r for r in out.filter(pl.col("service").is_null()).iter_rows(named=True)}
    assert acct["month_end"]["actual_to_date_usd"] == pytest.approx(1000)
    assert acct["month_end"]["point_usd"] == pytest.approx(3000, rel=0.01)
    assert acct["next_month"]["target_month"] == "2026-12"
    assert acct["next_month"]["point_usd"] == pytest.approx(3100, rel=0.01)
    assert out.filter(pl.col("service") == "EC2").height == 2  # the main service too


def test_backtest_scores_against_the_actual_and_the_baselines():
    # 100/day through October, then 130/day in November: a jump nobody could see coming.
    raw = raw_rows(series(date(2026, 8, 1), date(2026, 11, 30), lambda d: 130 if d.month == 11 else 100))
    periods = {"2026-11": period("2026-11", date(2026, 12, 1))}
    row = compute_backtest(raw, periods, [("2026-11", A)]).filter(pl.col("service").is_null()).row(0, named=True)
    assert row["cutoff"] == date(2026, 10, 31)
    assert row["actual_usd"] == pytest.approx(3900)
    assert row["forecast_usd"] == pytest.approx(3000, rel=0.01)
    assert row["error_pct"] == pytest.approx(-23.08, abs=0.5)
    assert row["last_month_usd"] == pytest.approx(3100) and row["run_rate_usd"] == pytest.approx(3000)
    assert row["inside"] is False
    assert math.isclose(row["ape_pct"], abs(row["error_pct"]))


def test_backtest_skips_a_month_in_progress():
    raw = raw_rows(series(date(2026, 8, 1), date(2026, 11, 10), lambda d: 100))
    periods = {"2026-11": period("2026-11", date(2026, 11, 11))}
    assert compute_backtest(raw, periods, [("2026-11", A)]).height == 0


def test_forecast_projection_feeds_the_report_and_the_ai_outlook():
    from costagent_assets.forecast import with_forecast_projection
    from costagent_assets.insights.merge import deterministic_outlook

    mom = pl.DataFrame({"month": ["2026-11", "2026-11"], "account_id": [A, A], "level": ["account", "service"],
                        "projected_month_end_usd": [100.0, 40.0]})
    forecasts = pl.DataFrame({
        "month": ["2026-11", "2026-11"], "account_id": [A, A], "service": [None, None],
        "horizon": ["month_end", "next_month"], "point_usd": [120.0, 130.0],
        "low_usd": [110.0, 115.0], "high_usd": [125.0, 150.0],
    })
    out = with_forecast_projection(mom, forecasts)
    account = out.filter(pl.col("level") == "account").row(0, named=True)
    assert account["projected_month_end_usd"] == 120.0  # the SQL forecast wins over the run rate
    assert (account["next_month_usd"], account["next_month_low_usd"], account["next_month_high_usd"]) == (130.0, 115.0, 150.0)
    assert out.filter(pl.col("level") == "service")["projected_month_end_usd"].to_list() == [40.0]
    pack = {"period": {"month_label": "November 2026"},
            "projection": {"projected_month_end_usd": 120.0, "change_vs_previous_month_total_usd": None},
            "next_month_forecast": {"month": "December 2026", "forecast_usd": 130.0, "range_80pct_usd": [115.0, 150.0]}}
    text = deterministic_outlook(pack)
    assert "November 2026 is forecast to end near $120.00" in text
    assert "December 2026 is forecast at $130.00 (80% range $115.00 to $150.00)" in text


def test_track_record_counts_only_the_six_months_before_each_month():
    from costagent_assets.forecast import track_record

    months = [f"2026-{m:02d}" for m in range(1, 12)]
    # Month m's actual is m% above a $100 forecast whose range is 100/1.075 .. 107.5: inside up to m = 7 (with
    # at most 6 scores before any month, too few to re-calibrate the range: it stays the model's).
    backtests = pl.DataFrame({
        "month": months, "account_id": A, "service": None, "forecast_usd": 100.0, "low_usd": 100 / 1.075,
        "high_usd": 107.5, "actual_usd": [100.0 + m for m in range(1, 12)],
        "ape_pct": [float(m) for m in range(1, 12)], "error_pct": [float(-m) for m in range(1, 12)],
    }, schema_overrides={"service": pl.String})
    keys = pl.DataFrame({"month": ["2026-11", "2026-03", "2026-01"], "account_id": [A, A, A]})
    track = {r["month"]: r for r in track_record(backtests, keys).iter_rows(named=True)}
    # 2026-11 sees 2026-05..2026-10 (never its own month or a later one), 2026-03 sees January and February.
    assert track["2026-11"]["track_months"] == 6
    assert track["2026-11"]["track_inside"] == 3
    assert track["2026-11"]["track_mape_pct"] == pytest.approx(7.5)
    assert track["2026-11"]["track_bias_pct"] == pytest.approx(-7.5)
    assert track["2026-03"]["track_months"] == 2
    assert track["2026-03"]["track_mape_pct"] == pytest.approx(1.5)
    assert "2026-01" not in track


def test_the_80pct_range_is_as_wide_as_the_account_own_past_errors():
    from costagent_assets.forecast import Z80, interval, interval_factors

    months = [f"2026-{m:02d}" for m in range(2, 11)]
    # Both accounts' model said +-5% (sigma = ln 1.05 / Z80), for the total and its one service; A missed by a
    # factor 1.2 each month (up or down), B by 1.01.
    rows = [{"month": m, "account_id": a, "service": service, "forecast_usd": 100.0, "high_usd": 105.0,
             "actual_usd": 100.0 * miss ** (-1) ** i}
            for a, miss in ((A, 1.2), ("000000000002", 1.01)) for i, m in enumerate(months) for service in (None, "EC2")]
    backtests = pl.DataFrame(rows, schema_overrides={"service": pl.String})
    keys = pl.DataFrame({"month": ["2026-11"] * 3, "account_id": [A, "000000000002", "000000000003"]})
    factors = {r["account_id"]: r for r in interval_factors(backtests, keys).iter_rows(named=True)}
    assert factors[A]["interval_basis"] == factors["000000000002"]["interval_basis"] == "account"
    assert factors["000000000003"]["interval_basis"] == "model" and factors["000000000003"]["interval_k"] == Z80
    sigma = math.log(1.05) / Z80
    wide, narrow = (pl.select(interval(pl.lit(100.0), pl.lit(sigma), pl.lit(factors[a]["interval_k"]))).row(0)
                    for a in (A, "000000000002"))
    # The 6 months before November give 12 scores, all the same miss: the range is exactly that wide.
    assert wide == pytest.approx((100 / 1.2, 120.0), rel=1e-6)
    assert narrow == pytest.approx((100 / 1.01, 101.0), rel=1e-6)
