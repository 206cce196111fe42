"""Fetcher against a real HTTP server on loopback (tests/feedserver.py): conditional GET, redirects, errors,
timeouts, size cap, compression, autodiscovery, User-Agent, concurrency bounds, keep-alive."""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import time
import zlib
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from bridge.config import BridgeSettings
from bridge.errors import FeedGone, FeedHTTPError, FeedNetworkError, FeedNotAFeed, FeedTooLarge
from bridge.feeds import Fetcher, FetchResult
from bridge.feeds.fetch import parse_max_age, parse_retry_after
from tests.feedserver import FeedServer, feed_server, servers_on_one_port  # noqa: F401  (fixture)

RSS = b"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>T</title><link>https://example.org/</link>
<item><title>One</title><link>https://example.org/1</link><guid>https://example.org/1</guid></item>
</channel></rss>"""


def settings(**overrides) -> BridgeSettings:
    values = dict(connect_timeout=2.0, read_timeout=2.0, total_timeout=10.0)
    values.update(overrides)
    return BridgeSettings(**values)


def fetch(url: str, *, config: BridgeSettings | None = None, **kwargs) -> FetchResult:
    async def go():
        async with Fetcher(config or settings(), version="9.9.9") as fetcher:
            return await fetcher.fetch(url, **kwargs)

    return asyncio.run(go())


def fetch_many(urls: list[str], config: BridgeSettings) -> list:
    async def go():
        async with Fetcher(config) as fetcher:
            return await asyncio.gather(*(fetcher.fetch(u) for u in urls), return_exceptions=True)

    return asyncio.run(go())


# --- success, metadata, conditional GET --------------------------------------------------------------------


def test_plain_200_gives_body_hash_and_validators(feed_server):
    feed_server.route(
        "/feed.xml", RSS, content_type="application/rss+xml", etag='"abc"', last_modified="Mon, 01 Jan 2024 10:00:00 GMT",
        headers={"Cache-Control": "public, max-age=300"},
    )
    result = fetch(feed_server.url("/feed.xml"))
    assert result.status == 200
    assert result.body == RSS
    assert result.body_hash == hashlib.sha256(RSS).hexdigest()
    assert result.etag == '"abc"'
    assert result.last_modified == "Mon, 01 Jan 2024 10:00:00 GMT"
    assert result.content_type == "application/rss+xml"
    assert result.max_age == 300.0
    assert result.url == feed_server.url("/feed.xml")
    assert result.permanent_url is None


def test_304_with_etag_sends_if_none_match(feed_server):
    feed_server.route("/feed.xml", RSS, etag='"v1"')
    first = fetch(feed_server.url("/feed.xml"))
    second = fetch(feed_server.url("/feed.xml"), etag=first.etag)
    assert second.status == 304
    assert second.body is None and second.body_hash is None
    assert second.etag == '"v1"'
    sent = feed_server.requests_for("/feed.xml")[-1].headers
    assert sent["if-none-match"] == '"v1"'
    assert "if-modified-since" not in sent


def test_304_with_last_modified_sends_if_modified_since(feed_server):
    stamp = "Tue, 02 Jan 2024 08:00:00 GMT"
    feed_server.route("/feed.xml", RSS, last_modified=stamp)
    result = fetch(feed_server.url("/feed.xml"), last_modified=stamp)
    assert result.status == 304
    assert result.last_modified == stamp  # kept even though the server did not repeat it
    assert feed_server.requests_for("/feed.xml")[-1].headers["if-modified-since"] == stamp


def test_corpus_documents_are_served_conditionally(feed_server):
    if feed_server.corpus_dir is None:
        pytest.skip("the shared corpus is absent")
    first = fetch(feed_server.corpus_url("django-simonwillison.atom"))
    assert first.etag and first.last_modified
    assert fetch(feed_server.corpus_url("django-simonwillison.atom"), etag=first.etag).status == 304
    assert fetch(feed_server.corpus_url("django-simonwillison.atom"), last_modified=first.last_modified).status == 304


def test_changed_etag_gives_200(feed_server):
    feed_server.route("/feed.xml", RSS, etag='"v2"')
    result = fetch(feed_server.url("/feed.xml"), etag='"v1"')
    assert result.status == 200 and result.etag == '"v2"'


# --- redirects ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("code", [301, 308])
def test_permanent_redirect_gives_permanent_url(feed_server, code):
    feed_server.route("/new.xml", RSS)
    feed_server.redirect("/old.xml", "/new.xml", status=code)
    result = fetch(feed_server.url("/old.xml"))
    assert result.status == 200
    assert result.url == feed_server.url("/new.xml")
    assert result.permanent_url == feed_server.url("/new.xml")
    # the caller stores permanent_url; later polls go straight to it
    feed_server.clear_log()
    later = fetch(result.permanent_url)
    assert later.status == 200 and later.permanent_url is None
    assert [r.path for r in feed_server.requests] == ["/new.xml"]


def test_chain_of_301_and_308_is_permanent(feed_server):
    feed_server.route("/c.xml", RSS)
    feed_server.redirect("/a.xml", "/b.xml", status=301)
    feed_server.redirect("/b.xml", feed_server.url("/c.xml"), status=308)
    assert fetch(feed_server.url("/a.xml")).permanent_url == feed_server.url("/c.xml")


@pytest.mark.parametrize("codes", [(302,), (307,), (301, 302), (307, 301), (303,)])
def test_temporary_hop_anywhere_means_no_permanent_url(feed_server, codes):
    feed_server.route("/final.xml", RSS)
    path = "/start.xml"
    for index, code in enumerate(codes):
        target = "/final.xml" if index == len(codes) - 1 else f"/hop{index}.xml"
        feed_server.redirect(path, target, status=code)
        path = target
    result = fetch(feed_server.url("/start.xml"))
    assert result.url == feed_server.url("/final.xml")
    assert result.permanent_url is None


def test_conditional_headers_follow_redirects(feed_server):
    feed_server.route("/new.xml", RSS, etag='"e"')
    feed_server.redirect("/old.xml", "/new.xml", status=302)
    result = fetch(feed_server.url("/old.xml"), etag='"e"')
    assert result.status == 304 and result.url == feed_server.url("/new.xml")


def test_redirect_loop_is_a_network_error(feed_server):
    feed_server.redirect("/a", "/b", status=302)
    feed_server.redirect("/b", "/a", status=302)
    with pytest.raises(FeedNetworkError, match="redirects"):
        fetch(feed_server.url("/a"))


def test_redirect_to_other_scheme_is_refused(feed_server):
    feed_server.redirect("/a", "ftp://example.org/feed", status=301)
    with pytest.raises(FeedNetworkError, match="not an http"):
        fetch(feed_server.url("/a"))


@pytest.mark.parametrize("location", ["http://[::1", "http://exa mple.org:notaport/"])
def test_redirect_to_garbage_is_a_network_error(feed_server, location):
    feed_server.redirect("/a", location, status=302)
    with pytest.raises(FeedNetworkError):
        fetch(feed_server.url("/a"))


def test_redirect_without_location_is_an_http_error(feed_server):
    feed_server.route("/a", status=301, content_type=None)
    with pytest.raises(FeedHTTPError) as caught:
        fetch(feed_server.url("/a"))
    assert caught.value.status == 301


# --- HTTP errors -------------------------------------------------------------------------------------------


def test_410_is_gone(feed_server):
    feed_server.gone("/retired.xml")
    with pytest.raises(FeedGone) as caught:
        fetch(feed_server.url("/retired.xml"))
    assert caught.value.url == feed_server.url("/retired.xml")


@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_in_seconds(feed_server, status):
    feed_server.error("/busy", status, retry_after="120")
    with pytest.raises(FeedHTTPError) as caught:
        fetch(feed_server.url("/busy"))
    assert caught.value.status == status
    assert caught.value.retry_after == 120.0


@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_as_http_date(feed_server, status):
    when = datetime.now(UTC) + timedelta(seconds=90)
    feed_server.error("/busy", status, retry_after=format_datetime(when, usegmt=True))
    with pytest.raises(FeedHTTPError) as caught:
        fetch(feed_server.url("/busy"))
    assert 80 <= caught.value.retry_after <= 91


@pytest.mark.parametrize("status", [404, 403, 500, 502])
def test_other_errors(feed_server, status):
    feed_server.error("/x", status)
    with pytest.raises(FeedHTTPError) as caught:
        fetch(feed_server.url("/x"))
    assert caught.value.status == status and caught.value.retry_after is None
    assert str(status) in str(caught.value)


def test_parse_retry_after_forms():
    now = datetime(2024, 1, 1, 12, 0, tzinfo=UTC)
    assert parse_retry_after("0") == 0.0
    assert parse_retry_after(" 30 ") == 30.0
    assert parse_retry_after("Mon, 01 Jan 2024 12:02:00 GMT", now) == 120.0
    assert parse_retry_after("Mon, 01 Jan 2024 11:00:00 GMT", now) == 0.0  # in the past: retry now
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None
    assert parse_max_age("no-cache, max-age=60") == 60.0
    assert parse_max_age("private") is None


# --- network errors and time limits ----------------------------------------------------------------------


def test_connection_refused_is_a_readable_network_error():
    with FeedServer() as server:
        url = server.url("/feed.xml")
    with pytest.raises(FeedNetworkError, match="cannot connect to 127.0.0.1"):
        fetch(url)


def test_server_slower_than_read_timeout(feed_server):
    feed_server.route("/slow.xml", RSS, delay=5.0)
    started = time.monotonic()
    with pytest.raises(FeedNetworkError, match="read_timeout"):
        fetch(feed_server.url("/slow.xml"), config=settings(read_timeout=0.3))
    assert time.monotonic() - started < 3


def test_trickling_server_is_cut_off_by_total_timeout(feed_server):
    # a byte every 50 ms never trips the read timeout; only the total budget stops it
    feed_server.route("/forever.xml", b"<?xml version='1.0'?><rss>", trickle=0.05)
    started = time.monotonic()
    with pytest.raises(FeedNetworkError, match="total_timeout"):
        fetch(feed_server.url("/forever.xml"), config=settings(read_timeout=5.0, total_timeout=0.8))
    assert time.monotonic() - started < 3


def test_total_timeout_spans_redirect_hops(feed_server):
    feed_server.route("/final.xml", RSS, delay=0.5)
    feed_server.route("/hop.xml", status=302, content_type=None, headers={"Location": "/final.xml"}, delay=0.5)
    with pytest.raises(FeedNetworkError, match="total_timeout"):
        fetch(feed_server.url("/hop.xml"), config=settings(read_timeout=5.0, total_timeout=0.8))


def test_invalid_url_is_a_network_error():
    with pytest.raises(FeedNetworkError, match="not an http"):
        fetch("file:///etc/passwd")


# --- size cap and compression ------------------------------------------------------------------------------


@pytest.mark.parametrize("with_length", [True, False])
def test_oversized_body(feed_server, with_length):
    feed_server.route("/big.xml", b"<rss>" + b"x" * 5000 + b"</rss>", content_length=with_length)
    with pytest.raises(FeedTooLarge) as caught:
        fetch(feed_server.url("/big.xml"), config=settings(max_feed_bytes=1024))
    assert caught.value.limit == 1024


def test_body_at_the_cap_is_fine(feed_server):
    body = b"<rss>" + b"x" * (2048 - 11) + b"</rss>"
    assert len(body) == 2048
    feed_server.route("/exact.xml", body)
    assert fetch(feed_server.url("/exact.xml"), config=settings(max_feed_bytes=2048)).body == body


def test_gzip_body_is_decoded_and_accept_encoding_sent(feed_server):
    feed_server.route("/z.xml", RSS, gzip=True)
    result = fetch(feed_server.url("/z.xml"))
    assert result.body == RSS
    assert result.body_hash == hashlib.sha256(RSS).hexdigest()
    assert "gzip" in feed_server.requests_for("/z.xml")[0].headers["accept-encoding"]


def test_deflate_body_zlib_and_raw(feed_server):
    feed_server.route("/d.xml", RSS, deflate=True)
    assert fetch(feed_server.url("/d.xml")).body == RSS
    raw = zlib.compressobj(wbits=-15)
    feed_server.route("/raw.xml", raw.compress(RSS) + raw.flush(), headers={"Content-Encoding": "deflate"})
    assert fetch(feed_server.url("/raw.xml")).body == RSS


def test_cap_applies_to_decoded_bytes(feed_server):
    # 4 MB of spaces gzip to a few KB: the compressed size passes, the decoded size does not
    feed_server.route("/bomb.xml", b"<rss>" + b" " * 4_000_000 + b"</rss>", gzip=True)
    assert len(gzip.compress(b" " * 4_000_000)) < 1_000_000
    with pytest.raises(FeedTooLarge):
        fetch(feed_server.url("/bomb.xml"), config=settings(max_feed_bytes=1_000_000))


def test_corrupt_gzip_is_a_readable_error(feed_server):
    feed_server.route("/bad.xml", b"\x1f\x8b\x08\x00garbage-not-gzip", headers={"Content-Encoding": "gzip"})
    with pytest.raises(FeedNetworkError, match="corrupt"):
        fetch(feed_server.url("/bad.xml"))


# --- HTML pages ----------------------------------------------------------------------------------------------

PAGE = """<!doctype html><html><head><title>Blog</title>
<link rel="stylesheet" href="/style.css">
<link rel="alternate" type="application/rss+xml" title="RSS" href="/feed.xml">
<link rel="alternate" type="application/atom+xml" href="https://blog.example/atom.xml">
<link rel="alternate" type="application/feed+json" href="feed.json">
<link rel="alternate" type="application/json" href="/wp-json/">
<link rel="alternate" hreflang="de" href="/de/">
</head><body><link rel="alternate" type="application/rss+xml" href="/ignored-in-body.xml"></body></html>"""


def test_html_page_is_not_a_feed_and_names_its_feeds(feed_server):
    feed_server.page("/blog/", PAGE)
    with pytest.raises(FeedNotAFeed) as caught:
        fetch(feed_server.url("/blog/"))
    assert caught.value.candidates == [
        feed_server.url("/feed.xml"),
        "https://blog.example/atom.xml",
        feed_server.url("/blog/feed.json"),
        feed_server.url("/wp-json/"),
    ]
    assert feed_server.url("/feed.xml") in str(caught.value)


def test_html_page_without_feed_links(feed_server):
    feed_server.page("/about", "<html><head><title>x</title></head><body>hi</body></html>")
    with pytest.raises(FeedNotAFeed) as caught:
        fetch(feed_server.url("/about"))
    assert caught.value.candidates == []


def test_html_detected_by_sniffing_despite_content_type(feed_server):
    feed_server.route("/page.xml", "<!DOCTYPE html>\n<html><head><base href='https://cdn.example/x/'>"
                      "<link rel='alternate' type='application/atom+xml' href='a.xml'></head></html>",
                      content_type="application/octet-stream")
    with pytest.raises(FeedNotAFeed) as caught:
        fetch(feed_server.url("/page.xml"))
    assert caught.value.candidates == ["https://cdn.example/x/a.xml"]


def test_feed_served_as_text_html_is_still_a_feed(feed_server):
    feed_server.route("/feed", RSS, content_type="text/html; charset=utf-8")
    assert fetch(feed_server.url("/feed")).body == RSS


# --- politeness ---------------------------------------------------------------------------------------------


def test_user_agent_carries_version(feed_server):
    feed_server.route("/feed.xml", RSS)
    fetch(feed_server.url("/feed.xml"))
    agent = feed_server.requests_for("/feed.xml")[0].headers["user-agent"]
    assert agent.startswith("bridge/9.9.9 ")
    assert "{version}" not in agent


def test_custom_user_agent_template(feed_server):
    feed_server.route("/feed.xml", RSS)
    fetch(feed_server.url("/feed.xml"), config=settings(user_agent="MyBridge/{version} (+mailto:me@example.org)"))
    assert feed_server.requests_for("/feed.xml")[0].headers["user-agent"] == "MyBridge/9.9.9 (+mailto:me@example.org)"


def test_per_host_concurrency_is_bounded(feed_server):
    for index in range(8):
        feed_server.route(f"/f{index}.xml", RSS, delay=0.25)
    results = fetch_many([feed_server.url(f"/f{i}.xml") for i in range(8)], settings(per_host_concurrency=2, max_concurrency=16))
    assert all(isinstance(r, FetchResult) for r in results)
    assert feed_server.max_concurrent == 2  # bounded, and the bound is actually used


def _max_overlap(records) -> int:
    events = sorted([(r.started, 1) for r in records] + [(r.ended, -1) for r in records])
    best = current = 0
    for _, delta in events:
        current += delta
        best = max(best, current)
    return best


def test_total_concurrency_is_bounded_across_hosts():
    with FeedServer() as one, FeedServer() as two:
        urls = []
        for server in (one, two):
            for index in range(6):
                server.route(f"/f{index}.xml", RSS, delay=0.25)
                urls.append(server.url(f"/f{index}.xml"))
        results = fetch_many(urls, settings(per_host_concurrency=3, max_concurrency=4))
        assert all(isinstance(r, FetchResult) for r in results)
        assert one.max_concurrent <= 3 and two.max_concurrent <= 3
        assert _max_overlap(one.requests + two.requests) == 4


def test_connections_are_kept_alive(feed_server):
    feed_server.route("/a.xml", RSS)
    feed_server.route("/b.xml", RSS)

    async def go():
        async with Fetcher(settings()) as fetcher:
            await fetcher.fetch(feed_server.url("/a.xml"))
            await fetcher.fetch(feed_server.url("/b.xml"))

    asyncio.run(go())
    ports = {r.client_port for r in feed_server.requests}
    assert len(ports) == 1


def test_request_headers_name_bridge_and_carry_validators(feed_server):
    feed_server.route("/feed.xml", RSS)

    async def go():
        async with Fetcher(settings(), version="1.2.3") as fetcher:
            return await fetcher.fetch(feed_server.url("/feed.xml"), etag='"old"', last_modified="Mon, 01 Jan 2024 00:00:00 GMT")

    result = asyncio.run(go())
    assert result.body == RSS
    request = feed_server.requests[-1]
    assert request.headers["if-none-match"] == '"old"'
    assert request.headers["if-modified-since"] == "Mon, 01 Jan 2024 00:00:00 GMT"
    assert request.headers["user-agent"].startswith("bridge/1.2.3")
    assert "gzip" in request.headers["accept-encoding"]


def test_proxy_from_the_environment_is_used_except_for_no_proxy_hosts(monkeypatch):
    """HTTP(S)_PROXY and NO_PROXY are read once per Fetcher (not per request, which costs a thread hop each)."""
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    monkeypatch.setenv("NO_PROXY", "internal.example")
    fetcher = Fetcher(settings())
    assert fetcher._proxy_for("https://blog.example/feed.xml") == "http://proxy.example:3128"
    assert fetcher._proxy_for("https://internal.example/feed.xml") is None
    assert fetcher._proxy_for("http://blog.example/feed.xml") is None  # no HTTP_PROXY set


def test_304_keeps_the_connection_for_the_next_feed(feed_server):
    """A 304 is read to its end so the connection goes back to the pool: one TCP connection for many polls."""
    for name in ("a", "b", "c"):
        feed_server.route(f"/{name}.xml", RSS, etag=f'"{name}"')

    async def go():
        async with Fetcher(settings(max_concurrency=1, per_host_concurrency=1)) as fetcher:
            for name in ("a", "b", "c", "a", "b", "c"):
                result = await fetcher.fetch(feed_server.url(f"/{name}.xml"), etag=f'"{name}"')
                assert result.status == 304

    asyncio.run(go())
    assert len({request.client_port for request in feed_server.requests}) == 1


# --- the address fence on redirects, DNS rebinding, slow headers, encodings not asked for ------------------------


def hosts(mapping: dict[str, list[str]]):
    """A resolver answering from `mapping` (no DNS)."""
    return lambda host, port: mapping[host]


def fetch_with(url: str, config: BridgeSettings | None = None, **fetcher_options) -> FetchResult:
    async def go():
        async with Fetcher(config or settings(), **fetcher_options) as fetcher:
            return await fetcher.fetch(url)

    return asyncio.run(go())


@pytest.fixture
def inside():
    """A server on 127.0.0.2: an address inside the network that no public feed may send bridge to."""
    with FeedServer(host="127.0.0.2") as server:
        server.route("/feed.xml", b"<rss version='2.0'><channel><title>INTERNAL</title></channel></rss>")
        yield server


def test_feed_redirecting_to_another_private_address_is_not_followed(feed_server, inside):
    # the configured feed lives on 127.0.0.1 (the admin's word); its redirect to 127.0.0.2 is nobody's
    feed_server.redirect("/feed.xml", inside.url("/feed.xml"), status=302)
    with pytest.raises(FeedNetworkError, match=r"127\.0\.0\.2, a private, loopback or link-local address"):
        fetch(feed_server.url("/feed.xml"))
    assert inside.requests == []


def test_feed_on_a_public_host_redirecting_to_a_name_for_a_private_address_is_not_followed(feed_server, inside):
    resolver = hosts({"blog.example": ["127.0.0.1"], "internal.example": ["127.0.0.2"]})
    feed_server.redirect("/feed.xml", f"http://internal.example:{inside.port}/feed.xml", status=302)
    with pytest.raises(FeedNetworkError, match=r"127\.0\.0\.2, a private, loopback or link-local address"):
        fetch_with(f"http://blog.example:{feed_server.port}/feed.xml", resolver=resolver)
    assert inside.requests == []


def test_redirect_to_an_ipv6_form_of_loopback_is_not_followed(feed_server):
    feed_server.redirect("/feed.xml", f"http://[::ffff:127.0.0.2]:{feed_server.port}/feed.xml", status=302)
    with pytest.raises(FeedNetworkError, match="private, loopback or link-local"):
        fetch(feed_server.url("/feed.xml"))


def test_feed_configured_on_a_private_address_is_fetched_with_its_own_redirects(inside):
    inside.redirect("/old.xml", "/feed.xml", status=301)
    result = fetch(inside.url("/old.xml"))
    assert b"INTERNAL" in result.body and result.permanent_url == inside.url("/feed.xml")


def test_allow_private_addresses_follows_redirects_anywhere(feed_server, inside):
    feed_server.redirect("/feed.xml", inside.url("/feed.xml"), status=302)
    assert b"INTERNAL" in fetch(feed_server.url("/feed.xml"), config=settings(allow_private_addresses=True)).body


def test_redirect_target_is_connected_to_at_the_address_that_was_checked(feed_server):
    # rebind.example answers 127.0.0.2 (standing for a public address, allowed here) once, then 127.0.0.1
    public, internal = servers_on_one_port("127.0.0.2", "127.0.0.1")
    try:
        public.route("/feed.xml", RSS)
        internal.route("/feed.xml", b"<rss version='2.0'><channel><title>INTERNAL</title></channel></rss>")
        answers = iter([["127.0.0.2"]])
        resolver = lambda host, port: next(answers, ["127.0.0.1"])  # noqa: E731
        feed_server.redirect("/feed.xml", f"http://rebind.example:{public.port}/feed.xml", status=302)
        result = fetch_with(feed_server.url("/feed.xml"), allow_private=["127.0.0.2/32"], resolver=resolver)
        assert result.body == RSS
        assert internal.requests == []
        assert public.requests[0].headers["host"] == f"rebind.example:{public.port}"
    finally:
        public.stop()
        internal.stop()


def test_headers_sent_a_byte_a_second_meet_total_timeout(feed_server):
    feed_server.route("/drip.xml", drip_headers=1.0)
    started = time.monotonic()
    with pytest.raises(FeedNetworkError, match="total_timeout"):
        fetch(feed_server.url("/drip.xml"), config=settings(read_timeout=5.0, total_timeout=2.0))
    assert time.monotonic() - started < 30


@pytest.mark.parametrize("encoding", ["zstd", "br", "gzip, br"])
def test_encodings_bridge_did_not_ask_for_are_refused(feed_server, encoding):
    feed_server.route("/odd.xml", b"\x28\xb5\x2f\xfd compressed", headers={"Content-Encoding": encoding})
    with pytest.raises(FeedNetworkError, match="which bridge does not decode"):
        fetch(feed_server.url("/odd.xml"))
    assert feed_server.requests_for("/odd.xml")[0].headers["accept-encoding"] == "gzip, deflate"
