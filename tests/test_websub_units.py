"""WebSub pieces: discovery of hub and topic, the push signature check, the fenced request to a hub."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from bridge.feeds import FetchResult, parse_feed
from bridge.websub.callback import signature_problem
from bridge.websub.discovery import hub_and_topic
from bridge.config import BridgeSettings
from bridge.pipeline import Poller
from bridge.websub.hub import HubError, ask_hub, fence
from tests.test_pipeline import posts, rss, world  # noqa: F401 -- world: a poller on a state and a feed server

FEED_URL = "https://blog.example/feed.xml"


def fetched(body: bytes, link: str | None = None, content_type: str = "application/atom+xml") -> FetchResult:
    return FetchResult(200, FEED_URL, None, body, hashlib.sha256(body).hexdigest(), None, None, content_type, None,
                       link_header=link)


def discover(body: bytes, link: str | None = None, content_type: str = "application/atom+xml"):
    result = fetched(body, link, content_type)
    return hub_and_topic(result, parse_feed(body, FEED_URL, content_type=content_type))


ATOM = b"""<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom"><title>t</title><id>urn:x</id>
<link rel="hub" href="https://pubsubhubbub.appspot.com/"/><link rel="self" href="/atom.xml"/>
<updated>2026-01-01T00:00:00Z</updated></feed>"""
RSS = b"""<?xml version="1.0"?><rss version="2.0" xmlns:atom="http://www.w3.org/2005/Atom"><channel><title>t</title>
<link>https://blog.example/</link><atom:link rel="hub" href="https://hub.example/"/></channel></rss>"""


def test_the_document_names_the_hub_and_its_self_url_in_atom_rss_and_json_feed():
    assert discover(ATOM) == ("https://pubsubhubbub.appspot.com/", "https://blog.example/atom.xml")
    # no self link: the URL bridge fetched is the topic
    assert discover(RSS, content_type="application/rss+xml") == ("https://hub.example/", FEED_URL)
    jsonfeed = json.dumps({"version": "https://jsonfeed.org/version/1.1", "title": "t", "items": [],
                           "feed_url": "https://blog.example/feed.json",
                           "hubs": [{"type": "rssCloud", "url": "https://cloud.example/"},
                                    {"type": "WebSub", "url": "https://websub.example/hub"}]}).encode()
    assert discover(jsonfeed, content_type="application/feed+json") == ("https://websub.example/hub",
                                                                         "https://blog.example/feed.json")


def test_the_link_header_comes_first_and_no_hub_means_no_websub():
    header = '<https://header-hub.example/>; rel="hub", <https://blog.example/canonical.xml>; rel="self"'
    assert discover(ATOM, header) == ("https://header-hub.example/", "https://blog.example/canonical.xml")
    plain = b'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title></channel></rss>'
    assert discover(plain, content_type="application/rss+xml") == (None, None)
    assert discover(plain, '<javascript:alert(1)>; rel="hub"', "application/rss+xml") == (None, None)


def test_a_push_must_be_signed_with_the_subscriptions_secret():
    body, secret = b"<rss/>", "s3cret-value"
    for method in ("sha1", "sha256", "sha384", "sha512"):
        good = hmac.new(secret.encode(), body, getattr(hashlib, method)).hexdigest()
        assert signature_problem(f"{method}={good}", secret, body) is None
        assert signature_problem(f"{method}={good}", secret, body + b" ") is not None  # the body was changed
    forged = hmac.new(b"another", body, hashlib.sha256).hexdigest()
    assert "does not match" in signature_problem(f"sha256={forged}", secret, body)
    assert "unsigned" in signature_problem(None, secret, body)
    assert "unknown method" in signature_problem("md5=abc", secret, body)


def test_a_hub_on_a_private_address_is_refused_unless_private_addresses_are_allowed():
    with pytest.raises(HubError, match="allow_private_addresses"):
        fence("http://127.0.0.1:9/hub", False)
    fence("http://127.0.0.1:9/hub", True)  # allowed: nothing raised
    for url in ("ftp://hub.example/", "javascript:alert(1)"):
        with pytest.raises(HubError, match="not an http"):
            fence(url, True)


