"""service_breakdown materialized alone from two accounts' raw costs.

Its blocking check (``adds_up_to_raw_costs``) compares the stage's output with its own input; no valid
raw_costs partition makes it fail, so there is no failing-check test here.
"""

from __future__ import annotations

from datetime import date

import pytest

from costagent_tests.peers.stages import daily_costs, materialize_stage

A, B = "111111111111", "222222222222"


def test_service_breakdown_sums_each_service_and_its_share(tmp_path):
    raw = daily_costs(date(2025, 3, 1), {
        A: {"AmazonEC2": [10, 12, 10], "AmazonS3": [2.5, 2.5, 2.5]},
        B: {"AWSLambda": [7, 7, 7]},
    })
    run = materialize_stage("service_breakdown", tmp_path, month="2025-03", accounts=[A, B],
                            as_of=date(2025, 3, 4), upstream={"raw_costs": raw})
    assert run.result.success
    rows = {(r["account_id"], r["service"]): r for r in run.table("service_breakdown").iter_rows(named=True)}
    assert set(rows) == {(A, "AmazonEC2"), (A, "AmazonS3"), (B, "AWSLambda")}
    assert rows[A, "AmazonEC2"]["mtd_usd"] == 32.0 and rows[A, "AmazonS3"]["mtd_usd"] == 7.5
    assert rows[A, "AmazonEC2"]["share_pct"] == pytest.approx(32 / 39.5 * 100)
    assert rows[A, "AmazonS3"]["share_pct"] == pytest.approx(7.5 / 39.5 * 100)
    assert rows[B, "AWSLambda"]["mtd_usd"] == 21.0 and rows[B, "AWSLambda"]["share_pct"] == 100.0
    for r in rows.values():
        # 1-3 March of 31 days: the full month is not known yet.
        assert (r["through_date"], r["days_covered"], r["month_complete"]) == (date(2025, 3, 3), 3, False)
        assert r["month_total_usd"] is None
    meta = run.metadata("service_breakdown")
    assert (meta["rows"], meta["services"], meta["mtd_usd"]) == (3, 3, 60.5)
    assert run.checks() == {"adds_up_to_raw_costs": True}


def test_service_breakdown_of_a_complete_month_has_its_total(tmp_path):
    raw = daily_costs(date(2025, 2, 1), {A: {"AmazonEC2": [1.25] * 28}, B: {"AmazonEC2": [2.0] * 27 + [None]}})
    run = materialize_stage("service_breakdown", tmp_path, month="2025-02", accounts=[A, B],
                            as_of=date(2025, 3, 10), upstream={"raw_costs": raw})
    rows = {r["account_id"]: r for r in run.table("service_breakdown").iter_rows(named=True)}
    assert rows[A]["month_total_usd"] == 35.0 and rows[A]["month_complete"] and rows[A]["days_covered"] == 28
    assert rows[B]["month_total_usd"] == 54.0  # a missing day adds nothing; it is not guessed
    assert run.checks() == {"adds_up_to_raw_costs": True}
