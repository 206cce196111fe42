"""The route hubs call: /websub/<token>, public (a hub has no token of bridge's), so it proves everything itself.

- Intent verification (spec 5.3): GET with hub.mode, hub.topic, hub.challenge. bridge echoes the challenge only
  for a request it made itself: this token, this topic, and a (un)subscribe it is waiting for. Anything else
  gets 404, so nobody can subscribe bridge to anything.
- Content distribution (spec 7): POST of the new content, signed X-Hub-Signature: <algo>=<HMAC of the body with
  the subscription's secret>. A push that is unsigned or wrongly signed is ignored (spec 7.1: "MUST locally
  ignore"), yet acknowledged with 202 as the spec allows, so a forger learns nothing from the answer.

The callback thread never touches the daemon's database connection (bridge/web/server.py): it reads the
Callbacks table kept in memory by the subscriber job and hands what it learned to the daemon (on_event), which
records it and polls in jobs of its own.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

from bridge.web.server import Request, Response, Router

log = logging.getLogger("bridge.websub")

PATH_PREFIX = "/websub/"
# The algorithms the spec names (7.1); sha1 only because hubs still send it.
SIGNATURES = {"sha1": hashlib.sha1, "sha256": hashlib.sha256, "sha384": hashlib.sha384, "sha512": hashlib.sha512}


@dataclass
class Callback:
    """One subscription's callback, as the subscriber job last wrote it."""

    feed: str
    topic: str
    secret: str
    awaiting: set[str] = field(default_factory=set)  # modes asked of the hub and not yet verified


@dataclass(frozen=True)
class Event:
    kind: str  # verified, denied, push, rejected
    feed: str
    token: str
    mode: str | None = None
    lease_seconds: float | None = None
    body: bytes = b""
    content_type: str | None = None
    link_header: str | None = None  # a push names the hub and topic too (spec 7)
    reason: str | None = None
    at: float = 0.0


class Callbacks:
    """token -> Callback, shared by the subscriber job (writes) and the server's threads (read)."""

    def __init__(self, on_event: Callable[[Event], None], clock: Callable[[], float] = time.time) -> None:
        self._lock = threading.Lock()
        self._by_token: dict[str, Callback] = {}
        self.on_event = on_event
        self.clock = clock

    def expect(self, token: str, feed: str, topic: str, secret: str, mode: str) -> None:
        """bridge is about to ask the hub for `mode` on this callback: the verification may come before the
        hub's answer does, so it is expected first."""
        with self._lock:
            callback = self._by_token.setdefault(token, Callback(feed, topic, secret))
            callback.topic, callback.secret = topic, secret
            callback.awaiting.add(mode)

    def keep(self, token: str, feed: str, topic: str, secret: str) -> None:
        """An active subscription (after a restart too): pushes are accepted, nothing is awaited."""
        with self._lock:
            self._by_token.setdefault(token, Callback(feed, topic, secret))

    def forget(self, token: str) -> None:
        with self._lock:
            self._by_token.pop(token, None)

    def settle(self, token: str, mode: str) -> None:
        with self._lock:
            callback = self._by_token.get(token)
            if callback is not None:
                callback.awaiting.discard(mode)

    def tokens(self) -> set[str]:
        with self._lock:
            return set(self._by_token)

    def _find(self, token: str) -> Callback | None:
        with self._lock:
            return self._by_token.get(token)

    # --- the route -----------------------------------------------------------------------------------------

    def add_routes(self, router: Router) -> None:
        router.add(PATH_PREFIX, self.answer, methods=("GET", "POST"), prefix=True, public=True)

    def answer(self, request: Request) -> Response:
        token = request.path[len(PATH_PREFIX):]
        callback = self._find(token) if token else None
        if callback is None:
            # 404 for a verification; 410 tells a hub pushing to an old callback to stop (spec 7).
            return Response.text("no such subscription\n", 410 if request.method == "POST" else 404)
        if request.method == "POST":
            return self._distribution(token, callback, request)
        return self._verification(token, callback, request)

    def _verification(self, token: str, callback: Callback, request: Request) -> Response:
        def arg(name: str) -> str:
            return (request.query.get(name) or [""])[0]

        mode, topic = arg("hub.mode"), arg("hub.topic")
        if mode == "denied" and topic == callback.topic:
            self.on_event(Event("denied", callback.feed, token, reason=arg("hub.reason")[:300] or "no reason given",
                                at=self.clock()))
            return Response.text("noted\n")
        challenge = arg("hub.challenge")
        if mode not in callback.awaiting or topic != callback.topic or not challenge:
            log.warning("feed %s: refused a WebSub verification bridge did not ask for (mode %r)", callback.feed,
                        mode[:40])
            return Response.text("not a request of mine\n", 404)
        lease = arg("hub.lease_seconds")
        self.settle(token, mode)
        self.on_event(Event("verified", callback.feed, token, mode=mode,
                            lease_seconds=float(lease) if lease.isdigit() else None, at=self.clock()))
        return Response(200, challenge.encode("utf-8"))

    def _distribution(self, token: str, callback: Callback, request: Request) -> Response:
        reason = signature_problem(request.headers.get("X-Hub-Signature"), callback.secret, request.body)
        if reason is not None:
            log.warning("feed %s: ignored a WebSub push: %s", callback.feed, reason)
            self.on_event(Event("rejected", callback.feed, token, reason=reason, at=self.clock()))
            return Response.text("accepted\n", 202)  # the same answer as a good push: no oracle for forgers
        self.on_event(Event("push", callback.feed, token, body=request.body,
                            content_type=request.headers.get("Content-Type"),
                            link_header=", ".join(request.headers.get_all("Link") or []) or None, at=self.clock()))
        return Response.text("accepted\n", 202)


def signature_problem(header: str | None, secret: str, body: bytes) -> str | None:
    """None when `header` is a valid signature of `body` under `secret`; else why not."""
    if not header:
        return "it is unsigned (no X-Hub-Signature)"
    algorithm, _, given = header.strip().partition("=")
    digest = SIGNATURES.get(algorithm.strip().lower())
    if digest is None:
        return f"its signature uses an unknown method {algorithm[:20]!r}"
    expected = hmac.new(secret.encode("utf-8"), body, digest).hexdigest()
    if not hmac.compare_digest(expected, given.strip().lower()):
        return "its signature does not match (forged, or signed with another secret)"
    return None
