"""Hashtags from categories (bridge.render.hashtags)."""

from __future__ import annotations

import json

import pytest

from bridge.compose import Composer
from bridge.config import HashtagSettings
from bridge.feeds import parse_feed
from bridge.feeds.feedwide import mark_feed_wide_categories
from bridge.model import Entry
from bridge.feeds.prepare import entry_content_hash
from bridge.pipeline import reads_differently
from bridge.platforms.mastodon.payload import mastodon_payload
from bridge.render import render_post
from bridge.render.hashtags import category_hashtags, is_valid_hashtag, split_tag_block, to_hashtag

from tests.render_corpus import settings as corpus_settings
from tests.test_pipeline import posts, rss, world  # noqa: F401  (world is a fixture)


@pytest.mark.parametrize(
    "category, tag",
    [
        ("python", "python"),
        ("machine learning", "MachineLearning"),
        ("urban-gardening", "UrbanGardening"),
        ("Marketing & Communications", "MarketingCommunications"),
        ("St Valentine's Day", "StValentinesDay"),
        ("Technology/Open Source", "OpenSource"),
        ("ORM (Object-Relational Mapping)", "ORM"),
        ("#codenewbies", "codenewbies"),
        ("iOS development", "iOSDevelopment"),
        ("Économie sociale", "ÉconomieSociale"),
        ("技術", "技術"),
        ("adwords_api", "adwords_api"),
        ("C4 Model", "C4Model"),
        ("Node.js", "NodeJs"),
    ],
)
def test_to_hashtag(category, tag):
    assert to_hashtag(category) == tag
    assert is_valid_hashtag(tag)


@pytest.mark.parametrize(
    "category",
    ["2018", "", "   ", "x", "https://schemas.google.com/blogger/2008/kind#post", "how to read a science paper", "!!!"],
)
def test_poor_categories_make_no_tag(category):
    assert to_hashtag(category) is None


@pytest.mark.parametrize("tag", ["", "123", "has space", "dash-ed", "dot.ted", "a" * 65, "#hash"])
def test_invalid_hashtags(tag):
    assert not is_valid_hashtag(tag)


def test_dedup_case_insensitive_max_and_order():
    categories = ["Sarah Andersen", "sarah andersen", "LOL", "comics", "extra"]
    assert category_hashtags(categories, HashtagSettings(max=3)) == ["SarahAndersen", "LOL", "comics"]


def test_comma_joined_categories_are_split():
    assert category_hashtags(["life, writing"], HashtagSettings()) == ["life", "writing"]


def test_rename_and_ignore():
    settings = HashtagSettings(max=5, rename={"Machine Learning": "#ML", "Python 3": "Python"}, ignore=["News", "#misc"])
    categories = ["news", "machine learning", "python 3", "Python", "misc", "Rust"]
    assert category_hashtags(categories, settings) == ["ML", "Python", "Rust"]


def test_disabled_or_zero_gives_none():
    assert category_hashtags(["a1", "b2"], HashtagSettings(enabled=False)) == []
    assert category_hashtags(["a1", "b2"], HashtagSettings(max=0)) == []


def test_placeholder_category_ignored():
    assert category_hashtags(["Uncategorized", "Allgemein", "Real"], HashtagSettings()) == ["Real"]


# --- hashtags that mean something (issue 15) -------------------------------------------------------------------


@pytest.mark.parametrize(
    "category",
    ["News", "blog", "Blog Posts", "Podcast", "Episode", "Videos", "shorts", "Uncategorized", "misc", "Nachrichten",
     "Unkategorisiert", "Actualités", "Non classé", "Noticias", "Sin categoría", "Notícias", "Sem categoria",
     "Notizie", "Nieuws", "Новости", "ニュース", "日記", "新闻", "未分类", "Category/News"],
)  # fmt: skip
def test_generic_categories_make_no_tag(category):
    assert to_hashtag(category) is None
    assert category_hashtags([category, "Gardening"], HashtagSettings()) == ["Gardening"]


