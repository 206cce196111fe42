"""Filters and the per-post opt-out (bridge/filters.py, docs/filters.md): on the shared corpus of real feeds,
through a poll into state, and end to end through `bridge poll` on the Mastodon fake."""

from __future__ import annotations

import json

import pytest

from bridge.config import parse_config
from bridge.errors import ConfigError
from bridge.filters import EntryFilter
from bridge.pipeline import Poller
from bridge.state import State
from tests.mastodon_blog import BLOG, mastodon_blog
from tests.render_corpus import corpus_files, load_feed, requires_corpus
from tests.test_pipeline import Clock, posts, rss


def _config(feed_url: str, *, account: dict | None = None, feed: dict | None = None, overrides: dict | None = None,
            accounts=("masto",)):
    return parse_config({
        "bridge": {"interval": "10m"},
        "accounts": {name: {"type": "mastodon", "instance": "https://m.example", **(account or {})} for name in accounts},
        "feeds": [{"name": "blog", "url": feed_url, "accounts": list(accounts), **(feed or {}),
                   "overrides": overrides or {}}],
    })


# --- the corpus --------------------------------------------------------------------------------------------


@requires_corpus
def test_a_category_filter_on_a_real_multi_category_feed_keeps_exactly_that_category():
    feed = load_feed("django-simonwillison.atom")
    config = _config("https://simonwillison.net/atom/everything/", feed={"include_categories": ["Python"]})
    verdicts = {entry.key: config.entry_filter(config.feeds[0], "masto").rejects(entry) for entry in feed.entries}
    with_python = {entry.key for entry in feed.entries if "python" in entry.categories}
    assert 0 < len(with_python) < len(feed.entries)  # the feed mixes categories: the test can tell
    assert {key for key, reason in verdicts.items() if reason is None} == with_python
    for entry in feed.entries:
        if entry.key not in with_python:
            assert verdicts[entry.key] == "include_categories: the entry has none of 'Python'"

    excluding = _config("https://simonwillison.net/atom/everything/", feed={"exclude_categories": ["AI"]})
    kept = [entry for entry in feed.entries if excluding.entry_filter(excluding.feeds[0], "masto").rejects(entry) is None]
    assert kept and all("ai" not in entry.categories for entry in kept)
    assert len(kept) == sum(1 for entry in feed.entries if "ai" not in entry.categories)


@requires_corpus
def test_the_default_filter_keeps_every_entry_of_the_corpus_and_the_opt_out_removes_only_its_own():
    default = EntryFilter()
    seen = 0
    for name in corpus_files():
        feed = load_feed(name)
        for entry in feed.entries if feed else []:
            seen += 1
            assert default.rejects(entry) is None, (name, entry.key)
            marked = type(entry)(**{**vars(entry), "categories": [*entry.categories, "NoSyndicate"]})
            assert default.rejects(marked) == "opted out: the entry has the category 'nosyndicate'"
            assert EntryFilter(opt_out_category="").rejects(marked) is None
    assert seen > 1000


@requires_corpus
def test_entry_type_follows_the_renderers_choice_of_template():
    from bridge.config import PostSettings
    from bridge.render import RenderError, render_post

    settings = PostSettings(template="T", template_untitled="U", language=None, visibility="public", content_warning=None)
    articles_only = EntryFilter(entry_type="titled")
    counted = {"T": 0, "U": 0}
    for name in ("microblog-mjdescy.rss", "mastodon-chriscoyier.rss", "django-simonwillison.atom", "tumblr-sarahcandersen.rss"):
        if name not in corpus_files():
            continue
        for entry in load_feed(name).entries:
            try:
                template = render_post(entry, settings).template
            except RenderError:
                continue
            counted[template] += 1
            assert (articles_only.rejects(entry) is None) == (template == "T"), (name, entry.key)
    assert counted["T"] and counted["U"]  # both kinds were met


# --- the config ----------------------------------------------------------------------------------------------


