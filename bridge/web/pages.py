"""The daemon's read-only routes: `/` (the status page), `/metrics`, `/healthz`, and the page's stylesheet and icon.

Every one reads `bridge status`'s report (bridge/status.py collect_status) from a read-only connection of its
own, opened per request: the data and its redaction are the command's, and the daemon's connection and its lock
are never touched. The page is rendered by Jinja2 with autoescaping on, so feed titles, errors and links from
servers are text, never markup; URLs become links only when they are http(s).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import resources
from typing import Callable
from urllib.parse import urlsplit

from jinja2 import Environment, PackageLoader, select_autoescape

from bridge import __version__
from bridge.config import Config
from bridge.errors import StateError
from bridge.state import open_state
from bridge.status import collect_status, reactions_line
from bridge.web.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from bridge.web.metrics import DaemonMetrics
from bridge.web.access import Access
from bridge.web.server import Response, Router, WebServer

log = logging.getLogger("bridge.web")
HTML = "text/html; charset=utf-8"
STATIC = {"status.css": "text/css; charset=utf-8", "favicon.svg": "image/svg+xml"}


@dataclass(frozen=True)
class Health:
    ok: bool
    reason: str


@dataclass
class DaemonView:
    """What the routes read of the running daemon; callables, so a reloaded config is seen at once."""

    config: Callable[[], Config]
    health: Callable[[], Health]
    metrics: DaemonMetrics
    clock: Callable[[], float] = time.time

    def status(self) -> dict:
        config = self.config()
        with open_state(config, "readonly") as state:
            return collect_status(config, state, now=self.clock())


def serve_daemon(access: Access, view: DaemonView, routes: Callable[[Router], None] | None = None) -> WebServer | None:
    """Start the daemon's server in its own threads. A port that cannot be had is logged, not fatal: posting
    matters more than the page, and /healthz missing is what a monitor notices. `routes` adds other features'
    routes (WebSub callbacks)."""
    router = Router()
    add_daemon_routes(router, view)
    if routes is not None:
        routes(router)
    try:
        server = WebServer(access, router).start()
    except OSError as exc:
        log.error("cannot serve the status page on %s:%d: %s; bridge runs on without it -- choose a free port in "
                  "[bridge] http_listen, or stop what uses this one", access.host, access.port, exc.strerror or exc)
        return None
    log.info("status page, /metrics and /healthz on %s", server.url)
    return server


def add_daemon_routes(router: Router, view: DaemonView) -> None:
    router.add("/", lambda request: status_page(view))
    router.add("/healthz", lambda request: healthz(view))
    router.add("/metrics", lambda request: Response(body=view.metrics.render(view.status()), content_type=METRICS_CONTENT_TYPE))
    for name, content_type in STATIC.items():
        router.add(f"/static/{name}", lambda request, name=name, content_type=content_type: static_file(name, content_type))


def healthz(view: DaemonView) -> Response:
    health = view.health()
    return Response.text(f"{'ok' if health.ok else 'stalled'}: {health.reason}\n", 200 if health.ok else 503)


def static_file(name: str, content_type: str) -> Response:
    body = resources.files("bridge.web").joinpath("static", name).read_bytes()
    return Response(body=body, content_type=content_type)


def status_page(view: DaemonView) -> Response:
    health = view.health()
    try:
        report = view.status()
    except StateError as exc:  # the database cannot be read: say so on the page, with the fix StateError carries
        return Response(503, _TEMPLATES.get_template("unreadable.html").render(health=health, error=str(exc),
                                                                                  version=__version__).encode(), HTML)
    now = view.clock()
    html = _TEMPLATES.get_template("status.html").render(
        report=report, health=health, problems=problems(report), version=__version__,
        generated=_iso(now), now=now)
    return Response(body=html.encode("utf-8"), content_type=HTML)


@dataclass(frozen=True)
class Problem:
    title: str
    detail: str
    fix: str | None
    anchor: str  # the id of the feed's or account's card
    rank: int = 0  # lower is worse: what stops posting comes first


def problems(report: dict) -> list[Problem]:
    """What needs the writer, worst first: accounts that cannot post (paused, unreadable), feeds that are gone or
    fail, held posts, failed posts, then warnings."""
    found: list[Problem] = []
    for account in report["accounts"]:
        anchor = f"account-{account['name']}"
        if "type" not in account:
            found.append(Problem(f"Account {account['name']}: cannot report on it", account["error"], None, anchor, 0))
            continue
        if account["paused"]:
            found.append(Problem(f"Account {account['name']} is paused; its posts wait", account["paused"], None, anchor, 0))
        if account["unknown"]:
            found.append(Problem(f"Account {account['name']}: {account['unknown']} post(s) held",
                                 "an earlier attempt may have posted and bridge cannot look", account["unknown_fix"], anchor, 2))
        for failure in account["failures"]:
            found.append(Problem(f"Account {account['name']}: a post failed", f"{failure['link'] or failure['entry']}: "
                                 f"{failure['reason']}", account["failures_fix"], anchor, 3))
    for feed in report["feeds"]:
        anchor = f"feed-{feed['name']}"
        if "polling_url" not in feed:
            found.append(Problem(f"Feed {feed['name']}: cannot report on it", feed["error"], None, anchor, 1))
        elif feed["gone"]:
            found.append(Problem(f"Feed {feed['name']} is gone", feed["error"] or "HTTP 410", feed["fix"], anchor, 1))
        elif feed["error"]:
            found.append(Problem(f"Feed {feed['name']} fails ({feed['consecutive_errors']} in a row)", feed["error"],
                                 "bridge tries again later and later; `bridge doctor` checks the feed", anchor, 1))
        if feed.get("warning"):
            found.append(Problem(f"Feed {feed['name']}: entries not posted", feed["warning"], None, anchor, 4))
    return sorted(found, key=lambda problem: problem.rank)


def safe_url(url: str | None) -> str | None:
    """The URL when it may be a link (http or https); anything else (javascript:, data:) stays text."""
    try:
        return url if url and urlsplit(url).scheme.lower() in ("http", "https") else None
    except ValueError:
        return None


def ago(iso: str | None, now: float) -> str:
    """'3 min ago', 'in 2 h', for a time `bridge status` wrote; the other texts it writes ("now") as they are."""
    try:
        moment = datetime.fromisoformat(iso).timestamp() if iso else None
    except ValueError:
        return iso or "never"
    if moment is None:
        return "never"
    seconds = moment - now
    amount = abs(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if amount >= size:
            text = f"{amount / size:.0f} {unit}"
            break
    else:
        return "just now"
    return f"in {text}" if seconds > 0 else f"{text} ago"


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


_TEMPLATES = Environment(
    loader=PackageLoader("bridge.web", "templates"),
    autoescape=select_autoescape(["html"], default=True),  # every value is escaped unless a template says otherwise
    trim_blocks=True,
    lstrip_blocks=True,
)
_TEMPLATES.filters["safe_url"] = safe_url
_TEMPLATES.filters["ago"] = ago
_TEMPLATES.globals["reactions_line"] = reactions_line  # the same words as `bridge status`