def test_tags_over_25_characters_are_dropped_25_kept():
    assert to_hashtag("Software Architecture Documentation") is None  # 33
    assert to_hashtag("American Sources Association") is None  # 26
    assert to_hashtag("Object Oriented Programming") == "ObjectOrientedProgramming"  # 25


@pytest.mark.parametrize("category", ["adwords_MutateJobService", "adwords_BatchJobService", "adwords_api_v201509", "v201605"])
def test_code_identifiers_make_no_tag(category):
    assert to_hashtag(category) is None


@pytest.mark.parametrize("category, tag", [("adwords_api", "adwords_api"), ("html5", "html5"), ("PS3", "PS3"), ("Web3", "Web3")])
def test_words_with_digits_or_underscores_stay(category, tag):
    assert to_hashtag(category) == tag


def test_feed_wide_categories_are_dropped_whatever_their_spelling():
    categories = ["Giant Bomb", "video games", "Mario Kart"]
    assert category_hashtags(categories, HashtagSettings(), feed_wide=["giant bomb", "Video Games"]) == ["MarioKart"]
    # the same tag reached from another spelling of a feed-wide category
    assert category_hashtags(["GiantBomb", "Zelda"], HashtagSettings(), feed_wide=["Giant Bomb"]) == ["Zelda"]


def test_rename_wins_over_every_rule():
    settings = HashtagSettings(
        max=10,
        rename={"News": "News", "adwords_MutateJobService": "MutateJobService",
                "Software Architecture Documentation": "Software Architecture Documentation", "Giant Bomb": "GB"},
    )  # fmt: skip
    categories = ["News", "adwords_MutateJobService", "Software Architecture Documentation", "Giant Bomb"]
    assert category_hashtags(categories, settings, feed_wide=["Giant Bomb", "News"]) == [
        "News", "MutateJobService", "SoftwareArchitectureDocumentation", "GB"
    ]  # fmt: skip


def test_ignore_wins_over_rename_and_text_tags():
    settings = HashtagSettings(rename={"python": "Python3"}, ignore=["python", "#shorts", "investing"])
    assert category_hashtags(["python", "rust"], settings, text_tags=["investing", "bonds"]) == ["rust", "bonds"]


@pytest.mark.parametrize(
    "text, rest, tags",
    [
        ("Buffett proved it. #shorts #investing #bonds", "Buffett proved it.", ["shorts", "investing", "bonds"]),
        ("too close to call #predictionmarkets #polymarket #wisdomofcrowds", "too close to call",
         ["predictionmarkets", "polymarket", "wisdomofcrowds"]),
        ("A paragraph.\n\n#python #rust\n", "A paragraph.", ["python", "rust"]),
        ("Shipped 🚀\n#release", "Shipped 🚀", ["release"]),
        ("#only #tags", "", ["only", "tags"]),
        ("Did you see that wolf?! #skate4", "Did you see that wolf?! #skate4", []),
        ("Posted as is. #microblog #life", "Posted as is. #microblog #life", []),
        ("I love #python", "I love #python", []),
        ("Read #python and #rust", "Read #python and #rust", []),
        ("• Follow-up\n• #askatp", "• Follow-up\n• #askatp", []),
        ('"Interview" #18', '"Interview" #18', []),
        ("No tags at all.", "No tags at all.", []),
    ],
)  # fmt: skip
def test_a_closing_block_of_tags_leaves_the_text(text, rest, tags):
    assert split_tag_block(text) == (rest, tags)


def test_text_tags_come_after_categories_under_the_same_rules_and_cap():
    tags = ["shorts", "warrenbuffett", "investing", "stockmarket", "wallstreet", "financialeducation"]
    assert category_hashtags(["Finance"], HashtagSettings(), text_tags=tags) == ["Finance", "warrenbuffett", "investing"]
    assert len(category_hashtags([], HashtagSettings(max=5), text_tags=tags)) == 5  # a set max wins