def test_a_pattern_that_does_not_compile_is_refused_with_its_key():
    with pytest.raises(ConfigError) as info:
        _config("https://blog.example/feed", feed={"exclude_pattern": "(unclosed"})
    assert "exclude_pattern" in info.value.key and "regular expression" in str(info.value)


def test_the_override_wins_over_the_feed_which_wins_over_the_account():
    config = _config("https://blog.example/feed", accounts=("masto", "sky"), account={"exclude_categories": ["a"]},
                     feed={"exclude_categories": ["b"]}, overrides={"sky": {"exclude_categories": ["c"]}})
    assert config.entry_filter(config.feeds[0], "masto").exclude_categories == ("b",)
    assert config.entry_filter(config.feeds[0], "sky").exclude_categories == ("c",)


def test_patterns_match_the_title_or_the_text():
    from bridge.model import Entry

    entry = Entry(key="k", link="https://blog.example/p", title="Weeknotes 12",
                  content_html="<p>This post is <b>sponsored</b> by nobody.</p>")
    assert EntryFilter(exclude_pattern=r"(?i)\bsponsored\b").rejects(entry) == \
        "exclude_pattern '(?i)\\bsponsored\\b' matches the title or text"
    assert EntryFilter(include_pattern="^Weeknotes").rejects(entry) is None
    assert EntryFilter(include_pattern="^weeknotes").rejects(entry) is not None  # case-sensitive unless (?i)


# --- a poll into state ---------------------------------------------------------------------------------------


@pytest.fixture
def polled(tmp_path, feed_server):
    state = State.open(tmp_path / "state.sqlite3")
    clock = Clock()

    def poll(config):
        clock.now += 700
        return Poller(config, state, clock=clock).poll()

    yield feed_server, state, poll
    state.close()


def _with_categories(items, categories):
    return [{**item, "categories": cats} for item, cats in zip(items, categories)]


def test_entries_left_out_are_recorded_with_the_reason_and_a_config_change_does_not_bring_them_back(polled):
    server, state, poll = polled
    base = posts(2)
    server.route("/feed", rss(base))
    config = _config(server.url("/feed"), accounts=("masto", "sky"), feed={"exclude_categories": ["personal"]},
                     overrides={"sky": {"include_categories": ["tech"], "exclude_categories": []}})
    poll(config)  # the baseline
    new = _with_categories(posts(3, start=10), [["Tech"], ["personal", "tech"], ["NoSyndicate", "tech"]])
    server.route("/feed", rss(new + base))
    report = poll(config)
    assert report.feeds[0].new_entries == 3 and report.feeds[0].queued == 3 and report.feeds[0].filtered == 3
    rows = {(row.account, row.entry_key): row for row in state.deliveries()}
    assert rows[("masto", "guid-10")].state == "pending" and rows[("sky", "guid-10")].state == "pending"
    assert rows[("masto", "guid-11")].state == "filtered"
    assert rows[("masto", "guid-11")].last_error == "exclude_categories: the entry has the category 'personal'"
    assert rows[("sky", "guid-11")].state == "pending"  # its override replaces the feed's exclude list with []
    for account in ("masto", "sky"):
        assert rows[(account, "guid-12")].state == "filtered"
        assert rows[(account, "guid-12")].last_error == "opted out: the entry has the category 'nosyndicate'"

    relaxed = _config(server.url("/feed"), accounts=("masto", "sky"), feed={"opt_out_category": ""})
    server.route("/feed", rss(_with_categories(posts(1, start=20), [["tech"]]) + new + base))
    report = poll(relaxed)
    assert report.feeds[0].new_entries == 1 and report.feeds[0].queued == 2  # only the new one
    assert [row.state for row in state.deliveries() if row.entry_key == "guid-12"] == ["filtered", "filtered"]


