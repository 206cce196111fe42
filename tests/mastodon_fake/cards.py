"""Link preview cards, built the way Mastodon builds them (asynchronously, from the page).

Mastodon fetches the FIRST http(s) URL of a status after the status is created, and makes
a card only from a 200 ``text/html`` answer with a title (``og:title`` or ``<title>``).
Description comes from ``og:description`` or ``<meta name="description">``, the image from
``og:image`` (resolved against the page URL and downloaded by the server), the card URL
from ``og:url`` when it is on the same host as the page.

The fake only ever connects to loopback addresses: a host is fetched when it is a
loopback IP or ``localhost``, or when the fake was told to map it (``hosts=``).
"""

from __future__ import annotations

import html
import html.parser
import ipaddress
import urllib.parse
from typing import Any

import httpx


class _HeadParser(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.meta_property: dict[str, str] = {}
        self.meta_name: dict[str, str] = {}
        self.links: dict[str, str] = {}
        self.title: str | None = None
        self.lang: str | None = None
        self._in_title = False
        self._title_parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k.lower(): (v or "") for k, v in attrs}
        if tag == "html" and a.get("lang"):
            self.lang = a["lang"]
        elif tag == "meta":
            content = a.get("content")
            if content is None:
                return
            for prop in a.get("property", "").split():
                self.meta_property.setdefault(prop.lower(), content)
            if a.get("name"):
                self.meta_name.setdefault(a["name"].lower(), content)
        elif tag == "link" and a.get("href"):
            for rel in a.get("rel", "").lower().split():
                self.links.setdefault(rel, a["href"])
        elif tag == "title" and self.title is None:
            self._in_title = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "title" and self._in_title:
            self._in_title = False
            self.title = "".join(self._title_parts)

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self._title_parts.append(data)

    def meta(self, name: str) -> str | None:
        return self.meta_property.get(name) or self.meta_name.get(name)


def parse_page(page_html: str, page_url: str) -> dict[str, Any] | None:
    """Card attributes from a page, or None when Mastodon would make no card (no title)."""
    parser = _HeadParser()
    try:
        parser.feed(page_html)
        parser.close()
    except Exception:
        pass
    title = (parser.meta("og:title") or "").strip() or (parser.title or "").strip()
    if not title:
        return None
    description = parser.meta("og:description") or parser.meta_name.get("description") or ""
    image = parser.meta("og:image")
    image_url = urllib.parse.urljoin(page_url, image) if image else None
    canonical = parser.meta("og:url") or parser.links.get("canonical")
    card_url = page_url
    if canonical:
        absolute = urllib.parse.urljoin(page_url, canonical)
        a, b = urllib.parse.urlsplit(absolute), urllib.parse.urlsplit(page_url)
        if a.scheme in ("http", "https") and a.hostname == b.hostname:
            card_url = absolute
    lang = parser.lang or (parser.meta("og:locale") or "").replace("_", "-") or None
    if lang:
        lang = lang.split("-")[0].lower() or None
    author = parser.meta("article:author") or parser.meta_name.get("author") or ""
    return {
        "url": card_url,
        "title": html.unescape(title),
        "description": description,
        "language": lang,
        "type": "link",
        "author_name": author,
        "author_url": "",
        "provider_name": parser.meta("og:site_name") or "",
        "provider_url": "",
        "html": "",
        "width": _int(parser.meta("og:image:width")),
        "height": _int(parser.meta("og:image:height")),
        "image_description": parser.meta("og:image:alt") or "",
        "embed_url": "",
        "published_at": parser.meta("article:published_time") or None,
        "_image_source": image_url,
    }


def _int(value: str | None) -> int:
    try:
        return int(value) if value else 0
    except ValueError:
        return 0


def is_loopback_host(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def resolve(url: str, hosts: dict[str, str]) -> tuple[str, str] | None:
    """(url to connect to, Host header) for a loopback fetch, or None if not allowed.

    ``hosts`` maps "name" or "name:port" to "127.0.0.1" or "127.0.0.1:port".
    """
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    host = parts.hostname.lower()
    port = parts.port
    host_header = parts.netloc.rsplit("@", 1)[-1]
    target = None
    for key in (f"{host}:{port}" if port else None, host):
        if key and key in hosts:
            target = hosts[key]
            break
    if target is None:
        if not is_loopback_host(host):
            return None
        target_host, target_port = host, port
    else:
        if ":" in target and not target.startswith("["):
            target_host, _, p = target.rpartition(":")
            target_port = int(p)
        else:
            target_host, target_port = target, port
        if not is_loopback_host(target_host):
            return None
    netloc = target_host if target_port is None else f"{target_host}:{target_port}"
    connect = urllib.parse.urlunsplit(("http" if parts.scheme == "http" else parts.scheme, netloc, parts.path or "/", parts.query, ""))
    return connect, host_header


def fetch(url: str, hosts: dict[str, str], accept: str, timeout: float = 5.0, limit: int = 4 * 1024 * 1024) -> tuple[int, str, bytes] | None:
    """GET a loopback URL (following up to 5 loopback redirects): (status, mime type, body)."""
    current = url
    for _ in range(6):
        target = resolve(current, hosts)
        if target is None:
            return None
        connect, host_header = target
        try:
            with httpx.Client(timeout=timeout, follow_redirects=False, trust_env=False, verify=False) as client:
                response = client.get(
                    connect,
                    headers={"Host": host_header, "Accept": accept, "User-Agent": "MastodonFake (+loopback) Bot"},
                )
        except httpx.HTTPError:
            return None
        if response.status_code in (301, 302, 303, 307, 308) and "location" in response.headers:
            current = urllib.parse.urljoin(current, response.headers["location"])
            continue
        mime = response.headers.get("content-type", "").split(";")[0].strip().lower()
        return response.status_code, mime, response.content[:limit]
    return None
