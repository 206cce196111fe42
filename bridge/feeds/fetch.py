"""Fetch feeds politely: conditional GET, timeouts, a size cap, redirects we follow ourselves, bounded concurrency.

One Fetcher per poll cycle; it keeps one aiohttp.ClientSession (keep-alive) and two kinds of semaphore:
`max_concurrency` requests in total and `per_host_concurrency` per host (host:port). A redirect hop is its own
request: its semaphores are taken for that hop only, so waiting in a busy host's queue never holds a global
slot, and never counts against the feed's time budget.

Time limits: aiohttp enforces connect_timeout and read_timeout (the longest silence between bytes);
total_timeout is the budget for the whole fetch — every hop, headers and body — enforced with asyncio.timeout,
so a server that trickles a byte a second forever is cut off too.

Size: the body is read as raw bytes and decoded by bridge.decoding (gzip, deflate) with zlib's output limit, so
the cap `max_feed_bytes` applies to DECODED bytes and a compression bomb costs at most the cap in memory.

Addresses: the feed's own host, as configured, is the admin's word and may be anywhere, private networks
included; so is any host a configured feed is on. A redirect to any other host is fenced like an article page (bridge.addresses): it must lead to a
public address unless `allow_private_addresses` is true. The fence is aiohttp's only DNS lookup
(_FencedResolver), so the address checked is the address connected to; address literals are checked before
the request. Behind an HTTP(S) proxy the proxy resolves names, so only address literals can be checked there.

Errors (bridge.errors): 410 -> FeedGone; 429/503 (and any other 4xx/5xx) -> FeedHTTPError with retry_after
from Retry-After (seconds or an HTTP date); DNS/connect/TLS/protocol problems and timeouts -> FeedNetworkError
with a sentence a user can act on; an HTML page -> FeedNotAFeed naming the feeds it advertises.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import re
import socket
import ssl
import urllib.request
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from collections.abc import Callable
from urllib.parse import urljoin, urlsplit

import aiohttp
import yarl
from aiohttp.abc import AbstractResolver, ResolveResult

import bridge
from bridge.addresses import AllowPrivate, first_refused, parse, refusal_reason
from bridge.config import BridgeSettings
from bridge.decoding import ACCEPT_ENCODING, Identity, UnsupportedEncoding, decoder_for
from bridge.errors import FeedGone, FeedHTTPError, FeedNetworkError, FeedNotAFeed, FeedTooLarge

from .discover import discover_feeds, sniff

MAX_REDIRECTS = 10
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
PERMANENT_REDIRECTS = frozenset({301, 308})
ACCEPT = (
    "application/atom+xml, application/rss+xml, application/feed+json, application/rdf+xml;q=0.9, "
    "application/xml;q=0.9, text/xml;q=0.9, application/json;q=0.8, */*;q=0.5"
)
MAX_HEADER_BYTES = 65_536  # some CDNs send long Set-Cookie or Link headers; aiohttp's default is 8 KB
_MAX_AGE = re.compile(r"(?:^|[,\s])max-age\s*=\s*\"?(\d+)", re.IGNORECASE)


@dataclass
class FetchResult:
    status: int  # 200 or 304
    url: str  # final URL after redirects
    permanent_url: str | None  # the chain from the requested URL was only 301/308 hops: store this URL instead
    body: bytes | None  # None on 304
    body_hash: str | None  # sha256 hex of body
    etag: str | None
    last_modified: str | None
    content_type: str | None
    max_age: float | None  # Cache-Control max-age, seconds
    link_header: str | None = None  # the Link header: WebSub's hub and self (bridge/websub/discovery.py)


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Retry-After as seconds from now: '120' -> 120.0; an HTTP date -> seconds until it (>= 0); junk -> None."""
    if not value:
        return None
    value = value.strip()
    if re.fullmatch(r"\d+(?:\.\d+)?", value):
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    now = now or datetime.now(UTC)
    return max(0.0, (when - now).total_seconds())


def parse_max_age(cache_control: str | None) -> float | None:
    match = _MAX_AGE.search(cache_control or "")
    return float(match.group(1)) if match else None


class AddressRefused(OSError):
    """A redirect target resolved to an address outside the fence (raised inside aiohttp's DNS step)."""

    def __init__(self, host: str, address) -> None:
        super().__init__(f"{host} resolves to {address}")
        self.address = address


