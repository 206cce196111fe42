"""Fetch an article page's preview data and a card thumbnail, safely.

Every fetch here is driven by feed content, so it is capped and fenced:
- only http(s); at most MAX_REDIRECTS hops, followed by hand so that EVERY hop's host is resolved and checked
  before anything connects to it (bridge.addresses: private, loopback, link-local, shared, reserved and
  multicast addresses, and IPv6 forms of them, are refused with FetchRefused unless allowed), and the
  connection goes to the address that was checked, with the name in the Host header and for TLS: the HTTP
  client never looks the name up again (DNS rebinding);
- one deadline for the whole fetch (TOTAL_TIMEOUT): connecting, headers, body and every hop (bridge.deadline);
- a size cap (MAX_PAGE_BYTES, MAX_IMAGE_BYTES) on DECODED bytes, held while decoding (bridge.decoding: only
  gzip and deflate are asked for, other encodings are refused);
- images are decoded by Pillow only after their header says they are at most MAX_IMAGE_PIXELS and one decoded
  copy at most MAX_DECODED_IMAGE_BYTES (decompression bombs are refused), and non-images are refused
  (ImageRefused).

The client is the caller's httpx.Client (its User-Agent, its timeouts); redirects are never left to it.
Results are cached per URL in a small in-process LRU.
"""

from __future__ import annotations

import io
import logging
import threading
import time
import warnings
import zlib
from collections import OrderedDict
from urllib.parse import urljoin

import httpx
from bs4 import BeautifulSoup
from PIL import Image, ImageMode, ImageOps, UnidentifiedImageError

from bridge.addresses import LOOPBACK, AllowPrivate, networks  # noqa: F401  (LOOPBACK: bridge.linkpreview's)
from bridge.deadline import Deadline
from bridge.decoding import ACCEPT_ENCODING, UnsupportedEncoding, decoder_for
from bridge.fence import FenceError, Resolver, Wording, checked_addresses, system_resolver
from bridge.linkpreview.model import FetchFailed, FetchRefused, ImageRefused, LinkPreview, LinkPreviewError, Thumbnail
from bridge.model import Entry
from bridge.render.limits import CARD_DESCRIPTION_MAX_GRAPHEMES, CARD_THUMB_MAX_BYTES

log = logging.getLogger(__name__)

MAX_REDIRECTS = 5
TOTAL_TIMEOUT = 20.0  # seconds for one fetch, redirects and body included
REQUEST_TIMEOUT = httpx.Timeout(10.0, connect=5.0)
MAX_PAGE_BYTES = 1_000_000  # the <head> is what we want; most pages have it in the first 100 kB
MAX_IMAGE_BYTES = 15_000_000
MAX_IMAGE_PIXELS = 40_000_000  # 8000 x 5000; more is refused before decoding (decompression bomb)
# What one decoded copy of an image may take in memory (width x height x bands x bytes a sample), checked
# before decoding: 40 megapixels of RGBA would be 160 MB, and the scaling and re-encoding that follow hold
# more than one copy. 64 MB keeps a 4000 x 4000 RGBA PNG; JPEG photos decode at a reduced scale (draft).
MAX_DECODED_IMAGE_BYTES = 64_000_000
THUMB_MAX_SIDE = 2000
THUMB_MAX_BYTES = CARD_THUMB_MAX_BYTES
JPEG_QUALITIES = (85, 75, 65, 55, 45)
DOWNSCALE_STEP = 0.75
MIN_THUMB_SIDE = 32
CACHE_SIZE = 256
KEEP_AS_IS = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp", "GIF": "image/gif"}
HTML_TYPES = ("text/html", "application/xhtml+xml")


# --- addresses ----------------------------------------------------------------------------------------------


_WORDING = Wording(
    invalid="{url!r} is not a valid URL",
    not_http="{url!r} is not an http(s) URL",
    unresolvable="cannot resolve {host}: {reason}",
    no_address="{host} has no address",
)


def check_url(url: str, allow_private: AllowPrivate = False, resolver: Resolver = system_resolver) -> list[str] | None:
    """Raise FetchRefused unless `url` is http(s) and every address its host resolves to is allowed; return
    those addresses (the ones to connect to), or None when every address is allowed and nothing was resolved."""
    try:
        return checked_addresses(url, allow_private, resolver, _WORDING, resolve_when_all_allowed=False)
    except FenceError as exc:
        raise (FetchRefused if exc.refused else FetchFailed)(str(exc)) from None


