"""What the OpenAI and Anthropic cost sources share: paged GETs of an organisation's admin API with 429
backoff, and how their dollars and tokens become ``raw_costs`` rows (the service is the model, the token
kind is the usage type, the quantity and unit sit next to the dollars).

Both APIs answer a page of daily buckets with ``has_more`` and ``next_page``; the next page is asked with
``page=<next_page>``. Both answer 429 with ``retry-after`` when the organisation's admin rate limit is hit.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import polars as pl

from costagent_assets.resources.cost_source import CostSourceError, SourceFetch, split_registered
from costagent_assets.resources.http_retry import Exchange, header_seconds, json_body, send_with_retries

if TYPE_CHECKING:  # imported when used, to keep CLI starts fast
    import httpx

# Token kinds, in the order a report lists them; "requests" counts calls (no price of its own).
TOKEN_KINDS = ("input_tokens", "cached_input_tokens", "cache_write_tokens", "output_tokens", "requests")
COST_COLUMNS = {"date": pl.Date, "account_id": pl.String, "service": pl.String, "usage_type": pl.String,
                "cost_usd": pl.Float64}
USAGE_COLUMNS = {"date": pl.Date, "account_id": pl.String, "service": pl.String, "usage_type": pl.String,
                 "usage_quantity": pl.Float64}
_KEY = ["date", "account_id", "service", "usage_type"]
MAX_PAGES = 500  # a guard against a next_page that never ends


@dataclass
class AdminApi:
    """GET pages of one provider's admin API; ``label`` and ``key_variable`` name it in errors, never the key."""

    base_url: str
    headers: Mapping[str, str]
    label: str
    key_variable: str
    max_retries: int = 6
    max_wait_seconds: float = 60.0
    timeout_seconds: float = 60.0

    def pages(self, path: str, params: Sequence[tuple[str, str | int]], exchange: Exchange) -> Iterator[dict]:
        """Every page of ``path``: follows ``next_page`` while ``has_more`` says so."""
        import httpx

        url = self.base_url.rstrip("/") + path
        page: str | None = None
        with httpx.Client(timeout=httpx.Timeout(self.timeout_seconds, connect=10.0)) as client:
            for _ in range(MAX_PAGES):
                query = list(params) + ([("page", page)] if page else [])
                payload = self._get(client, url, query, path, exchange)
                yield payload
                page = payload.get("next_page")
                if not payload.get("has_more") or not page:
                    return
        raise CostSourceError(f"{self.label} {path}: more than {MAX_PAGES} pages; nothing was stored")

    def _get(self, client: httpx.Client, url: str, query: list, path: str, exchange: Exchange) -> dict:
        where = f"{self.label} {path}"
        response = send_with_retries(
            lambda: client.get(url, params=query, headers=dict(self.headers)),
            exchange,
            max_retries=self.max_retries,
            max_wait=self.max_wait_seconds,
            where=where,
            refused=(f"{self.label} refused the admin key; check {self.key_variable} "
                     "(it must be an organisation admin key, not a project or API key)"),
            announced_wait=lambda response: header_seconds(response, "retry-after"),
        )
        payload = json_body(response, where)
        if not isinstance(payload, dict) or not isinstance(payload.get("data"), list):
            raise CostSourceError(f"{where}: HTTP {response.status_code} without a list of buckets in 'data'")
        return payload


def ai_fetch(costs: pl.DataFrame, usage: pl.DataFrame, account_ids: Sequence[str], *, source: str,
             exchange: Exchange) -> SourceFetch:
    """The ``raw_costs`` rows of one provider's month: the dollars of ``costs`` (COST_COLUMNS) with the
    quantities of ``usage`` (USAGE_COLUMNS) on the same day, account, model and token kind.

    Dollars come only from the cost report, so they add up to the provider's bill; a token kind with no
    cost line (requests, or tokens billed under another line) is a row of $0 carrying its quantity.
    Accounts not asked for are returned as unregistered, with their dollars.
    """
    costs = costs.group_by(_KEY).agg(pl.col("cost_usd").sum())
    usage = usage.group_by(_KEY).agg(pl.col("usage_quantity").sum())
    rows = costs.join(usage, on=_KEY, how="full", coalesce=True).with_columns(
        pl.col("cost_usd").fill_null(0.0),
        pl.when(pl.col("usage_quantity").is_not_null())
        .then(pl.when(pl.col("usage_type") == "requests").then(pl.lit("requests")).otherwise(pl.lit("tokens")))
        .alias("usage_unit"),
        pl.lit("global").alias("region"),
        pl.lit(source).alias("source"),
        pl.lit(source).alias("provider"),
        pl.lit("USD").alias("currency"),
        pl.lit("usage").alias("charge_category"),
    ).sort(_KEY)
    registered, unregistered = split_registered(rows, account_ids)
    return SourceFetch(registered, requests=exchange.requests, cost_usd=0.0, retries=exchange.retries,
                       unregistered=unregistered)
