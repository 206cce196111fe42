"""Fuzz (issue 13): random nesting, entities, encodings and sizes through parse -> (what polling does with
each entry) -> render -> payload for both platforms. No exception escapes but the designed ones (FeedError: the feed's error; RenderError: that entry's
recorded failure), and every payload is within its platform's limits, counted independently: Mastodon by the
fake server's own counter, Bluesky in grapheme clusters and UTF-8 bytes, its facets checked byte by byte.
"""

from __future__ import annotations

import html
import json
from datetime import datetime, timezone

import regex
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bridge.errors import FeedError
from bridge.feeds import link_aliases, parse_feed
from bridge.feeds.prepare import entry_content_hash
from bridge.platforms.bluesky.limits import BLUESKY_MAX_BYTES, BLUESKY_MAX_GRAPHEMES
from bridge.platforms.bluesky.payload import bluesky_payload
from bridge.platforms.mastodon.limits import MastodonLimits
from bridge.platforms.mastodon.payload import mastodon_payload
from bridge.render import RenderError, render_post
from tests.bluesky_helpers import check_facets
from tests.mastodon_fake.length import status_length
from tests.render_corpus import settings as post_settings

TAGS = ("b", "i", "p", "div", "span", "a href='https://blog.example/x'", "em", "blockquote", "li", "ul", "h2",
        "table", "pre", "sup", "figure", "q", "font", "section", "td", "article")
ENTITIES = ("&amp;", "&lt;", "&gt;", "&nbsp;", "&#8217;", "&#x1F600;", "&hellip;", "&amp;amp;", "&#0;", "&#xD800;",
            "&#1114112;", "&bogus;", "&", "&#", "&#x;", "&eacute;", "&lt;p&gt;", "]]>")
WORDS = ("https://example.com/a?b=1&c=ü", "#tag", "@user@example.social", "…", "Read more", "\u200b", "👩‍👩‍👧",
         "e\u0301", "مرحبا", "日本語の文章", "\r\n", "\t", " ", "word", "<!--more-->", "<br>", "<img src=x alt='😀'>")
CHARSETS = ("utf-8", "utf-16", "iso-8859-1", "windows-1252", "shift_jis", "koi8-r", "gb18030", "utf-8-sig")
LINKS = ("https://blog.example/posts/1/", "https://blog.example/" + "long-path-" * 30, "https://bücher.example/ä?q=ö",
         "http://blog.example:8080/p?utm_source=rss&id=1", "/relative/path", "")
MASTODON = MastodonLimits()
CREATED = datetime(2026, 1, 1, tzinfo=timezone.utc)


@st.composite
def bodies(draw) -> str:
    """An HTML fragment: prose with entities, wrapped in a random number of tags, closed or not, repeated."""
    pieces = draw(st.lists(st.one_of(st.text(max_size=30), st.sampled_from(ENTITIES), st.sampled_from(WORDS)),
                           max_size=25))
    prose = "".join(pieces)
    depth = draw(st.one_of(st.integers(0, 12), st.integers(100, 1500)))
    cycle = draw(st.lists(st.sampled_from(TAGS), min_size=1, max_size=4))
    opening = "".join(f"<{cycle[level % len(cycle)]}>" for level in range(depth))
    closing = "".join(f"</{cycle[level % len(cycle)].split()[0]}>" for level in reversed(range(depth)))
    fragment = opening + prose + (closing if draw(st.booleans()) else "")
    return fragment * draw(st.sampled_from((1, 1, 3, 40)))


