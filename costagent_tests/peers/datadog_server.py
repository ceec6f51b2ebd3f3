"""A local HTTP server that answers ``POST /api/v2/query/timeseries`` like Datadog, for cloud cost queries.

Its responses copy the shape of a real recorded response (``recordings/v2_query_timeseries.json``):
``data.attributes.series[]`` with ``group_tags``, ``times`` in epoch ms and ``values`` per series. It
serves the daily costs it is given (and, under ``aws.usage`` grouped by ``aws_pricing_usage_unit``, their
quantities where the rows have ``usage_quantity`` and ``usage_unit``), answers every query of a request
with series marked by ``query_index``, checks the API and application keys, announces ``X-RateLimit-*``
headers, and on command throttles (429 with ``X-RateLimit-Reset``), fails (5xx) or omits accounts.
"""

from __future__ import annotations

import copy
import json
import random
import re
import threading
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import polars as pl

RECORDING = json.loads((Path(__file__).parent / "recordings" / "v2_query_timeseries.json").read_text())
QUERY = re.compile(
    r"^(?P<agg>sum):(?P<metric>[^{\s]+)\{(?P<scope>[^}]*)\}\s+by\s+\{(?P<tags>[^}]*)\}"
    r"\.rollup\(sum,\s*(?P<seconds>\d+)\)$"
)
DAY_MS = 86_400_000


@dataclass
class Received:
    """One request the peer answered."""

    path: str
    status: int
    body: dict | None = None


