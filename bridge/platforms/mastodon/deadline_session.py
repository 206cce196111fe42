"""A requests.Session (for Mastodon.py) whose every request has one hard deadline: bridge.deadline's Deadline,
watching the sockets of urllib3's connections -- new ones as they connect, kept-alive ones as a request starts
on them -- through the thread sending the request. requests is imported only where it is used: by a Mastodon
target.
"""

from __future__ import annotations

import threading

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from bridge.deadline import Deadline, too_slow, upload_budget


class DeadlineExceeded(requests.exceptions.Timeout):
    """A request took longer than its deadline (connecting, headers and body together)."""


_current = threading.local()  # the deadline of the request this thread is sending, for the connections below


def _watch_current(sock) -> None:
    deadline = getattr(_current, "deadline", None)
    if deadline is not None:
        deadline.watch(sock)


class _WatchedHTTPConnection(HTTPConnection):
    def connect(self) -> None:
        super().connect()
        _watch_current(self.sock)

    def request(self, *args, **kwargs) -> None:  # a kept-alive connection: its socket is there already
        _watch_current(self.sock)
        super().request(*args, **kwargs)


class _WatchedHTTPSConnection(HTTPSConnection):
    def connect(self) -> None:
        super().connect()
        _watch_current(self.sock)

    def request(self, *args, **kwargs) -> None:
        _watch_current(self.sock)
        super().request(*args, **kwargs)


class _WatchedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _WatchedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


_WATCHED_POOLS = {"http": _WatchedHTTPPool, "https": _WatchedHTTPSPool}


class DeadlineAdapter(HTTPAdapter):
    """requests' adapter with one deadline for each request, its body read included (requests itself reads
    the body after the adapter returns, so it is read here, under the deadline, unless streamed)."""

    def __init__(self, seconds: float, **kwargs) -> None:
        self.seconds = seconds
        super().__init__(**kwargs)

    def init_poolmanager(self, *args, **kwargs) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _WATCHED_POOLS

    def proxy_manager_for(self, proxy, **proxy_kwargs):
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        if hasattr(manager, "pool_classes_by_scheme") and not proxy.lower().startswith("socks"):
            manager.pool_classes_by_scheme = _WATCHED_POOLS
        return manager

    def send(self, request, stream=False, timeout=None, **kwargs):
        body = request.body
        budget = upload_budget(self.seconds, len(body) if isinstance(body, (bytes, str)) else 0)
        deadline = Deadline.after(budget)
        _current.deadline = deadline
        try:
            response = super().send(request, stream=stream, timeout=_capped(timeout, budget), **kwargs)
            if not stream:
                response.content  # noqa: B018  (reads the body now, under the deadline)
            return response
        except requests.exceptions.RequestException as exc:
            if deadline.expired:
                raise DeadlineExceeded(f"{request.url}: {too_slow(budget)}", request=request) from None
            raise
        finally:  # a streamed body (Mastodon.py streams only its streaming API, unused here) is not bounded
            _current.deadline = None
            deadline.close()


def _capped(timeout, budget: float):
    """requests' (connect, read) timeout, neither longer than the whole deadline."""
    if timeout is None:
        return (budget, budget)
    if isinstance(timeout, tuple):
        return tuple(budget if part is None else min(part, budget) for part in timeout)
    return min(timeout, budget)


def deadline_session(seconds: float) -> requests.Session:
    """A requests.Session whose every request has one deadline: `seconds`, longer for an upload."""
    session = requests.Session()
    adapter = DeadlineAdapter(seconds)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session
