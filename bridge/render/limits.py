"""Platform limits, named, each with where it comes from (see docs platform-rules.md).

Nothing else in bridge.render writes a platform number inline.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

# --- Mastodon (mastodon/mastodon app/validators/status_length_validator.rb, /api/v2/instance) -------------
MASTODON_DEFAULT_MAX_CHARACTERS = 500  # configuration.statuses.max_characters upstream
MASTODON_DEFAULT_CHARACTERS_PER_URL = 23  # configuration.statuses.characters_reserved_per_url
MASTODON_DEFAULT_MAX_MEDIA = 4  # configuration.statuses.max_media_attachments
MASTODON_DEFAULT_DESCRIPTION_LIMIT = 1500  # configuration.media_attachments.description_limit (older servers)
MASTODON_VISIBILITIES = ("public", "unlisted", "private", "direct")  # from most to least visible
# How a server counts a status (bridge/targets/mastodon_servers.py says which server counts which way):
COUNT_GRAPHEMES = "graphemes"  # Mastodon, Akkoma: extended grapheme clusters
COUNT_CODEPOINTS = "codepoints"  # GoToSocial, Takahē...: len() of the text
COUNT_UTF16 = "utf16"  # Iceshrimp.NET: UTF-16 code units (an emoji outside the BMP counts 2); never fewer
COUNTINGS = (COUNT_GRAPHEMES, COUNT_CODEPOINTS, COUNT_UTF16)  # from the most lenient to the strictest

# --- Bluesky (bluesky-social/atproto lexicons/app/bsky/feed/post.json, richtext/facet.json, embed) --------
BLUESKY_MAX_GRAPHEMES = 300  # app.bsky.feed.post#text maxGraphemes
BLUESKY_MAX_BYTES = 3000  # app.bsky.feed.post#text maxLength (UTF-8 bytes)
BLUESKY_MAX_LANGS = 3  # app.bsky.feed.post#langs maxLength
BLUESKY_TAG_MAX_GRAPHEMES = 64  # app.bsky.richtext.facet#tag maxGraphemes
BLUESKY_TAG_MAX_BYTES = 640  # app.bsky.richtext.facet#tag maxLength
BLUESKY_THUMB_MAX_BYTES = 1_000_000  # app.bsky.embed.external#external thumb maxSize
BLUESKY_POST_TYPE = "app.bsky.feed.post"
BLUESKY_IMAGES_TYPE = "app.bsky.embed.images"
BLUESKY_MAX_IMAGES = 4  # app.bsky.embed.images#main images maxLength
BLUESKY_ALT_MAX_GRAPHEMES = 2000  # the Bluesky app's limit on alt text (the lexicon sets none)
BLUESKY_EXTERNAL_TYPE = "app.bsky.embed.external"
BLUESKY_LINK_FEATURE = "app.bsky.richtext.facet#link"
BLUESKY_TAG_FEATURE = "app.bsky.richtext.facet#tag"

# --- Our own choices (not platform rules) -----------------------------------------------------------------
# How much of a link's path Bluesky shows: all of it up to BLUESKY_LINK_PATH_FULL characters, else the first
# BLUESKY_LINK_PATH_DISPLAY and "…" (the link facet still carries the whole URI). The Bluesky app itself
# shows the host and about a dozen characters of the path.
BLUESKY_LINK_PATH_FULL = 24
BLUESKY_LINK_PATH_DISPLAY = 20
# The card's description: the lexicon sets no limit, the app shows about three lines.
CARD_DESCRIPTION_MAX_GRAPHEMES = 300
CARD_TITLE_MAX_GRAPHEMES = 300
# Our choice: a card image smaller than this (a logo, an icon, a 1x1 spacer that slipped through) looks broken
# when stretched over a card; the card goes out without one. Also the least a photo must be to be attached.
MIN_IMAGE_WIDTH = 200
MIN_IMAGE_HEIGHT = 100
# After a server refused a post as too long although it was rendered by the server's own counting: the one
# re-render counts the strictest way (UTF-16 units, never fewer than code points), URLs in full, and keeps
# this many characters below the limit.
MASTODON_STRICT_MARGIN = 10


@dataclass(frozen=True)
class MastodonLimits:
    """What one Mastodon-API server allows, and how it counts; the defaults are upstream Mastodon's."""

    max_characters: int = MASTODON_DEFAULT_MAX_CHARACTERS
    characters_reserved_per_url: int = MASTODON_DEFAULT_CHARACTERS_PER_URL
    max_media_attachments: int = MASTODON_DEFAULT_MAX_MEDIA
    description_limit: int = MASTODON_DEFAULT_DESCRIPTION_LIMIT
    counting: str = COUNT_GRAPHEMES  # one of COUNTINGS
    urls_in_full: bool = False  # True: links (and mentions) count as written, never less than the URL reserve

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> "MastodonLimits":
        """From the limits dict a Mastodon target caches (keys named like the fields; others ignored)."""
        data = data if isinstance(data, dict) else {}
        defaults = cls()
        values: dict[str, Any] = {}
        for name in ("max_characters", "characters_reserved_per_url", "max_media_attachments", "description_limit"):
            value = data.get(name)
            ok = isinstance(value, int) and not isinstance(value, bool) and value > 0
            values[name] = value if ok else getattr(defaults, name)
        counting = data.get("counting")
        if counting is None:
            values["counting"] = defaults.counting
        else:  # a way of counting we do not know: the strictest
            values["counting"] = counting if counting in COUNTINGS else COUNTINGS[-1]
        urls_in_full = data.get("urls_in_full")
        values["urls_in_full"] = urls_in_full if isinstance(urls_in_full, bool) else defaults.urls_in_full
        return cls(**values)

    def strictest(self) -> "MastodonLimits":
        """The same limits counted the way no server counts longer: UTF-16 units, URLs in full, a margin."""
        return replace(self, counting=COUNTINGS[-1], urls_in_full=True,
                       max_characters=max(1, self.max_characters - MASTODON_STRICT_MARGIN))

    @classmethod
    def from_instance(cls, instance: dict[str, Any]) -> "MastodonLimits":
        """Read the limits from a `GET /api/v2/instance` answer (missing or odd values fall back to defaults)."""
        configuration = instance.get("configuration") if isinstance(instance, dict) else None
        configuration = configuration if isinstance(configuration, dict) else {}
        statuses = configuration.get("statuses") if isinstance(configuration.get("statuses"), dict) else {}
        media = configuration.get("media_attachments") if isinstance(configuration.get("media_attachments"), dict) else {}

        def positive(value: Any, default: int) -> int:
            return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else default

        return cls(
            max_characters=positive(statuses.get("max_characters"), MASTODON_DEFAULT_MAX_CHARACTERS),
            characters_reserved_per_url=positive(
                statuses.get("characters_reserved_per_url"), MASTODON_DEFAULT_CHARACTERS_PER_URL
            ),
            max_media_attachments=positive(statuses.get("max_media_attachments"), MASTODON_DEFAULT_MAX_MEDIA),
            description_limit=positive(media.get("description_limit"), MASTODON_DEFAULT_DESCRIPTION_LIMIT),
        )


@dataclass(frozen=True)
class BlueskyLimits:
    """Bluesky's text limits; a parameter only so tests can shrink them."""

    max_graphemes: int = BLUESKY_MAX_GRAPHEMES
    max_bytes: int = BLUESKY_MAX_BYTES
