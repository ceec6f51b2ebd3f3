"""AI spend by model: the tokens and dollars of an account's AI-provider rows, for the team email.

The rows are ``raw_costs`` rows whose service is a model and whose usage type is a token kind (see
``resources/admin_api.py``); quantities sit in ``usage_quantity``. Pure polars, no I/O.
"""

from __future__ import annotations

import polars as pl

AI_PROVIDERS = ("openai", "anthropic")
TOKEN_KINDS = ("input_tokens", "cached_input_tokens", "cache_write_tokens", "output_tokens")


def ai_rows(raw: pl.DataFrame) -> pl.DataFrame:
    """The rows of AI providers, and of any source that counts tokens or requests."""
    if raw.is_empty():
        return raw
    return raw.filter(pl.col("provider").is_in(AI_PROVIDERS) | pl.col("usage_unit").is_in(["tokens", "requests"]))


def compact_count(value: float | None) -> str:
    """``12,345`` -> ``12.3K``; ``4.2M``; ``1.1B``; ``n/a`` for None (unknown, never 0)."""
    if value is None:
        return "n/a"
    for size, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if abs(value) >= size:
            return f"{value / size:.1f}{suffix}"
    return f"{value:.0f}"


def ai_spend_by_model(raw: pl.DataFrame) -> dict[str, dict]:
    """Per account with AI rows: its models by dollars (tokens by kind, requests, $ per million tokens) and totals.

    A model whose source gives no token counts has ``tokens`` None (shown as "n/a", never 0).
    """
    rows = ai_rows(raw)
    if rows.is_empty():
        return {}
    kinds = [pl.col("usage_quantity").filter(pl.col("usage_type") == k).sum().alias(k) for k in TOKEN_KINDS]
    per_model = rows.group_by("account_id", "service").agg(
        pl.col("cost_usd").sum(),
        *kinds,
        pl.col("usage_quantity").filter(pl.col("usage_type") == "requests").sum().alias("requests"),
        (pl.col("usage_unit") == "tokens").any().alias("has_tokens"),
    ).sort(["account_id", "cost_usd", "service"], descending=[False, True, False])
    out: dict[str, dict] = {}
    for r in per_model.iter_rows(named=True):
        tokens = sum(r[k] or 0 for k in TOKEN_KINDS) if r["has_tokens"] else None
        section = out.setdefault(r["account_id"], {"models": [], "total_usd": 0.0, "total_tokens": None})
        section["models"].append({
            "model": r["service"],
            "cost_usd": r["cost_usd"],
            **{k: r[k] for k in TOKEN_KINDS},
            "requests": r["requests"] or None,
            "tokens": tokens,
            "tokens_text": compact_count(tokens),
            "usd_per_million_tokens": r["cost_usd"] / tokens * 1e6 if tokens else None,
        })
        section["total_usd"] += r["cost_usd"]
        if tokens is not None:
            section["total_tokens"] = (section["total_tokens"] or 0) + tokens
    for section in out.values():
        section["total_tokens_text"] = compact_count(section["total_tokens"])
    return out


def organisation_ai_spend(sections: dict[str, dict], names: dict[str, str]) -> dict | None:
    """The admin report's "AI spend by model": per model across the AI accounts (``ai_spend_by_model``
    sections, with their ``savings``), dollars, tokens and accounts, largest first; and the AI savings found.
    None when no account has AI rows."""
    if not sections:
        return None
    models: dict[str, dict] = {}
    for section in sections.values():
        for m in section["models"]:
            row = models.setdefault(m["model"], {"model": m["model"], "cost_usd": 0.0, "tokens": None, "accounts": 0})
            row["cost_usd"] += m["cost_usd"]
            row["accounts"] += 1
            if m["tokens"] is not None:
                row["tokens"] = (row["tokens"] or 0) + m["tokens"]
    ranked = sorted(models.values(), key=lambda r: (-r["cost_usd"], r["model"]))
    for row in ranked:
        row["tokens_text"] = compact_count(row["tokens"])
    savings = sorted(({**f, "team_name": names.get(a, a), "account_id": a}
                      for a, s in sections.items() for f in s.get("savings", [])),
                     key=lambda f: -f["savings_usd"])
    return {"models": ranked, "total_usd": sum(r["cost_usd"] for r in ranked), "accounts": len(sections),
            "savings": savings, "savings_usd": sum(f["savings_usd"] for f in savings)}
