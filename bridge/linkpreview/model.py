"""What a link preview fetch yields: plain data, JSON-friendly, passed into the pure renderer."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from bridge.errors import BridgeError


@dataclass(frozen=True)
class LinkPreview:
    """The article page's own description of itself (OpenGraph, Twitter card, <title>), with the feed's data
    filling what the page did not say."""

    url: str  # the page asked for (the entry's permalink)
    title: str = ""
    description: str = ""
    image_url: str | None = None  # absolute
    image_alt: str = ""
    canonical_url: str | None = None
    site_name: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Thumbnail:
    """An image ready for a Bluesky card: at most 2000 px a side and CARD_THUMB_MAX_BYTES bytes."""

    data: bytes
    mime_type: str
    width: int
    height: int
    source_url: str

    def describe(self) -> dict:
        """The thumb as the `--json` payload shows it before upload."""
        return {
            "source_url": self.source_url,
            "size": len(self.data),
            "width": self.width,
            "height": self.height,
            "mime_type": self.mime_type,
        }


class LinkPreviewError(BridgeError):
    """A page or image could not be had; the post goes out with what the feed gives."""


class FetchRefused(LinkPreviewError):
    """The address is not allowed (private, loopback, link-local...) or not http(s)."""


class FetchFailed(LinkPreviewError):
    """Network error, bad status, too large, or not what was expected."""


class ImageRefused(LinkPreviewError):
    """Not an image, an undecodable image, or a decompression bomb."""
