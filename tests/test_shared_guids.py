"""One GUID given to two different posts in the same document (Scripting News does this) is two entries, and
they stay the same two across polls: when the other post arrives, and when it leaves the document."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from tests.render_corpus import load_feed, requires_corpus
from tests.test_pipeline import rss, world  # noqa: F401  (fixture)

NOW = datetime.now(timezone.utc)
EARLIER = {"guid": "https://blog.example/2024/06/24.html#a100632", "title": "Good morning",
           "link": "https://blog.example/2024/06/24.html#a100632", "date": NOW - timedelta(hours=3)}
LATER = {"guid": EARLIER["guid"], "title": "Republican-inspired art",
         "link": "https://blog.example/2024/06/24.html#a100633", "date": NOW - timedelta(hours=2)}
OTHER = {"guid": "https://blog.example/other", "title": "Another post", "link": "https://blog.example/other",
         "date": NOW - timedelta(days=1)}


def poll(world, items):  # noqa: F811
    world.server.route("/feed", rss(items))
    world.clock.now += 700
    return world.poll(world.config({"scripting": "/feed"})).feeds[0]


def test_two_posts_sharing_a_guid_are_both_posted_once(world):  # noqa: F811
    poll(world, [EARLIER, OTHER])  # baseline
    arrived = poll(world, [LATER, EARLIER, OTHER])
    assert (arrived.new_entries, arrived.queued, arrived.updated) == (1, 1, 0)
    [queued] = world.state.deliveries(account="masto")
    assert queued.link == LATER["link"]
    again = poll(world, [LATER, EARLIER, OTHER])
    assert (again.new_entries, again.queued, again.updated) == (0, 0, 0)
    left = poll(world, [LATER, OTHER])  # the earlier post scrolled off: the later one is still the same entry
    assert (left.new_entries, left.queued, left.updated) == (0, 0, 0)
    assert len(world.state.deliveries(account="masto")) == 1


def test_an_edited_post_under_its_guid_is_still_an_update(world):  # noqa: F811
    poll(world, [EARLIER, OTHER])
    edited = poll(world, [{**EARLIER, "title": "Good morning, Internet"}, OTHER])
    assert (edited.new_entries, edited.queued, edited.updated) == (0, 0, 1)


def test_a_verbatim_repeat_is_one_entry(world):  # noqa: F811
    first = poll(world, [EARLIER, EARLIER, OTHER])
    assert first.baseline == 2


@requires_corpus
def test_scriptingnews_posts_sharing_a_guid_are_all_read():
    feed = load_feed("scriptingnews-oldschool-untitled.rss")
    shared = [entry for entry in feed.entries if entry.key.startswith("http://scripting.com/2017/06/24.html#a100632")]
    assert [entry.title for entry in shared] == ["", "Republican-inspired art"]
    assert len({entry.key for entry in feed.entries}) == len(feed.entries) == 50
