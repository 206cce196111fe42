"""URLs in plain text: finding them, and the "here (https://…)" pointers among them.

How a platform counts or shows them is its own (bridge/platforms/<name>/).
"""

from __future__ import annotations

import functools
import re
from urllib.parse import urlsplit

# Characters a URL in running text may contain (RFC 3986 plus the Latin accents and Cyrillic letters that
# Mastodon's extractor also accepts); it must end on a letter, digit or one of = _ # / + - (a closing
# parenthesis only when balanced). Trailing . , ; : ! ? ' " belong to the sentence, not the link. Like
# Mastodon's extractor, a URL glued to a preceding letter, digit, @, $ or # is not a link.
_URL = re.compile(r"(?<![A-Za-z0-9@$#＠＃])https?://[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%\u00c0-\u024f\u0400-\u04ff]+", re.IGNORECASE)
_URL_END = re.compile(r"[A-Za-z0-9=_#/+\-\u00c0-\u024f\u0400-\u04ff]")

# Link texts that only point at something ("see here"): without their address they leave the sentence dangling.
POINTER_WORDS = frozenset(
    (
        "here", "this", "this post", "this article", "this link", "this one", "this thread", "this video",
        "link", "click here", "read here", "see here", "here's", "there", "source",
        "hier", "ici", "aquí",  # de, fr, es
    )
)  # fmt: skip
# A pointer word with its address in parentheses after it, as html_to_text writes it.
_POINTER_LINK = re.compile(r"(?<!\w)(?P<word>[^\W\d_][\w' ]{0,20}?) \((?P<url>https?://[^\s()]+)\)")


def is_pointer(label: str) -> bool:
    return " ".join(label.split()).casefold().rstrip(".:!?,") in POINTER_WORDS


def pointer_links(text: str) -> list[tuple[int, int, str, str]]:
    """(start, end, word, url) of every "here (https://…)" in plain text: Bluesky links the word itself."""
    out = []
    if " (http" not in text:  # what every match holds: most texts have no pointer, and are not searched
        return out
    for match in _POINTER_LINK.finditer(text):
        word = match.group("word")
        for start in range(len(word)):  # the longest tail of the words before "(" that is a pointer
            if (start == 0 or word[start - 1] == " ") and is_pointer(word[start:]):
                out.append((match.start("word") + start, match.end(), word[start:], match.group("url")))
                break
    return out


def without_pointer_urls(text: str) -> str:
    """"here (https://…)" -> "here", where the words cannot carry their link."""
    for start, end, word, _url in reversed(pointer_links(text)):
        text = text[:start] + word + text[end:]
    return text


def find_urls(text: str) -> list[tuple[int, int]]:
    """(start, end) of every http(s) URL in plain text."""
    spans = []
    if "://" not in text:  # what every URL holds: most texts have none, and are not searched
        return spans
    for match in _URL.finditer(text):
        start, end = match.span()
        while end > start:
            tail = text[end - 1]
            if tail == ")" and text[start:end].count("(") >= text[start:end].count(")"):
                break
            if _URL_END.match(tail):
                break
            end -= 1
        if end - start > len("https://") and _has_host(text[start:end]):
            spans.append((start, end))
    return spans


@functools.lru_cache(maxsize=256)  # a post's few URLs, found again in every cut the fitter measures
def _has_host(url: str) -> bool:
    try:
        return bool(urlsplit(url).hostname)
    except ValueError:  # "http://[not-an-address"
        return False
