"""The grace period (`hold`): a new entry waits out its hold, then goes out once, as it reads by then."""

from __future__ import annotations

import time

import pytest

from bridge.config import load_config
from bridge.pipeline import Poller
from bridge.state import State
from bridge.wiring import build_deliverer
from tests.mastodon_blog import BLOG, TOKEN_ENV, mastodon_blog
from tests.test_pipeline import Clock, rss


def _item(number: int, title: str, categories=()) -> dict:
    return {"guid": f"g{number}", "link": f"{BLOG}/posts/{number}", "title": title, "categories": list(categories)}


@pytest.fixture
def held(tmp_path, feed_server, monkeypatch):
    with mastodon_blog(tmp_path, feed_server, 'hold = "10m"') as blog:
        for name in ("HTTP_PROXY", "http_proxy"):  # the composer reads the article pages, by name, through it
            monkeypatch.setenv(name, feed_server.base_url)
        for name in ("NO_PROXY", "no_proxy"):
            monkeypatch.setenv(name, "127.0.0.1,localhost")
        monkeypatch.setenv(TOKEN_ENV, blog.token)
        yield blog


def _cycle(blog, clock) -> None:
    """One `bridge poll` cycle in this process, on a state opened afresh (as a restarted process would)."""
    config = load_config(blog.config)
    with State.open(blog.state_path) as state:
        Poller(config, state, clock=clock).poll(["blog"])
        deliverer = build_deliverer(config, state, clock=clock)
        try:
            deliverer.deliver_due()
        finally:
            deliverer.close()


def test_an_entry_edited_during_its_hold_is_posted_once_with_the_edited_text(held):
    clock = Clock()
    held.server.route("/feed.xml", rss([], link=f"{BLOG}/"), content_type="application/rss+xml")
    _cycle(held, clock)  # the baseline
    held.server.route("/feed.xml", rss([_item(1, "Bridegs over the Rhine"), _item(2, "A draft")], link=f"{BLOG}/"),
                      content_type="application/rss+xml")
    clock.now += 60
    _cycle(held, clock)
    assert held.mastodon.statuses("alice") == []  # queued, held
    clock.now += 300  # five minutes in: the writer fixes the typo and pulls the draft
    held.server.route("/feed.xml", rss([_item(1, "Bridges over the Rhine"), _item(2, "A draft", ["nosyndicate"])],
                                       link=f"{BLOG}/"), content_type="application/rss+xml")
    _cycle(held, clock)
    assert held.mastodon.statuses("alice") == []
    clock.now += 290  # 9m50s after first sight: still held
    _cycle(held, clock)
    assert held.mastodon.statuses("alice") == []
    clock.now += 20
    _cycle(held, clock)
    [status] = held.mastodon.statuses("alice")
    assert status["text"].startswith("Bridges over the Rhine") and "Bridegs" not in status["text"]
    clock.now += 3600
    _cycle(held, clock)
    assert len(held.mastodon.statuses("alice")) == 1 and len(held.mastodon.requests("status_create")) == 1
    with State.open_readonly(held.state_path) as state:
        rows = {row.entry_key: row for row in state.deliveries()}
    assert rows["g1"].state == "posted" and rows["g1"].kind == "new"
    assert rows["g2"].state == "filtered"
    assert rows["g2"].last_error == "opted out: the entry has the category 'nosyndicate'"


def test_the_hold_survives_separate_bridge_poll_processes(tmp_path, feed_server):
    with mastodon_blog(tmp_path, feed_server, 'hold = "15s"') as blog:
        blog.server.route("/feed.xml", rss([], link=f"{BLOG}/"), content_type="application/rss+xml")
        assert blog.bridge("poll").returncode == 0
        blog.server.route("/feed.xml", rss([_item(3, "Frist light")], link=f"{BLOG}/"), content_type="application/rss+xml")
        queued = blog.bridge("poll", "--feed", "blog")
        first_sight = time.time()
        assert queued.returncode == 0, queued.stderr
        assert "1 new entry" in queued.stdout and "posted 0" in queued.stdout
        blog.server.route("/feed.xml", rss([_item(3, "First light")], link=f"{BLOG}/"), content_type="application/rss+xml")
        dry = blog.bridge("poll", "--feed", "blog", "--dry-run")
        assert "First light" in dry.stdout and "(not before " in dry.stdout
        assert blog.mastodon.statuses("alice") == []
        time.sleep(max(0.0, first_sight + 16 - time.time()))  # the hold has passed (plus a second)
        sent = blog.bridge("poll", "--feed", "blog")
        assert sent.returncode == 0, sent.stderr
        assert "posted 1" in sent.stdout
        [status] = blog.mastodon.statuses("alice")
        assert status["text"].startswith("First light")
