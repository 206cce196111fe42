"""Templates: `{title}\\n\\n{summary}\\n\\n{url}\\n\\n{hashtags}` filled with an entry's parts.

The result is rich text: a list of segments, some of which are links (with their full URI) or hashtags, so
facets can be computed from where the segments land, never by searching the text afterwards.

Blank lines left by empty fields collapse: a template line whose fields are all empty is dropped
("by {author}" with no author disappears), runs of blank lines become one, and the text is trimmed.
"""

from __future__ import annotations

import functools
import string
from dataclasses import dataclass

from bridge.config import TEMPLATE_FIELDS


@dataclass(frozen=True)
class Segment:
    text: str
    link: str | None = None  # the full URI, when this segment is a link (its text may be shortened)
    tag: str | None = None  # the tag without '#', when this segment is a hashtag


@dataclass(frozen=True)
class RichText:
    segments: tuple[Segment, ...]

    @property
    def text(self) -> str:
        return "".join(segment.text for segment in self.segments)

    def spans(self) -> list[tuple[int, int, Segment]]:
        """(start, end) code-point offsets of every link or tag segment in `text`."""
        out = []
        position = 0
        for segment in self.segments:
            end = position + len(segment.text)
            if segment.link or segment.tag:
                out.append((position, end, segment))
            position = end
        return out


Fields = dict[str, list[Segment]]


def parse_template(template: str) -> list[tuple[str, str | None]]:
    """[(literal text, field name or None)] in order; unknown fields read as empty (config.py rejects them)."""
    return list(_parsed(template))


@functools.lru_cache(maxsize=64)  # an account's few templates, filled for every post and every cut tried
def _parsed(template: str) -> tuple[tuple[str, str | None], ...]:
    return tuple((literal, field_name) for literal, field_name, _spec, _conversion in string.Formatter().parse(template))


def render_template(template: str, fields: Fields) -> RichText:
    """Fill `template` with `fields` (each a list of segments; [] or blank text = empty)."""
    lines: list[tuple[list[Segment], bool, bool]] = []  # (segments, has_field, any_field_filled)
    current: list[Segment] = []
    has_field = False
    filled = False

    def end_line() -> None:
        nonlocal current, has_field, filled
        lines.append((current, has_field, filled))
        current, has_field, filled = [], False, False

    for literal, field_name in _parsed(template):
        if literal:
            chunks = literal.split("\n")
            for index, chunk in enumerate(chunks):
                if index:
                    end_line()
                if chunk:
                    current.append(Segment(chunk))
        if field_name is not None:
            has_field = True
            value = fields.get(field_name, []) if field_name in TEMPLATE_FIELDS else []
            if any(segment.text.strip() for segment in value):
                filled = True
                current.extend(value)
    end_line()

    kept: list[list[Segment]] = []
    for segments, line_has_field, line_filled in lines:
        if line_has_field and not line_filled:
            continue  # every field on this line is empty: the line goes
        segments = _rstrip(segments)
        blank = not any(segment.text.strip() for segment in segments)
        if blank:
            if not kept or not kept[-1]:
                continue  # no leading blank line, no run of blank lines
            kept.append([])
        else:
            kept.append(segments)
    while kept and not kept[-1]:
        kept.pop()

    out: list[Segment] = []
    for index, segments in enumerate(kept):
        if index:
            out.append(Segment("\n"))
        out.extend(segments)
    return RichText(tuple(_merge_plain(out)))


def _rstrip(segments: list[Segment]) -> list[Segment]:
    segments = list(segments)
    while segments and not (segments[-1].link or segments[-1].tag):
        stripped = segments[-1].text.rstrip(" \t")
        if stripped:
            segments[-1] = Segment(stripped)
            break
        segments.pop()
    return segments


def _merge_plain(segments: list[Segment]) -> list[Segment]:
    out: list[Segment] = []
    for segment in segments:
        if not segment.text:
            continue
        if out and not (segment.link or segment.tag) and not (out[-1].link or out[-1].tag):
            out[-1] = Segment(out[-1].text + segment.text)
        else:
            out.append(segment)
    return out
