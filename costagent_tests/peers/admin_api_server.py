"""What the OpenAI and Anthropic peers share: a loopback HTTP server answering GETs of daily buckets, paged
with ``has_more`` / ``next_page``, that checks a key header, throttles on command (429 with ``retry-after``)
and records every request. The providers' own shapes are in ``openai_server`` and ``anthropic_server``.
"""

from __future__ import annotations

import base64
import json
import random
import threading
from dataclasses import dataclass, field
from datetime import date, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit


@dataclass
class Received:
    """One request the peer answered."""

    path: str
    status: int
    query: list[tuple[str, str]]


@dataclass
class AdminApiPeer:
    """The server, its knobs, and what it answered; subclasses define ``routes`` and ``authorized``."""

    page_buckets: int | None = None  # buckets per page (None: what the request's limit asks)
    throttle_rate: float = 0.0  # share of requests answered 429
    retry_after_seconds: int = 1
    fail_next: list[int] = field(default_factory=list)  # statuses to answer next, e.g. [500, 503]
    seed: int = 7
    received: list[Received] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    # ------------------------------------------------------------------ lifecycle
    def start(self):
        peer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                status, headers, body = peer.answer(self.path, {k.lower(): v for k, v in self.headers.items()})
                data = json.dumps(body).encode()
                self.send_response(status)
                for name, value in {"Content-Type": "application/json", **headers}.items():
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
    def routes(self) -> dict:
        """path -> function(query) -> list of buckets (each a JSON dict) of the whole window."""
        raise NotImplementedError

    def authorized(self, headers: dict[str, str]) -> bool:
        raise NotImplementedError

    def refused(self) -> dict:
        return {"error": {"type": "authentication_error", "message": "invalid x-api-key"}}

    def answer(self, target: str, headers: dict[str, str]) -> tuple[int, dict[str, str], dict]:
        parts = urlsplit(target)
        query = parse_qsl(parts.query)
        with self._lock:
            status, extra, body = self._decide(parts.path, query, headers)
            self.received.append(Received(parts.path, status, query))
        return status, extra, body

    def _decide(self, path: str, query: list[tuple[str, str]], headers: dict[str, str]) -> tuple[int, dict, dict]:
        route = self.routes().get(path)
        if route is None:
            return 404, {}, {"error": {"type": "not_found_error", "message": f"no route {path}"}}
        if not self.authorized(headers):
            return 401, {}, self.refused()
        if self.fail_next:
            return self.fail_next.pop(0), {}, {"error": {"type": "api_error", "message": "Internal server error"}}
        if self.throttle_rate and self._random.random() < self.throttle_rate:
            return 429, {"retry-after": str(self.retry_after_seconds)}, {
                "error": {"type": "rate_limit_error", "message": "Rate limit exceeded"}}
        try:
            buckets = route(query)
        except (KeyError, ValueError) as err:
            return 400, {}, {"error": {"type": "invalid_request_error", "message": str(err)}}
        values = dict(query)
        first = _decode(values["page"]) if "page" in values else 0
        size = self.page_buckets or int(values.get("limit") or 7)
        page = buckets[first:first + size]
        more = first + size < len(buckets)
        return 200, {}, self.page_body(page, more, _encode(first + size) if more else None)

    def page_body(self, buckets: list[dict], has_more: bool, next_page: str | None) -> dict:
        return {"data": buckets, "has_more": has_more, "next_page": next_page}


def days(start: date, end: date) -> list[date]:
    """Every day from ``start`` to ``end`` exclusive."""
    return [start + timedelta(days=i) for i in range((end - start).days)]


def _encode(index: int) -> str:
    return "page_" + base64.urlsafe_b64encode(str(index).encode()).decode()


def _decode(token: str) -> int:
    return int(base64.urlsafe_b64decode(token.removeprefix("page_").encode()).decode())


def group_by(query: list[tuple[str, str]]) -> list[str]:
    """The ``group_by`` fields asked, written ``group_by=x`` or ``group_by[]=x``."""
    return [v for k, v in query if k in ("group_by", "group_by[]")]
