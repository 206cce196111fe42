"""End to end through the real CLI: `python -m bridge poll` as a subprocess, a feed and its article pages on
the local feed server, the fake Mastodon server (tests/mastodon_fake) as the instance. Loopback only.

The article lives on http://blog.example.com/... (a host Mastodon takes for a link). Nobody resolves that
name: the fake fetches its card through its host map, and the bridge process reaches it through an HTTP
proxy that is the feed server itself (HTTP_PROXY; NO_PROXY keeps the feed and the instance direct).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from pathlib import Path

import pytest

from bridge.state import State
from tests.feedserver import png_bytes
from tests.mastodon_fake import MastodonFake

ROOT = Path(__file__).resolve().parent.parent
TOKEN_ENV = "BRIDGE_TEST_MASTODON_TOKEN"
WRITE_ONLY = ["write:statuses", "write:media"]
BLOG = "http://blog.example.com"

ARTICLE = """<!doctype html><html lang="en"><head>
<title>Fallback title</title>
<meta property="og:title" content="Second post: on bridges &amp; rivers">
<meta property="og:description" content="Why every river needs two kinds of bridge.">
<meta property="og:image" content="/images/cover.png">
<meta property="og:site_name" content="A Blog">
</head><body><article><p>Text.</p></article></body></html>"""


def rss(items: list[tuple[str, str, str]]) -> str:
    """(guid, title, path) items, newest first, dated within the last hours."""
    now = datetime.now(timezone.utc)
    parts = ['<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>A Blog</title>'
             f"<link>{BLOG}/</link>"]
    for number, (guid, title, path) in enumerate(items):
        parts.append(f'<item><guid isPermaLink="false">{guid}</guid><title>{title}</title><link>{BLOG}{path}</link>'
                     f"<description>&lt;p&gt;Some words about {title}.&lt;/p&gt;</description>"
                     f"<pubDate>{format_datetime(now - timedelta(hours=number + 1))}</pubDate>"
                     "<category>Civil Engineering</category></item>")
    parts.append("</channel></rss>")
    return "".join(parts)


@pytest.fixture
def world(tmp_path, feed_server):
    fake = MastodonFake(hosts={"blog.example.com": f"127.0.0.1:{feed_server.port}"})
    fake.start()
    feed_server.route("/feed.xml", rss([("post-1", "First post", "/posts/1")]), content_type="application/rss+xml")
    feed_server.page("/posts/2", ARTICLE)
    feed_server.image("/images/cover.png", png_bytes(1200, 630))
    config = tmp_path / "config.toml"
    config.write_text(
        f'[bridge]\nstate = "{tmp_path}/state.sqlite3"\nallow_private_addresses = true\n\n'
        f'[accounts.masto]\ntype = "mastodon"\ninstance = "{fake.url}"\naccess_token = {{ env = "{TOKEN_ENV}" }}\n\n'
        f'[[feeds]]\nname = "blog"\nurl = "{feed_server.url("/feed.xml")}"\naccounts = ["masto"]\n'
    )

    class World:
        server = feed_server
        mastodon = fake
        state_path = tmp_path / "state.sqlite3"
        token = fake.add_account("alice", WRITE_ONLY)

        def bridge(self, *args: str) -> subprocess.CompletedProcess:
            env = {**os.environ, TOKEN_ENV: self.token, "HTTP_PROXY": feed_server.base_url,
                   "http_proxy": feed_server.base_url, "NO_PROXY": "127.0.0.1,localhost",
                   "no_proxy": "127.0.0.1,localhost"}
            env.pop("BRIDGE_CONFIG", None)
            return subprocess.run([sys.executable, "-m", "bridge", "--config", str(config), *args], capture_output=True,
                                  text=True, timeout=120, env=env, cwd=ROOT)

        def add_second_post(self) -> None:
            feed_server.route("/feed.xml", rss([("post-2", "Second post", "/posts/2"), ("post-1", "First post", "/posts/1")]),
                              content_type="application/rss+xml")

    yield World()
    errors = fake.errors
    fake.stop()
    assert not errors, errors[0]["exception"]


def test_poll_posts_a_new_entry_once_and_mastodon_makes_its_card(world):
    first = world.bridge("poll")
    assert first.returncode == 0, first.stderr
    assert world.mastodon.statuses("alice") == []  # the first sight of a feed is its baseline
    world.add_second_post()
    second = world.bridge("poll", "--feed", "blog")
    assert second.returncode == 0, second.stderr
    assert "1 new entry" in second.stdout and "posted 1, failed 0" in second.stdout
    [status] = world.mastodon.statuses("alice")
    assert f"{BLOG}/posts/2" in status["text"] and status["text"].startswith("Second post")
    assert "#CivilEngineering" in status["text"]
    assert world.mastodon.wait_for_cards()  # Mastodon makes the card after the post, from the page
    [status] = world.mastodon.statuses("alice")
    card = status["card"]
    assert card["title"] == "Second post: on bridges & rivers"
    assert card["description"] == "Why every river needs two kinds of bridge."
    assert card["url"] == f"{BLOG}/posts/2" and card["image"].startswith(world.mastodon.url + "/system/")
    # the article page was read by the server for its card, not by bridge: a Mastodon post carries no card of
    # bridge's making, and the writer's site is asked once
    readers = [r.headers.get("user-agent", "") for r in world.server.requests_for("/posts/2")]
    assert readers and not any(reader.startswith("bridge/") for reader in readers), readers
    # nothing more on the next polls
    third = world.bridge("poll", "--feed", "blog")
    assert third.returncode == 0 and "posted 0" in third.stdout
    assert len(world.mastodon.statuses("alice")) == 1
    assert len(world.mastodon.requests("status_create")) == 1
    with State.open_readonly(world.state_path) as state:
        [row] = state.deliveries(account="masto")
    assert row.state == "posted" and row.remote_id == status["id"] and row.remote_url == status["url"]
    report = json.loads(world.bridge("status", "--json").stdout)
    assert report["accounts"][0]["name"] == "masto"


def test_revoked_token_pauses_the_account_and_a_new_one_posts_once(world):
    assert world.bridge("poll").returncode == 0
    world.mastodon.revoke(world.token)
    world.add_second_post()
    refused = world.bridge("poll", "--feed", "blog")
    assert refused.returncode == 1
    assert "account masto is paused" in refused.stderr and "write:statuses write:media" in refused.stderr
    assert world.token not in refused.stderr + refused.stdout  # the secret never shows
    with State.open_readonly(world.state_path) as state:
        [row] = state.deliveries(account="masto")
    assert row.state == "pending"  # nothing lost
    world.token = world.mastodon.add_token("alice", WRITE_ONLY)
    again = world.bridge("poll", "--feed", "blog")
    assert again.returncode == 0, again.stderr
    assert "posted 1" in again.stdout
    assert [s["text"].split("\n")[0] for s in world.mastodon.statuses("alice")] == ["Second post"]


def test_instance_down_keeps_the_post_for_later(world):
    assert world.bridge("poll").returncode == 0
    world.add_second_post()
    world.mastodon.inject("status_create", 503, times=None)
    down = world.bridge("poll", "--feed", "blog")
    assert "posted 0" in down.stdout
    with State.open_readonly(world.state_path) as state:
        [row] = state.deliveries(account="masto")
    assert row.state == "pending" and row.attempts == 1 and "503" in row.last_error
    assert world.mastodon.statuses("alice") == []
