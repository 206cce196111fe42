"""Changed entries (left alone by default, edited on Mastodon when asked) and `bridge backfill` end to end."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from bridge.config import Config, parse_config
from bridge.pipeline import Poller
from bridge.state import State
from bridge.wiring import build_deliverer
from tests.mastodon_fake import MastodonFake
from tests.test_pipeline import posts, rss

ROOT = Path(__file__).resolve().parent.parent


def _config(fake: MastodonFake, feed_url: str, state: Path, **account) -> "Config":
    return parse_config({
        "bridge": {"state": str(state), "allow_private_addresses": True},
        "accounts": {"masto": {"type": "mastodon", "instance": fake.url, "access_token": {"env": "BRIDGE_TEST_TOKEN"},
                               "posts_per_hour": 1000000, **account}},
        "feeds": [{"name": "blog", "url": feed_url, "accounts": ["masto"]}],
    })


def _cycle(config, state) -> None:
    Poller(config, state).poll(["blog"])
    deliverer = build_deliverer(config, state)
    try:
        deliverer.deliver_due()
    finally:
        deliverer.close()


def _post_then_change(tmp_path, feed_server, monkeypatch, **account):
    fake = MastodonFake().start()
    monkeypatch.setenv("BRIDGE_TEST_TOKEN", fake.add_account("writer"))
    entries = posts(1)
    feed_server.route("/feed", rss(entries[:0]))
    config = _config(fake, feed_server.url("/feed"), tmp_path / "s.sqlite3", **account)
    state = State.open(tmp_path / "s.sqlite3")
    _cycle(config, state)  # baseline: empty
    feed_server.route("/feed", rss(entries))
    _cycle(config, state)
    assert len(fake.statuses("writer")) == 1
    entries[0]["title"] = "A corrected title"
    feed_server.route("/feed", rss(entries))
    _cycle(config, state)
    return fake, state


def test_a_changed_entry_leaves_its_post_alone_by_default(tmp_path, feed_server, monkeypatch):
    fake, state = _post_then_change(tmp_path, feed_server, monkeypatch)
    try:
        statuses = fake.statuses("writer")
        assert len(statuses) == 1 and "corrected" not in statuses[0]["text"]
        assert not fake.requests("status_edit")
    finally:
        state.close()
        fake.stop()


def test_edit_on_update_edits_the_mastodon_status_in_place(tmp_path, feed_server, monkeypatch):
    fake, state = _post_then_change(tmp_path, feed_server, monkeypatch, edit_on_update=True)
    try:
        statuses = fake.statuses("writer")
        assert len(statuses) == 1
        assert "A corrected title" in statuses[0]["text"]
        assert len(fake.requests("status_edit")) == 1
        assert [row.state for row in state.deliveries(account="masto")] == ["posted"]
    finally:
        state.close()
        fake.stop()


def _bridge(config: Path, *args: str, token: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "BRIDGE_TEST_TOKEN": token}
    env.pop("BRIDGE_CONFIG", None)
    return subprocess.run([sys.executable, "-m", "bridge", "--config", str(config), *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=180)


def test_backfill_posts_older_entries_paced_once_and_resumes_without_duplicates(tmp_path, feed_server):
    with MastodonFake() as fake:
        token = fake.add_account("writer")
        feed_server.route("/feed", rss(posts(5)))
        config = tmp_path / "config.toml"
        config.write_text(
            f'[bridge]\nstate = "{tmp_path}/s.sqlite3"\n[accounts.masto]\ntype = "mastodon"\ninstance = "{fake.url}"\n'
            f'access_token = {{ env = "BRIDGE_TEST_TOKEN" }}\nposts_per_hour = 1000000\n'
            f'[[feeds]]\nname = "blog"\nurl = "{feed_server.url("/feed")}"\naccounts = ["masto"]\n'
        )
        assert _bridge(config, "poll", token=token).returncode == 0  # baseline: nothing posted
        assert fake.statuses("writer") == []
        dry = _bridge(config, "backfill", "--feed", "blog", "--limit", "3", "--dry-run", token=token)
        assert dry.returncode == 0 and dry.stdout.count("masto:") == 3
        assert fake.statuses("writer") == []
        started = time.monotonic()
        first = _bridge(config, "backfill", "--feed", "blog", "--limit", "3", "--pace", "1s", "--oldest-first",
                        token=token)
        assert first.returncode == 0, first.stderr
        assert "[3/3]" in first.stdout  # plain progress lines when not on a terminal
        assert time.monotonic() - started >= 2  # paced: three posts one second apart
        texts = [status["text"] for status in fake.statuses("writer")]
        assert len(texts) == 3
        # oldest first: posts(5) dates go back in time with the number, so number 4 is the oldest
        assert "Post number 4" in texts[0] and "Post number 2" in texts[2]
        again = _bridge(config, "backfill", "--feed", "blog", "--limit", "3", "--pace", "1s", "--oldest-first",
                        token=token)
        assert again.returncode == 0
        texts = [status["text"] for status in fake.statuses("writer")]
        assert len(texts) == 5  # the next three candidates were the two never posted: nothing twice
        assert len(set(texts)) == 5


def _one_item(description: str) -> str:
    return ('<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>B</title>'
            "<link>https://blog.example/</link><item><guid>g-1</guid><title>Hello</title>"
            "<link>https://blog.example/posts/1</link>"
            f"<description><![CDATA[{description}]]></description>"
            f"<pubDate>{time.strftime('%a, %d %b %Y %H:%M:%S +0000', time.gmtime(time.time() - 600))}</pubDate>"
            "</item></channel></rss>")


def test_markup_only_changes_do_not_edit_posts_but_a_text_change_does(tmp_path, feed_server, monkeypatch):
    """A feed (or an upgrade of bridge) that changes only the HTML around the same text must not trigger an
    edit of every post, even with edit_on_update; a change a reader would see still does."""
    with MastodonFake() as fake:
        monkeypatch.setenv("BRIDGE_TEST_TOKEN", fake.add_account("writer"))
        feed_server.route("/feed", _one_item("").replace("<item>", "<!--").replace("</item>", "-->"))
        config = _config(fake, feed_server.url("/feed"), tmp_path / "s.sqlite3", edit_on_update=True)
        with State.open(tmp_path / "s.sqlite3") as state:
            _cycle(config, state)  # baseline: no items
            feed_server.route("/feed", _one_item("<p>Hello <b>world</b>, from the blog.</p>"))
            _cycle(config, state)
            assert len(fake.statuses("writer")) == 1
            feed_server.route("/feed", _one_item('<p class="lead" data-x="1">Hello <strong>world</strong>, from the blog.</p>'))
            report = Poller(config, state).poll(["blog"])
            assert report.feeds[0].updated == 0
            assert not state.deliveries(account="masto", state="pending")
            [delivery] = state.deliveries(account="masto")
            stored = state.get_entry(delivery.entry_id)[1]
            assert "lead" in stored.summary_html, "the stored entry follows the feed"
            feed_server.route("/feed", _one_item("<p>Hello <b>world</b>, from the new blog.</p>"))
            time.sleep(1.1)
            _cycle(config, state)
            assert len(fake.requests("status_edit")) == 1
            assert "new blog" in fake.statuses("writer")[0]["text"]
