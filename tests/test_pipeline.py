"""Polling into state, end to end against a local feed server: baseline, new entries, re-keys, failures."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import pytest

from bridge.config import parse_config
from bridge.pipeline import Poller
from bridge.state import State

NOW = time.time()


def rss(items: list[dict], *, title: str = "A blog", link: str = "https://blog.example/") -> str:
    """A small RSS 2.0 document; each item: guid, link, title, date (datetime), categories, description (XML)."""
    parts = [f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>{title}</title><link>{link}</link>']
    for item in items:
        parts.append("<item>")
        if item.get("guid"):
            parts.append(f'<guid isPermaLink="false">{item["guid"]}</guid>')
        parts.append(f"<title>{item['title']}</title><link>{item['link']}</link>")
        description = item.get("description") or f"&lt;p&gt;About {item['title']}.&lt;/p&gt;"
        parts.append(f"<description>{description}</description>")
        parts.append(f"<pubDate>{format_datetime(item.get('date') or datetime.now(timezone.utc))}</pubDate>")
        parts.extend(f"<category>{category}</category>" for category in item.get("categories", []))
        parts.append("</item>")
    parts.append("</channel></rss>")
    return "".join(parts)


def posts(count: int, *, start: int = 0, scheme: str = "https", host: str = "blog.example", guid_prefix: str = "guid-",
          query: str = "", age: timedelta = timedelta(hours=1)) -> list[dict]:
    return [
        {
            "guid": f"{guid_prefix}{number}",
            "link": f"{scheme}://{host}/posts/{number}/{query}",
            "title": f"Post number {number}",
            "date": datetime.now(timezone.utc) - age - timedelta(minutes=number),
        }
        for number in range(start, start + count)
    ]


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def world(tmp_path, feed_server):
    class World:
        server = feed_server
        clock = Clock()
        state = State.open(tmp_path / "state.sqlite3")

        def config(self, feeds: dict[str, str], accounts=("masto",), **bridge):
            return parse_config(
                {
                    "bridge": {"interval": "10m", **bridge},
                    "accounts": {name: {"type": "mastodon", "instance": "https://m.example"} for name in accounts},
                    "feeds": [{"name": name, "url": self.server.url(path), "accounts": list(accounts)}
                              for name, path in feeds.items()],
                }
            )

        def poll(self, config, names=None):
            return Poller(config, self.state, clock=self.clock).poll(names)

        def queued(self, account="masto"):
            return sorted(row.entry_key for row in self.state.deliveries(account=account))

    world = World()
    yield world
    world.state.close()


def test_first_poll_is_a_baseline_and_later_entries_are_queued(world):
    world.server.route("/feed", rss(posts(5)), etag='"v1"')
    config = world.config({"blog": "/feed"})
    report = world.poll(config)
    assert report.feeds[0].baseline == 5 and report.feeds[0].queued == 0
    assert world.queued() == []
    world.server.route("/feed", rss(posts(2, start=5) + posts(5)), etag='"v2"')
    world.clock.now += 700
    report = world.poll(config)
    assert report.feeds[0].new_entries == 2
    assert world.queued() == ["guid-5", "guid-6"]


def test_big_documents_parsed_off_the_event_loop_are_recorded_like_small_ones(world):
    # Documents over INLINE_PARSE_MAX_BYTES are parsed in a thread, the rest on the event loop: the same result.
    from bridge.pipeline import INLINE_PARSE_MAX_BYTES

    padding = "<p>" + "A long paragraph of a long post. " * 200 + "</p>"
    big = rss(posts(60, guid_prefix="big-")).replace("&lt;/p&gt;</description>",
                                                     "&lt;/p&gt;" + padding.replace("<", "&lt;").replace(">", "&gt;") + "</description>")
    assert len(big.encode()) > INLINE_PARSE_MAX_BYTES
    world.server.route("/big", big)
    world.server.route("/small", rss(posts(3, guid_prefix="small-")))
    config = world.config({"big": "/big", "small": "/small"})
    report = {outcome.feed: outcome for outcome in world.poll(config).feeds}
    assert (report["big"].outcome, report["big"].baseline) == ("new", 60)
    assert (report["small"].outcome, report["small"].baseline) == ("new", 3)
    assert world.state.count_entries("big") == 60


def test_unchanged_feed_sends_conditional_requests_and_is_not_parsed_again(world):
    world.server.route("/feed", rss(posts(3)), etag='"same"', last_modified="Mon, 02 Nov 2026 10:00:00 GMT")
    config = world.config({"blog": "/feed"})
    world.poll(config)
    world.poll(config, ["blog"])
    second = world.server.requests_for("/feed")[-1]
    assert second.headers.get("if-none-match") == '"same"'
    assert second.headers.get("if-modified-since") == "Mon, 02 Nov 2026 10:00:00 GMT"
    assert world.state.get_feed("blog").last_outcome == "not-modified"
    # a server without validators: the body hash says "same", so nothing is parsed again
    world.server.route("/plain", rss(posts(3)))
    config = world.config({"plain": "/plain"})
    world.poll(config)
    world.poll(config, ["plain"])
    assert world.state.get_feed("plain").last_outcome == "unchanged"


def test_rekeyed_feed_posts_nothing(world):
    """Same posts, new GUIDs, http->https, www. added, tracking parameters changed: zero new entries."""
    world.server.route("/feed", rss(posts(10, scheme="http", query="?utm_source=rss")))
    config = world.config({"blog": "/feed"})
    world.poll(config)
    world.server.route("/feed", rss(posts(10, scheme="https", host="www.blog.example", guid_prefix="new-guid-",
                                          query="?utm_source=mastodon&fbclid=abc")))
    world.clock.now += 700
    report = world.poll(config)
    assert report.feeds[0].rekeyed == 10
    assert report.feeds[0].new_entries == 0
    assert world.queued() == []
    assert world.state.count_entries("blog") == 10
    # and the next genuinely new post is still noticed
    world.server.route("/feed", rss(posts(1, start=10, host="www.blog.example", guid_prefix="new-guid-")
                                    + posts(10, host="www.blog.example", guid_prefix="new-guid-")))
    world.clock.now += 700
    assert world.poll(config).feeds[0].new_entries == 1


def test_entries_sharing_a_link_are_still_distinct(world):
    """Podcast-style feeds point every item at the same page: that link identifies none of them."""
    same_link = [{"guid": f"ep-{n}", "link": "https://pod.example/", "title": f"Episode {n}"} for n in range(3)]
    world.server.route("/feed", rss(same_link))
    config = world.config({"pod": "/feed"})
    world.poll(config)
    more = [{"guid": "ep-3", "link": "https://pod.example/", "title": "Episode 3"}] + same_link
    world.server.route("/feed", rss(more))
    world.clock.now += 700
    assert world.poll(config).feeds[0].new_entries == 1


def test_old_entries_are_recorded_not_posted(world):
    world.server.route("/feed", rss(posts(1)))
    config = world.config({"blog": "/feed"}, max_post_age="2d")
    world.poll(config)
    world.server.route("/feed", rss(posts(1, start=1, age=timedelta(days=3)) + posts(1)))
    world.clock.now += 700
    report = world.poll(config)
    assert report.feeds[0].too_old == 1 and report.feeds[0].queued == 0


def test_migration_guard_across_feeds(world):
    """A post the account already had from another feed (the blog moved) is never posted again."""
    world.server.route("/old", rss(posts(1)))
    world.server.route("/new", rss([]))
    config = world.config({"old": "/old", "new": "/new"})
    world.poll(config)
    world.server.route("/old", rss(posts(3)))
    world.clock.now += 700
    world.poll(config)
    assert world.queued() == ["guid-1", "guid-2"]
    world.server.route("/new", rss(posts(2, guid_prefix="moved-")))
    world.clock.now += 700
    world.poll(config)  # baseline of the new feed
    world.server.route("/new", rss(posts(3, guid_prefix="moved-")))
    world.clock.now += 700
    report = {outcome.feed: outcome for outcome in world.poll(config).feeds}
    assert report["new"].new_entries == 1 and report["new"].queued == 0  # guid-2's link: already had by 'masto'


def test_one_broken_feed_never_stops_the_others(world):
    world.server.route("/good", rss(posts(2)))
    world.server.error("/down", 503, retry_after="120")
    world.server.route("/html", "<html><head><link rel='alternate' type='application/rss+xml' href='/good'></head></html>",
                       content_type="text/html")
    world.server.gone("/gone")
    config = world.config({"good": "/good", "down": "/down", "html": "/html", "gone": "/gone"})
    report = {outcome.feed: outcome for outcome in world.poll(config).feeds}
    assert report["good"].baseline == 2
    assert report["down"].outcome == "error" and report["down"].status == 503
    assert world.server.url("/good") in report["html"].error
    assert report["gone"].outcome == "gone"
    down = world.state.get_feed("down")
    assert down.next_poll_at >= world.clock.now + 120  # Retry-After honoured
    assert world.state.get_feed("gone").gone
    world.clock.now += 10_000
    due = [feed.name for feed in Poller(config, world.state, clock=world.clock).due_feeds()]
    assert "gone" not in due and "good" in due


def test_failing_feed_backs_off_exponentially_up_to_the_cap(world):
    world.server.error("/flaky", 500)
    config = world.config({"flaky": "/flaky"}, max_backoff="1h")
    delays = []
    for _ in range(6):
        world.poll(config, ["flaky"])
        row = world.state.get_feed("flaky")
        delays.append(row.next_poll_at - world.clock.now)
        world.clock.now = row.next_poll_at
    assert delays[1] > delays[0] * 1.5 and delays[2] > delays[1] * 1.5
    assert max(delays) <= 3600 * 1.1
    assert world.state.get_feed("flaky").error_count == 6
    # a feed failing for a year and more: thousands of failures in a row, and the delay is still the cap
    world.state.update_feed("flaky", error_count=5000)
    world.poll(config, ["flaky"])
    assert world.state.get_feed("flaky").next_poll_at - world.clock.now <= 3600 * 1.1


def test_moved_feed_is_polled_at_its_new_address(world):
    world.server.route("/new-home", rss(posts(2)))
    world.server.redirect("/feed", world.server.url("/new-home"), status=301)
    config = world.config({"blog": "/feed"})
    world.poll(config)
    assert world.state.get_feed("blog").url == world.server.url("/new-home")
    world.server.clear_log()
    world.poll(config, ["blog"])
    assert [record.path for record in world.server.requests] == ["/new-home"]


def test_a_servers_wait_hints_are_bounded_and_status_still_works(world):
    """Cache-Control max-age and Retry-After of absurd size (a 400-digit number is float inf) once put
    next_poll_at past what a date can hold: the feed was never polled again and `status` crashed."""
    from bridge.status import collect_status

    huge = "9" * 400
    world.server.route("/slow", rss(posts(1)), headers={"Cache-Control": f"max-age={huge}"})
    world.server.error("/busy", 429, retry_after=huge)
    config = world.config({"slow": "/slow", "busy": "/busy"})
    world.poll(config)
    week = 7 * 86400
    for name in ("slow", "busy"):
        assert world.state.get_feed(name).next_poll_at - world.clock.now <= week * 1.1
    report = collect_status(config, world.state, now=world.clock.now)
    assert {feed["name"]: feed["next_poll"] is not None for feed in report["feeds"]} == {"slow": True, "busy": True}
