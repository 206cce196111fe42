"""Grapheme clusters: the unit both platforms count in, and the unit text is never split below.

A grapheme cluster is what a reader sees as one character: an emoji ZWJ sequence (👨‍👩‍👧), a flag (two
regional indicators), a letter with combining marks, a Devanagari conjunct. `regex`'s \\X implements the
Unicode extended grapheme cluster rules.

Most text (English, French, German prose with curly quotes and dashes) has no character that can join a cluster
with its neighbour: there every code point is a cluster, and counting is len(). `simple` finds that in one C
scan, which makes fitting a post several times cheaper than walking \\X over it.
"""

from __future__ import annotations

import re

import regex

_GRAPHEME = regex.compile(r"\X", regex.DOTALL)
# Every code point whose Grapheme_Cluster_Break property lets it join a neighbour (UAX #29 rules GB3-GB13: CR
# before LF, Hangul jamo and syllables, Extend, ZWJ, SpacingMark, Prepend, regional indicators). Text with none
# of them has one cluster per code point.
_JOINS = regex.compile(
    r"[\r\p{Grapheme_Cluster_Break=Extend}\p{Grapheme_Cluster_Break=ZWJ}\p{Grapheme_Cluster_Break=SpacingMark}"
    r"\p{Grapheme_Cluster_Break=Prepend}\p{Grapheme_Cluster_Break=L}\p{Grapheme_Cluster_Break=V}"
    r"\p{Grapheme_Cluster_Break=T}\p{Grapheme_Cluster_Break=LV}\p{Grapheme_Cluster_Break=LVT}"
    r"\p{Grapheme_Cluster_Break=Regional_Indicator}]"
)


# Below U+0300 only CR joins (tests/test_render_fasthtml.py checks it): of most text only the few characters past
# it (curly quotes, dashes) need the slow property lookups.
_PAST_LATIN = re.compile("[\u0300-\U0010ffff]+")


def past_latin(text: str) -> str:
    """The characters of `text` from U+0300 on, in order: all that a search for a script or joiner needs to read."""
    return "".join(_PAST_LATIN.findall(text))


def simple(text: str) -> bool:
    """Whether every code point of `text` is a grapheme cluster of its own."""
    if "\r" in text:
        return False
    if text.isascii():
        return True
    return _JOINS.search(past_latin(text)) is None


def graphemes(text: str) -> list[str]:
    """The grapheme clusters of `text`, in order."""
    if simple(text):
        return list(text)
    return _GRAPHEME.findall(text)


def count(text: str) -> int:
    """The number of grapheme clusters in `text`."""
    if simple(text):
        return len(text)
    return len(_GRAPHEME.findall(text))


def utf8_len(text: str) -> int:
    return len(text.encode("utf-8"))


def boundaries(text: str) -> list[int]:
    """Every code-point offset at which `text` may be cut without splitting a cluster (0 and len included)."""
    if simple(text):
        return list(range(len(text) + 1))
    offsets = [0]
    for match in _GRAPHEME.finditer(text):
        offsets.append(match.end())
    return offsets


def truncate(text: str, max_graphemes: int) -> str:
    """The longest prefix of `text` with at most `max_graphemes` clusters."""
    if max_graphemes <= 0:
        return ""
    if simple(text):
        return text[:max_graphemes]
    clusters = _GRAPHEME.findall(text)
    return text if len(clusters) <= max_graphemes else "".join(clusters[:max_graphemes])
