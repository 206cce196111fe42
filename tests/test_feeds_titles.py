"""Titles are plain text in the post: a literal "<i>" or "<details>" the writer typed stays, real markup goes."""

from __future__ import annotations

import json

import pytest

from bridge.feeds import parse_feed
from bridge.platforms.bluesky.payload import bluesky_payload
from bridge.platforms.mastodon.limits import MastodonLimits
from bridge.platforms.mastodon.payload import mastodon_payload
from bridge.render import render_post
from tests.render_corpus import load_entry, requires_corpus, settings

URL = "https://site.example/feed.xml"


def rss_title(title: bytes, *, well_formed: bool = True) -> str:
    breaker = b"" if well_formed else b"&nbsp;"  # an undefined entity: feedparser's lenient parser reads it
    body = (b'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>S</title>'
            b"<link>https://site.example/</link><item><title>" + title + b"</title>"
            b"<link>https://site.example/a</link><description>text" + breaker + b"</description></item></channel></rss>")
    return parse_feed(body, URL).entries[0].title


def atom_title(title: bytes, kind: bytes) -> str:
    body = (b'<feed xmlns="http://www.w3.org/2005/Atom"><title>S</title><id>urn:s</id>'
            b'<entry><id>urn:a</id><title type="' + kind + b'">' + title + b"</title>"
            b'<link href="https://site.example/a"/><updated>2024-01-01T00:00:00Z</updated></entry></feed>')
    return parse_feed(body, URL).entries[0].title


@pytest.mark.parametrize("well_formed", [True, False])
def test_rss_title_keeps_escaped_angle_brackets(well_formed):
    assert rss_title(b"Why &lt;details&gt; beats JavaScript", well_formed=well_formed) == "Why <details> beats JavaScript"
    assert rss_title(b"Die R\xc3\xbcckkehr von &lt;i&gt; und &lt;b&gt;", well_formed=well_formed) == "Die Rückkehr von <i> und <b>"


def test_rss_title_with_real_markup_loses_its_tags():
    assert rss_title(b"A &lt;em&gt;big&lt;/em&gt; day") == "A big day"


def test_atom_titles():
    assert atom_title(b"Why &lt;details&gt; beats JavaScript", b"text") == "Why <details> beats JavaScript"
    # labelled HTML but holding no markup: the writer's text (posts are plain text)
    assert atom_title(b"Why &lt;details&gt; beats JavaScript", b"html") == "Why <details> beats JavaScript"
    assert atom_title(b"A &lt;em&gt;big&lt;/em&gt; day &amp;amp; more", b"html") == "A big day & more"


def test_json_feed_title_is_plain_text():
    feed = {"version": "https://jsonfeed.org/version/1.1", "title": "S", "items": [
        {"id": "1", "url": "https://site.example/1", "title": "Why <details> beats JavaScript", "content_text": "x"},
        {"id": "2", "url": "https://site.example/2", "title": "AT&amp;T <b>now</b>", "content_text": "x"}]}
    titles = [entry.title for entry in parse_feed(json.dumps(feed).encode(), URL).entries]
    assert titles == ["Why <details> beats JavaScript", "AT&T now"]


def posted(entry, feed_title: str = "") -> tuple[dict, dict, dict]:
    post = render_post(entry, settings(), feed_title=feed_title)
    bluesky_post = render_post(entry, settings("bluesky"), feed_title=feed_title)  # each platform's own templates
    return (post.to_dict(), mastodon_payload(post, settings(), MastodonLimits()),
            bluesky_payload(bluesky_post, settings("bluesky"), created_at="2024-01-01T00:00:00.000Z"))


@requires_corpus
def test_jsonfeed_3960_title_keeps_its_tags_on_both_platforms():
    feed, entry = load_entry("jsonfeed-3960-v1.1-de.json", 13)
    post, mastodon, bluesky = posted(entry, feed.title)
    assert post["title"] == post["card"]["title"] == "Die Rückkehr von <i> und <b>"
    assert "Die Rückkehr von <i> und <b>" in mastodon["status"]
    assert bluesky["record"]["text"].startswith("Die Rückkehr von <i> und <b>")
    assert bluesky["record"]["embed"]["external"]["title"] == "Die Rückkehr von <i> und <b>"
    assert "Web-Entwickler <i>-, <b>- und <u>-Tags" in post["card"]["description"]


@requires_corpus
def test_ibash_card_description_keeps_the_nicknames():
    feed, entry = load_entry("lang-ru-ibash-windows1251.rss", 7)
    post, _, bluesky = posted(entry, feed.title)
    assert post["card"]["description"].startswith("<L29Ah> [[ clang++ == *g++ ]] && echo yay <L29Ah> yay <Minoru>")
    assert bluesky["record"]["embed"]["external"]["description"] == post["card"]["description"]
