"""Pure-function tests of each analysis stage, on small hand-made tables."""

from __future__ import annotations

from datetime import date, timedelta

import polars as pl
import pytest

from costagent_assets.analysis import (
    AnomalyRule,
    compute_mom_changes,
    compute_service_breakdown,
    deduplicate_raw_costs,
    detect_anomalies,
    explain_changes,
)
from costagent_assets.periods import period
from costagent_assets.schemas import conform

A, B = "000000000001", "000000000002"


def daily(account: str, service: str, first: date, last: date, usd: float | list[float]) -> list[dict]:
    """One row per day from ``first`` to ``last`` (inclusive)."""
    days = (last - first).days + 1
    amounts = usd if isinstance(usd, list) else [usd] * days
    return [
        {
            "month": f"{(first + timedelta(d)):%Y-%m}",
            "date": first + timedelta(d),
            "account_id": account,
            "service": service,
            "region": "us-east-1",
            "usage_type": "USE1-Usage",
            "cost_usd": amounts[d],
            "source": "test",
        }
        for d in range(days)
    ]


def frame(*row_lists: list[dict]) -> pl.DataFrame:
    return conform(pl.DataFrame([r for rows in row_lists for r in rows]), "raw_costs")


NOV = {"2026-11": period("2026-11", date(2026, 11, 11))}  # 10 days covered


def test_breakdown_month_to_date_and_share():
    raw = frame(
        daily(A, "EC2", date(2026, 11, 1), date(2026, 11, 10), 30.0),
        daily(A, "S3", date(2026, 11, 1), date(2026, 11, 10), 10.0),
    )
    out = compute_service_breakdown(raw, NOV)
    ec2 = out.filter(pl.col("service") == "EC2").row(0, named=True)
    assert ec2["mtd_usd"] == pytest.approx(300.0)
    assert ec2["share_pct"] == pytest.approx(75.0)
    assert ec2["month_total_usd"] is None  # the month is not complete yet
    assert ec2["days_covered"] == 10


def test_breakdown_full_month_when_complete():
    periods = {"2026-10": period("2026-10", date(2026, 11, 5))}
    raw = frame(daily(A, "EC2", date(2026, 10, 1), date(2026, 10, 31), 2.0))
    row = compute_service_breakdown(raw, periods).row(0, named=True)
    assert row["month_total_usd"] == pytest.approx(62.0)
    assert row["month_complete"] is True


def test_mom_is_like_for_like_not_against_the_whole_previous_month():
    raw = frame(
        daily(A, "EC2", date(2026, 10, 1), date(2026, 10, 31), 10.0),
        daily(A, "EC2", date(2026, 11, 1), date(2026, 11, 10), 12.0),
    )
    out = compute_mom_changes(raw, NOV, [("2026-11", A)])
    acct = out.filter(pl.col("level") == "account").row(0, named=True)
    assert acct["current_mtd_usd"] == pytest.approx(120.0)
    assert acct["previous_same_period_usd"] == pytest.approx(100.0)  # 10 days of October, not 31
    assert acct["change_pct"] == pytest.approx(20.0)
    assert acct["previous_month_total_usd"] == pytest.approx(310.0)
    # run rate: 120 so far + 12/day x 20 days left
    assert acct["projected_month_end_usd"] == pytest.approx(360.0)


def test_mom_account_without_data_is_unknown_not_zero():
    raw = frame(daily(A, "EC2", date(2026, 11, 1), date(2026, 11, 10), 5.0))
    out = compute_mom_changes(raw, NOV, [("2026-11", A), ("2026-11", B)])
    b = out.filter((pl.col("account_id") == B) & (pl.col("level") == "account")).row(0, named=True)
    assert b["has_data"] is False
    assert b["current_mtd_usd"] is None and b["change_usd"] is None


def test_mom_new_service_and_previous_month_shorter():
    periods = {"2026-03": period("2026-03", date(2026, 3, 31))}  # 30 days of March vs 28 of February
    raw = frame(
        daily(A, "EC2", date(2026, 2, 1), date(2026, 2, 28), 1.0),
        daily(A, "EC2", date(2026, 3, 1), date(2026, 3, 30), 1.0),
        daily(A, "SageMaker", date(2026, 3, 5), date(2026, 3, 30), 50.0),
    )
    out = compute_mom_changes(raw, periods, [("2026-03", A)])
    ec2 = out.filter(pl.col("service") == "EC2").row(0, named=True)
    assert ec2["previous_same_period_usd"] == pytest.approx(28.0)
    sm = out.filter(pl.col("service") == "SageMaker").row(0, named=True)
    assert sm["is_new"] is True and sm["change_pct"] is None


def test_dedup_keeps_one_row_per_day_and_line():
    rows = daily(A, "EC2", date(2026, 11, 1), date(2026, 11, 3), 1.0)
    raw = frame(rows, rows)
    assert deduplicate_raw_costs(raw).height == 3