# --- fetching -----------------------------------------------------------------------------------------------


def _send(client: httpx.Client, url: str, addresses: list[str] | None, accept: str, deadline: Deadline) -> httpx.Response:
    """GET `url`, connecting to one of its checked `addresses` (never a second DNS lookup, which could answer
    differently: DNS rebinding) with the URL's own name in the Host header and for TLS (SNI, certificate)."""
    headers = {"Accept": accept, "Accept-Encoding": ACCEPT_ENCODING, "Connection": "close"}  # close: every hop
    # connects afresh, so the deadline always has its socket and no connection is shared between names
    last_error: httpx.HTTPError | None = None
    for address in addresses or [None]:
        left = deadline.left()
        if left <= 0:
            break
        timeout = httpx.Timeout(min(REQUEST_TIMEOUT.read, left), connect=min(REQUEST_TIMEOUT.connect, left))
        request = client.build_request("GET", url, headers=headers, timeout=timeout,
                                       extensions={"trace": deadline.trace})
        if address is not None:
            request.extensions["sni_hostname"] = request.url.raw_host.decode("ascii")
            request.url = request.url.copy_with(host=address)
        try:
            return client.send(request, stream=True, follow_redirects=False)
        except httpx.ConnectError as exc:  # the next address may answer
            last_error = exc
    raise last_error or httpx.ConnectTimeout("no time left to connect")


def permalink_answer(url: str, *, client: httpx.Client, allow_private: AllowPrivate = False,
                     resolver: Resolver = system_resolver) -> tuple[int, str | None]:
    """(HTTP status, Location) of one GET of `url`, redirects not followed, the body not read: does a deleted
    entry's page answer 404/410, or does it redirect (moved, not deleted)? Raises FetchFailed / FetchRefused."""
    addresses = check_url(url, allow_private, resolver)
    deadline = Deadline(time.monotonic() + TOTAL_TIMEOUT)
    try:
        response = _send(client, url, addresses, "text/html,*/*;q=0.5", deadline)
        response.close()
    except httpx.HTTPError as exc:
        raise FetchFailed(f"{url}: {type(exc).__name__}: {exc}") from None
    finally:
        deadline.close()
    return response.status_code, response.headers.get("location")


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
    started = time.monotonic()
    current = url
    for _hop in range(MAX_REDIRECTS + 1):
        addresses = check_url(current, allow_private, resolver)
        deadline = Deadline(started + TOTAL_TIMEOUT)
        try:
            if deadline.left() <= 0:
                raise FetchFailed(f"{url}: took more than {TOTAL_TIMEOUT:g} s")
            response = _send(client, current, addresses, accept, deadline)
            try:
                if response.is_redirect:
                    location = response.headers.get("location")
                    if not location:
                        raise FetchFailed(f"{current}: redirect without a Location")
                    current = urljoin(current, location)
                    continue
                if response.status_code != 200:
                    raise FetchFailed(f"{current}: HTTP {response.status_code}")
                body = _read_body(response, current, max_bytes, deadline, stop_at=stop_at, truncate=truncate)
                return body, response.headers.get("content-type", ""), current
            finally:
                response.close()
        except httpx.HTTPError as exc:
            if deadline.expired or deadline.left() <= 0:
                raise FetchFailed(f"{url}: took more than {TOTAL_TIMEOUT:g} s; the server is too slow") from None
            raise FetchFailed(f"{current}: {type(exc).__name__}: {exc}") from None
        finally:
            deadline.close()
    raise FetchFailed(f"{url}: more than {MAX_REDIRECTS} redirects")