def test_a_filtered_entry_does_not_block_the_same_link_from_another_feed(polled):
    server, state, poll = polled
    server.route("/a", rss([]))
    server.route("/b", rss([]))
    config = parse_config({
        "bridge": {"interval": "10m"},
        "accounts": {"masto": {"type": "mastodon", "instance": "https://m.example"}},
        "feeds": [{"name": "a", "url": server.url("/a"), "accounts": ["masto"], "include_categories": ["tech"]},
                  {"name": "b", "url": server.url("/b"), "accounts": ["masto"]}],
    })
    poll(config)
    server.route("/a", rss(posts(1, start=30)))
    poll(config)
    server.route("/b", rss(posts(1, start=30, guid_prefix="other-")))
    poll(config)
    assert sorted((row.feed, row.state) for row in state.deliveries()) == [("a", "filtered"), ("b", "pending")]


# --- end to end: `bridge poll` on the Mastodon fake ----------------------------------------------------------

@pytest.fixture
def blog(tmp_path, feed_server):
    with mastodon_blog(tmp_path, feed_server, "exclude_pattern = '(?i)\\bsponsored\\b'") as world:
        yield world.server, world.mastodon, world.bridge, world.state_path


def test_bridge_poll_posts_what_passes_and_says_what_was_left_out_and_why(blog):
    server, fake, bridge, state_path = blog
    server.route("/feed.xml", rss([]), content_type="application/rss+xml")
    assert bridge("poll").returncode == 0
    items = [{"guid": "g0", "link": f"{BLOG}/posts/0", "title": "Bridges of the Rhine"},
             {"guid": "g1", "link": f"{BLOG}/posts/1", "title": "Not for the timeline", "categories": ["nosyndicate"]},
             {"guid": "g2", "link": f"{BLOG}/posts/2", "title": "A word from our sponsor",
              "description": "&lt;p&gt;This post is Sponsored.&lt;/p&gt;"}]
    server.route("/feed.xml", rss(items, link=f"{BLOG}/"), content_type="application/rss+xml")

    dry = bridge("poll", "--dry-run", "--feed", "blog")
    assert dry.returncode == 0, dry.stderr
    assert "masto: 1 post(s) would be sent" in dry.stdout and "Bridges of the Rhine" in dry.stdout
    assert "masto: 2 new entries left out by filters" in dry.stdout
    assert "[blog] Not for the timeline: opted out: the entry has the category 'nosyndicate'" in dry.stdout
    assert "[blog] A word from our sponsor: exclude_pattern '(?i)\\bsponsored\\b' matches the title or text" in dry.stdout
    assert fake.statuses("alice") == []

    preview = bridge("preview", "--feed", "blog", "--json", "--no-fetch")
    assert preview.returncode == 0, preview.stderr
    shown = {item["entry"]: item for item in json.loads(preview.stdout)}
    assert shown["g0"]["payload"]["status"].startswith("Bridges of the Rhine")
    assert shown["g1"]["payload"] is None and shown["g1"]["filtered"].startswith("opted out")
    assert shown["g2"]["payload"] is None and shown["g2"]["filtered"].startswith("exclude_pattern")

    real = bridge("poll", "--feed", "blog")
    assert real.returncode == 0, real.stderr
    [status] = fake.statuses("alice")
    assert status["text"].startswith("Bridges of the Rhine")
    assert bridge("poll", "--feed", "blog").returncode == 0 and len(fake.statuses("alice")) == 1
    with State.open_readonly(state_path) as state:
        states = {row.entry_key: (row.state, row.last_error) for row in state.deliveries()}
    assert states["g1"] == ("filtered", "opted out: the entry has the category 'nosyndicate'")
    assert states["g2"][0] == "filtered"
    status_text = bridge("status").stdout
    assert "posted 1, queued 0, failed 0, left out by filters 2" in status_text
    assert json.loads(bridge("status", "--json").stdout)["accounts"][0]["filtered"] == 2


def test_backfill_leaves_out_what_the_filters_leave_out(polled):
    from bridge.backfill import plan_backfill

    server, state, poll = polled
    server.route("/feed", rss(_with_categories(posts(3), [["tech"], ["personal"], ["nosyndicate"]])))
    config = _config(server.url("/feed"), feed={"exclude_categories": ["personal"]})
    poll(config)  # all three are the baseline: only a backfill would post them
    planned = plan_backfill(config, state, config.feeds[0], now=0.0)
    assert [item.entry.key for item in planned] == ["guid-0"]
