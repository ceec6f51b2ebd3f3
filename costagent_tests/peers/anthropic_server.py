"""A loopback server answering like Anthropic's Admin API cost report and messages usage report.

Shapes from the API reference: https://platform.claude.com/docs/en/api/admin/cost_report/retrieve (``GET
/v1/organizations/cost_report``: ``{"data": [{"starting_at", "ending_at", "results": [{"amount": "123.78912"
(cents, a decimal string), "currency": "USD", "cost_type": "tokens", "description", "model", "service_tier",
"context_window", "token_type": "uncached_input_tokens", "workspace_id"}]}], "has_more", "next_page"}``) and
https://platform.claude.com/docs/en/api/admin/usage_report/retrieve_messages (``GET
/v1/organizations/usage_report/messages``: results with ``uncached_input_tokens``, ``cache_read_input_tokens``,
``cache_creation: {ephemeral_5m_input_tokens, ephemeral_1h_input_tokens}``, ``output_tokens``,
``server_tool_use``, ``model``, ``workspace_id``, ``api_key_id``, ...). Query: ``starting_at``/``ending_at``
(RFC 3339), ``bucket_width=1d``, ``group_by[]``, ``limit`` (at most 31), ``page``; headers ``x-api-key`` and
``anthropic-version``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, datetime

import polars as pl

from costagent_tests.peers.admin_api_server import AdminApiPeer, days, group_by

# $ per million tokens (input, cache read, 5-minute cache write, 1-hour cache write, output): the peer's own
# bill, not a claim about Anthropic's prices.
PRICES = {"claude-sonnet-4-20250514": (3.0, 0.30, 3.75, 6.0, 15.0),
          "claude-3-5-haiku-20241022": (0.80, 0.08, 1.0, 1.6, 4.0),
          "claude-opus-4-20250514": (15.0, 1.50, 18.75, 30.0, 75.0)}
NAMES = {"claude-sonnet-4-20250514": "Claude Sonnet 4", "claude-3-5-haiku-20241022": "Claude Haiku 3.5",
         "claude-opus-4-20250514": "Claude Opus 4"}
TOKENS = ("uncached_input_tokens", "cache_read_input_tokens", "cache_creation.ephemeral_5m_input_tokens",
          "cache_creation.ephemeral_1h_input_tokens", "output_tokens")
LABELS = ("Input Tokens", "Cache Read", "Cache Write (5m)", "Cache Write (1h)", "Output Tokens")
USAGE_SCHEMA = {"date": pl.Date, "workspace_id": pl.String, "model": pl.String,
                **{t: pl.Int64 for t in TOKENS}}


def sample_usage(workspaces: list[str | None], start: date, end: date, seed: int = 5) -> pl.DataFrame:
    """Two models per workspace (None: the default workspace), every day from ``start`` to ``end`` exclusive."""
    draw = random.Random(seed)
    rows = []
    for workspace in workspaces:
        for model in draw.sample(sorted(PRICES), 2):
            for day in days(start, end):
                base = draw.randint(10**5, 5 * 10**6)
                rows.append((day, workspace, model, base, base * draw.randint(0, 4), base // draw.randint(5, 20),
                             base // draw.randint(20, 100), base // draw.randint(4, 12)))
    return pl.DataFrame(rows, schema=USAGE_SCHEMA, orient="row")


def bill(usage: pl.DataFrame) -> pl.DataFrame:
    """The cost report's token lines of ``usage``: (date, workspace_id, model, token_type, description, cents)."""
    rows = []
    for r in usage.iter_rows(named=True):
        for token, label, price in zip(TOKENS, LABELS, PRICES[r["model"]], strict=True):
            if r[token]:
                rows.append((r["date"], r["workspace_id"], r["model"], token,
                             f"{NAMES[r['model']]} Usage - {label}", r[token] * price / 1e6 * 100))
    return pl.DataFrame(rows, schema={"date": pl.Date, "workspace_id": pl.String, "model": pl.String,
                                      "token_type": pl.String, "description": pl.String, "cents": pl.Float64},
                        orient="row")


