"""An entry's image candidates, best first, without duplicates.

Order: media:thumbnail, media:content (image medium or image/* type), image enclosures, a podcast episode's
itunes:image, JSON Feed image and banner_image (and image attachments), then the first usable <img> of the
content and of the summary.
Rejected: non-http(s) URLs (data:, cid:), media:content whose type is not an image even when labelled
medium="image" (Mastodon labels videos so), author avatars (WordPress.com puts the gravatar first), and
tracking pixels (1x1 images, known counters).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from itertools import islice
from urllib.parse import urlsplit

from bridge.model import ImageCandidate

from .htmltools import IMG_SEARCH_LIMIT, html_to_text, iter_img_tags
from .urls import is_plain_absolute, join

_IMAGE_EXTENSION = re.compile(r"\.(?:jpe?g|png|gif|webp|avif)$", re.IGNORECASE)
_AVATAR = re.compile(r"(?:^|\.)gravatar\.com/avatar/|/avatar[s]?/", re.IGNORECASE)
_PIXEL = re.compile(  # the lookahead only lets the search skip quickly to where an alternative can start
    r"(?=[mfps/?&])(?:medium\.com/_/stat|feeds\.feedburner\.com/~r/|feedproxy\.google\.com/~r/|pixel\.wp\.com/|"
    r"stats\.wordpress\.com/|/~ff/|feedsportal\.com/|pixel\.quantserve|/tracking/|\bpixel\.gif\b|"
    r"/(?:matomo|piwik)\.php|[?&](?:amp;)?idsite=)",
    re.IGNORECASE,
)


def _unwanted(url: str) -> bool:
    """An author avatar or a tracking pixel (`_AVATAR`, `_PIXEL`)."""
    if url.isascii():  # each alternative of the two patterns contains one of these words, lower-cased
        lowered = url.lower()
        if not ("avatar" in lowered or "stat" in lowered or "~r/" in lowered or "pixel" in lowered
                or "~ff/" in lowered or "feedsportal" in lowered or "/tracking/" in lowered or ".php" in lowered
                or "idsite=" in lowered):
            return False
    return _AVATAR.search(url) is not None or _PIXEL.search(url) is not None


def _int(value) -> int | None:
    if value is None:  # most pictures give no size: str(None) would fail below, at the cost of an exception
        return None
    try:
        number = int(str(value).strip().removesuffix("px"))
    except (TypeError, ValueError):
        return None
    return number if number > 0 else None


def _absolute(url: str | None, base: str | None) -> str | None:
    if not url:
        return None
    url = url.strip()
    if is_plain_absolute(url):
        return url
    try:
        if base:
            url = join(base, url)
        elif url.startswith("//"):
            url = "https:" + url
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    return url


def is_image_type(mime_type: str | None) -> bool:
    return bool(mime_type) and mime_type.strip().lower().startswith("image/")


class ImageList:
    """Collects candidates in priority order, skipping duplicates and unusable URLs."""

    def __init__(self, base: str | None) -> None:
        self.base = base
        self.items: list[ImageCandidate] = []
        self._seen: set[str] = set()

    def add(self, url, source: str, *, alt: str = "", width=None, height=None, mime_type: str | None = None) -> None:
        accepted = self._accept(url, width, height, None)
        if accepted is not None:
            self._append(*accepted, source=source, alt=alt, mime_type=mime_type)

    def add_first_img(self, fragment: str, source: str, base: str | None = None) -> None:
        """The first usable <img> of an HTML fragment (pixels and data: URIs skipped), with its alt text.
        `base` is the fragment's own base URL (xml:base) when it has one."""
        for attrs in islice(iter_img_tags(fragment), IMG_SEARCH_LIMIT):  # lazily: the first usable one ends it
            src = attrs.get("src") or attrs.get("data-src") or ""
            accepted = self._accept(src, attrs.get("width"), attrs.get("height"), base)
            if accepted is not None:
                self._append(*accepted, source=source, alt=html_to_text(attrs.get("alt", "")), mime_type=None)
                return

    def _accept(self, url, width, height, base: str | None) -> tuple[str, int | None, int | None] | None:
        """(absolute URL, width, height) of a new, usable candidate; None for a duplicate or unusable one."""
        absolute = _absolute(url if isinstance(url, str) else None, base or self.base)
        if not absolute or absolute in self._seen:
            return None
        if _unwanted(absolute):
            return None
        w, h = _int(width), _int(height)
        if (w is not None and w <= 2) or (h is not None and h <= 2):
            return None
        return absolute, w, h

    def _append(self, url: str, width, height, *, source: str, alt: str, mime_type: str | None) -> None:
        self._seen.add(url)
        self.items.append(_candidate(url, alt, source, width, height, mime_type or None))


