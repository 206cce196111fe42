"""A local HTTP server for tests: the shared feed corpus, plus routes a test programs. Loopback only.

    with FeedServer(corpus_dir=CORPUS_DIR) as server:          # or the `feed_server` pytest fixture
        server.corpus_url("django-simonwillison.atom")         # served with ETag + Last-Modified, 304s
        server.route("/feed.xml", body=b"<rss ...>", content_type="application/rss+xml", etag='"v1"')
        server.redirect("/old", "/feed.xml", status=301)       # 301/302/303/307/308
        server.gone("/retired")                                # 410
        server.error("/busy", 429, retry_after="120")          # or an HTTP date
        server.route("/slow", body=b"...", delay=2.0)          # silence before the status line
        server.route("/forever", trickle=0.05)                 # headers, then a byte every 0.05 s, endlessly
        server.route("/drip", drip_headers=1.0)                # the headers themselves, a byte a second
        server.route("/zipped", body=data, gzip=True)          # Content-Encoding: gzip
        server.page("/post", "<html>...</html>")               # an article page (text/html)
        server.image("/cover.png", png_bytes(1200, 630))       # an image
        server.route("/dynamic", handler=lambda request: Route(body=...))
        server.requests / server.requests_for("/feed.xml")     # RequestRecord(method, path, headers, ...)
        server.max_concurrent                                  # most requests in flight at once

Request headers in the log are a dict with lower-case names. Every route answers conditional requests when
it has an etag/last_modified. `reset()` forgets routes and the log.
"""

from __future__ import annotations

import gzip as gzip_module
import hashlib
import os
import ssl
import struct
import sys
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.utils import formatdate, parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent


def shared_dir() -> Path:
    """The shared test material: $BRIDGE_SHARED, else the repo's sibling directory ../shared."""
    return Path(os.environ.get("BRIDGE_SHARED") or REPO_ROOT.parent / "shared")


CORPUS_DIR = shared_dir() / "corpus" / "feeds"
CORPUS_MISSING = (
    f"the shared feed corpus is not at {CORPUS_DIR} (it lives in ../shared next to the repo, or set BRIDGE_SHARED); "
    "these tests use third-party feeds that are never copied into the project"
)


def corpus_available() -> bool:
    return (CORPUS_DIR / "MANIFEST.tsv").is_file()


def require_corpus() -> Path:
    if not corpus_available():
        pytest.skip(CORPUS_MISSING)
    return CORPUS_DIR


CONTENT_TYPES = {
    ".rss": "application/rss+xml",
    ".atom": "application/atom+xml",
    ".rdf": "application/rdf+xml",
    ".json": "application/feed+json",
    ".xml": "application/xml",
    ".html": "text/html; charset=utf-8",
    ".png": "image/png",
    ".jpg": "image/jpeg",
}


@dataclass
class Route:
    body: bytes = b""
    status: int = 200
    content_type: str | None = "application/xml"
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds of silence before the status line
    trickle: float | None = None  # after `body`, one more byte every `trickle` seconds, never ending
    drip_headers: float | None = None  # the status line and headers one byte every `drip_headers` seconds
    gzip: bool = False  # Content-Encoding: gzip
    deflate: bool = False  # Content-Encoding: deflate (zlib-wrapped)
    content_length: bool = True  # False: no Content-Length, the connection closes after the body
    etag: str | None = None
    last_modified: str | None = None
    handler: Callable[["RequestRecord"], "Route"] | None = None  # computes the route per request


@dataclass
class RequestRecord:
    method: str
    path: str
    headers: dict[str, str]
    client_port: int
    started: float
    ended: float | None = None


