"""Email delivery by SMTP: STARTTLS with certificate verification, authentication, paced sends.

Office 365 style by default: port 587, STARTTLS, about 30 messages a minute over at most 3 connections
(costagent uses one). Authentication is AUTH LOGIN/PLAIN with a password (``auth="basic"``), or SASL
XOAUTH2 with an OAuth 2.0 access token from the client-credentials flow (``auth="xoauth2"``), which
Office 365 requires once basic authentication for SMTP AUTH is switched off.
"""

from __future__ import annotations

import contextlib
import email.utils
import smtplib
import ssl
import time
from collections.abc import Iterator
from contextlib import contextmanager

from pydantic import Field

from costagent_assets.delivery import DEFERRED, REFUSED, SENT, UNKNOWN, Outgoing, SendResult
from costagent_assets.resources.email_delivery import EmailDelivery
from costagent_assets.resources.oauth import (
    ClientCredentials,
    OAuthError,
    access_token,
    invalidate,
    xoauth2_response,
)


class SmtpError(RuntimeError):
    """The SMTP server could not be reached safely (no TLS, untrusted certificate, failed login)."""


def _reply(code: int, text: bytes | str) -> str:
    text = text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)
    return f"{code} {' '.join(text.split())}"


def recipients_of(message) -> list[str]:
    """The envelope recipients of a built message: its To and Cc addresses, in order, once each."""
    pairs = email.utils.getaddresses([*message.get_all("To", []), *message.get_all("Cc", [])])
    return list(dict.fromkeys(addr for _, addr in pairs if addr))


