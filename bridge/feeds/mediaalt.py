"""Alt text for Media RSS pictures: the media:description (else media:title) that belongs to one media:content.

feedparser files every media:description flat, as the entry's summary (or content), so which picture a
description describes is lost in both readers (fastread.py mirrors feedparser). This reads it from the
document itself, the same for whichever reader parsed the entries, so both paths give identical entries.

A description belongs to a media:content when it is inside it, or inside the media:group or item that holds
that media:content and no other: a group's or item's one description is never spread over several pictures.
Only well-formed documents without a DOCTYPE are read (no entity can be expanded); any other gets no alt text.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from functools import lru_cache

from .htmltools import collapse_space, html_to_text

_MEDIA_NAMESPACE = b"search.yahoo.com/mrss"  # with or without the trailing slash, as feeds write it
_MEDIA = re.compile(r"^\{https?://search\.yahoo\.com/mrss/?\}(\w+)$")
_MEDIA_URI = re.compile(r"https?://search\.yahoo\.com/mrss/?\Z")  # the namespaces of the tags _MEDIA matches
_DOCTYPE = re.compile(rb"<!DOCTYPE", re.IGNORECASE)
# A prefix declaration ending where a mention of the namespace starts, and what must follow the mention
_MEDIA_PREFIX = re.compile(rb"""\sxmlns:([A-Za-z_][\w.-]*)\s*=\s*["']https?://\Z""")
_MEDIA_PREFIX_END = re.compile(rb"""/?["']""")
_PREFIX_REACH = 256  # bytes before a mention searched for its declaration (longer ones are read as odd: yes)
_ITEM_NAMES = ("item", "entry")  # RSS item, Atom entry: the elements feedparser makes entries of
_MAX_GROUP_DEPTH = 4  # media:group inside media:group...: deeper ones are not looked into


def media_alt_texts(data: bytes, entry_count: int, root: ET.Element | None = None) -> list[dict[str, str]] | None:
    """Per entry, in document order: {media:content url attribute (stripped): alt text}. None when the document
    has no Media RSS, cannot be read here, or its items do not line up with the `entry_count` entries read.
    `root`: the document's tree (ElementTree's), when the caller has parsed it already."""
    if _MEDIA_NAMESPACE not in data or _DOCTYPE.search(data) or not _may_describe(data):
        return None
    if root is None:
        try:
            root = ET.fromstring(data)
        except ET.ParseError:
            return None
    items = [element for element in root.iter() if _local(element.tag) in _ITEM_NAMES]
    if len(items) != entry_count:
        return None
    return [_item_alts(item) for item in items]


def describes(root: ET.Element, namespaces: Iterable[str]) -> bool:
    """Does the tree hold a Media RSS description or title? `namespaces`: those its elements may be in (all the
    document declares). Without either element, media_alt_texts finds no alt text: a reader that has the tree
    looks for the two names in it (at C speed) instead of searching the document's bytes three times."""
    for uri in set(namespaces):
        if _MEDIA_URI.match(uri):
            for name in ("description", "title"):
                if next(root.iter(f"{{{uri}}}{name}"), None) is not None:
                    return True
    return False


def _may_describe(data: bytes) -> bool:
    """Could the document hold a media:description or media:title at all? Most Media RSS feeds give only
    media:content; telling so from the bytes spares a second parse of the whole document. Every mention of the
    namespace must be a prefix declaration read here; anything else (a default namespace, an odd spelling) says
    yes, and the document is read."""
    prefixes = []
    at = data.find(_MEDIA_NAMESPACE)
    while at >= 0:  # found by bytes.find: a regex tried at every space of a 100 KB document was 12% of reading it
        end = at + len(_MEDIA_NAMESPACE)
        declared = _MEDIA_PREFIX.search(data, max(0, at - _PREFIX_REACH), at)
        if declared is None or not _MEDIA_PREFIX_END.match(data, end):
            return True
        prefixes.append(declared.group(1))
        at = data.find(_MEDIA_NAMESPACE, end)
    return _describing(frozenset(prefixes)).search(data) is not None


@lru_cache(maxsize=64)
def _describing(prefixes: frozenset[bytes]) -> re.Pattern[bytes]:
    """'<prefix:description' or '<prefix:title' for any of the prefixes: one pass over the document instead of
    two per prefix (each pass a fifth of the cost of this module on a feed that has none)."""
    names = b"|".join(re.escape(prefix) for prefix in sorted(prefixes))
    return re.compile(b"<(?:" + names + b"):(?:description|title)")


def _local(tag) -> str:
    return tag.rpartition("}")[2] if isinstance(tag, str) else ""


def _media(element: ET.Element) -> str | None:
    """'content', 'group', 'description'... for a Media RSS element, else None."""
    match = _MEDIA.match(element.tag) if isinstance(element.tag, str) else None
    return match.group(1) if match else None


def _item_alts(item: ET.Element) -> dict[str, str]:
    alts: dict[str, str] = {}
    _collect(item, [item] if _content_count(item) == 1 else [], alts)
    return alts


def _content_count(element: ET.Element) -> int:
    return sum(1 for inner in element.iter() if _media(inner) == "content")


def _collect(element: ET.Element, holders: list[ET.Element], alts: dict[str, str], depth: int = 0) -> None:
    """`holders`: the enclosing elements (innermost first) whose descriptions belong to the one media:content
    inside them."""
    for child in element:
        kind = _media(child)
        if kind == "content":
            url = (child.get("url") or "").strip()
            alt = _alt([child, *holders])
            if url and alt:
                alts.setdefault(url, alt)
        elif kind == "group" and depth < _MAX_GROUP_DEPTH:
            _collect(child, [child, *holders] if _content_count(child) == 1 else [], alts, depth + 1)


def _alt(holders: list[ET.Element]) -> str:
    """The innermost media:description with text, else the innermost media:title, as plain text."""
    for wanted in ("description", "title"):
        for holder in holders:
            for child in holder:
                if _media(child) == wanted:
                    text = child.text or ""
                    if child.get("type", "plain").strip().lower() == "html":
                        text = html_to_text(text)
                    text = collapse_space(text)
                    if text:
                        return text
    return ""
