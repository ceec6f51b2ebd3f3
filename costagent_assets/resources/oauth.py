"""OAuth 2.0 access tokens by the client-credentials flow (Microsoft identity platform), for SMTP XOAUTH2.

``POST {authority}/{tenant}/oauth2/v2.0/token`` with ``client_id``, ``scope``,
``grant_type=client_credentials`` and either ``client_secret`` or, for a certificate credential, a
``client_assertion`` (a JWT signed RS256 with the certificate's key, ``x5t#S256`` naming the certificate)
answers ``{"token_type": "Bearer", "expires_in": 3599, "access_token":
...}``; a refusal answers 400/401 with ``{"error": "invalid_client", "error_description": "AADSTS7000215:
..."}``. Tokens are cached per (authority, tenant, client, scope) until a minute before they expire, so a
run asks once however many connections it opens; ``invalidate`` drops one the server refused (535).
"""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

# Office 365 SMTP AUTH with application permissions.
OFFICE365_SMTP_SCOPE = "https://outlook.office365.com/.default"
# Renew this long before the token's own expiry, so a token never lapses between fetch and AUTH.
EXPIRY_MARGIN_SECONDS = 60.0


class OAuthError(RuntimeError):
    """No token: the identity platform refused the client, or could not be reached. Never holds the secret."""


@dataclass(frozen=True)
class ClientCredentials:
    """An app registration's client credentials in one tenant."""

    authority: str  # https://login.microsoftonline.com
    tenant: str
    client_id: str
    client_secret: str = ""
    certificate_path: str = ""  # a PEM file with the private key and the certificate, instead of a secret
    scope: str = OFFICE365_SMTP_SCOPE

    @property
    def token_url(self) -> str:
        return f"{self.authority.rstrip('/')}/{self.tenant}/oauth2/v2.0/token"

    @property
    def cache_key(self) -> tuple[str, str, str, str]:
        return (self.authority, self.tenant, self.client_id, self.scope)


_cache: dict[tuple[str, str, str, str], tuple[str, float]] = {}
_lock = threading.Lock()


def access_token(credentials: ClientCredentials, *, timeout_seconds: float = 30.0) -> str:
    """A valid access token for ``credentials``: the cached one, or a new one from the token endpoint."""
    with _lock:
        cached = _cache.get(credentials.cache_key)
        if cached is not None and cached[1] > time.monotonic():
            return cached[0]
        token, lifetime = _fetch(credentials, timeout_seconds)
        _cache[credentials.cache_key] = (token, time.monotonic() + max(lifetime - EXPIRY_MARGIN_SECONDS, 0.0))
        return token


def invalidate(credentials: ClientCredentials) -> None:
    """Forget the cached token (the server refused it), so the next ``access_token`` fetches a new one."""
    with _lock:
        _cache.pop(credentials.cache_key, None)


def _fetch(credentials: ClientCredentials, timeout_seconds: float) -> tuple[str, float]:
    # Imported here: every code-location load imports this module through the SMTP resource, and httpx and
    # cryptography cost ~0.2 s of a CLI start that delivers to the outbox.
    import httpx

    who = f"client {credentials.client_id} in tenant {credentials.tenant}"
    form = {"client_id": credentials.client_id, "scope": credentials.scope, "grant_type": "client_credentials"}
    if credentials.certificate_path:
        form |= {"client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                 "client_assertion": client_assertion(credentials)}
    else:
        form["client_secret"] = credentials.client_secret
    try:
        reply = httpx.post(credentials.token_url, data=form, timeout=timeout_seconds)
    except httpx.HTTPError as err:
        raise OAuthError(f"cannot reach the token endpoint {credentials.token_url} for {who}: "
                         f"{type(err).__name__}") from None
    try:
        body = reply.json()
    except ValueError:
        body = {}
    if reply.status_code != 200 or not isinstance(body, dict) or not body.get("access_token"):
        error = body.get("error", "no token") if isinstance(body, dict) else "no token"
        # The description's first line is Microsoft's reason (AADSTS code); the rest is trace ids.
        description = str(body.get("error_description", "")).splitlines()[0] if isinstance(body, dict) else ""
        raise OAuthError(f"token request for {who} refused (HTTP {reply.status_code}): {error}"
                         + (f": {description}" if description else ""))
    if str(body.get("token_type", "")).lower() != "bearer":
        raise OAuthError(f"token endpoint answered a {body.get('token_type')!r} token for {who}, not a Bearer token")
    return str(body["access_token"]), float(body.get("expires_in", 3599))


def xoauth2_response(user: str, token: str) -> str:
    """The SASL XOAUTH2 initial response (before base64): ``user=...^Aauth=Bearer ...^A^A``."""
    return f"user={user}\x01auth=Bearer {token}\x01\x01"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def client_assertion(credentials: ClientCredentials, lifetime_seconds: int = 600) -> str:
    """The signed JWT that proves the app holds its certificate's key: RS256, ``x5t#S256`` (the certificate's
    SHA-256 thumbprint), audience the token endpoint, issuer and subject the client id."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    try:
        pem = Path(credentials.certificate_path).read_bytes()
        key = serialization.load_pem_private_key(pem, password=None)
        certificate = x509.load_pem_x509_certificate(pem)
    except (OSError, ValueError) as err:
        raise OAuthError(f"cannot read the OAuth certificate {credentials.certificate_path} (a PEM file with the "
                         f"private key and the certificate): {type(err).__name__}") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise OAuthError(f"the OAuth certificate {credentials.certificate_path} must hold an RSA key")
    thumbprint = certificate.fingerprint(hashes.SHA256())
    header = {"alg": "RS256", "typ": "JWT", "x5t#S256": _b64url(thumbprint)}
    now = int(time.time())
    claims = {"aud": credentials.token_url, "iss": credentials.client_id, "sub": credentials.client_id,
              "jti": str(uuid.uuid4()), "nbf": now, "iat": now, "exp": now + lifetime_seconds}
    signing_input = ".".join(_b64url(json.dumps(part, separators=(",", ":")).encode()) for part in (header, claims))
    signature = key.sign(signing_input.encode("ascii"), padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input}.{_b64url(signature)}"
