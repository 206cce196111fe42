"""Make a stranger's reply safe to put on the writer's page. Everything here runs once, server-side, when a
comments document is written; the widget then builds its DOM with textContent alone.

* HTML goes through nh3 (Python bindings of ammonia, the Rust allow-list sanitizer; bleach, its Python
  predecessor, is deprecated): a handful of text tags, links with http(s) targets only, nothing else.
* Bidirectional embedding, override and isolate controls (U+202A-U+202E, U+2066-U+2069) are removed: they can
  make a name or a link read backwards ("Trojan Source"). Other control characters go too.
* URLs are kept only when http(s) (avatars: https only), without credentials or white space, and short.
* Every field is cut to a size limit, at a grapheme boundary.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import nh3

from bridge.render.graphemes import truncate

MAX_TEXT = 5_000  # graphemes of a reply's text (Mastodon's own limit is 500 by default; some servers allow 100k)
MAX_HTML = 20_000  # characters of sanitized HTML; a longer reply is shown as its (cut) text
MAX_NAME = 100  # graphemes of a display name
MAX_HANDLE = 320
MAX_URL = 2_048
MAX_LANGUAGE = 35  # BCP 47: long enough for any real tag

# Bidi embeddings, overrides and isolates; C0/C1 controls but tab and newline; the BOM and other invisibles
# that are only ever used to hide things.
_UNSAFE_CHARS = re.compile("[\u202a-\u202e\u2066-\u2069\x00-\x08\x0b-\x1f\x7f-\x9f\ufeff\ufff9-\ufffb]")
# Characters a URL never holds unescaped (RFC 3986): one that has them was made to break out of an attribute.
_NOT_IN_URLS = re.compile(r"[\"<>\\^`{|}]")
_LANGUAGE = re.compile(r"[A-Za-z]{2,8}(?:-[A-Za-z0-9]{1,8})*")

ALLOWED_TAGS = {"p", "br", "a", "span", "strong", "b", "em", "i", "u", "s", "del", "code", "pre", "blockquote",
                "ul", "ol", "li"}
# Mastodon marks the hidden parts of a shortened link (`invisible`, `ellipsis`) and mentions/hashtags with
# classes; the widget's CSS uses them. Nothing else keeps a class, style or id.
ALLOWED_CLASSES = {"span": {"invisible", "ellipsis", "h-card"}, "a": {"mention", "hashtag", "u-url"}}
LINK_REL = "nofollow noopener noreferrer ugc"


def clean_text(value: object, limit: int = MAX_TEXT) -> str:
    """Plain text with the unsafe characters removed, cut to `limit` graphemes."""
    if not isinstance(value, str):
        return ""
    text = _UNSAFE_CHARS.sub("", value.replace("\r\n", "\n").replace("\r", "\n"))
    return truncate(text, limit)


def clean_html(value: object) -> str:
    """The reply's HTML reduced to the allow-list; "" when there is none or it is too long to keep."""
    if not isinstance(value, str) or not value.strip():
        return ""
    cleaned = nh3.clean(
        _UNSAFE_CHARS.sub("", value),
        tags=ALLOWED_TAGS,
        attributes={"a": {"href"}},
        allowed_classes=ALLOWED_CLASSES,
        url_schemes={"http", "https"},
        link_rel=LINK_REL,
        strip_comments=True,
    )
    return cleaned if len(cleaned) <= MAX_HTML else ""


def safe_url(value: object, *, https_only: bool = False) -> str | None:
    """`value` if it is an absolute http(s) URL (https when `https_only`) that can go in an href; else None."""
    if not isinstance(value, str) or not value or len(value) > MAX_URL:
        return None
    if _UNSAFE_CHARS.search(value) or _NOT_IN_URLS.search(value) or any(char.isspace() for char in value):
        return None
    try:
        parts = urlsplit(value)
        host = parts.hostname
    except ValueError:
        return None
    allowed = ("https",) if https_only else ("http", "https")
    if parts.scheme.lower() not in allowed or not host or parts.username is not None or parts.password is not None:
        return None
    return value


def clean_language(value: object) -> str | None:
    if isinstance(value, str) and len(value) <= MAX_LANGUAGE and _LANGUAGE.fullmatch(value):
        return value
    return None