def test_a_post_moves_its_closing_tags_to_its_hashtags():
    entry = Entry(
        key="k", link="https://video.example/1", title="Warren Buffett's bet",
        summary_html="<p>Doing nothing beats Wall Street. #shorts #warrenbuffett #investing #stockmarket #wallstreet</p>",
    )  # fmt: skip
    post = render_post(entry, corpus_settings())
    assert post.summary == "Doing nothing beats Wall Street."
    assert post.hashtags == ("warrenbuffett", "investing", "stockmarket")
    status = mastodon_payload(post, corpus_settings())["status"]
    assert status.count("#") == 3 and "#shorts" not in status


def _entries(categories_per_entry: list[list[str]]) -> list[Entry]:
    return [Entry(key=f"k{n}", link=f"https://b.example/{n}", categories=list(c)) for n, c in enumerate(categories_per_entry)]


def test_feed_wide_means_four_in_five_of_at_least_five_entries():
    entries = _entries([["Blog", "a"], ["blog", "b"], ["BLOG"], ["Blog", "c"], ["d"]])
    mark_feed_wide_categories(entries)
    assert [entry.feed_wide_categories for entry in entries] == [["Blog"], ["blog"], ["BLOG"], ["Blog"], []]
    three_of_five = _entries([["x"], ["x"], ["x"], ["y"], ["y"]])
    mark_feed_wide_categories(three_of_five)
    assert all(entry.feed_wide_categories == [] for entry in three_of_five)
    four_of_four = _entries([["x"]] * 4)  # too few entries to say what the feed is about
    mark_feed_wide_categories(four_of_four)
    assert all(entry.feed_wide_categories == [] for entry in four_of_four)


def test_parsed_entries_carry_their_feed_wide_categories_into_the_state():
    items = [dict(item, categories=["Our Podcast", f"topic{n}"]) for n, item in enumerate(posts(6))]
    feed = parse_feed(rss(items).encode(), "https://blog.example/feed")
    entry = feed.entries[0]
    assert entry.feed_wide_categories == ["Our Podcast"]
    stored = Entry.from_dict(json.loads(json.dumps(entry.to_dict())))
    assert stored.feed_wide_categories == ["Our Podcast"]
    assert render_post(stored, corpus_settings()).hashtags == ("topic0",)
    # Which categories are feed-wide is not the entry's text: it changing causes no "updated" entry, no edit.
    changed = Entry.from_dict({**entry.to_dict(), "feed_wide_categories": []})
    assert entry_content_hash(changed) == entry_content_hash(entry) and not reads_differently(entry, changed)


def test_a_queued_post_keeps_the_tags_it_was_recorded_with(world):
    """The feed-wide knowledge is stored with the entry: a later document that no longer repeats the category
    does not change the post queued earlier (a retry sends the same post)."""
    items = [dict(item, categories=["Our Podcast", "Season 2"]) for item in posts(6)]
    world.server.route("/feed", rss(items), etag='"v1"')
    config = world.config({"pod": "/feed"})
    world.poll(config)
    fresh = dict(posts(1, start=6)[0], categories=["Our Podcast", "Interviews"])
    world.server.route("/feed", rss([fresh, *items]), etag='"v2"')
    world.clock.now += 700
    world.poll(config)
    (delivery,) = world.state.deliveries(account="masto")
    composer = Composer(config, world.state, fetch_previews=False)
    feed_name, entry, _ = world.state.get_entry(delivery.entry_id)
    first = composer.compose(entry, composer.settings_for(feed_name, "masto")[1], "mastodon")
    assert "#Interviews" in first["status"] and "#OurPodcast" not in first["status"]
    world.server.route("/feed", rss([fresh]), etag='"v3"')  # one entry: nothing is feed-wide in it any more
    world.clock.now += 700
    world.poll(config)
    _, entry, _ = world.state.get_entry(delivery.entry_id)
    assert composer.compose(entry, composer.settings_for(feed_name, "masto")[1], "mastodon") == first
    composer.close()
