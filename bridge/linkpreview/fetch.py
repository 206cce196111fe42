"""Fetch an article page's preview data and a card thumbnail, safely.

Every fetch here is driven by feed content, so it is capped and fenced:
- only http(s); at most MAX_REDIRECTS hops, followed by hand so that EVERY hop's host is resolved and checked
  before anything connects to it: private, loopback, link-local, shared, reserved and multicast addresses
  are refused (FetchRefused) unless allowed — `allow_private=True` (the config's
  `[bridge] allow_private_addresses`) allows every address; a collection of networks (e.g. LOOPBACK) allows
  just those, so tests can serve pages on 127.0.0.1 and still see 10.0.0.1 or 169.254.169.254 refused;
- a time cap for the whole fetch (TOTAL_TIMEOUT) on top of the client's own timeouts, and a size cap
  (MAX_PAGE_BYTES, MAX_IMAGE_BYTES);
- images are decoded by Pillow only after their header says they are at most MAX_IMAGE_PIXELS
  (decompression bombs are refused), and non-images are refused (ImageRefused).

The client is the caller's httpx.Client (its User-Agent, its transport); redirects are never left to it.
Results are cached per URL in a small in-process LRU.
"""

from __future__ import annotations

import io
import ipaddress
import logging
import socket
import threading
import time
import warnings
from collections import OrderedDict
from collections.abc import Callable, Collection
from typing import Union
from urllib.parse import urljoin, urlsplit

import httpx
from bs4 import BeautifulSoup
from PIL import Image, ImageOps, UnidentifiedImageError

from bridge.linkpreview.model import FetchFailed, FetchRefused, ImageRefused, LinkPreview, LinkPreviewError, Thumbnail
from bridge.model import Entry
from bridge.render.limits import BLUESKY_THUMB_MAX_BYTES, CARD_DESCRIPTION_MAX_GRAPHEMES

log = logging.getLogger(__name__)

MAX_REDIRECTS = 5
TOTAL_TIMEOUT = 20.0  # seconds for one fetch, redirects and body included
REQUEST_TIMEOUT = httpx.Timeout(10.0, connect=5.0)
MAX_PAGE_BYTES = 1_000_000  # the <head> is what we want; most pages have it in the first 100 kB
MAX_IMAGE_BYTES = 15_000_000
MAX_IMAGE_PIXELS = 40_000_000  # 8000 x 5000; more is refused before decoding (decompression bomb)
THUMB_MAX_SIDE = 2000
THUMB_MAX_BYTES = BLUESKY_THUMB_MAX_BYTES
JPEG_QUALITIES = (85, 75, 65, 55, 45)
DOWNSCALE_STEP = 0.75
MIN_THUMB_SIDE = 32
CACHE_SIZE = 256
KEEP_AS_IS = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp", "GIF": "image/gif"}
HTML_TYPES = ("text/html", "application/xhtml+xml")
LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))

AllowPrivate = Union[bool, Collection[Union[str, ipaddress.IPv4Network, ipaddress.IPv6Network]]]
Resolver = Callable[[str, int], list[str]]


# --- addresses ----------------------------------------------------------------------------------------------


def system_resolver(host: str, port: int) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise FetchFailed(f"cannot resolve {host}: {exc}") from None
    return sorted({info[4][0] for info in infos})


def _networks(allow_private: AllowPrivate) -> list:
    if isinstance(allow_private, bool):
        return []
    return [ipaddress.ip_network(n, strict=False) if isinstance(n, str) else n for n in allow_private]


