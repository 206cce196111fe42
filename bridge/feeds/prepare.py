"""A parsed document made ready to record: for each entry its content hash, its link aliases and the JSON the
state stores. All of it depends on the document alone, so a big poll can work it out in other processes
(bridge/feeds/pool.py) while the one writer records; a small poll does it inline, through the same function.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from bridge.model import Entry, ParsedFeed

from .identity import link_aliases
from .parse import parse_feed


@dataclass
class PreparedEntry:
    entry: Entry
    content_hash: str
    aliases: list[str]
    data: str  # Entry.to_dict() as JSON: the entries.data column


@dataclass
class PreparedFeed:
    parsed: ParsedFeed
    entries: list[PreparedEntry]


def entry_content_hash(entry: Entry) -> str:
    """What makes an entry 'changed' for update handling: the text a post is made of, not dates or image order."""
    material = json.dumps(
        [entry.title, entry.link, entry.summary_html, entry.content_html, sorted(entry.categories)], ensure_ascii=False
    )
    return hashlib.sha256(material.encode()).hexdigest()


def entry_data(entry: Entry) -> str:
    return json.dumps(entry.to_dict(), ensure_ascii=False)


def prepare(parsed: ParsedFeed) -> PreparedFeed:
    return PreparedFeed(parsed, [
        PreparedEntry(entry, entry_content_hash(entry), link_aliases(entry.link) if entry.link else [], entry_data(entry))
        for entry in parsed.entries
    ])


def read_document(body: bytes, url: str, content_type: str | None) -> PreparedFeed:
    """parse_feed, then prepare: raises what parse_feed raises."""
    # No default_language: [bridge] language is the last fallback, applied when a post is rendered.
    return prepare(parse_feed(body, url, content_type=content_type))