def _pushed(world, config, body: str, poller: type[Poller] = Poller):
    from bridge.feeds import Fetcher

    async def run():
        fetcher = Fetcher(config.bridge)
        try:
            return await poller(config, world.state, clock=world.clock).poll_pushed(
                fetcher, config.feeds[0], body.encode(), "application/rss+xml")
        finally:
            await fetcher.aclose()

    return asyncio.run(run())


def test_a_pushed_full_feed_is_recorded_without_a_fetch_and_a_partial_one_makes_bridge_fetch(world):
    world.server.route("/feed", rss(posts(3)))
    config = world.config({"blog": "/feed"}, allow_private_addresses=True)
    world.poll(config)  # the baseline
    fetched = len(world.server.requests_for("/feed"))

    outcome = _pushed(world, config, rss(posts(1, start=3) + posts(3)))  # the whole feed, one entry new
    assert outcome.queued == 1 and world.queued() == ["guid-3"]
    assert len(world.server.requests_for("/feed")) == fetched

    # a push of only the new entry (a diff) is not the document: bridge fetches the feed, which holds it too
    world.server.route("/feed", rss(posts(1, start=4) + posts(1, start=3) + posts(3)))
    outcome = _pushed(world, config, rss(posts(1, start=4)))
    assert len(world.server.requests_for("/feed")) == fetched + 1
    assert outcome.queued == 1 and world.queued() == ["guid-3", "guid-4"]
    # the same push again (a hub retrying): nothing new
    assert _pushed(world, config, rss(posts(1, start=4) + posts(1, start=3) + posts(3))).queued == 0


class _PollerWithABrokenReader(Poller):
    """A bug met while reading a document (an injected one: real documents no longer trip any)."""

    async def read(self, result):
        raise RecursionError("maximum recursion depth exceeded while calling a Python object")


def test_a_pushed_document_that_trips_a_bug_is_recorded_on_its_feed_as_a_polled_one_would_be(world):
    world.server.route("/feed", rss(posts(3)))
    config = world.config({"blog": "/feed"}, allow_private_addresses=True)
    world.poll(config)  # the baseline

    outcome = _pushed(world, config, rss(posts(1, start=3) + posts(3)), poller=_PollerWithABrokenReader)
    assert outcome.outcome == "error" and world.queued() == []
    assert world.state.get_feed("blog").last_error == ("unexpected error reading the feed: RecursionError: maximum "
                                                       "recursion depth exceeded while calling a Python object")


class _Hub(BaseHTTPRequestHandler):
    """A hub on 127.0.0.1 that records each request: what bridge's POST carried, and to which name."""

    seen: list[tuple[str, str, str]] = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
        type(self).seen.append((self.path, self.headers["Host"], body))
        self.send_response(202)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def hub_server():
    _Hub.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hub)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def test_the_hub_is_asked_at_the_address_that_was_checked_never_at_a_second_dns_answer(hub_server):
    """DNS rebinding: a name that answers a public address to the fence and a private one to the connection.
    The hub's name is looked up once; the POST goes to that address with the hub's own name as Host."""
    lookups = []

    def resolver(host, port):
        lookups.append(host)
        return ["127.0.0.1"]

    hub = f"http://hub.invalid:{hub_server}/subscribe"  # .invalid: any second lookup by the system would fail
    ask_hub(BridgeSettings(allow_private_addresses=True), hub, {"hub.mode": "subscribe", "hub.topic": "t"},
            resolver=resolver)
    assert lookups == ["hub.invalid"]
    assert _Hub.seen == [("/subscribe", f"hub.invalid:{hub_server}", "hub.mode=subscribe&hub.topic=t")]


def test_a_hub_name_that_resolves_to_a_private_address_is_not_asked_at_all(hub_server):
    hub = f"http://hub.invalid:{hub_server}/subscribe"
    with pytest.raises(HubError, match="allow_private_addresses"):
        ask_hub(BridgeSettings(), hub, {"hub.mode": "subscribe"}, resolver=lambda host, port: ["127.0.0.1"])
    assert _Hub.seen == []
