"""A long note as a thread: its whole text, and that text split into posts that each fit. Pure.

A note is an untitled entry (the renderer's text-first post: no title, or a title made of the text's first words).
One post carries a note's opening, cut; with an account's thread_long_notes a note too long for one post is split
instead (docs/threads-for-notes.md):
- the first part is the platform's usual post (its template: link, hashtags, card) with the note's opening as the
  summary; the others are replies carrying the rest of the text, plain;
- each part ends at a sentence boundary when one fits (a paragraph's end counts), else at a word, else between
  grapheme clusters; never inside a URL, hashtag or mention (bridge.render.fit's cut positions);
- with numbering, each part ends " (i/n)"; the label's room is kept for the widest n, so adding it never overflows;
- at most `max_parts` parts: the last one is then cut with "…" (the first part carries the link to the whole).
How a part is measured is the platform's: the caller gives `root_fits` (the first part, as its template makes it)
and `part_fits` (a reply's text).
"""

from __future__ import annotations

from typing import Callable

from bridge.model import Entry
from bridge.render import REPLIES, graphemes  # noqa: F401  (REPLIES: the payloads read it from here)
from bridge.render.fit import (
    ELLIPSIS,
    Fitter,
    Parts,
    Platform,
    grapheme_cuts,
    prefix_at,
    protected_spans,
    sentence_cuts,
    shorten,
    template_fields,
    word_cuts,
)
from bridge.render.hashtags import split_tag_block
from bridge.render.photos import drop_reblog_handles
from bridge.render.text import html_to_text

Fits = Callable[[str], bool]


def thread_text(post, account, entry: Entry | None) -> str | None:
    """The text to post as a thread, when the account wants threads and `post` (a bridge.render.Post) is a note;
    else None. Whether it needs one is split_note's question."""
    if account is None or not getattr(account, "thread_long_notes", False) or post.title or entry is None:
        return None
    return note_text(entry) or None


def thread_options(account) -> dict:
    """split_note's numbering and max_parts from the account's settings."""
    return {"numbering": account.thread_numbering, "max_parts": account.thread_max_parts}


def note_text(entry: Entry) -> str:
    """The note's whole text (the renderer's summary of a note is its opening, capped): the content's text, else
    the feed's summary, without a reblog chain's handle lines and a closing block of hashtags (those are the
    post's hashtags)."""
    text = html_to_text(entry.content_html).text or html_to_text(entry.summary_html).text
    text, _title = drop_reblog_handles(text, "", entry)
    text, _tags = split_tag_block(text)
    return text.strip()


def holds_whole(template: str, parts: Parts, platform: Platform, prefix=None, suffix=None, *,
                link_elsewhere: bool = False) -> bool:
    """Whether the platform's post of `template` holds every field of `parts` uncut: the first thing
    bridge.render.fit.fit() tries, so fit() then returns exactly that text."""
    if not link_elsewhere and "url" not in template_fields(template):
        template = template.rstrip() + "\n\n{url}"  # as fit() does: a post always carries its link
    fitter = Fitter(template, parts, platform, list(prefix or []), list(suffix or []))
    return platform.fits(fitter.build(parts.title, parts.summary, tuple(parts.hashtags)))


def label(index: int, total: int) -> str:
    return f" ({index}/{total})"


def split_note(text: str, root_fits: Fits, part_fits: Fits, *, numbering: bool, max_parts: int) -> list[str] | None:
    """The parts of `text`, numbered when asked; None when it needs no thread (it fits the first post whole) or
    cannot be split (not even one word fits a post: the caller makes its usual single, fitted post)."""
    if not text or root_fits(text):
        return None
    for digits in (1, 2, 3):
        widest = label(10 ** digits - 1, 10 ** digits - 1) if numbering else ""
        pieces = _pieces(text, root_fits, part_fits, widest, max_parts)
        if pieces is None:
            return None
        if not numbering or len(str(len(pieces))) <= digits:
            break
    if len(pieces) < 2:
        return None
    if numbering:
        pieces = [piece + label(index, len(pieces)) for index, piece in enumerate(pieces, start=1)]
    return pieces


def _pieces(text: str, root_fits: Fits, part_fits: Fits, reserve: str, max_parts: int) -> list[str] | None:
    pieces: list[str] = []
    rest = text
    while rest:
        fits = root_fits if not pieces else part_fits
        with_label = (lambda candidate, fits=fits: fits(candidate + reserve))
        if with_label(rest):
            pieces.append(rest)
            break
        if len(pieces) == max_parts - 1:  # the last part allowed: the rest, cut, and marked so
            last = shorten(rest, lambda candidate: with_label(_marked_cut(candidate)), minimum=1)
            if last is None:
                return None
            pieces.append(_marked_cut(last))
            break
        end = _longest_cut(rest, with_label)
        if end is None:
            return None
        pieces.append(prefix_at(rest, end, with_ellipsis=False))
        rest = rest[end:].lstrip()
    return pieces


def _marked_cut(text: str) -> str:
    """A cut text ending in "…" (shorten() adds none after a whole sentence)."""
    return text if text.endswith(ELLIPSIS) else f"{text} {ELLIPSIS}"


def _longest_cut(text: str, fits: Fits) -> int | None:
    """Where the longest fitting first part of `text` ends: at a sentence if any fits, else a word, else a cluster."""
    protected = protected_spans(text)
    for positions in (sentence_cuts(text), word_cuts(text, protected), grapheme_cuts(text, protected)):
        best = _longest(text, positions, fits)
        if best is not None:
            return best
    return None


def _longest(text: str, positions: list[int], fits: Fits) -> int | None:
    """Binary search over increasing cut positions (a longer prefix never measures shorter)."""
    low, high, best = 0, len(positions) - 1, None
    while low <= high:
        middle = (low + high) // 2
        head = prefix_at(text, positions[middle], with_ellipsis=False)
        if head and graphemes.count(head) and fits(head):
            best = positions[middle]
            low = middle + 1
        else:
            high = middle - 1
    return best
