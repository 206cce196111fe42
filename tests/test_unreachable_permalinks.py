"""A feed whose permalinks point at the writer's own machine (a Jekyll site built with url = localhost:4000) is
not posted from: its entries are recorded, not queued, and the feed is flagged with the fix."""

from __future__ import annotations

import hashlib
from datetime import datetime, timezone
from urllib.parse import urlsplit

import pytest

from bridge.config import parse_config
from bridge.feeds import FetchResult
from bridge.feeds.prepare import read_document
from bridge.permalinks import unreachable_site
from bridge.pipeline import Poller
from bridge.state import State
from bridge.status import collect_status, render_status_text
from tests.render_corpus import CORPUS_DIR, requires_corpus
from tests.test_pipeline import posts, rss, world  # noqa: F401  (fixture)

JEKYLL = "jekyll-localhost-selflink.atom"
FEED_URL = "https://science.example/atom.xml"
FIX = "your site's base URL is set to http://localhost:4000"


@pytest.mark.parametrize("link, feed_url, refused", [
    ("http://localhost:4000/a/", "https://science.example/atom.xml", "http://localhost:4000"),
    ("http://127.0.0.1:4000/a/", "https://science.example/atom.xml", "http://127.0.0.1:4000"),
    ("http://10.0.0.7/a/", "https://science.example/atom.xml", "http://10.0.0.7"),
    ("http://blog.local/a/", "https://science.example/atom.xml", "http://blog.local"),
    ("http://[::1]:4000/a/", "https://science.example/atom.xml", "http://[::1]:4000"),
    ("https://science.example/a/", "https://science.example/atom.xml", None),
    # a feed the admin configured on their own network: links there are theirs to post
    ("http://127.0.0.1:8080/a/", "http://127.0.0.1:8080/feed", None),
    ("http://localhost:8080/a/", "http://127.0.0.1:8080/feed", None),
    ("http://192.168.1.9/a/", "http://192.168.1.2/feed", None),
    # ... but a loopback permalink in a feed served to the LAN is still a development build
    ("http://localhost:4000/a/", "http://192.168.1.2/feed", "http://localhost:4000"),
])
def test_which_permalinks_readers_cannot_open(link, feed_url, refused):
    assert unreachable_site(link, feed_url) == refused


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2025, 8, 25, tzinfo=timezone.utc).timestamp()  # the day after the corpus' newest post

    def __call__(self) -> float:
        return self.now


def fetched(body: bytes) -> FetchResult:
    return FetchResult(status=200, url=FEED_URL, permanent_url=None, body=body,
                       body_hash=hashlib.sha256(body).hexdigest(), etag=None, last_modified=None,
                       content_type="application/atom+xml", max_age=None)


@pytest.fixture
def poller(tmp_path):
    config = parse_config({
        "accounts": {"masto": {"type": "mastodon", "instance": "https://m.example"}},
        "feeds": [{"name": "science", "url": FEED_URL, "accounts": ["masto"]}],
        "bridge": {"max_post_age": "365d"},
    })
    state = State.open(tmp_path / "state.sqlite3")
    poller = Poller(config, state, clock=Clock())
    yield poller
    state.close()


def record(poller: Poller, body: bytes):
    # The feed is on a public host: record() with a fetched document is what a poll of it does after the fetch.
    feed = poller.config.feeds[0]
    row = poller.state.ensure_feed(feed.name, feed.url)
    poller.clock.now += 3600
    return poller.record(feed, row, fetched(body), read_document(body, FEED_URL, None))


@requires_corpus
def test_jekyll_localhost_feed_is_flagged_and_never_posted(poller):
    body = (CORPUS_DIR / JEKYLL).read_bytes()
    # one post the baseline does not know: a new entry of the same misconfigured site
    newer = body.replace(b"operational-excellence-vs-ai", b"operational-excellence-vs-ai-part-2")
    first = record(poller, body)
    assert first.warning and FIX in first.warning and "_config.yml" in first.warning
    assert first.unreachable == 10 and first.queued == 0
    second = record(poller, newer)
    assert (second.unreachable, second.new_entries, second.queued) == (1, 0, 0)
    assert poller.state.deliveries(account="masto") == []
    assert FIX in second.notice

    status = collect_status(poller.config, poller.state)
    assert FIX in status["feeds"][0]["warning"]
    assert "NOT POSTED: its permalinks point to http://localhost:4000" in render_status_text(status)

    # The writer fixes the site's url: the same posts come back under new keys and links. They are the posts
    # already recorded (not a flood of "new" ones), and the flag goes away; a post written after the fix is queued.
    fixed = newer.replace(b"http://localhost:4000", b"https://science.example")
    third = record(poller, fixed)
    assert (third.rekeyed, third.new_entries, third.queued, third.warning) == (10, 0, 0, None)
    assert collect_status(poller.config, poller.state)["feeds"][0]["warning"] is None
    later = fixed.replace(b"operational-excellence-vs-ai-part-2", b"operational-excellence-vs-ai-part-3")
    assert record(poller, later).queued == 1


def test_a_feed_served_from_loopback_still_posts_its_loopback_links(world):  # noqa: F811
    base = world.server.base_url
    world.server.route("/feed", rss(posts(2, scheme="http", host=base.split("//")[1])), etag='"v1"')
    config = world.config({"local": "/feed"})
    world.poll(config)
    world.server.route("/feed", rss(posts(1, start=2, scheme="http", host=base.split("//")[1]) + posts(2)), etag='"v2"')
    world.clock.now += 700
    report = world.poll(config)
    assert (report.feeds[0].queued, report.feeds[0].warning) == (1, None)


@requires_corpus
def test_no_corpus_permalink_on_a_local_host_would_be_posted():
    """Corpus-wide: every entry whose permalink is on a local host is refused when its feed is served from a
    public one (as the corpus is read, from https://corpus.example/), and those are exactly jekyll-localhost's."""
    from bridge.addresses import is_local_host
    from tests.render_corpus import corpus_files, corpus_url, load_feed

    local, refused = [], []
    for name in corpus_files():
        feed = load_feed(name)
        for entry in feed.entries if feed else []:
            if entry.link and is_local_host(urlsplit(entry.link).hostname):
                local.append(name)
                refused.append(unreachable_site(entry.link, corpus_url(name)))
    assert local == [JEKYLL] * 10
    assert refused == ["http://localhost:4000"] * 10
