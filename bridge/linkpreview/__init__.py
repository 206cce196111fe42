"""Link preview data for a post: the article page's OpenGraph data and a card thumbnail.

    fetch_link_preview(url, *, client, allow_private=False, fallback=None) -> LinkPreview
    fetch_thumbnail(image_url, *, client, allow_private=False) -> Thumbnail
    make_thumbnail(data, *, source_url) -> Thumbnail          (no network: resize/re-encode only)
    fetch_page_head(url, *, client, allow_private=False) -> (body, content type, final URL)
    parse_page(body, base_url) -> LinkPreview                  (no network)
    preview_from_entry(entry) -> LinkPreview                   (the feed's own data)

Errors (all LinkPreviewError, a BridgeError): FetchRefused (address or scheme not allowed), FetchFailed
(network, status, size, time), ImageRefused (not an image, undecodable, decompression bomb).
`allow_private`: False (public addresses only), True (anything: `[bridge] allow_private_addresses`), or a
collection of networks to allow (LOOPBACK = 127.0.0.0/8 and ::1).
"""

from bridge.linkpreview.model import FetchFailed, FetchRefused, ImageRefused, LinkPreview, LinkPreviewError, Thumbnail

_FETCH_NAMES = frozenset(
    {"LOOPBACK", "check_url", "clear_cache", "fetch_link_preview", "fetch_page_head", "fetch_thumbnail", "make_thumbnail",
     "merge_preview", "parse_page", "preview_from_entry"}
)  # fmt: skip


def __getattr__(name: str):
    # httpx, Pillow and BeautifulSoup load only when a fetch is wanted: the pure renderer imports the
    # data classes above without them.
    if name in _FETCH_NAMES:
        from bridge.linkpreview import fetch

        return getattr(fetch, name)
    raise AttributeError(f"module 'bridge.linkpreview' has no attribute {name!r}")

__all__ = [
    "LOOPBACK",
    "FetchFailed",
    "FetchRefused",
    "ImageRefused",
    "LinkPreview",
    "LinkPreviewError",
    "Thumbnail",
    "check_url",
    "clear_cache",
    "fetch_link_preview",
    "fetch_thumbnail",
    "make_thumbnail",
    "merge_preview",
    "parse_page",
    "preview_from_entry",
]
