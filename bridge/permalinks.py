"""Permalinks nobody else can open: a site generator run with its development base URL (Jekyll's
``url: http://localhost:4000``, Hugo's ``baseURL``) writes feeds whose every link points at the writer's own
machine. Posting them embarrasses the writer and helps no reader, so such entries are recorded, not posted,
and the feed is flagged with the fix.

A feed the admin configured on a private or loopback address is their choice (a home server, the tests' feeds
on 127.0.0.1): its links to the same kind of address are fine. What is refused is a permalink on a local host
(addresses.is_local_host) in a feed served from a public one, and a loopback permalink (localhost, 127.x, ::1)
in a feed that is not itself on loopback.
"""

from __future__ import annotations

import functools
import re
from urllib.parse import urlsplit

from bridge.addresses import LOOPBACK, is_local_host, parse

LOOPBACK_NAMES = ("localhost",)
# An http(s) URL whose authority is a plain lower-case host and perhaps a port: urlsplit's hostname is group 1.
_PLAIN_AUTHORITY = re.compile(r"https?://([a-z0-9.-]+)(?::[0-9]*)?(?:[/?#]|\Z)")


def link_host(url: str) -> str:
    """The host a reader's browser would ask for, lower-case, without a trailing dot ("" when there is none)."""
    plain = _PLAIN_AUTHORITY.match(url)
    if plain:  # nearly every permalink; a poll asks about each one
        return plain.group(1).rstrip(".")
    try:
        return (urlsplit(url).hostname or "").lower().rstrip(".")
    except ValueError:
        return ""


def _loopback(host: str) -> bool:
    ip = parse(host)
    if ip is not None:
        return any(ip in network for network in LOOPBACK if network.version == ip.version)
    return host in LOOPBACK_NAMES or host.endswith(".localhost")


def unreachable_site(link: str | None, feed_url: str, *, host: str | None = None, feed_host: str | None = None) -> str | None:
    """The base URL (``http://localhost:4000``) of `link` when readers of the feed at `feed_url` cannot open it;
    None when they can. `host`, `feed_host`: their link_host when the caller has it (a poll asks about 200,000
    permalinks of 10,000 feeds: the document's reader works out each link's host, the poll each feed's once)."""
    host = link_host(link or "") if host is None else host
    if not host or not _refused(host, link_host(feed_url) if feed_host is None else feed_host):
        return None
    parts = urlsplit(link)
    shown = f"[{host}]" if ":" in host else host
    return f"{parts.scheme}://{shown}" + (f":{parts.port}" if parts.port else "")


@functools.lru_cache(maxsize=4096)
def _refused(host: str, feed_host: str) -> bool:
    """Asked for every entry polled, about a handful of hosts: the address checks are worked out once each."""
    if not is_local_host(host):
        return False
    return not (is_local_host(feed_host) and (_loopback(feed_host) or not _loopback(host)))


def hostless_alias(aliases: list[str]) -> str | None:
    """The main alias without its host ("*/2020/01/post"): how an entry recorded under a local base URL is
    recognised once the site is fixed and the same post comes back under its real host (and a new key)."""
    if not aliases:
        return None
    main = aliases[0]
    cut = min((i for i in (main.find("/"), main.find("?"), main.find("#")) if i >= 0), default=len(main))
    return "*" + main[cut:]


def site_url_fix(site: str) -> str:
    return (f"its permalinks point to {site}, which readers cannot open: your site's base URL is set to {site} — "
            "fix it in your site's config (Jekyll: url in _config.yml; Hugo: baseURL); "
            "these entries are not posted")
