"""The demo organisation's AI accounts: OpenAI projects and Anthropic workspaces with realistic model mixes.

Rows have the shape the OpenAI and Anthropic sources give (the service is the model, the usage type the
token kind, the tokens in ``usage_quantity``), so the demo shows AI spend end to end with no key. Two
anomalies are planted so that one of each is in every month (even months on the first account of each
provider, odd months on the second):

- a **runaway key**: from day ``RUNAWAY_FROM`` the project's main model costs ``RUNAWAY_FACTOR`` times its
  usual (a leaked or looping key);
- a **new expensive model**: from day ``NEW_MODEL_FROM`` the workspace starts calling ``NEW_MODEL``.

Every value is a pure function of (seed, account, model, day). Polars and the standard library only.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import date, timedelta

import polars as pl

from costagent_assets.schemas import SCHEMAS

_DOMAIN = "demo.costagent.example"
# (team name, account id, provider, {model: usual $ a day})
AI_ACCOUNTS: tuple[tuple[str, str, str, dict[str, float]], ...] = (
    ("Search Assistant", "proj_q7Vd2sK9aLm3", "openai",
     {"gpt-4o-2024-08-06": 60.0, "gpt-4o-mini-2024-07-18": 9.0, "text-embedding-3-small": 1.5}),
    ("Support Bot", "proj_X2b8Lp4Rt6Wn", "openai", {"gpt-4o-mini-2024-07-18": 28.0, "o1-2024-12-17": 35.0}),
    ("Research Agents", "wrkspc_01JwQvzr7rXLA5AGx3Hk", "anthropic",
     {"claude-sonnet-4-20250514": 70.0, "claude-3-5-haiku-20241022": 12.0}),
    ("Code Review", "wrkspc_01K3mPq8sTu2VwXy4ZaB", "anthropic", {"claude-sonnet-4-20250514": 45.0}),
)
# $ per million tokens (input, cached input, cache write, output): the demo's own rates, for token counts.
_RATES = {
    "gpt-4o-2024-08-06": (2.50, 1.25, None, 10.0), "gpt-4o-mini-2024-07-18": (0.15, 0.075, None, 0.60),
    "o1-2024-12-17": (15.0, 7.50, None, 60.0), "text-embedding-3-small": (0.02, None, None, None),
    "claude-sonnet-4-20250514": (3.0, 0.30, 3.75, 15.0), "claude-3-5-haiku-20241022": (0.80, 0.08, 1.0, 4.0),
    "claude-opus-4-20250514": (15.0, 1.50, 18.75, 75.0),
}
_KINDS = ("input_tokens", "cached_input_tokens", "cache_write_tokens", "output_tokens")
_SHARES = (0.45, 0.08, 0.07, 0.40)  # of a model's daily $, by kind (re-normalised over the kinds it bills)
_TOKENS_PER_REQUEST = 2_500
RUNAWAY_FROM, RUNAWAY_FACTOR = 4, 10.0
NEW_MODEL, NEW_MODEL_FROM, NEW_MODEL_USD = "claude-opus-4-20250514", 5, 160.0


def is_ai_account(account_id: str) -> bool:
    """Whether ``account_id`` is one of the demo's AI accounts."""
    return account_id in {a[1] for a in AI_ACCOUNTS}


def demo_ai_teams(n: int) -> list[dict]:
    """The first ``n`` AI teams (at most four), with the source that reports each."""
    return [{"team_name": name, "aws_account_id": account, "team_email": f"{account.split('_')[0]}-"
             f"{name.lower().replace(' ', '-')}@{_DOMAIN}", "source": provider}
            for name, account, provider, _ in AI_ACCOUNTS[:n]]


def _noise(seed: int, *parts: object) -> float:
    """A factor in [0.95, 1.05], stable across processes."""
    digest = hashlib.blake2b(repr((seed, *parts)).encode(), digest_size=8).digest()
    return 0.95 + 0.1 * int.from_bytes(digest, "big") / 2**64


def planted(account_id: str, day: date) -> list[tuple[str, str]]:
    """The anomalies planted on ``account_id`` in ``day``'s month: (kind, model), kind "runaway_key" or
    "new_model"."""
    index = [a[1] for a in AI_ACCOUNTS].index(account_id) if is_ai_account(account_id) else -1
    if index < 0:
        return []
    _, _, provider, models = AI_ACCOUNTS[index]
    turn = (day.year * 12 + day.month) % 2  # 0: the provider's first account, 1: its second
    position = [a[1] for a in AI_ACCOUNTS if a[2] == provider].index(account_id)
    if position != turn:
        return []
    if provider == "openai":
        return [("runaway_key", max(models, key=models.get))]
    return [("new_model", NEW_MODEL)]


def _daily_usd(account_id: str, models: dict[str, float], day: date, seed: int) -> dict[str, float]:
    usd = {m: base * _noise(seed, account_id, m, day) for m, base in models.items()}
    for kind, model in planted(account_id, day):
        if kind == "runaway_key" and day.day >= RUNAWAY_FROM:
            usd[model] *= RUNAWAY_FACTOR
        if kind == "new_model" and day.day >= NEW_MODEL_FROM:
            usd[model] = NEW_MODEL_USD * _noise(seed, account_id, model, day)
    return usd


def generate_ai_costs(account_ids: Sequence[str], start: date, end: date, seed: int, as_of: date) -> pl.DataFrame:
    """Daily ``raw_costs`` rows (without ``month``) of the demo AI accounts among ``account_ids``, from
    ``start`` to ``end`` inclusive and before ``as_of``."""
    rows = []
    last = min(end, as_of - timedelta(days=1))
    for _name, account, provider, models in AI_ACCOUNTS:
        if account not in account_ids:
            continue
        day = start
        while day <= last:
            for model, usd in _daily_usd(account, models, day, seed).items():
                rates = _RATES[model]
                billed = [(k, s, r) for k, s, r in zip(_KINDS, _SHARES, rates, strict=True) if r is not None]
                whole = sum(s for _, s, _ in billed)
                tokens = 0.0
                for kind, share, rate in billed:
                    cost = usd * share / whole
                    quantity = round(cost / rate * 1e6)
                    tokens += quantity
                    rows.append((day, account, model, kind, float(quantity), "tokens", cost, provider))
                if provider == "openai":
                    rows.append((day, account, model, "requests", float(round(tokens / _TOKENS_PER_REQUEST)),
                                 "requests", 0.0, provider))
            day += timedelta(days=1)
    frame = pl.DataFrame(rows, orient="row", schema={
        "date": pl.Date, "account_id": pl.String, "service": pl.String, "usage_type": pl.String,
        "usage_quantity": pl.Float64, "usage_unit": pl.String, "cost_usd": pl.Float64, "provider": pl.String})
    return frame.with_columns(
        pl.lit("global").alias("region"), pl.lit("demo").alias("source"), pl.lit("USD").alias("currency"),
        pl.lit("usage").alias("charge_category"),
    ).select([c for c in SCHEMAS["raw_costs"] if c != "month"])
