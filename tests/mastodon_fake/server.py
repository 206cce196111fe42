"""HTTP front of the fake Mastodon server: routing, rate limits, faults, control API.

In-process::

    fake = MastodonFake(max_characters=500)
    fake.start()
    token = fake.add_account("alice")
    ...  # point a client at fake.url
    fake.stop()

As a separate process: ``python -m tests.mastodon_fake --port 0`` (see __main__.py and
process.py). The control API lives under ``/_fake/`` on the same port.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import html
import http.server
import itertools
import json
import re
import socket
import threading
import time
import traceback
import urllib.parse
import uuid
from typing import Any, Callable

from .app import (
    OOB,
    ApiError,
    MastodonState,
    OAuthError,
    Request,
    Response,
    _parse_focus,
    not_found,
)
from .util import Clock, cast_bool, http_date, parse_params

# Routes: (method, regex, name). Names double as fault-injection targets.
ROUTES: list[tuple[str, re.Pattern[str], str]] = [
    (m, re.compile(p), n)
    for m, p, n in [
        ("GET", r"/api/v1/instance", "instance_v1"),
        ("GET", r"/api/v2/instance", "instance_v2"),
        ("GET", r"/api/v1/accounts/verify_credentials", "verify_credentials"),
        ("PATCH", r"/api/v1/accounts/update_credentials", "update_credentials"),
        ("GET", r"/api/v1/accounts/(\d+)/statuses", "account_statuses"),
        ("GET", r"/api/v1/accounts/(\d+)", "account"),
        ("POST", r"/api/v1/statuses", "status_create"),
        ("GET", r"/api/v1/statuses/(\d+)", "status_get"),
        ("PUT", r"/api/v1/statuses/(\d+)", "status_edit"),
        ("DELETE", r"/api/v1/statuses/(\d+)", "status_delete"),
        ("GET", r"/api/v1/statuses/(\d+)/source", "status_source"),
        ("GET", r"/api/v1/statuses/(\d+)/history", "status_history"),
        ("GET", r"/api/v1/statuses/(\d+)/context", "status_context"),
        ("POST", r"/api/v1/statuses/(\d+)/favourite", "status_favourite"),
        ("POST", r"/api/v1/statuses/(\d+)/unfavourite", "status_unfavourite"),
        ("POST", r"/api/v1/statuses/(\d+)/reblog", "status_reblog"),
        ("POST", r"/api/v1/statuses/(\d+)/unreblog", "status_unreblog"),
        ("POST", r"/api/v2/media", "media_create"),
        ("POST", r"/api/v1/media", "media_create_v1"),
        ("GET", r"/api/v1/media/(\d+)", "media_get"),
        ("PUT", r"/api/v1/media/(\d+)", "media_update"),
        ("POST", r"/api/v1/apps", "apps"),
        ("GET", r"/oauth/authorize", "oauth_authorize"),
        ("GET", r"/oauth/authorize/native", "oauth_authorize_native"),
        ("POST", r"/oauth/token", "oauth_token"),
        ("POST", r"/oauth/revoke", "oauth_revoke"),
        ("GET", r"/\.well-known/oauth-authorization-server", "oauth_metadata"),
        ("GET", r"/system/(.+)", "file"),
    ]
]

# Fault-injection / inspection groups.
FAMILIES: dict[str, set[str]] = {
    "instance": {"instance_v1", "instance_v2"},
    "accounts": {"verify_credentials", "update_credentials", "account_statuses", "account"},
    "statuses": {"status_create", "status_get", "status_edit", "status_delete", "status_source", "status_history",
                 "status_context", "status_favourite", "status_unfavourite", "status_reblog", "status_unreblog"},
    "media": {"media_create", "media_create_v1", "media_get", "media_update"},
    "oauth": {"apps", "oauth_authorize", "oauth_authorize_native", "oauth_token", "oauth_revoke", "oauth_metadata"},
}

FAULT_KINDS = ("5xx", "slow", "drop", "429", "lost")


@dataclasses.dataclass
class Fault:
    id: int
    target: str
    kind: str  # status | slow | drop | 429 | lost
    status: int | None
    seconds: float
    remaining: int | None  # None: until cleared

    def matches(self, method: str, path: str, route: str | None) -> bool:
        target = self.target.strip()
        if target in ("*", "all"):
            return True
        if route is not None and (target == route or route in FAMILIES.get(target, set())):
            return True
        m = re.fullmatch(r"(?:(GET|POST|PUT|DELETE|PATCH)\s+)?(/\S*)", target, re.I)
        if m:
            if m.group(1) and m.group(1).upper() != method:
                return False
            prefix = m.group(2).rstrip("/")
            clean = path.rstrip("/")
            return clean == prefix or clean.startswith(prefix + "/")
        return False

    def to_json(self) -> dict:
        return dataclasses.asdict(self)


def _normalize_fault(fault: int | str, seconds: float | None) -> tuple[str, int | None, float]:
    text = str(fault).strip().lower()
    if text in ("5xx", "500"):
        return "status", 500, 0.0
    if re.fullmatch(r"5\d\d", text):
        return "status", int(text), 0.0
    if text == "429":
        return "429", 429, 0.0
    if text in ("slow", "timeout"):
        return "slow", None, float(seconds if seconds is not None else 30.0)
    if text in ("drop", "lost"):
        return text, None, 0.0
    raise ValueError(f"unknown fault {fault!r}; use a 5xx code, 'slow', 'drop', 429 or 'lost'")


class _Dropped(Exception):
    """Close the connection without answering."""


class MastodonFake:
    """A fake Mastodon server on 127.0.0.1 (ephemeral port by default).

    Parameters mirror the instance configuration bridge reads, plus test controls:
    ``clock`` (a ``Clock`` or a time function), ``idempotency_ttl`` (seconds),
    ``media_processing_polls`` / ``media_processing_seconds`` (when video/audio uploads finish
    processing: the first N polls of GET /api/v1/media/:id answer 206 - or until T seconds
    passed), ``hosts`` ({"blog.example.com": "127.0.0.1"} or "...:port") for link-card
    fetches, ``rate_limits`` ({family: (limit, period_seconds)}), ``card_fetch``.
    ``profile`` ("mastodon", "takahe", "gotosocial", "akkoma"; see profiles.py) makes it answer like
    that server where servers differ; ``characters_reserved_per_url``, ``version`` and
    ``idempotency_ttl`` default to the profile's.
    """

    def __init__(
        self,
        max_characters: int = 500,
        characters_reserved_per_url: int | None = None,
        *,
        profile: str = "mastodon",
        max_media_attachments: int = 4,
        description_limit: int | None = 10000,
        version: str | None = None,
        title: str = "Mastodon",
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Clock | Callable[[], float] | None = None,
        idempotency_ttl: float | None = None,
        media_processing_polls: int | None = 1,
        media_processing_seconds: float | None = None,
        hosts: dict[str, str] | None = None,
        card_fetch: bool = True,
        rate_limits: dict[str, tuple[int, int]] | None = None,
        unicode_query_urls: bool = True,
        oauth_auto_approve: str | None = None,
        cw_implies_sensitive: bool | None = None,
    ):
        if host not in ("127.0.0.1", "::1", "localhost"):
            raise ValueError("the fake only listens on loopback")
        if clock is None or callable(clock) and not isinstance(clock, Clock):
            clock = Clock(clock) if clock is not None else Clock()
        self.clock: Clock = clock
        self._host = host
        self._port = port
        self.state = MastodonState(
            max_characters=max_characters,
            characters_reserved_per_url=characters_reserved_per_url,
            max_media_attachments=max_media_attachments,
            description_limit=description_limit,
            version=version,
            title=title,
            clock=self.clock,
            idempotency_ttl=idempotency_ttl,
            media_processing_polls=media_processing_polls,
            media_processing_seconds=media_processing_seconds,
            card_hosts=hosts,
            card_fetch=card_fetch,
            rate_limits=rate_limits,
            unicode_query_urls=unicode_query_urls,
            cw_implies_sensitive=cw_implies_sensitive,
            profile=profile,
        )
        self.state.oauth_auto_approve = oauth_auto_approve
        self.request_log: list[dict[str, Any]] = []
        self._faults: list[Fault] = []
        self._fault_ids = itertools.count(1)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._log_lock = threading.Lock()
        # stop() can come from two threads at once (POST /_fake/shutdown and the process's own exit): one wins
        self._lifecycle_lock = threading.Lock()

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> "MastodonFake":
        if self._server is not None:
            return self
        self._server = _Server((self._host, self._port), _Handler, self)
        port = self._server.server_address[1]
        host = f"[{self._host}]" if ":" in self._host else self._host
        self.state.base_url = f"http://{host}:{port}"
        self._stopping.clear()
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02},
                                        name=f"mastodon-fake:{port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        with self._lifecycle_lock:
            server, thread = self._server, self._thread
            if server is None:
                return
            self._stopping.set()
            server.shutdown()
            server.close_all()
            server.server_close()
            self.state.stop_workers()
            if thread is not None:
                thread.join(5)
            self._server = None
            self._thread = None

    def __enter__(self) -> "MastodonFake":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def profile(self) -> str:
        return self.state.profile.name

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("MastodonFake is not started")
        return self.state.base_url

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    # ------------------------------------------------------------------ accounts & tokens
    def add_account(self, username: str, scopes: list[str] | str | None = None, **kwargs: Any) -> str:
        """Create (or reuse) an account and return a new access token for it.

        ``scopes`` defaults to "read write follow push profile"; pass e.g.
        ["write:statuses", "write:media"] for a narrow token. kwargs: display_name, language, token.
        """
        return self.state.add_account(username, scopes, **kwargs)

    def add_token(self, username: str, scopes: list[str] | str | None = None) -> str:
        return self.state.add_account(username, scopes)

    def revoke(self, token: str) -> None:
        self.state.revoke(token)

    def account_id(self, username: str) -> str:
        return self.state.account_of(username).id

    # ------------------------------------------------------------------ inspection
    def statuses(self, account: str | None = None, include_deleted: bool = False) -> list[dict]:
        """Statuses that exist (oldest first) as the owner sees them, plus a "_text" raw copy.

        ``account`` is a username or account id; None means all accounts.
        """
        st = self.state
        with st.lock:
            acct = st.account_of(account) if account is not None else None
            out = []
            for status in sorted(st.statuses.values(), key=lambda s: int(s.id)):
                if acct is not None and status.account_id != acct.id:
                    continue
                if status.deleted and not include_deleted:
                    continue
                data = st.status_json(status, st.accounts[status.account_id])
                data["text"] = status.text
                data["_deleted"] = status.deleted
                out.append(data)
            return out

    def media(self, media_id: str) -> dict:
        with self.state.lock:
            media = self.state.media[media_id]
            data = self.state.media_json(media)
            data["_processed"] = media.processed
            data["_status_id"] = media.status_id
            return data

    def clear_log(self) -> None:
        with self._log_lock:
            self.request_log.clear()

    @property
    def errors(self) -> list[dict]:
        """Log entries where the fake itself raised (answered 500): should stay empty."""
        with self._log_lock:
            return [e for e in self.request_log if "exception" in e]

    def requests(self, route: str | None = None, method: str | None = None) -> list[dict]:
        with self._log_lock:
            return [
                e for e in self.request_log
                if (route is None or e["route"] == route or e["route"] in FAMILIES.get(route, set()))
                and (method is None or e["method"] == method.upper())
            ]

    # ------------------------------------------------------------------ configuration
    def set_limits(self, **values: Any) -> None:
        """Change instance limits and/or rate limits at runtime.

        Instance settings: max_characters, characters_reserved_per_url, max_media_attachments,
        description_limit (None: omitted from /api/v2/instance, 1500 enforced), version, title,
        idempotency_ttl, media_processing_polls, media_processing_seconds, unicode_query_urls,
        cw_implies_sensitive.
        Rate limits: per_token, per_user, unauthenticated, media, deletes, apps, statuses as
        (limit, period_seconds) tuples.
        """
        rate = {k: v for k, v in values.items() if k in self.state.rate.limits}
        other = {k: v for k, v in values.items() if k not in rate}
        if rate:
            self.state.rate.set(**rate)
        if other:
            self.state.set_config(**other)

    def reset_rate_limits(self) -> None:
        self.state.rate.reset()

    def map_host(self, hostname: str, target: str = "127.0.0.1") -> None:
        """Let link-card fetches for ``hostname`` go to a loopback address ("ip" or "ip:port")."""
        self.state.card_hosts[hostname.lower()] = target

    def advance(self, seconds: float) -> None:
        """Move the fake's clock forward (rate-limit windows, Idempotency-Key expiry, ...)."""
        self.clock.advance(seconds)

    def complete_media(self, media_id: str | None = None) -> None:
        self.state.complete_media(media_id)

    def wait_for_cards(self, timeout: float = 10.0) -> bool:
        return self.state.wait_for_cards(timeout)

    # ------------------------------------------------------------------ faults
    def inject(self, path_or_family: str, fault: int | str, times: int | None = 1, *, seconds: float | None = None) -> int:
        """Make the next ``times`` matching requests fail (times=None: until cleared).

        ``path_or_family``: a route name ("status_create", "media_get", ...), a family
        ("statuses", "media", "instance", "accounts", "oauth"), "*" for everything, or a path
        ("/api/v1/statuses", optionally "POST /api/v1/statuses"; a path matches itself and
        everything below it).
        ``fault``: a 5xx status code (or "5xx" = 500), 429, "slow" (wait ``seconds``, default
        30, then answer normally), "drop" (close the connection without doing anything) or
        "lost" (do the work - e.g. create the status - then close without answering).
        """
        kind, status, delay = _normalize_fault(fault, seconds)
        with self._log_lock:
            item = Fault(next(self._fault_ids), path_or_family, kind, status, delay, times)
            self._faults.append(item)
            return item.id

    def clear_faults(self) -> None:
        with self._log_lock:
            self._faults.clear()

    @property
    def faults(self) -> list[dict]:
        with self._log_lock:
            return [f.to_json() for f in self._faults]

    def _take_fault(self, method: str, path: str, route: str | None) -> Fault | None:
        with self._log_lock:
            for fault in self._faults:
                if fault.matches(method, path, route):
                    if fault.remaining is not None:
                        fault.remaining -= 1
                        if fault.remaining <= 0:
                            self._faults.remove(fault)
                    return fault
        return None

    # ------------------------------------------------------------------ OAuth helpers
    def set_oauth_user(self, username: str | None) -> None:
        """GET /oauth/authorize will auto-approve as this user (None: show a login page)."""
        self.state.oauth_auto_approve = username

    def authorize(self, client_id: str, username: str, scopes: list[str] | str | None = None, redirect_uri: str | None = None) -> str:
        """The user approves ``client_id``: returns the authorization code."""
        return self.state.authorize(client_id, username, scopes, redirect_uri)

    @property
    def oauth_codes(self) -> list[dict]:
        with self.state.lock:
            return [
                {"code": g.code, "client_id": g.app_id, "username": self.state.accounts[g.account_id].username,
                 "scopes": g.scopes, "redirect_uri": g.redirect_uri, "used": g.used}
                for g in self.state.grants.values()
            ]

    # ------------------------------------------------------------------ request handling
    def _log(self, entry: dict) -> None:
        with self._log_lock:
            self.request_log.append(entry)
            if len(self.request_log) > 20000:
                del self.request_log[:5000]

    def handle(self, req: Request) -> tuple[Response | None, dict]:
        """Process one API request. Returns (response or None for a dropped connection, log entry)."""
        st = self.state
        entry: dict[str, Any] = {
            "time": self.clock.now(),
            "method": req.method,
            "path": req.path,
            "query": req.query,
            "route": req.route,
            "headers": {k: v for k, v in req.headers.items() if k in ("idempotency-key", "content-type", "user-agent")},
            "authorization": "Bearer" if req.headers.get("authorization", "").lower().startswith("bearer ") else None,
            "status": None,
            "fault": None,
            "outcome": "answered",
        }
        fault = self._take_fault(req.method, req.path, req.route)
        lost = False
        if fault is not None:
            entry["fault"] = fault.kind if fault.kind != "status" else str(fault.status)
            if fault.kind == "drop":
                entry["outcome"] = "dropped"
                return None, entry
            if fault.kind == "slow":
                self._stopping.wait(fault.seconds)
            elif fault.kind == "status":
                entry["status"] = fault.status or 500
                return _server_error(fault.status or 500), entry
            elif fault.kind == "429":
                hit = st.rate.peek("per_token", "fault", self.clock.now())
                entry["status"] = 429
                return Response(429, {"error": "Too many requests"}, headers=hit.headers(remaining=0)), entry
            elif fault.kind == "lost":
                lost = True
        with st.lock:
            try:
                if req.params is None:
                    req.params = parse_params(req.query, req.body, req.headers.get("content-type", ""))
            except (ValueError, json.JSONDecodeError) as exc:
                return Response(400, {"error": f"Error occurred while parsing request parameters: {exc}"}), entry
            entry["params"] = req.params.to_loggable()
            self._resolve_token(req)
            refused = st.profile.refused_token
            if refused is not None and req.token_state not in ("valid", "missing"):
                entry["status"] = refused[0]
                return Response(refused[0], refused[1].encode(), content_type="text/html; charset=utf-8"), entry
            if req.token is not None:
                entry["token"] = req.token.token
                account = st.accounts.get(req.token.account_id or "")
                entry["account"] = account.username if account else None
            throttle_headers: dict[str, str] = {}
            is_api = req.path.startswith("/api/")
            if is_api:
                limited, throttle_headers = self._throttle(req)
                if limited is not None:
                    entry["status"] = 429
                    return (None if lost else limited), entry
            try:
                response = self._dispatch(req)
            except OAuthError as exc:
                response = Response(exc.status, exc.body, cache_control="no-store")
            except ApiError as exc:
                response = Response(exc.status, {"error": exc.message}, headers=dict(exc.headers))
                if exc.status == 404 and st.profile.entities == "takahe":  # Django's own page for Http404
                    response = Response(404, b"<h1>Not Found</h1>", content_type="text/html; charset=utf-8")
            except Exception:  # a bug in the fake: answer like Rails would, keep the trace in the log
                entry["exception"] = traceback.format_exc()
                response = _server_error(500)
            if is_api:
                for key, value in throttle_headers.items():
                    response.headers.setdefault(key, value)
                if req.route in ("status_create", "status_edit") and st.viewer(req) is not None:
                    limiter = st.statuses_limit_headers(st.viewer(req))
                    if "x-ratelimit-remaining" not in response.headers or int(limiter["x-ratelimit-remaining"]) <= int(response.headers["x-ratelimit-remaining"]):
                        response.headers.update(limiter)
            entry["status"] = response.status
        if lost:
            entry["outcome"] = "lost"
            return None, entry
        return response, entry

    def _resolve_token(self, req: Request) -> None:
        st = self.state
        auth = req.headers.get("authorization", "")
        value = None
        if auth.lower().startswith("bearer "):
            value = auth[7:].strip()
        elif req.params is not None and req.params.get("access_token"):
            value = str(req.params.get("access_token"))
        if value is None:
            req.token_state = "missing"
            return
        token = st.tokens.get(value)
        if token is None:
            req.token_state = "invalid"
        elif token.revoked:
            req.token_state = "revoked"
        else:
            req.token = token
            req.token_state = "valid"

    def _throttle(self, req: Request) -> tuple[Response | None, dict[str, str]]:
        st = self.state
        now = self.clock.now()
        checks: list[tuple[str, str]] = []
        token = req.token if req.token_state == "valid" else None
        if token is not None:
            if token.account_id:
                checks.append(("per_user", token.account_id))
            checks.append(("per_token", token.token))
        else:
            checks.append(("unauthenticated", req.client_ip))
        account_id = token.account_id if token is not None else None
        if req.method == "POST" and re.fullmatch(r"/api/v\d+/media/?", req.path) and account_id:
            checks.append(("media", account_id))
        if req.method == "POST" and req.path.rstrip("/") == "/api/v1/apps":
            checks.append(("apps", req.client_ip))
        # config/initializers/rack_attack.rb throttle_api_delete: deleting a status and undoing a boost
        if account_id and ((req.method == "DELETE" and re.fullmatch(r"/api/v1/statuses/\d+/?", req.path))
                           or (req.method == "POST" and re.fullmatch(r"/api/v1/statuses/\d+/unreblog/?", req.path))):
            checks.append(("deletes", account_id))
        hits = []
        for family, key in checks:
            hit = st.rate.increment(family, key, now)
            if hit.exceeded:
                return Response(429, {"error": "Too many requests"}, headers=hit.headers(remaining=0)), {}
            hits.append(hit)
        tightest = min(hits, key=lambda h: h.limit - h.count)
        return None, tightest.headers()

    def _dispatch(self, req: Request) -> Response:
        st = self.state
        name = req.route
        args = req.path_args
        p = req.params
        assert p is not None
        if name is not None and st.profile.trailing_slash == "redirect" and req.path != (req.path.rstrip("/") or "/"):
            # gin's RedirectTrailingSlash: 301 for GET, 307 for the other methods
            location = req.path.rstrip("/") + (f"?{req.query}" if req.query else "")
            return Response(301 if req.method == "GET" else 307, b"", content_type="text/html", headers={"location": location})
        if name == "instance_v2" and not st.profile.has_instance_v2:
            name = None
        if name is None:
            if req.path.startswith("/api/") and st.profile.has_instance_v2:
                return Response(404, b"", content_type="text/html")
            if req.path.startswith("/api/"):  # Pleroma's RedirectController.api_not_implemented
                return Response(404, {"error": "Not implemented"})
            return Response(404, b"<!DOCTYPE html><html><body><h1>The page you are looking for isn't here.</h1></body></html>",
                            content_type="text/html; charset=utf-8")
        if name == "instance_v2":
            return Response(200, st.instance_v2_json(), cache_control="max-age=300, public, stale-while-revalidate=30, stale-if-error=86400")
        if name == "instance_v1":
            return Response(200, st.instance_v1_json(), headers={"deprecation": "@1668384000"},
                            cache_control="max-age=300, public, stale-while-revalidate=30, stale-if-error=86400")
        if name == "verify_credentials":
            account = st.require_user(req, *st.profile.verify_credentials_scopes)
            return Response(200, st.account_json(account, credentials=True))
        if name == "update_credentials":
            account = st.require_user(req, "write", "write:accounts")
            with st.lock:
                st.update_credentials(account, p)
            return Response(200, st.account_json(account, credentials=True))
        if name == "account":
            st.authorize_if_got_token(req, "read", "read:accounts")
            account = st.accounts.get(args[0])
            if account is None:
                raise not_found()
            return Response(200, st.account_json(account))
        if name == "account_statuses":
            if st.profile.account_statuses_anonymous:
                st.authorize_if_got_token(req, *st.profile.account_statuses_scopes)
            else:
                st.require_user(req, *st.profile.account_statuses_scopes)
            account = st.accounts.get(args[0])
            if account is None:
                raise not_found()
            items, headers = st.account_statuses(account, st.viewer(req), p)
            return Response(200, [st.status_json(s, st.viewer(req)) for s in items], headers=headers)
        if name == "status_create":
            account = st.require_user(req, "write", "write:statuses")
            status = st.create_status(account, req.token, p, req.headers.get("idempotency-key") or None)
            return Response(200, st.status_json(status, account))
        if name in ("status_get", "status_source", "status_history"):
            st.authorize_if_got_token(req, "read", "read:statuses")
            viewer = st.viewer(req)
            status = st.get_status(args[0], viewer)
            if name == "status_get":
                return Response(200, st.status_json(status, viewer))
            if name == "status_source":
                return Response(200, {"id": status.id, "text": status.text, "spoiler_text": status.spoiler_text})
            account_json = st.account_json(st.accounts[status.account_id])
            history = status.history or [st._snapshot(status)]
            return Response(200, [
                {"content": h["content"], "spoiler_text": h["spoiler_text"], "sensitive": h["sensitive"],
                 "created_at": h["created_at"], "account": account_json,
                 "media_attachments": [st.media_json(st.media[m]) for m in h["media_ids"] if m in st.media],
                 "emojis": []}
                for h in history
            ])
        if name == "status_context":
            st.authorize_if_got_token(req, "read", "read:statuses")
            viewer = st.viewer(req)
            ancestors, descendants = st.context(args[0], viewer)
            return Response(200, {"ancestors": [st.status_json(s, viewer) for s in ancestors],
                                  "descendants": [st.status_json(s, viewer) for s in descendants]})
        if name in ("status_favourite", "status_unfavourite"):
            account = st.require_user(req, "write", "write:favourites")
            status = st.favourite(account, args[0], on=(name == "status_favourite"))
            return Response(200, st.status_json(status, account))
        if name == "status_reblog":
            account = st.require_user(req, "write", "write:statuses")
            return Response(200, st.reblog_json(st.reblog(account, args[0], p.get("visibility")), account))
        if name == "status_unreblog":
            account = st.require_user(req, "write", "write:statuses")
            return Response(200, st.status_json(st.unreblog(account, args[0]), account))
        if name == "status_edit":
            account = st.require_user(req, "write", "write:statuses")
            status = st.update_status(account, args[0], p)
            return Response(200, st.status_json(status, account))
        if name == "status_delete":
            account = st.require_user(req, "write", "write:statuses")
            boosted = st.boosted_by_reblog_id(account, args[0])
            if boosted is not None:  # deleting one's boost undoes it
                answer = st.reblog_json(boosted, account, source=True)
                st.unreblog(account, boosted.id)
                return Response(200, answer)
            status = st.delete_status(account, args[0], bool(cast_bool(p.get("delete_media"))))
            return Response(200, st.status_json(status, account, source=True))
        if name in ("media_create", "media_create_v1"):
            account = st.require_user(req, "write", "write:media")
            media = st.create_media(account, p, synchronous=(name == "media_create_v1"))
            return Response(200 if media.processed else 202, st.media_json(media))
        if name == "media_get":
            account = st.require_user(req, *st.profile.media_get_scopes)
            media = st.own_unattached_media(account, args[0])
            st._advance_processing(media, poll=True)
            return Response(200 if media.processed else 206, st.media_json(media))
        if name == "media_update":
            account = st.require_user(req, "write", "write:media")
            media = st.own_unattached_media(account, args[0])
            st._advance_processing(media, poll=False)
            if "description" in p:
                description = p.get("description")
                limit = st.description_limit()
                if description is not None and len(str(description)) > limit:
                    raise ApiError(422, f"Validation failed: Description is too long (maximum is {limit} characters)")
                media.description = str(description) if description not in (None, "") else None
            if p.get("focus"):
                media.focus = _parse_focus(p.get("focus"))
            return Response(200 if media.processed else 206, st.media_json(media))
        if name == "apps":
            app = st.create_app(p)
            return Response(200, st.app_json(app))
        if name == "oauth_metadata":
            return Response(200, st.oauth_metadata_json(), cache_control="max-age=0, private, must-revalidate")
        if name == "oauth_token":
            return Response(200, st.token_request(p, _basic_auth(req)), cache_control="no-store", headers={"vary": "Accept, Origin"})
        if name == "oauth_revoke":
            return Response(200, st.revoke_request(p, _basic_auth(req)), cache_control="no-store")
        if name == "oauth_authorize":
            return self._authorize_page(p)
        if name == "oauth_authorize_native":
            code = html.escape(str(p.get("code") or ""))
            page = (f'<!DOCTYPE html><html><body><h2>Copy this authorization code and paste it into the application.</h2>'
                    f'<input class="oauth-code" readonly type="text" value="{code}"></body></html>')
            return Response(200, page.encode(), content_type="text/html; charset=utf-8")
        if name == "file":
            item = st.files.get(req.path)
            if item is None:
                return Response(404, b"", content_type="text/html")
            return Response(200, item[1], content_type=item[0], cache_control="public, max-age=315576000, immutable")
        raise not_found()

    def _authorize_page(self, p) -> Response:
        st = self.state
        client_id = str(p.get("client_id") or "")
        redirect_uri = str(p.get("redirect_uri") or "")
        error = None
        app = st.apps.get(client_id)
        if app is None:
            error = "invalid_client"
        elif p.get("response_type") != "code":
            error = "unsupported_response_type"
        elif redirect_uri not in app.redirect_uris:
            error = "invalid_redirect_uri"
        if error is not None:
            page = f"<!DOCTYPE html><html><body><h2>An error has occurred</h2><p>{error}</p></body></html>"
            return Response(400, page.encode(), content_type="text/html; charset=utf-8")
        username = st.oauth_auto_approve
        if username is None:
            page = ("<!DOCTYPE html><html><body><h2>Log in</h2><form method='post' action='/auth/sign_in'>"
                    "<input name='user[email]'><input type='password' name='user[password]'></form></body></html>")
            return Response(200, page.encode(), content_type="text/html; charset=utf-8")
        try:
            code = st.authorize(client_id, username, p.get("scope") or "read", redirect_uri)
        except ApiError as exc:
            page = f"<!DOCTYPE html><html><body><h2>An error has occurred</h2><p>{exc.message}</p></body></html>"
            return Response(400, page.encode(), content_type="text/html; charset=utf-8")
        if redirect_uri == OOB:
            location = f"{st.base_url}/oauth/authorize/native?code={urllib.parse.quote(code)}"
        else:
            query = {"code": code}
            if p.get("state"):
                query["state"] = str(p.get("state"))
            sep = "&" if "?" in redirect_uri else "?"
            location = redirect_uri + sep + urllib.parse.urlencode(query)
        return Response(302, b"", content_type="text/html; charset=utf-8", headers={"location": location})

    # ------------------------------------------------------------------ control API (/_fake/...)
    def handle_control(self, method: str, path: str, query: str, body: bytes) -> tuple[int, Any]:
        try:
            data = json.loads(body.decode("utf-8")) if body else {}
        except json.JSONDecodeError:
            return 400, {"error": "control API bodies are JSON"}
        q = dict(urllib.parse.parse_qsl(query))
        route = path[len("/_fake"):].rstrip("/") or "/"
        try:
            if route == "/health":
                return 200, {"ok": True, "url": self.url, "profile": self.profile}
            if route == "/accounts" and method == "POST":
                token = self.add_account(data["username"], data.get("scopes"),
                                         **{k: data[k] for k in ("display_name", "language", "token") if k in data})
                return 200, {"token": token, "account_id": self.account_id(data["username"])}
            if route == "/revoke" and method == "POST":
                self.revoke(data["token"])
                return 200, {}
            if route == "/statuses" and method == "GET":
                return 200, self.statuses(q.get("account"), include_deleted=q.get("include_deleted") in ("1", "true"))
            if route.startswith("/media/") and method == "GET":
                return 200, self.media(route.split("/")[2])
            if route == "/media/complete" and method == "POST":
                self.complete_media(data.get("id"))
                return 200, {}
            if route == "/requests" and method == "GET":
                return 200, self.requests(q.get("route"), q.get("method"))
            if route == "/requests" and method == "DELETE":
                self.clear_log()
                return 200, {}
            if route == "/limits" and method == "POST":
                values = {k: (tuple(v) if isinstance(v, list) else v) for k, v in data.items()}
                self.set_limits(**values)
                return 200, {}
            if route == "/limits/reset" and method == "POST":
                self.reset_rate_limits()
                return 200, {}
            if route == "/faults" and method == "POST":
                fid = self.inject(data["target"], data["fault"], data.get("times", 1), seconds=data.get("seconds"))
                return 200, {"id": fid}
            if route == "/faults" and method == "GET":
                return 200, self.faults
            if route == "/faults" and method == "DELETE":
                self.clear_faults()
                return 200, {}
            if route == "/clock" and method == "POST":
                if "advance" in data:
                    self.advance(float(data["advance"]))
                if "set" in data:
                    self.clock.set(float(data["set"]))
                return 200, {"now": self.clock.now()}
            if route == "/clock" and method == "GET":
                return 200, {"now": self.clock.now()}
            if route == "/hosts" and method == "POST":
                self.map_host(data["hostname"], data.get("target", "127.0.0.1"))
                return 200, {}
            if route == "/cards/wait" and method == "POST":
                return 200, {"idle": self.wait_for_cards(float(data.get("timeout", 10)))}
            if route == "/oauth/user" and method == "POST":
                self.set_oauth_user(data.get("username"))
                return 200, {}
            if route == "/oauth/authorize" and method == "POST":
                code = self.authorize(data["client_id"], data["username"], data.get("scopes"), data.get("redirect_uri"))
                return 200, {"code": code}
            if route == "/oauth/codes" and method == "GET":
                return 200, self.oauth_codes
            if route == "/shutdown" and method == "POST":
                threading.Thread(target=self.stop, daemon=True).start()
                return 200, {}
        except (KeyError, ValueError, TypeError) as exc:
            return 400, {"error": f"{type(exc).__name__}: {exc}"}
        except ApiError as exc:
            return exc.status, {"error": exc.message}
        return 404, {"error": f"unknown control endpoint {method} {path}"}


