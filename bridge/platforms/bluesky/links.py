"""Links as Bluesky shows them: a long URL shortened in the text, its link facet keeping the whole URI."""

from __future__ import annotations

from urllib.parse import urlsplit

from bridge.platforms.bluesky.limits import BLUESKY_LINK_PATH_DISPLAY, BLUESKY_LINK_PATH_FULL
from bridge.render import graphemes


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
