"""A loopback server answering like OpenAI's organisation Costs and Usage APIs (admin key, Bearer auth).

Shapes from the API reference: https://platform.openai.com/docs/api-reference/usage/costs (``GET
/v1/organization/costs``: ``{"object": "page", "data": [{"object": "bucket", "start_time", "end_time",
"results": [{"object": "organization.costs.result", "amount": {"value", "currency": "usd"}, "line_item",
"project_id"}]}], "has_more", "next_page"}``) and https://platform.openai.com/docs/api-reference/usage/completions
(``GET /v1/organization/usage/completions`` and ``/embeddings``: results ``organization.usage.completions.result``
with ``input_tokens`` (cached included), ``input_cached_tokens``, ``output_tokens``, ``num_model_requests``,
``project_id``, ``model``, ...). Query: ``start_time``/``end_time`` (Unix seconds), ``bucket_width=1d``,
``group_by``, ``limit``, ``page``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

import polars as pl

from costagent_tests.peers.admin_api_server import AdminApiPeer, days, group_by

# $ per million tokens (input, cached input, output): the peer's own bill, not a claim about OpenAI's prices.
PRICES = {"gpt-4o-2024-08-06": (2.50, 1.25, 10.00), "gpt-4o-mini-2024-07-18": (0.15, 0.075, 0.60),
          "o1-2024-12-17": (15.00, 7.50, 60.00), "text-embedding-3-small": (0.02, 0.02, 0.0)}
USAGE_SCHEMA = {"date": pl.Date, "project_id": pl.String, "model": pl.String, "endpoint": pl.String,
                "input_tokens": pl.Int64, "input_cached_tokens": pl.Int64, "output_tokens": pl.Int64,
                "num_model_requests": pl.Int64}


def sample_usage(projects: list[str], start: date, end: date, seed: int = 3) -> pl.DataFrame:
    """A few models per project, every day from ``start`` to ``end`` exclusive."""
    draw = random.Random(seed)
    rows = []
    for project in projects:
        models = draw.sample(["gpt-4o-2024-08-06", "gpt-4o-mini-2024-07-18", "o1-2024-12-17"], 2)
        for day in days(start, end):
            for model in models:
                requests = draw.randint(50, 400)
                tokens = requests * draw.randint(300, 2000)
                rows.append((day, project, model, "completions", tokens, tokens // draw.randint(3, 8),
                             requests * draw.randint(50, 400), requests))
            rows.append((day, project, "text-embedding-3-small", "embeddings", draw.randint(10**5, 10**6), 0, 0,
                         draw.randint(10, 90)))
    return pl.DataFrame(rows, schema=USAGE_SCHEMA, orient="row")


def bill(usage: pl.DataFrame) -> pl.DataFrame:
    """The Costs API's line items of ``usage``: (date, project_id, line_item, usd)."""
    rows = []
    for r in usage.iter_rows(named=True):
        p_in, p_cached, p_out = PRICES[r["model"]]
        cached = r["input_cached_tokens"]
        for kind, usd in (("input", (r["input_tokens"] - cached) * p_in), ("cached input", cached * p_cached),
                          ("output", r["output_tokens"] * p_out)):
            if usd:
                rows.append((r["date"], r["project_id"], f"{r['model']}, {kind}", usd / 1e6))
    frame = pl.DataFrame(rows, schema={"date": pl.Date, "project_id": pl.String, "line_item": pl.String,
                                       "usd": pl.Float64}, orient="row")
    return frame.group_by(["date", "project_id", "line_item"]).agg(pl.col("usd").sum()).sort(pl.all())


@dataclass
class OpenAIPeer(AdminApiPeer):
    """Serves ``usage`` (USAGE_SCHEMA rows) and its ``bill`` plus ``extra_costs`` (non-token lines)."""

    usage: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=USAGE_SCHEMA))
    extra_costs: pl.DataFrame | None = None  # (date, project_id, line_item, usd) without tokens
    admin_key: str = "sk-admin-test-openai-0123456789"

    def __post_init__(self) -> None:
        super().__post_init__()
        costs = bill(self.usage)
        self.costs = pl.concat([costs, self.extra_costs]) if self.extra_costs is not None else costs

    def authorized(self, headers: dict[str, str]) -> bool:
        return headers.get("authorization") == f"Bearer {self.admin_key}"

    def refused(self) -> dict:
        return {"error": {"message": "Incorrect API key provided.", "type": "invalid_request_error",
                          "code": "invalid_api_key"}}

    def routes(self) -> dict:
        return {
            "/v1/organization/costs": self._costs,
            "/v1/organization/usage/completions": lambda q: self._usage(q, "completions"),
            "/v1/organization/usage/embeddings": lambda q: self._usage(q, "embeddings"),
        }

    def page_body(self, buckets: list[dict], has_more: bool, next_page: str | None) -> dict:
        return {"object": "page", "data": buckets, "has_more": has_more, "next_page": next_page}

    def _window(self, query: list[tuple[str, str]]) -> list[date]:
        values = dict(query)
        if values.get("bucket_width", "1d") != "1d":
            raise ValueError("only bucket_width=1d is served")
        start = datetime.fromtimestamp(int(values["start_time"]), UTC).date()
        end = datetime.fromtimestamp(int(values["end_time"]), UTC).date()
        return days(start, end)

    def _bucket(self, day: date, results: list[dict]) -> dict:
        start = int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp())
        return {"object": "bucket", "start_time": start, "end_time": start + 86_400, "results": results}

    def _costs(self, query: list[tuple[str, str]]) -> list[dict]:
        groups = group_by(query)
        out = []
        for day in self._window(query):
            rows = self.costs.filter(pl.col("date") == day)
            keys = [c for c in ("project_id", "line_item") if c in groups]
            summed = rows.group_by(keys).agg(pl.col("usd").sum()).sort(keys) if keys else rows.select(pl.col("usd").sum())
            results = [{"object": "organization.costs.result", "amount": {"value": r["usd"], "currency": "usd"},
                        "line_item": r.get("line_item"), "project_id": r.get("project_id")}
                       for r in summed.iter_rows(named=True) if rows.height]
            out.append(self._bucket(day, results))
        return out

    def _usage(self, query: list[tuple[str, str]], endpoint: str) -> list[dict]:
        groups = [g for g in group_by(query) if g in ("project_id", "model")]
        fields = ["input_tokens", "input_cached_tokens", "output_tokens", "num_model_requests"]
        mine = self.usage.filter(pl.col("endpoint") == endpoint)
        out = []
        for day in self._window(query):
            rows = mine.filter(pl.col("date") == day)
            results = []
            if rows.height:
                summed = rows.group_by(groups).agg(pl.col(fields).sum()).sort(groups) if groups else \
                    rows.select(pl.col(fields).sum())
                for r in summed.iter_rows(named=True):
                    result = {"object": f"organization.usage.{endpoint}.result", "user_id": None,
                              "api_key_id": None, "batch": None, "project_id": r.get("project_id"),
                              "model": r.get("model"), "num_model_requests": r["num_model_requests"],
                              "input_tokens": r["input_tokens"]}
                    if endpoint == "completions":
                        result.update(input_cached_tokens=r["input_cached_tokens"], output_tokens=r["output_tokens"],
                                      input_audio_tokens=0, output_audio_tokens=0)
                    results.append(result)
            out.append(self._bucket(day, results))
        return out
