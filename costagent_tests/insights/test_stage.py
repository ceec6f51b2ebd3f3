"""The AI stage's bookkeeping: what a call costs at the configured prices."""

from __future__ import annotations

import pytest

from costagent_assets.insights.stage import call_cost_usd


def test_cost_from_the_price_table():
    assert call_cost_usd("m", 1_000_000, 100_000, {"m": (0.30, 2.50)}) == pytest.approx(0.55)
    assert call_cost_usd("unknown", 10, 10, {"m": (0.30, 2.50)}) is None

