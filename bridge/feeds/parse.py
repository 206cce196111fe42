"""Feed bytes -> ParsedFeed. RSS 0.9x/1.0/2.0 and Atom through feedparser; JSON Feed through jsonfeed.py.

Ordinary RSS 2.0 and Atom documents take the fast path (fastpath.py), which produces the result feedparser
would, 20 times faster; whatever it does not reproduce exactly, feedparser reads. Both results go through
the same mapping below.

feedparser only ever gets bytes in a BytesIO (given `bytes` it would first try them as a *file name*; given a
URL it would fetch), after `sanitize.defuse_doctype`, with the final URL as Content-Location so relative
links and xml:base resolve, and with `sanitize.xml_content_type` as Content-Type. Neither path sanitizes or
rewrites the HTML of bodies: the renderer turns it into plain text (dropping scripts, styles and the like),
and entry images are resolved against each body's own base URL.

Mapping decisions (see identity.py for keys and links):
* link: feedburner:origLink, else the alternate link, else the guid/id when it is a permalink or an http(s)
  URL; absolute; then `canonical_link`. Bare-host links (``<link>coghlan.me/</link>``, which feedparser
  resolves as a path below the feed's directory) are recognised when the channel link has the same form,
  and get the feed's scheme.
* summary_html is what the feed gave as summary/description; content_html is the full content when the feed
  gave one that differs from the summary ('' otherwise). feedparser copies content into `summary` when there
  is no summary; that copy is not used. Plain-text bodies become escaped HTML paragraphs.
* published/updated: aware UTC, None when missing or unparseable. In RSS feeds a date given only as
  dc:date/atom:updated also counts as the publication date (RSS 1.0's only date is dc:date).
* A bozo document that yields entries is used (ParsedFeed.bozo keeps the complaint). No entries plus a parse
  error (or no recognisable feed at all) is FeedParseError. An HTML page is FeedNotAFeed with its feeds.
* Entries repeating an earlier entry's key in the same document are dropped (the first one wins), unless they
  are different posts given the same id (identity.separate_shared_keys).
* Categories nearly every entry of the document carries are marked on each entry (feedwide.py).
"""

from __future__ import annotations

import html
import io
import logging
import re
import xml.sax
from datetime import UTC, datetime
from urllib.parse import urljoin, urlsplit

import feedparser

from bridge.errors import FeedNotAFeed, FeedParseError
from bridge.language import normalise_language
from bridge.model import Entry, ParsedFeed
from bridge.unexpected import entry_left_out

from . import MAX_TTL_MINUTES  # the package's: the pipeline reads it without loading feedparser
from .discover import discover_feeds, sniff
from .feedwide import mark_feed_wide_categories
from .fastpath import FastRead, read_fast_with_tree
from .htmltools import collapse_space, html_to_text, text_to_html, title_text, unique_terms
from .identity import canonical_link, entry_key, separate_shared_keys
from .images import feedparser_images
from .jsonfeed import parse_json_feed
from .mediaalt import describes, media_alt_texts
from .sanitize import defuse_doctype, drop_space_before_declaration, xml_content_type
from .urls import is_plain_absolute, join

log = logging.getLogger("bridge.feeds")

HTML_TYPES = ("text/html", "application/xhtml+xml", "html", "xhtml")
_BARE_HOST = re.compile(r"^((?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,24})(?=/|$)", re.IGNORECASE)
_TAG = re.compile(r"<[a-zA-Z!/]")
# RSS <author> is "email (Name)"; feedparser splits it only when the email has an @
_AUTHOR_WITH_PLACEHOLDER = re.compile(r"^(?:\S+@\S+|hidden|noreply|no-reply|nobody|unknown)\s+\((.+)\)$", re.IGNORECASE)
# bozo exceptions that describe a usable document (encoding guesses, media type), not a broken one
_HARMLESS_BOZO = ("CharacterEncodingOverride", "NonXMLContentType")
# feedparser's lenient (SGML) parser leaves the five XML escapes undecoded in ids and link text, and its
# link repair then mangles them: a double-escaped "?a=1&amp;amp;b=2", "?a=1&b=2" to the strict parser,
# becomes "?a=1&ampb=2". See _Mapper.loose_id and loose_link.
_XML_ESCAPE = re.compile(r"&(amp|lt|gt|quot|apos);")
_XML_ESCAPED = {"amp": "&", "lt": "<", "gt": ">", "quot": '"', "apos": "'"}
_MANGLED_AMP = re.compile(r"&amp(?=[A-Za-z0-9_]+=)")
# A plain lookup in the FeedParserDicts of a result (tags, authors): a tenth of FeedParserDict.get's cost, for keys
# none of its aliases apply to.
_get = dict.get


