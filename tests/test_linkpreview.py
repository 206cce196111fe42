"""Link preview fetching against our own pages on 127.0.0.1 (bridge.linkpreview).

Loopback is allowed with allow_private=LOOPBACK, so redirects to 10.0.0.1 or 169.254.169.254 are still
refused — and must be refused before anything connects to them.
"""

from __future__ import annotations

import functools
import io
import struct
import threading
import time
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from PIL import Image

from bridge.linkpreview import (
    LOOPBACK,
    FetchFailed,
    FetchRefused,
    ImageRefused,
    check_url,
    clear_cache,
    fetch_link_preview,
    fetch_thumbnail,
    make_thumbnail,
    parse_page,
)
from bridge.linkpreview import fetch as fetch_module
from bridge.model import Entry, ImageCandidate

ARTICLE = b"""<!doctype html><html><head>
<meta charset="utf-8">
<title>HTML title | Site</title>
<meta name="description" content="Meta description.">
<meta property="og:title" content="OG &amp; title">
<meta property="og:description" content="OG description, with caf&eacute;.">
<meta property="og:image" content="/img/cover.png">
<meta property="og:image:alt" content="A cover image">
<meta property="og:site_name" content="Example Site">
<meta name="twitter:image" content="/img/twitter.png">
<link rel="canonical" href="/canonical/article">
</head><body><p>Body.</p></body></html>"""

PLAIN = b"""<html><head><title>  Only a   title </title>
<meta name="description" content="Only a description.">
<meta name="twitter:image" content="https://cdn.example/tw.jpg"></head><body></body></html>"""

NOTHING = b"<html><head></head><body><p>No metadata here.</p></body></html>"


def png_bytes(size=(300, 200), mode="RGB", color=(200, 30, 30)) -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size, color).save(buffer, "PNG")
    return buffer.getvalue()


@functools.cache
def noise_jpeg(size=(3200, 2400)) -> bytes:
    image = Image.merge("RGB", [Image.effect_noise(size, 120) for _ in range(3)])
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=95)
    return buffer.getvalue()


