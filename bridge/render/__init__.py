"""Render an entry into the best post each platform allows. Pure: no clock, no network, no files.

    render_post(entry, settings, *, feed_title="", preview=None) -> Post          (platform-neutral)

then each platform makes its payload of the Post (Platform.payload, bridge/platforms/base.py), fitting the text
with the shared fitter (bridge.render.fit) told how that platform counts and shows text:

    bridge.platforms.mastodon.payload.mastodon_payload(post, settings, limits=MastodonLimits()) -> dict
    bridge.platforms.bluesky.payload.bluesky_payload(post, settings, *, thumbnail=None, created_at) -> dict

Network-derived inputs — the article's OpenGraph data (LinkPreview) and the card image (Thumbnail) — come
from bridge.linkpreview, fetched before rendering.

The payloads (also the `bridge preview --json` format, one object per entry and account:
`{"feed", "entry", "link", "account", "platform", "payload"}`):

Mastodon — the status parameters:

    {
      "status": "Title\\n\\nSummary…\\n\\nhttps://example.com/post\\n\\n#Tag #OtherTag",
      "spoiler_text": "",                  # the content warning, "" for none
      "visibility": "public",              # public | unlisted | private | direct
      "language": "en",                    # ISO 639-1, or null when unknown
      "media": []                          # [{"url": image URL, "description": alt text}]: a photo
                                           # post's pictures (images = "auto"), any image (images = "attach")
    }

Bluesky — the app.bsky.feed.post record, as lexicon JSON:

    {
      "record": {
        "$type": "app.bsky.feed.post",
        "text": "Title\\n\\n#Tag",            # Bluesky's default template: the card is the link
        "facets": [                        # UTF-8 byte offsets; byteStart inclusive, byteEnd exclusive
          {"index": {"byteStart": 7, "byteEnd": 11},
           "features": [{"$type": "app.bsky.richtext.facet#tag", "tag": "Tag"}]}
        ],                                 # with {url} in the template: a #link facet on the shortened URL
        "langs": ["en-US"],                # BCP-47, at most 3; [] when unknown
        "embed": {
          "$type": "app.bsky.embed.external",
          "external": {
            "uri": "https://example.com/2024/05/a-long-post",
            "title": "Title",
            "description": "The article's description",
            "thumb": {                     # present only with a thumbnail; not uploaded yet
              "source_url": "https://example.com/cover.jpg",
              "size": 48213, "width": 1200, "height": 630, "mime_type": "image/jpeg"
            }
          }
        },
        "createdAt": "2024-05-01T12:00:00.000Z"
      }
    }

Limits: Mastodon counts spoiler_text + status in grapheme clusters, each http(s) URL as the instance's
characters_reserved_per_url (23), `@user@domain` as `@user`, up to max_characters (500 unless the instance
says otherwise). Bluesky: at most 300 grapheme clusters and 3000 UTF-8 bytes; URLs count in full, so long
ones are shown shortened (host + start of path + "…") while the link facet carries the full URI.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

from bridge.linkpreview.model import LinkPreview, Thumbnail

if TYPE_CHECKING:
    from bridge.render.fit import RenderError
    from bridge.render.post import Card, Post, PostImage, render_post

REPLIES = "thread"  # a payload's key for a long note's replies after its first part (bridge/render/longnote.py)

_HOMES = {"RenderError": "fit", "Card": "post", "Post": "post", "PostImage": "post", "render_post": "post"}


def __getattr__(name: str):
    # The HTML converters (bs4, markdownify) and the fitter load when something renders: a platform's limits
    # (bridge.render.limits, read with the config) and a pass with nothing to post never need them.
    if name in _HOMES:
        return getattr(import_module(f"{__name__}.{_HOMES[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "Card",
    "LinkPreview",
    "Post",
    "PostImage",
    "RenderError",
    "Thumbnail",
    "render_post",
]