class _SmtpSession:
    """One connection for a whole batch, paced to the configured rate; reconnects after a broken one."""

    def __init__(self, resource: SmtpDelivery):
        self.r = resource
        self.interval = 60.0 / resource.rate_per_minute
        self.conn: smtplib.SMTP | None = None
        self.last_send = float("-inf")

    def connect(self) -> smtplib.SMTP:
        r = self.r
        context = ssl.create_default_context(cafile=r.ca_bundle or None)  # verifies the chain and the host name
        try:
            conn = smtplib.SMTP(r.host, r.port, timeout=r.timeout_seconds)
        except OSError as err:
            raise SmtpError(f"cannot connect to SMTP server {r.host}:{r.port}: {err}") from None
        try:
            conn.ehlo()
            if not conn.has_extn("starttls"):
                raise SmtpError(
                    f"SMTP server {r.host}:{r.port} does not offer STARTTLS; refusing to send in plain text"
                )
            conn.starttls(context=context)
            conn.ehlo()
            self._login(conn)
        except ssl.SSLError as err:
            conn.close()
            raise SmtpError(f"TLS with {r.host}:{r.port} failed, nothing was sent: {err}") from None
        except smtplib.SMTPAuthenticationError as err:
            conn.close()
            how = " with an OAuth token" if r.auth == "xoauth2" else ""
            raise SmtpError(f"SMTP login as {r.login_user()!r}{how} refused: "
                            f"{_reply(err.smtp_code, err.smtp_error)}") from None
        except OAuthError as err:
            conn.close()
            raise SmtpError(f"no OAuth token for SMTP, nothing was sent: {err}") from None
        except (smtplib.SMTPException, OSError) as err:
            conn.close()
            if isinstance(err, SmtpError):
                raise
            raise SmtpError(f"SMTP handshake with {r.host}:{r.port} failed: {err}") from None
        return conn

    def _login(self, conn: smtplib.SMTP) -> None:
        r = self.r
        if r.auth == "basic":
            if r.username:
                conn.login(r.username, r.password or "")
            return
        credentials = r.oauth_credentials()
        # A cached token the server refuses (535: revoked, or expired early) is dropped and fetched anew once.
        for last_try in (False, True):
            initial = xoauth2_response(r.login_user(), access_token(credentials, timeout_seconds=r.timeout_seconds))

            def answer(challenge: bytes | None = None, initial: str = initial) -> str:
                # After a refusal the server sends a JSON error as a challenge; an empty reply ends the exchange.
                return initial if challenge is None else ""

            try:
                conn.auth("XOAUTH2", answer, initial_response_ok=True)
                return
            except smtplib.SMTPAuthenticationError:
                invalidate(credentials)
                if last_try:
                    raise

    def close(self) -> None:
        if self.conn is not None:
            try:
                self.conn.quit()
            except (smtplib.SMTPException, OSError):
                self.conn.close()
            self.conn = None

    def _pace(self) -> None:
        wait = self.last_send + self.interval - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        self.last_send = time.monotonic()

    def _attempt(self, sender: str, pending: list[str], data: bytes) -> dict[str, tuple[int, str]]:
        """One SMTP transaction: the refused recipients with (code, reply); the others were accepted.

        Raises ``_NotHandedOver`` when the connection broke before the message's data was sent (the
        server cannot have it), ``_Unknown`` when it broke during or after DATA (it may have it).
        MAIL, RCPT and DATA are issued one by one (not ``sendmail``) to tell the two apart.
        """
        self._pace()
        conn, handed_over = self.conn, False
        try:
            conn.ehlo_or_helo_if_needed()
            code, reply = conn.mail(sender)
            if code != 250:
                refused = dict.fromkeys(pending, (code, reply))
            else:
                refused = {}
                for address in pending:
                    code, reply = conn.rcpt(address)
                    if code not in (250, 251):
                        refused[address] = (code, reply)
                if len(refused) < len(pending):
                    handed_over = True
                    try:
                        code, reply = conn.data(data)
                    except smtplib.SMTPDataError as err:  # DATA itself refused (not 354): nothing was sent
                        code, reply = err.smtp_code, err.smtp_error
                    if code != 250:
                        # The message itself refused: the same answer for every recipient that was accepted.
                        refused.update(dict.fromkeys([a for a in pending if a not in refused], (code, reply)))
            if refused and any(code != 421 for code, _ in refused.values()):
                with contextlib.suppress(smtplib.SMTPException, OSError):
                    conn.rset()
        except (smtplib.SMTPException, OSError) as err:
            self._drop()
            raise (_Unknown if handed_over else _NotHandedOver)(str(err) or type(err).__name__) from None
        if any(code == 421 for code, _ in refused.values()):
            # 421: the server is closing the connection; the retry reconnects.
            self._drop()
        return {a: (c, _reply(c, t)) for a, (c, t) in refused.items()}

    def _drop(self) -> None:
        if self.conn is not None:
            with contextlib.suppress(smtplib.SMTPException, OSError):
                self.conn.close()
        self.conn = None

    def send(self, outgoing: Outgoing) -> SendResult:
        """Send one message to its To and Cc (or to ``outgoing.only``, what an earlier run could not
        deliver); 4xx replies and connections lost before the data was sent are retried with backoff,
        5xx replies are recorded per recipient.

        SENT when every recipient accepted it, or refused it permanently while the To address accepted it
        (the refusals are in the detail); REFUSED when the To address refused it permanently (or everyone
        did); DEFERRED while some recipient has only refused it for now (4xx, or no connection) after every
        attempt: ``accepted`` says who has it already and ``pending`` who is to be tried by the next run;
        UNKNOWN when the connection broke while the message was being handed over.
        """
        r = self.r
        headers = recipients_of(outgoing.message)
        to = list(outgoing.only) or headers
        data = outgoing.message.as_bytes()
        pending, accepted = list(to), []
        permanent: dict[str, str] = {}
        temporary: dict[str, str] = {}
        for attempt in range(r.retry_attempts):
            if attempt:
                time.sleep(r.retry_base_seconds * 2 ** (attempt - 1))
            if self.conn is None:
                try:
                    self.conn = self.connect()
                except SmtpError as err:
                    # No retries here: with the server down every later message would wait out the backoff.
                    temporary = dict.fromkeys(pending, str(err))
                    break
            try:
                refused = self._attempt(r.sender, pending, data)
            except _NotHandedOver as err:
                temporary = dict.fromkeys(pending, f"connection lost before the message was sent: {err}")
                continue
            except _Unknown as err:
                # The connection broke during the transfer: the server may have the message. Never resend.
                return SendResult(UNKNOWN, detail=f"connection lost while sending: {err}",
                                  accepted=tuple(accepted), pending=tuple(pending))
            accepted += [a for a in pending if a not in refused]
            temporary = {a: reply for a, (code, reply) in refused.items() if 400 <= code < 500}
            permanent.update({a: reply for a, (code, reply) in refused.items() if not 400 <= code < 500})
            if not temporary:
                break
            pending = list(temporary)
        message_id = outgoing.message["Message-ID"] or ""
        refused = {**permanent, **temporary}
        common = {"location": message_id, "refused": refused, "accepted": tuple(accepted)}
        if headers and headers[0] in permanent or not accepted and not temporary:
            return SendResult(REFUSED, detail=f"refused: {_describe(refused)}", **common)
        if temporary:
            done = f"accepted by {', '.join(accepted)}; " if accepted else ""
            return SendResult(
                DEFERRED, detail=f"{done}not accepted after {r.retry_attempts} attempts: {_describe(refused)}",
                pending=tuple(temporary), **common,
            )
        return SendResult(SENT, detail="accepted" + (f"; refused: {_describe(refused)}" if refused else ""), **common)


