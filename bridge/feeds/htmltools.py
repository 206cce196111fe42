"""Small HTML helpers for feed text: plain text of a title, the <img> elements of a body, paragraphs from text."""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser

_SPACE = re.compile(r"\s+")
_SKIP_TEXT_IN = frozenset({"script", "style", "template", "noscript"})


class _TextCollector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag, attrs):
        if tag in _SKIP_TEXT_IN:
            self._skip += 1
        elif tag in ("br", "p", "div", "li"):
            self.parts.append(" ")

    def handle_endtag(self, tag):
        if tag in _SKIP_TEXT_IN and self._skip:
            self._skip -= 1

    def handle_data(self, data):
        if not self._skip:
            self.parts.append(data)


def collapse_space(text: str) -> str:
    return _SPACE.sub(" ", text).strip()


def html_to_text(fragment: str) -> str:
    """Tags removed, entities decoded, whitespace collapsed: for titles and names, not for bodies."""
    if not fragment:
        return ""
    if "<" not in fragment:
        return collapse_space(html.unescape(fragment))
    collector = _TextCollector()
    try:
        collector.feed(fragment)
        collector.close()
    except Exception:  # HTMLParser is lenient; this is a last resort against pathological input
        return collapse_space(html.unescape(re.sub(r"<[^>]*>", " ", fragment)))
    return collapse_space("".join(collector.parts))


def text_to_html(text: str) -> str:
    """Plain text (JSON Feed content_text / summary) as escaped HTML paragraphs with line breaks."""
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", text.replace("\r\n", "\n")) if p.strip()]
    return "\n".join("<p>" + html.escape(p, quote=False).replace("\n", "<br>\n") + "</p>" for p in paragraphs)


class _ImageCollector(HTMLParser):
    def __init__(self, limit: int) -> None:
        super().__init__(convert_charrefs=True)
        self.images: list[dict[str, str]] = []
        self.limit = limit

    def handle_starttag(self, tag, attrs):
        if tag == "img" and len(self.images) < self.limit:
            self.images.append({name: (value or "") for name, value in attrs})

    handle_startendtag = handle_starttag


def img_tags(fragment: str, limit: int = 10) -> list[dict[str, str]]:
    """Attributes of the first `limit` <img> elements of an HTML fragment, in document order."""
    if not fragment or "<img" not in fragment.lower():
        return []
    collector = _ImageCollector(limit)
    try:
        collector.feed(fragment)
        collector.close()
    except Exception:
        pass
    return collector.images
