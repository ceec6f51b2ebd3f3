"""forecasts materialized alone: the month end and the next month, as of 6 March 2025 (1-5 March known)."""

from __future__ import annotations

from datetime import date

from costagent_tests.peers.stages import daily_costs, materialize_stage

A, B = "111111111111", "222222222222"
MONTH, AS_OF = "2025-03", date(2025, 3, 6)


def rows_of(run) -> dict[tuple[str, str | None, str], dict]:
    return {(r["account_id"], r["service"], r["horizon"]): r for r in run.table("forecasts").iter_rows(named=True)}


def test_forecasts_with_under_14_days_of_history_say_insufficient_history(tmp_path):
    raw = daily_costs(date(2025, 3, 1), {A: {"AmazonEC2": [12] * 5}, B: {"AWSLambda": [5] * 5}})
    run = materialize_stage("forecasts", tmp_path, month=MONTH, accounts=[A, B], as_of=AS_OF,
                            upstream={"raw_costs": raw})
    assert run.result.success
    rows = rows_of(run)
    assert len(rows) == 8  # (account total + its service) x (month end, next month), two accounts
    for key, r in rows.items():
        assert r["method"] == "insufficient_history" and r["history_days"] == 5, key
        assert r["point_usd"] is None and r["low_usd"] is None and r["high_usd"] is None, key
    # What was spent is still said: 5 x 12 and 5 x 5.
    assert rows[A, None, "month_end"]["actual_to_date_usd"] == 60.0
    assert rows[B, None, "month_end"]["actual_to_date_usd"] == 25.0
    assert rows[A, None, "next_month"]["target_month"] == "2025-04"
    meta = run.metadata("forecasts")
    assert meta["accounts_without_forecast"] == 2


def test_forecasts_of_a_flat_history_continue_it(tmp_path):
    # $10 and $5 a day from 6 January to 5 March: 59 days; the 26 days left of March and April's 30 follow.
    raw = daily_costs(date(2025, 1, 6), {A: {"AmazonEC2": [10] * 59}, B: {"AWSLambda": [5] * 59}})
    run = materialize_stage("forecasts", tmp_path, month=MONTH, accounts=[A, B], as_of=AS_OF,
                            upstream={"raw_costs": raw})
    rows = rows_of(run)
    end, nxt = rows[A, None, "month_end"], rows[A, None, "next_month"]
    assert end["method"] != "insufficient_history"
    assert (end["actual_to_date_usd"], end["point_usd"]) == (50.0, 50.0 + 26 * 10)
    assert end["low_usd"] <= end["point_usd"] <= end["high_usd"]
    assert (nxt["actual_to_date_usd"], nxt["point_usd"]) == (0.0, 300.0)
    assert rows[B, None, "month_end"]["point_usd"] == 25.0 + 26 * 5
    assert rows[A, "AmazonEC2", "month_end"]["point_usd"] == 310.0
    meta = run.metadata("forecasts")
    assert (meta["accounts_without_forecast"], meta["month_end_usd"]) == (0, 310.0 + 155.0)