def parse_feed(body: bytes, url: str, *, content_type: str | None = None, default_language: str | None = None) -> ParsedFeed:
    """Parse one feed document fetched from `url` (the final URL, used to resolve relative links).

    Raises FeedParseError when nothing usable is in it, FeedNotAFeed for an HTML page (with the feeds it
    advertises).
    """
    if not body or not body.strip():
        raise FeedParseError(f"{url}: the body is empty")
    kind = sniff(body, content_type)
    if kind == "html":
        raise FeedNotAFeed(url, discover_feeds(body, url, content_type))
    if kind == "json":
        parsed = parse_json_feed(body, url, default_language=default_language)
    else:
        parsed = _parse_xml(body, url, content_type, default_language)
    mark_feed_wide_categories(parsed.entries)
    return parsed


def _parse_xml(body: bytes, url: str, content_type: str | None, default_language: str | None) -> ParsedFeed:
    data = drop_space_before_declaration(defuse_doctype(body))
    xml_type = xml_content_type(content_type, data)
    fast = _read_fast(data, url, xml_type)
    if fast is None:
        return _map(_read_with_feedparser(data, url, xml_type), data, url, default_language)
    return _map(fast.result, data, url, default_language, fast)


def _map(result, data: bytes, url: str, default_language: str | None, fast: FastRead | None = None) -> ParsedFeed:
    """A feedparser result (or the fast path's, which has the same shape) as a ParsedFeed; `data` is the
    document it was read from (Media RSS alt text is read from it, the same for either reader); `fast`: the fast
    path's reading of it, whose tree spares reading the document again for alt text."""
    exception = result.get("bozo_exception") if result.get("bozo") else None
    complaint = f"{type(exception).__name__}: {exception}" if exception is not None else None
    version = result.get("version") or ""
    if not result.entries:
        if not version:
            why = f" ({complaint})" if complaint else ""
            raise FeedParseError(f"{url}: not an RSS, Atom or JSON feed{why}")
        if exception is not None and type(exception).__name__ not in _HARMLESS_BOZO:
            raise FeedParseError(f"{url}: no entries could be read: {complaint}")
    media_alts = _media_alts(data, result, fast)
    return _Mapper(result, url, default_language).feed(version or "unknown", complaint, media_alts)


def _media_alts(data: bytes, result, fast: FastRead | None) -> list[dict[str, str]]:
    try:
        if fast is None:
            return media_alt_texts(data, len(result.entries)) or []
        if not describes(fast.root, fast.namespaces):  # no alt text to find: most documents
            return []
        return media_alt_texts(data, len(result.entries), fast.root) or []
    except Exception:  # alt text is a nicety: a fault reading it must never cost a poll
        return []


def _read_fast(data: bytes, url: str, xml_type: str) -> FastRead | None:
    try:
        return read_fast_with_tree(data, url, xml_type)
    except Exception:  # a fault in the fast path must never cost a poll: feedparser reads the document instead
        return None


def _read_with_feedparser(data: bytes, url: str, xml_type: str):
    headers = {"content-location": url, "content-type": xml_type}
    try:
        # Bodies stay as the feed wrote them: the renderer makes plain text of them, and images are resolved
        # against each body's base URL in images.py; feedparser's sanitizer would cost three times the parse.
        return feedparser.parse(
            io.BytesIO(data), response_headers=headers, sanitize_html=False, resolve_relative_uris=False
        )
    except RecursionError:
        raise FeedParseError(f"{url}: the document is nested too deeply to parse") from None
    except Exception as exc:  # feedparser on hostile input: translate at the boundary, never crash a poll
        raise FeedParseError(f"{url}: the feed parser failed: {type(exc).__name__}: {exc}") from None


