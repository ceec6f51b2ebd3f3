"""SMTP with OAuth 2.0 (XOAUTH2): tokens from a loopback identity platform shaped like Microsoft's, used
against aiosmtpd offering XOAUTH2; cached, refreshed on 535, and a wrong secret is a clear error without it."""

from __future__ import annotations

import dagster as dg
import pytest

from costagent_assets.defs.resources import build_resources, delivery_setup_problems
from costagent_assets.home import Home
from costagent_assets.resources.oauth import ClientCredentials, OAuthError, access_token
from costagent_assets.resources.smtp import SmtpDelivery, SmtpError
from costagent_assets.send_ledger import SendLedger
from costagent_assets.settings import Settings
from costagent_tests.peers.token_server import (
    CLIENT_ID,
    CLIENT_SECRET,
    SCOPE,
    TENANT,
    TokenServer,
    make_client_certificate,
)
from costagent_tests.resources.test_smtp import delivery, outgoing, send
from costagent_tests.smtp_peer import Recorder, SmtpPeer, make_certs

SENDER = "costagent@example.com"


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory):
    return make_certs(tmp_path_factory.mktemp("certs"))


def oauth(tokens: TokenServer, **overrides) -> dict:
    return {"auth": "xoauth2", "username": None, "password": None, "oauth_authority": tokens.authority,
            "oauth_tenant": TENANT, "oauth_client_id": CLIENT_ID, "oauth_client_secret": CLIENT_SECRET, **overrides}


def test_delivers_with_xoauth2_and_asks_for_one_token_per_lifetime(certs, tmp_path):
    with TokenServer() as tokens:
        recorder = Recorder(oauth_tokens=tokens.issued)
        with SmtpPeer(certs, recorder) as peer:
            first = send(peer, certs.ca, outgoing(3), SendLedger(tmp_path / "ledger"), **oauth(tokens))
            second = send(peer, certs.ca, outgoing(5), SendLedger(tmp_path / "ledger"), **oauth(tokens))
    assert [r.status for r in first + second] == ["delivered"] * 3 + ["already_sent"] * 3 + ["delivered"] * 2
    assert len(recorder.messages) == 5 and all(m.tls and m.authenticated for m in recorder.messages)
    # Two connections, one token: the second session used the cached one.
    assert len(tokens.requests) == 1 and [(u, ok) for u, _, ok in recorder.xoauth2_attempts] == [(SENDER, True)] * 2
    form = tokens.requests[0]
    assert form == {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "scope": SCOPE,
                    "grant_type": "client_credentials"}
    assert [m for m, _ in recorder.auth_attempts] == ["XOAUTH2", "XOAUTH2"]


def test_a_refused_token_is_replaced_once_on_535(certs, tmp_path):
    with TokenServer() as tokens:
        recorder = Recorder(oauth_tokens=tokens.issued)
        with SmtpPeer(certs, recorder) as peer:
            send(peer, certs.ca, outgoing(1), SendLedger(tmp_path / "a"), **oauth(tokens))
            tokens.issued.clear()  # revoked on the server's side while still cached here
            results = send(peer, certs.ca, outgoing(2), SendLedger(tmp_path / "b"), **oauth(tokens))
    assert [r.status for r in results] == ["delivered", "delivered"]
    assert len(tokens.requests) == 2
    assert [ok for _, _, ok in recorder.xoauth2_attempts] == [True, False, True]


def test_a_wrong_client_secret_fails_clearly_without_printing_it(certs, tmp_path):
    ledger = SendLedger(tmp_path / "ledger")
    with TokenServer() as tokens, SmtpPeer(certs, Recorder(oauth_tokens=tokens.issued)) as peer:
        with pytest.raises(SmtpError) as caught:
            send(peer, certs.ca, outgoing(2), ledger, **oauth(tokens, oauth_client_secret="wrong-secret-value"))
    text = str(caught.value)
    assert "no OAuth token for SMTP, nothing was sent" in text and "HTTP 401" in text
    assert "invalid_client" in text and "AADSTS7000215" in text and CLIENT_ID in text
    assert "wrong-secret-value" not in text and "Trace ID" not in text
    assert peer.recorder.messages == [] and list(ledger) == []


