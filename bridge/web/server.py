"""The daemon's HTTP server: a tiny router on the standard library's ThreadingHTTPServer, in threads of its own.

Why the standard library: the server answers a person looking at a page now and then and Prometheus every 15-60 s;
a thread per request is plenty, it needs no event loop of its own (the daemon's is busy fetching feeds), and it
adds no dependency. A request never touches the daemon's own database connection or its locks (the pages open a
read-only one), so a slow client or a scrape cannot hold back polling or posting.

Other features add routes: `router.add("/path", handler)`, or `prefix=True` for a family of paths (WebSub
callbacks at /websub/<id>), with the methods they take. A handler gets a Request and returns a Response.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from socket import AF_INET6
from typing import Callable
from urllib.parse import parse_qs, urlsplit

from bridge.redact import redact
from bridge.unexpected import unexpected
from bridge.web.access import Access

log = logging.getLogger("bridge.web")

# A client that sends nothing for this long is dropped: a handful of idle connections cannot hold every thread.
REQUEST_TIMEOUT_SECONDS = 15
# The largest body a route that takes one (POST) is given; bigger ones are refused with 413.
MAX_BODY_BYTES = 1_000_000
READ_METHODS = ("GET", "HEAD")
# Every answer: nothing loads from elsewhere, no script runs, no page frames it, nothing is cached or referred.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self'; base-uri 'none'; "
                               "form-action 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: Message
    peer: str
    body: bytes = b""


@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    content_type: str = "text/plain; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def text(cls, text: str, status: int = 200, **headers: str) -> "Response":
        return cls(status, text.encode("utf-8"), headers=dict(headers))


Handler = Callable[[Request], Response]


@dataclass(frozen=True)
class Route:
    handler: Handler
    methods: tuple[str, ...]
    # Answers without the token: only for callers that prove who they are themselves (a WebSub hub signs its
    # pushes with the subscription's secret).
    public: bool = False


class Router:
    def __init__(self) -> None:
        self._exact: dict[str, Route] = {}
        self._prefixes: list[tuple[str, Route]] = []

    def add(self, path: str, handler: Handler, *, methods: tuple[str, ...] = READ_METHODS, public: bool = False,
            prefix: bool = False) -> None:
        route = Route(handler, tuple(method.upper() for method in methods), public)
        if prefix:
            self._prefixes.append((path, route))
            self._prefixes.sort(key=lambda item: len(item[0]), reverse=True)  # the longest prefix wins
        else:
            self._exact[path] = route

    def find(self, path: str) -> Route | None:
        if path in self._exact:
            return self._exact[path]
        return next((route for prefix, route in self._prefixes if path.startswith(prefix)), None)


class WebServer:
    """The router served on the access rule's address until close()."""

    def __init__(self, access: Access, router: Router) -> None:
        self.access = access
        self.router = router
        server_class = _Server6 if ":" in access.host else _Server
        self._httpd = server_class((access.host, access.port), _Handler)  # OSError when the port is taken
        self._httpd.owner = self
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="bridge-web", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"

    def start(self) -> "WebServer":
        self._thread.start()
        return self

    def close(self) -> None:
        if self._thread.is_alive():  # shutdown() waits for serve_forever: forever, when it never started
            self._httpd.shutdown()
            self._thread.join(timeout=10)
        self._httpd.server_close()

    def answer(self, request: Request) -> Response:
        route = self.router.find(request.path)
        if route is None or not route.public:
            # Before the route is known to exist: a stranger learns nothing of which paths there are.
            refusal = self._refusal(request)
            if refusal is not None:
                return refusal
        if route is None:
            return Response.text("not found\n", 404)
        if request.method not in route.methods:
            return Response.text("method not allowed: this server is read-only\n", 405, Allow=", ".join(route.methods))
        try:
            return route.handler(request)
        except Exception as exc:  # a bug behind one page: that request fails, the server and the daemon go on
            log.error("answering %s %s failed: %s", request.method, request.path,
                      unexpected(log, exc, f"answering {request.path}"))
            return Response.text("internal error; the log says more\n", 500)

    def _refusal(self, request: Request) -> Response | None:
        if self.access.allows(request.peer, request.headers.get("Authorization")):
            return None
        if self.access.token is not None:
            # 401 with a Basic challenge: a browser asks for the token (as the password) and remembers it.
            return Response.text("the token is missing or wrong: send Authorization: Bearer TOKEN, or give it as "
                                 "the password when the browser asks\n", 401,
                                 **{"WWW-Authenticate": 'Basic realm="bridge", charset="UTF-8"'})
        return Response.text("only this machine (loopback) may read this server\n", 403)


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # a request in flight does not delay the daemon's exit
    owner: WebServer

    def handle_error(self, request, client_address) -> None:  # a client that went away: not worth a traceback
        log.debug("HTTP connection from %s ended with an error", client_address[0], exc_info=True)


class _Server6(_Server):
    address_family = AF_INET6


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    timeout = REQUEST_TIMEOUT_SECONDS

    def version_string(self) -> str:
        return "bridge"  # not the Python version: nothing for a scanner to match

    def log_message(self, format: str, *args) -> None:
        log.debug("%s %s", self.address_string(), redact(format % args))

    def do_GET(self) -> None:
        self._serve()

    do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_GET

    def _serve(self) -> None:
        parts = urlsplit(self.path)
        request = Request(self.command, parts.path or "/", parse_qs(parts.query), self.headers, self.client_address[0])
        route = self.server.owner.router.find(request.path)
        if route is not None and self.command in route.methods and self.command not in READ_METHODS:
            declared = self.headers.get("Content-Length") or "0"
            length = int(declared) if declared.isdigit() else -1
            if not 0 <= length <= MAX_BODY_BYTES:
                self._send(Response.text(f"the body must have a Content-Length of at most {MAX_BODY_BYTES} bytes\n", 413))
                return
            request.body = self.rfile.read(length)
        self._send(self.server.owner.answer(request))

    def _send(self, response: Response) -> None:
        self.send_response(response.status)
        headers = {**SECURITY_HEADERS, "Content-Type": response.content_type,
                   "Content-Length": str(len(response.body)), **response.headers}
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)
