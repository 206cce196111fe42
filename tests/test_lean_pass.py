"""A pass with nothing to post pays only for what it does (issue 22: a timer-driven install runs `bridge poll`
every few minutes, and most runs find nothing new).

The real `bridge poll` in a subprocess under `python -X importtime`, which names every module the process
loaded: a pass with no feed due loads no HTTP client, event loop, parser or renderer; one whose feeds are
unchanged loads the feed fetcher and nothing for posting. How fast that is is measured by bench/
(docs/benchmarks.md), not here.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.test_mastodon_e2e import rss

ROOT = Path(__file__).resolve().parent.parent

# Loaded only when there is something to post, a document to parse, an alert to send or a page to serve.
FOR_POSTING = {
    "mastodon": "Mastodon.py (a Mastodon target)",
    "atproto": "atproto (a Bluesky target)",
    "atproto_client": "atproto (a Bluesky target)",
    "nostr_sdk": "nostr-sdk (a Nostr target)",
    "websockets": "websockets (Nostr relays)",
    "PIL": "Pillow (card images)",
    "bs4": "BeautifulSoup (rendering, link previews)",
    "markdownify": "markdownify (rendering)",
    "httpx": "httpx (link previews, deletes, pings, targets)",
    "requests": "requests (WebSub Link headers, hubs)",
    "apprise": "apprise (alerts)",
    "jinja2": "Jinja2 (the status page)",
    "bridge.render.post": "the renderer",
    "bridge.linkpreview.fetch": "the link preview fetcher",
    "bridge.compose": "the composer",
}
FOR_FETCHING = {"aiohttp": "aiohttp (feed fetching)", "feedparser": "feedparser (feed parsing)",
                "asyncio": "asyncio (the fetcher's event loop)"}
# Never loaded by a pass: the state opens with the standard library's sqlite3 (bridge/state/sqlite.py).
NEVER = {"sqlite_utils": "sqlite-utils", "pluggy": "pluggy (sqlite-utils' plugins)"}


def loaded_modules(stderr: str) -> set[str]:
    """The modules `-X importtime` reported (one line each: 'import time: self | cumulative | name')."""
    return {line.rsplit("|", 1)[1].strip() for line in stderr.splitlines() if line.startswith("import time:")
            and "|" in line and not line.rstrip().endswith("imported package")}


def heavy(modules: set[str], wanted: dict[str, str]) -> list[str]:
    return sorted({label for name, label in wanted.items() if name in modules})


def test_a_poll_with_nothing_due_or_nothing_new_loads_nothing_for_posting(tmp_path, feed_server):
    feed_server.route("/feed.xml", rss([("post-1", "First post", "/posts/1")]), content_type="application/rss+xml")
    feed_server.page("/posts/1", "<html><head><title>First</title></head><body>Text.</body></html>")
    config = tmp_path / "config.toml"
    config.write_text(
        f'[bridge]\nstate = "{tmp_path}/state.sqlite3"\nallow_private_addresses = true\n\n'
        # An alert destination: each pass looks for problems, and loads Apprise only to tell one.
        '[alerts]\ndestinations = ["json://127.0.0.1:9/alerts"]\n\n'
        # Accounts on both card-making and card-reading platforms; never contacted: nothing is posted.
        '[accounts.masto]\ntype = "mastodon"\ninstance = "http://127.0.0.1:9"\n'
        'access_token = { env = "BRIDGE_TEST_TOKEN" }\n\n'
        '[accounts.sky]\ntype = "bluesky"\nhandle = "someone.test"\nservice = "http://127.0.0.1:9"\n'
        'app_password = { env = "BRIDGE_TEST_TOKEN" }\n\n'
        f'[[feeds]]\nname = "blog"\nurl = "{feed_server.url("/feed.xml")}"\naccounts = ["masto", "sky"]\n'
    )
    env = {**os.environ, "BRIDGE_TEST_TOKEN": "unused"}
    env.pop("BRIDGE_CONFIG", None)

    def poll(*args: str) -> set[str]:
        result = subprocess.run([sys.executable, "-X", "importtime", "-m", "bridge", "--config", str(config), "poll",
                                 *args], capture_output=True, text=True, timeout=120, env=env, cwd=ROOT)
        assert result.returncode == 0, result.stderr[-2000:]
        assert "0 new entries" in result.stdout and "posted 0, failed 0" in result.stdout, result.stdout
        return loaded_modules(result.stderr)

    first = poll()  # the first sight of the feed: its entries are the baseline, nothing is queued
    assert "aiohttp" in first and "feedparser" in first  # the check sees what a pass loads
    assert heavy(first, FOR_POSTING | NEVER) == []

    # The next timer run: no feed is due yet. Nothing to fetch, parse or post.
    idle = poll()
    assert "bridge.pipeline" in idle and "bridge.state" in idle
    assert heavy(idle, FOR_FETCHING | FOR_POSTING | NEVER) == []

    # A feed polled again, unchanged (a 304 or the same body): fetched, nothing to parse, nothing to post.
    feed_server.clear_log()
    unchanged = poll("--feed", "blog")
    assert feed_server.requests_for("/feed.xml"), "the feed was fetched"
    assert "aiohttp" in unchanged
    assert heavy(unchanged, {"feedparser": FOR_FETCHING["feedparser"]} | FOR_POSTING | NEVER) == []
    assert feed_server.requests_for("/posts/1") == []  # no article page read for a post that is not made