class _NotHandedOver(Exception):
    """The connection broke before the message's data was sent: the server cannot have it."""


class _Unknown(Exception):
    """The connection broke while the message's data was being sent or acknowledged."""


def _describe(refused: dict[str, str]) -> str:
    return "; ".join(f"{addr}: {reply}" for addr, reply in refused.items())


class SmtpDelivery(EmailDelivery):
    """Sends the reports through an SMTP server with STARTTLS (certificate and host name verified) and,
    when a user is set, authentication. One connection per run, paced to ``rate_per_minute``; 4xx replies
    are retried with exponential backoff, 5xx replies are recorded per recipient and not retried.
    Connection details come from ``SMTP_HOST``, ``SMTP_PORT``, ``SMTP_USER``, ``SMTP_PASSWORD`` and
    ``SENDER_EMAIL`` (``dg.EnvVar``, read at run time, never logged).
    """

    host: str = Field(description="SMTP server host name (SMTP_HOST).")
    port: int = Field(default=587, description="Submission port with STARTTLS (SMTP_PORT), default 587.")
    username: str | None = Field(default=None, description="Login user (SMTP_USER); no AUTH when unset.")
    password: str | None = Field(default=None, description="Login password (SMTP_PASSWORD).")
    sender: str = Field(description="From address of the reports (SENDER_EMAIL).")
    ca_bundle: str = Field(default="", description="PEM file of trusted CAs; empty for the system's.")
    rate_per_minute: float = Field(default=30.0, gt=0, description="Most messages sent per minute.")
    retry_attempts: int = Field(default=4, ge=1, description="Attempts per message on 4xx replies.")
    retry_base_seconds: float = Field(default=2.0, ge=0, description="First backoff on a 4xx; doubles each time.")
    timeout_seconds: float = Field(default=30.0, gt=0, description="Socket timeout.")
    auth: str = Field(default="basic", pattern="^(basic|xoauth2)$",
                      description="basic (user and password) or xoauth2 (OAuth 2.0 client credentials).")
    oauth_authority: str = Field(default="https://login.microsoftonline.com",
                                 description="The identity platform that issues tokens for xoauth2.")
    oauth_tenant: str | None = Field(default=None, description="Directory (tenant) id (SMTP_OAUTH_TENANT).")
    oauth_client_id: str | None = Field(default=None, description="Application (client) id (SMTP_OAUTH_CLIENT_ID).")
    oauth_client_secret: str | None = Field(default=None, description="Client secret (SMTP_OAUTH_CLIENT_SECRET).")
    oauth_certificate: str | None = Field(
        default=None, description="PEM file with the key and certificate, instead of a secret (SMTP_OAUTH_CERTIFICATE)."
    )

    @property
    def mode(self) -> str:
        return "smtp"

    def sender_address(self) -> str:
        """The From address (SENDER_EMAIL)."""
        return self.sender

    def login_user(self) -> str:
        """Who logs in: SMTP_USER, or for xoauth2 without one the sending mailbox (SENDER_EMAIL)."""
        return self.username or (self.sender if self.auth == "xoauth2" else "")

    def oauth_credentials(self) -> ClientCredentials:
        """The app registration's client credentials for xoauth2; SmtpError names what is missing."""
        missing = [name for name, value in (("SMTP_OAUTH_TENANT", self.oauth_tenant),
                                            ("SMTP_OAUTH_CLIENT_ID", self.oauth_client_id)) if not value]
        if not (self.oauth_client_secret or self.oauth_certificate):
            missing.append("SMTP_OAUTH_CLIENT_SECRET (or SMTP_OAUTH_CERTIFICATE)")
        if missing:
            raise SmtpError(f"smtp_auth=xoauth2 needs the environment variable(s) {', '.join(missing)}")
        return ClientCredentials(self.oauth_authority, self.oauth_tenant, self.oauth_client_id,
                                 client_secret=self.oauth_client_secret or "",
                                 certificate_path=self.oauth_certificate or "")

    @contextmanager
    def session(self, report_date: str) -> Iterator[_SmtpSession]:
        """One verified, authenticated connection; raises SmtpError before anything is sent if it cannot be."""
        session = _SmtpSession(self)
        session.conn = session.connect()
        try:
            yield session
        finally:
            session.close()