def _mom(current: float, previous: float, service: str = "EC2", new: bool = False) -> pl.DataFrame:
    change = current - previous
    return conform(
        pl.DataFrame(
            [
                {
                    "month": "2026-11", "account_id": A, "level": "service", "service": service,
                    "current_mtd_usd": current, "previous_same_period_usd": previous, "change_usd": change,
                    "change_pct": change / previous * 100 if previous else None,
                    "previous_month_total_usd": 0.0 if new else previous * 3, "is_new": new, "has_data": True,
                }
            ]
        ),
        "mom_changes",
    )


@pytest.mark.parametrize(
    ("current", "previous", "new", "expected"),
    [
        (8.0, 2.0, False, None),  # +300% but $6: under the floor
        (1300.0, 1150.0, False, None),  # +$150 but +13%: under the threshold
        (1500.0, 1000.0, False, ("increase", True)),
        (500.0, 0.0, True, ("new_service", True)),
        (40.0, 0.0, True, None),  # new but immaterial
        (500.0, 1000.0, False, ("decrease", False)),  # reported, never alerted
    ],
)
def test_anomaly_rule_needs_both_threshold_and_floor(current, previous, new, expected):
    out = detect_anomalies(_mom(current, previous, new=new), AnomalyRule(20.0, 100.0))
    if expected is None:
        assert out.height == 0
    else:
        row = out.row(0, named=True)
        assert (row["kind"], row["alerted"]) == expected


def test_severity_follows_dollars():
    rule = AnomalyRule(20.0, 100.0)
    out = detect_anomalies(pl.concat([_mom(3000.0, 1000.0), _mom(450.0, 300.0, "S3")]), rule)
    sev = dict(zip(out["service"], out["severity"], strict=True))
    assert sev == {"EC2": "high", "S3": "low"}


def test_explanation_drivers_add_up_to_the_total_change():
    services = [f"svc{i}" for i in range(9)]
    raw = frame(
        *[daily(A, s, date(2026, 10, 1), date(2026, 10, 31), 10.0 + i) for i, s in enumerate(services)],
        *[daily(A, s, date(2026, 11, 1), date(2026, 11, 10), 10.0 + i * 1.37) for i, s in enumerate(services)],
    )
    mom = compute_mom_changes(raw, NOV, [("2026-11", A)])
    out = explain_changes(mom, detect_anomalies(mom, AnomalyRule()), NOV).row(0, named=True)
    assert len(out["drivers"]) == 6  # five named services and one "Other services" line
    assert out["drivers"][-1]["service"].startswith("Other services (4)")
    assert sum(d["change_usd"] for d in out["drivers"]) == pytest.approx(out["total_change_usd"], abs=0.01)
    assert "svc8" in out["summary"] and "November 2026" in out["summary"]


def test_explanation_for_an_account_without_data_says_so():
    mom = compute_mom_changes(frame(daily(A, "EC2", date(2026, 11, 1), date(2026, 11, 10), 1.0)), NOV,
                              [("2026-11", B), ("2026-11", A)])
    out = explain_changes(mom, detect_anomalies(mom, AnomalyRule()), NOV)
    b = out.filter(pl.col("account_id") == B).row(0, named=True)
    assert "No cost data" in b["summary"] and b["total_change_usd"] is None


def test_a_new_account_is_not_one_alert_per_service():
    raw = frame(
        daily(A, "EC2", date(2026, 11, 1), date(2026, 11, 10), 100.0),
        daily(A, "RDS", date(2026, 11, 1), date(2026, 11, 10), 100.0),
    )
    out = detect_anomalies(compute_mom_changes(raw, NOV, [("2026-11", A)]), AnomalyRule())
    services = out.filter(pl.col("level") == "service")
    assert services["kind"].to_list() == ["new_service", "new_service"]
    assert not services["alerted"].any()


def test_previous_month_never_loaded_is_unknown_not_zero():
    raw = frame(daily(A, "EC2", date(2026, 11, 1), date(2026, 11, 10), 100.0))
    mom = compute_mom_changes(raw, NOV, [("2026-11", A)], previous_loaded=set())
    acct = mom.filter(pl.col("level") == "account").row(0, named=True)
    assert acct["current_mtd_usd"] == pytest.approx(1000.0)
    assert acct["previous_same_period_usd"] is None and acct["change_usd"] is None
    assert detect_anomalies(mom, AnomalyRule()).height == 0  # no "new service" storm
    summary = explain_changes(mom, detect_anomalies(mom, AnomalyRule()), NOV)["summary"][0]
    assert "not in the warehouse yet" in summary and "costagent backfill --from 2026-10" in summary
    # Loaded but empty is a real $0: every service is new.
    loaded = compute_mom_changes(raw, NOV, [("2026-11", A)], previous_loaded={("2026-10", A)})
    assert loaded.filter(pl.col("level") == "service")["is_new"].to_list() == [True]
