"""Bluesky's limits and lexicon names, each with where it comes from (see docs platform-rules.md)."""

from __future__ import annotations

from dataclasses import dataclass

from bridge.render.limits import CARD_THUMB_MAX_BYTES as BLUESKY_THUMB_MAX_BYTES  # noqa: F401 - the tightest card limit

# --- Bluesky (bluesky-social/atproto lexicons/app/bsky/feed/post.json, richtext/facet.json, embed) --------
BLUESKY_MAX_GRAPHEMES = 300  # app.bsky.feed.post#text maxGraphemes
BLUESKY_MAX_BYTES = 3000  # app.bsky.feed.post#text maxLength (UTF-8 bytes)
BLUESKY_MAX_LANGS = 3  # app.bsky.feed.post#langs maxLength
BLUESKY_POST_TYPE = "app.bsky.feed.post"
BLUESKY_IMAGES_TYPE = "app.bsky.embed.images"
BLUESKY_MAX_IMAGES = 4  # app.bsky.embed.images#main images maxLength
BLUESKY_ALT_MAX_GRAPHEMES = 2000  # the Bluesky app's limit on alt text (the lexicon sets none)
BLUESKY_EXTERNAL_TYPE = "app.bsky.embed.external"
BLUESKY_LINK_FEATURE = "app.bsky.richtext.facet#link"
BLUESKY_TAG_FEATURE = "app.bsky.richtext.facet#tag"

# Our choice: how much of a link's path Bluesky shows: all of it up to BLUESKY_LINK_PATH_FULL characters, else the first
# BLUESKY_LINK_PATH_DISPLAY and "…" (the link facet still carries the whole URI). The Bluesky app itself
# shows the host and about a dozen characters of the path.
BLUESKY_LINK_PATH_FULL = 24
BLUESKY_LINK_PATH_DISPLAY = 20


@dataclass(frozen=True)
class BlueskyLimits:
    """Bluesky's text limits; a parameter only so tests can shrink them."""

    max_graphemes: int = BLUESKY_MAX_GRAPHEMES
    max_bytes: int = BLUESKY_MAX_BYTES
