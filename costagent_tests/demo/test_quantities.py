"""The demo's usage quantities: one unit per line, the cost at a fixed list price, deterministic per seed."""

from __future__ import annotations

from datetime import date

import polars as pl

from costagent_assets.demo import organisation as demo
from costagent_assets.demo.cost_source import DemoCostSource
from costagent_assets.demo.quantities import unit_price, with_quantities
from costagent_tests.peers.homes import demo_accounts

ACCOUNTS = [t["aws_account_id"] for t in demo_accounts(12)]
START, END = date(2026, 10, 1), date(2026, 11, 22)


def test_every_line_has_one_unit_and_its_cost_at_the_list_price():
    costs = demo.generate_costs(ACCOUNTS, START, END, seed=42)
    got = with_quantities(costs, 42)
    # The dollars and rows are the demo's own: planted anomalies are detected exactly as without quantities.
    assert got.select(costs.columns).equals(costs)
    assert got["usage_quantity"].null_count() == 0 and got["usage_unit"].null_count() == 0
    assert got.group_by("usage_type", "region").agg(pl.col("usage_unit").n_unique())["usage_unit"].max() == 1
    price = got.select((pl.col("cost_usd") / pl.col("usage_quantity")).alias("p"), "usage_type", "region")
    assert price.group_by("usage_type", "region").agg(pl.col("p").max() - pl.col("p").min())["p"].max() < 1e-9
    assert unit_price("USE1-BoxUsage:m5.xlarge", "us-east-1") == ("Hrs", 0.192)
    assert unit_price("US-DataTransfer-Out-Bytes", "global") == ("GB", 0.09)
    assert unit_price("USE1-USW2-AWS-Out-Bytes", "us-east-1") == ("GB", 0.02)
    unit, eu = unit_price("EUW1-BoxUsage:m5.xlarge", "eu-west-1", 42)
    assert unit == "Hrs" and 0.192 < eu < 0.192 * 1.16


def test_quantities_are_deterministic_per_seed_and_served_by_the_demo_source():
    one = DemoCostSource(seed=42).daily_costs(ACCOUNTS, START, END, as_of=date(2026, 11, 23))
    two = DemoCostSource(seed=42).daily_costs(ACCOUNTS, START, END, as_of=date(2026, 11, 23))
    assert one.equals(two) and one["usage_quantity"].null_count() == 0
    other = DemoCostSource(seed=7).daily_costs(ACCOUNTS, START, END, as_of=date(2026, 11, 23))
    assert "usage_quantity" in other.columns
