"""mom_changes materialized alone: the month so far against the same days of the previous month."""

from __future__ import annotations

from datetime import date

import polars as pl
import pytest

from costagent_tests.peers.stages import daily_costs, materialize_stage

A, B = "111111111111", "222222222222"
MONTH, AS_OF = "2025-03", date(2025, 3, 4)  # 1-3 March against 1-3 February

MARCH = daily_costs(date(2025, 3, 1), {
    A: {"AmazonEC2": [10, 12, 10], "AmazonS3": [2.5, 2.5, 2.5]},
    B: {"AWSLambda": [7, 7, 7], "AmazonSQS": [1, 1, 1]},
})
FEBRUARY = daily_costs(date(2025, 2, 1), {  # 1-5 February loaded: days 4-5 are outside the comparison
    A: {"AmazonEC2": [10] * 5, "AmazonS3": [5] * 5},
    B: {"AWSLambda": [7] * 5},
})


def breakdown(rows: dict[tuple[str, str], float]) -> pl.DataFrame:
    return pl.DataFrame([{"month": MONTH, "account_id": a, "service": s, "mtd_usd": v} for (a, s), v in rows.items()])


BREAKDOWN = breakdown({(A, "AmazonEC2"): 32.0, (A, "AmazonS3"): 7.5, (B, "AWSLambda"): 21.0, (B, "AmazonSQS"): 3.0})


def rows_of(run) -> dict[tuple[str, str | None], dict]:
    return {(r["account_id"], r["service"]): r for r in run.table("mom_changes").iter_rows(named=True)}


def test_mom_changes_compares_the_same_days_of_the_previous_month(tmp_path):
    run = materialize_stage("mom_changes", tmp_path, month=MONTH, accounts=[A, B], as_of=AS_OF,
                            upstream={"raw_costs": pl.concat([FEBRUARY, MARCH]), "service_breakdown": BREAKDOWN})
    assert run.result.success
    rows = rows_of(run)
    ec2, s3, acct_a = rows[A, "AmazonEC2"], rows[A, "AmazonS3"], rows[A, None]
    assert (ec2["current_mtd_usd"], ec2["previous_same_period_usd"], ec2["change_usd"]) == (32.0, 30.0, 2.0)
    assert ec2["change_pct"] == pytest.approx(2 / 30 * 100)
    assert (s3["change_usd"], s3["change_pct"]) == (-7.5, -50.0)
    assert (acct_a["current_mtd_usd"], acct_a["previous_same_period_usd"], acct_a["change_usd"]) == (39.5, 45.0, -5.5)
    assert acct_a["change_pct"] == pytest.approx(-5.5 / 45 * 100)
    assert acct_a["previous_month_total_usd"] == 75.0  # all of February that was loaded
    # The run rate of the 3 days covered, over the 28 days left: 39.5 + 39.5 / 3 x 28.
    assert acct_a["projected_month_end_usd"] == pytest.approx(39.5 + 39.5 / 3 * 28, abs=1e-4)
    assert (acct_a["days_covered"], acct_a["days_in_month"], acct_a["has_data"]) == (3, 31, True)
    # B: Lambda flat; SQS is new (nothing in February), so it has no %.
    assert (rows[B, "AWSLambda"]["change_usd"], rows[B, "AWSLambda"]["change_pct"]) == (0.0, 0.0)
    sqs = rows[B, "AmazonSQS"]
    assert sqs["is_new"] and sqs["change_usd"] == 3.0 and sqs["change_pct"] is None
    assert (rows[B, None]["change_usd"], rows[B, None]["change_pct"]) == (3.0, pytest.approx(3 / 21 * 100))

    meta = run.metadata("mom_changes")
    assert (meta["accounts_with_data"], meta["mtd_usd"], meta["previous_same_period_usd"]) == (2, 63.5, 66.0)
    assert (meta["change_usd"], meta["accounts_without_previous_month"]) == (-2.5, 0)
    assert run.checks() == {"services_add_up_to_account": True}


def test_mom_changes_against_a_month_never_loaded_is_unknown_not_a_rise_from_zero(tmp_path):
    run = materialize_stage("mom_changes", tmp_path, month=MONTH, accounts=[A, B], as_of=AS_OF,
                            upstream={"raw_costs": MARCH, "service_breakdown": BREAKDOWN})
    assert run.result.success
    rows = rows_of(run)
    for key, r in rows.items():
        assert r["previous_same_period_usd"] is None, key
        assert r["change_usd"] is None and r["change_pct"] is None, key
        assert r["previous_month_total_usd"] is None and not r["is_new"], key
    assert rows[A, None]["current_mtd_usd"] == 39.5 and rows[B, None]["current_mtd_usd"] == 24.0
    meta = run.metadata("mom_changes")
    assert meta["accounts_without_previous_month"] == 2 and meta["change_usd"] == 0.0
    assert run.checks() == {"services_add_up_to_account": True}


def test_mom_changes_blocks_on_a_service_breakdown_that_disagrees_with_raw_costs(tmp_path):
    # service_breakdown left from before raw_costs was reloaded: A's EC2 said $30, raw costs now say $32.
    stale = breakdown({(A, "AmazonEC2"): 30.0, (A, "AmazonS3"): 7.5, (B, "AWSLambda"): 21.0, (B, "AmazonSQS"): 3.0})
    run = materialize_stage("mom_changes", tmp_path, month=MONTH, accounts=[A, B], as_of=AS_OF,
                            upstream={"raw_costs": pl.concat([FEBRUARY, MARCH]), "service_breakdown": stale})
    assert run.checks() == {"services_add_up_to_account": False}
    [evaluation] = run.result.get_asset_check_evaluations()
    assert evaluation.metadata["largest_difference_usd"].value == pytest.approx(2.0)
    assert not run.result.success  # a failed blocking check fails the step: downstream stages would not run