def _basic_auth(req: Request) -> tuple[str, str] | None:
    auth = req.headers.get("authorization", "")
    if not auth.lower().startswith("basic "):
        return None
    try:
        user, _, password = base64.b64decode(auth[6:]).decode().partition(":")
        return urllib.parse.unquote(user), urllib.parse.unquote(password)
    except Exception:
        return None


_ERROR_PAGES = {
    500: ("text/html; charset=utf-8", "<!DOCTYPE html><html><head><title>We're sorry, but something went wrong (500)</title></head>"
          "<body><h1>We're sorry, but something went wrong.</h1></body></html>"),
    502: ("text/html", "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"),
    503: ("text/html", "<html>\r\n<head><title>503 Service Temporarily Unavailable</title></head>\r\n<body>\r\n<center><h1>503 Service Temporarily Unavailable</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"),
    504: ("text/html", "<html>\r\n<head><title>504 Gateway Time-out</title></head>\r\n<body>\r\n<center><h1>504 Gateway Time-out</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"),
}


def _server_error(code: int) -> Response:
    ctype, page = _ERROR_PAGES.get(code, ("text/html", f"<html><body><h1>{code}</h1></body></html>"))
    return Response(code, page.encode(), content_type=ctype, cache_control="no-cache")


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address, handler, fake: MastodonFake):
        self.fake = fake
        self._connections: set[socket.socket] = set()
        self._conn_lock = threading.Lock()
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, handler)

    def process_request(self, request, client_address):
        with self._conn_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request):
        with self._conn_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_all(self) -> None:
        with self._conn_lock:
            conns = list(self._connections)
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server
    timeout = 60  # idle keep-alive connections end eventually

    def setup(self) -> None:
        super().setup()
        # headers and body go out in separate writes: without this, Nagle + delayed ACK stall each answer ~40 ms
        try:
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def version_string(self) -> str:
        return "Mastodon"

    def date_time_string(self, timestamp: float | None = None) -> str:
        return http_date(self.server.fake.clock.now() if timestamp is None else timestamp)

    def _read_body(self) -> bytes:
        if self.headers.get("transfer-encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().strip().split(b";")[0] or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("content-length") or 0)
        return self.rfile.read(length) if length else b""

    def _handle(self) -> None:
        fake = self.server.fake
        started = time.monotonic()
        parts = urllib.parse.urlsplit(self.path)
        path = parts.path or "/"
        body = self._read_body()
        if path == "/_fake" or path.startswith("/_fake/"):
            status, data = fake.handle_control(self.command, path, parts.query, body)
            self._send(Response(status, data, cache_control="no-store"), {})
            return
        headers = {k.lower(): v for k, v in self.headers.items()}
        req = Request(self.command, path, parts.query, headers, body, client_ip=self.client_address[0])
        clean = path.rstrip("/") or "/"
        strict = clean != path and fake.state.profile.trailing_slash == "404"  # Takahē's paths have no slash
        for method, pattern, name in [] if strict else ROUTES:
            m = pattern.fullmatch(clean)
            if m and method == self.command:
                req.route, req.path_args = name, m.groups()
                break
        response, entry = fake.handle(req)
        entry["duration_ms"] = round((time.monotonic() - started) * 1000, 2)
        fake._log(entry)
        if response is None:
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        self._send(response, entry)

    def _send(self, response: Response, entry: dict) -> None:
        body = response.body
        if isinstance(body, (bytes, bytearray)):
            payload = bytes(body)
        elif isinstance(body, str):
            payload = body.encode("utf-8")
        else:
            payload = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        self.send_response(response.status)
        headers = {
            "cache-control": response.cache_control,
            "content-type": response.content_type,
            "vary": "Authorization, Origin",
            "x-content-type-options": "nosniff",
            "x-frame-options": "SAMEORIGIN",
            "referrer-policy": "strict-origin-when-cross-origin",
            "x-request-id": str(uuid.uuid4()),
            "x-runtime": f"{entry.get('duration_ms', 0) / 1000:.6f}",
        }
        if response.status == 200 and self.command == "GET" and response.content_type.startswith("application/json"):
            headers["etag"] = 'W/"' + hashlib.md5(payload).hexdigest() + '"'
        headers.update(response.headers)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("content-length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    def send_response(self, code: int, message: str | None = None) -> None:
        # like BaseHTTPRequestHandler.send_response, with lowercase header names
        self.log_request(code)
        self.send_response_only(code, message)
        self.send_header("date", self.date_time_string())

    def do_GET(self) -> None:
        self._handle()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = do_GET
