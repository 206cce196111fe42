"""Post -> the parameters of a Threads media container. Pure.

    {"media_type": "TEXT" | "IMAGE", "text": str, "link_attachment": str | None,
     "image_url": str | None, "alt_text": str | None}

The teaser and the permalink are fitted by the shared renderer (bridge/render/fit.py) within Threads' rules:
- 500 characters, emoji counted as their UTF-8 bytes (threads_length below);
- at most 5 links: every distinct URL in the text, plus link_attachment when it is none of them -- Meta refuses
  more at container creation (THREADS_API__LINK_LIMIT_EXCEEDED);
- one topic tag: Threads links one tag per post (the first hashtag in the text becomes the post's topic), so the
  text carries only the post's first hashtag (the writer's own first category, bridge/render/hashtags.py) that
  makes a valid tag (at most 50 characters, no '.' or '&'); a second would show as plain text and cost
  characters. The container's `topic_tag` parameter is not used: Meta's reference pages bridge could read do not
  list it (docs/threads.md).
A TEXT post carries `link_attachment`, the link preview (the linked article of a link post, else the
permalink). With images = "attach" (or a photo post) the post is an IMAGE container with the picture's public
URL, which Meta fetches itself; an IMAGE post has no link preview, the permalink stays in the text.
Threads' API takes no language and no content warning: a warning becomes the first line, "CW: ...".
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import regex

from bridge.config import PostSettings
from bridge.platforms.base import PayloadInputs
from bridge.render import graphemes
from bridge.render.fit import fit
from bridge.render.links import find_urls
from bridge.render.post import Post, post_parts
from bridge.render.template import RichText, Segment

# "Text posts are limited to 500 characters. Emojis are counted as the number of UTF-8 bytes."
# https://developers.facebook.com/documentation/threads/posts (Limitations)
MAX_CHARACTERS = 500
# "The number of links is restricted to 5 or fewer" -- how links are counted, same page family:
# https://developers.facebook.com/documentation/threads/create-posts/text-attachments
MAX_LINKS = 5
# alt_text: "The maximum length of alt_text is 1,000 characters."
# https://developers.facebook.com/docs/threads/reference/publishing
MAX_ALT_TEXT = 1000
# A topic tag: 1 to 50 characters, no periods or ampersands (Meta's topic tag rules, docs/threads.md)
MAX_TOPIC_TAG = 50
CONTENT_WARNING_PREFIX = "CW: "

_EMOJI = regex.compile(r"\p{Extended_Pictographic}|\p{Regional_Indicator}")


def threads_length(text: str) -> int:
    """How Threads counts a text against its 500: one per grapheme, an emoji as many as its UTF-8 bytes. Meta
    gives no more detail; counting the whole emoji cluster's bytes is the stricter reading (docs/threads.md)."""
    return sum(len(cluster.encode()) if _EMOJI.search(cluster) else 1 for cluster in graphemes.graphemes(text))


def link_count(text: str, link_attachment: str | None) -> int:
    urls = {text[start:end] for start, end in find_urls(text)}
    if link_attachment:
        urls.add(link_attachment)
    return len(urls)


@dataclass(frozen=True)
class ThreadsText:
    """How Threads shows and counts text (the fitter's Platform)."""

    link_attachment: str | None = None
    max_characters: int = MAX_CHARACTERS

    def url_segments(self, url: str) -> list[Segment]:
        return [Segment(url, link=url)]

    def text_segments(self, text: str) -> list[Segment]:
        return [Segment(text)] if text else []

    def fits(self, rich: RichText) -> bool:
        return (threads_length(rich.text) <= self.max_characters
                and link_count(rich.text, self.link_attachment) <= MAX_LINKS)


def topic_tag(hashtags: tuple[str, ...]) -> str | None:
    """The first hashtag that makes a valid topic tag, as the post gives it."""
    for tag in hashtags:
        name = tag.lstrip("#")
        if 1 <= len(name) <= MAX_TOPIC_TAG and not any(mark in name for mark in ".&"):
            return tag
    return None


def threads_payload(post: Post, settings: PostSettings, *, strict: bool = False) -> dict:
    """The container parameters for `post`. Raises RenderError if the text cannot fit."""
    attached = post.images or ((post.image,) if settings.images == "attach" and post.image is not None else ())
    image = attached[0] if attached else None
    link_attachment = None if image else (post.target or post.link)
    prefix = [Segment(f"{CONTENT_WARNING_PREFIX}{post.content_warning}\n\n")] if post.content_warning else None
    # strict: Threads refused the text as too long -- leave room for a count we got wrong
    platform = ThreadsText(link_attachment, MAX_CHARACTERS - (25 if strict else 0))
    tag = topic_tag(post.hashtags)
    rich = fit(post.template, replace(post_parts(post), hashtags=(tag,) if tag else ()), platform, prefix)
    return {
        "media_type": "IMAGE" if image else "TEXT",
        "text": rich.text,
        "link_attachment": link_attachment,
        "image_url": image.url if image else None,
        "alt_text": graphemes.truncate(image.alt, MAX_ALT_TEXT) if image and image.alt else None,
    }


def uses_article_page(settings: PostSettings, account) -> bool:
    """Platform.uses_article_page: Meta fetches the link preview itself; bridge reads the page only for the
    picture of an IMAGE post with images = "attach" (the page's own picture comes first)."""
    return settings.images == "attach"


def payload(post: Post, settings: PostSettings, inputs: PayloadInputs) -> dict:
    """Platform.payload."""
    return threads_payload(post, settings, strict=bool((inputs.server_limits or {}).get("strict")))


def describe(payload: dict, server_limits: dict | None) -> tuple[str, list[str]]:
    """Platform.describe, for `bridge preview`."""
    text = payload["text"]
    details = [f"{threads_length(text)}/{MAX_CHARACTERS} characters",
               f"{link_count(text, payload.get('link_attachment'))}/{MAX_LINKS} links",
               f"topic tag {next((word for word in text.split() if word.startswith('#')), 'none')}"]
    if payload.get("link_attachment"):
        details.append(f"link preview {payload['link_attachment']}")
    if payload.get("image_url"):
        details.append(f"image {payload['image_url']} (alt: {payload.get('alt_text') or 'none'})")
    return text, details
