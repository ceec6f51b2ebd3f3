"""A loopback identity platform answering like Microsoft's for the client-credentials flow.

``POST /{tenant}/oauth2/v2.0/token`` (form: client_id, client_secret, scope, grant_type) answers
``{"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": ...}``; a wrong
secret answers 401 ``{"error": "invalid_client", "error_description": "AADSTS7000215: Invalid client
secret provided. ...", "error_codes": [7000215], ...}`` and an unknown tenant 400 ``invalid_request``
(AADSTS90002), the shapes the Microsoft identity platform documents. Every token issued is added to
``issued`` (hand the same set to the SMTP peer's ``Recorder.oauth_tokens`` to accept them there).
"""

from __future__ import annotations

import json
import threading
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

TENANT = "0b6c8d1e-1111-4a2b-9c3d-2e5f6a7b8c9d"
CLIENT_ID = "6f1e2d3c-2222-4b5a-8c7d-1a2b3c4d5e6f"
CLIENT_SECRET = "Zx8Q~test-client-secret-value"
SCOPE = "https://outlook.office365.com/.default"


@dataclass
class TokenServer:
    """The token endpoint on 127.0.0.1; a context manager. ``requests`` records each form posted."""

    issued: set[str] = field(default_factory=set)
    requests: list[dict[str, str]] = field(default_factory=list)
    expires_in: int = 3599

    def __post_init__(self) -> None:
        peer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
                form = {k: v[0] for k, v in parse_qs(body).items()}
                peer.requests.append(form)
                status, reply = peer.answer(self.path, form)
                data = json.dumps(reply).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def authority(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def answer(self, path: str, form: dict[str, str]) -> tuple[int, dict]:
        if path != f"/{TENANT}/oauth2/v2.0/token":
            return 400, _error("invalid_request", 90002, "Tenant not found.")
        if form.get("grant_type") != "client_credentials" or form.get("scope") != SCOPE:
            return 400, _error("invalid_scope", 1002012, "The provided value for scope is not valid.")
        if form.get("client_id") != CLIENT_ID or form.get("client_secret") != CLIENT_SECRET:
            return 401, _error("invalid_client", 7000215, "Invalid client secret provided. Ensure the secret being "
                               "sent in the request is the client secret value, not the client secret ID.")
        token = "eyJ0eXAiOiJKV1QifQ." + uuid.uuid4().hex
        self.issued.add(token)
        return 200, {"token_type": "Bearer", "expires_in": self.expires_in, "ext_expires_in": self.expires_in,
                     "access_token": token}

    def __enter__(self) -> TokenServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


def _error(error: str, code: int, text: str) -> dict:
    trace = uuid.uuid4()
    return {
        "error": error,
        "error_description": f"AADSTS{code}: {text}\r\nTrace ID: {trace}\r\nCorrelation ID: {uuid.uuid4()}\r\n"
                             "Timestamp: 2026-11-23 07:00:00Z",
        "error_codes": [code],
        "timestamp": "2026-11-23 07:00:00Z",
        "trace_id": str(trace),
        "correlation_id": str(uuid.uuid4()),
        "error_uri": f"https://login.microsoftonline.com/error?code={code}",
    }
