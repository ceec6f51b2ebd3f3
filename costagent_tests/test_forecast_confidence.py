"""Confidence in words from the backtest, and the risks this month's data shows."""

from __future__ import annotations

from datetime import date

from costagent_assets.forecast_confidence import confidence, risks


def test_confidence_follows_the_backtested_error_and_the_history():
    assert confidence(180, 6, 3.2) == {"level": "high", "reason": "typical error 3.2% over 6 months"}
    assert confidence(180, 4, 3.2)["level"] == "medium"  # good error, too short a record for high
    assert confidence(180, 6, 12.0)["level"] == "medium"
    assert confidence(180, 6, 22.0) == {"level": "low", "reason": "typical error 22.0% over 6 months"}
    assert confidence(30, 6, 1.0) == {"level": "low", "reason": "only 30 days of history"}
    assert confidence(180, 1, 1.0) == {"level": "low", "reason": "1 month of track record"}
    assert confidence(180, 6, None)["level"] == "low"  # no % error to measure


def test_risks_name_what_could_move_the_forecast_from_the_data():
    through = date(2026, 11, 22)
    found = risks(
        [{"kind": "step", "service": "AmazonEC2", "start_date": date(2026, 11, 18)},
         {"kind": "step", "service": "AmazonS3", "start_date": date(2026, 10, 1)},  # settled long ago
         {"kind": "increase", "service": "AWSLambda", "start_date": None}],
        ["AmazonBedrock"], {"status": "warning", "mtd_pct": 78.4, "projected_pct": 104.9},
        {"point_usd": 1000.0, "low_usd": 500.0, "high_usd": 1500.0}, through)
    assert found == [
        "a step up in AmazonEC2 since 18 Nov is still settling (5 days of it so far)",
        "AmazonBedrock is new this month: little history to forecast it from",
        "the budget is 78% used and projected at 105%",
        "the 80% range is wide (about ±50%)",
    ]
    assert risks([], [], {"status": "ok", "mtd_pct": 40.0, "projected_pct": 70.0},
                 {"point_usd": 1000.0, "low_usd": 900.0, "high_usd": 1100.0}, through) == []