@st.composite
def documents(draw) -> tuple[bytes, str | None]:
    """A feed document (RSS, Atom or JSON Feed) of 1-3 entries, as bytes in some charset, declared or not."""
    kind = draw(st.sampled_from(("rss", "atom", "json")))
    entries = [(draw(st.text(max_size=80)), draw(bodies()), draw(st.sampled_from(LINKS)),
                draw(st.lists(st.text(max_size=20), max_size=3))) for _ in range(draw(st.integers(1, 3)))]
    if kind == "json":
        items = [{"id": f"id-{n}", "title": title, "content_html": body, "url": link, "tags": tags}
                 for n, (title, body, link, tags) in enumerate(entries)]
        text = json.dumps({"version": "https://jsonfeed.org/version/1.1", "title": "Fuzz", "items": items},
                          ensure_ascii=draw(st.booleans()))
        if draw(st.booleans()):
            text = text.replace("word", "w\\udc00rd\\ud800")  # lone surrogates, as JSON escapes allow
        return text.encode("utf-8"), "application/feed+json"
    charset = draw(st.sampled_from(CHARSETS))
    declared = draw(st.sampled_from(("none", "xml", "header", "both", "wrong")))
    cdata = draw(st.booleans())

    def markup(body: str) -> str:
        return "<![CDATA[" + body.replace("]]>", "]]]]><![CDATA[>") + "]]>" if cdata else html.escape(body)

    if kind == "rss":
        items = "".join(f"<item><guid>id-{n}</guid><title>{html.escape(title)}</title><link>{html.escape(link)}</link>"
                        f"<description>{markup(body)}</description>"
                        + "".join(f"<category>{html.escape(tag)}</category>" for tag in tags) + "</item>"
                        for n, (title, body, link, tags) in enumerate(entries))
        root = f'<rss version="2.0"><channel><title>Fuzz</title><link>https://blog.example/</link>{items}</channel></rss>'
    else:
        items = "".join(f"<entry><id>urn:fuzz:{n}</id><title type='html'>{html.escape(title)}</title>"
                        f"<link href='{html.escape(link, quote=True)}'/><updated>2026-01-01T00:00:00Z</updated>"
                        f"<content type='html'>{markup(body)}</content>"
                        + "".join(f"<category term='{html.escape(tag, quote=True)}'/>" for tag in tags) + "</entry>"
                        for n, (title, body, link, tags) in enumerate(entries))
        root = f"<feed xmlns='http://www.w3.org/2005/Atom'><title>Fuzz</title>{items}</feed>"
    name = {"wrong": "iso-8859-1" if charset != "iso-8859-1" else "utf-8"}.get(declared, charset)
    declaration = f'<?xml version="1.0" encoding="{name}"?>' if declared in ("xml", "both", "wrong") else ""
    content_type = "application/xml" + (f"; charset={name}" if declared in ("header", "both") else "")
    return (declaration + root).encode(charset, errors="xmlcharrefreplace"), content_type


def check_mastodon(payload: dict) -> None:
    json.dumps(payload, ensure_ascii=False).encode("utf-8")  # text a server can be sent
    used = status_length(payload["status"], payload["spoiler_text"], MASTODON.characters_reserved_per_url)
    assert used <= MASTODON.max_characters, payload


def check_bluesky(payload: dict) -> None:
    json.dumps(payload, ensure_ascii=False).encode("utf-8")
    record = payload["record"]
    assert len(regex.findall(r"\X", record["text"])) <= BLUESKY_MAX_GRAPHEMES, record["text"]
    assert len(record["text"].encode("utf-8")) <= BLUESKY_MAX_BYTES, record["text"]
    check_facets(record, "fuzz")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(documents())
def test_any_document_parses_renders_and_fits_or_fails_with_a_designed_error(document):
    body, content_type = document
    try:
        parsed = parse_feed(body, "https://blog.example/feed", content_type=content_type)
    except FeedError as exc:  # recorded on the feed; the others go on
        assert str(exc)
        return
    for entry in parsed.entries:
        entry_content_hash(entry)  # what polling does with each entry before storing it
        if entry.link:
            link_aliases(entry.link)
        options = post_settings()
        try:
            post = render_post(entry, options, feed_title=parsed.title)
        except RenderError as exc:  # recorded on the entry's deliveries
            assert str(exc)
            continue
        check_mastodon(mastodon_payload(post, options, MASTODON))
        check_bluesky(bluesky_payload(post, options, thumbnail=None, created_at=CREATED))
