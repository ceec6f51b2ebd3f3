"""A real SMTP peer for tests: aiosmtpd on loopback with STARTTLS, a throwaway CA and AUTH.

The server records every accepted message with its envelope, whether it arrived over TLS and
authenticated, and can be told to answer RCPT or DATA with given replies (4xx, 5xx) or to run a
callback when a message arrives (to kill the sending process mid-run). Besides LOGIN and PLAIN it offers
XOAUTH2 (as Office 365 does), accepting the bearer tokens in ``Recorder.oauth_tokens`` (issued by the
loopback identity platform of ``peers/token_server.py``) and answering anything else as Office 365 does.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import email
import email.policy
import functools
import ipaddress
import socket
import ssl
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

USER, PASSWORD = "costagent", "s3cret-test-password"


@dataclass(frozen=True)
class Certs:
    """PEM files: the CA to trust, and the server's certificate chain and key."""

    ca: Path
    cert: Path
    key: Path


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _write_key(key: ec.EllipticCurvePrivateKey, path: Path) -> None:
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )


def make_certs(folder: Path, *, self_signed: bool = False) -> Certs:
    """A CA and a server certificate for 127.0.0.1 signed by it; or, with ``self_signed``, a server
    certificate that signs itself (not issued by the CA in ``ca``, so a client trusting ``ca`` refuses it)."""
    folder.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(_name("costagent test CA"))
        .issuer_name(_name("costagent test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    issuer_name, issuer_key = (_name("127.0.0.1"), key) if self_signed else (ca_cert.subject, ca_key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name("127.0.0.1"))
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if not self_signed:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
    cert = builder.sign(issuer_key, hashes.SHA256())
    certs = Certs(folder / "ca.pem", folder / "server.pem", folder / "server.key")
    certs.ca.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    certs.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    _write_key(key, certs.key)
    return certs


@dataclass
class Received:
    """One message the server accepted."""

    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    tls: bool
    authenticated: bool
    session_id: int

    @functools.cached_property
    def message(self) -> email.message.EmailMessage:
        return email.message_from_bytes(self.data, policy=email.policy.default)


@dataclass
class Recorder:
    """The aiosmtpd handler: records accepted messages; replies as told."""

    messages: list[Received] = field(default_factory=list)
    rcpt_replies: dict[str, list[str]] = field(default_factory=dict)  # address -> replies, used up in order
    data_replies: dict[str, list[str]] = field(default_factory=dict)  # first recipient -> replies
    rcpt_attempts: Counter = field(default_factory=Counter)
    auth_attempts: list[tuple[str, bool]] = field(default_factory=list)  # (mechanism, over TLS)
    on_message: Callable[[int], None] | None = None  # called with the count after each accepted message
    oauth_tokens: set[str] = field(default_factory=set)  # bearer tokens XOAUTH2 accepts
    xoauth2_attempts: list[tuple[str, str, bool]] = field(default_factory=list)  # (user, token, accepted)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        self.rcpt_attempts[address] += 1
        replies = self.rcpt_replies.get(address)
        if replies:
            reply = replies.pop(0) if len(replies) > 1 else replies[0]
            if not reply.startswith("250"):
                return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        replies = self.data_replies.get(envelope.rcpt_tos[0])
        if replies:
            reply = replies.pop(0)
            if not reply.startswith("250"):
                return reply
        with self.lock:
            self.messages.append(
                Received(
                    envelope.mail_from,
                    list(envelope.rcpt_tos),
                    envelope.original_content or envelope.content,
                    session.ssl is not None,
                    bool(session.authenticated),
                    id(session),
                )
            )
            count = len(self.messages)
        if self.on_message is not None:
            self.on_message(count)
        return "250 Message accepted for delivery"

    def authenticate(self, server, session, envelope, mechanism, auth_data) -> AuthResult:
        self.auth_attempts.append((mechanism, session.ssl is not None))
        ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
            USER.encode(),
            PASSWORD.encode(),
        )
        return AuthResult(success=ok, handled=False)

    async def auth_XOAUTH2(self, server, args) -> AuthResult:  # noqa: N802
        """SASL XOAUTH2 with the initial response: ``user=<mailbox>^Aauth=Bearer <token>^A^A``, base64."""
        self.auth_attempts.append(("XOAUTH2", server.session.ssl is not None))
        try:
            text = base64.b64decode(args[1], validate=True).decode("utf-8") if len(args) > 1 else ""
        except (binascii.Error, UnicodeDecodeError):
            text = ""
        fields = dict(part.split("=", 1) for part in text.split("\x01") if "=" in part)
        token = fields.get("auth", "").removeprefix("Bearer ")
        ok = bool(fields.get("user")) and token in self.oauth_tokens
        self.xoauth2_attempts.append((fields.get("user", ""), token, ok))
        if ok:
            return AuthResult(success=True, auth_data=LoginPassword(fields["user"].encode(), b""))
        return AuthResult(success=False, handled=False, message="535 5.7.3 Authentication unsuccessful")

    def by_recipient(self) -> Counter:
        """How many messages each envelope recipient got."""
        return Counter(r for m in self.messages for r in m.rcpt_tos)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class SmtpPeer:
    """aiosmtpd on 127.0.0.1 requiring STARTTLS (with ``certs``) before AUTH and mail; a context manager."""

    def __init__(self, certs: Certs | None, recorder: Recorder | None = None, *, starttls: bool = True):
        self.recorder = recorder or Recorder()
        self.port = free_port()
        kwargs = {}
        if starttls and certs is not None:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(certs.cert, certs.key)
            kwargs = {"tls_context": context, "require_starttls": True}
        self.controller = Controller(
            self.recorder,
            hostname="127.0.0.1",
            port=self.port,
            authenticator=self.recorder.authenticate,
            auth_require_tls=True,
            **kwargs,
        )

    def __enter__(self) -> SmtpPeer:
        self.controller.start()
        return self

    def __exit__(self, *exc) -> None:
        self.controller.stop()

    def env(self) -> dict[str, str]:
        """The environment variables costagent reads for this server."""
        return {
            "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": str(self.port),
            "SMTP_USER": USER,
            "SMTP_PASSWORD": PASSWORD,
            "SENDER_EMAIL": "costagent@example.com",
        }
