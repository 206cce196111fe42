"""Step A of the flow: fetch feeds over HTTP, parse them, and give every entry its identity.

Public API (the pipeline is written against exactly these names):

    Fetcher(settings, *, transport=None, version=bridge.__version__)   async; fetch(url, etag=, last_modified=)
    FetchResult                                                         status, url, permanent_url, body, ...
    parse_feed(body, url, *, content_type=None, default_language=None) -> ParsedFeed
    canonical_link(url) -> str;  link_aliases(url) -> list[str]
    discover_feeds(html_body, url) -> list[str]                         autodiscovered feed URLs of a page

Nothing outside this package imports feedparser.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .discover import discover_feeds
    from .fetch import Fetcher, FetchResult
    from .identity import canonical_link, link_aliases
    from .parse import parse_feed

__all__ = ["Fetcher", "FetchResult", "parse_feed", "canonical_link", "link_aliases", "discover_feeds"]

# The longest a feed may have bridge wait before its next poll (RSS ttl, Cache-Control max-age, Retry-After).
MAX_TTL_MINUTES = 7 * 24 * 60

_HOMES = {"Fetcher": "fetch", "FetchResult": "fetch", "parse_feed": "parse", "canonical_link": "identity",
          "link_aliases": "identity", "discover_feeds": "discover"}


def __getattr__(name: str):
    # Each name loads its own module at first use: aiohttp with the fetcher, feedparser with the parser, so a
    # pass with no feed due (or nothing changed to parse) loads neither.
    if name in _HOMES:
        return getattr(import_module(f"{__name__}.{_HOMES[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