# An absolute http(s) URL whose host is plain lower-case ASCII, with no user part: urlsplit's hostname is group 1.
_PLAIN_HOST = re.compile(r"https?://([a-z0-9.-]+)(?::[0-9]*)?(?:[/?#]|\Z)")


def _host(url: str) -> str:
    plain = _PLAIN_HOST.match(url)
    if plain:
        return plain.group(1).removeprefix("www.")
    try:
        return (urlsplit(url).hostname or "").removeprefix("www.")
    except ValueError:
        return ""


# The path of an http(s) URL; in one urljoin reads as written (is_plain_absolute).
_PLAIN_PATH = re.compile(r"https?://[^/?#]+(/[^?#]*)?")


def _directory(url: str) -> str:
    """urljoin(url, "./"), the folder relative links resolve in, without urljoin's cost for a plain URL whose path
    has no empty, "." or ".." segment (which urljoin would drop or resolve): the path up to its last "/"."""
    plain = _PLAIN_PATH.match(url) if is_plain_absolute(url) else None
    if plain is None:
        return urljoin(url, "./")
    path = plain.group(1)
    if not path:
        return url[: plain.end()] + "/"
    if "//" in path or "/." in path:
        return urljoin(url, "./")
    return url[: plain.start(1)] + path[: path.rfind("/") + 1]


def _same_site(host: str, site: str) -> bool:
    """blog.example.com is on example.com's site, and the other way round."""
    return bool(host) and (host == site or host.endswith("." + site) or site.endswith("." + host))


def _struct_to_datetime(value) -> datetime | None:
    if not value:
        return None
    try:
        return datetime(*value[:6], tzinfo=UTC)
    except (TypeError, ValueError, OverflowError):
        return None


def _text_of(detail, value: str) -> str:
    kind = (detail or {}).get("type") or "text/plain"
    return title_text(value, html_label=kind in HTML_TYPES)


