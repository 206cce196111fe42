"""A proxy on 127.0.0.1 in front of a test server that cannot be told to fail (the PDS, Takahē; the Mastodon fake
for what its own fault hooks lack): rules say what happens to the next requests that match, everything else is
forwarded as it came.

    proxy = FaultProxy(pds.url)                 # bridge talks to proxy.url instead of pds.url
    proxy.answer_next("POST /xrpc/com.atproto.repo.createRecord", 503)      # not forwarded: a 503 instead
    proxy.answer_next("POST /api/v1/statuses", 429, headers={"X-RateLimit-Reset": "..."}, json={"error": "..."})
    proxy.lose_next("POST /api/v1/statuses")    # forwarded (the post is made), the answer never arrives
    proxy.reset_next("POST /api/v1/statuses")   # the connection is cut before anything is forwarded

A rule matches a request whose request line starts with its text ("METHOD /path"; a query string may follow)
and applies to that many requests (`times`, default 1), first rule first. `seen(text)` lists the matching
requests that arrived (when, and what became of them), `clear()` drops the rules left. Built on DripProxy
(tests/dripproxy.py): each request is forwarded on a connection of its own. Only loopback is contacted.
"""

from __future__ import annotations

import json as jsonlib
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

from tests.dripproxy import DripProxy

REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 422: "Unprocessable Entity",
           429: "Too Many Requests", 500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable"}


@dataclass
class Rule:
    request: str  # the start of the request line, e.g. "POST /api/v1/statuses"
    action: str  # "answer" (not forwarded) | "lose" (forwarded, no answer) | "reset" (cut, not forwarded)
    times: int = 1
    status: int = 0
    headers: dict[str, str] | Callable[[], dict[str, str]] = field(default_factory=dict)
    body: bytes = b""

    def headers_now(self) -> dict[str, str]:
        """A callable is asked when the answer goes out: a rate limit's reset is then counted from that moment."""
        return self.headers() if callable(self.headers) else self.headers


@dataclass(frozen=True)
class Seen:
    at: float  # time.time() when it arrived
    line: str  # the request line
    outcome: str  # "forwarded" | "answered" | "lost" | "reset"


class FaultProxy(DripProxy):
    def __init__(self, upstream: str) -> None:
        super().__init__(upstream, drip_on=None)
        self.upstream_url = upstream.rstrip("/")  # the server itself, for the test's own look behind the proxy
        self.rules: list[Rule] = []
        self.log: list[Seen] = []
        self._lock = threading.Lock()

    # --- rules ---------------------------------------------------------------------------------------------

    def answer_next(self, request: str, status: int, *,
                    headers: dict[str, str] | Callable[[], dict[str, str]] | None = None, json=None,
                    times: int = 1) -> None:
        body = b"" if json is None else jsonlib.dumps(json).encode()
        content_type = {"Content-Type": "application/json; charset=utf-8"} if json is not None else {}
        if callable(headers):
            self._add(Rule(request, "answer", times, status, lambda: {**content_type, **headers()}, body))
        else:
            self._add(Rule(request, "answer", times, status, {**content_type, **(headers or {})}, body))

    def lose_next(self, request: str, *, times: int = 1) -> None:
        self._add(Rule(request, "lose", times))

    def reset_next(self, request: str, *, times: int = 1) -> None:
        self._add(Rule(request, "reset", times))

    def clear(self) -> None:
        with self._lock:
            self.rules.clear()

    def seen(self, request: str) -> list[Seen]:
        with self._lock:
            return [entry for entry in self.log if entry.line.startswith(request)]

    def _add(self, rule: Rule) -> None:
        with self._lock:
            self.rules.append(rule)

    def _take(self, line: str) -> Rule | None:
        with self._lock:
            for rule in self.rules:
                if line.startswith(rule.request):
                    rule.times -= 1
                    if rule.times <= 0:
                        self.rules.remove(rule)
                    return rule
        return None

    # --- serving -------------------------------------------------------------------------------------------

    def _answer(self, client: socket.socket, request: bytes, line: str) -> bool:
        rule = self._take(line)
        outcome = {"answer": "answered", "lose": "lost", "reset": "reset"}[rule.action] if rule else "forwarded"
        with self._lock:
            self.log.append(Seen(time.time(), line, outcome))
        if rule is not None and rule.action == "reset":
            return False  # hang up without a word: the client sees the connection reset or closed
        if rule is not None and rule.action == "answer":
            client.sendall(_frame(rule.status, rule.headers_now(), rule.body))
            return True
        answer = self._forward(request)
        if rule is not None or not answer:  # "lose" (the server did the work), or the server hung up
            return False
        client.sendall(answer)
        return True


def _frame(status: int, headers: dict[str, str], body: bytes) -> bytes:
    lines = [f"HTTP/1.1 {status} {REASONS.get(status, 'Error')}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    lines += [f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
