"""Step A of the flow: fetch feeds over HTTP, parse them, and give every entry its identity.

Public API (the pipeline is written against exactly these names):

    Fetcher(settings, *, transport=None, version=bridge.__version__)   async; fetch(url, etag=, last_modified=)
    FetchResult                                                         status, url, permanent_url, body, ...
    parse_feed(body, url, *, content_type=None, default_language=None) -> ParsedFeed
    canonical_link(url) -> str;  link_aliases(url) -> list[str]
    discover_feeds(html_body, url) -> list[str]                         autodiscovered feed URLs of a page

Nothing outside this package imports feedparser.
"""

from .discover import discover_feeds
from .fetch import Fetcher, FetchResult
from .identity import canonical_link, link_aliases
from .parse import parse_feed

__all__ = ["Fetcher", "FetchResult", "parse_feed", "canonical_link", "link_aliases", "discover_feeds"]
