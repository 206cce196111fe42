"""Grapheme clusters: the unit both platforms count in, and the unit text is never split below.

A grapheme cluster is what a reader sees as one character: an emoji ZWJ sequence (👨‍👩‍👧), a flag (two
regional indicators), a letter with combining marks, a Devanagari conjunct. `regex`'s \\X implements the
Unicode extended grapheme cluster rules.
"""

from __future__ import annotations

import regex

_GRAPHEME = regex.compile(r"\X", regex.DOTALL)


def graphemes(text: str) -> list[str]:
    """The grapheme clusters of `text`, in order."""
    return _GRAPHEME.findall(text)


def count(text: str) -> int:
    """The number of grapheme clusters in `text`."""
    return len(_GRAPHEME.findall(text))


def utf8_len(text: str) -> int:
    return len(text.encode("utf-8"))


def boundaries(text: str) -> list[int]:
    """Every code-point offset at which `text` may be cut without splitting a cluster (0 and len included)."""
    offsets = [0]
    for match in _GRAPHEME.finditer(text):
        offsets.append(match.end())
    return offsets


def truncate(text: str, max_graphemes: int) -> str:
    """The longest prefix of `text` with at most `max_graphemes` clusters."""
    if max_graphemes <= 0:
        return ""
    clusters = _GRAPHEME.findall(text)
    return text if len(clusters) <= max_graphemes else "".join(clusters[:max_graphemes])
