"""OAuth 2.0 access tokens by the client-credentials flow (Microsoft identity platform), for SMTP XOAUTH2.

``POST {authority}/{tenant}/oauth2/v2.0/token`` with ``client_id``, ``client_secret``, ``scope`` and
``grant_type=client_credentials`` answers ``{"token_type": "Bearer", "expires_in": 3599, "access_token":
...}``; a refusal answers 400/401 with ``{"error": "invalid_client", "error_description": "AADSTS7000215:
..."}``. Tokens are cached per (authority, tenant, client, scope) until a minute before they expire, so a
run asks once however many connections it opens; ``invalidate`` drops one the server refused (535).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import httpx

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
    client_secret: str
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
    who = f"client {credentials.client_id} in tenant {credentials.tenant}"
    form = {
        "client_id": credentials.client_id,
        "client_secret": credentials.client_secret,
        "scope": credentials.scope,
        "grant_type": "client_credentials",
    }
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
