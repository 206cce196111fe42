"""A state database that already holds a long history: N old entries per feed, as years of polling leave.

Rows are written straight into bridge's own schema (created by bridge's migrations), shaped like real rows:
the entry JSON is a real parsed synthetic entry (about 4.5 KB), each entry has its canonical-link aliases, and
every tenth entry has a posted delivery, as after years of cross-posting.
"""

from __future__ import annotations

import json
import os
import sqlite3
from email.utils import formatdate
from pathlib import Path

from bench import synthetic
from bridge.feeds import link_aliases, parse_feed
from bridge.ids import idempotency_key
from bridge.feeds.prepare import entry_content_hash
from bridge.state import State


def seed_history(state_path: Path, feeds: list[tuple[str, str]], per_feed: int, account: str | None) -> int:
    """Give every (name, url) feed `per_feed` old entries; returns how many entries were written."""
    State.open(state_path).close()  # the schema, by bridge's own migrations
    template = parse_feed(synthetic.rss(0, 0, "https://template.invalid"), "https://template.invalid/feed").entries[0]
    data = template.to_dict()
    conn = sqlite3.connect(state_path, isolation_level=None)
    conn.execute("PRAGMA synchronous = OFF")
    written = 0
    try:
        conn.execute("BEGIN")
        now = 1_700_000_000.0
        for name, url in feeds:
            conn.execute("INSERT OR IGNORE INTO feeds (name, configured_url, url) VALUES (?, ?, ?)", (name, url, url))
            site = url.rsplit("/feeds/", 1)[0]
            entries, aliases, deliveries = [], [], []
            for number in range(per_feed):
                link = f"{site}/archive/{name}/{number}-old-post"
                data["key"], data["link"] = f"{site}/?archive={name}-{number}", link
                published = now - number * 86_400
                entries.append((name, data["key"], link, "new", entry_content_hash(template), published, published,
                                published, json.dumps(data, ensure_ascii=False)))
            first = conn.execute("SELECT COALESCE(MAX(id), 0) + 1 FROM entries").fetchone()[0]
            conn.executemany(
                """INSERT INTO entries (feed, key, link, status, content_hash, published, first_seen_at, updated_at, data)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)""", entries)
            for offset, row in enumerate(entries):
                entry_id = first + offset
                aliases += [(alias, name, entry_id) for alias in link_aliases(row[2])]
                if account and offset % 10 == 0:
                    deliveries.append((entry_id, account, "posted", "new", idempotency_key(account, name, row[1]),
                                       row[5], row[5], row[5], f"https://mastodon.invalid/@bench/{entry_id}"))
            conn.executemany("INSERT OR IGNORE INTO aliases (alias, feed, entry_id) VALUES (?, ?, ?)", aliases)
            conn.executemany(
                """INSERT INTO deliveries (entry_id, account, state, kind, idempotency_key, next_attempt_at, created_at,
                   posted_at, remote_url) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)""", deliveries)
            written += len(entries)
        conn.execute("COMMIT")  # no ANALYZE: bridge never runs it, so a real state has no planner statistics
    finally:
        conn.close()
    # Written without syncing (fast), the seeded gigabytes would still be going to disk during the first minutes
    # of measuring, and every fsync of the grown state would wait for them: flush them now, as years of polling
    # would have. (SQLite checkpointed the WAL into the main file when the connection closed.)
    fd = os.open(state_path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    return written


def seed_polled(state_path: Path, feeds: list[tuple[str, str, Path]]) -> None:
    """Feed rows as a poll of each (name, url, document) leaves them, with the validators nginx gives the
    document (ETag "mtime-size" in hex, Last-Modified), so that the next cycle is all 304s. No entries: a steady
    cycle reads none (the state-growth case measures what a big entries table costs)."""
    State.open(state_path).close()
    rows = []
    for name, url, document in feeds:
        stat = document.stat()
        mtime = int(stat.st_mtime)
        rows.append((name, url, url, f'"{mtime:x}-{stat.st_size:x}"', formatdate(mtime, usegmt=True)))
    conn = sqlite3.connect(state_path, isolation_level=None)
    try:
        conn.execute("BEGIN")
        conn.executemany(
            """INSERT INTO feeds (name, configured_url, url, etag, last_modified, baseline_done, last_outcome,
               last_status, entry_count, next_poll_at) VALUES (?, ?, ?, ?, ?, 1, 'not-modified', 304, 20, 0)""", rows)
        conn.execute("COMMIT")
    finally:
        conn.close()
