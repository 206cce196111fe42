"""Which hub and topic a fetched feed names. The spec (section 4) puts the HTTP Link header first: a
publisher's CDN or server may add it without touching the document; the document's own links come next."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bridge.feeds import FetchResult
    from bridge.model import ParsedFeed


def link_header_rels(header: str | None) -> dict[str, str]:
    """rel -> the first URL with it, from a Link header ('<https://hub>; rel="hub", <...>; rel="self"')."""
    found: dict[str, str] = {}
    if not header:
        return found
    # a tested parser of RFC 8288 Link headers (quoted commas, params); imported here, as requests costs a
    # tenth of a second of start-up and most feeds send no Link header
    from requests.utils import parse_header_links

    for link in parse_header_links(header):
        for rel in (link.get("rel") or "").split():
            found.setdefault(rel.lower(), link.get("url", "").strip())
    return found


def hub_and_topic(result: FetchResult, parsed: ParsedFeed | None) -> tuple[str | None, str | None]:
    """(hub, topic) for a fetched feed: (None, None) when it names no hub. The topic is the self URL the
    publisher gave (what it pings its hub with), else the URL bridge fetched."""
    rels = link_header_rels(result.link_header)
    hub = rels.get("hub") or (parsed.hub if parsed else None)
    if not hub or not hub.startswith(("http://", "https://")):
        return None, None
    topic = rels.get("self") or (parsed.self_url if parsed else None) or result.url
    return hub, topic