def png_bytes(width: int = 1, height: int = 1, rgb: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    """A valid solid-colour PNG, made with the standard library only."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    row = b"\x00" + bytes(rgb) * width
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(row * height, 9)) + chunk(b"IEND", b"")


def _etag_matches(header: str, etag: str) -> bool:
    wanted = etag.removeprefix("W/")
    for candidate in header.split(","):
        candidate = candidate.strip()
        if candidate == "*" or candidate.removeprefix("W/") == wanted:
            return True
    return False


def _not_modified(headers: dict[str, str], etag: str | None, last_modified: str | None) -> bool:
    if "if-none-match" in headers:
        return bool(etag) and _etag_matches(headers["if-none-match"], etag)
    if "if-modified-since" in headers and last_modified:
        try:
            return parsedate_to_datetime(last_modified) <= parsedate_to_datetime(headers["if-modified-since"])
        except (TypeError, ValueError):
            return False
    return False


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: "_Server"

    def log_message(self, format, *args):  # quiet
        pass

    def do_HEAD(self):
        self._serve(head=True)

    def do_GET(self):
        self._serve(head=False)

    def _serve(self, head: bool) -> None:
        owner = self.server.owner
        record = RequestRecord(
            method=self.command,
            path=self.path,
            headers={name.lower(): value for name, value in self.headers.items()},
            client_port=self.client_address[1],
            started=time.monotonic(),
        )
        owner._begin(record)
        try:
            self._respond(owner, record, head)
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, TimeoutError):
            self.close_connection = True
        finally:
            owner._end(record)

    def _respond(self, owner: "FeedServer", record: RequestRecord, head: bool) -> None:
        route = owner._route_for(record)
        if route.handler is not None:
            route = route.handler(record)
        if route.delay and owner._stopping.wait(route.delay):
            self.close_connection = True
            return
        if route.drip_headers is not None:
            self._drip_headers(owner, route.drip_headers)
            return
        status, body = route.status, route.body
        headers = dict(route.headers)
        if route.etag:
            headers["ETag"] = route.etag
        if route.last_modified:
            headers["Last-Modified"] = route.last_modified
        if status == 200 and _not_modified(record.headers, route.etag, route.last_modified):
            status, body = 304, b""
        if status != 304:
            if route.gzip:
                body = gzip_module.compress(body)
                headers["Content-Encoding"] = "gzip"
            elif route.deflate:
                body = zlib.compress(body)
                headers["Content-Encoding"] = "deflate"
            if route.content_type:
                headers["Content-Type"] = route.content_type
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        endless = route.trickle is not None
        if endless or not route.content_length:
            self.send_header("Connection", "close")
            self.close_connection = True
        elif status != 304:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if head or status == 304:
            return
        self.wfile.write(body)
        self.wfile.flush()
        while endless and not owner._stopping.wait(route.trickle):
            self.wfile.write(b" ")
            self.wfile.flush()


    def _drip_headers(self, owner: "FeedServer", interval: float) -> None:
        """A status line and a header block far longer than any test waits, a byte at a time."""
        self.close_connection = True
        head = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nX-Padding: " + b"a" * 4000 + b"\r\n\r\n"
        for byte in head:
            self.wfile.write(bytes([byte]))
            self.wfile.flush()
            if owner._stopping.wait(interval):
                return


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    owner: "FeedServer"

    def handle_error(self, request, client_address):
        # a client that hangs up (timeouts, size caps) is part of the tests, not an error
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            return
        super().handle_error(request, client_address)


class FeedServer:
    """Threaded HTTP server on 127.0.0.1 (ephemeral port); a context manager. See the module docstring."""

    def __init__(self, corpus_dir: Path | None = None, host: str = "127.0.0.1", port: int = 0,
                 tls: "ssl.SSLContext | None" = None) -> None:
        self.corpus_dir = corpus_dir
        self.host = host
        self.requested_port = port  # 0: an ephemeral one
        self.tls = tls  # a server-side context: HTTPS
        self.routes: dict[str, Route] = {}
        self.requests: list[RequestRecord] = []
        self.active = 0
        self.max_concurrent = 0
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._corpus_cache: dict[str, Route] = {}

    # --- lifecycle -------------------------------------------------------------------------------------

    def start(self) -> "FeedServer":
        self._server = _Server((self.host, self.requested_port), _Handler)
        self._server.owner = self
        if self.tls is not None:
            self._server.socket = self.tls.wrap_socket(self._server.socket, server_side=True)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> "FeedServer":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._server is not None, "start the server first"
        return self._server.server_address[1]

    @property
    def base_url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}:{self.port}"

    def url(self, path: str) -> str:
        return urljoin(self.base_url + "/", path.lstrip("/"))

    def corpus_url(self, name: str) -> str:
        return self.url(f"/corpus/{name}")

    # --- programming routes -------------------------------------------------------------------------------

    def route(self, path: str, body: bytes | str = b"", **options) -> Route:
        if isinstance(body, str):
            body = body.encode("utf-8")
        route = Route(body=body, **options)
        with self._lock:
            self.routes[path] = route
        return route

    def redirect(self, path: str, to: str, status: int = 301) -> Route:
        return self.route(path, status=status, content_type=None, headers={"Location": to})

    def gone(self, path: str) -> Route:
        return self.route(path, b"gone", status=410, content_type="text/plain")

    def error(self, path: str, status: int, *, retry_after: str | None = None) -> Route:
        headers = {"Retry-After": retry_after} if retry_after is not None else {}
        return self.route(path, f"error {status}", status=status, content_type="text/plain", headers=headers)

    def page(self, path: str, html: str | bytes, **options) -> Route:
        options.setdefault("content_type", "text/html; charset=utf-8")
        return self.route(path, html, **options)

    def image(self, path: str, data: bytes, content_type: str = "image/png", **options) -> Route:
        return self.route(path, data, content_type=content_type, **options)

    def reset(self) -> None:
        with self._lock:
            self.routes.clear()
            self.requests.clear()
            self.max_concurrent = 0

    # --- the log -----------------------------------------------------------------------------------------------

    def requests_for(self, path: str) -> list[RequestRecord]:
        with self._lock:
            return [r for r in self.requests if r.path == path or urlsplit(r.path).path == path]

    def clear_log(self) -> None:
        with self._lock:
            self.requests.clear()
            self.max_concurrent = 0

    def _begin(self, record: RequestRecord) -> None:
        with self._lock:
            self.requests.append(record)
            self.active += 1
            self.max_concurrent = max(self.max_concurrent, self.active)

    def _end(self, record: RequestRecord) -> None:
        with self._lock:
            self.active -= 1
            record.ended = time.monotonic()

    # --- routing ----------------------------------------------------------------------------------------------

    def _route_for(self, record: RequestRecord) -> Route:
        with self._lock:
            route = self.routes.get(record.path) or self.routes.get(urlsplit(record.path).path)
        if route is not None:
            return route
        path = urlsplit(record.path).path
        if path.startswith("/corpus/") and self.corpus_dir is not None:
            corpus_route = self._corpus_route(path.removeprefix("/corpus/"))
            if corpus_route is not None:
                return corpus_route
        return Route(body=b"not found", status=404, content_type="text/plain")

    def _corpus_route(self, name: str) -> Route | None:
        if "/" in name or name.startswith("."):
            return None
        cached = self._corpus_cache.get(name)
        if cached is not None:
            return cached
        path = self.corpus_dir / name
        if not path.is_file():
            return None
        data = path.read_bytes()
        route = Route(
            body=data,
            content_type=CONTENT_TYPES.get(path.suffix, "application/octet-stream"),
            etag='"' + hashlib.sha256(data).hexdigest()[:20] + '"',
            last_modified=formatdate(path.stat().st_mtime, usegmt=True),
        )
        self._corpus_cache[name] = route
        return route


@pytest.fixture
def feed_server() -> Iterator[FeedServer]:
    """A FeedServer serving the shared corpus under /corpus/ (when ../shared is present) plus test routes."""
    with FeedServer(corpus_dir=CORPUS_DIR if corpus_available() else None) as server:
        yield server


def servers_on_one_port(*hosts: str, corpus_dir: Path | None = None) -> list[FeedServer]:
    """Started FeedServers, one per loopback address in `hosts`, all on the same port (so that one URL's
    name can lead to either, depending on what it resolves to). Stop them when done."""
    for _attempt in range(20):
        first = FeedServer(corpus_dir, host=hosts[0]).start()
        servers = [first]
        try:
            for host in hosts[1:]:
                servers.append(FeedServer(corpus_dir, host=host, port=first.port).start())
            return servers
        except OSError:  # the port is taken on another address: try another
            for server in servers:
                server.stop()
    raise RuntimeError(f"no free port shared by {', '.join(hosts)}")
