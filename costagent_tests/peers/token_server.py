"""A loopback identity platform answering like Microsoft's for the client-credentials flow.

``POST /{tenant}/oauth2/v2.0/token`` (form: client_id, scope, grant_type, and client_secret or a
certificate's client_assertion, a JWT checked against the certificates registered here) answers
``{"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": ...}``; a wrong
secret answers 401 ``{"error": "invalid_client", "error_description": "AADSTS7000215: Invalid client
secret provided. ...", "error_codes": [7000215], ...}`` and an unknown tenant 400 ``invalid_request``
(AADSTS90002), the shapes the Microsoft identity platform documents. Every token issued is added to
``issued`` (hand the same set to the SMTP peer's ``Recorder.oauth_tokens`` to accept them there).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

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
    certificates: dict[str, object] = field(default_factory=dict)  # x5t#S256 thumbprint -> public key

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
        if "client_assertion" in form:
            problem = self.assertion_problem(form)
            if problem:
                return 401, _error("invalid_client", 700027, problem)
        elif form.get("client_id") != CLIENT_ID or form.get("client_secret") != CLIENT_SECRET:
            return 401, _error("invalid_client", 7000215, "Invalid client secret provided. Ensure the secret being "
                               "sent in the request is the client secret value, not the client secret ID.")
        token = "eyJ0eXAiOiJKV1QifQ." + uuid.uuid4().hex
        self.issued.add(token)
        return 200, {"token_type": "Bearer", "expires_in": self.expires_in, "ext_expires_in": self.expires_in,
                     "access_token": token}

    def register(self, pem: bytes) -> None:
        """Upload a certificate to the app registration (its public key, by its SHA-256 thumbprint)."""
        cert = x509.load_pem_x509_certificate(pem)
        self.certificates[_b64url(cert.fingerprint(hashes.SHA256()))] = cert.public_key()

    def assertion_problem(self, form: dict[str, str]) -> str:
        """Why a client assertion is refused, or empty when it is good."""
        if form.get("client_assertion_type") != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer":
            return "Invalid client assertion type."
        try:
            head, body, signature = form["client_assertion"].split(".")
            header, claims = (json.loads(_unb64url(part)) for part in (head, body))
        except ValueError:
            return "Client assertion is not a JWT."
        key = self.certificates.get(header.get("x5t#S256", ""))
        if key is None:
            return "Client assertion failed signature validation: the certificate is not registered on the application."
        try:
            key.verify(_unb64url(signature), f"{head}.{body}".encode(), padding.PKCS1v15(), hashes.SHA256())
        except InvalidSignature:
            return "Client assertion failed signature validation."
        if claims.get("aud") != f"{self.authority}/{TENANT}/oauth2/v2.0/token":
            return "Client assertion audience claim does not match the token endpoint."
        if claims.get("iss") != CLIENT_ID or claims.get("sub") != CLIENT_ID or claims.get("exp", 0) < time.time():
            return "Client assertion contains an invalid or expired claim."
        return ""

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


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def make_client_certificate(path: Path) -> bytes:
    """A PEM file at ``path`` with a new RSA key and its self-signed certificate (what `costagent` reads
    from SMTP_OAUTH_CERTIFICATE); returns the certificate's PEM (what is uploaded to the app registration)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "costagent smtp")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1)).sign(key, hashes.SHA256()))
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    path.write_bytes(key_pem + cert_pem)
    return cert_pem

