"""forecast_backtest materialized alone: March 2025 replayed from what was known on 28 February."""

from __future__ import annotations

from datetime import date

import polars as pl
import pytest

from costagent_tests.peers.stages import daily_costs, materialize_stage

A, B = "111111111111", "222222222222"
MONTH, AS_OF = "2025-03", date(2025, 4, 2)  # March is complete


def rows_of(run) -> dict[tuple[str, str | None], dict]:
    return {(r["account_id"], r["service"]): r for r in run.table("forecast_backtest").iter_rows(named=True)}


def test_backtest_with_under_14_days_of_history_says_insufficient_history(tmp_path):
    # Only 19-28 February before the cutoff: 10 days of history.
    raw = pl.concat([
        daily_costs(date(2025, 2, 19), {A: {"AmazonEC2": [10] * 10}, B: {"AWSLambda": [4] * 10}}),
        daily_costs(date(2025, 3, 1), {A: {"AmazonEC2": [12] * 31}, B: {"AWSLambda": [5] * 31}}),
    ])
    run = materialize_stage("forecast_backtest", tmp_path, month=MONTH, accounts=[A, B], as_of=AS_OF,
                            upstream={"raw_costs": raw})
    assert run.result.success
    rows = rows_of(run)
    assert set(rows) == {(A, None), (A, "AmazonEC2"), (B, None), (B, "AWSLambda")}
    a = rows[A, None]
    assert (a["method"], a["history_days"], a["cutoff"]) == ("insufficient_history", 10, date(2025, 2, 28))
    assert a["forecast_usd"] is None and a["ape_pct"] is None and a["inside"] is None
    # The baselines are still scored: 31 x 12 = 372 actual; last month's 10 days = 100; 7 x 10 / 7 x 31 = 310.
    assert (a["actual_usd"], a["last_month_usd"], a["run_rate_usd"]) == (372.0, 100.0, 310.0)
    assert a["ape_last_month_pct"] == pytest.approx(272 / 372 * 100)
    assert a["ape_run_rate_pct"] == pytest.approx(62 / 372 * 100)
    assert rows[B, None]["actual_usd"] == 155.0 and rows[B, None]["method"] == "insufficient_history"
    meta = run.metadata("forecast_backtest")
    assert (meta["rows"], meta["account_months_scored"]) == (4, 0) and "mape_pct" not in meta


def test_backtest_scores_a_flat_account_exactly_and_misses_a_step(tmp_path):
    # A: $10 every day since January. B: $4 a day, then $5 from 1 March (a step no forecast could see).
    raw = daily_costs(date(2025, 1, 1), {A: {"AmazonEC2": [10] * 90}, B: {"AWSLambda": [4] * 59 + [5] * 31}})
    run = materialize_stage("forecast_backtest", tmp_path, month=MONTH, accounts=[A, B], as_of=AS_OF,
                            upstream={"raw_costs": raw})
    rows = rows_of(run)
    a, b = rows[A, None], rows[B, None]
    assert (a["forecast_usd"], a["actual_usd"], a["ape_pct"]) == (310.0, 310.0, 0.0)
    assert a["low_usd"] <= 310.0 <= a["high_usd"] and a["inside"]
    assert (b["forecast_usd"], b["actual_usd"], b["ape_pct"], b["inside"]) == (124.0, 155.0, 20.0, False)
    assert a["history_days"] == 56 and a["method"] != "insufficient_history"
    meta = run.metadata("forecast_backtest")
    # MAPE over the two accounts: (0 + 20) / 2; last month: (|280-310|/310 + |112-155|/155) / 2.
    assert (meta["account_months_scored"], meta["mape_pct"], meta["interval_coverage_pct"]) == (2, 10.0, 50.0)
    assert meta["mape_last_month_pct"] == pytest.approx((30 / 310 + 43 / 155) / 2 * 100, abs=0.01)


def test_backtest_of_a_month_in_progress_has_no_rows(tmp_path):
    raw = daily_costs(date(2025, 3, 1), {A: {"AmazonEC2": [10] * 5}})
    run = materialize_stage("forecast_backtest", tmp_path, month=MONTH, accounts=[A], as_of=date(2025, 3, 6),
                            upstream={"raw_costs": raw})
    assert run.result.success and run.table("forecast_backtest").height == 0
    assert run.metadata("forecast_backtest")["empty_partitions"] == 1
