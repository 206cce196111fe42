"""feedparser's conventions for names, attributes and text, so that fastread.py produces the values feedparser would.

feedparser (strict mode: expat, namespaces on) names an element after its namespace's standard prefix
(``dc_creator``, ``media_content``; RSS and Atom elements have none); in a namespace it does not know, after
the first prefix the document declared for it. Names are lower-cased, and so are attribute names and the
values of ``rel`` and ``type``. An element's text is stripped, resolved against the base URL when it is a
URL-ish element, then repaired: UTF-8 that was decoded as Latin-1 is decoded again, and C1 control codes
become the Windows-1252 characters they usually meant.

The tables and helpers used here are feedparser's own, private ones included: it is the reference being
reproduced, and this keeps the two in step. tests/test_feeds_fastpath.py fails if a feedparser release
changes what they produce. The one rewritten for speed, add_tag (a category per call), is held equal to
feedparser's by tests/test_feeds_fastpath_shortcuts.py.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache

from feedparser.datetimes import _parse_date as parse_date  # noqa: F401  (re-exported: the reference parser)
from feedparser.html import _cp1252
from feedparser.mixin import _FeedParserMixin
from feedparser.urls import _urljoin, make_safe_absolute_uri

from .urls import is_plain_absolute

KNOWN_NAMESPACES = {uri.lower(): prefix for uri, prefix in _FeedParserMixin.namespaces.items()}
HTML_TYPES = frozenset(_FeedParserMixin.html_types)
RESOLVED_ELEMENTS = frozenset(_FeedParserMixin.can_be_relative_uri)
_looks_like_html = _FeedParserMixin.looks_like_html
map_content_type = _FeedParserMixin.map_content_type
_C1 = re.compile("[\x80-\x9f]")
_LINK_ENTITY = re.compile("&([A-Za-z0-9_]+);")
_USERLAND = "http://backend.userland.com/rss"


@lru_cache(maxsize=1024)
def has_handler(key: str) -> bool:
    """Whether feedparser gives the element `key` a meaning of its own (else it just stores its text)."""
    return hasattr(_FeedParserMixin, "_start_" + key) or hasattr(_FeedParserMixin, "_end_" + key)


def base_url(url: str) -> str:
    """The base URL feedparser resolves against when the document sets none (the Content-Location)."""
    return make_safe_absolute_uri(url, url) or url


def resolve(base: str, value: str) -> str:
    """feedparser's _urljoin (which also drops extra slashes after 'scheme://'): nothing to do for a plain
    absolute URL."""
    return value if is_plain_absolute(value) else _urljoin(base, value)


def repair(text: str) -> str:
    """feedparser's last step for every text value (see the module docstring). ASCII needs no repair."""
    if text.isascii():
        return text
    try:
        text = text.encode("iso-8859-1").decode("utf-8")
    except UnicodeError:
        pass
    if _C1.search(text):
        text = text.translate(_cp1252)
    return text


def looks_like_html(text: str) -> bool:
    """feedparser's test; it needs a close tag or an entity, so text with neither is answered without its regexes."""
    return ("</" in text or "&" in text) and _looks_like_html(text)


def link_text(text: str, *, in_entry: bool) -> str:
    """A <link> element's text as feedparser stores it: entity-looking runs lose their ';'
    (and, in entries, '&amp;' becomes '&'), a repair for query strings mangled by HTML escaping."""
    if "&" not in text:
        return text
    if in_entry:
        text = text.replace("&amp;", "&")
    return _LINK_ENTITY.sub(r"&\g<1>", text)


