"""Post -> the unsigned Nostr events of one delivery. Pure: no key, no clock, no network.

    {"events": [{"kind": 1, "content": str, "tags": [[...], ...]},          # the note, always first
                {"kind": 1, "content": str, "tags": [...], "thread_reply": true}, ...  # a long note's further
                                                                     # parts, with thread_long_notes (in order)
                {"kind": 30023, "content": markdown, "tags": [...]}]}        # the article, with long_form = true

Signing (pubkey, created_at, id, sig) happens at the moment of posting (bridge/platforms/nostr/signing.py), so
`bridge preview --json` shows exactly these, and no secret is needed to make them.

The note (NIP-01 kind 1): the account's template filled by the shared fitter -- title, teaser, permalink,
hashtags -- within NOTE_MAX_GRAPHEMES, or the relays' smallest max_content_length when that is less (NIP-11).
Its tags: `t` per hashtag shown (lowercase, NIP-24), `r` for the permalink (and a link post's subject), and the
language as NIP-32 labels (`L` ISO-639-1, `l` code) when it is known.

The article (NIP-23 kind 30023, a parameterised replaceable event): the whole entry as Markdown (markdownify),
tags `d` (article_identifier: stable per entry, so an edit replaces the article in place), `title`, `summary`,
`image`, `published_at` (the entry's own date; created_at stays the moment of posting), `t`, `r`, and the
language labels.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from markdownify import markdownify

from bridge.render import graphemes
from bridge.render.fit import Parts, fit
from bridge.render.language import mastodon_language
from bridge.render.post import Post
from bridge.render.template import RichText, Segment

NOTE_KIND = 1
ARTICLE_KIND = 30023
# Our choice: Nostr sets no length, and clients show a long note whole in the timeline. A teaser a little longer
# than Mastodon's default 500 characters leaves room for the title, a real summary, the link and the hashtags.
NOTE_MAX_GRAPHEMES = 800
THREAD_REPLY = "thread_reply"  # an unsigned event's mark: a reply to the note before it (never sent: not signed)
LANGUAGE_NAMESPACE = "ISO-639-1"  # NIP-32: the label namespace for two-letter language codes


@dataclass(frozen=True)
class NoteText:
    """How a Nostr note is counted for the shared fitter: grapheme clusters, URLs in full (clients show them as
    written), and never more than a relay's max_content_length. NIP-11 says "characters": code points are
    counted, or UTF-8 bytes when `strict` (a relay refused it as too long although it fit)."""

    max_graphemes: int = NOTE_MAX_GRAPHEMES
    max_content_length: int | None = None
    strict: bool = False

    def url_segments(self, url: str) -> list[Segment]:
        return [Segment(url, link=url)]

    def text_segments(self, text: str) -> list[Segment]:
        return [Segment(text)] if text else []

    def fits(self, rich: RichText) -> bool:
        text = rich.text
        if graphemes.count(text) > self.max_graphemes:
            return False
        if self.max_content_length is None:
            return True
        size = len(text.encode("utf-8")) if self.strict else len(text)
        return size <= self.max_content_length


def _parts(post: Post) -> Parts:
    return Parts(url=post.link, title=post.title, summary=post.summary, hashtags=post.hashtags, author=post.author,
                 feed_title=post.feed_title, published=(post.published or "")[:10], target=post.target or "")


def _language_tags(language: str | None) -> list[list[str]]:
    code = mastodon_language(language)  # ISO 639-1, or None when the language has no two-letter code
    return [["L", LANGUAGE_NAMESPACE], ["l", code, LANGUAGE_NAMESPACE]] if code else []


def _link_tags(post: Post) -> list[list[str]]:
    return [["r", url] for url in dict.fromkeys(u for u in (post.target, post.link) if u)]


def note_event(post: Post, *, max_content_length: int | None = None, strict: bool = False) -> dict:
    """The kind-1 note. Raises RenderError when even the link and the template's fixed text do not fit."""
    rich = fit(post.template, _parts(post), NoteText(max_content_length=max_content_length, strict=strict))
    shown = dict.fromkeys(segment.tag.lower() for segment in rich.segments if segment.tag)
    tags = [["t", tag] for tag in shown] + _link_tags(post) + _language_tags(post.language)
    return {"kind": NOTE_KIND, "content": rich.text, "tags": tags}


def reply_event(text: str, language: str | None) -> dict:
    """A further part of a long note's thread (docs/threads-for-notes.md): a kind-1 note marked THREAD_REPLY, whose
    NIP-10 `e` tags (root, reply) and `p` tag the target adds when it signs the thread in order."""
    return {"kind": NOTE_KIND, "content": text, "tags": _language_tags(language), THREAD_REPLY: True}


def article_identifier(entry_key: str) -> str:
    """The article's `d` tag: derived from the entry's key alone, so every edit of the entry (any title, any
    text) addresses the same article. A hash: keys are URLs or GUIDs of any length and alphabet."""
    return hashlib.sha256(entry_key.encode("utf-8")).hexdigest()[:32]


def article_event(post: Post, content_html: str, published: datetime | None) -> dict:
    """The NIP-23 long-form event of the whole entry, Markdown."""
    markdown = markdownify(content_html or "", heading_style="ATX").strip() or post.summary
    tags = [["d", article_identifier(post.key)], ["title", post.title or graphemes.truncate(post.summary, 100)]]
    if post.summary:
        tags.append(["summary", post.summary])
    if post.image is not None:
        tags.append(["image", post.image.url])
    if published is not None:
        tags.append(["published_at", str(int(published.timestamp()))])
    tags += [["t", tag.lower()] for tag in dict.fromkeys(post.hashtags)] + _link_tags(post) + _language_tags(post.language)
    return {"kind": ARTICLE_KIND, "content": markdown, "tags": tags}


def nostr_payload(post: Post, *, long_form: bool, content_html: str = "", published: datetime | None = None,
                  max_content_length: int | None = None, strict: bool = False) -> dict:
    events = [note_event(post, max_content_length=max_content_length, strict=strict)]
    if long_form:
        events.append(article_event(post, content_html, published))
    return {"events": events}


def tag_value(event: dict, name: str) -> str | None:
    return next((tag[1] for tag in event.get("tags", []) if len(tag) > 1 and tag[0] == name), None)
