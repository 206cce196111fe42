"""Small HTML helpers for feed text: plain text of a title, the <img> elements of a body, paragraphs from text."""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Iterator
from html.parser import HTMLParser
from itertools import islice

# How many <img> elements of a body the image search looks at before giving up on it.
IMG_SEARCH_LIMIT = 10
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
    # str.split() splits on what str.isspace() calls whitespace, as the regex \s does: the same result as
    # re.sub(r"\s+", " ", text).strip(), at a third of the cost
    return " ".join(text.split())


def unique_terms(terms: Iterable[str]) -> list[str]:
    """An entry's categories: the non-empty terms, each once whatever its case, in order, first spelling kept."""
    seen: set[str] = set()
    unique: list[str] = []
    for term in terms:
        if term:
            folded = term.casefold()
            if folded not in seen:
                seen.add(folded)
                unique.append(term)
    return unique


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


# Markup a title labelled HTML really carries: an end tag, a tag with attributes, or a self-closed one. A lone
# "<i>" or "<details>" without any of these is the writer's text ("Die Rückkehr von <i> und <b>", "Why
# <details> beats JavaScript"): posts are plain text, so it is kept, not stripped as an unknown tag.
_REAL_MARKUP = re.compile(r"</[A-Za-z][\w:-]*\s*>|<[A-Za-z][\w:-]*\s+[^<>]*=[^<>]*>|<[A-Za-z][\w:-]*\s*/>")


def title_text(value: str, *, html_label: bool) -> str:
    """A title as one line of plain text. `html_label`: the feed says the title is HTML (Atom type="html",
    or feedparser's guess for RSS); its tags are removed only when it holds markup (`_REAL_MARKUP`)."""
    if not html_label:
        return collapse_space(value)
    if _REAL_MARKUP.search(value):
        return html_to_text(value)
    return collapse_space(html.unescape(value))


def text_to_html(text: str) -> str:
    """Plain text (JSON Feed content_text / summary) as escaped HTML paragraphs with line breaks."""
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", text.replace("\r\n", "\n")) if p.strip()]
    return "\n".join("<p>" + html.escape(p, quote=False).replace("\n", "<br>\n") + "</p>" for p in paragraphs)


# One left-to-right pass over the markup, tokenised the way html.parser does it: every tag is consumed whole
# (so "<img" inside another tag's quoted attribute is not an image); comments, CDATA sections, end tags,
# declarations and processing instructions hide what is inside them, and so do the bodies of <script> and
# <style>; an unclosed comment ends at the next ">"; tag names end at whitespace, "/", ">" or NUL and compare
# case-insensitively in ASCII only. (It still differs from html.parser on stray quotes inside a tag.)
_ATTRIBUTES = r"""(?P<attrs>(?:[^>"']|"[^"]*"|'[^']*')*)"""
# The same attributes, read in runs and never given back: they can be read one way only, and only where that
# reading stops at ">" does a tag end, so nothing a backtrack could try would match. (The tag name before them
# still backtracks: a shorter name can turn a quote into the start of an attribute value.)
_ATTRIBUTE_RUNS = r"""(?:[^>"']++|"[^"]*+"|'[^']*+')*+"""
_HTML_TOKEN = re.compile(
    r"<!--.*?--\s*>|<!--[^>]*>|<!--[^<]*"
    r"|<!\[CDATA\[.*?\]\s*\]\s*>"
    r"|<[!?/][^>]*>"
    r"|<(?P<raw>script|style)(?=[\t\n\r\f />\x00])(?:[^>\"']|\"[^\"]*\"|'[^']*')*>.*?(?:</\s*(?P=raw)\s*>|\Z)"
    r"|<(?P<tag>[a-zA-Z][^\t\n\r\f />\x00]*)" + _ATTRIBUTES + ">",
    re.IGNORECASE | re.DOTALL | re.ASCII,
)
# The same tokens, skipped in one match up to the first <img> element: the loop takes, at each place, the token
# _HTML_TOKEN would find there (atomically: never a shorter reading of it), else one character, and stops where
# that token is an <img> ("img" then a character that ends a tag name; see _IMG_NAME for the other case). So the
# <img> it stops at is the first one finditer would yield, without a match object for every tag before it. (No
# capturing group inside the loop: Python 3.11's re fails on those in a possessive repeat; hence script and style
# apart.)
_IMG_TOKEN = r"<(?P<tag>img)(?=[\t\n\r\f />\x00])(?P<attrs>" + _ATTRIBUTE_RUNS + ")>"
_FIRST_IMG = re.compile(
    r"(?:[^<]++|(?>"  # text first: it is most of a body, and no other alternative starts without "<"
    r"<!--.*?--\s*>|<!--[^>]*+>|<!--[^<]*+"
    r"|<!\[CDATA\[.*?\]\s*\]\s*>"
    r"|<[!?/][^>]*+>"
    r"|<script(?=[\t\n\r\f />\x00])" + _ATTRIBUTE_RUNS + r">.*?(?:</\s*script\s*>|\Z)"
    r"|<style(?=[\t\n\r\f />\x00])" + _ATTRIBUTE_RUNS + r">.*?(?:</\s*style\s*>|\Z)"
    r"|<(?!img[\t\n\r\f />\x00])[a-zA-Z][^\t\n\r\f />\x00]*" + _ATTRIBUTE_RUNS + ">"
    r")|(?!" + _IMG_TOKEN.replace("(?P<tag>img)", "img").replace("(?P<attrs>", "(?:") + r")<)*+"
    + _IMG_TOKEN,
    re.IGNORECASE | re.DOTALL | re.ASCII,
)
# An "<img" of the markup, with the character after it when that one makes the name longer: "<img" then more of
# a tag name ("<imgx", '<img"'). _HTML_TOKEN may still read such a tag as an <img> when the longer name leaves its
# attributes unbalanced, which _FIRST_IMG does not reproduce. Where the markup has one, the search goes token by
# token instead.
_IMG_NAME = re.compile(r"<[iI][mM][gG]([^\t\n\r\f />\x00]?)")  # not IGNORECASE: that search is 5x slower
_LONGER_IMG_NAME = re.compile(r"<[iI][mM][gG][^\t\n\r\f />\x00]")  # only those
# name, then optionally = and a double-quoted, single-quoted or bare value (each a group of its own: the value is
# the one that is not empty). Read in runs that are never given back: no reading of the rest could differ.
_IMG_ATTR = re.compile(r"""([^\s/>=]++)(?:\s*+=++\s*+(?:"([^"]*+)"|'([^']*+)'|([^\s>]*+)))?+""")


