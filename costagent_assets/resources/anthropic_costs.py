"""Anthropic as a cost source: the Admin API's cost report for dollars, its messages usage report for tokens.

A workspace is an account. Per month: one cost report request (daily buckets grouped by workspace and
description, at most 31 buckets a page) and one usage report request (grouped by workspace and model),
plus a page for each ``next_page``. References:
https://platform.claude.com/docs/en/api/admin/cost_report/retrieve and
https://platform.claude.com/docs/en/api/admin/usage_report/retrieve_messages.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta

import polars as pl

from costagent_assets.resources.admin_api import COST_COLUMNS, USAGE_COLUMNS, AdminApi, Exchange, ai_fetch
from costagent_assets.resources.cost_source import CostSource, CostSourceError, SourceFetch

# Usage outside any workspace lands in the organisation's default workspace, which has no id in the reports.
DEFAULT_WORKSPACE = "anthropic-default-workspace"
# The reports' token types -> our token kinds (5-minute and 1-hour cache writes are both cache writes).
TOKEN_TYPES = {
    "uncached_input_tokens": "input_tokens",
    "cache_read_input_tokens": "cached_input_tokens",
    "cache_creation.ephemeral_5m_input_tokens": "cache_write_tokens",
    "cache_creation.ephemeral_1h_input_tokens": "cache_write_tokens",
    "output_tokens": "output_tokens",
}
API_VERSION = "2023-06-01"


class AnthropicCostSource(CostSource):
    """Daily Anthropic dollars and tokens per workspace and model, from the Admin API's cost and usage reports.

    The admin key (``sk-ant-admin...``) arrives as ``dg.EnvVar("ANTHROPIC_ADMIN_KEY")`` and is never logged;
    a refused key fails the source with a message naming the variable. 429s and 5xx are retried after
    ``retry-after`` (or a backoff). A workspace the reports do not mention is "no data".
    """

    admin_key: str
    base_url: str = "https://api.anthropic.com"
    max_retries: int = 6
    max_wait_seconds: float = 60.0
    timeout_seconds: float = 60.0

    @property
    def name(self) -> str:
        return "anthropic"

    def api(self) -> AdminApi:
        """The client of the organisation's Admin API."""
        headers = {"x-api-key": self.admin_key, "anthropic-version": API_VERSION}
        return AdminApi(self.base_url, headers, "Anthropic", "ANTHROPIC_ADMIN_KEY",
                        self.max_retries, self.max_wait_seconds, self.timeout_seconds)

    def fetch(self, account_ids: Sequence[str], start: date, end: date, as_of: date) -> SourceFetch:
        """Daily rows for ``account_ids`` from ``start`` to ``end`` inclusive."""
        api, exchange = self.api(), Exchange()
        window = [("starting_at", f"{start.isoformat()}T00:00:00Z"),
                  ("ending_at", f"{(end + timedelta(days=1)).isoformat()}T00:00:00Z"),
                  ("bucket_width", "1d"), ("limit", 31)]
        costs = cost_frame(api.pages("/v1/organizations/cost_report",
                                     [*window, ("group_by[]", "workspace_id"), ("group_by[]", "description")],
                                     exchange))
        usage = usage_frame(api.pages("/v1/organizations/usage_report/messages",
                                      [*window, ("group_by[]", "workspace_id"), ("group_by[]", "model")], exchange))
        in_window = pl.col("date").is_between(start, end)
        return ai_fetch(costs.filter(in_window), usage.filter(in_window), account_ids, source="anthropic",
                        exchange=exchange)


def _day(stamp: str) -> date:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).date()


def cost_frame(pages) -> pl.DataFrame:
    """Dollars per day, workspace, model and token kind from cost report pages.

    ``amount`` is a decimal string in cents ("123.45" is $1.23). A cost that is not tokens (web search,
    code execution) keeps its description as the service and its cost type as the usage type.
    """
    rows = []
    for payload in pages:
        for bucket in payload["data"]:
            day = _day(bucket["starting_at"])
            for result in bucket.get("results") or []:
                if (result.get("currency") or "USD").upper() != "USD":
                    raise CostSourceError(f"Anthropic cost report in {result.get('currency')!r}; only USD is supported")
                token_type = result.get("token_type")
                if result.get("model") and token_type:
                    service, kind = result["model"], TOKEN_TYPES.get(token_type, token_type)
                else:
                    service = result.get("description") or result.get("cost_type") or "(no description)"
                    kind = result.get("cost_type") or "other"
                rows.append((day, result.get("workspace_id") or DEFAULT_WORKSPACE, service, kind,
                             float(result.get("amount") or 0) / 100))
    return pl.DataFrame(rows, schema=COST_COLUMNS, orient="row")


def usage_frame(pages) -> pl.DataFrame:
    """Tokens per day, workspace, model and kind from messages usage report pages."""
    rows = []
    for payload in pages:
        for bucket in payload["data"]:
            day = _day(bucket["starting_at"])
            for result in bucket.get("results") or []:
                workspace = result.get("workspace_id") or DEFAULT_WORKSPACE
                model = result.get("model") or "(no model)"
                flat = dict(result)
                for name, value in (result.get("cache_creation") or {}).items():
                    flat[f"cache_creation.{name}"] = value
                for field, kind in TOKEN_TYPES.items():
                    if field in flat:
                        rows.append((day, workspace, model, kind, float(flat[field] or 0)))
    return pl.DataFrame(rows, schema=USAGE_COLUMNS, orient="row")
