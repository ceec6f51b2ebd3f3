"""OpenAI as a cost source: the organisation's Costs API for dollars, the Usage API for tokens.

An OpenAI project is an account. Per month: one Costs request (daily buckets grouped by project and line
item, up to 31 buckets a page) and one Usage request each for completions and embeddings (grouped by
project and model), plus a page for each ``next_page``: a few requests a month whatever the number of
projects. References: https://platform.openai.com/docs/api-reference/usage/costs and
https://platform.openai.com/docs/api-reference/usage/completions.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta

import polars as pl

from costagent_assets.resources.admin_api import COST_COLUMNS, USAGE_COLUMNS, AdminApi, Exchange, ai_fetch
from costagent_assets.resources.cost_source import CostSource, CostSourceError, SourceFetch

# Cost made outside any project (the organisation's default project): still someone's spend, so it gets an
# account id that a team can register.
NO_PROJECT = "openai-default-project"
# The kind after the comma of a Costs line item ("gpt-4o-2024-08-06, cached input") -> our token kind.
_LINE_KINDS = {"input": "input_tokens", "output": "output_tokens", "cached input": "cached_input_tokens"}
# Usage API fields -> token kind. input_tokens includes the cached ones; they are split below.
_USAGE_FIELDS = {"input_cached_tokens": "cached_input_tokens", "output_tokens": "output_tokens",
                 "num_model_requests": "requests"}
USAGE_ENDPOINTS = ("completions", "embeddings")


class OpenAICostSource(CostSource):
    """Daily OpenAI dollars and tokens per project and model, from the organisation's Costs and Usage APIs.

    The admin key arrives as ``dg.EnvVar("OPENAI_ADMIN_KEY")`` and is never logged; a refused key fails the
    source with a message naming the variable. 429s and 5xx are retried after ``retry-after`` (or a
    backoff), at most ``max_retries`` times. A project the response does not mention is "no data".
    """

    admin_key: str
    base_url: str = "https://api.openai.com"
    max_retries: int = 6
    max_wait_seconds: float = 60.0
    timeout_seconds: float = 60.0

    @property
    def name(self) -> str:
        return "openai"

    def api(self) -> AdminApi:
        """The client of the organisation's admin endpoints."""
        return AdminApi(self.base_url, {"Authorization": f"Bearer {self.admin_key}"}, "OpenAI", "OPENAI_ADMIN_KEY",
                        self.max_retries, self.max_wait_seconds, self.timeout_seconds)

    def fetch(self, account_ids: Sequence[str], start: date, end: date, as_of: date) -> SourceFetch:
        """Daily rows for ``account_ids`` from ``start`` to ``end`` inclusive: dollars per line item, tokens
        per model."""
        api, exchange = self.api(), Exchange()
        window = [("start_time", _epoch(start)), ("end_time", _epoch(end + timedelta(days=1))),
                  ("bucket_width", "1d"), ("limit", 31)]
        costs = costs_frame(api.pages("/v1/organization/costs",
                                      [*window, ("group_by", "project_id"), ("group_by", "line_item")], exchange))
        usage = pl.concat([
            usage_frame(api.pages(f"/v1/organization/usage/{endpoint}",
                                  [*window, ("group_by", "project_id"), ("group_by", "model")], exchange))
            for endpoint in USAGE_ENDPOINTS
        ])
        in_window = pl.col("date").is_between(start, end)
        return ai_fetch(costs.filter(in_window), usage.filter(in_window), account_ids, source="openai",
                        exchange=exchange)


def _epoch(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp())


def _day(seconds: int | float) -> date:
    return datetime.fromtimestamp(seconds, UTC).date()


def line_item_kind(line_item: str | None) -> tuple[str, str]:
    """(model, token kind) of a Costs line item: ``"gpt-4o-2024-08-06, input"`` is (gpt-4o-2024-08-06,
    input_tokens); a line that names no token kind (``"Image models"``, web search) is (line, "other")."""
    text = (line_item or "(no line item)").strip()
    model, _, kind = text.rpartition(", ")
    if model and kind.lower() in _LINE_KINDS:
        return model, _LINE_KINDS[kind.lower()]
    return text, "other"


def costs_frame(pages) -> pl.DataFrame:
    """Dollars per day, project, model and kind from Costs API pages (``organization.costs.result``)."""
    rows = []
    for payload in pages:
        for bucket in payload["data"]:
            day = _day(bucket["start_time"])
            for result in bucket.get("results") or []:
                amount = result.get("amount") or {}
                currency = (amount.get("currency") or "usd").lower()
                if currency != "usd":
                    raise CostSourceError(f"OpenAI Costs API answered in {currency!r}; only USD is supported")
                model, kind = line_item_kind(result.get("line_item"))
                rows.append((day, result.get("project_id") or NO_PROJECT, model, kind, float(amount.get("value") or 0)))
    return pl.DataFrame(rows, schema=COST_COLUMNS, orient="row")


def usage_frame(pages) -> pl.DataFrame:
    """Tokens and requests per day, project, model and kind from Usage API pages (completions, embeddings)."""
    rows = []
    for payload in pages:
        for bucket in payload["data"]:
            day = _day(bucket["start_time"])
            for result in bucket.get("results") or []:
                project = result.get("project_id") or NO_PROJECT
                model = result.get("model") or "(no model)"
                cached = int(result.get("input_cached_tokens") or 0)
                # OpenAI's input_tokens include the cached ones, which are billed at their own price.
                rows.append((day, project, model, "input_tokens", float(int(result.get("input_tokens") or 0) - cached)))
                for field, kind in _USAGE_FIELDS.items():
                    if field in result:
                        rows.append((day, project, model, kind, float(result.get(field) or 0)))
    return pl.DataFrame(rows, schema=USAGE_COLUMNS, orient="row")