class _FencedResolver(AbstractResolver):
    """aiohttp's DNS step: a host that is not a configured feed's own gets its addresses only if every one
    passes the fence, so what is connected to is exactly what was checked (no second lookup to rebind)."""

    def __init__(self, trusted: set[str], allow_private: AllowPrivate, lookup: "Callable[[str, int], list[str]] | None") -> None:
        self.trusted = trusted
        self.allow_private = allow_private
        self.lookup = lookup
        self._system: AbstractResolver | None = None

    async def resolve(self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        if self.lookup is None:
            if self._system is None:
                self._system = aiohttp.ThreadedResolver()
            results = await self._system.resolve(host, port, family)
        else:
            results = [_result(host, address, port) for address in self.lookup(host, port)]
        if host.lower().rstrip(".") not in self.trusted:
            refused = first_refused([r["host"] for r in results], self.allow_private)
            if refused is not None:
                raise AddressRefused(host, refused)
        return results

    async def close(self) -> None:
        if self._system is not None:
            await self._system.close()


def _result(host: str, address: str, port: int) -> ResolveResult:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    return ResolveResult(hostname=host, host=address, port=port, family=family, proto=0,
                         flags=socket.AI_NUMERICHOST | socket.AI_NUMERICSERV)


def _raw_host(url: str) -> str:
    """The host as aiohttp asks the resolver for it (IDNA-encoded, lower case)."""
    try:
        return _raw_host_of(yarl.URL(url))
    except ValueError:
        return ""


def _raw_host_of(url: yarl.URL) -> str:
    return (url.raw_host or "").lower().rstrip(".")


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    """The certifi CA bundle, as httpx (used for everything else in bridge) trusts, so both agree on TLS."""
    import certifi

    return ssl.create_default_context(cafile=certifi.where())


def _host_key(url: str) -> str:
    try:
        parts = urlsplit(url)
    except ValueError:  # e.g. a malformed IPv6 literal
        raise FeedNetworkError(f"{url}: not a valid URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise FeedNetworkError(f"{url}: not an http(s) URL; give the feed's full address, starting with https://")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise FeedNetworkError(f"{url}: the port is not a number") from None
    return f"{parts.hostname.lower()}:{port}"


class Fetcher:
    """Fetches feed URLs for one poll cycle (or the daemon's lifetime). Use `async with Fetcher(...)` or call
    `aclose()` at the end; create and use it inside one running event loop.

    aiohttp rather than httpx here: a poll is thousands of tiny conditional GETs, and aiohttp's C parser and
    pool take about a tenth of the CPU per request (0.1 ms against 1 ms, bench/), which is what lets one
    core poll 10,000 feeds in seconds. Bodies are taken raw (auto_decompress off) so the size cap applies to
    decoded bytes (see bridge.decoding).
    """

    def __init__(self, settings: BridgeSettings, *, version: str = bridge.__version__,
                 allow_private: AllowPrivate | None = None, resolver: Callable[[str, int], list[str]] | None = None) -> None:
        """`allow_private` defaults to the settings' allow_private_addresses; `resolver` (host, port) ->
        addresses replaces the system's DNS (tests)."""
        self.settings = settings
        self.allow_private = settings.allow_private_addresses if allow_private is None else allow_private
        # Hosts of the URLs fetch() was given: the config's own (or a redirect target that passed the fence
        # and was stored as the feed's new address). Only ever added to, so a cached DNS answer or a pooled
        # connection for a host is never reused under a stricter judgement than it was made with.
        self._trusted: set[str] = set()
        self._resolver = resolver
        self.user_agent = settings.user_agent.replace("{version}", version)
        self._session: aiohttp.ClientSession | None = None
        # HTTP(S)_PROXY / NO_PROXY, read once: aiohttp's trust_env would look them (and ~/.netrc) up in a
        # worker thread on every request, which costs more than a 304 itself.
        self._proxies = urllib.request.getproxies_environment()
        self._all = asyncio.Semaphore(settings.max_concurrency)
        self._hosts: dict[str, asyncio.Semaphore] = {}

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            settings = self.settings
            self._session = aiohttp.ClientSession(
                headers={"User-Agent": self.user_agent, "Accept": ACCEPT, "Accept-Encoding": ACCEPT_ENCODING},
                connector=aiohttp.TCPConnector(
                    limit=settings.max_concurrency, limit_per_host=0, ssl=_ssl_context(), enable_cleanup_closed=True,
                    resolver=_FencedResolver(self._trusted, self.allow_private, self._resolver),
                ),
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=settings.connect_timeout, sock_read=settings.read_timeout),
                auto_decompress=False,
                cookie_jar=aiohttp.DummyCookieJar(),  # a feed poll carries no cookies from one feed to another
                max_field_size=MAX_HEADER_BYTES,
                max_line_size=MAX_HEADER_BYTES,
            )
        return self._session

    async def __aenter__(self) -> "Fetcher":
        return self

    async def __aexit__(self, *exc_info) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _host_semaphore(self, key: str) -> asyncio.Semaphore:
        semaphore = self._hosts.get(key)
        if semaphore is None:
            semaphore = self._hosts[key] = asyncio.Semaphore(self.settings.per_host_concurrency)
        return semaphore

    async def fetch(self, url: str, *, etag: str | None = None, last_modified: str | None = None) -> FetchResult:
        """GET `url` (conditionally when etag/last_modified are given). Raises a bridge.errors.FeedError."""
        headers = {}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        budget = [float(self.settings.total_timeout)]
        self._trusted.add(_raw_host(url))
        for proxy in self._proxies.values():
            self._trusted.add(_raw_host(proxy))
        current = url
        permanent = True
        for _hop in range(MAX_REDIRECTS + 1):
            outcome = await self._hop(current, headers, budget, url)
            if isinstance(outcome, FetchResult):
                if current != url and permanent:
                    outcome.permanent_url = current
                if outcome.status == 304:
                    outcome.etag = outcome.etag or etag
                    outcome.last_modified = outcome.last_modified or last_modified
                return outcome
            status, location = outcome
            permanent = permanent and status in PERMANENT_REDIRECTS
            current = location
        raise FeedNetworkError(f"{url}: more than {MAX_REDIRECTS} redirects; the site is probably in a redirect loop")

    async def _hop(self, url: str, headers: dict, budget: list[float], original: str):
        key = _host_key(url)
        loop = asyncio.get_running_loop()
        async with self._host_semaphore(key), self._all:
            started = loop.time()
            try:
                async with asyncio.timeout(max(budget[0], 0.0)):
                    return await self._request(url, headers)
            except TimeoutError:
                raise FeedNetworkError(
                    f"{original}: gave up after {self.settings.total_timeout:g}s in total (total_timeout); "
                    "the server is too slow or never finishes sending"
                ) from None
            finally:
                budget[0] -= loop.time() - started

    async def _request(self, url: str, headers: dict):
        # Parsed once, for the address check and for aiohttp (which takes a yarl.URL as it is); a URL yarl cannot
        # parse goes to aiohttp as given, which says what is wrong with it (InvalidURL, below).
        try:
            target: yarl.URL | str = yarl.URL(url)
        except ValueError:
            target = url
        raw_host = _raw_host_of(target) if isinstance(target, yarl.URL) else ""
        literal = parse(raw_host)
        if literal is not None and raw_host not in self._trusted:  # literals never reach the resolver
            refused = first_refused([str(literal)], self.allow_private)
            if refused is not None:
                raise FeedNetworkError(refusal_reason(url, refused))
        try:
            async with self._client().get(target, headers=headers, allow_redirects=False, proxy=self._proxy_for(url)) as response:
                return await self._handle(response, url)
        except aiohttp.InvalidURL as exc:
            raise FeedNetworkError(f"{url}: not a valid URL ({exc})") from None
        except (aiohttp.ClientError, OSError) as exc:
            if isinstance(exc, aiohttp.ClientConnectorError) and isinstance(exc.os_error, AddressRefused):
                raise FeedNetworkError(refusal_reason(url, exc.os_error.address)) from None
            raise FeedNetworkError(self._network_message(exc, url, urlsplit(url).hostname or url)) from None

    def _proxy_for(self, url: str) -> str | None:
        if not self._proxies:
            return None
        parts = urlsplit(url)
        proxy = self._proxies.get(parts.scheme)
        if proxy and urllib.request.proxy_bypass_environment(parts.hostname or "", self._proxies):
            return None
        return proxy

    def _network_message(self, exc: Exception, url: str, host: str) -> str:
        if isinstance(exc, aiohttp.ConnectionTimeoutError):
            return f"{url}: could not connect to {host} within {self.settings.connect_timeout:g}s (connect_timeout)"
        if isinstance(exc, aiohttp.SocketTimeoutError):
            return f"{url}: {host} sent nothing for {self.settings.read_timeout:g}s (read_timeout)"
        if isinstance(exc, aiohttp.ServerTimeoutError):
            return f"{url}: {host} timed out ({type(exc).__name__})"
        if isinstance(exc, aiohttp.ClientConnectorDNSError):
            return f"{url}: cannot find {host} (DNS lookup failed); check the address and your network"
        if isinstance(exc, aiohttp.ClientConnectorCertificateError):
            return f"{url}: {host}'s TLS certificate is not valid: {exc.certificate_error}"
        if isinstance(exc, aiohttp.ClientConnectorError):
            detail = exc.strerror or str(exc.os_error) or type(exc).__name__
            return f"{url}: cannot connect to {host}: {detail}; check the address and your network"
        if isinstance(exc, (aiohttp.ServerDisconnectedError, aiohttp.ClientPayloadError, aiohttp.ClientResponseError)):
            return f"{url}: {host} broke off or garbled the response: {exc or type(exc).__name__}"
        return f"{url}: network error talking to {host}: {type(exc).__name__}: {exc}"

    async def _handle(self, response: aiohttp.ClientResponse, url: str):
        status = response.status
        if status in REDIRECT_STATUSES or status == 304:
            # Read the (empty or tiny) body to its end: aiohttp returns a connection to the pool only then, and
            # a new TCP/TLS connection for every 304 costs the server and us far more than the 304 itself.
            await self._drain(response)
        if status in REDIRECT_STATUSES:
            location = response.headers.get("location", "").strip()
            if not location:
                raise FeedHTTPError(status, url)
            try:
                target = urljoin(url, location)
                scheme = urlsplit(target).scheme
            except ValueError:
                raise FeedNetworkError(f"{url}: redirected to an invalid URL {location!r}") from None
            if scheme not in ("http", "https"):
                raise FeedNetworkError(f"{url}: redirected to {target}, which is not an http(s) URL")
            return status, target
        headers = response.headers
        if status == 304:
            return self._result(304, url, None, headers)
        if status == 410:
            raise FeedGone(url)
        if status >= 300 or status < 200:
            raise FeedHTTPError(status, url, parse_retry_after(headers.get("retry-after")))
        body = await self._read_body(response, url)
        content_type = headers.get("content-type")
        if sniff(body, content_type) == "html":
            raise FeedNotAFeed(url, discover_feeds(body, url, content_type))
        return self._result(200, url, body, headers)

    @staticmethod
    async def _drain(response: aiohttp.ClientResponse, limit: int = 65_536) -> None:
        """Read and drop a body we do not use, up to `limit` bytes (past that, closing the connection is cheaper):
        a connection goes back to the pool only once its response has been read to the end."""
        seen = 0
        async for chunk in response.content.iter_any():
            seen += len(chunk)
            if seen > limit:
                return

    @staticmethod
    def _result(status: int, url: str, body: bytes | None, headers) -> FetchResult:
        return FetchResult(
            status=status,
            url=url,
            permanent_url=None,
            body=body,
            body_hash=hashlib.sha256(body).hexdigest() if body is not None else None,
            etag=headers.get("etag"),
            last_modified=headers.get("last-modified"),
            content_type=headers.get("content-type"),
            max_age=parse_max_age(headers.get("cache-control")),
            link_header=", ".join(headers.getall("link", [])) or None,
        )

    async def _read_body(self, response: aiohttp.ClientResponse, url: str) -> bytes:
        limit = self.settings.max_feed_bytes
        encoding = response.headers.get("content-encoding", "")
        try:
            decoder = decoder_for(encoding)
        except UnsupportedEncoding as exc:
            raise FeedNetworkError(f"{url}: the server sent the feed {exc}") from None
        length = response.headers.get("content-length", "")
        if isinstance(decoder, Identity) and length.isdigit() and int(length) > limit:
            raise FeedTooLarge(url, limit)
        body = bytearray()
        try:
            async for chunk in response.content.iter_any():
                body += decoder.feed(chunk, limit - len(body))
                if len(body) > limit:
                    raise FeedTooLarge(url, limit)
            body += decoder.flush()
        except zlib.error as exc:
            raise FeedNetworkError(f"{url}: the {encoding.strip()}-compressed body is corrupt ({exc})") from None
        if len(body) > limit:
            raise FeedTooLarge(url, limit)
        return bytes(body)