@dataclass
class AnthropicPeer(AdminApiPeer):
    """Serves ``usage`` (USAGE_SCHEMA rows), its ``bill``, and ``web_search_cents`` per (date, workspace)."""

    usage: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=USAGE_SCHEMA))
    web_search_cents: dict[tuple[date, str | None], float] = field(default_factory=dict)
    admin_key: str = "sk-ant-admin01-test-0123456789"

    def __post_init__(self) -> None:
        super().__post_init__()
        self.costs = bill(self.usage)

    def total_usd(self, workspace: str | None = None, through: date | None = None) -> float:
        """What the cost report adds up to (one workspace, or all), up to ``through``."""
        costs = self.costs
        if through is not None:
            costs = costs.filter(pl.col("date") <= through)
        if workspace is not None:
            costs = costs.filter(pl.col("workspace_id") == workspace)
        extra = sum(c for (d, w), c in self.web_search_cents.items()
                    if (workspace is None or w == workspace) and (through is None or d <= through))
        return (float(costs["cents"].sum()) + extra) / 100

    def authorized(self, headers: dict[str, str]) -> bool:
        return headers.get("x-api-key") == self.admin_key and bool(headers.get("anthropic-version"))

    def routes(self) -> dict:
        return {"/v1/organizations/cost_report": self._costs,
                "/v1/organizations/usage_report/messages": self._usage}

    def _window(self, query: list[tuple[str, str]]) -> list[date]:
        values = dict(query)
        if int(values.get("limit") or 7) > 31:
            raise ValueError("limit: must be at most 31")
        start = datetime.fromisoformat(values["starting_at"].replace("Z", "+00:00")).date()
        end = datetime.fromisoformat(values["ending_at"].replace("Z", "+00:00")).date()
        return days(start, end)

    @staticmethod
    def _bucket(day: date, results: list[dict]) -> dict:
        nxt = date.fromordinal(day.toordinal() + 1)
        return {"starting_at": f"{day}T00:00:00Z", "ending_at": f"{nxt}T00:00:00Z", "results": results}

    def _costs(self, query: list[tuple[str, str]]) -> list[dict]:
        groups = group_by(query)
        by_workspace, by_description = "workspace_id" in groups, "description" in groups
        out = []
        for day in self._window(query):
            lines: dict[tuple, float] = {}
            for r in self.costs.filter(pl.col("date") == day).iter_rows(named=True):
                key = ((r["workspace_id"] if by_workspace else None),
                       (r["model"], r["token_type"], r["description"]) if by_description else None)
                lines[key] = lines.get(key, 0.0) + r["cents"]
            for (d, workspace), cents in self.web_search_cents.items():
                if d == day:
                    key = (workspace if by_workspace else None, ("", "", "Web Search") if by_description else None)
                    lines[key] = lines.get(key, 0.0) + cents
            results = []
            for (workspace, line), cents in sorted(lines.items(), key=lambda kv: str(kv[0])):
                model, token, description = line or (None, None, None)
                tokens = bool(model)
                results.append({
                    "amount": repr(cents), "currency": "USD", "workspace_id": workspace,
                    "description": description,
                    "cost_type": ("tokens" if tokens else "web_search") if line else None,
                    "model": model or None, "token_type": token or None,
                    "service_tier": "standard" if tokens else None, "context_window": "0-200k" if tokens else None,
                })
            out.append(self._bucket(day, results))
        return out

    def _usage(self, query: list[tuple[str, str]]) -> list[dict]:
        groups = [g for g in group_by(query) if g in ("workspace_id", "model")]
        out = []
        for day in self._window(query):
            rows = self.usage.filter(pl.col("date") == day)
            results = []
            if rows.height:
                summed = (rows.group_by(groups, maintain_order=True).agg(pl.col(TOKENS).sum()) if groups
                          else rows.select(pl.col(TOKENS).sum()))
                for r in summed.iter_rows(named=True):
                    results.append({
                        "workspace_id": r.get("workspace_id"), "model": r.get("model"), "api_key_id": None,
                        "service_tier": None, "context_window": None,
                        "uncached_input_tokens": r["uncached_input_tokens"],
                        "cache_read_input_tokens": r["cache_read_input_tokens"],
                        "cache_creation": {
                            "ephemeral_5m_input_tokens": r["cache_creation.ephemeral_5m_input_tokens"],
                            "ephemeral_1h_input_tokens": r["cache_creation.ephemeral_1h_input_tokens"]},
                        "output_tokens": r["output_tokens"], "server_tool_use": {"web_search_requests": 0},
                    })
            out.append(self._bucket(day, results))
        return out
