"""A parsed document made ready to record: for each entry its content hash, its link aliases and the JSON the
state stores. All of it depends on the document alone, so a big poll can work it out in other processes
(bridge/feeds/pool.py) while the one writer records; a small poll does it inline, through the same function.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson

from bridge.model import Entry, ParsedFeed
from bridge.permalinks import link_host

from .identity import link_aliases
from .parse import parse_feed


class PreparedEntry:
    """One entry as the state records it. What recording a new feed's entries reads (key, link, dates, hash,
    aliases, JSON) is plain data; the Entry itself is made from the JSON only when asked for. A worker process
    sends the plain data alone: the Entry's fields would travel twice (they are all in the JSON), and a first
    poll's baseline never needs it."""

    __slots__ = ("key", "link", "host", "published_at", "appeared_at", "content_hash", "aliases", "data", "_entry")

    def __init__(self, key: str, link: str | None, host: str, published_at: float | None, appeared_at: float | None,
                 content_hash: str, aliases: list[str], data: str, entry: Entry | None = None) -> None:
        self.key, self.link, self.content_hash, self.aliases = key, link, content_hash, aliases
        self.host = host  # permalinks.link_host(link): is the permalink on an address readers cannot open?
        self.published_at = published_at  # the entries.published column
        self.appeared_at = appeared_at  # published, else updated: when the entry appeared
        self.data = data  # Entry.to_dict() as JSON: the entries.data column
        self._entry = entry

    @classmethod
    def of(cls, entry: Entry) -> PreparedEntry:
        published = entry.published.timestamp() if entry.published else None
        appeared = published if published is not None else entry.updated.timestamp() if entry.updated else None
        return cls(entry.key, entry.link, link_host(entry.link or ""), published, appeared,
                   entry_content_hash(entry), link_aliases(entry.link) if entry.link else [], entry_data(entry), entry)

    @property
    def entry(self) -> Entry:
        if self._entry is None:
            self._entry = Entry.from_dict(json.loads(self.data))  # what the state gives back for this entry
        return self._entry

    def _fields(self) -> tuple:
        return (self.key, self.link, self.host, self.published_at, self.appeared_at, self.content_hash, self.aliases, self.data)

    def __reduce__(self):
        return PreparedEntry, self._fields()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PreparedEntry) and self._fields() == other._fields()

    def __repr__(self) -> str:
        return f"PreparedEntry({self.key!r}, {self.link!r})"


@dataclass
class PreparedFeed:
    parsed: ParsedFeed  # without its entries: they are in `entries`
    entries: list[PreparedEntry]

    def __reduce__(self):
        # A worker sends one per document: its entries as one list of plain tuples pickle in half the time of an
        # object each, and unpickle faster in the polling process.
        return _prepared_feed, (self.parsed, [entry._fields() for entry in self.entries])


def _prepared_feed(parsed: ParsedFeed, entries: list[tuple]) -> PreparedFeed:
    return PreparedFeed(parsed, [PreparedEntry(*fields) for fields in entries])


def entry_content_hash(entry: Entry) -> str:
    """What makes an entry 'changed' for update handling: the text a post is made of, not dates or image order.

    The hash of json.dumps([title, link, summary, content, sorted categories], ensure_ascii=False), as stored
    since the first version: the same bytes built with orjson, whose strings are escaped alike (only the
    separators differ, and they are written here)."""
    parts = (entry.title, entry.link, entry.summary_html, entry.content_html)
    dumps = orjson.dumps
    try:
        material = b"[%b, %b, %b, %b, [%b]]" % (*map(dumps, parts), b", ".join(map(dumps, sorted(entry.categories))))
    except TypeError:  # a lone surrogate (a JSON Feed's "\ud800"): json.dumps keeps it, and encode() says what is wrong
        material = json.dumps([*parts, sorted(entry.categories)], ensure_ascii=False).encode()
    return hashlib.sha256(material).hexdigest()


def entry_data(entry: Entry) -> str:
    """The entries.data column: Entry.to_dict() as compact JSON (json.loads reads it as it reads rows json.dumps
    wrote). orjson writes the dataclass itself, without the dict: the same fields in the same order, datetimes
    written by isoformat as to_dict writes them (tests/test_prepare.py holds the two to the same bytes)."""
    try:
        # UTC, as the parsers give them: orjson writes those as isoformat does, without a call back for each
        if _utc(entry.published) and _utc(entry.updated):
            return orjson.dumps(entry).decode()
        return orjson.dumps(entry, option=orjson.OPT_PASSTHROUGH_DATETIME, default=_isoformat).decode()
    except TypeError:  # a lone surrogate: json.dumps writes what it always wrote
        return json.dumps(entry.to_dict(), ensure_ascii=False)


def _utc(moment: datetime | None) -> bool:
    return moment is None or (type(moment) is datetime and moment.tzinfo is UTC)


def _isoformat(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def prepare(parsed: ParsedFeed) -> PreparedFeed:
    return PreparedFeed(dataclasses.replace(parsed, entries=[]), [PreparedEntry.of(entry) for entry in parsed.entries])


def read_document(body: bytes, url: str, content_type: str | None) -> PreparedFeed:
    """parse_feed, then prepare: raises what parse_feed raises."""
    # No default_language: [bridge] language is the last fallback, applied when a post is rendered.
    return prepare(parse_feed(body, url, content_type=content_type))
