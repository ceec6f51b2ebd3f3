"""ai_savings: findings with dollars from the account's own tokens, computed here by hand from the price table."""

from __future__ import annotations

from datetime import date

import polars as pl
import pytest

from costagent_assets.ai_savings import ai_savings
from costagent_assets.schemas import conform

M = 1_000_000


def rows(account: str, model: str, provider: str, tokens: dict[str, float], cost: float,
         requests: float | None = None) -> list[dict]:
    share = cost / len(tokens)
    out = [{"month": "2026-11", "date": date(2026, 11, 2), "account_id": account, "service": model,
            "usage_type": kind, "usage_quantity": q, "usage_unit": "tokens", "cost_usd": share, "provider": provider}
           for kind, q in tokens.items()]
    if requests is not None:
        out.append({**out[0], "usage_type": "requests", "usage_quantity": requests, "usage_unit": "requests",
                    "cost_usd": 0.0})
    return out


def frame(*parts: list[dict]) -> pl.DataFrame:
    return conform(pl.DataFrame([r for p in parts for r in p]), "raw_costs")


def test_short_output_traffic_on_gpt_4o_is_priced_at_gpt_4o_mini():
    tokens = {"input_tokens": 40 * M, "cached_input_tokens": 30 * M, "output_tokens": 2 * M}
    cost = 40 * 2.50 + 30 * 1.25 + 2 * 10.00  # 157.5, the account's own bill at list price
    found = ai_savings(frame(rows("proj_a00001", "gpt-4o-2024-08-06", "openai", tokens, cost, requests=10_000)))
    cheaper = next(f for f in found["proj_a00001"] if f["kind"] == "cheaper_model")
    assert cheaper["suggested"] == "gpt-4o-mini-2024-07-18"
    assert cheaper["savings_usd"] == pytest.approx(cost - (40 * 0.15 + 30 * 0.075 + 2 * 0.60))
    assert "200 output tokens per request" in cheaper["basis"]
    # 30 of 70 million input tokens cached (43%): at 50%, 5 million more at $1.25 instead of $2.50.
    caching = next(f for f in found["proj_a00001"] if f["kind"] == "prompt_caching")
    assert caching["savings_usd"] == pytest.approx(5 * (2.50 - 1.25))


def test_long_outputs_get_no_cheaper_model_and_savings_never_exceed_the_spend():
    tokens = {"input_tokens": 10 * M, "cached_input_tokens": 0.0, "cache_write_tokens": 0.0,
              "output_tokens": 5 * M}
    # No requests from Anthropic: outputs are a third of the tokens, not short.
    found = ai_savings(frame(rows("wrkspc_01Abc", "claude-sonnet-4-20250514", "anthropic", tokens, 105.0)))
    assert [f["kind"] for f in found["wrkspc_01Abc"]] == ["prompt_caching"]
    assert found["wrkspc_01Abc"][0]["savings_usd"] == pytest.approx(5 * (3.00 - 0.30))
    # A bill far below list price (credits, discounts): the finding is capped at what was spent.
    cheap = ai_savings(frame(rows("wrkspc_01Abc", "claude-sonnet-4-20250514", "anthropic", tokens, 2.0)))
    assert cheap["wrkspc_01Abc"][0]["savings_usd"] == 2.0


def test_unknown_models_and_aws_rows_get_no_finding():
    tokens = {"input_tokens": 50 * M, "output_tokens": 1 * M}
    found = ai_savings(frame(rows("proj_b00002", "some-future-model", "openai", tokens, 80.0, requests=9_000)))
    assert found == {}
