"""Gemini (google-genai) as a resource: structured JSON replies, retries, a timeout and a request rate.

The only module that imports ``google.genai``. It returns :class:`GeminiReply` objects (the validated
reply as a dict, or why there is none, and the tokens used), never raw API objects.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import dagster as dg
import pydantic
from google import genai
from google.genai import errors, types

# A current Flash model whose price is known (settings' ai_prices); `costagent config set gemini_model`
# changes it.
DEFAULT_MODEL = "gemini-2.5-flash"
# Threads waiting on replies; the requests-per-minute pacing, not this, bounds the load on the API.
MAX_IN_FLIGHT = 32
# After this many calls in a row fail even after their retries, Gemini is taken as down for the run:
# the remaining accounts get the deterministic text at once instead of minutes of retries each.
CIRCUIT_BREAKER_FAILURES = 4


@dataclass(frozen=True)
class GeminiRequest:
    """One generateContent call: instructions, the data (JSON text, a separate part) and the reply's schema."""

    instructions: str
    data_json: str
    schema: type[pydantic.BaseModel]
    max_output_tokens: int = 800  # caps what one reply can cost; a grounded reply needs ~300


@dataclass(frozen=True)
class GeminiReply:
    """What one call gave: ``value`` (the reply validated against the schema) or ``failure`` (why not)."""

    value: dict | None
    failure: str | None
    input_tokens: int = 0
    output_tokens: int = 0
    seconds: float = 0.0
    called: bool = True  # False when no request was sent (no key, circuit open)


class _Pacer:
    """Spaces request starts by 60/rpm seconds, so any minute sees at most ``rpm`` (+1) requests."""

    def __init__(self, requests_per_minute: int):
        self.interval = 60.0 / requests_per_minute
        self.next_start = time.monotonic()
        self.lock = threading.Lock()

    def wait(self) -> None:
        with self.lock:
            now = time.monotonic()
            start = max(now, self.next_start)
            self.next_start = start + self.interval
        time.sleep(max(0.0, start - now))


class GeminiResource(dg.ConfigurableResource):
    """Google Gemini through google-genai.

    ``api_key`` comes from ``dg.EnvVar("GEMINI_API_KEY")``; empty means no AI (and no network at all).
    Retries 429/5xx and timeouts with exponential backoff through the SDK's own retry options (the SDK
    does not retry unless told), and every request has a timeout (the SDK takes milliseconds; none
    means waiting forever). ``base_url`` points the SDK at another endpoint (a gateway, or a test peer).
    """

    api_key: str = ""
    model: str = DEFAULT_MODEL
    base_url: str = ""
    timeout_seconds: float = 60.0
    max_attempts: int = 5
    retry_initial_delay_seconds: float = 1.0
    retry_max_delay_seconds: float = 30.0
    requests_per_minute: int = 1000

    @property
    def available(self) -> bool:
        """Whether a key is configured (without one nothing is ever sent)."""
        return bool(self.api_key)

    def _client(self) -> genai.Client:
        retry = types.HttpRetryOptions(
            attempts=self.max_attempts,
            initial_delay=self.retry_initial_delay_seconds,
            max_delay=self.retry_max_delay_seconds,
            http_status_codes=[408, 429, 500, 502, 503, 504],
        )
        options = types.HttpOptions(
            timeout=int(self.timeout_seconds * 1000),  # milliseconds
            retry_options=retry,
            base_url=self.base_url or None,
            # generateContent with responseSchema and thinkingConfig, as documented for v1beta.
            api_version="v1beta",
        )
        return genai.Client(api_key=self.api_key, http_options=options)

    def _config(self, request: GeminiRequest) -> types.GenerateContentConfig:
        # 2.5 Flash "thinks" by default and bills thoughts as output; these short grounded texts need none.
        thinking = types.ThinkingConfig(thinking_budget=0) if self.model.startswith("gemini-2.5-flash") else None
        return types.GenerateContentConfig(
            system_instruction=request.instructions,
            response_mime_type="application/json",
            response_schema=request.schema,
            max_output_tokens=request.max_output_tokens,
            temperature=0.2,
            thinking_config=thinking,
        )

    def _call(self, client: genai.Client, request: GeminiRequest) -> GeminiReply:
        started = time.monotonic()
        # The data goes in as its own user part, never spliced into the instructions.
        contents = [types.Content(role="user", parts=[types.Part(text=request.data_json)])]
        try:
            response = client.models.generate_content(
                model=self.model, contents=contents, config=self._config(request)
            )
        except errors.APIError as err:
            return GeminiReply(None, f"http {err.code}: {(err.message or err.status or '')[:120]}",
                               seconds=time.monotonic() - started)
        except Exception as err:  # timeouts and connection errors, after the SDK's retries
            return GeminiReply(None, f"{type(err).__name__}: {str(err)[:120]}", seconds=time.monotonic() - started)
        usage = response.usage_metadata
        tokens_in = (usage.prompt_token_count or 0) if usage else 0
        # Thinking tokens are billed as output.
        tokens_out = ((usage.candidates_token_count or 0) + (usage.thoughts_token_count or 0)) if usage else 0
        value, failure = _parse(response, request.schema)
        return GeminiReply(value, failure, tokens_in, tokens_out, time.monotonic() - started)

    def generate_many(self, requests: Sequence[GeminiRequest]) -> list[GeminiReply]:
        """Every request, concurrently, starts paced to ``requests_per_minute``; replies in request order.

        Never raises for an API problem: a failed call is a reply with ``failure`` set.
        """
        if not requests:
            return []
        if not self.available:
            return [GeminiReply(None, "no GEMINI_API_KEY is set", called=False) for _ in requests]
        client = self._client()
        pacer = _Pacer(self.requests_per_minute)
        state = {"failures_in_a_row": 0}
        lock = threading.Lock()

        def one(request: GeminiRequest) -> GeminiReply:
            pacer.wait()
            with lock:
                if state["failures_in_a_row"] >= CIRCUIT_BREAKER_FAILURES:
                    return GeminiReply(None, "Gemini kept failing in this run; not called", called=False)
            reply = self._call(client, request)
            transport_failure = reply.failure is not None and reply.value is None and reply.input_tokens == 0
            with lock:
                state["failures_in_a_row"] = state["failures_in_a_row"] + 1 if transport_failure else 0
            return reply

        with ThreadPoolExecutor(max_workers=min(MAX_IN_FLIGHT, len(requests))) as pool:
            return list(pool.map(one, requests))


def _parse(response: types.GenerateContentResponse, schema: type[pydantic.BaseModel]) -> tuple[dict | None, str | None]:
    """The reply as a dict valid against ``schema``, or why not (empty, truncated, not JSON, wrong shape)."""
    candidate = response.candidates[0] if response.candidates else None
    finish = candidate.finish_reason if candidate else None
    if finish == types.FinishReason.MAX_TOKENS:
        return None, "truncated: the reply hit the output-token limit (MAX_TOKENS)"
    if candidate is None:
        blocked = response.prompt_feedback.block_reason if response.prompt_feedback else None
        return None, f"empty reply (blocked: {blocked})" if blocked else "empty reply"
    text = "".join(p.text or "" for p in (candidate.content.parts or []) if not p.thought) if candidate.content else ""
    if not text.strip():
        return None, f"empty reply (finish reason {finish})"
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        return None, f"not valid JSON: {err.msg} at line {err.lineno}"
    try:
        return schema.model_validate(data).model_dump(), None
    except pydantic.ValidationError as err:
        return None, f"JSON of the wrong shape: {err.error_count()} error(s), first: {err.errors()[0]['msg']}"