def bomb_png(width=60000, height=60000) -> bytes:
    """A PNG whose header claims 3.6 gigapixels: only the header is ever read."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 100)) + chunk(b"IEND", b"")


class Site:
    """A small threaded HTTP server on 127.0.0.1 serving fixed routes, counting requests."""

    def __init__(self) -> None:
        self.routes: dict[str, tuple[int, dict, bytes]] = {}
        self.hits: dict[str, int] = {}
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                site.hits[self.path] = site.hits.get(self.path, 0) + 1
                status, headers, body = site.routes.get(self.path, (404, {"Content-Type": "text/plain"}, b"not found"))
                if callable(body):
                    body = body()
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                try:
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def add(self, path: str, body: bytes, content_type: str = "text/html; charset=utf-8", status: int = 200, **headers):
        self.routes[path] = (status, {"Content-Type": content_type, **headers}, body)

    def redirect(self, path: str, location: str, status: int = 302):
        self.routes[path] = (status, {"Location": location}, b"")

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def site():
    clear_cache()
    server = Site()
    server.add("/article", ARTICLE)
    server.add("/plain", PLAIN, content_type="text/html")
    server.add("/nothing", NOTHING)
    server.add("/img/cover.png", png_bytes(), content_type="image/png")
    server.add("/img/huge.jpg", noise_jpeg(), content_type="image/jpeg")
    server.add("/img/bomb.png", bomb_png(), content_type="image/png")
    server.add("/img/not-an-image.png", b"hello, I am text", content_type="image/png")
    server.add("/file.pdf", b"%PDF-1.4", content_type="application/pdf")
    server.redirect("/to-article", "/article")
    server.redirect("/to-private", "http://10.0.0.1/secret")
    server.redirect("/to-metadata", "http://169.254.169.254/latest/meta-data/")
    server.redirect("/to-redirect-to-private", "/to-private", status=301)
    server.redirect("/loop", "/loop")
    yield server
    server.close()
    clear_cache()


@pytest.fixture
def requests_seen():
    return []


@pytest.fixture
def client(requests_seen):
    def record(request):
        requests_seen.append(str(request.url))

    with httpx.Client(event_hooks={"request": [record]}, timeout=5.0) as http:
        yield http


def feed_entry(link: str) -> Entry:
    return Entry(
        key="k",
        link=link,
        title="Feed title",
        summary_html="<p>The feed's own summary.</p>",
        images=[ImageCandidate(url="https://cdn.example/feed.jpg", alt="Feed image")],
    )


# --- pages --------------------------------------------------------------------------------------------------


def test_opengraph_tags_with_relative_image(site, client):
    preview = fetch_link_preview(site.base + "/article", client=client, allow_private=LOOPBACK)
    assert preview.url == site.base + "/article"
    assert preview.title == "OG & title"
    assert preview.description == "OG description, with café."
    assert preview.image_url == site.base + "/img/cover.png"
    assert preview.image_alt == "A cover image"
    assert preview.canonical_url == site.base + "/canonical/article"
    assert preview.site_name == "Example Site"


def test_html_title_meta_description_and_twitter_image_without_og(site, client):
    preview = fetch_link_preview(site.base + "/plain", client=client, allow_private=LOOPBACK)
    assert (preview.title, preview.description, preview.image_url) == (
        "Only a title",
        "Only a description.",
        "https://cdn.example/tw.jpg",
    )


def test_missing_metadata_falls_back_to_the_feed(site, client):
    preview = fetch_link_preview(site.base + "/nothing", client=client, allow_private=LOOPBACK, fallback=feed_entry(site.base + "/nothing"))
    assert preview.title == "Feed title"
    assert preview.description == "The feed's own summary."
    assert (preview.image_url, preview.image_alt) == ("https://cdn.example/feed.jpg", "Feed image")


def test_failed_page_raises_without_fallback_and_gives_feed_data_with_one(site, client):
    with pytest.raises(FetchFailed):
        fetch_link_preview(site.base + "/missing", client=client, allow_private=LOOPBACK)
    with pytest.raises(FetchFailed):
        fetch_link_preview(site.base + "/file.pdf", client=client, allow_private=LOOPBACK)
    preview = fetch_link_preview(site.base + "/missing", client=client, allow_private=LOOPBACK, fallback=feed_entry("x"))
    assert preview.title == "Feed title" and preview.url == site.base + "/missing"


def test_redirects_are_followed_and_checked(site, client):
    preview = fetch_link_preview(site.base + "/to-article", client=client, allow_private=LOOPBACK)
    assert preview.title == "OG & title"
    assert preview.image_url == site.base + "/img/cover.png"  # relative to the final page


@pytest.mark.parametrize("path, target", [("/to-private", "10.0.0.1"), ("/to-metadata", "169.254.169.254"), ("/to-redirect-to-private", "10.0.0.1")])
def test_redirect_to_private_address_refused_without_connecting(site, client, requests_seen, path, target):
    started = time.monotonic()
    with pytest.raises(FetchRefused, match=target):
        fetch_link_preview(site.base + path, client=client, allow_private=LOOPBACK)
    assert time.monotonic() - started < 2.0
    assert not any(target in url for url in requests_seen), requests_seen
    # with a fallback the post still gets the feed's data
    preview = fetch_link_preview(site.base + path, client=client, allow_private=LOOPBACK, fallback=feed_entry("x"))
    assert preview.title == "Feed title"


def test_loopback_refused_by_default(site, client, requests_seen):
    with pytest.raises(FetchRefused):
        fetch_link_preview(site.base + "/article", client=client)
    assert requests_seen == []


def test_allow_private_true_allows_everything(site, client):
    assert fetch_link_preview(site.base + "/article", client=client, allow_private=True).title == "OG & title"


def test_redirect_loop_fails(site, client):
    with pytest.raises(FetchFailed, match="redirects"):
        fetch_link_preview(site.base + "/loop", client=client, allow_private=LOOPBACK)


def test_results_are_cached_per_url(site, client):
    for _ in range(3):
        fetch_link_preview(site.base + "/article", client=client, allow_private=LOOPBACK)
        fetch_thumbnail(site.base + "/img/cover.png", client=client, allow_private=LOOPBACK)
    assert site.hits["/article"] == 1 and site.hits["/img/cover.png"] == 1


def test_page_size_is_capped(site, client, monkeypatch):
    monkeypatch.setattr(fetch_module, "MAX_PAGE_BYTES", 2000)
    site.add("/long", ARTICLE.replace(b"</head>", b"") + b"<p>" + b"x" * 100_000 + b"</p>")
    preview = fetch_link_preview(site.base + "/long", client=client, allow_private=LOOPBACK)
    assert preview.title == "OG & title"  # the head was in the first bytes; the rest was never needed


@pytest.mark.parametrize(
    "url, addresses, allowed",
    [
        ("https://example.com/x", ["93.184.215.14"], True),
        ("https://example.com/x", ["93.184.215.14", "10.1.2.3"], False),  # any private answer refuses
        ("https://internal.example/x", ["192.168.1.10"], False),
        ("http://localhost:8080/", ["127.0.0.1"], False),
        ("http://[::1]/", [], False),
        ("http://[::ffff:127.0.0.1]/", [], False),
        ("http://100.64.0.1/", [], False),  # carrier-grade NAT
        ("http://224.0.0.1/", [], False),  # multicast
        ("ftp://example.com/x", ["93.184.215.14"], False),
        ("file:///etc/passwd", [], False),
    ],
)
def test_check_url(url, addresses, allowed):
    def resolver(host, port):
        return addresses

    if allowed:
        check_url(url, resolver=resolver)
    else:
        with pytest.raises(FetchRefused):
            check_url(url, resolver=resolver)


def test_check_url_allows_listed_networks_only():
    check_url("http://127.0.0.1/", allow_private=LOOPBACK)
    check_url("http://[::1]/", allow_private=LOOPBACK)
    check_url("http://10.0.0.1/", allow_private=["10.0.0.0/8"])
    with pytest.raises(FetchRefused):
        check_url("http://169.254.169.254/", allow_private=LOOPBACK)


# --- thumbnails ---------------------------------------------------------------------------------------------


def test_small_image_kept_as_it_is(site, client):
    thumbnail = fetch_thumbnail(site.base + "/img/cover.png", client=client, allow_private=LOOPBACK)
    assert (thumbnail.mime_type, thumbnail.width, thumbnail.height) == ("image/png", 300, 200)
    assert thumbnail.data == png_bytes()
    assert thumbnail.describe() == {"source_url": site.base + "/img/cover.png", "size": len(thumbnail.data),
                                    "width": 300, "height": 200, "mime_type": "image/png"}  # fmt: skip


def test_huge_image_scaled_and_recompressed(site, client):
    source = Image.open(io.BytesIO(site.routes["/img/huge.jpg"][2]))
    assert len(site.routes["/img/huge.jpg"][2]) > 1_000_000
    thumbnail = fetch_thumbnail(site.base + "/img/huge.jpg", client=client, allow_private=LOOPBACK)
    assert len(thumbnail.data) <= 1_000_000
    assert max(thumbnail.width, thumbnail.height) <= 2000
    assert thumbnail.mime_type == "image/jpeg"
    assert abs(thumbnail.width / thumbnail.height - source.width / source.height) < 0.01
    decoded = Image.open(io.BytesIO(thumbnail.data))
    assert decoded.format == "JPEG" and decoded.size == (thumbnail.width, thumbnail.height)


def test_decompression_bomb_refused(site, client):
    with pytest.raises(ImageRefused, match="pixels"):
        fetch_thumbnail(site.base + "/img/bomb.png", client=client, allow_private=LOOPBACK)
    # above our own cap (40 megapixels) but below Pillow's: refused by the explicit check, before decoding
    with pytest.raises(ImageRefused, match="pixels"):
        make_thumbnail(bomb_png(8000, 8000), source_url="x")


def test_non_image_refused(site, client):
    with pytest.raises(ImageRefused):
        fetch_thumbnail(site.base + "/img/not-an-image.png", client=client, allow_private=LOOPBACK)
    with pytest.raises(ImageRefused):
        make_thumbnail(b"<html></html>", source_url="x")


def test_image_download_is_capped(site, client, monkeypatch):
    monkeypatch.setattr(fetch_module, "MAX_IMAGE_BYTES", 10_000)
    with pytest.raises(FetchFailed, match="bytes"):
        fetch_thumbnail(site.base + "/img/huge.jpg", client=client, allow_private=LOOPBACK)


def test_image_behind_private_redirect_refused(site, client, requests_seen):
    site.redirect("/img/redirect.png", "http://10.0.0.1/x.png")
    with pytest.raises(FetchRefused):
        fetch_thumbnail(site.base + "/img/redirect.png", client=client, allow_private=LOOPBACK)
    assert not any("10.0.0.1" in url for url in requests_seen)


def test_transparent_image_flattened_when_reencoded():
    thumbnail = make_thumbnail(png_bytes((2400, 1200), "RGBA", (0, 0, 255, 0)), source_url="x")
    assert thumbnail.mime_type == "image/jpeg" and (thumbnail.width, thumbnail.height) == (2000, 1000)
    assert Image.open(io.BytesIO(thumbnail.data)).getpixel((10, 10)) == pytest.approx((255, 255, 255), abs=3)


def test_parse_page_resolves_relative_urls_against_the_page():
    preview = parse_page(ARTICLE, "https://blog.example/2024/post/")
    assert preview.image_url == "https://blog.example/img/cover.png"
    assert preview.canonical_url == "https://blog.example/canonical/article"