def _read_body(response: httpx.Response, url: str, max_bytes: int, deadline: Deadline, *,
               stop_at: bytes | None, truncate: bool) -> bytes:
    """The decoded body, at most `max_bytes` of it: decoded here (bridge.decoding), so the cap holds while
    decoding, not after."""
    declared = response.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes and not truncate:
        raise FetchFailed(f"{url}: {declared} bytes is more than the {max_bytes} allowed")
    try:
        decoder = decoder_for(response.headers.get("content-encoding"))
    except UnsupportedEncoding as exc:
        raise FetchFailed(f"{url}: {exc}") from None
    body = bytearray()
    try:
        for raw in response.iter_raw():
            chunk = decoder.feed(raw, max_bytes - len(body))
            body += chunk
            if len(body) > max_bytes:
                if truncate:
                    return bytes(body[:max_bytes])
                raise FetchFailed(f"{url}: more than the {max_bytes} bytes allowed")
            if deadline.left() <= 0:
                raise FetchFailed(f"{url}: took more than {TOTAL_TIMEOUT:g} s")
            if stop_at is not None and stop_at in chunk.lower():
                return bytes(body)
        body += decoder.flush()
    except zlib.error as exc:
        raise FetchFailed(f"{url}: the compressed body is corrupt ({exc})") from None
    return bytes(body[:max_bytes])


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
    return allow_private if isinstance(allow_private, bool) else tuple(sorted(str(n) for n in networks(allow_private)))


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
            body, content_type, final_url = fetch_page_head(url, client=client, allow_private=allow_private,
                                                            resolver=resolver)
            page = parse_page(body, final_url, url=url, content_type=content_type)
        except LinkPreviewError as exc:
            if fallback is None:
                raise
            log.info("link preview for %s: %s; using the feed's own data", url, exc)
            return merge_preview(LinkPreview(url=url), fallback)
        _pages.put(key, page)
    return merge_preview(page, fallback) if fallback is not None else page


def fetch_page_head(url: str, *, client: httpx.Client, allow_private: AllowPrivate = False,
                    resolver: Resolver = system_resolver) -> tuple[bytes, str, str]:
    """An HTML page up to its </head> (where its metadata is), fenced and capped: (body, content type, final URL).
    Raises FetchRefused / FetchFailed."""
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
    return body, content_type, final_url


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
    from bridge.render.text import clean_plain, html_to_text

    extracted = html_to_text(entry.summary_html) if entry.summary_html else html_to_text(entry.content_html)
    text = " ".join(extracted.opening.split())
    description = shorten(text, lambda s: graphemes.count(s) <= CARD_DESCRIPTION_MAX_GRAPHEMES, sentences=False) or ""
    image = next((i for i in entry.images if i.url.lower().startswith(("http://", "https://"))), None)
    return LinkPreview(
        url=url or entry.link or entry.key,
        title=clean_plain(entry.title),
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
    max_decoded_bytes: int | None = None,
) -> Thumbnail:
    """Image bytes -> a Thumbnail of at most `max_side` px a side and `max_bytes` bytes, aspect ratio kept.

    Small enough JPEG/PNG/WebP/GIF images are kept as they are; others are scaled down and re-encoded as
    JPEG, lowering the quality step by step, then the size, until they fit. An image whose decoded pixels
    would take more than `max_decoded_bytes` (MAX_DECODED_IMAGE_BYTES) is refused before it is decoded.
    """
    max_decoded_bytes = MAX_DECODED_IMAGE_BYTES if max_decoded_bytes is None else max_decoded_bytes
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
            # JPEG can decode at 1/2, 1/4 or 1/8 scale: ask for no more than the thumbnail needs
            image.draft(None, _fitted(image.size, max_side))
            decoded = _decoded_bytes(image)
            if decoded > max_decoded_bytes:
                raise ImageRefused(
                    f"{source_url}: a {width}x{height} {image.mode} image takes {decoded / 1e6:.0f} MB to decode, "
                    f"more than the {max_decoded_bytes / 1e6:.0f} MB allowed"
                )
            image.load()
    except ImageRefused:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageRefused(f"{source_url}: too many pixels to decode safely (a decompression bomb?)") from None
    except UnidentifiedImageError:
        raise ImageRefused(f"{source_url}: not an image bridge can use") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageRefused(f"{source_url}: the image cannot be decoded ({exc})") from None
    if image.mode in ("1", "P"):  # resizing these would pick nearest pixels instead of blending them
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    # scale down first: the rotated and flattened copies that follow are then thumbnail-sized
    image.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    image = ImageOps.exif_transpose(image)
    image = _flatten(image)
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


def _fitted(size: tuple[int, int], max_side: int) -> tuple[int, int]:
    scale = min(1.0, max_side / max(size))
    return max(1, round(size[0] * scale)), max(1, round(size[1] * scale))


def _decoded_bytes(image: Image.Image) -> int:
    """Bytes of one decoded copy of `image` at its (draft) size."""
    mode = ImageMode.getmode(image.mode)
    sample = int(mode.typestr[-1]) if mode.typestr[-1].isdigit() else 1
    return image.width * image.height * len(mode.bands) * sample


def _flatten(image: Image.Image) -> Image.Image:
    """One RGB frame (the first: an animated image is opened at it); transparency composited onto white (JPEG
    has no alpha)."""
    if image.mode in ("RGBA", "LA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return image.convert("RGB")
