"""What a body is (feed XML, JSON, HTML page) and, for an HTML page, which feeds it advertises."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

FEED_LINK_TYPES = (
    "application/rss+xml",
    "application/atom+xml",
    "application/feed+json",
    "application/json",
    "application/rdf+xml",
)
_BOMS = (b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")
_PROLOG_ITEM = re.compile(rb"\s*(?:<\?.*?\?>|<!--.*?-->|<!DOCTYPE[^>\[]*(?:\[.*?\])?\s*>)", re.DOTALL | re.IGNORECASE)
_ROOT = re.compile(rb"\s*<([A-Za-z_][\w.:-]*)")
FEED_ROOTS = frozenset({b"rss", b"feed", b"rdf", b"channel"})
HTML_MIME_TYPES = ("text/html", "application/xhtml+xml")
SNIFF_BYTES = 8192
DISCOVERY_BYTES = 1_000_000


def _text_start(body: bytes) -> bytes:
    head = body[:SNIFF_BYTES]
    for bom in _BOMS:
        if head.startswith(bom):
            head = head[len(bom):]
            break
    if head[:1] == b"\x00" or head[1:2] == b"\x00":  # UTF-16 without a BOM: good enough for sniffing
        head = head.replace(b"\x00", b"")
    return head


def root_element(body: bytes) -> str | None:
    """Local name of the first element after the XML prolog (declaration, comments, doctype), lower-case."""
    head = _text_start(body)
    position = 0
    while True:
        match = _PROLOG_ITEM.match(head, position)
        if not match or match.end() == position:
            break
        position = match.end()
    root = _ROOT.match(head, position)
    if not root:
        return None
    return root.group(1).rsplit(b":", 1)[-1].lower().decode("ascii", "replace")


def looks_like_json(body: bytes) -> bool:
    return _text_start(body).lstrip()[:1] in (b"{", b"[")


def sniff(body: bytes, content_type: str | None = None) -> str:
    """'json', 'feed' (XML with an rss/feed/RDF root), 'html', or 'xml' (anything else: let the parser try)."""
    mime = (content_type or "").split(";", 1)[0].strip().lower()
    if looks_like_json(body):
        return "json"
    root = root_element(body)
    if root is not None and root.encode() in FEED_ROOTS:
        return "feed"
    if root == "html":
        return "html"
    head = _text_start(body)[:2048].lower()
    if mime in HTML_MIME_TYPES and root is None and b"<rss" not in head and b"<feed" not in head:
        return "html"
    if mime in HTML_MIME_TYPES and (b"<head" in head or b"<body" in head or b"<html" in head):
        return "html"
    if mime in ("application/json", "application/feed+json"):
        return "json"
    return "xml"


class _LinkCollector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.base: str | None = None
        self.links: list[tuple[str, str]] = []
        self.done = False

    def handle_starttag(self, tag, attrs):
        if self.done:
            return
        values = {name.lower(): (value or "") for name, value in attrs}
        if tag == "base" and self.base is None and values.get("href"):
            self.base = values["href"].strip()
        elif tag == "link":
            rels = values.get("rel", "").lower().split()
            kind = values.get("type", "").split(";", 1)[0].strip().lower()
            if "alternate" in rels and kind in FEED_LINK_TYPES and values.get("href", "").strip():
                self.links.append((values["href"].strip(), kind))
        elif tag == "body":
            self.done = True  # <link rel=alternate> belongs in <head>

    handle_startendtag = handle_starttag


def _decode(body: bytes, content_type: str | None) -> str:
    charset = None
    for parameter in (content_type or "").split(";")[1:]:
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "charset":
            charset = value.strip().strip("\"'")
    meta = re.search(rb"<meta[^>]+charset=[\"']?([\w-]+)", body[:4096], re.IGNORECASE)
    for candidate in (charset, meta.group(1).decode("ascii") if meta else None, "utf-8"):
        if not candidate:
            continue
        try:
            return body.decode(candidate)
        except (LookupError, UnicodeDecodeError):
            continue
    return body.decode("utf-8", "replace")


def discover_feeds(body: bytes, url: str, content_type: str | None = None) -> list[str]:
    """Absolute URLs of the feeds an HTML page advertises with <link rel="alternate" type="...">, in page order."""
    collector = _LinkCollector()
    try:
        collector.feed(_decode(body[:DISCOVERY_BYTES], content_type))
        collector.close()
    except Exception:
        pass
    try:
        base = urljoin(url, collector.base) if collector.base else url
    except ValueError:
        base = url
    found: list[str] = []
    for href, _kind in collector.links:
        try:
            absolute = urljoin(base, href)
            scheme = urlsplit(absolute).scheme
        except ValueError:
            continue
        if scheme in ("http", "https") and absolute not in found:
            found.append(absolute)
    return found