def test_a_token_the_smtp_server_never_accepts_fails_the_login(certs, tmp_path):
    with TokenServer() as tokens, SmtpPeer(certs, Recorder()) as peer:  # the server accepts no token
        with pytest.raises(SmtpError, match=r"login as 'costagent@example.com' with an OAuth token refused: 535 5.7.3"):
            send(peer, certs.ca, outgoing(1), SendLedger(tmp_path / "ledger"), **oauth(tokens))
        assert len(tokens.requests) == 2  # the cached token, then one fresh try
        assert peer.recorder.messages == []


def test_a_token_endpoint_that_is_down_is_a_clear_error():
    credentials = ClientCredentials("http://127.0.0.1:9", TENANT, CLIENT_ID, CLIENT_SECRET)
    with pytest.raises(OAuthError, match="cannot reach the token endpoint") as caught:
        access_token(credentials, timeout_seconds=2)
    assert CLIENT_SECRET not in str(caught.value)


def test_smtp_auth_xoauth2_binds_the_oauth_variables_and_checks_them_before_a_run(tmp_path, monkeypatch):
    settings = Settings(email_mode="smtp", smtp_auth="xoauth2")
    env = {"SMTP_HOST": "smtp.office365.com", "SENDER_EMAIL": SENDER}
    assert delivery_setup_problems(settings, env) == [
        "smtp_auth=xoauth2 needs the environment variable(s) SMTP_OAUTH_TENANT, SMTP_OAUTH_CLIENT_ID, "
        "SMTP_OAUTH_CLIENT_SECRET (or SMTP_OAUTH_CERTIFICATE)"
    ]
    for name, value in {"SMTP_OAUTH_TENANT": TENANT, "SMTP_OAUTH_CLIENT_ID": CLIENT_ID,
                        "SMTP_OAUTH_CLIENT_SECRET": CLIENT_SECRET}.items():
        monkeypatch.setenv(name, value)
        env[name] = value
    assert delivery_setup_problems(settings, env) == []
    bound = build_resources(Home(tmp_path), settings)["email_delivery"]
    assert isinstance(bound, SmtpDelivery) and bound.auth == "xoauth2"
    assert bound.oauth_authority == "https://login.microsoftonline.com"
    # The secret stays an environment variable until a run reads it.
    assert isinstance(bound.oauth_client_secret, dg.EnvVar) and bound.oauth_client_secret.env_var_name == (
        "SMTP_OAUTH_CLIENT_SECRET")


def test_basic_auth_stays_available(certs, tmp_path):
    with SmtpPeer(certs) as peer:
        with delivery(peer, certs.ca).session("2026-11-23") as session:
            assert session.conn is not None
    assert [m for m, _ in peer.recorder.auth_attempts] in (["PLAIN"], ["LOGIN"])


def test_a_certificate_credential_signs_a_client_assertion_instead_of_sending_a_secret(certs, tmp_path):
    pem = tmp_path / "costagent-smtp.pem"
    with TokenServer() as tokens:
        tokens.register(make_client_certificate(pem))
        recorder = Recorder(oauth_tokens=tokens.issued)
        with SmtpPeer(certs, recorder) as peer:
            results = send(peer, certs.ca, outgoing(2), SendLedger(tmp_path / "ledger"),
                           **oauth(tokens, oauth_client_secret=None, oauth_certificate=str(pem)))
    assert [r.status for r in results] == ["delivered"] * 2
    form = tokens.requests[0]
    assert "client_secret" not in form and form["client_assertion_type"].endswith(":jwt-bearer")
    assert form["client_assertion"].count(".") == 2 and [ok for _, _, ok in recorder.xoauth2_attempts] == [True]


def test_a_certificate_the_app_does_not_know_is_refused_clearly(certs, tmp_path):
    pem = tmp_path / "unregistered.pem"
    make_client_certificate(pem)
    with TokenServer() as tokens, SmtpPeer(certs, Recorder(oauth_tokens=tokens.issued)) as peer:
        with pytest.raises(SmtpError, match=r"HTTP 401\): invalid_client: AADSTS700027: Client assertion failed"):
            send(peer, certs.ca, outgoing(1), SendLedger(tmp_path / "ledger"),
                 **oauth(tokens, oauth_client_secret=None, oauth_certificate=str(pem)))
        with pytest.raises(SmtpError, match="cannot read the OAuth certificate"):
            send(peer, certs.ca, outgoing(1), SendLedger(tmp_path / "ledger"),
                 **oauth(tokens, oauth_client_secret=None, oauth_certificate=str(tmp_path / "missing.pem")))
        assert peer.recorder.messages == []

