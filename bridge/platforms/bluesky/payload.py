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

Text and card each do their own job: the card (title, description, image) is the link, so Bluesky's default
templates (DEFAULT_TEMPLATES in bridge/platforms/bluesky/__init__.py) leave {url} out and a titled post's text is its title, an untitled
one's its own text; the card leaves out a description the text already gives. A template with {url} puts the
link in the text too; a post without a card always has it there.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone

from bridge.config import PostSettings
from bridge.linkpreview.model import Thumbnail
from bridge.render import graphemes
from bridge.render.fit import PERMALINK_MARK, fit, template_fields
from bridge.render.hashtags import TEXT_HASHTAG, is_valid_hashtag
from bridge.platforms.base import PayloadInputs
from bridge.platforms.bluesky.facets import facets
from bridge.platforms.bluesky.limits import (
    BLUESKY_ALT_MAX_GRAPHEMES,
    BLUESKY_EXTERNAL_TYPE,
    BLUESKY_IMAGES_TYPE,
    BLUESKY_MAX_BYTES,
    BLUESKY_MAX_GRAPHEMES,
    BLUESKY_MAX_IMAGES,
    BLUESKY_MAX_LANGS,
    BLUESKY_POST_TYPE,
    BLUESKY_THUMB_MAX_BYTES,
    BlueskyLimits,
)
from bridge.platforms.bluesky.links import display_url
from bridge.render.links import find_urls, pointer_links
from bridge.render.longnote import REPLIES, holds_whole, split_note, thread_options, thread_text
from bridge.render.photos import big_enough
from bridge.render.post import Post, letters, post_parts
from bridge.render.template import RichText, Segment

CONTENT_WARNING_PREFIX = "CW: "
REPEAT_COMPARE_LETTERS = 100  # the card repeats the text when this much of its description opens within it


@dataclass(frozen=True)
class BlueskyText:
    """How Bluesky shows and counts text (the fitter's Platform)."""

    limits: BlueskyLimits = BlueskyLimits()

    def url_segments(self, url: str) -> list[Segment]:
        return [Segment(display_url(url), link=url)]

    def text_segments(self, text: str) -> list[Segment]:
        """Plain text with its URLs as (shortened) links, "here (https://…)" as "here" linked, and its #hashtags
        as tags."""
        if not text:
            return []
        found = pointer_links(text)
        pointers = {start: (word, url) for start, _end, word, url in found}
        marks = [(start, end, "pointer") for start, end, _word, _url in found]
        marks += [(start, end, "link") for start, end in find_urls(text) if not any(s < end and start < e for s, e, _ in marks)]
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
            if kind == "pointer":
                word, url = pointers[start]
                segments.append(Segment(word, link=url))
            elif kind == "link":
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


def repeats(text: str, passage: str) -> bool:
    """Whether `text` already carries `passage` (its opening, letters and digits only and without URLs, so a cut,
    a changed punctuation or a shortened URL still counts)."""
    opening = letters(without_urls(passage))[:REPEAT_COMPARE_LETTERS]
    return bool(opening) and opening in letters(without_urls(text))  # a URL may be shown shortened in the text


def without_urls(text: str) -> str:
    for start, end in reversed(find_urls(text)):
        text = text[:start] + text[end:]
    return text


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
    prefix, suffix, link_elsewhere = _around(post)
    rich = fit(post.template, post_parts(post), BlueskyText(limits), prefix, suffix=suffix, link_elsewhere=link_elsewhere)
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
        if repeats(rich.text, post.card.description):
            external["description"] = ""  # the text already says it (an untitled post is its own description)
        if (thumbnail is not None and len(thumbnail.data) <= BLUESKY_THUMB_MAX_BYTES
                and big_enough(thumbnail.width, thumbnail.height)):
            external["thumb"] = thumbnail.describe()
        record["embed"] = {"$type": BLUESKY_EXTERNAL_TYPE, "external": external}
    record["createdAt"] = rfc3339(created_at) if isinstance(created_at, datetime) else created_at
    return {"record": record}


