"""JSON Feed 1.0 and 1.1, read by bridge's own parser (feedparser 6 cannot)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from bridge.errors import FeedParseError
from bridge.feeds import parse_feed
from bridge.render.text import html_to_text

URL = "https://example.org/feed.json"


def parse(document: dict, url: str = URL, **kwargs):
    return parse_feed(json.dumps(document).encode(), url, **kwargs)


def test_version_1_0_basics():
    feed = parse({
        "version": "https://jsonfeed.org/version/1",
        "title": "My &amp; Blog",
        "home_page_url": "https://example.org/?utm_source=jsonfeed",
        "author": {"name": "Feed Author"},
        "items": [{
            "id": "1",
            "url": "https://example.org/one",
            "title": "One",
            "content_html": "<p>Hello <b>world</b></p>",
            "date_published": "2024-03-01T10:00:00+02:00",
            "date_modified": "2024-03-02T10:00:00Z",
            "tags": ["Python", " python ", "Web"],
        }],
    })
    assert feed.format == "jsonfeed10"
    assert feed.title == "My & Blog"
    assert feed.link == "https://example.org/"
    assert feed.bozo is None
    entry = feed.entries[0]
    assert entry.key == "1"
    assert entry.link == "https://example.org/one"
    assert entry.content_html == "<p>Hello <b>world</b></p>"
    assert entry.summary_html == ""
    assert entry.published == datetime(2024, 3, 1, 8, 0, tzinfo=UTC)
    assert entry.updated == datetime(2024, 3, 2, 10, 0, tzinfo=UTC)
    assert entry.categories == ["Python", "Web"]
    assert entry.authors == ["Feed Author"]  # 1.0 `author` object, inherited by the item


def test_version_1_1_authors_and_language():
    feed = parse({
        "version": "https://jsonfeed.org/version/1.1",
        "title": "Blog",
        "language": "de_DE",
        "authors": [{"name": "Anna"}, {"name": "Ben"}],
        "author": {"name": "Old style"},
        "items": [
            {"id": "a", "url": "https://example.org/a", "content_text": "x", "language": "en-gb",
             "authors": [{"name": "Cleo"}], "author": {"name": "ignored in 1.1"}},
            {"id": "b", "url": "https://example.org/b", "content_text": "y"},
        ],
    })
    assert feed.format == "jsonfeed11"
    assert feed.language == "de-DE"
    first, second = feed.entries
    assert first.language == "en-GB" and first.authors == ["Cleo"]
    assert second.language == "de-DE" and second.authors == ["Anna", "Ben"]


def test_external_url_is_a_link_posts_target_else_the_fallback_link():
    feed = parse({
        "version": "https://jsonfeed.org/version/1",
        "items": [
            {"id": "1", "url": "https://example.org/linked/1", "external_url": "https://elsewhere.example/story", "content_html": "<p>x</p>"},
            {"id": "2", "external_url": "https://elsewhere.example/other?utm_source=jsonfeed", "content_html": "<p>y</p>"},
            {"id": "3", "url": "https://example.org/3", "external_url": "https://example.org/3", "content_html": "<p>z</p>"},
            # a WordPress plugin's HTML-escaped query: "&#038;" would start a fragment
            {"id": "4", "url": "https://example.org/4", "external_url": "https://e.example/a?b=1&#038;c=2&amp;d=3", "content_html": "<p>w</p>"},
        ],
    })
    assert feed.entries[0].link == "https://example.org/linked/1"  # the permalink stays the entry's link
    assert feed.entries[1].link == "https://elsewhere.example/other"
    assert [entry.target for entry in feed.entries] == [
        "https://elsewhere.example/story", None, None, "https://e.example/a?b=1&c=2&d=3",
    ]


def test_images_banner_and_attachments():
    feed = parse({
        "version": "https://jsonfeed.org/version/1.1",
        "items": [{
            "id": "1", "url": "https://example.org/post/",
            "image": "/img/cover.jpg",
            "banner_image": "https://cdn.example.org/banner.png",
            "content_html": '<p><img src="inline.png" alt="An &amp; inline"><img src="https://cdn.example.org/banner.png"></p>',
            "attachments": [
                {"url": "https://cdn.example.org/ep1.mp3", "mime_type": "audio/mpeg", "size_in_bytes": 123, "duration_in_seconds": 60},
                {"url": "https://cdn.example.org/photo.webp", "mime_type": "image/webp"},
            ],
        }],
    })
    images = feed.entries[0].images
    assert [(i.url, i.source) for i in images] == [
        ("https://example.org/img/cover.jpg", "jsonfeed:image"),
        ("https://cdn.example.org/banner.png", "jsonfeed:banner_image"),
        ("https://cdn.example.org/photo.webp", "attachment"),
        ("https://example.org/post/inline.png", "content:img"),
    ]
    assert images[2].mime_type == "image/webp"
    assert images[3].alt == "An & inline"


def test_date_without_timezone_is_utc_and_junk_is_none():
    feed = parse({
        "version": "https://jsonfeed.org/version/1",
        "items": [
            {"id": "1", "content_text": "a", "date_published": "2018-01-06T08:00"},
            {"id": "2", "content_text": "b", "date_published": "2018-01-06T08:00:00.000Z", "date_updated": "2018-01-07T00:00:00Z"},
            {"id": "3", "content_text": "c", "date_published": "yesterday"},
            {"id": "4", "content_text": "d", "date_published": "Sat, 06 Jan 2018 08:00:00 +0100"},
        ],
    })
    a, b, c, d = feed.entries
    assert a.published == datetime(2018, 1, 6, 8, 0, tzinfo=UTC)
    assert b.published == datetime(2018, 1, 6, 8, 0, tzinfo=UTC) and b.updated == datetime(2018, 1, 7, tzinfo=UTC)
    assert c.published is None
    assert d.published == datetime(2018, 1, 6, 7, 0, tzinfo=UTC)


def test_content_text_only_becomes_escaped_paragraphs():
    feed = parse({
        "version": "https://jsonfeed.org/version/1.1",
        "items": [{"id": "1", "content_text": "Line one\nline <two> & more\n\nSecond paragraph", "summary": "Short <b>not bold</b>"}],
    })
    entry = feed.entries[0]
    assert entry.content_html == "<p>Line one<br>\nline &lt;two&gt; &amp; more</p>\n<p>Second paragraph</p>"
    assert entry.summary_html == "<p>Short &lt;b&gt;not bold&lt;/b&gt;</p>"  # summary is plain text in JSON Feed
    assert entry.title == ""


def test_ids_numbers_missing_and_duplicates():
    feed = parse({
        "version": "http://jsonfeed.org/version/1",  # http:// as the WordPress plugin writes it
        "items": [
            {"id": 42, "url": "https://example.org/42", "content_text": "a"},
            {"url": "https://example.org/no-id?utm_medium=feed", "content_text": "b"},
            {"title": "Neither", "date_published": "2024-01-01T00:00:00Z", "content_text": "c"},
            {"id": "", "title": "Empty id", "content_text": "d"},
        ],
    })
    assert feed.format == "jsonfeed10"
    keys = [e.key for e in feed.entries]
    assert keys[0] == "42"
    assert keys[1] == "https://example.org/no-id"
    assert keys[2].startswith("sha256:") and keys[3].startswith("sha256:") and keys[2] != keys[3]


def test_html_is_kept_as_given_and_reaches_posts_as_plain_text():
    # Bodies are not sanitized at parse time: the renderer turns them into plain text (no markup, no script),
    # and images resolve against the item's URL.
    feed = parse({
        "version": "https://jsonfeed.org/version/1.1",
        "items": [{"id": "1", "url": "https://example.org/posts/1/",
                   "content_html": '<p onclick="x()">Hi <a href="../2/">next</a><img src="../pic.png" alt="A pic"></p>'
                                   "<script>alert(1)</script>"}],
    })
    entry = feed.entries[0]
    assert html_to_text(entry.content_html).text == "Hi next"
    assert entry.images[0].url == "https://example.org/posts/pic.png" and entry.images[0].alt == "A pic"


def test_doubly_escaped_content_html_is_unescaped_once():
    feed = parse({"version": "https://jsonfeed.org/version/1", "items": [
        {"id": "1", "content_html": "&lt;p&gt;Hello &amp;amp; bye&lt;/p&gt;"}]})
    assert feed.entries[0].content_html == "<p>Hello &amp; bye</p>"


def test_relative_urls_resolve_against_the_feed():
    feed = parse({"version": "https://jsonfeed.org/version/1.1", "home_page_url": "/", "items": [
        {"id": "1", "url": "/posts/1", "content_text": "x"}]}, url="https://blog.example.net/feed.json")
    assert feed.link == "https://blog.example.net/"
    assert feed.entries[0].link == "https://blog.example.net/posts/1"


def test_detected_by_leading_brace_or_content_type():
    body = json.dumps({"version": "https://jsonfeed.org/version/1.1", "items": []}).encode()
    assert parse_feed(b"\xef\xbb\xbf  \n" + body, URL).format == "jsonfeed11"  # BOM and whitespace
    assert parse_feed(body, URL, content_type="application/feed+json").entries == []


def test_default_language_applies_last():
    feed = parse({"version": "https://jsonfeed.org/version/1.1", "items": [{"id": "1", "content_text": "x"}]}, default_language="fr_CA")
    assert feed.language == "fr-CA" and feed.entries[0].language == "fr-CA"


def test_unknown_version_is_used_but_noted():
    feed = parse({"items": [{"id": "1", "content_text": "x"}]})
    assert feed.format == "jsonfeed" and "version" in feed.bozo and len(feed.entries) == 1


@pytest.mark.parametrize(
    "body",
    [
        b'{"version": "https://jsonfeed.org/version/1", "items": [',  # truncated
        b"{'version': 'single quotes'}",
        b'{"version": "https://jsonfeed.org/version/1", "items": [}',
        b'{"version": "https://jsonfeed.org/version/1"}',  # no items
        b'{"version": "https://jsonfeed.org/version/1", "items": {"id": 1}}',  # items not a list
        b'[{"id": 1}]',  # not an object
        b"{}",
    ],
)
def test_malformed_json_is_a_parse_error(body):
    with pytest.raises(FeedParseError):
        parse_feed(body, URL)


def test_invalid_utf8_is_replaced_not_fatal():
    body = b'{"version": "https://jsonfeed.org/version/1.1", "items": [{"id": "1", "title": "caf\xe9", "content_text": "x"}]}'
    feed = parse_feed(body, URL)
    assert feed.entries[0].title == "caf\ufffd" and "UTF-8" in feed.bozo
