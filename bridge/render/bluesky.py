"""Post -> Bluesky `app.bsky.feed.post` record (lexicon JSON). Pure: the thumbnail is fetched beforehand
and described here; the publisher uploads it and swaps the description for the blob.

    {"record": {"$type": "app.bsky.feed.post", "text": str,
                "facets": [{"index": {"byteStart": int, "byteEnd": int},
                            "features": [{"$type": "app.bsky.richtext.facet#link", "uri": str}
                                         | {"$type": "app.bsky.richtext.facet#tag", "tag": str}]}],
                "langs": [BCP-47, ...],
                "embed": {"$type": "app.bsky.embed.external",
                          "external": {"uri": str, "title": str, "description": str,
                                       "thumb": {"source_url", "size", "width", "height", "mime_type"}}}
                       | {"$type": "app.bsky.embed.images",
                          "images": [{"alt": str, "image": {"source_url": str}}, ...]},
                "createdAt": "2024-05-01T12:00:00.000Z"}}

A post has one embed: a photo post's pictures (at most 4, alt text at most 2000 graphemes; uploaded, and
recompressed to fit, by the publisher) replace the link card, and the permalink stays in the text as a link
facet. A card thumbnail smaller than MIN_IMAGE_WIDTH x MIN_IMAGE_HEIGHT is left out.

Bluesky has no content warning field: a content warning becomes the post's first line, "CW: …".
Visibility has no Bluesky equivalent (every post is public).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from bridge.config import PostSettings
from bridge.linkpreview.model import Thumbnail
from bridge.render import graphemes
from bridge.render.facets import facets
from bridge.render.fit import fit
from bridge.render.hashtags import TEXT_HASHTAG, is_valid_hashtag
from bridge.render.limits import (
    BLUESKY_ALT_MAX_GRAPHEMES,
    BLUESKY_EXTERNAL_TYPE,
    BLUESKY_IMAGES_TYPE,
    BLUESKY_MAX_IMAGES,
    BLUESKY_MAX_LANGS,
    BLUESKY_POST_TYPE,
    BLUESKY_THUMB_MAX_BYTES,
    BlueskyLimits,
)
from bridge.render.links import display_url, find_urls
from bridge.render.mastodon import post_parts
from bridge.render.photos import big_enough
from bridge.render.post import Post
from bridge.render.template import RichText, Segment

CONTENT_WARNING_PREFIX = "CW: "


@dataclass(frozen=True)
class BlueskyText:
    """How Bluesky shows and counts text (the fitter's Platform)."""

    limits: BlueskyLimits = BlueskyLimits()

    def url_segments(self, url: str) -> list[Segment]:
        return [Segment(display_url(url), link=url)]

    def text_segments(self, text: str) -> list[Segment]:
        """Plain text with its URLs as (shortened) links and its #hashtags as tags."""
        if not text:
            return []
        marks = [(start, end, "link") for start, end in find_urls(text)]
        for match in TEXT_HASHTAG.finditer(text):
            start, end = match.span()
            if is_valid_hashtag(match.group(1)) and not any(s < end and start < e for s, e, _ in marks):
                marks.append((start, end, "tag"))
        segments: list[Segment] = []
        position = 0
        for start, end, kind in sorted(marks):
            if start > position:
                segments.append(Segment(text[position:start]))
            piece = text[start:end]
            if kind == "link":
                segments.append(Segment(display_url(piece), link=piece))
            else:
                segments.append(Segment(piece, tag=piece[1:]))
            position = end
        if position < len(text):
            segments.append(Segment(text[position:]))
        return segments

    def fits(self, rich: RichText) -> bool:
        text = rich.text
        return graphemes.utf8_len(text) <= self.limits.max_bytes and graphemes.count(text) <= self.limits.max_graphemes


def rfc3339(moment: datetime) -> str:
    """A datetime as Bluesky's createdAt: UTC, milliseconds, "Z"."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    moment = moment.astimezone(timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def bluesky_payload(
    post: Post,
    settings: PostSettings,
    *,
    thumbnail: Thumbnail | None = None,
    created_at: str | datetime,
    limits: BlueskyLimits = BlueskyLimits(),
) -> dict:
    """The record for `post`. `created_at` is given (pure: no clock); a datetime is formatted RFC 3339 "Z"."""
    prefix = []
    if post.content_warning:
        prefix = [Segment(CONTENT_WARNING_PREFIX + post.content_warning), Segment("\n\n")]
    rich = fit(post.template, post_parts(post), BlueskyText(limits), prefix)
    record: dict = {
        "$type": BLUESKY_POST_TYPE,
        "text": rich.text,
        "facets": facets(rich),
        "langs": [post.language][:BLUESKY_MAX_LANGS] if post.language else [],
    }
    if post.images:
        record["embed"] = {"$type": BLUESKY_IMAGES_TYPE, "images": [
            {"alt": graphemes.truncate(image.alt, BLUESKY_ALT_MAX_GRAPHEMES), "image": {"source_url": image.url}}
            for image in post.images[:BLUESKY_MAX_IMAGES]]}
    elif post.card is not None:
        external: dict = {"uri": post.card.uri, "title": post.card.title, "description": post.card.description}
        if (thumbnail is not None and len(thumbnail.data) <= BLUESKY_THUMB_MAX_BYTES
                and big_enough(thumbnail.width, thumbnail.height)):
            external["thumb"] = thumbnail.describe()
        record["embed"] = {"$type": BLUESKY_EXTERNAL_TYPE, "external": external}
    record["createdAt"] = rfc3339(created_at) if isinstance(created_at, datetime) else created_at
    return {"record": record}
