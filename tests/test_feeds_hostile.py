"""Hostile feeds: entity-expansion bombs, external entities, file paths as bodies, endless servers.

Each parse runs in a subprocess with a wall-clock limit, so a regression fails the test instead of hanging or
swapping the machine; the subprocess reports its peak RSS and the repr of everything parse_feed returned.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import subprocess
import sys
import textwrap
import time

import pytest

from bridge.config import BridgeSettings
from bridge.errors import FeedNetworkError, FeedNotAFeed, FeedParseError, FeedTooLarge
from bridge.feeds import Fetcher, parse_feed
from tests.feedserver import REPO_ROOT, feed_server  # noqa: F401  (fixture)

MAX_SECONDS = 5.0
MAX_RSS_MB = 300  # a defused bomb peaks near 200 MB; an undefended parser runs past 2 GB
SECRET = "TOP-SECRET-7f3a9c-do-not-leak"

RUNNER = textwrap.dedent(
    """
    import json, sys, time
    from bridge.feeds import parse_feed
    from bridge.errors import FeedError
    body = open(sys.argv[1], "rb").read()
    started = time.monotonic()
    try:
        result = parse_feed(body, sys.argv[2])
        outcome, text = "parsed", repr(result)
    except FeedError as exc:
        outcome, text = type(exc).__name__, repr(exc) + " " + str(exc)
    print(json.dumps({
        "outcome": outcome,
        "repr": text,
        "seconds": time.monotonic() - started,
        # VmHWM is this address space's own peak; ru_maxrss would include pytest's size, kept across exec
        "maxrss_mb": int(next(l for l in open("/proc/self/status") if l.startswith("VmHWM:")).split()[1]) / 1024,
    }))
    """
)


def run_isolated(tmp_path, body: bytes, url: str = "https://hostile.example/feed.xml") -> dict:
    document = tmp_path / "hostile.xml"
    document.write_bytes(body)
    started = time.monotonic()
    completed = subprocess.run(
        [sys.executable, "-c", RUNNER, str(document), url],
        capture_output=True, text=True, timeout=60, cwd=REPO_ROOT,
    )
    elapsed = time.monotonic() - started
    assert completed.returncode == 0, completed.stderr[-2000:]
    report = json.loads(completed.stdout.strip().splitlines()[-1])
    report["wall"] = elapsed
    return report


def assert_contained(report: dict) -> None:
    assert report["seconds"] < MAX_SECONDS, report["seconds"]
    assert report["maxrss_mb"] < MAX_RSS_MB, report["maxrss_mb"]


LAUGHS = "".join(
    f'<!ENTITY lol{i} "{("&lol" + str(i - 1) + ";") * 10}">\n' for i in range(1, 10)
)
BILLION_LAUGHS_MULTILINE = (
    '<?xml version="1.0"?>\n<!DOCTYPE rss [\n<!ENTITY lol0 "lol">\n' + LAUGHS + "]>\n"
    "<rss version='2.0'><channel><title>&lol9;</title><link>https://hostile.example/</link>"
    "<item><title>&lol9;</title><link>https://hostile.example/1</link><description>&lol9;</description></item>"
    "</channel></rss>"
).encode()
BILLION_LAUGHS_ONE_LINE = BILLION_LAUGHS_MULTILINE.replace(b"\n", b"")


@pytest.mark.parametrize("body", [BILLION_LAUGHS_MULTILINE, BILLION_LAUGHS_ONE_LINE], ids=["multiline", "one-line"])
def test_billion_laughs(tmp_path, body):
    report = run_isolated(tmp_path, body)
    assert_contained(report)
    assert "lollollol" not in report["repr"]


def test_billion_laughs_in_utf16(tmp_path):
    body = BILLION_LAUGHS_MULTILINE.decode().replace('<?xml version="1.0"?>', '<?xml version="1.0" encoding="utf-16"?>')
    report = run_isolated(tmp_path, body.encode("utf-16"))
    assert_contained(report)
    assert "lollollol" not in report["repr"]


@pytest.mark.parametrize("one_line", [False, True])
def test_quadratic_blowup(tmp_path, one_line):
    # one 50 KB entity used 60,000 times: 3 GB if expanded, by expat or by feedparser's fallback parser
    refs = "&big;" * 60_000
    body = (
        f'<?xml version="1.0"?>\n<!DOCTYPE rss [\n<!ENTITY big "{"A" * 50_000}">\n]>\n'
        f"<rss version='2.0'><channel><title>t</title><item><title>x</title><link>https://hostile.example/1</link>"
        f"<description>{refs}</description></item></channel></rss>"
    )
    if one_line:
        body = body.replace("\n", "")
    report = run_isolated(tmp_path, body.encode())
    assert_contained(report)
    assert "A" * 100_000 not in report["repr"]


def _secret_file(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text(SECRET + "\n")
    return secret


@pytest.mark.parametrize(
    "template",
    [
        # classic XXE, on separate lines and on one line with the declaration
        '<?xml version="1.0"?>\n<!DOCTYPE rss [\n<!ENTITY xxe SYSTEM "{uri}">\n]>\n{doc}',
        '<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY xxe SYSTEM "{uri}">]>{doc}',
        # a parameter entity pulling the file into the DTD
        '<?xml version="1.0"?>\n<!DOCTYPE rss [\n<!ENTITY % p SYSTEM "{uri}">\n%p;\n<!ENTITY xxe "x">\n]>\n{doc}',
        # the file as the external DTD
        '<?xml version="1.0"?>\n<!DOCTYPE rss SYSTEM "{uri}">\n{doc}',
        # PUBLIC identifier form
        '<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY xxe PUBLIC "-//X//Y" "{uri}">]>{doc}',
    ],
    ids=["multiline", "one-line", "parameter-entity", "external-dtd", "public"],
)
def test_external_entity_never_reads_local_files(tmp_path, template):
    secret = _secret_file(tmp_path)
    doc = (
        "<rss version='2.0'><channel><title>&xxe;</title><link>https://hostile.example/</link>"
        "<item><title>a &xxe; b</title><link>https://hostile.example/1</link><description>&xxe;</description></item>"
        "</channel></rss>"
    )
    body = template.replace("{uri}", secret.as_uri()).replace("{doc}", doc)
    report = run_isolated(tmp_path, body.encode())
    assert_contained(report)
    assert SECRET not in report["repr"]


def test_external_entity_never_fetches_urls(tmp_path, feed_server):
    feed_server.route("/evil.dtd", '<!ENTITY xxe "FETCHED-FROM-NETWORK">', content_type="application/xml-dtd")
    feed_server.route("/xxe", "FETCHED-FROM-NETWORK", content_type="text/plain")
    doc = "<rss version='2.0'><channel><title>&xxe;</title><item><title>&xxe;</title><link>https://h.example/1</link></item></channel></rss>"
    for prolog in (
        f'<?xml version="1.0"?><!DOCTYPE rss SYSTEM "{feed_server.url("/evil.dtd")}">',
        f'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY xxe SYSTEM "{feed_server.url("/xxe")}">]>',
        f'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY % d SYSTEM "{feed_server.url("/evil.dtd")}"> %d;]>',
    ):
        report = run_isolated(tmp_path, (prolog + doc).encode())
        assert "FETCHED-FROM-NETWORK" not in report["repr"]
    assert feed_server.requests == []


def test_a_body_that_is_a_file_name_is_not_opened(tmp_path):
    # feedparser.parse(bytes) would try the bytes as a file name first; parse_feed must never let it
    secret = _secret_file(tmp_path)
    report = run_isolated(tmp_path, str(secret).encode())
    assert report["outcome"] == "FeedParseError"
    assert SECRET not in report["repr"]


def test_a_body_that_is_a_url_is_not_fetched(tmp_path, feed_server):
    feed_server.route("/feed.xml", "<rss version='2.0'><channel><title>REMOTE</title></channel></rss>")
    report = run_isolated(tmp_path, feed_server.url("/feed.xml").encode())
    assert report["outcome"] == "FeedParseError"
    assert feed_server.requests == []


def test_safe_internal_entities_still_work():
    body = (
        b'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY mdash "&#8212;"><!ENTITY site "Example">]>'
        b"<rss version='2.0'><channel><title>&site; blog</title><item><title>A &mdash; B</title>"
        b"<link>https://e.example/1</link></item></channel></rss>"
    )
    feed = parse_feed(body, "https://e.example/feed")
    assert feed.title == "Example blog"
    assert feed.entries[0].title == "A \u2014 B"


def test_deeply_nested_documents_fail_cleanly():
    started = time.monotonic()
    with pytest.raises(FeedParseError):
        parse_feed(b"[" * 200_000 + b"]" * 200_000, "https://e.example/feed.json", content_type="application/feed+json")
    nested = b"<rss version='2.0'><channel><title>t</title><item><title>x</title><description>" + b"<div>" * 50_000
    nested += b"</div>" * 50_000 + b"</description><link>https://e.example/1</link></item></channel></rss>"
    try:
        parse_feed(nested, "https://e.example/feed")
    except FeedParseError:
        pass
    assert time.monotonic() - started < 20


BAD_LINKS = ["http://[::1", "http://exa mple.org/x", "javascript:alert(1)", "http://" + "a" * 5000 + ".com/", "http://ex.com:99999/", "data:text/html,hi"]


def test_malformed_links_never_crash_the_parser():
    items = "".join(
        f"<item><title>t{i}</title><link>{link}</link><guid isPermaLink='false'>g{i}</guid>"
        f"<enclosure url='{link}' type='image/png'/><description>&lt;img src=\"{link}\"&gt;</description></item>"
        for i, link in enumerate(BAD_LINKS)
    )
    body = f"<rss version='2.0'><channel><title>t</title><link>http://[bad</link>{items}</channel></rss>"
    feed = parse_feed(body.encode(), "https://e.example/feed")
    assert len(feed.entries) == len(BAD_LINKS)
    for entry in feed.entries:
        assert entry.link is None or entry.link.startswith(("http://", "https://"))
        assert all(image.url.startswith(("http://", "https://")) for image in entry.images)
    json_feed = {"version": "https://jsonfeed.org/version/1.1", "home_page_url": "http://[bad",
                 "items": [{"id": str(i), "url": link, "image": link, "content_text": "x"} for i, link in enumerate(BAD_LINKS)]}
    assert len(parse_feed(json.dumps(json_feed).encode(), "https://e.example/feed.json").entries) == len(BAD_LINKS)
    page = "<html><head><base href='http://[x'>" + "".join(f"<link rel=alternate type=application/rss+xml href='{l}'>" for l in BAD_LINKS)
    with pytest.raises(FeedNotAFeed):
        parse_feed(page.encode(), "https://e.example/", content_type="text/html")


def test_garbage_is_a_parse_error():
    for body in (b"\x00\x01\x02garbage", b"plain text, not a feed", b"<?xml version='1.0'?><note>hi</note>", b"   "):
        with pytest.raises(FeedParseError):
            parse_feed(body, "https://e.example/feed")


# --- hostile servers ----------------------------------------------------------------------------------------------


def test_endless_trickle_is_cut_off_by_total_timeout(feed_server):
    feed_server.route("/endless", b"<rss>", trickle=0.02, content_type="application/rss+xml")
    config = BridgeSettings(read_timeout=10, total_timeout=0.7)

    async def go():
        async with Fetcher(config) as fetcher:
            return await fetcher.fetch(feed_server.url("/endless"))

    started = time.monotonic()
    with pytest.raises(FeedNetworkError, match="total"):
        asyncio.run(go())
    assert time.monotonic() - started < 3


def test_gzip_bomb_stops_at_the_cap(feed_server):
    bomb = gzip.compress(b"\x00" * 200_000_000, compresslevel=9)  # ~200 KB on the wire, 200 MB decoded
    feed_server.route("/bomb", bomb, headers={"Content-Encoding": "gzip"}, content_type="application/rss+xml")
    config = BridgeSettings(max_feed_bytes=2_000_000)

    async def go():
        async with Fetcher(config) as fetcher:
            return await fetcher.fetch(feed_server.url("/bomb"))

    started = time.monotonic()
    with pytest.raises(FeedTooLarge):
        asyncio.run(go())
    assert time.monotonic() - started < 5