def check_url(url: str, allow_private: AllowPrivate = False, resolver: Resolver = system_resolver) -> None:
    """Raise FetchRefused unless `url` is http(s) and every address its host resolves to is allowed."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise FetchRefused(f"{url!r} is not a valid URL") from None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise FetchRefused(f"{url!r} is not an http(s) URL")
    if allow_private is True:
        return
    allowed = _networks(allow_private)
    port = port or (443 if parts.scheme.lower() == "https" else 80)
    host = parts.hostname
    try:
        ipaddress.ip_address(host.strip("[]"))
        addresses = [host.strip("[]")]
    except ValueError:
        addresses = resolver(host, port)
    if not addresses:
        raise FetchFailed(f"{host} has no address")
    for address in addresses:
        ip = ipaddress.ip_address(address.split("%", 1)[0].strip("[]"))
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        if ip.is_global and not ip.is_multicast:
            continue
        if any(ip in network for network in allowed):
            continue
        raise FetchRefused(
            f"{url} leads to {ip}, a private, loopback or link-local address; "
            "set [bridge] allow_private_addresses = true if bridge should fetch from your own network"
        )


# --- fetching -----------------------------------------------------------------------------------------------


def _fetch(
    url: str,
    *,
    client: httpx.Client,
    allow_private: AllowPrivate,
    max_bytes: int,
    accept: str,
    resolver: Resolver,
    stop_at: bytes | None = None,
    truncate: bool = False,
) -> tuple[bytes, str, str]:
    """GET `url`, following redirects by hand with every hop checked. Returns (body, content type, final URL)."""
    deadline = time.monotonic() + TOTAL_TIMEOUT
    current = url
    for _hop in range(MAX_REDIRECTS + 1):
        if time.monotonic() > deadline:
            raise FetchFailed(f"{url}: took more than {TOTAL_TIMEOUT:g} s")
        check_url(current, allow_private, resolver)
        request = client.build_request("GET", current, headers={"Accept": accept}, timeout=REQUEST_TIMEOUT)
        try:
            response = client.send(request, stream=True, follow_redirects=False)
        except httpx.HTTPError as exc:
            raise FetchFailed(f"{current}: {type(exc).__name__}: {exc}") from None
        try:
            if response.is_redirect:
                location = response.headers.get("location")
                if not location:
                    raise FetchFailed(f"{current}: redirect without a Location")
                current = urljoin(current, location)
                continue
            if response.status_code != 200:
                raise FetchFailed(f"{current}: HTTP {response.status_code}")
            declared = response.headers.get("content-length")
            if declared and declared.isdigit() and int(declared) > max_bytes and not truncate:
                raise FetchFailed(f"{current}: {declared} bytes is more than the {max_bytes} allowed")
            chunks: list[bytes] = []
            size = 0
            try:
                for chunk in response.iter_bytes():
                    chunks.append(chunk)
                    size += len(chunk)
                    if size > max_bytes:
                        if truncate:
                            break
                        raise FetchFailed(f"{current}: more than the {max_bytes} bytes allowed")
                    if time.monotonic() > deadline:
                        raise FetchFailed(f"{current}: took more than {TOTAL_TIMEOUT:g} s")
                    if stop_at is not None and stop_at in chunk.lower():
                        break
            except httpx.HTTPError as exc:
                raise FetchFailed(f"{current}: {type(exc).__name__}: {exc}") from None
            body = b"".join(chunks)[:max_bytes]
            return body, response.headers.get("content-type", ""), str(response.url)
        finally:
            response.close()
    raise FetchFailed(f"{url}: more than {MAX_REDIRECTS} redirects")


class _LRU:
    def __init__(self, size: int) -> None:
        self.size = size
        self.data: OrderedDict = OrderedDict()
        self.lock = threading.Lock()

    def get(self, key):
        with self.lock:
            if key in self.data:
                self.data.move_to_end(key)
                return self.data[key]
        return None

    def put(self, key, value) -> None:
        with self.lock:
            self.data[key] = value
            self.data.move_to_end(key)
            while len(self.data) > self.size:
                self.data.popitem(last=False)

    def clear(self) -> None:
        with self.lock:
            self.data.clear()


_pages = _LRU(CACHE_SIZE)
_thumbnails = _LRU(CACHE_SIZE)


def clear_cache() -> None:
    _pages.clear()
    _thumbnails.clear()


def _policy_key(allow_private: AllowPrivate) -> object:
    return allow_private if isinstance(allow_private, bool) else tuple(sorted(str(n) for n in _networks(allow_private)))


# --- pages --------------------------------------------------------------------------------------------------


def fetch_link_preview(
    url: str,
    *,
    client: httpx.Client,
    allow_private: AllowPrivate = False,
    fallback: Entry | None = None,
    resolver: Resolver = system_resolver,
) -> LinkPreview:
    """The page's own title, description and image (OpenGraph, then Twitter card, then <title> / meta
    description), with `fallback` (the feed's entry) filling the gaps.

    Without a fallback, a page that cannot be had raises FetchRefused / FetchFailed. With one, the feed's data
    is returned instead (and the reason logged): the post still goes out.
    """
    key = (url, _policy_key(allow_private))
    page = _pages.get(key)
    if page is None:
        try:
            body, content_type, final_url = _fetch(
                url,
                client=client,
                allow_private=allow_private,
                max_bytes=MAX_PAGE_BYTES,
                accept="text/html,application/xhtml+xml;q=0.9,*/*;q=0.1",
                resolver=resolver,
                stop_at=b"</head>",
                truncate=True,
            )
            if content_type and not content_type.split(";")[0].strip().lower() in HTML_TYPES:
                raise FetchFailed(f"{url}: not an HTML page ({content_type})")
            page = parse_page(body, final_url, url=url, content_type=content_type)
        except LinkPreviewError as exc:
            if fallback is None:
                raise
            log.info("link preview for %s: %s; using the feed's own data", url, exc)
            return merge_preview(LinkPreview(url=url), fallback)
        _pages.put(key, page)
    return merge_preview(page, fallback) if fallback is not None else page


def parse_page(body: bytes, base_url: str, *, url: str | None = None, content_type: str = "") -> LinkPreview:
    """OpenGraph / Twitter card / HTML metadata of a page (relative URLs resolved against `base_url`)."""
    charset = None
    if "charset=" in content_type.lower():
        charset = content_type.lower().split("charset=", 1)[1].split(";")[0].strip().strip("\"'") or None
    soup = BeautifulSoup(body, "html.parser", from_encoding=charset)
    meta: dict[str, str] = {}
    for tag in soup.find_all("meta"):
        name = (tag.get("property") or tag.get("name") or "").strip().lower()
        content = tag.get("content")
        if name and content and name not in meta:
            meta[name] = " ".join(str(content).split())
    canonical = None
    for tag in soup.find_all("link", href=True):
        rel = tag.get("rel") or []
        rel = rel if isinstance(rel, list) else str(rel).split()
        if "canonical" in [r.lower() for r in rel]:
            canonical = _absolute(base_url, tag["href"])
            break
    title_tag = soup.find("title")
    html_title = " ".join(title_tag.get_text(" ").split()) if title_tag else ""

    def first(*names: str) -> str:
        for name in names:
            if meta.get(name):
                return meta[name]
        return ""

    image = first("og:image", "og:image:url", "og:image:secure_url", "twitter:image", "twitter:image:src")
    return LinkPreview(
        url=url or base_url,
        title=first("og:title", "twitter:title") or html_title,
        description=first("og:description", "twitter:description", "description"),
        image_url=_absolute(base_url, image) if image else None,
        image_alt=first("og:image:alt", "twitter:image:alt"),
        canonical_url=canonical or (_absolute(base_url, meta["og:url"]) if meta.get("og:url") else None),
        site_name=first("og:site_name", "application-name"),
    )


def preview_from_entry(entry: Entry, url: str | None = None) -> LinkPreview:
    """What the feed itself says about the entry, as a LinkPreview."""
    from bridge.render import graphemes
    from bridge.render.fit import shorten
    from bridge.render.text import clean_inline, html_to_text

    extracted = html_to_text(entry.summary_html) if entry.summary_html else html_to_text(entry.content_html)
    text = " ".join(extracted.opening.split())
    description = shorten(text, lambda s: graphemes.count(s) <= CARD_DESCRIPTION_MAX_GRAPHEMES, sentences=False) or ""
    image = next((i for i in entry.images if i.url.lower().startswith(("http://", "https://"))), None)
    return LinkPreview(
        url=url or entry.link or entry.key,
        title=clean_inline(entry.title),
        description=description,
        image_url=image.url if image else None,
        image_alt=image.alt if image else "",
        canonical_url=None,
        site_name="",
    )


def merge_preview(page: LinkPreview, fallback: Entry) -> LinkPreview:
    """The page's data, with the feed's filling whatever the page left empty."""
    feed = preview_from_entry(fallback, url=page.url)
    return LinkPreview(
        url=page.url,
        title=page.title or feed.title,
        description=page.description or feed.description,
        image_url=page.image_url or feed.image_url,
        image_alt=page.image_alt if page.image_url else feed.image_alt,
        canonical_url=page.canonical_url,
        site_name=page.site_name,
    )


def _absolute(base: str, href: str) -> str | None:
    href = href.strip()
    if not href:
        return None
    absolute = urljoin(base, href)
    return absolute if absolute.lower().startswith(("http://", "https://")) else None


# --- thumbnails ---------------------------------------------------------------------------------------------


def fetch_thumbnail(
    image_url: str,
    *,
    client: httpx.Client,
    allow_private: AllowPrivate = False,
    resolver: Resolver = system_resolver,
) -> Thumbnail:
    """Download (capped) and prepare a card image. Raises FetchRefused, FetchFailed or ImageRefused."""
    key = (image_url, _policy_key(allow_private))
    cached = _thumbnails.get(key)
    if cached is not None:
        return cached
    body, _content_type, _final = _fetch(
        image_url,
        client=client,
        allow_private=allow_private,
        max_bytes=MAX_IMAGE_BYTES,
        accept="image/avif,image/webp,image/png,image/jpeg,image/*;q=0.8",
        resolver=resolver,
    )
    thumbnail = make_thumbnail(body, source_url=image_url)
    _thumbnails.put(key, thumbnail)
    return thumbnail


def make_thumbnail(
    data: bytes,
    *,
    source_url: str,
    max_bytes: int = THUMB_MAX_BYTES,
    max_side: int = THUMB_MAX_SIDE,
    max_pixels: int = MAX_IMAGE_PIXELS,
) -> Thumbnail:
    """Image bytes -> a Thumbnail of at most `max_side` px a side and `max_bytes` bytes, aspect ratio kept.

    Small enough JPEG/PNG/WebP/GIF images are kept as they are; others are scaled down and re-encoded as
    JPEG, lowering the quality step by step, then the size, until they fit.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            width, height = image.size
            if width <= 0 or height <= 0 or width * height > max_pixels:
                raise ImageRefused(f"{source_url}: {width}x{height} pixels is more than the {max_pixels} allowed")
            kind = image.format
            if kind in KEEP_AS_IS and len(data) <= max_bytes and max(width, height) <= max_side:
                image.verify()  # a truncated or corrupt file is refused here, not at upload
                return Thumbnail(data=data, mime_type=KEEP_AS_IS[kind], width=width, height=height, source_url=source_url)
            image.load()
    except ImageRefused:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageRefused(f"{source_url}: too many pixels to decode safely (a decompression bomb?)") from None
    except UnidentifiedImageError:
        raise ImageRefused(f"{source_url}: not an image bridge can use") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageRefused(f"{source_url}: the image cannot be decoded ({exc})") from None
    image = ImageOps.exif_transpose(image)
    image = _flatten(image)
    image.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    while True:
        for quality in JPEG_QUALITIES:
            buffer = io.BytesIO()
            image.save(buffer, "JPEG", quality=quality, optimize=True, progressive=True)
            if buffer.tell() <= max_bytes:
                return Thumbnail(
                    data=buffer.getvalue(), mime_type="image/jpeg", width=image.width, height=image.height,
                    source_url=source_url,
                )  # fmt: skip
        new_size = (int(image.width * DOWNSCALE_STEP), int(image.height * DOWNSCALE_STEP))
        if min(new_size) < MIN_THUMB_SIDE:
            raise ImageRefused(f"{source_url}: cannot be made smaller than {max_bytes} bytes")
        image = image.resize(new_size, Image.Resampling.LANCZOS)


def _flatten(image: Image.Image) -> Image.Image:
    """One RGB frame; transparency composited onto white (JPEG has no alpha)."""
    if getattr(image, "is_animated", False):
        image.seek(0)
    if image.mode in ("RGBA", "LA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return image.convert("RGB")