def _around(post: Post) -> tuple[list[Segment], list[Segment], bool]:
    """What the text gets around the template: (prefix, suffix, link_elsewhere)."""
    prefix = _warning(post)
    # The card is the link: a template without {url} spends no graphemes on it (a link post keeps its permalink
    # as a one-grapheme mark). Without a card the link goes into the text, as on Mastodon.
    # A photo post's embed is its pictures (a post has one embed): its link stays in the text.
    link_elsewhere = post.card is not None and not post.images and "url" not in template_fields(post.template)
    suffix = [Segment(" "), Segment(PERMALINK_MARK, link=post.link)] if link_elsewhere and post.target else []
    return prefix, suffix, link_elsewhere


def _warning(post: Post) -> list[Segment]:
    return [Segment(CONTENT_WARNING_PREFIX + post.content_warning), Segment("\n\n")] if post.content_warning else []


def payload(post: Post, settings: PostSettings, inputs: PayloadInputs) -> dict:
    """Platform.payload: the record, with the card's image when the post has a card (pictures replace it); for a
    long note on an account with thread_long_notes, its first part's, with the replies' records under "thread"
    (their rkeys are chosen by the target's seal_payload, before the payload is stored)."""
    thumbnail = None
    if post.card is not None and post.image is not None and not post.images:
        thumbnail = inputs.thumbnail(post.image.url)
    text = thread_text(post, inputs.account, inputs.entry)
    pieces = None if text is None else thread_pieces(post, text, **thread_options(inputs.account))
    if pieces is None:
        return bluesky_payload(post, settings, thumbnail=thumbnail, created_at=inputs.created_at)
    root = bluesky_payload(replace(post, summary=pieces[0]), settings, thumbnail=thumbnail, created_at=inputs.created_at)
    created = inputs.created_at if isinstance(inputs.created_at, datetime) else None
    replies = []
    for index, piece in enumerate(pieces[1:], start=1):
        rich = RichText(tuple(_warning(post) + BlueskyText().text_segments(piece)))
        record = {"$type": BLUESKY_POST_TYPE, "text": rich.text, "facets": facets(rich),
                  "langs": root["record"]["langs"]}
        # each reply a millisecond after the one before: clients order a thread by createdAt
        record["createdAt"] = rfc3339(created + timedelta(milliseconds=index)) if created else root["record"]["createdAt"]
        replies.append({"record": record})
    return {**root, REPLIES: replies}


def thread_pieces(post: Post, text: str, *, numbering: bool, max_parts: int) -> list[str] | None:
    """A long note's parts: the first within the post's template (card, hashtags), the replies alone (each with the
    content warning line); None when it fits one post."""
    platform = BlueskyText()
    prefix, suffix, link_elsewhere = _around(post)
    parts = post_parts(post)
    return split_note(
        text,
        lambda piece: holds_whole(post.template, replace(parts, summary=piece), platform, prefix, suffix,
                                  link_elsewhere=link_elsewhere),
        lambda piece: platform.fits(RichText(tuple(_warning(post) + platform.text_segments(piece)))),
        numbering=numbering, max_parts=max_parts)


def describe(payload: dict, server_limits: dict | None) -> tuple[str, list[str]]:
    """Platform.describe, for `bridge preview`: the text, its length by both of Bluesky's measures, the card."""
    record = payload["record"]
    text = record["text"]
    details = [f"{graphemes.count(text)}/{BLUESKY_MAX_GRAPHEMES} graphemes",
               f"{graphemes.utf8_len(text)}/{BLUESKY_MAX_BYTES} bytes",
               f"langs {', '.join(record['langs']) or 'unset'}"]
    external = (record.get("embed") or {}).get("external")
    if external:
        card = f"card: {external['title']}"
        thumb = external.get("thumb")
        if thumb:
            card += f" [{thumb['width']}x{thumb['height']} {thumb['mime_type']}, {thumb['size']} bytes]"
        details.append(card)
    for index, reply in enumerate(payload.get(REPLIES) or [], start=2):
        reply_text = reply["record"]["text"]
        text += f"\n\n--- reply {index} ---\n{reply_text}"
        details.append(f"reply {index}: {graphemes.count(reply_text)}/{BLUESKY_MAX_GRAPHEMES} graphemes")
    return text, details
