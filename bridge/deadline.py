"""One hard deadline for a whole HTTP request: connecting, headers and body.

The HTTP clients bridge uses (httpx, requests under Mastodon.py) bound each socket read, not their sum: a server
sending a byte every few seconds holds a request as long as it likes -- and deliveries run one after another,
so one such server would hold every account. A Deadline watches the sockets a request uses and shuts them down
when its time is up: the read in progress ends at once, whatever phase it is in, the client raises its own
network error, and the code here turns that into a timeout saying what happened (httpx.ReadTimeout; for requests
DeadlineExceeded), which the targets report as "did not answer in time".

- httpx: DeadlineTransport (the atproto SDK, `bridge login`, doctor), or Deadline.trace as an httpcore trace hook
  for code that sends by hand (bridge.linkpreview.fetch).
- requests: bridge.platforms.mastodon.deadline_session (Mastodon.py), with the same Deadline.

An upload gets longer: `seconds` plus one second for every UPLOAD_BYTES_PER_SECOND of its body (upload_budget).
Not bounded here: a DNS lookup (the resolver's own timeouts).
"""

from __future__ import annotations

import os
import socket
import threading
import time
import urllib.request
from collections.abc import Iterator

import httpx

# The slowest uplink an upload is given time for (512 kbit/s): a 2 MB Bluesky blob gets 31 s more than a post.
UPLOAD_BYTES_PER_SECOND = 64_000


def upload_budget(seconds: float, body_bytes: int) -> float:
    """The deadline of a request sending `body_bytes`: `seconds`, and more for a big upload."""
    return seconds + max(body_bytes, 0) / UPLOAD_BYTES_PER_SECOND


class Deadline:
    """Shuts the watched sockets down when the time is up (monotonic `at`), or at once when watched after it.

    A duplicate of each socket's descriptor is kept: TLS wrapping or closing the original changes nothing, and
    its number cannot be reused for another connection under us. One timer thread, started with the first
    socket, until close()."""

    def __init__(self, at: float) -> None:
        self.at = at
        self.expired = False
        self._lock = threading.Lock()
        self._watched: list[tuple[socket.socket, socket.socket]] = []  # (the client's socket, our duplicate)
        self._timer: threading.Timer | None = None
        self._done = False

    @classmethod
    def after(cls, seconds: float) -> "Deadline":
        return cls(time.monotonic() + seconds)

    def left(self) -> float:
        return max(self.at - time.monotonic(), 0.0)

    def watch(self, sock: socket.socket | None) -> None:
        with self._lock:
            if self._done or sock is None or any(known is sock for known, _ in self._watched):
                return
            try:
                duplicate = socket.socket(fileno=os.dup(sock.fileno()))
            except OSError:  # closed already: nothing to end
                return
            self._watched.append((sock, duplicate))
            if self.expired:
                _shut(duplicate)
            elif self._timer is None:
                self._timer = threading.Timer(self.left(), self._expire)
                self._timer.daemon = True
                self._timer.start()

    def trace(self, event: str, info: dict) -> None:
        """httpcore's trace hook: watch the socket of every connection the request makes."""
        if event == "connection.connect_tcp.complete":
            self.watch(info["return_value"].get_extra_info("socket"))

    def _expire(self) -> None:
        with self._lock:
            if self._done:
                return
            self.expired = True
            for _, duplicate in self._watched:
                _shut(duplicate)

    def close(self) -> None:
        with self._lock:
            self._done = True
            if self._timer is not None:
                self._timer.cancel()
            for _, duplicate in self._watched:
                duplicate.close()
            self._watched.clear()


def _shut(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:  # already closed by the other end
        pass


def too_slow(seconds: float) -> str:
    return f"no complete answer within {seconds:.0f} s (connecting, headers and body)"


# --- httpx -------------------------------------------------------------------------------------------------


class DeadlineTransport(httpx.BaseTransport):
    """An httpx transport giving every request (every redirect hop) one deadline: `seconds`, longer for an
    upload. Each request gets a connection of its own (Connection: close): httpcore shows a connection's socket
    only when it connects, and bridge sends a handful of requests a post, not thousands.

    Without a `transport` of its own it goes through the proxy the environment names (HTTPS_PROXY, HTTP_PROXY,
    ALL_PROXY, NO_PROXY), as httpx does for a client without a transport -- and does not for one given a transport.
    The environment is read by urllib.request, as requests reads it."""

    def __init__(self, seconds: float, transport: httpx.BaseTransport | None = None) -> None:
        self.seconds = seconds
        self._transport = transport
        self._lock = threading.Lock()
        self._made: dict[str | None, httpx.BaseTransport] = {}  # proxy URL (None: direct) -> transport

    def _transport_for(self, url: httpx.URL) -> httpx.BaseTransport:
        if self._transport is not None:
            return self._transport
        proxies = urllib.request.getproxies()
        proxy = proxies.get(url.scheme) or proxies.get("all")
        if proxy and urllib.request.proxy_bypass(url.host):
            proxy = None
        with self._lock:
            if proxy not in self._made:
                self._made[proxy] = httpx.HTTPTransport(proxy=proxy)
            return self._made[proxy]

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        budget = upload_budget(self.seconds, int(request.headers.get("content-length") or 0))
        deadline = Deadline.after(budget)
        request.headers["Connection"] = "close"
        extensions = dict(request.extensions)
        earlier = extensions.get("trace")
        extensions["trace"] = deadline.trace if earlier is None else _both(deadline.trace, earlier)
        timeouts = extensions.get("timeout") or dict.fromkeys(("connect", "read", "write", "pool"))
        extensions["timeout"] = {name: budget if value is None else min(value, budget)
                                 for name, value in timeouts.items()}
        request.extensions = extensions
        try:
            response = self._transport_for(request.url).handle_request(request)
        except httpx.TransportError as exc:
            deadline.close()
            if deadline.expired:
                raise httpx.ReadTimeout(too_slow(budget), request=request) from exc
            raise
        except BaseException:
            deadline.close()
            raise
        response.stream = _BoundedStream(response.stream, deadline, budget, request)
        return response

    def close(self) -> None:
        for transport in [self._transport, *self._made.values()]:
            if transport is not None:
                transport.close()


def _both(first, second):
    def trace(event: str, info: dict) -> None:
        first(event, info)
        second(event, info)
    return trace


class _BoundedStream(httpx.SyncByteStream):
    """The response body, read under the request's deadline, which ends when the body is closed."""

    def __init__(self, stream, deadline: Deadline, budget: float, request: httpx.Request) -> None:
        self._stream = stream
        self._deadline = deadline
        self._budget = budget
        self._request = request

    def __iter__(self) -> Iterator[bytes]:
        try:
            yield from self._stream
        except httpx.TransportError as exc:
            if self._deadline.expired:
                raise httpx.ReadTimeout(too_slow(self._budget), request=self._request) from exc
            raise

    def close(self) -> None:
        try:
            self._stream.close()
        finally:
            self._deadline.close()