def _candidate(url: str, alt: str, source: str, width, height, mime_type: str | None) -> ImageCandidate:
    """ImageCandidate(url=url, alt=alt, ...) at a third of the cost: a frozen dataclass's __init__ sets each field
    through object.__setattr__, and a document's reader makes one for most of its entries. The fields go into the
    instance's __dict__ in the order __init__ sets them (to_dict and orjson write them in that order)."""
    image = _new(ImageCandidate)
    fields = image.__dict__
    fields["url"], fields["alt"], fields["source"] = url, alt, source
    fields["width"], fields["height"], fields["mime_type"] = width, height, mime_type
    return image


_new = object.__new__


def _looks_like_image(url: str, mime: str, medium: str) -> bool:
    """An image type; or no type but medium="image"; or an image file name under a type that is plainly a
    server default (Le Monde labels a .jpg enclosure text/html). Audio/video types always lose: Mastodon labels
    videos medium="image"."""
    if is_image_type(mime):
        return True
    if mime.startswith(("audio/", "video/", "application/x-bittorrent")):
        return False
    if not mime and medium == "image":
        return True
    return bool(_IMAGE_EXTENSION.search(urlsplit(url).path)) and medium in ("", "image")


def _image_mime(mime: str) -> str | None:
    return mime if is_image_type(mime) else None


def feedparser_images(
    entry, base: str | None, fragments: Iterable[tuple[str, str, str | None]], media_alts: dict[str, str] | None = None
) -> list[ImageCandidate]:
    """Candidates from a feedparser entry; `fragments` are (html, source, base) searched for a first <img>, each
    resolved against its own base (bodies keep relative URLs: nothing rewrites them at parse time).
    `media_alts`: alt text by media:content url attribute (mediaalt.py)."""
    media_alts = media_alts or {}
    images = ImageList(base)
    for thumb in entry.get("media_thumbnail") or []:
        images.add(thumb.get("url"), "media:thumbnail", width=thumb.get("width"), height=thumb.get("height"))
    for media in entry.get("media_content") or []:
        mime = (media.get("type") or "").strip().lower()
        medium = (media.get("medium") or "").strip().lower()
        url = media.get("url") or ""
        if _looks_like_image(url, mime, medium):
            images.add(url, "media:content", alt=media_alts.get(url.strip(), ""), width=media.get("width"),
                       height=media.get("height"), mime_type=_image_mime(mime))
    for enclosure in _enclosures(entry):
        mime = (enclosure.get("type") or "").strip().lower()
        url = enclosure.get("href") or enclosure.get("url") or ""
        if _looks_like_image(url, mime, ""):
            images.add(url, "enclosure", mime_type=_image_mime(mime))
    image = entry.get("image")
    if isinstance(image, dict):  # itunes:image of a podcast episode
        images.add(image.get("href") or image.get("url"), "itunes:image")
    for fragment, source, fragment_base in fragments:
        images.add_first_img(fragment, source, fragment_base)
    return images.items


def _enclosures(entry) -> list[dict]:
    """feedparser's `enclosures`: its links with rel="enclosure" (RSS <enclosure>, Atom rel="enclosure")."""
    return [link for link in entry.get("links") or [] if link.get("rel") == "enclosure"]