class Names:
    """feedparser's names for the elements and attributes of one document, given its namespace declarations
    (prefix, uri) in document order."""

    def __init__(self, declarations: list[tuple[str, str]]) -> None:
        self.in_use: dict[str, str] = {}  # feedparser's namespaces_in_use: prefix -> uri
        self.remap: dict[str | None, str] = {}  # feedparser's namespacemap: document prefix -> standard prefix
        self._keys: dict[str, str] = {}
        for prefix, uri in declarations:
            if not uri:
                continue
            lower = uri.lower()
            if "backend.userland.com/rss" in lower:
                uri = lower = _USERLAND
            if lower in KNOWN_NAMESPACES:
                self.remap[prefix or None] = KNOWN_NAMESPACES[lower]
                self.in_use[KNOWN_NAMESPACES[lower]] = uri
            else:
                self.in_use[prefix or ""] = uri

    def key(self, tag: str) -> str:
        """'dc_creator' for '{http://purl.org/dc/elements/1.1/}creator', 'title' for 'title' or Atom's title."""
        key = self._keys.get(tag)
        if key is None:
            key = self._keys[tag] = self._key(tag)
        return key

    def _key(self, tag: str) -> str:
        if tag[0] != "{":
            return tag.lower()
        uri, local = tag[1:].split("}", 1)
        lower = uri.lower()
        if "backend.userland.com/rss" in lower:
            uri = lower = _USERLAND
        prefix = KNOWN_NAMESPACES.get(lower)
        name = local
        if prefix:
            name = prefix + ":" + local
        else:  # no standard prefix: the first prefix the document bound to this namespace
            for given, bound in self.in_use.items():
                if given and bound == uri:
                    name = given + ":" + local
                    break
        prefix, _, suffix = name.lower().partition(":")
        if not suffix:
            prefix, suffix = "", prefix
        prefix = self.remap.get(prefix, prefix)
        return f"{prefix}_{suffix}" if prefix else suffix

    @staticmethod
    def attributes(element) -> Mapping[str, str]:
        """The element's attributes as feedparser sees them: 'xml:lang' also as 'lang', names lower-cased,
        rel and type values lower-cased. Raises ValueError when two attributes would share a name.
        Read-only: when feedparser's names are the document's, this is the element's own attrib."""
        attrib = element.attrib
        names = tuple(attrib)
        plan = _ATTRIBUTE_PLANS.get(names)
        if plan is None:
            if len(_ATTRIBUTE_PLANS) >= _MAX_ATTRIBUTE_PLANS:  # attribute names are the document's to choose
                _ATTRIBUTE_PLANS.clear()
            plan = _ATTRIBUTE_PLANS[names] = _attribute_plan(names)
        if plan is _AS_GIVEN:
            return attrib
        if isinstance(plan, str):
            raise ValueError(plan)
        return {each: attrib[name].lower() if lower else attrib[name] for name, each, lower in plan}


# The work of Names.attributes depends only on the attribute names, the same on most elements of a feed: per
# tuple of names, _AS_GIVEN, the complaint, or (document name, feedparser's name, value lower-cased) in order.
_AS_GIVEN = object()
_ATTRIBUTE_PLANS: dict[tuple[str, ...], object] = {}
_MAX_ATTRIBUTE_PLANS = 4096


def _attribute_plan(names: tuple[str, ...]):
    plan: list[tuple[str, str, bool]] = []
    seen: set[str] = set()
    for name in names:
        given = [name]
        if name[0] == "{":
            uri, local = name[1:].split("}", 1)
            prefix = KNOWN_NAMESPACES.get(uri.lower(), "")
            given = [prefix + ":" + local, local] if prefix else [local]
        for each in given:
            each = each.lower()
            if each in seen:
                return f"attribute {each!r} given twice"
            seen.add(each)
            plan.append((name, each, each in ("rel", "type")))
    if all(name == each and not lower for name, each, lower in plan):
        return _AS_GIVEN
    return tuple(plan)


def add_tag(context: dict, term, scheme, label) -> None:
    """Bookkeeper._add_tag without building a parser object per category (tests/test_feeds_fastpath_shortcuts.py
    holds the two equal): the tag list exists from the first category on; an empty tag is dropped, a repeated one too.
    Tags are plain dicts: the mapping reads them with .get, which FeedParserDict does not alias for these keys."""
    tags = context.setdefault("tags", [])
    if term or scheme or label:
        tag = {"term": term, "scheme": scheme, "label": label}
        if tag not in tags:
            tags.append(tag)


class Bookkeeper(_FeedParserMixin):
    """feedparser's own author and tag bookkeeping (splitting "email (Name)", filing an itunes:owner as an
    author, de-duplicating tags), applied to one of our dicts. None of the parser's state is used."""

    def __init__(self, context) -> None:  # no super().__init__(): only _get_context is needed
        self.context = context

    def _get_context(self):
        return self.context