def iter_img_tags(fragment: str) -> Iterator[dict[str, str]]:
    """Attributes of the <img> elements of an HTML fragment, in document order, found lazily: names
    lower-cased, values with entities decoded ("" for a bare attribute), a repeated attribute's last value."""
    if not fragment or "<" not in fragment:  # plain text, as most summaries are
        return
    for match in _img_matches(fragment):
        found: dict[str, str] = {}
        for name, double_quoted, single_quoted, bare in _IMG_ATTR.findall(match.group("attrs")):
            value = double_quoted or single_quoted or bare
            if bare[:1] in ("'", '"'):  # a quote never closed: it and the last character go
                value = bare[1:-1]
            found[name.lower()] = html.unescape(value) if "&" in value else value
        yield found


def _img_matches(fragment: str) -> Iterator[re.Match]:
    """The <img> tokens of `fragment`, in order (their "attrs" group is the attributes)."""
    # Each search stops at an <img>, which starts at an "<img": none can start where no "<img" follows, so the body
    # after its last one (after its only picture, say) is never searched. The markup is looked at only as far as
    # the searches went: the search usually ends at the first picture.
    position = found = 0
    while (name := _IMG_NAME.search(fragment, position)) is not None:
        if name.group(1):
            break
        match = _FIRST_IMG.match(fragment, position)
        if _LONGER_IMG_NAME.search(fragment, name.end(), match.end() if match else len(fragment)):
            break
        if match is None:
            return
        position = match.end()
        found += 1
        yield match
    else:
        return
    # A longer name ("<imgx") where the search went: from there on, token by token (the same tokens before it)
    yield from islice(_img_tokens(fragment), found, None)


def _img_tokens(fragment: str) -> Iterator[re.Match]:
    """_img_matches token by token, as the name is read in _HTML_TOKEN itself."""
    for match in _HTML_TOKEN.finditer(fragment):
        tag = match.group("tag")
        if tag is not None and tag.lower() == "img":
            yield match


def img_tags(fragment: str) -> list[dict[str, str]]:
    """The first IMG_SEARCH_LIMIT <img> elements: those an entry's image search looks at."""
    return list(islice(iter_img_tags(fragment), IMG_SEARCH_LIMIT))
