"""Mastodon-API servers' limits, named, each with where it comes from (see docs platform-rules.md), and how one
server's limits are read from its instance document.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

# --- Mastodon (mastodon/mastodon app/validators/status_length_validator.rb, /api/v2/instance) -------------
MASTODON_DEFAULT_MAX_CHARACTERS = 500  # configuration.statuses.max_characters upstream
MASTODON_DEFAULT_CHARACTERS_PER_URL = 23  # configuration.statuses.characters_reserved_per_url
MASTODON_DEFAULT_MAX_MEDIA = 4  # configuration.statuses.max_media_attachments
MASTODON_DEFAULT_DESCRIPTION_LIMIT = 1500  # configuration.media_attachments.description_limit (older servers)
# How a server counts a status (bridge/platforms/mastodon/servers.py says which server counts which way):
COUNT_GRAPHEMES = "graphemes"  # Mastodon, Akkoma: extended grapheme clusters
COUNT_CODEPOINTS = "codepoints"  # GoToSocial, Takahē...: len() of the text
COUNT_UTF16 = "utf16"  # Iceshrimp.NET: UTF-16 code units (an emoji outside the BMP counts 2); never fewer
COUNTINGS = (COUNT_GRAPHEMES, COUNT_CODEPOINTS, COUNT_UTF16)  # from the most lenient to the strictest

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
