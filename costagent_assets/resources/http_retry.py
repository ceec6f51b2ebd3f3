"""The retry loop the HTTP cost sources share (Datadog, and the OpenAI and Anthropic admin APIs).

One request is sent until a 2xx: transport errors, 429s and 5xx are retried after the wait the server
announced (or an exponential backoff), at most ``max_retries`` times and ``max_wait`` seconds per wait;
401/403 and other 4xx fail at once. Every attempt and every retry is counted in an ``Exchange``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from costagent_assets.resources.cost_source import CostSourceError

if TYPE_CHECKING:  # imported when used, to keep CLI starts fast
    import httpx


@dataclass
class Exchange:
    """Requests made (pages and retries included) and retries used by one fetch."""

    requests: int = 0
    retries: int = 0


def send_with_retries(
    send: Callable[[], httpx.Response],
    exchange: Exchange,
    *,
    max_retries: int,
    max_wait: float,
    where: str,
    refused: str,
    announced_wait: Callable[[httpx.Response], float | None],
    error_text: Callable[[httpx.Response], str] = lambda response: response.text[:300],
) -> httpx.Response:
    """The first 2xx answer of ``send()``; ``refused`` is the message of a 401/403 (naming variables, never
    their values), ``announced_wait`` reads the seconds a 429 or 5xx asks to wait (None: back off)."""
    import httpx

    attempt = 0
    while True:
        exchange.requests += 1
        try:
            response = send()
        except httpx.TransportError as exc:  # timeouts, refused connections: worth another try
            problem, wait = type(exc).__name__, backoff(attempt, max_wait)
        else:
            status = response.status_code
            if status in (401, 403):
                raise CostSourceError(f"{where}: HTTP {status}, {refused}")
            if 200 <= status < 300:
                return response
            if status != 429 and status < 500:
                raise CostSourceError(f"{where}: HTTP {status}: {error_text(response)}")
            problem = f"HTTP {status}"
            announced = announced_wait(response)
            wait = min(announced, max_wait) if announced is not None else backoff(attempt, max_wait)
        if attempt >= max_retries:
            raise CostSourceError(
                f"{where}: still failing after {attempt + 1} attempts (last: {problem}); nothing was stored, "
                "rerun later or raise source_max_retries"
            )
        attempt += 1
        exchange.retries += 1
        time.sleep(wait)


def json_body(response: httpx.Response, where: str):
    """The JSON of a 2xx answer, or a clear error when it is not JSON."""
    try:
        return response.json()
    except ValueError:
        raise CostSourceError(f"{where}: HTTP {response.status_code} with a body that is not JSON") from None


def header_seconds(response: httpx.Response, *names: str) -> float | None:
    """Seconds given by the first of the headers ``names`` that is set (never negative), or None."""
    value = next((v for v in (response.headers.get(n) for n in names) if v), None)
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def backoff(attempt: int, max_wait: float) -> float:
    """Exponential backoff from half a second, capped at ``max_wait``."""
    return min(max_wait, 0.5 * 2**attempt)
