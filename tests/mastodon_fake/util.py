"""Small helpers for the fake Mastodon server: clock, ids, time formats, body parsing, HTML."""

from __future__ import annotations

import datetime as _dt
import html
import json
import re
import threading
import time
import urllib.parse
from typing import Any, Callable

import regex

from .length import Entity, find_entities

UTC = _dt.timezone.utc


class Clock:
    """Wall-clock time plus an adjustable offset; or a caller-supplied time function.

    Everything time-dependent in the fake (rate-limit windows, Idempotency-Key expiry,
    media processing, OAuth code expiry, timestamps, the Date header) reads this clock.
    """

    def __init__(self, func: Callable[[], float] | None = None):
        self._func = func or time.time
        self._offset = 0.0
        self._lock = threading.Lock()

    def now(self) -> float:
        with self._lock:
            return self._func() + self._offset

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._offset += seconds

    def set(self, epoch: float) -> None:
        with self._lock:
            self._offset = epoch - self._func()


class IdGenerator:
    """Snowflake-like ids as Mastodon makes them: (milliseconds << 16) | sequence, increasing."""

    def __init__(self, clock: Clock):
        self._clock = clock
        self._last = 0
        self._lock = threading.Lock()

    def next(self) -> str:
        with self._lock:
            candidate = int(self._clock.now() * 1000) << 16
            if candidate <= self._last:
                candidate = self._last + 1
            self._last = candidate
            return str(candidate)


def iso_ms(epoch: float) -> str:
    """2026-10-14T19:10:25.825Z (Mastodon's created_at format)."""
    dt = _dt.datetime.fromtimestamp(epoch, UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def iso_us(epoch: float) -> str:
    """2026-10-14T19:15:00.897338Z (X-RateLimit-Reset format, Ruby's iso8601(6))."""
    dt = _dt.datetime.fromtimestamp(epoch, UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond:06d}Z"


def iso_date(epoch: float) -> str:
    return _dt.datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d")


def midnight_iso(epoch: float) -> str:
    """Account created_at: Mastodon reports the day, at midnight UTC."""
    return _dt.datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT00:00:00.000Z")


def http_date(epoch: float) -> str:
    return _dt.datetime.fromtimestamp(epoch, UTC).strftime("%a, %d %b %Y %H:%M:%S GMT")


_FALSE_VALUES = {"0", "f", "false", "off", "n", "no"}


def cast_bool(value: Any) -> bool | None:
    """ActiveModel::Type::Boolean semantics: "" and None are nil, a few strings are false."""
    if value is None:
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return value != 0
    text = str(value).strip()
    if text == "":
        return None
    return text.lower() not in _FALSE_VALUES


class Params:
    """Request parameters from the query string and a form, JSON or multipart body.

    Rails-style ``key[]`` names become lists under ``key``; ``key[0][field]`` style nested
    names (media_attributes) are collected as lists of dicts.
    """

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}
        self.files: dict[str, dict[str, Any]] = {}

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    def __contains__(self, key: str) -> bool:
        return key in self.values

    def list(self, key: str) -> list[Any]:
        value = self.values.get(key)
        if value is None:
            return []
        if isinstance(value, list):
            return value
        return [value]

    def add_pairs(self, pairs: list[tuple[str, Any]]) -> None:
        nested: dict[str, dict[str, dict[str, Any]]] = {}
        for key, value in pairs:
            m = re.fullmatch(r"([^\[\]]+)\[(\d*)\]\[([^\[\]]+)\]", key)
            if m:
                nested.setdefault(m.group(1), {}).setdefault(m.group(2), {})[m.group(3)] = value
                continue
            if key.endswith("[]"):
                self.values.setdefault(key[:-2], [])
                if not isinstance(self.values[key[:-2]], list):
                    self.values[key[:-2]] = [self.values[key[:-2]]]
                self.values[key[:-2]].append(value)
                continue
            self.values[key] = value
        for name, items in nested.items():
            self.values[name] = [items[k] for k in sorted(items, key=lambda s: int(s or 0))]

    def add_json(self, data: Any) -> None:
        if isinstance(data, dict):
            for key, value in data.items():
                self.values[key[:-2] if key.endswith("[]") else key] = value

    def to_loggable(self) -> dict[str, Any]:
        out: dict[str, Any] = dict(self.values)
        for name, info in self.files.items():
            out[name] = {
                "filename": info.get("filename"),
                "content_type": info.get("content_type"),
                "size": len(info.get("data", b"")),
            }
        return out


