"""Link preview fetching against our own pages on 127.0.0.1 (bridge.linkpreview).

Loopback is allowed with allow_private=LOOPBACK, so redirects to 10.0.0.1 or 169.254.169.254 are still
refused — and must be refused before anything connects to them.
"""

from __future__ import annotations

import functools
import ipaddress
import io
import json
import socket
import ssl
import struct
import subprocess
import sys
import textwrap
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
from tests.feedserver import REPO_ROOT, FeedServer, feed_server, servers_on_one_port  # noqa: F401  (fixture)

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


# --- hostile servers: compression bombs, huge images, slow headers (peak memory measured in a child) ----------

CHILD = textwrap.dedent(
    """
    import json, sys
    import httpx
    from bridge.linkpreview import LOOPBACK, LinkPreviewError, fetch_link_preview, fetch_thumbnail
    kind, url = sys.argv[1], sys.argv[2]
    try:
        with httpx.Client(timeout=5.0) as client:
            fetch = fetch_link_preview if kind == "page" else fetch_thumbnail
            result = fetch(url, client=client, allow_private=LOOPBACK)
        outcome, text = "fetched", repr(result)[:500]
    except LinkPreviewError as exc:
        outcome, text = type(exc).__name__, str(exc)
    print(json.dumps({
        "outcome": outcome,
        "text": text,
        # VmHWM is this address space's own peak; ru_maxrss would include pytest's size, kept across exec
        "peak_mb": int(next(l for l in open("/proc/self/status") if l.startswith("VmHWM:")).split()[1]) / 1024,
    }))
    """
)
PEAK_MB = 150  # a child that imports httpx, Pillow and BeautifulSoup and fetches a page peaks near 60 MB


def fetch_in_child(kind: str, url: str) -> dict:
    completed = subprocess.run([sys.executable, "-c", CHILD, kind, url], capture_output=True, text=True, timeout=120,
                               cwd=REPO_ROOT)
    assert completed.returncode == 0, completed.stderr[-2000:]
    return json.loads(completed.stdout.strip().splitlines()[-1])


@functools.cache
def zstd_bomb() -> bytes:
    """32 KB of zstd that decodes to 1 GiB of zeros."""
    import zstandard

    compressor = zstandard.ZstdCompressor(level=3).compressobj(size=1 << 30)
    zeros = bytes(1 << 20)
    return b"".join(compressor.compress(zeros) for _ in range(1024)) + compressor.flush()


@functools.cache
def gzip_bomb() -> bytes:
    """About 200 KB of gzip that decodes to 200 MB of zeros."""
    compressor = zlib.compressobj(9, wbits=31)
    zeros = bytes(1 << 20)
    return b"".join(compressor.compress(zeros) for _ in range(200)) + compressor.flush()


