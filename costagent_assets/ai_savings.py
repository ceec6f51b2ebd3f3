"""AI savings with dollars, from an account's own token mix this month and a dated price table.

Two findings, each with how its dollars were computed, never more than the spend it could save:

- **cheaper model**: a model with a cheaper one in the same family (``CHEAPER``) whose traffic has short
  outputs (at most ``SHORT_OUTPUT_TOKENS`` output tokens per request on average, where requests are known;
  else outputs at most ``SHORT_OUTPUT_SHARE`` of its tokens): the saving is the same tokens priced at the
  cheaper model's rates;
- **prompt caching**: a model whose cached share of input is below ``TARGET_CACHED_SHARE`` with at least
  ``MIN_INPUT_TOKENS`` input tokens: the saving is the input tokens that would move to the cached rate, at
  the difference between the two rates (cache writes, which Anthropic bills at 1.25x, are not netted out:
  the finding says so).

Not done: the Batch API's 50% discount needs requests per hour (is the traffic spread over 24 hours?); the
providers' reports read here are daily.
"""

from __future__ import annotations

import polars as pl

from costagent_assets.ai_spend import ai_rows, compact_count

# $ per million tokens: (input, cached input / cache read, cache write 5 min, output). Checked on 2026-11-29
# against Anthropic's pricing page (docs.anthropic.com/en/docs/about-claude/pricing, the table listing Claude
# Opus 4.1, i.e. as of Aug-Sep 2025) and OpenAI's pricing page (platform.openai.com/docs/pricing) as quoted in
# mid-2026 guides. A model missing here gets no finding, never a guessed price.
PRICES_AS_OF = "2025-09"
PRICES: dict[str, tuple[float, float, float | None, float]] = {
    "gpt-4o-2024-08-06": (2.50, 1.25, None, 10.00),
    "gpt-4o-mini-2024-07-18": (0.15, 0.075, None, 0.60),
    "o1-2024-12-17": (15.00, 7.50, None, 60.00),
    "o3-mini-2025-01-31": (1.10, 0.55, None, 4.40),
    "claude-opus-4-20250514": (15.00, 1.50, 18.75, 75.00),
    "claude-sonnet-4-20250514": (3.00, 0.30, 3.75, 15.00),
    "claude-3-5-haiku-20241022": (0.80, 0.08, 1.00, 4.00),
}
CHEAPER = {
    "gpt-4o-2024-08-06": "gpt-4o-mini-2024-07-18",
    "o1-2024-12-17": "o3-mini-2025-01-31",
    "claude-opus-4-20250514": "claude-sonnet-4-20250514",
    "claude-sonnet-4-20250514": "claude-3-5-haiku-20241022",
}
SHORT_OUTPUT_TOKENS = 300
SHORT_OUTPUT_SHARE = 0.10
TARGET_CACHED_SHARE = 0.50
MIN_INPUT_TOKENS = 1_000_000
_KINDS = ("input_tokens", "cached_input_tokens", "cache_write_tokens", "output_tokens")


def priced(tokens: dict[str, float], model: str) -> float:
    """What ``tokens`` (by kind) cost at ``model``'s list prices; a cache write without a price is input."""
    p_in, p_cached, p_write, p_out = PRICES[model]
    return (tokens["input_tokens"] * p_in + tokens["cached_input_tokens"] * p_cached
            + tokens["cache_write_tokens"] * (p_write if p_write is not None else p_in)
            + tokens["output_tokens"] * p_out) / 1e6


def ai_savings(raw: pl.DataFrame) -> dict[str, list[dict]]:
    """Per account, its findings (largest first): kind, model, suggested, ``savings_usd`` (month to date),
    ``basis`` (how the dollars were computed)."""
    rows = ai_rows(raw)
    if rows.is_empty():
        return {}
    mix = rows.group_by("account_id", "service").agg(
        pl.col("cost_usd").sum(),
        *[pl.col("usage_quantity").filter(pl.col("usage_type") == k).sum().alias(k) for k in _KINDS],
        pl.col("usage_quantity").filter(pl.col("usage_type") == "requests").sum().alias("requests"),
    ).sort("account_id", "service")
    out: dict[str, list[dict]] = {}
    for r in mix.iter_rows(named=True):
        model, spent = r["service"], r["cost_usd"]
        if model not in PRICES or spent <= 0:
            continue
        tokens = {k: float(r[k] or 0) for k in _KINDS}
        findings = out.setdefault(r["account_id"], [])
        cheaper = CHEAPER.get(model)
        short = _short_outputs(tokens, r["requests"])
        if cheaper and short:
            saving = min(spent, max(0.0, priced(tokens, model) - priced(tokens, cheaper)))
            if saving > 0:
                findings.append({
                    "kind": "cheaper_model", "model": model, "suggested": cheaper, "savings_usd": saving,
                    "basis": f"{short}; this month's {compact_count(sum(tokens.values()))} tokens of {model} priced at "
                             f"{cheaper}'s list rates ({PRICES_AS_OF} price table)",
                })
        total_input = tokens["input_tokens"] + tokens["cached_input_tokens"]
        cached_share = tokens["cached_input_tokens"] / total_input if total_input else 0.0
        if total_input >= MIN_INPUT_TOKENS and cached_share < TARGET_CACHED_SHARE:
            p_in, p_cached, _, _ = PRICES[model]
            moved = min(tokens["input_tokens"], TARGET_CACHED_SHARE * total_input - tokens["cached_input_tokens"])
            saving = min(spent, moved * (p_in - p_cached) / 1e6)
            if saving > 0:
                findings.append({
                    "kind": "prompt_caching", "model": model, "suggested": "prompt caching", "savings_usd": saving,
                    "basis": f"{cached_share:.0%} of {compact_count(total_input)} input tokens cached; at "
                             f"{TARGET_CACHED_SHARE:.0%}, {compact_count(moved)} tokens at ${p_cached:g} instead of "
                             f"${p_in:g} per million ({PRICES_AS_OF} price table; cache writes not netted out)",
                })
    return {a: sorted(f, key=lambda x: -x["savings_usd"]) for a, f in out.items() if f}


def _short_outputs(tokens: dict[str, float], requests: float | None) -> str | None:
    """Why this traffic counts as short-output, or None."""
    if requests:
        per_request = tokens["output_tokens"] / requests
        if per_request <= SHORT_OUTPUT_TOKENS:
            return f"{per_request:.0f} output tokens per request on average"
        return None
    total = sum(tokens.values())
    if total and tokens["output_tokens"] / total <= SHORT_OUTPUT_SHARE:
        return f"outputs are {tokens['output_tokens'] / total:.0%} of the tokens"
    return None
