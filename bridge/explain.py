"""A failure in plain words: what happened, in one sentence, and what to do about it.

Library errors arrive wrapped several times (Mastodon.py wraps requests, which wraps urllib3, which wraps the
socket's error; bridge's own errors are raised `from None` on top, which hides the chain from tracebacks but
keeps it in __context__). Their text is long and technical ("NameResolutionError(HTTPSConnection(host=...") and
was shown cut at 200 characters. The kind of failure is read from the types along that chain instead, innermost
first, and each kind has one sentence and one fix, here and nowhere else.
"""

from __future__ import annotations

import json
import socket
import ssl
from dataclasses import dataclass
from urllib.parse import urlsplit

from bridge.errors import AuthError, FeedHTTPError, OutcomeUnknown

SERVER_TROUBLE_FIX = "nothing to change here: bridge retries with backoff and loses nothing; if it lasts for hours, " \
                     "tell the server's admin or check its status page"


@dataclass(frozen=True)
class Explanation:
    kind: str  # dns, refused, tls, timeout, auth, not_found, http, server, not_json, other
    sentence: str
    fix: str


def explain(exc: BaseException, url: str, *, key: str, not_found_fix: str = "") -> Explanation:
    """`exc`, raised while talking to `url` (configured at `key`), as a sentence and a fix."""
    parts = urlsplit(url)
    host = parts.hostname or url
    port = parts.port or (443 if parts.scheme == "https" else 80)
    chain = _chain(exc)
    if any(isinstance(link, socket.gaierror) for link in chain):
        return Explanation("dns", f"the name {host} does not resolve: no DNS record says which machine it is",
                           f"check the spelling of {url} ({key}); if it is right, check this machine's DNS "
                           f"(getent hosts {host})")
    if any(isinstance(link, ConnectionRefusedError) for link in chain):
        return Explanation("refused", f"{host} refused the connection on port {port}: no server listens there, or "
                                      f"a firewall turns bridge away",
                           f"check the port in {url} ({key}) and that the server is running (curl -I {url})")
    # innermost: aiohttp's wrapper is an SSLCertVerificationError too, without ssl's fields
    certificate = next((link for link in reversed(chain) if isinstance(link, ssl.SSLCertVerificationError)), None)
    if certificate is not None:
        why = getattr(certificate, "verify_message", "") or "it could not be verified"
        return Explanation("tls", f"{host}'s TLS certificate is not trusted: {why}",
                           f"if {host} is yours, give it a certificate from a public CA (Let's Encrypt) that names "
                           f"{host}; if a proxy inspects TLS here, add its CA to the system's certificates")
    if any(isinstance(link, ssl.SSLError) for link in chain):
        return Explanation("tls", f"the TLS handshake with {host} failed (is it an https:// server on port {port}?)",
                           f"check the scheme and port of {url} ({key}): https:// for TLS, http:// for plain HTTP")
    if any(_is_timeout(link) for link in chain):
        return Explanation("timeout", f"{host} did not answer in time: connecting or waiting for its answer took "
                                      f"longer than bridge waits",
                           f"open {url} in a browser on this machine: if it loads slowly, raise [bridge] "
                           f"read_timeout or total_timeout; if not at all, the server is down or overloaded and "
                           f"bridge retries with backoff, losing nothing")
    fix = next((link.fix for link in chain if isinstance(link, (AuthError, OutcomeUnknown))), "")
    status = next((found for link in chain if (found := _status(link)) is not None), None)
    if status in (401, 403):
        return Explanation("auth", f"{host} refused the credential (HTTP {status})",
                           fix or f"make a new credential and put it where {key} points")
    if status == 404:
        return Explanation("not_found", f"{url} has no such page (HTTP 404)",
                           not_found_fix or f"check {key}: is {url} the right address?")
    if status is not None and status >= 500:
        return Explanation("server", f"{host} has trouble of its own (HTTP {status})", SERVER_TROUBLE_FIX)
    if any(isinstance(link, json.JSONDecodeError) for link in chain):
        return Explanation("not_json", f"{host} answered with a page that is not the JSON its API speaks (a "
                                       f"maintenance page, a proxy's or a login page?)",
                           f"open {url} in a browser to see what it serves; check {key} is the server's own address")
    if status is not None:
        return Explanation("http", f"{host} answered HTTP {status}", fix or f"check {key} ({url})")
    return Explanation("other", _own_words(exc), fix or f"run `bridge -v doctor` for details and check {key}")


def _chain(exc: BaseException) -> list[BaseException]:
    """The exception and every one it was raised from or during, outermost first."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def _is_timeout(exc: BaseException) -> bool:
    # TimeoutError is socket.timeout and asyncio's; requests, urllib3, httpx and bridge's deadline name theirs so.
    return isinstance(exc, TimeoutError) or any("Timeout" in cls.__name__ or cls.__name__ == "DeadlineExceeded"
                                                for cls in type(exc).__mro__)


def _status(exc: BaseException) -> int | None:
    """The HTTP status an error carries: bridge's feed errors, Mastodon.py's (args: message, status, reason, ...),
    httpx's and atproto's (a response)."""
    if isinstance(exc, FeedHTTPError):
        return exc.status
    args = exc.args
    if len(args) > 2 and isinstance(args[1], int) and 100 <= args[1] < 600 and isinstance(args[2], str):
        return args[1]
    response = getattr(exc, "response", None)
    code = getattr(response, "status_code", None)
    return code if isinstance(code, int) else None


def _own_words(exc: BaseException) -> str:
    """bridge's own message (already a sentence), without the fix AuthError and OutcomeUnknown append."""
    text = str(exc)
    fix = getattr(exc, "fix", "")
    return text.removesuffix(f" — {fix}") if fix else text
