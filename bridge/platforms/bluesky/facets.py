"""Bluesky rich-text facets: UTF-8 byte ranges (byteStart inclusive, byteEnd exclusive) over the post text.

Facets come from where the link and hashtag segments land in the rendered rich text — never from searching
the finished text — so a shortened link display still carries its full URI.
"""

from __future__ import annotations

from bridge.platforms.bluesky.limits import BLUESKY_LINK_FEATURE, BLUESKY_TAG_FEATURE
from bridge.render.template import RichText


def facets(rich: RichText) -> list[dict]:
    """`app.bsky.richtext.facet` objects for every link and tag segment, in text order, never overlapping."""
    out: list[dict] = []
    byte_position = 0
    for segment in rich.segments:
        size = len(segment.text.encode("utf-8"))
        if segment.link:
            feature = {"$type": BLUESKY_LINK_FEATURE, "uri": segment.link}
        elif segment.tag:
            feature = {"$type": BLUESKY_TAG_FEATURE, "tag": segment.tag}
        else:
            feature = None
        if feature is not None and size:
            out.append({"index": {"byteStart": byte_position, "byteEnd": byte_position + size}, "features": [feature]})
        byte_position += size
    return out
