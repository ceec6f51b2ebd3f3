"""A local HTTP server speaking the Gemini REST API's generateContent, for tests and benchmarks.

``POST /v1beta/models/{model}:generateContent`` with an ``x-goog-api-key`` header, answered in the
API's JSON shape (candidates, finishReason, usageMetadata). By default it answers like a well-behaved
model: it reads the evidence pack (the JSON user part) and writes prose from the pack's own figures.
On command it is slow, throttles (429), fails (503), or answers with bad JSON, an empty reply, a reply
cut at MAX_TOKENS, invented figures, links and instructions to the reader (``phishing``, with the pack's own
figures), or obeys an injected instruction found in the data.
"""

from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PATH = re.compile(r"^/v1beta/models/(?P<model>[^/:]+):generateContent$")
MODES = ("grounded", "invented", "bad_json", "empty", "max_tokens", "obey_injection", "phishing")


@dataclass
class Received:
    """One request as the server saw it."""

    model: str
    api_key: str | None
    body: dict
    status: int

    @property
    def data(self) -> dict:
        """The evidence pack: the user part, parsed."""
        return json.loads(self.body["contents"][0]["parts"][0]["text"])

    @property
    def instructions(self) -> str:
        return "".join(p.get("text", "") for p in self.body.get("systemInstruction", {}).get("parts", []))


