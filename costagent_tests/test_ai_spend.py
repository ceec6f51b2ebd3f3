"""ai_spend: an AI account's tokens and dollars by model, for the team email."""

from __future__ import annotations

from datetime import date

import polars as pl

from costagent_assets.ai_spend import ai_spend_by_model, compact_count
from costagent_assets.schemas import conform


def rows(*items: tuple) -> pl.DataFrame:
    return conform(pl.DataFrame(
        [{"month": "2026-11", "date": date(2026, 11, 1), "account_id": a, "service": s, "usage_type": k,
          "usage_quantity": q, "usage_unit": u, "cost_usd": c, "provider": p} for a, s, k, q, u, c, p in items]),
        "raw_costs")


def test_models_are_ranked_by_dollars_with_their_tokens():
    raw = rows(
        ("proj_a00001", "gpt-4o", "input_tokens", 2_000_000.0, "tokens", 5.0, "openai"),
        ("proj_a00001", "gpt-4o", "output_tokens", 500_000.0, "tokens", 5.0, "openai"),
        ("proj_a00001", "gpt-4o", "requests", 900.0, "requests", 0.0, "openai"),
        ("proj_a00001", "gpt-4o-mini", "input_tokens", 1_000_000.0, "tokens", 0.15, "openai"),
        ("proj_a00001", "Image models", "other", None, None, 3.0, "openai"),
        ("111111111111", "AmazonEC2", "BoxUsage", None, None, 50.0, "aws"),
    )
    out = ai_spend_by_model(raw)
    assert set(out) == {"proj_a00001"}
    section = out["proj_a00001"]
    assert [m["model"] for m in section["models"]] == ["gpt-4o", "Image models", "gpt-4o-mini"]
    gpt = section["models"][0]
    assert (gpt["tokens"], gpt["requests"], gpt["cost_usd"]) == (2_500_000.0, 900.0, 10.0)
    assert gpt["usd_per_million_tokens"] == 4.0
    # A line without token counts is n/a, never 0 tokens.
    assert section["models"][1]["tokens"] is None and section["models"][1]["tokens_text"] == "n/a"
    assert section["total_usd"] == 13.15 and section["total_tokens"] == 3_500_000.0


def test_compact_counts():
    assert [compact_count(v) for v in (None, 950, 12_345, 4_200_000, 1.1e9)] == ["n/a", "950", "12.3K", "4.2M", "1.1B"]
