"""Platform.payload and Platform.describe for Nostr: the unsigned events (events.py) with the relays' limits."""

from __future__ import annotations

from dataclasses import replace

from bridge.config import PostSettings
from bridge.platforms.base import PayloadInputs
from bridge.platforms.nostr.events import (
    ARTICLE_KIND,
    NOTE_MAX_GRAPHEMES,
    THREAD_REPLY,
    NoteText,
    nostr_payload,
    reply_event,
)
from bridge.render import graphemes
from bridge.render.longnote import holds_whole, split_note, thread_options, thread_text
from bridge.render.post import Post, post_parts
from bridge.render.template import RichText, Segment


def content_limit(server_limits: dict | None) -> int | None:
    """The smallest max_content_length the account's relays state (NIP-11): from render_limits(), or from the
    copy of the relays' documents the daemon cached in the state (preview)."""
    limits = server_limits or {}
    if limits.get("max_content_length"):
        return limits["max_content_length"]
    lengths = [info.get("max_content_length") for info in (limits.get("relays") or {}).values() if isinstance(info, dict)]
    lengths = [length for length in lengths if isinstance(length, int) and length > 0]
    return min(lengths) if lengths else None


def uses_article_page(settings: PostSettings, account) -> bool:
    """Platform.uses_article_page: only the long-form article names a picture (its `image` tag, the page's own
    first); a note is text and links."""
    return bool(getattr(account, "long_form", False)) and settings.images != "none"


def payload(post: Post, settings: PostSettings, inputs: PayloadInputs) -> dict:
    """The note, and with long_form the article, unsigned: signing is the target's, at the moment of posting. A long
    note on an account with thread_long_notes: its first part's note, then a reply note per further part (marked
    THREAD_REPLY; the target adds their NIP-10 tags when it signs them, in order)."""
    entry = inputs.entry
    limit, strict = content_limit(inputs.server_limits), bool((inputs.server_limits or {}).get("strict"))
    text = thread_text(post, inputs.account, inputs.entry)
    pieces = None if text is None else thread_pieces(post, text, NoteText(max_content_length=limit, strict=strict),
                                                     **thread_options(inputs.account))
    made = nostr_payload(
        replace(post, summary=pieces[0]) if pieces else post,
        long_form=bool(getattr(inputs.account, "long_form", False)),
        content_html=(entry.content_html or entry.summary_html) if entry is not None else "",
        published=entry.published if entry is not None else None,
        max_content_length=limit,
        strict=strict,
    )
    if pieces:
        replies = [reply_event(piece, post.language) for piece in pieces[1:]]
        made["events"] = made["events"][:1] + replies + made["events"][1:]
    return made


def thread_pieces(post: Post, text: str, platform: NoteText, *, numbering: bool, max_parts: int) -> list[str] | None:
    """A long note's parts: the first within the note's template, the replies alone; None when it fits one note."""
    parts = post_parts(post)
    return split_note(text, lambda piece: holds_whole(post.template, replace(parts, summary=piece), platform),
                      lambda piece: platform.fits(RichText((Segment(piece),))),
                      numbering=numbering, max_parts=max_parts)


def describe(payload: dict, server_limits: dict | None) -> tuple[str, list[str]]:
    """For `bridge preview`: the note's text, and what else goes out."""
    note = payload["events"][0]
    limit = content_limit(server_limits)
    details = [f"{graphemes.count(note['content'])}/{NOTE_MAX_GRAPHEMES} graphemes"
               + (f" (relays take {limit} characters)" if limit else "")]
    details += [f"{name} {', '.join(tag[1] for tag in note['tags'] if tag[0] == name)}"
                for name in ("t", "r", "l") if any(tag[0] == name for tag in note["tags"])]
    replies = [event for event in payload["events"] if event.get(THREAD_REPLY)]
    text = "\n\n".join([note["content"]] + [f"--- reply {index} ---\n{event['content']}"
                                            for index, event in enumerate(replies, start=2)])
    details += [f"reply {index}: {graphemes.count(event['content'])}/{NOTE_MAX_GRAPHEMES} graphemes"
                for index, event in enumerate(replies, start=2)]
    for event in payload["events"][1:]:
        if event["kind"] == ARTICLE_KIND:
            title = next((tag[1] for tag in event["tags"] if tag[0] == "title"), "")
            details.append(f"article (kind {ARTICLE_KIND}) {title!r}: {len(event['content'])} characters of Markdown")
    details.append("signed when posted")
    return text, details
