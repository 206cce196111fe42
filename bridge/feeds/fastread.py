"""RSS 2.0 and Atom 1.0 trees -> the result feedparser would give for them.

The result has the shape parse.py's mapping reads (FeedParserDict feed and entries: link/links/id/guidislink,
title and summary with their *_detail, content, published/updated with *_parsed, tags, authors/author,
media_content/media_thumbnail, enclosure links, image, feedburner_origlink), with feedparser's values: its
names and text conventions (fpconventions.py), its date parser, its author and tag bookkeeping, and the
order-dependent rules below.

Every element is accounted for: it is read the way feedparser reads it, or feedparser merely stores it
under its own name (no handler, a name the mapping never reads, the same for everything inside it), or the
document is Unsupported and feedparser reads it instead. Unsupported, among others: RSS other than 2.x, two
titles or descriptions in one item, xhtml or base64 content, <textInput>, <contributor>, item-level
<media:keywords>/<media:category>, text constructs with markup inside them.

Rules of feedparser's reproduced here (item = RSS item or Atom entry):
* A guid/id that is a permalink (no isPermaLink="false") is resolved against the base URL and, when no link
  came before it, is also the link. An alternate link of an HTML type sets the link; a later one wins.
* The content is copied into `summary` (without summary_detail) when no summary came before it.
* RSS titles (and text-typed bodies) that look like HTML are typed text/html; Atom text is taken at its word.
* Text is stripped and repaired; link, id and url text is resolved against the in-scope xml:base. Atom
  author names and e-mails are neither (feedparser reads them without text processing).
* xml:lang and xml:base apply to the element they are on and everything inside it.
* A media:title is ignored after an item title with text (and would be the title otherwise); <source>
  makes feedparser forget that title.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping
from functools import lru_cache
from types import MappingProxyType

from feedparser.util import FeedParserDict

from .fpconventions import (
    HTML_TYPES,
    RESOLVED_ELEMENTS,
    Bookkeeper,
    Names,
    add_tag,
    base_url,
    has_handler,
    link_text,
    looks_like_html,
    make_safe_absolute_uri,
    map_content_type,
    parse_date,
    repair,
    resolve,
)

_VERSION_NAMESPACES = {"http://purl.org/rss/1.0/": "rss10", "http://www.w3.org/2005/atom": "atom10"}
_NETSCAPE = "http://my.netscape.com/rdf/simple/0.9/"
_TEXT_TYPES = ("text/plain", "text/html")
_SCOPE_ATTRIBUTES = frozenset({"xml:lang", "lang", "xml:base", "base"})
_NO_ATTRIBUTES: Mapping[str, str] = MappingProxyType({})
# What the mapping reads, and what FeedParserDict files under those names: an element stored under one of
# these names cannot be ignored.
_RESERVED = frozenset(
    {
        "link", "links", "id", "guidislink", "title", "title_detail", "summary", "summary_detail", "content",
        "published", "published_parsed", "updated", "updated_parsed", "tags", "authors", "author",
        "author_detail", "media_thumbnail", "media_content", "enclosures", "image", "feedburner_origlink",
        "language", "ttl", "href", "category", "license", "entries", "feed",
    }
    | set(FeedParserDict.keymap)
)  # fmt: skip
# Channel/feed elements whose handlers touch nothing the mapping reads.
_HARMLESS_FEED = frozenset(
    {
        "description", "subtitle", "tagline", "rights", "copyright", "generator", "cloud", "webmaster",
        "pubdate", "lastbuilddate", "updated", "published", "category", "itunes_subtitle", "itunes_summary",
        "itunes_block", "itunes_explicit", "itunes_keywords", "itunes_image",
    }
)  # fmt: skip
# Item elements whose handlers store only details the mapping never reads.
_HARMLESS_ITEM = frozenset(
    {
        "media_rating", "media_credit", "media_restriction", "media_license", "media_player", "itunes_subtitle",
        "itunes_block", "itunes_explicit",
    }
)  # fmt: skip
_IMAGE_PARTS = frozenset({"url", "title", "link", "width", "height", "description"})
_GEO_PREFIXES = ("georss_", "gml_")  # handlers that only record a location
_DATES = {
    "pubdate": "published", "published": "published", "dcterms_issued": "published",
    "updated": "updated", "dc_date": "updated", "lastbuilddate": "updated", "dcterms_modified": "updated",
}  # fmt: skip
# map_content_type of the types most bodies have (or are given by default)
_CONTENT_TYPES = {given: map_content_type(given) for given in ("text/plain", "text/html", "html", "text")}
_TEXT_AUTHORS = frozenset({"author", "dc_creator", "dc_author", "managingeditor", "itunes_author"})
_ITUNES = "http://www.itunes.com/"
_MAX_MEDIA_DEPTH = 4  # media:group > media:content > ... : the reader recurses, documents may nest at will
# feedparser's date parser, remembered: a feed's dates recur on every poll.
_parse_date = lru_cache(maxsize=16384)(parse_date)


class Unsupported(Exception):
    """The document uses something this reader does not reproduce; feedparser reads it instead."""


class _Scope:
    """The in-scope base URL and language of an element (xml:base / xml:lang, inherited)."""

    __slots__ = ("base", "lang", "language")

    def __init__(self, base: str, lang: str | None) -> None:
        self.base = base
        self.lang = lang
        self.language = lang.replace("_", "-") if lang else lang  # as details give it

    def enter(self, attrs: dict) -> "_Scope":
        if not attrs or _SCOPE_ATTRIBUTES.isdisjoint(attrs):
            return self
        given_base = attrs.get("xml:base", attrs.get("base"))
        given_lang = attrs.get("xml:lang", attrs.get("lang"))
        base = make_safe_absolute_uri(self.base, given_base or self.base) or self.base
        lang = None if given_lang == "" else (self.lang if given_lang is None else given_lang)
        return _Scope(base, lang)

    def detail(self, kind: str, value: str) -> dict:
        return {"type": kind, "language": self.language, "base": self.base, "value": value}


class _Item:
    """One item being read: its data, and the order-dependent flags feedparser keeps while reading it."""

    __slots__ = ("data", "atom", "has_content", "titles", "descriptions", "title_text", "media_depth")

    def __init__(self, atom: bool) -> None:
        self.data: dict = {}
        self.atom = atom
        self.has_content = False
        self.titles = 0
        self.descriptions = 0
        self.title_text = ""  # the item's title, while feedparser would still ignore a media:title
        self.media_depth = 0


class Reader:
    """Reads one parsed document; `declarations` are its namespace declarations (prefix, uri) in order,
    `root_declarations` those on the root element."""

    def __init__(self, url: str, declarations: list[tuple[str, str]], root_declarations: list[tuple[str, str]]) -> None:
        self.names = Names(declarations)
        self.url = url
        self.root_declarations = root_declarations
        # per tag of an item's child: its name and its reader (_ITEM_READERS), looked up once per document
        self._item_children: dict[str, tuple[str, object]] = {}

    def read(self, root: ET.Element) -> FeedParserDict:
        key = self.names.key(root.tag)
        attrs = self._attrs(root)
        scope = _Scope(base_url(self.url), None).enter(attrs)
        feed: dict = {}
        if scope.lang:
            feed["language"] = scope.lang.replace("_", "-")
        entries: list[FeedParserDict] = []
        version = self._declared_version()
        if key == "rss":
            if version not in (None, "atom10") or not attrs.get("version", "").startswith("2."):
                raise Unsupported("not RSS 2.x")
            version = "rss20"
            children = list(root)
            if len(children) != 1 or self.names.key(children[0].tag) != "channel" or children[0].attrib:
                raise Unsupported("an RSS document is one channel")
            self._container(children[0], scope, feed, entries, item_key="item", atom=False)
        elif key == "feed" and version == "atom10":
            self._container(root, scope, feed, entries, item_key="entry", atom=True)
        else:
            raise Unsupported(f"root element {root.tag!r}")
        return FeedParserDict(feed=FeedParserDict(feed), entries=entries, bozo=False, version=version)

    def _declared_version(self) -> str | None:
        """feedparser takes the version from the first telling namespace declared on the root element."""
        for prefix, uri in self.root_declarations:
            if not prefix and uri.lower() == _NETSCAPE:
                return "rss090"
            if uri.lower() in _VERSION_NAMESPACES:
                return _VERSION_NAMESPACES[uri.lower()]
        return None

    # --- elements ---------------------------------------------------------------------------------------------

    @staticmethod
    def _attrs(element: ET.Element) -> Mapping[str, str]:
        if not element.attrib:
            return _NO_ATTRIBUTES
        try:
            return Names.attributes(element)
        except ValueError as exc:
            raise Unsupported(str(exc)) from None

    @staticmethod
    def _leaf(element: ET.Element) -> str:
        if len(element):
            raise Unsupported(f"markup inside {element.tag!r}")
        return element.text or ""

    @staticmethod
    def _text(element: ET.Element, scope: _Scope, *, resolved: bool = False) -> str:
        """feedparser's value for a text element: stripped, resolved (URL-ish elements), repaired."""
        if len(element):  # _leaf, inline: this runs for most elements of a document
            raise Unsupported(f"markup inside {element.tag!r}")
        text = (element.text or "").strip()
        if resolved and text:
            text = resolve(scope.base, text)
        return text if text.isascii() else repair(text)

    def _generic(self, element: ET.Element, key: str) -> bool:
        """True when feedparser would only store the element under its own name (see the module docstring)."""
        for inner in element.iter():  # iter(), not recursion: nesting depth is the document's to choose
            inner_key = key if inner is element else self.names.key(inner.tag)
            if has_handler(inner_key) or inner_key in _RESERVED:
                return False
        return True

    def _body(self, element: ET.Element, attrs: dict, default: str, atom: bool) -> tuple[str, str]:
        """(type, value) of a title, description, summary or content element."""
        given = attrs.get("type", default)
        kind = _CONTENT_TYPES.get(given) or map_content_type(given)
        if kind not in _TEXT_TYPES or attrs.get("mode") == "base64" or "src" in attrs:
            raise Unsupported(f"{element.tag!r} of type {kind!r}")
        if len(element):  # _leaf, inline
            raise Unsupported(f"markup inside {element.tag!r}")
        text = (element.text or "").strip()
        if not atom and kind == "text/plain" and looks_like_html(text):
            kind = "text/html"
        return kind, text if text.isascii() else repair(text)

    def _stored(self, element: ET.Element, key: str, attrs: dict, scope: _Scope):
        """What feedparser stores for an element it has no handler for: its attributes, or else its text."""
        if attrs:
            return dict(attrs)
        return self._text(element, scope, resolved=key in RESOLVED_ELEMENTS)

    # --- channel / feed -----------------------------------------------------------------------------------------

    def _container(
        self, container: ET.Element, scope: _Scope, feed: dict, entries: list, *, item_key: str, atom: bool
    ) -> None:
        titles = 0
        for element in container:
            key = self.names.key(element.tag)
            attrs = self._attrs(element)
            inner = scope.enter(attrs)
            if key == item_key:
                entries.append(self._item(element, attrs, inner, atom))
            elif key == "title":
                titles += 1
                if titles > 1:
                    raise Unsupported("two feed titles")
                kind, value = self._body(element, attrs, "text/plain", atom)
                feed["title"] = value
                feed["title_detail"] = inner.detail(kind, value)
            elif key == "link":
                self._link(feed, element, attrs, inner, in_entry=False)
            elif key == "id" and atom:
                self._guid(feed, element, attrs, inner)
            elif key in ("language", "dc_language"):
                feed["language"] = self._text(element, inner)
            elif key == "ttl":
                feed["ttl"] = self._stored(element, key, attrs, inner)
            elif key == "author" and atom:
                self._atom_author(feed, element, inner)
            elif key in _TEXT_AUTHORS:
                self._text_author(feed, element, inner)
            elif key == "itunes_owner":
                self._itunes_owner(feed, element)
            elif key == "itunes_category" or key.startswith(_GEO_PREFIXES):
                pass  # feed tags and locations: nothing the mapping reads
            elif key == "image" and not atom:
                if any(self.names.key(part.tag) not in _IMAGE_PARTS or len(part) for part in element):
                    raise Unsupported("an image with other parts")
            elif key in _HARMLESS_FEED:
                self._leaf(element)
            elif not self._generic(element, key):
                raise Unsupported(f"feed element {key!r}")

    # --- items / entries ----------------------------------------------------------------------------------------

    def _item(self, element: ET.Element, attrs: dict, scope: _Scope, atom: bool) -> FeedParserDict:
        if not _SCOPE_ATTRIBUTES.issuperset(attrs):
            raise Unsupported("item attributes")  # rdf:about would be the id, CDF's href the link
        item = _Item(atom)
        for child in element:
            self._item_child(item, child, scope)
        return FeedParserDict(item.data)

    def _item_child(self, item: _Item, element: ET.Element, parent: _Scope) -> None:
        known = self._item_children.get(element.tag)
        if known is None:
            key = self.names.key(element.tag)
            known = self._item_children[element.tag] = (key, _ITEM_READERS.get(key))
        key, reader = known
        if element.attrib:
            attrs = self._attrs(element)
            scope = parent if _SCOPE_ATTRIBUTES.isdisjoint(attrs) else parent.enter(attrs)
        else:  # most children: no attributes, the parent's scope
            attrs, scope = _NO_ATTRIBUTES, parent
        if reader is not None:
            reader(self, item, element, key, attrs, scope)
        elif key in _HARMLESS_ITEM or (key == "rights" and item.atom):
            self._leaf(element)
        elif key.startswith(_GEO_PREFIXES):
            pass  # a location: nothing the mapping reads
        elif not self._generic(element, key):
            raise Unsupported(f"item element {key!r}")

    def _item_title(self, item: _Item, element, key, attrs, scope) -> None:
        item.titles += 1
        if item.titles > 1:
            raise Unsupported("two titles")
        kind, value = self._body(element, attrs, "text/plain", item.atom)
        item.data["title"] = value
        item.data["title_detail"] = scope.detail(kind, value)
        item.title_text = value

    def _item_link(self, item: _Item, element, key, attrs, scope) -> None:
        self._link(item.data, element, attrs, scope, in_entry=True)

    def _item_guid(self, item: _Item, element, key, attrs, scope) -> None:
        if "id" in item.data:
            raise Unsupported("two ids")
        self._guid(item.data, element, attrs, scope)

    def _description(self, item: _Item, element, key, attrs, scope) -> None:
        """A description/summary is the summary. (feedparser makes a second one the content: not reproduced.)"""
        if key == "summary" and not item.atom:
            raise Unsupported("summary in RSS")
        item.descriptions += 1
        if item.descriptions > 1 or ("summary" in item.data and not item.has_content):
            raise Unsupported("two descriptions")
        kind, value = self._body(element, attrs, "text/html" if "description" in key else "text/plain", item.atom)
        item.data["summary"] = value
        item.data["summary_detail"] = scope.detail(kind, value)

    def _content(self, item: _Item, element, key, attrs, scope) -> None:
        if key == "content" and not item.atom:
            raise Unsupported("content in RSS")
        item.has_content = True
        kind, value = self._body(element, attrs, "text/html" if key == "content_encoded" else "text/plain", item.atom)
        item.data.setdefault("content", []).append(scope.detail(kind, value))
        item.data.setdefault("summary", value)

    def _date(self, item: _Item, element, key, attrs, scope) -> None:
        name = _DATES[key]
        value = self._text(element, scope)
        item.data[name] = value
        item.data[name + "_parsed"] = _parse_date(value)

    def _category(self, item: _Item, element, key, attrs, scope) -> None:
        if attrs:
            add_tag(item.data, attrs.get("term"), attrs.get("scheme", attrs.get("domain")), attrs.get("label"))
        else:
            item.data.setdefault("tags", [])  # all add_tag does without a term, scheme or label
        self._category_text(item.data, element, scope)

    def _category_text(self, context: dict, element: ET.Element, scope: _Scope) -> None:
        """A category's text names the tag its attributes started, or is a tag of its own."""
        value = self._text(element, scope)
        if value:
            tags = context["tags"]
            if tags and not tags[-1]["term"]:
                tags[-1]["term"] = value
            else:
                add_tag(context, value, None, None)

    def _enclosure(self, item: _Item, element, key, attrs, scope) -> None:
        self._leaf(element)
        link = dict(attrs)
        href = link.get("url", link.get("uri", link.get("href")))
        if href:
            link.pop("url", None)
            link.pop("uri", None)
            link["href"] = href
        link["rel"] = "enclosure"
        item.data.setdefault("links", []).append(link)

    def _origlink(self, item: _Item, element, key, attrs, scope) -> None:
        item.data[key] = self._stored(element, key, attrs, scope)

    def _media(self, item: _Item, element, key, attrs, scope) -> None:
        """media:content and media:group: feedparser files what is inside them under the item itself."""
        if key == "media_content":
            item.data.setdefault("media_content", []).append(dict(attrs))
        elif element.text and element.text.strip():
            raise Unsupported("text in media:group")
        item.media_depth += 1
        if item.media_depth > _MAX_MEDIA_DEPTH:
            raise Unsupported("media elements nested too deeply")
        for child in element:
            self._item_child(item, child, scope)
        item.media_depth -= 1

    def _thumbnail(self, item: _Item, element, key, attrs, scope) -> None:
        thumbnails = item.data.setdefault("media_thumbnail", [])
        thumbnails.append(dict(attrs))
        url = self._text(element, scope, resolved=True)
        if url.strip() and "url" not in thumbnails[-1]:
            thumbnails[-1]["url"] = url

    def _media_title(self, item: _Item, element, key, attrs, scope) -> None:
        if not item.title_text:
            raise Unsupported("media:title without an item title before it")
        self._body(element, attrs, "text/plain", item.atom)

    def _itunes_image(self, item: _Item, element, key, attrs, scope) -> None:
        self._leaf(element)
        href = attrs.get("href") or attrs.get("url")
        if href:
            item.data["image"] = FeedParserDict(href=href)

    def _itunes_category(self, item: _Item, element, key, attrs, scope) -> None:
        self._leaf(element)
        add_tag(item.data, attrs.get("text"), _ITUNES, None)
        self._category_text(item.data, element, scope)

    def _itunes_keywords(self, item: _Item, element, key, attrs, scope) -> None:
        if attrs:
            raise Unsupported("itunes:keywords with attributes")
        for term in self._text(element, scope).split(","):
            if term.strip():
                add_tag(item.data, term.strip(), _ITUNES, None)

    def _source(self, item: _Item, element, key, attrs, scope) -> None:
        self._leaf(element)  # only the item's 'source' changes, but feedparser forgets the title seen so far
        item.title_text = ""

    def _item_author(self, item: _Item, element, key, attrs, scope) -> None:
        if key == "author" and item.atom:
            self._atom_author(item.data, element, scope)
        else:
            self._text_author(item.data, element, scope)

    # --- shared by feeds and items ------------------------------------------------------------------------------

    def _link(self, context: dict, element: ET.Element, attrs: dict, scope: _Scope, *, in_entry: bool) -> None:
        link = dict(attrs)
        link.setdefault("rel", "alternate")
        link.setdefault("type", "application/atom+xml" if link["rel"] == "self" else "text/html")
        href = link.get("url", link.get("uri", link.get("href")))
        if href:
            link.pop("url", None)
            link.pop("uri", None)
            link["href"] = href
        context.setdefault("links", []).append(link)
        if "href" in link:
            self._leaf(element)
            link["href"] = resolve(scope.base, link["href"])
            if link["rel"] == "alternate" and map_content_type(link["type"]) in HTML_TYPES:
                context["link"] = link["href"]
            return
        value = link_text(self._text(element, scope, resolved=True), in_entry=in_entry)
        context["link"] = value
        if value or not in_entry:
            link["href"] = value

    def _guid(self, context: dict, element: ET.Element, attrs: dict, scope: _Scope) -> None:
        permalink = attrs.get("ispermalink", "true") == "true"
        value = self._text(element, scope, resolved=permalink)
        context["id"] = value
        context.setdefault("guidislink", permalink and "link" not in context)
        if permalink:
            context.setdefault("link", value)

    def _text_author(self, context: dict, element: ET.Element, scope: _Scope) -> None:
        """<author>, <dc:creator>, <managingEditor>, <itunes:author>: "Name", "email", or "email (Name)"."""
        author: dict = {}  # plain dicts: the mapping reads authors with .get("name"), which FeedParserDict does not alias
        context.setdefault("authors", []).append(author)
        context["author"] = value = self._text(element, scope)
        if "@" in value:
            Bookkeeper(context)._sync_author_detail()  # feedparser's own splitting of "email (Name)"
        elif value:  # what that comes to without an e-mail address
            context.setdefault("author_detail", author)
            author["name"] = value

    def _atom_author(self, context: dict, element: ET.Element, scope: _Scope) -> None:
        """<author><name/><email/><uri/></author>."""
        if any((text or "").strip() for text in (element.text, *(part.tail for part in element))):
            raise Unsupported("text in an Atom author")
        context.setdefault("authors", []).append({})
        book = Bookkeeper(context)
        for part in element:
            key = self.names.key(part.tag)
            inner = scope.enter(self._attrs(part))
            if key in ("name", "email"):
                book._save_author(key, self._leaf(part).strip())  # feedparser does not repair these two
            elif key in ("uri", "url", "homepage"):
                book._save_author("href", self._text(part, inner, resolved=True))
            elif not self._generic(part, key):
                raise Unsupported(f"author element {key!r}")
        context["author"] = ""
        book._sync_author_detail()

    def _itunes_owner(self, context: dict, element: ET.Element) -> None:
        """feedparser files the podcast owner's name and e-mail under the feed's (last) author."""
        book = Bookkeeper(context)
        for part in element:
            key = self.names.key(part.tag)
            self._attrs(part)
            if key in ("itunes_name", "itunes_email"):
                book._save_author(key.removeprefix("itunes_"), self._leaf(part).strip(), "publisher")
            elif not self._generic(part, key):
                raise Unsupported(f"itunes:owner element {key!r}")
        book._sync_author_detail("publisher")


# What feedparser does with an item's child, by the child's name (functions taking the reader first).
_ITEM_READERS = {
    "title": Reader._item_title, "link": Reader._item_link, "guid": Reader._item_guid, "id": Reader._item_guid,
    "description": Reader._description, "media_description": Reader._description,
    "itunes_summary": Reader._description, "summary": Reader._description, "content_encoded": Reader._content,
    "content": Reader._content, "category": Reader._category, "dc_subject": Reader._category,
    "enclosure": Reader._enclosure, "feedburner_origlink": Reader._origlink, "media_group": Reader._media,
    "media_content": Reader._media, "media_thumbnail": Reader._thumbnail, "media_title": Reader._media_title,
    "itunes_image": Reader._itunes_image, "itunes_category": Reader._itunes_category,
    "itunes_keywords": Reader._itunes_keywords, "source": Reader._source,
    **{key: Reader._date for key in _DATES},
    **{key: Reader._item_author for key in _TEXT_AUTHORS},
}  # fmt: skip
