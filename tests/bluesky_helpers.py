"""Helpers for the Bluesky tests: images, a loopback image server, delivery rows, reading the PDS back, checking
a record's facets."""

from __future__ import annotations

import io
import os
from dataclasses import dataclass

import httpx
from PIL import Image

from bridge.ids import new_tid
from bridge.platforms.bluesky.links import display_url
from bridge.render.fit import PERMALINK_MARK
from bridge.render.links import is_pointer
from bridge.state import DeliveryRow
from tests.feedserver import FeedServer

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


class ImageServer(FeedServer):
    """The tests' local server (tests/feedserver.py) holding images, with a plain media_fetcher."""

    def add(self, path: str, body: bytes, content_type: str = "image/jpeg") -> str:
        self.image(path, body, content_type=content_type)
        return self.url(path)

    def fetch(self, url: str) -> Media:
        """GET over loopback, then read the image's size."""
        response = httpx.get(url, timeout=10)
        response.raise_for_status()
        return media_of(response.content, url)


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


def record_links(value: dict) -> list[str]:
    """Every link a post record carries: its link facets and its card (Bluesky's default text leaves the link
    to the card)."""
    links = [feature["uri"] for facet in value.get("facets") or [] for feature in facet["features"] if "uri" in feature]
    external = (value.get("embed") or {}).get("external")
    return links + ([external["uri"]] if external else [])


def record_words(value: dict) -> str:
    """What a reader sees of a post record: its text and its card's title, description and link."""
    external = (value.get("embed") or {}).get("external") or {}
    return "\n".join([value["text"], *(external.get(key, "") for key in ("title", "description", "uri"))])


def check_facets(record: dict, where: str = "") -> None:
    """Every facet of a post record covers exactly the bytes it claims (a #tag, a link's display text, or the word
    it links: "★", "here"), in
    order, without splitting a character; found independently with bytes.find. `where` names the post in failures."""
    encoded = record["text"].encode("utf-8")
    cursor = 0
    for facet in record["facets"]:
        start, end = facet["index"]["byteStart"], facet["index"]["byteEnd"]
        assert 0 <= start < end <= len(encoded), f"{where}: facet out of range"
        assert start >= cursor, f"{where}: facets overlap or are out of order"
        covered = encoded[start:end].decode("utf-8")  # raises if the range splits a character
        feature = facet["features"][0]
        if feature["$type"] == "app.bsky.richtext.facet#tag":
            expected = "#" + feature["tag"]
        else:
            assert feature["$type"] == "app.bsky.richtext.facet#link"
            expected = display_url(feature["uri"])
            if covered == PERMALINK_MARK or is_pointer(covered):
                expected = covered  # a link on a word: a link post's "★" permalink, or "here"
        assert covered == expected, f"{where}: facet covers {covered!r}, not {expected!r}"
        assert start in occurrences(encoded, expected.encode("utf-8"))
        assert record["text"][len(encoded[:start].decode("utf-8")) :].startswith(expected)
        cursor = end


def occurrences(haystack: bytes, needle: bytes) -> set[int]:
    found, position = set(), haystack.find(needle)
    while position != -1:
        found.add(position)
        position = haystack.find(needle, position + 1)
    return found
