"""Helpers for the Bluesky target tests: images, a loopback image server, delivery rows, reading the PDS back."""

from __future__ import annotations

import io
import os
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
from PIL import Image

from bridge.ids import new_tid
from bridge.state import DeliveryRow

POST = "app.bsky.feed.post"


def jpeg(width: int = 600, height: int = 315, *, noise: bool = False, quality: int = 85) -> bytes:
    """A real JPEG. With noise, it hardly compresses: about 2-3 bytes a pixel at high quality."""
    if noise:
        image = Image.frombytes("RGB", (width, height), os.urandom(width * height * 3))
    else:
        image = Image.new("RGB", (width, height))
        pixels = image.load()
        for x in range(width):
            for y in range(height):
                pixels[x, y] = (x * 255 // width, y * 255 // height, 128)
    out = io.BytesIO()
    image.save(out, "JPEG", quality=quality)
    return out.getvalue()


@dataclass(frozen=True)
class Media:
    """What a media_fetcher returns (the shape of bridge.linkpreview.Thumbnail)."""

    data: bytes
    mime_type: str
    width: int
    height: int
    source_url: str = ""


def media_of(data: bytes, source_url: str = "") -> Media:
    with Image.open(io.BytesIO(data)) as image:
        return Media(data, Image.MIME[image.format], image.width, image.height, source_url)


class ImageServer:
    """Serves bytes at paths on 127.0.0.1 (ephemeral port); records what was asked."""

    def __init__(self) -> None:
        self.files: dict[str, tuple[bytes, str]] = {}
        self.requests: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                server.requests.append(self.path)
                found = server.files.get(self.path)
                if found is None:
                    self.send_error(404)
                    return
                body, content_type = found
                self.send_response(200)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def add(self, path: str, body: bytes, content_type: str = "image/jpeg") -> str:
        self.files[path] = (body, content_type)
        return self.base + path

    def fetch(self, url: str) -> Media:
        """A plain media_fetcher: GET over loopback, then read the image's size."""
        response = httpx.get(url, timeout=10)
        response.raise_for_status()
        return media_of(response.content, url)

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def delivery(account: str, rkey: str | None = None, *, state: str = "pending", attempts: int = 0) -> DeliveryRow:
    return DeliveryRow(
        id=1, entry_id=1, account=account, state=state, kind="new", payload=None, idempotency_key="unused",
        rkey=rkey or new_tid(), attempts=attempts, next_attempt_at=0.0, last_error=None, remote_id=None,
        remote_url=None, created_at=0.0, first_sent_at=None, sending_at=None, posted_at=None,
        link="https://example.com/post",
    )


def list_records(pds_url: str, did: str) -> list[dict]:
    """Every post in the repo (unauthenticated com.atproto.repo.listRecords, paged)."""
    found, cursor = [], None
    while True:
        params = {"repo": did, "collection": POST, "limit": 100}
        if cursor:
            params["cursor"] = cursor
        body = httpx.get(f"{pds_url}/xrpc/com.atproto.repo.listRecords", params=params, timeout=30).json()
        found += body["records"]
        cursor = body.get("cursor")
        if not cursor or not body["records"]:
            return found


def get_record(pds_url: str, uri: str) -> dict:
    did, collection, rkey = uri.removeprefix("at://").split("/")
    response = httpx.get(f"{pds_url}/xrpc/com.atproto.repo.getRecord",
                         params={"repo": did, "collection": collection, "rkey": rkey}, timeout=30)
    response.raise_for_status()
    return response.json()


def get_blob(pds_url: str, did: str, cid: str) -> httpx.Response:
    return httpx.get(f"{pds_url}/xrpc/com.atproto.sync.getBlob", params={"did": did, "cid": cid}, timeout=30)


def byte_range(text: str, piece: str, start_at: int = 0) -> tuple[int, int]:
    """[start, end) of `piece` in the UTF-8 bytes of `text`, found in the bytes (not via str indexes)."""
    data, needle = text.encode("utf-8"), piece.encode("utf-8")
    start = data.index(needle, start_at)
    return start, start + len(needle)
