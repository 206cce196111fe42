"""Real local receivers for alerts, loopback only: an HTTP endpoint (Apprise json:// and ntfy://, and the
dead-man's switch pings) and an SMTP server (aiosmtpd) that requires a password, for Apprise mailto://.

    with HttpReceiver() as web:           # or the `http_receiver` fixture
        web.url("/hook")                  # http://127.0.0.1:PORT/hook
        web.posts("/hook")                # [Received(path, headers, body)], in order
        web.status = 500                  # answer every request with this status from now on
    with SmtpReceiver(password="...") as mail:   # or the `smtp_receiver` fixture
        mail.mailto_url(password)         # mailto://alerts:PASSWORD@127.0.0.1:PORT?from=...&to=...
        mail.messages                     # [email.message.Message]
"""

from __future__ import annotations

import email
import json
import socket
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import quote

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

SMTP_USER = "alerts"
RECIPIENT = "writer@example.com"


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: str

    def json(self) -> dict:
        return json.loads(self.body)


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, format, *args):  # quiet
        pass

    def _record(self) -> None:
        owner: HttpReceiver = self.server.owner  # type: ignore[attr-defined]
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode("utf-8", "replace") if length else ""
        with owner.lock:
            owner.received.append(Received(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body))
        self.send_response(owner.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    do_POST = do_PUT = do_GET = _record


class HttpReceiver:
    def __init__(self) -> None:
        self.received: list[Received] = []
        self.lock = threading.Lock()
        self.status = 200
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.owner = self  # type: ignore[attr-defined]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> "HttpReceiver":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    def url(self, path: str, scheme: str = "http") -> str:
        return f"{scheme}://127.0.0.1:{self.port}{path}"

    def posts(self, prefix: str = "/") -> list[Received]:
        with self.lock:
            return [item for item in self.received if item.path.startswith(prefix)]


class _Mailbox:
    def __init__(self) -> None:
        self.messages: list[email.message.Message] = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(email.message_from_bytes(envelope.original_content or envelope.content))
        return "250 OK"


class SmtpReceiver:
    """An SMTP server that takes mail only after AUTH with this password (no TLS: loopback)."""

    def __init__(self, password: str) -> None:
        self.password = password
        self.logins: list[bool] = []
        self._mailbox = _Mailbox()
        self._controller = Controller(self._mailbox, hostname="127.0.0.1", port=_free_port(), authenticator=self._authenticate,
                                      auth_required=True, auth_require_tls=False)

    def _authenticate(self, server, session, envelope, mechanism, auth_data) -> AuthResult:
        ok = isinstance(auth_data, LoginPassword) and auth_data.login.decode() == SMTP_USER \
            and auth_data.password.decode() == self.password
        self.logins.append(ok)
        return AuthResult(success=ok)

    def __enter__(self) -> "SmtpReceiver":
        self._controller.start()
        return self

    def __exit__(self, *exc) -> None:
        self._controller.stop()

    @property
    def port(self) -> int:
        return self._controller.port

    @property
    def messages(self) -> list[email.message.Message]:
        return list(self._mailbox.messages)

    def mailto_url(self, password: str | None = None) -> str:
        secret = quote(self.password if password is None else password, safe="")
        return (f"mailto://{SMTP_USER}:{secret}@127.0.0.1:{self.port}?from=bridge@example.com&to={RECIPIENT}"
                "&mode=insecure")

    def bodies(self) -> list[str]:
        return [_text(message) for message in self.messages]


def _free_port() -> int:
    """A free loopback port: aiosmtpd's Controller checks its server by connecting to the port it was given."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _text(message: email.message.Message) -> str:
    parts = [part for part in message.walk() if part.get_content_type() == "text/plain"] or [message]
    return "\n".join(str(message["Subject"] or "") + "\n" + part.get_payload(decode=True).decode("utf-8", "replace")
                     for part in parts if part.get_payload(decode=True) is not None)


@pytest.fixture
def http_receiver():
    with HttpReceiver() as receiver:
        yield receiver


@pytest.fixture
def smtp_receiver():
    with SmtpReceiver(password="mail-Pa55word-for-alerts") as receiver:
        yield receiver
