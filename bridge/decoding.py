"""Content-Encoding decoding with a bound on the decoded size, enforced while decoding.

Both fetchers (feeds on aiohttp, pages and images on httpx) take bodies raw and decode them here, so a
compression bomb costs at most the cap in memory: zlib's `max_length` stops every step at the room left.
Only gzip and deflate are asked for (ACCEPT_ENCODING); zstd and br are not, because their Python decoders
(zstandard, brotli) have no output bound per step in the versions bridge runs on, and a body sent in one
anyway is refused (UnsupportedEncoding) rather than decoded.
"""

from __future__ import annotations

import zlib

ACCEPT_ENCODING = "gzip, deflate"


class UnsupportedEncoding(ValueError):
    """A Content-Encoding bridge did not ask for and does not decode."""


class Inflater:
    """gzip/deflate decoding with a bound on the output of every step."""

    def __init__(self, coding: str) -> None:
        self.coding = coding
        self._obj = zlib.decompressobj(31) if coding == "gzip" else None
        self._done = False

    def _start_deflate(self, data: bytes) -> None:
        # "deflate" should be zlib-wrapped (RFC 9110) but some servers send raw deflate
        zlib_wrapped = len(data) >= 2 and data[0] & 0x0F == 8 and ((data[0] << 8) | data[1]) % 31 == 0
        self._obj = zlib.decompressobj(15 if zlib_wrapped else -15)

    def feed(self, data: bytes, room: int) -> bytes:
        """Decode `data`; returns at most room + 1 bytes (more than `room` means the cap is passed)."""
        if self._done or not data:
            return b""
        if self._obj is None:
            self._start_deflate(data)
        out = bytearray()
        while data:
            obj = self._obj
            out += obj.decompress(data, room + 1 - len(out))
            if len(out) > room:
                break
            if obj.unconsumed_tail:
                data = obj.unconsumed_tail
                continue
            data = b""
            if obj.eof:
                rest = obj.unused_data
                if self.coding == "gzip" and rest.startswith(b"\x1f\x8b"):  # concatenated gzip members
                    self._obj = zlib.decompressobj(31)
                    data = rest
                else:
                    self._done = True  # trailing padding or garbage after the stream: ignored
        return bytes(out)

    def flush(self) -> bytes:
        return b"" if self._obj is None or self._done else self._obj.flush()


class Identity:
    """No Content-Encoding: the bytes as they came (the caller counts them against its cap)."""

    def feed(self, data: bytes, room: int) -> bytes:
        return data

    def flush(self) -> bytes:
        return b""


def decoder_for(content_encoding: str | None) -> Inflater | Identity:
    """The bounded decoder for a Content-Encoding header; UnsupportedEncoding for anything else."""
    codings = [c.strip().lower() for c in (content_encoding or "").split(",")]
    codings = [c for c in codings if c and c != "identity"]
    if not codings:
        return Identity()
    if len(codings) == 1 and codings[0] in ("gzip", "x-gzip", "deflate"):
        return Inflater("deflate" if codings[0] == "deflate" else "gzip")
    raise UnsupportedEncoding(
        f"compressed as {', '.join(codings)}, which bridge does not decode (it asks for {ACCEPT_ENCODING} only); "
        "ask the site to honour Accept-Encoding"
    )
