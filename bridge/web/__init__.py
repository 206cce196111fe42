"""The daemon's HTTP side: a read-only status page, `/metrics` and `/healthz` (and, later, WebSub callbacks),
served by `bridge run` when `[bridge] http_listen` is set. See docs/status-page.md."""

from __future__ import annotations

import logging

from bridge.web.access import Access
from bridge.web.pages import DaemonView, add_daemon_routes
from bridge.web.server import Router, WebServer

log = logging.getLogger("bridge.web")


def serve_daemon(access: Access, view: DaemonView) -> WebServer | None:
    """Start the daemon's server in its own threads. A port that cannot be had is logged, not fatal: posting
    matters more than the page, and /healthz missing is what a monitor notices."""
    router = Router()
    add_daemon_routes(router, view)
    try:
        server = WebServer(access, router).start()
    except OSError as exc:
        log.error("cannot serve the status page on %s:%d: %s; bridge runs on without it -- choose a free port in "
                  "[bridge] http_listen, or stop what uses this one", access.host, access.port, exc.strerror or exc)
        return None
    log.info("status page, /metrics and /healthz on %s", server.url)
    return server
