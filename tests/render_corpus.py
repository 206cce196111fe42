"""The shared corpus of real feeds, for the render tests: used from where it lies (../shared/corpus/feeds),
never copied into the repo. Tests that need it skip with a clear message when it is absent.

Feeds are parsed with the project's own parser (bridge.feeds.parse_feed), as in production.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import pytest

from bridge.config import HashtagSettings, PostSettings, default_templates
from bridge.model import Entry, ParsedFeed
from bridge.render.post import Post

_SHARED = Path(os.environ.get("BRIDGE_SHARED") or Path(__file__).resolve().parent.parent.parent / "shared")
CORPUS_DIR = Path(os.environ.get("BRIDGE_CORPUS_DIR") or _SHARED / "corpus" / "feeds")
SKIP_REASON = (
    f"the shared feed corpus is absent ({CORPUS_DIR}); these tests read third-party feeds from ../shared/corpus/feeds "
    "(set BRIDGE_SHARED or BRIDGE_CORPUS_DIR to use another place)"
)
requires_corpus = pytest.mark.skipif(not (CORPUS_DIR / "MANIFEST.tsv").is_file(), reason=SKIP_REASON)


def corpus_available() -> bool:
    return (CORPUS_DIR / "MANIFEST.tsv").is_file()


def corpus_url(name: str) -> str:
    """The URL a corpus file is parsed as coming from (relative links resolve against it)."""
    return f"https://corpus.example/feeds/{name}"


@lru_cache(maxsize=None)
def manifest() -> dict[str, dict]:
    if not corpus_available():
        return {}
    with open(CORPUS_DIR / "MANIFEST.tsv", encoding="utf-8", newline="") as handle:
        return {row["file"]: row for row in csv.DictReader(handle, delimiter="\t")}


def corpus_files() -> list[str]:
    """Every feed file of the corpus, by name (empty when the corpus is absent)."""
    return sorted(manifest())


@lru_cache(maxsize=None)
def load_feed(name: str, default_language: str | None = None) -> ParsedFeed | None:
    """The parsed feed, or None when the parser finds nothing usable in it (the corpus has such documents).
    `default_language` is the `[bridge] language` setting, which the parser applies as production does."""
    from bridge.errors import FeedError
    from bridge.feeds import parse_feed

    try:
        return parse_feed((CORPUS_DIR / name).read_bytes(), corpus_url(name), default_language=default_language)
    except FeedError:
        return None


def load_entry(name: str, index: int) -> tuple[ParsedFeed, Entry]:
    feed = load_feed(name)
    if feed is None or index >= len(feed.entries):
        pytest.fail(f"{name} has no entry #{index} any more (the parser or the corpus changed)")
    return feed, feed.entries[index]


def settings(platform: str = "mastodon", **overrides) -> PostSettings:
    """Post settings as a fresh config gives them to an account on `platform`, with `overrides`."""
    titled, untitled = default_templates(platform)
    values = dict(
        template=titled,
        template_untitled=untitled,
        language=None,
        visibility="public",
        content_warning=None,
        hashtags=HashtagSettings(),
        rules=(),
    )
    values.update(overrides)
    return PostSettings(**values)


@dataclass(frozen=True)
class RenderedEntry:
    """One corpus entry rendered with fresh-config settings: the post and both platforms' texts."""

    where: str  # "file entry #n (key)", for assertion messages
    entry: Entry
    post: Post
    mastodon_status: str
    bluesky_text: str


@lru_cache(maxsize=1)
def rendered_corpus() -> tuple[RenderedEntry, ...]:
    """Every renderable corpus entry, rendered once per test session (corpus-wide assertions share it)."""
    from bridge.platforms.bluesky.payload import bluesky_payload
    from bridge.platforms.mastodon.payload import mastodon_payload
    from bridge.render import RenderError, render_post

    chosen, chosen_bluesky = settings(), settings("bluesky")
    rendered = []
    for name in corpus_files():
        feed = load_feed(name)
        for index, entry in enumerate(feed.entries if feed else ()):
            try:
                post = render_post(entry, chosen, feed_title=feed.title)
            except RenderError:
                continue  # an entry without an http(s) link: test_render_corpus checks that case
            bluesky_post = render_post(entry, chosen_bluesky, feed_title=feed.title)
            record = bluesky_payload(bluesky_post, chosen_bluesky, created_at="2024-01-01T00:00:00.000Z")["record"]
            rendered.append(
                RenderedEntry(
                    f"{name} entry #{index} ({entry.key})", entry, post,
                    mastodon_payload(post, chosen)["status"], record["text"],
                )  # fmt: skip
            )
    return tuple(rendered)


def bluesky_settings(**overrides) -> PostSettings:
    return settings("bluesky", **overrides)