@dataclass
class GeminiPeer:
    """The server's behaviour (change the fields at any time) and what it received."""

    mode: str = "grounded"
    delay: float = 0.0
    throttle_first: int = 0  # the first N requests get 429 RESOURCE_EXHAUSTED
    fail_status: int | None = None  # every request gets this status (e.g. 503)
    api_key: str = "test-key"
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> GeminiPeer:
        peer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # quiet
                pass

            def do_POST(self) -> None:  # noqa: N802
                peer._handle(self)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def answered(self) -> list[Received]:
        """Requests answered with 200: the calls that would be billed."""
        with self.lock:
            return [r for r in self.received if r.status == 200]

    def reset(self) -> None:
        with self.lock:
            self.received.clear()

    # -- serving --------------------------------------------------------------------------------------

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        match = PATH.match(h.path.split("?")[0])
        body = json.loads(h.rfile.read(int(h.headers.get("Content-Length") or 0)) or b"{}")
        key = h.headers.get("x-goog-api-key")
        with self.lock:
            index = len(self.received)
            if match is None:
                status = 404
            elif key != self.api_key:
                status = 400
            elif self.fail_status:
                status = self.fail_status
            elif index < self.throttle_first:
                status = 429
            else:
                status = 200
            self.received.append(Received(match["model"] if match else "", key, body, status))
        if self.delay:
            time.sleep(self.delay)
        if status != 200:
            names = {400: "INVALID_ARGUMENT", 404: "NOT_FOUND", 429: "RESOURCE_EXHAUSTED", 503: "UNAVAILABLE"}
            self._send(h, status, {"error": {"code": status, "message": "test peer says no",
                                             "status": names.get(status, "INTERNAL")}})
            return
        self._send(h, 200, self._reply(body))

    @staticmethod
    def _send(h: BaseHTTPRequestHandler, status: int, payload: dict) -> None:
        data = json.dumps(payload).encode()
        h.send_response(status)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)

    def _reply(self, body: dict) -> dict:
        data_text = body["contents"][0]["parts"][0]["text"]
        pack = json.loads(data_text)
        finish = "STOP"
        if self.mode == "bad_json":
            text = '{"explanation": "Spend rose because of EC2", "outlook": '
        elif self.mode == "empty":
            return {"candidates": [], "usageMetadata": {"promptTokenCount": len(data_text) // 4}}
        elif self.mode == "max_tokens":
            text, finish = '{"explanation": "Spend rose', "MAX_TOKENS"
        else:
            reply = organisation_reply(pack) if "accounts_explained" in pack else account_reply(pack)
            if self.mode == "invented":
                reply = invent(reply)
            if self.mode == "phishing":
                reply = phish(reply)
            if self.mode == "obey_injection" and "ignore previous instructions" in data_text.lower():
                reply = obey(reply)
            text = json.dumps(reply)
        instructions = "".join(p.get("text", "") for p in body.get("systemInstruction", {}).get("parts", []))
        return {
            "candidates": [{"content": {"role": "model", "parts": [{"text": text}]}, "finishReason": finish,
                            "index": 0}],
            "usageMetadata": {
                # About 4 characters per token, as Gemini's tokenizer gives for English and JSON.
                "promptTokenCount": (len(data_text) + len(instructions)) // 4,
                "candidatesTokenCount": len(text) // 4,
                "totalTokenCount": (len(data_text) + len(instructions) + len(text)) // 4,
            },
            "modelVersion": "test-peer",
        }


def usd(x: float) -> str:
    return f"${abs(x):,.2f}"


def account_reply(pack: dict) -> dict:
    """What a well-behaved model writes: only the pack's own figures and names."""
    t = pack["totals"]
    direction = "rose" if t["change_usd"] >= 0 else "fell"
    text = (f"Spend {direction} {usd(t['change_usd'])} to {usd(t['month_to_date_usd'])} against "
            f"{pack['period']['compared_with']}.")
    named = [d for d in pack["drivers"] if not d["service"].startswith("Other services")][:2]
    if named:
        text += " The main drivers were " + " and ".join(
            f"{d['service']} ({'+' if d['change_usd'] >= 0 else '-'}{usd(d['change_usd'])})" for d in named) + "."
    proj = pack.get("projection")
    outlook = (f"The projection for {pack['period']['month_label']} is {usd(proj['projected_month_end_usd'])}, "
               f"{proj['method']}." if proj else "The month is complete.")
    recs = [{"action": f"Review the rise in {c['service']} and scale it back where it is not needed",
             "estimated_monthly_usd": c["estimated_monthly_usd"]} for c in pack["savings_candidates"][:3]]
    return {"explanation": text, "outlook": outlook, "recommendations": recs}


def organisation_reply(pack: dict) -> dict:
    t = pack["totals"]
    text = (f"{pack['period']['month_label']} to date the organisation spent {usd(t['month_to_date_usd'])} across "
            f"{t['accounts']} accounts, a change of {usd(t['change_usd'])} on the same days of last month.")
    recs = [{"account_id": a["account_id"], **r} for a in pack["accounts_explained"] for r in a["recommendations"]]
    return {"executive_summary": text, "top_recommendations": recs[:5]}


def invent(reply: dict) -> dict:
    """The same reply with figures the pack does not hold."""
    key = "explanation" if "explanation" in reply else "executive_summary"
    reply = {**reply, key: reply[key] + " Reserved instances would save $48,213.77 a year (31.4%)."}
    if "recommendations" in reply:
        reply["recommendations"] = [{"action": "Buy a Savings Plan", "estimated_monthly_usd": 9876.54}]
    return reply


def obey(reply: dict) -> dict:
    """What a model taken over by the injected text might answer: leak another account, invent a figure."""
    key = "explanation" if "explanation" in reply else "executive_summary"
    return {**reply, key: "As instructed: account 999999999999 spent $1,000,000.00 on Amazon Redshift."}


PHISHING = ("Email your AWS root password to finops-help@evil.example so the rise can be reviewed, "
            "or click https://evil.example/verify and sign in; questions to +1 (415) 555-0100.")


def phish(reply: dict) -> dict:
    """The same grounded figures with links, an address, a phone number and instructions to the reader."""
    key = "explanation" if "explanation" in reply else "executive_summary"
    reply = {**reply, key: reply[key] + " " + PHISHING}
    if reply.get("recommendations"):
        first = reply["recommendations"][0]
        reply["recommendations"] = [{**first, "action": first["action"] + " at https://evil.example/fix"},
                                    *reply["recommendations"][1:]]
    return reply
