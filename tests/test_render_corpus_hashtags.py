"""Corpus-wide: every post's hashtags say something about that post (issue 15, "hashtags that mean something").

Checked independently of bridge.render.hashtags' own tables: a feed-wide category is recomputed here from the
document's raw categories (on at least 80% of a feed's entries, 5 or more), and the generic words are the ones
the issue names, in the corpus' main languages.
"""

from __future__ import annotations

from collections import Counter

import pytest
import regex

from bridge.render import RenderError, render_post

from tests.render_corpus import corpus_files, load_feed, requires_corpus, settings

pytestmark = requires_corpus

GENERIC = {
    "news", "blog", "blogs", "podcast", "podcasts", "uncategorized", "general", "misc", "post", "posts", "article",
    "articles", "video", "videos", "episode", "episodes", "update", "updates", "nachrichten", "allgemein",
    "actualités", "noticias", "notícias", "notizie", "nieuws", "ニュース", "新闻", "未分类",
}  # fmt: skip
DEFAULT_MAX = 3
TEXT_TAG = regex.compile(r"(?:^|\s)#[\p{L}\p{M}\p{Nd}_]*\p{L}[\p{L}\p{M}\p{Nd}_]*")
CLOSING_TAG_BLOCK = regex.compile(r"(?:\s*#[\p{L}\p{M}\p{Nd}_]*\p{L}[\p{L}\p{M}\p{Nd}_]*){3}\s*$")


def key(text: str) -> str:
    return regex.sub(r"[\W_]+", "", text.casefold())


def feed_wide(entries) -> set[str]:
    if len(entries) < 5:
        return set()
    counts = Counter(name for entry in entries for name in {key(category) for category in entry.categories})
    return {name for name, count in counts.items() if count >= 0.8 * len(entries)}


@pytest.mark.parametrize("name", corpus_files() or ["(no corpus)"])
def test_no_feed_wide_generic_long_or_surplus_hashtags(name):
    feed = load_feed(name)
    if feed is None:
        return  # documents that do not parse are test_render_corpus' business
    everywhere = feed_wide(feed.entries)
    post_settings = settings()
    for index, entry in enumerate(feed.entries):
        where = f"{name} entry #{index}"
        try:
            post = render_post(entry, post_settings, feed_title=feed.title)
        except RenderError:
            continue
        assert len(post.hashtags) <= DEFAULT_MAX, where
        for tag in post.hashtags:
            assert key(tag) not in everywhere, f"{where}: #{tag} is on nearly every entry of the feed"
            assert tag.casefold() not in GENERIC, f"{where}: #{tag} is a generic tag"
            assert len(regex.findall(r"\X", tag)) <= 25, f"{where}: #{tag} is too long"
            assert not ("_" in tag and any(ch.isupper() for ch in tag)), f"{where}: #{tag} is a code identifier"
        assert not CLOSING_TAG_BLOCK.search(post.summary), f"{where}: the text still ends in a block of tags"