class _Mapper:
    """Turns one feedparser result into the package's model."""

    def __init__(self, result, url: str, default_language: str | None) -> None:
        self.result = result
        self.url = url
        scheme = urlsplit(url).scheme
        self.scheme = scheme if scheme in ("http", "https") else "https"  # a bare host read from a file:// document
        self.default_language = normalise_language(default_language)
        self.rss = (result.get("version") or "").startswith("rss")
        # feedparser falls back to its lenient parser when expat fails, or when no encoding could be settled
        self.loose = isinstance(result.get("bozo_exception"), xml.sax.SAXException) or (
            "encoding" in result and not result.get("encoding"))
        feed = result.feed
        self.directory = _directory(url)
        self.bare_host = self._bare_host(feed.get("link") or "")
        self.site_host = _host(self.absolute(feed.get("link")) or "")
        self.feed_language = normalise_language(feed.get("language") or (feed.get("title_detail") or {}).get("language"))
        # Category terms and author names as cleaned, by what the document wrote: its entries repeat a few of them
        self._terms: dict[str, str] = {}
        self._names: dict[str, str] = {}
        self.feed_authors = self._authors(feed)

    # --- links ------------------------------------------------------------------------------------------

    def _bare_host(self, resolved_link: str) -> str | None:
        """'coghlan.me' when the channel link was written without scheme and resolved below the feed's folder."""
        if not resolved_link.startswith(self.directory):
            return None
        match = _BARE_HOST.match(resolved_link[len(self.directory):])
        return match.group(1).lower() if match else None

    def absolute(self, link: str | None) -> str | None:
        """An absolute http(s) URL, or None; repairs bare-host links (see the module docstring)."""
        if not link or not isinstance(link, str):
            return None
        link = link.strip()
        if not self.bare_host and is_plain_absolute(link):  # what joining and the checks below come to
            return link
        try:
            link = self.repair_bare_host(join(self.url, link))
            if is_plain_absolute(link):  # an http(s) URL with a host: what the checks below come to
                return link
            parts = urlsplit(link)
        except ValueError:  # a malformed IPv6 literal and the like
            return None
        if parts.scheme not in ("http", "https") or not parts.netloc:
            return None
        return link

    def repair_bare_host(self, link: str) -> str:
        if self.bare_host:
            prefix = self.directory + self.bare_host
            if link.lower().startswith(prefix.lower()) and link[len(prefix):len(prefix) + 1] in ("", "/", "?", "#"):
                return f"{self.scheme}://{self.bare_host}{link[len(prefix):] or '/'}"
        return link

    def loose_id(self, value: str) -> str:
        """An id or text link as the strict parser reads it: the lenient one leaves XML escapes in them."""
        if self.loose and "&" in value:
            return _XML_ESCAPE.sub(lambda match: _XML_ESCAPED[match.group(1)], value)
        return value

    def loose_link(self, value: str | None) -> str | None:
        """An RSS <link> as the strict parser reads it. The lenient parser turns a double-escaped separator
        (&amp;amp;b=) into "&ampb="; repaired only when every separator has that form, since "&amplitude=" in a
        single-escaped link reads the same."""
        if not self.loose or not value or "&amp" not in value:
            return value
        if value.count("&") == len(_MANGLED_AMP.findall(value)):
            return _MANGLED_AMP.sub("&", value)
        return value

    def _entry_link(self, entry) -> str | None:
        for candidate in (self.loose_id(entry.get("feedburner_origlink") or ""), self.loose_link(entry.get("link"))):
            link = self.absolute(candidate)
            if link:
                return link
        for item in entry.get("links") or []:
            if item.get("rel", "alternate") == "alternate":
                link = self.absolute(item.get("href"))
                if link:
                    return link
        identifier = self.loose_id(entry.get("id") or "")
        if entry.get("guidislink") or identifier.startswith(("http://", "https://")):
            return self.absolute(identifier)
        return None

    def _link_post(self, entry, link: str | None) -> tuple[str | None, str | None]:
        """(link, target). A linkblog entry whose link points off-site while it has a permalink on the site
        (Atom <link rel="related">, as Daring Fireball writes it; an RSS <guid> URL) is a link post: the
        permalink is its link, the off-site page its target."""
        if not link or not self.site_host or _same_site(_host(link), self.site_host):
            return link, None
        candidates = [item.get("href") for item in entry.get("links") or [] if item.get("rel") == "related"]
        identifier = entry.get("id") or ""
        if self.rss and identifier.startswith(("http://", "https://")):
            candidates.append(identifier)  # a permalink, unless isPermaLink="false" (which feedparser does not tell)
        for candidate in candidates:
            permalink = self.absolute(candidate)
            if permalink and _same_site(_host(permalink), self.site_host):
                return permalink, link
        return link, None

    # --- the feed and its entries ---------------------------------------------------------------------------

    def feed(self, version: str, complaint: str | None, media_alts: list[dict[str, str]]) -> ParsedFeed:
        """`media_alts`: per entry, the alt text of its Media RSS pictures (mediaalt.py); may be empty."""
        feed = self.result.feed
        link = self.absolute(feed.get("link"))
        entries: list[Entry] = []
        for number, raw in enumerate(self.result.entries):
            try:
                entries.append(self.entry(raw, media_alts[number] if number < len(media_alts) else {}))
            except Exception as exc:  # one entry nobody planned for is left out; the others are read
                complaint = complaint or entry_left_out(log, self.url, number, exc)
        return ParsedFeed(
            format=version,
            title=_text_of(feed.get("title_detail"), feed.get("title") or ""),
            link=canonical_link(link) if link else None,
            language=self.feed_language or self.default_language,
            ttl_seconds=self._ttl(feed.get("ttl")),
            entries=separate_shared_keys(entries),
            bozo=complaint,
            hub=self._feed_link(feed, "hub"),
            self_url=self._feed_link(feed, "self"),
        )

    def _feed_link(self, feed, rel: str) -> str | None:
        """The feed's own <atom:link rel=...> (Atom, and RSS with the Atom namespace): where WebSub looks."""
        return next((self.absolute(item.get("href")) for item in feed.get("links") or []
                     if item.get("rel") == rel and item.get("href")), None)

    @staticmethod
    def _ttl(value) -> int | None:
        try:
            minutes = int(float(str(value).strip()))
        except (TypeError, ValueError):
            return None
        if minutes <= 0:
            return None
        return min(minutes, MAX_TTL_MINUTES) * 60

    def _authors(self, obj) -> list[str]:
        names: list[str] = []
        for author in obj.get("authors") or []:
            name = self._name(_get(author or {}, "name") or "")
            if name and name not in names:
                names.append(name)
        if not names and obj.get("author") and "@" not in obj.get("author"):
            names.append(collapse_space(obj["author"]))
        return names

    def _name(self, written: str) -> str:
        name = self._names.get(written)
        if name is None:
            name = collapse_space(html_to_text(written))
            placeholder = _AUTHOR_WITH_PLACEHOLDER.match(name)
            if placeholder:
                name = placeholder.group(1).strip()
            self._names[written] = name
        return name

    def _term(self, written: str) -> str:
        term = self._terms.get(written)
        if term is None:
            term = self._terms[written] = collapse_space(html_to_text(written))
        return term

    def _bodies(self, entry) -> tuple[tuple[str, str | None], tuple[str, str | None]]:
        """(summary, its base URL), (content, its base URL): the base is where xml:base put the body."""
        summary, summary_base = "", None
        detail = entry.get("summary_detail")
        if detail is not None:  # absent when feedparser copied the content into `summary`
            summary = self._html(detail.get("type"), entry.get("summary") or "")
            summary_base = detail.get("base")
        content, content_base = "", None
        for item in entry.get("content") or []:
            value = self._html(item.get("type"), item.get("value") or "")
            if len(value.strip()) > len(content.strip()):
                content, content_base = value, item.get("base")
        if content.strip() == summary.strip():
            content = ""
        return (summary, summary_base), (content, content_base)

    @staticmethod
    def _html(kind: str | None, value: str) -> str:
        """Bodies as HTML. Text without a single tag keeps its line breaks as <p>/<br> even when labelled
        HTML (YouTube's media:description, Bluesky and Hashnode descriptions are plain text)."""
        if (kind or "text/html") in HTML_TYPES:
            if "\n" in value and not _TAG.search(value):
                return text_to_html(html.unescape(value))
            return value.strip()
        return text_to_html(value)

    def _language(self, entry) -> str | None:
        for detail in (*(entry.get("content") or []), entry.get("summary_detail"), entry.get("title_detail")):
            if detail and detail.get("language"):  # most bodies declare none
                language = normalise_language(detail["language"])
                if language:
                    return language
        return self.feed_language or self.default_language

    def entry(self, entry, media_alts: dict[str, str]) -> Entry:
        # Plain lookups from here on: a tenth of FeedParserDict's cost, and none of its aliases apply to the keys
        # read here (its get("updated*") even falls back to published: feedparser issue 310).
        entry = dict(entry)
        link, target = self._link_post(entry, self._entry_link(entry))
        canonical = canonical_link(link) if link else None
        title = _text_of(entry.get("title_detail"), entry.get("title") or "")
        (summary, summary_base), (content, content_base) = self._bodies(entry)
        published = _struct_to_datetime(entry.get("published_parsed"))
        updated = _struct_to_datetime(entry.get("updated_parsed"))
        if published is None and self.rss:
            published = updated
        categories = unique_terms([self._term(_get(tag, "term") or _get(tag, "label") or "")
                                   for tag in entry.get("tags") or []])
        identifier = self.loose_id(entry.get("id") or "")
        if identifier:
            identifier = self.repair_bare_host(identifier)
        return Entry(
            key=entry_key(
                identifier, canonical, title, entry.get("published") or entry.get("updated") or "", content or summary
            ),
            link=canonical,
            title=title,
            summary_html=summary,
            content_html=content,
            published=published,
            updated=updated,
            categories=categories,
            language=self._language(entry),
            feed_language=self.feed_language or self.default_language,
            authors=self._authors(entry) or list(self.feed_authors),
            images=feedparser_images(
                entry, self.url, ((content, "content:img", content_base), (summary, "summary:img", summary_base)),
                media_alts,
            ),
            target=target,
        )
