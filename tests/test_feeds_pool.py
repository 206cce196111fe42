"""Reading documents in worker processes (bridge/feeds/pool.py): the same entries, the same errors, as reading
them in the poll's own process; a big poll uses the workers and records every feed."""

from __future__ import annotations

import asyncio

import pytest

from bench import synthetic
from bridge.errors import FeedError
from bridge.feeds import pool as pool_module
from bridge.feeds.pool import ReadPool
from bridge.feeds.prepare import read_document
from tests.test_pipeline import posts, rss, world  # noqa: F401  (the fixture)

URL = "https://blog.example/feed.xml"
HTML_PAGE = b'<!doctype html><html><head><link rel="alternate" type="application/rss+xml" href="/rss"></head></html>'


def read_all(reader: ReadPool, documents: list[bytes]) -> list:
    async def go():
        results = []
        for body in documents:
            try:
                results.append(await reader.read(body, URL, "application/rss+xml"))
            except FeedError as exc:
                results.append((type(exc), str(exc)))
        return results

    try:
        return asyncio.run(go())
    finally:
        reader.close()


def test_workers_give_what_reading_here_gives_errors_included(monkeypatch):
    monkeypatch.setattr(pool_module, "START_AFTER", 0)
    documents = [synthetic.rss(1, 0, "https://blog.example"), synthetic.atom(3, 2, "https://blog.example"),
                 HTML_PAGE, b"<rss><channel><item>", b""]
    expected = []
    for body in documents:
        try:
            expected.append(read_document(body, URL, "application/rss+xml"))
        except FeedError as exc:
            expected.append((type(exc), str(exc)))
    reader = ReadPool(workers=2)
    assert read_all(reader, documents) == expected
    errors = sum(isinstance(result, tuple) for result in expected)
    assert errors >= 2 and reader.read_inline == errors  # read here again, for their very own error


def test_a_big_poll_reads_in_workers_and_records_every_feed(world, monkeypatch):  # noqa: F811
    used: list[ReadPool] = []

    class Spy(ReadPool):
        def __init__(self, **options) -> None:
            super().__init__(workers=2, **options)
            used.append(self)

    monkeypatch.setattr(pool_module, "ReadPool", Spy)  # the pipeline imports it when a cycle is big enough
    count = pool_module.START_AFTER + 30
    for number in range(count):
        world.server.route(f"/{number}", rss(posts(3, host=f"blog{number}.example")))
    world.server.route("/page", HTML_PAGE.decode(), content_type="text/html")
    config = world.config({**{f"blog{number:03d}": f"/{number}" for number in range(count)}, "page": "/page"})
    report = world.poll(config)
    outcomes = {outcome.feed: outcome for outcome in report.feeds}
    assert all(outcomes[f"blog{number:03d}"].baseline == 3 for number in range(count))
    assert outcomes["page"].outcome == "error" and "not a feed" in outcomes["page"].error.lower()
    assert [entry.link for _, entry, _ in world.state.entries_of_feed(f"blog{count - 1:03d}", oldest_first=True)] == \
        [f"https://blog{count - 1}.example/posts/{number}/" for number in (2, 1, 0)]
    # every feed is new, so every document will need reading: the workers start at once, none is read here
    assert used and used[0].start_at_once and used[0].read_inline == 0
    # a later cycle of feeds read before: a few changed documents are read here before workers are worth starting
    for number in range(count):
        world.server.route(f"/{number}", rss(posts(4, host=f"blog{number}.example")))
    world.clock.now += 3600
    world.poll(config)
    assert len(used) == 2 and not used[1].start_at_once and used[1].read_inline == pool_module.START_AFTER