@functools.cache
def big_rgba_png(width=8000, height=5000) -> bytes:
    """A transparent RGBA PNG under the pixel limit (40 megapixels) that decodes to 160 MB; made row by row."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    compressor = zlib.compressobj(9)
    row = bytes(1 + 4 * width)
    pixels = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


@pytest.mark.parametrize("kind, path", [("page", "/bomb.html"), ("image", "/bomb.png")])
def test_zstd_bomb_is_refused_without_being_decoded(feed_server, kind, path):
    content_type = "text/html" if kind == "page" else "image/png"
    feed_server.route(path, zstd_bomb(), content_type=content_type, headers={"Content-Encoding": "zstd"})
    report = fetch_in_child(kind, feed_server.url(path))
    assert report["outcome"] == "FetchFailed", report
    assert "compressed as zstd, which bridge does not decode" in report["text"]
    assert report["peak_mb"] < PEAK_MB, report
    # bridge asks only for the encodings it decodes with a bound
    assert feed_server.requests_for(path)[0].headers["accept-encoding"] == "gzip, deflate"


@pytest.mark.parametrize("kind, path", [("page", "/bomb.html"), ("image", "/bomb.png")])
def test_gzip_bomb_stops_at_the_cap_while_decoding(feed_server, kind, path):
    content_type = "text/html" if kind == "page" else "image/png"
    feed_server.route(path, gzip_bomb(), content_type=content_type, headers={"Content-Encoding": "gzip"})
    report = fetch_in_child(kind, feed_server.url(path))
    if kind == "page":  # the page is cut at MAX_PAGE_BYTES: a page without metadata, not an error
        assert report["outcome"] == "fetched", report
    else:
        assert report["outcome"] == "FetchFailed" and "bytes allowed" in report["text"], report
    assert report["peak_mb"] < PEAK_MB, report


def test_image_too_big_to_decode_is_refused_before_decoding(feed_server):
    feed_server.image("/huge.png", big_rgba_png())
    report = fetch_in_child("image", feed_server.url("/huge.png"))
    assert report["outcome"] == "ImageRefused", report
    assert "8000x5000 RGBA image takes 160 MB to decode, more than the 64 MB allowed" in report["text"]
    assert report["peak_mb"] < PEAK_MB, report


def test_big_jpeg_photo_decodes_at_a_reduced_scale():
    # 6000 x 4000 RGB would be 72 MB decoded; JPEG's draft mode decodes it at a quarter of that
    image = Image.new("RGB", (6000, 4000), (20, 120, 200))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=80)
    thumbnail = make_thumbnail(buffer.getvalue(), source_url="x")
    assert (thumbnail.width, thumbnail.height) == (2000, 1333)


def test_rotated_photo_is_turned_upright():
    image = Image.new("RGB", (3000, 1000), (20, 120, 200))
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 degrees clockwise to display
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", exif=exif)
    thumbnail = make_thumbnail(buffer.getvalue(), source_url="x")
    assert (thumbnail.width, thumbnail.height) == (667, 2000)


@pytest.mark.parametrize("encoding", ["br", "zstd", "gzip, br", "compress"])
def test_encodings_bridge_did_not_ask_for_are_refused(feed_server, encoding):
    clear_cache()
    feed_server.page("/odd.html", b"\x00\x01compressed?", headers={"Content-Encoding": encoding})
    with httpx.Client() as http, pytest.raises(FetchFailed, match="does not decode"):
        fetch_link_preview(feed_server.url("/odd.html"), client=http, allow_private=LOOPBACK)


@pytest.mark.parametrize("kind", ["page", "image"])
def test_headers_sent_a_byte_a_second_meet_the_deadline(feed_server, monkeypatch, kind):
    # each byte comes well within the read timeout; only the fetch's own deadline ends it
    monkeypatch.setattr(fetch_module, "TOTAL_TIMEOUT", 2.0)
    clear_cache()
    feed_server.route("/drip", drip_headers=1.0)
    fetch = fetch_link_preview if kind == "page" else fetch_thumbnail
    with httpx.Client(timeout=10.0) as http:
        started = time.monotonic()
        with pytest.raises(FetchFailed, match="took more than 2 s"):
            fetch(feed_server.url("/drip"), client=http, allow_private=LOOPBACK)
        assert time.monotonic() - started < 30
        # with the feed's entry to fall back on, the post goes out with the feed's own data
        preview = fetch_link_preview(feed_server.url("/drip"), client=http, allow_private=LOOPBACK,
                                     fallback=feed_entry(feed_server.url("/drip")))
    assert preview.title == "Feed title"


# --- the address fence: every IPv6 spelling of an IPv4 address, DNS rebinding ----------------------------

TEREDO_TO_LOOPBACK = "2001:0:4136:e378:8000:63bf:80ff:fffe"  # Teredo: client 127.0.0.1 (XORed), server public


@pytest.mark.parametrize(
    "host",
    [
        "[::127.0.0.1]",  # IPv4-compatible
        "[::10.0.0.1]",
        "[::ffff:169.254.169.254]",  # IPv4-mapped
        "[64:ff9b::127.0.0.1]",  # NAT64, well-known prefix
        "[64:ff9b::a00:1]",
        "[64:ff9b:1::a00:1]",  # NAT64, local-use prefix: the IPv4 address may sit anywhere
        "[2002:7f00:1::1]",  # 6to4 of 127.0.0.1
        "[2002:a9fe:a9fe::]",  # 6to4 of 169.254.169.254
        f"[{TEREDO_TO_LOOPBACK}]",
        "[fec0::1]",  # deprecated site-local
    ],
)
def test_ipv6_forms_of_private_ipv4_addresses_are_refused(host):
    with pytest.raises(FetchRefused, match="private, loopback or link-local"):
        check_url(f"http://{host}/")
    # and the same when a name resolves to it
    with pytest.raises(FetchRefused):
        check_url("http://sneaky.example/", resolver=lambda name, port: [host.strip("[]")])


@pytest.mark.parametrize("host", ["[64:ff9b::93.184.215.14]", "[2002:5db8:d70e::1]", "[::ffff:93.184.215.14]"])
def test_ipv6_forms_of_public_ipv4_addresses_are_allowed(host):
    assert check_url(f"http://{host}/") == [str(ipaddress.ip_address(host.strip("[]")))]


def test_allowed_networks_cover_ipv6_forms_of_their_addresses():
    check_url("http://[::ffff:127.0.0.1]/", allow_private=LOOPBACK)
    check_url("http://[64:ff9b::7f00:1]/", allow_private=LOOPBACK)
    with pytest.raises(FetchRefused):
        check_url("http://[::ffff:10.0.0.1]/", allow_private=LOOPBACK)


class RebindingResolver:
    """DNS as an attacker runs it: the first answer passes the check, every later one points inside."""

    def __init__(self, name: str, first: str, then: str) -> None:
        self.name, self.first, self.then = name, first, then
        self.calls = 0

    def __call__(self, host: str, port: int) -> list[str]:
        assert host == self.name
        self.calls += 1
        return [self.first if self.calls == 1 else self.then]

    def getaddrinfo(self, real):
        """socket.getaddrinfo answering from this resolver for its name (the HTTP client's own lookup)."""

        def lookup(host, port, *args, **kwargs):
            if host != self.name:
                return real(host, port, *args, **kwargs)
            return real(self(host, port)[0], port, *args, **kwargs)

        return lookup


def test_dns_rebinding_cannot_reach_an_address_that_was_not_checked(monkeypatch):
    # 127.0.0.2 stands for a public address (allowed here), 127.0.0.1 for the inside; both on one port
    public, inside = servers_on_one_port("127.0.0.2", "127.0.0.1")
    try:
        public.page("/post", ARTICLE)
        inside.page("/post", b"<html><head><title>INTERNAL</title></head></html>")
        resolver = RebindingResolver("rebind.example", first="127.0.0.2", then="127.0.0.1")
        monkeypatch.setattr(socket, "getaddrinfo", resolver.getaddrinfo(socket.getaddrinfo))
        clear_cache()
        with httpx.Client(timeout=5.0) as http:
            preview = fetch_link_preview(f"http://rebind.example:{public.port}/post", client=http,
                                         allow_private=["127.0.0.2/32"], resolver=resolver)
        assert preview.title == "OG & title"
        assert inside.requests == [] and len(public.requests) == 1
        assert resolver.calls == 1
        # the request named the host it was for
        assert public.requests[0].headers["host"] == f"rebind.example:{public.port}"
    finally:
        public.stop()
        inside.stop()


def self_signed(directory, name: str) -> tuple[str, str]:
    """A certificate for `name` (and nothing else) and its key, as PEM files."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return str(cert_path), str(key_path)


def test_tls_is_verified_against_the_name_while_connecting_to_the_checked_address(tmp_path):
    cert, key = self_signed(tmp_path, "tls.example")
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(cert, key)
    clear_cache()
    with FeedServer(tls=server_context) as server, httpx.Client(verify=ssl.create_default_context(cafile=cert)) as http:
        server.page("/post", ARTICLE)
        on_loopback = lambda host, port: ["127.0.0.1"]  # noqa: E731
        preview = fetch_link_preview(f"https://tls.example:{server.port}/post", client=http, allow_private=LOOPBACK,
                                     resolver=on_loopback)
        assert preview.title == "OG & title"
        assert server.requests[0].headers["host"] == f"tls.example:{server.port}"
        # a name the certificate does not cover is refused: the certificate is checked, and against the name
        with pytest.raises(FetchFailed, match="certificate"):
            fetch_link_preview(f"https://other.example:{server.port}/post", client=http, allow_private=LOOPBACK,
                               resolver=on_loopback)


def test_a_card_whose_image_is_too_big_to_decode_goes_out_without_it(feed_server, monkeypatch):
    from bridge.compose import Composer
    from bridge.config import parse_config

    monkeypatch.setenv("BRIDGE_TEST_APP_PASSWORD", "unused")
    config = parse_config({
        "bridge": {"allow_private_addresses": True},
        "accounts": {"sky": {"type": "bluesky", "handle": "someone.test", "service": "http://127.0.0.1:9",
                             "app_password": {"env": "BRIDGE_TEST_APP_PASSWORD"}}},
    })  # fmt: skip
    feed_server.image("/huge.png", big_rgba_png())
    feed_server.page("/post", ARTICLE.replace(b"/img/cover.png", b"/huge.png"))
    clear_cache()
    composer = Composer(config, None)
    try:
        _, post_settings = composer.settings_for("blog", "sky")
        payload = composer.compose(Entry(key="k", link=feed_server.url("/post"), title="A post"), post_settings, "bluesky")
    finally:
        composer.close()
    card = payload["record"]["embed"]["external"]
    assert card["title"] == "OG & title" and "thumb" not in card


def test_the_article_page_is_read_only_for_a_payload_that_uses_it(feed_server, monkeypatch):
    """A Mastodon server makes its own card from the link: bridge does not read the page for it (no wasted load on
    the writer's site), unless it attaches the page's picture (images = "attach"). A Bluesky post's card is
    bridge's own: its title, description and image come from the page."""
    from bridge.compose import Composer
    from bridge.config import parse_config

    monkeypatch.setenv("BRIDGE_TEST_SECRET", "unused")
    secret = {"env": "BRIDGE_TEST_SECRET"}
    config = parse_config({
        "bridge": {"allow_private_addresses": True},
        "accounts": {
            "masto": {"type": "mastodon", "instance": "http://127.0.0.1:9", "access_token": secret},
            "attaching": {"type": "mastodon", "instance": "http://127.0.0.1:9", "access_token": secret, "images": "attach"},
            "sky": {"type": "bluesky", "handle": "someone.test", "service": "http://127.0.0.1:9", "app_password": secret},
        },
    })  # fmt: skip
    feed_server.page("/post", ARTICLE)
    feed_server.image("/img/cover.png", png_bytes((1200, 630)))
    entry = Entry(key="k", link=feed_server.url("/post"), title="A post")
    clear_cache()
    composer = Composer(config, None)
    try:
        def compose(account: str, platform_name: str) -> dict:
            return composer.compose(entry, composer.settings_for("blog", account)[1], platform_name,
                                    account=config.accounts[account])

        status = compose("masto", "mastodon")
        assert status["status"].startswith("A post") and status["media"] == []
        assert feed_server.requests_for("/post") == [] and feed_server.requests_for("/img/cover.png") == []

        record = compose("sky", "bluesky")["record"]
        card = record["embed"]["external"]
        assert card["title"] == "OG & title" and card["thumb"]["source_url"] == feed_server.url("/img/cover.png")
        assert len(feed_server.requests_for("/post")) == 1

        clear_cache()
        attached = compose("attaching", "mastodon")
        assert attached["media"] == [{"url": feed_server.url("/img/cover.png"), "description": "A cover image"}]
        assert len(feed_server.requests_for("/post")) == 2
    finally:
        composer.close()
