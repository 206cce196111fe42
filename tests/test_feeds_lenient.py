"""A document that is not well-formed is read by feedparser's lenient parser; its entries must keep the keys and
links the strict reading gives, or a feed that flips between the two posts everything again."""

from __future__ import annotations

import pytest

from bridge.feeds import parse_feed
from tests.render_corpus import CORPUS_DIR, corpus_files, corpus_url, load_feed, requires_corpus
from tests.test_feeds_fastpath import CORPUS_FALLBACKS

URL = "https://site.example/feed.xml"
RSS = b"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>Site</title><link>https://site.example/</link>
<item><title>One</title><link>https://site.example/p?id=1&amp;lang=en</link>
<guid isPermaLink="false">https://site.example/p?id=1&amp;lang=en</guid><description>first</description></item>
<item><title>Two</title><link>https://site.example/q?id=2&amp;amp;lang=en&amp;amp;page=1</link>
<description>second BREAK</description></item>
<item><title>Three</title><link>https://site.example/r?id=3&amp;amplitude=2&amp;x=1</link><description>third</description></item>
</channel></rss>"""
# An undefined entity: expat refuses the document, feedparser falls back to its lenient parser.
ILL_FORMED = RSS.replace(b"BREAK", b"&nbsp;")


def keys_and_links(body: bytes) -> list[tuple[str, str | None]]:
    return [(entry.key, entry.link) for entry in parse_feed(body, URL).entries]


def test_the_lenient_reading_gives_the_strict_keys_and_links():
    strict = keys_and_links(RSS.replace(b"BREAK", b""))
    assert parse_feed(ILL_FORMED, URL).bozo, "the document must really be ill-formed for this test"
    assert keys_and_links(ILL_FORMED) == strict
    assert strict == [
        ("https://site.example/p?id=1&lang=en", "https://site.example/p?id=1&lang=en"),
        ("https://site.example/q?id=2&lang=en&page=1", "https://site.example/q?id=2&lang=en&page=1"),
        # a parameter that starts with "amp" is not taken for a mangled escape
        ("https://site.example/r?id=3&amplitude=2&x=1", "https://site.example/r?id=3&amplitude=2&x=1"),
    ]


def test_whitespace_before_the_declaration_is_not_a_broken_document():
    parsed = parse_feed(b"\n\n  " + RSS, URL)
    assert parsed.bozo is None
    assert keys_and_links(b"\r\n" + RSS) == keys_and_links(RSS)


def read_both_ways(name: str, damage):
    """The corpus document as it is, and as `damage` leaves it."""
    clean = load_feed(name)
    if clean is None:
        pytest.skip(f"{name} has no entries to compare")
    return clean, parse_feed(damage((CORPUS_DIR / name).read_bytes()), corpus_url(name))


# Documents the fast path reads: whitespace used to send them to feedparser's lenient parser.
WELL_FORMED = [name for name in corpus_files() if not name.endswith(".json") and name not in CORPUS_FALLBACKS]


@requires_corpus
@pytest.mark.parametrize("name", WELL_FORMED)
def test_corpus_document_with_leading_whitespace_reads_the_same(name):
    clean, shifted = read_both_ways(name, lambda body: b"\n   " + body)
    assert [(e.key, e.link, e.title, e.summary_html, e.content_html) for e in shifted.entries] == [
        (e.key, e.link, e.title, e.summary_html, e.content_html) for e in clean.entries
    ]


# The lenient parser is slow: a few documents with query strings, fragments, relative links and xml:base.
ILL_FORMED_SAMPLE = ("rdf-slashdot.rdf", "medium-emarley-user.rss", "lang-fr-lemonde.rss",
                     "scriptingnews-oldschool-untitled.rss", "relative-tpm-entry-links.atom", "xmlbase-ongoing-tbray.atom")


@requires_corpus
@pytest.mark.parametrize("name", ILL_FORMED_SAMPLE)
def test_corpus_document_made_ill_formed_keeps_its_keys_and_links(name):
    clean, broken = read_both_ways(name, lambda body: body.replace(b"</title>", b"&undefined;</title>", 1))
    assert broken.bozo
    assert [(e.key, e.link) for e in broken.entries] == [(e.key, e.link) for e in clean.entries]