def parse_multipart(body: bytes, content_type: str) -> tuple[list[tuple[str, str]], dict[str, dict[str, Any]]]:
    """Minimal multipart/form-data parser: (text fields, files)."""
    m = re.search(r'boundary="?([^";]+)"?', content_type)
    if not m:
        raise ValueError("multipart body without boundary")
    boundary = b"--" + m.group(1).encode("latin-1")
    fields: list[tuple[str, str]] = []
    files: dict[str, dict[str, Any]] = {}
    for part in body.split(boundary)[1:]:
        if part.startswith(b"--"):
            break
        part = part[2:] if part.startswith(b"\r\n") else part
        head, sep, data = part.partition(b"\r\n\r\n")
        if not sep:
            continue
        if data.endswith(b"\r\n"):
            data = data[:-2]
        headers: dict[str, str] = {}
        for line in head.split(b"\r\n"):
            name, _, value = line.decode("utf-8", "replace").partition(":")
            headers[name.strip().lower()] = value.strip()
        disposition = headers.get("content-disposition", "")
        name_m = re.search(r'(?<![a-z])name="([^"]*)"', disposition)
        if not name_m:
            continue
        name = name_m.group(1)
        file_m = re.search(r'filename="([^"]*)"', disposition)
        if file_m is not None:
            files[name[:-2] if name.endswith("[]") else name] = {
                "filename": file_m.group(1),
                "content_type": headers.get("content-type", "application/octet-stream"),
                "data": data,
            }
        else:
            fields.append((name, data.decode("utf-8", "replace")))
    return fields, files


def parse_params(query: str, body: bytes, content_type: str) -> Params:
    params = Params()
    params.add_pairs(urllib.parse.parse_qsl(query, keep_blank_values=True))
    ctype = (content_type or "").lower()
    if body:
        if ctype.startswith("application/json"):
            params.add_json(json.loads(body.decode("utf-8")))
        elif ctype.startswith("multipart/form-data"):
            fields, files = parse_multipart(body, content_type)
            params.add_pairs(fields)
            params.files.update(files)
        else:
            params.add_pairs(urllib.parse.parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
    return params


# --- text -> HTML, shaped like Mastodon's TextFormatter output ---------------------------

_HASHTAG = regex.compile(r"(?<![=/)\w])#(\w*[\p{L}_]\w*)")


def _link_html(url: str) -> str:
    m = re.match(r"(?i)(https?://(?:www\.)?)", url)
    prefix = m.group(1) if m else ""
    rest = url[len(prefix):]
    display, suffix = rest, ""
    display_class = ""
    if len(rest) > 30:
        display, suffix = rest[:30], rest[30:]
        display_class = "ellipsis"
    return (
        f'<a href="{html.escape(url, quote=True)}" target="_blank" rel="nofollow noopener" translate="no">'
        f'<span class="invisible">{html.escape(prefix)}</span>'
        f'<span class="{display_class}">{html.escape(display)}</span>'
        f'<span class="invisible">{html.escape(suffix)}</span></a>'
    )


def text_to_html(text: str, base_url: str, resolve_mention: Callable[[str], dict | None]) -> tuple[str, list[dict], list[str]]:
    """Returns (html, mentioned accounts, hashtags)."""
    if not text:
        return "", [], []
    pieces: list[str] = []
    mentions: list[dict] = []
    tags: list[str] = []
    entities = find_entities(text)
    for m in _HASHTAG.finditer(text):
        if any(e.start <= m.start() < e.end for e in entities):
            continue
        entities.append(Entity("hashtag", m.start(), m.end(), m.group(1)))
    entities.sort(key=lambda e: e.start)
    last = 0
    for entity in entities:
        pieces.append(html.escape(text[last:entity.start], quote=True).replace("&#x27;", "&#39;"))
        raw = text[entity.start:entity.end]
        if entity.kind == "url":
            pieces.append(_link_html(raw))
        elif entity.kind == "hashtag":
            tags.append(entity.value)
            pieces.append(
                f'<a href="{base_url}/tags/{html.escape(entity.value.lower())}" class="mention hashtag" rel="tag">'
                f"#<span>{html.escape(entity.value)}</span></a>"
            )
        else:
            account = resolve_mention(entity.value)
            if account is None:
                pieces.append(html.escape(raw))
            else:
                mentions.append(account)
                pieces.append(
                    f'<span class="h-card" translate="no"><a href="{account["url"]}" class="u-url mention">'
                    f'@<span>{html.escape(account["username"])}</span></a></span>'
                )
        last = entity.end
    pieces.append(html.escape(text[last:], quote=True).replace("&#x27;", "&#39;"))
    body = "".join(pieces).replace("\r\n", "\n").replace("\r", "\n")
    paragraphs = [p for p in re.split(r"\n\n+", body)]
    out = []
    for para in paragraphs:
        para = re.sub(r"\n", "<br />", para)
        out.append(f"<p>{para}</p>")
    return "".join(out), mentions, tags