@dataclass
class DatadogPeer:
    """The server and its knobs; ``costs`` has ``date``, ``account_id``, ``service``, ``cost_usd`` rows."""

    costs: pl.DataFrame
    api_key: str = "test-api-key"
    app_key: str = "test-app-key"
    metric: str = "aws.cost.amortized"
    usage_metric: str = "aws.usage"
    unit_tag: str = "aws_pricing_usage_unit"
    account_tag: str = "aws_member_account_id"
    service_tag: str = "aws_product"
    # The tags Datadog's Cloud Cost documentation names on aws.cost.* (/work/shared/data/datadog/README.md).
    usage_type_tag: str = "aws_usage_type"
    region_tag: str = "aws_region"
    throttle_rate: float = 0.0  # share of requests answered 429
    reset_seconds: int = 2  # what a 429 announces in X-RateLimit-Reset
    limit: int = 100  # calls per 60 s period announced in X-RateLimit-Limit/Remaining
    fail_next: list[int] = field(default_factory=list)  # statuses to answer next, e.g. [500, 503]
    omit_accounts: set[str] = field(default_factory=set)
    points_per_series: int | None = None  # cut every series to its first N points (a source still catching up)
    seed: int = 7
    received: list[Received] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)
        self._lock = threading.Lock()
        # Usage type and region where the costs have them (tags usage_type_tag, region_tag), "N/A" otherwise.
        costs = self.costs.with_columns([pl.lit(None, pl.String).alias(c) for c in ("usage_type", "region")
                                         if c not in self.costs.columns])
        daily = costs.group_by(["date", "account_id", "service", "usage_type", "region"]).agg(pl.col("cost_usd").sum())
        self._points: dict[tuple, dict[int, float]] = defaultdict(dict)
        for day, account, service, usage_type, region, usd in daily.iter_rows():
            self._points[(account, service, usage_type or "N/A", region or "N/A")][_ms(day)] = usd
        # Quantities per line and unit, as Datadog's usage metric holds them (a line may have several units).
        self._usage: dict[tuple, dict[int, float]] = defaultdict(dict)
        if {"usage_quantity", "usage_unit"} <= set(costs.columns):
            usage = costs.filter(pl.col("usage_quantity").is_not_null()).group_by(
                ["date", "account_id", "service", "usage_type", "region", "usage_unit"]).agg(pl.col("usage_quantity").sum())
            for day, account, service, usage_type, region, unit, qty in usage.iter_rows():
                self._usage[(account, service, usage_type or "N/A", region or "N/A", unit or "N/A")][_ms(day)] = qty
        self._server: ThreadingHTTPServer | None = None

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> DatadogPeer:
        peer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                status, headers, body = peer.answer(self.path, dict(self.headers.items()), raw)
                data = json.dumps(body).encode()
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args) -> None:  # quiet
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def storm(self, rate: float, seed: int) -> None:
        """Answer a share ``rate`` of the next requests with 429, drawn from a seeded generator."""
        self.throttle_rate, self._random = rate, random.Random(seed)

    def statuses(self) -> list[int]:
        return [r.status for r in self.received]

    # ------------------------------------------------------------------ protocol
    def answer(self, path: str, headers: dict[str, str], raw: bytes) -> tuple[int, dict[str, str], dict]:
        """Status, headers and JSON body for one request (also recorded in ``received``)."""
        lowered = {k.lower(): v for k, v in headers.items()}
        with self._lock:
            status, extra, body = self._decide(path, lowered, raw)
            self.received.append(Received(path, status, _json_or_none(raw)))
            remaining = 0 if status == 429 else max(0, self.limit - len(self.received))
        out = {
            "Content-Type": RECORDING["response"]["content_type"] if status == 200 else "application/json",
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Period": "60",
            "X-RateLimit-Remaining": str(remaining),
            "X-RateLimit-Reset": str(self.reset_seconds if status == 429 or remaining == 0 else 60),
            **extra,
        }
        return status, out, body

    def _decide(self, path: str, headers: dict[str, str], raw: bytes) -> tuple[int, dict, dict]:
        if path != "/api/v2/query/timeseries":
            return 404, {}, {"errors": ["Not found"]}
        if headers.get("dd-api-key") != self.api_key or headers.get("dd-application-key") != self.app_key:
            return 403, {}, {"errors": ["Forbidden"]}
        if self.fail_next:
            return self.fail_next.pop(0), {}, {"errors": ["Internal Server Error"]}
        if self.throttle_rate and self._random.random() < self.throttle_rate:
            return 429, {}, {"errors": ["Too many requests"]}
        request = _json_or_none(raw)
        try:
            attributes = request["data"]["attributes"]
            queries = list(attributes["queries"])
            formulas = [f["formula"] for f in attributes.get("formulas") or [{"formula": queries[0]["name"]}]]
            start, end = int(attributes["from"]), int(attributes["to"])
        except (KeyError, IndexError, TypeError, ValueError):
            return 400, {}, {"errors": ["Invalid request body"]}
        matches = {}
        for query in queries:
            if query.get("data_source") != "cloud_cost":
                return 400, {}, {"errors": [f"data_source {query.get('data_source')!r} cannot query cost metrics"]}
            match = QUERY.match(query.get("query", ""))
            if not match or match["seconds"] != "86400":
                return 400, {}, {"errors": [f"unsupported query {query.get('query')!r}"]}
            matches[query.get("name")] = match
        if any(f not in matches for f in formulas):  # this peer answers plain formulas naming one query each
            return 400, {}, {"errors": [f"unsupported formulas {formulas!r}"]}
        times = list(range(start - start % DAY_MS, end, DAY_MS))
        series, values = [], []
        for index, formula in enumerate(formulas):
            more_series, more_values = self._series(matches[formula], times, index)
            series += more_series
            values += more_values
        body = copy.deepcopy(RECORDING["response"]["body"])
        body["data"]["attributes"].update({"series": series, "times": times, "values": values})
        return 200, {}, body

    def _series(self, match: re.Match, times: list[int], query_index: int) -> tuple[list[dict], list[list]]:
        tags = [t.strip() for t in match["tags"].split(",")]
        series, values = [], []
        template = RECORDING["response"]["body"]["data"]["attributes"]["series"][0]
        # An unknown metric has no series, as in Datadog.
        source = {self.metric: self._points, self.usage_metric: self._usage}.get(match["metric"], {})
        if source:
            grouped: dict[tuple, dict[int, float]] = defaultdict(dict)
            for line, points in source.items():
                by_tag = dict(zip((self.account_tag, self.service_tag, self.usage_type_tag, self.region_tag,
                                   self.unit_tag),
                                  line, strict=False))
                group = tuple(f"{t}:{by_tag.get(t, 'N/A')}" for t in tags)  # Datadog sums what the tags merge
                for t, usd in points.items():
                    grouped[group][t] = grouped[group].get(t, 0.0) + usd
            for group, points in sorted(grouped.items()):
                account = dict(g.split(":", 1) for g in group).get(self.account_tag)
                if account in self.omit_accounts:
                    continue
                row = [points.get(t) for t in times][: self.points_per_series]
                if all(v is None for v in row):
                    continue
                entry = copy.deepcopy(template)
                entry["group_tags"] = list(group)
                entry["query_index"] = query_index
                series.append(entry)
                values.append(row)
        return series, values


def _ms(day) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() * 1000)


def _json_or_none(raw: bytes) -> dict | None:
    try:
        return json.loads(raw)
    except ValueError:
        return None
