"""Text and card each do their own job (issue 15, items 1 and 5).

Bluesky: the card is the link, so the default text spends no graphemes on the URL and does not repeat the card;
the writer's template still decides. Link posts: the card goes to the linked article, the permalink stays.
Pointer links ("here") keep their address; Mastodon's card comes from the first URL, the intended one.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timezone

from bridge.model import Entry
from bridge.platforms.bluesky.payload import bluesky_payload
from bridge.platforms.mastodon.payload import mastodon_payload
from bridge.render import render_post
from bridge.render.links import find_urls, pointer_links

from tests.bluesky_helpers import check_facets
from tests.render_corpus import bluesky_settings, settings

CREATED = "2024-05-01T12:00:00.000Z"
LINK = "https://example.com/2024/05/hello-world"
ARTICLE = "https://news.example/2024/05/the-story-this-post-is-about"


def entry(**fields) -> Entry:
    values = dict(
        key="tag:example.com,2024:1",
        link=LINK,
        title="Hello world",
        summary_html="<p>A short excerpt that says what the post is about.</p>",
        published=datetime(2024, 5, 1, 10, 0, tzinfo=timezone.utc),
        categories=["Python"],
    )
    values.update(fields)
    return Entry(**values)


def bluesky(item: Entry, **overrides) -> dict:
    chosen = bluesky_settings(**overrides)
    record = bluesky_payload(render_post(item, chosen), chosen, created_at=CREATED)["record"]
    check_facets(record)
    return record


def mastodon(item: Entry, **overrides) -> str:
    chosen = settings(**overrides)
    return mastodon_payload(render_post(item, chosen), chosen)["status"]


def link_uris(record: dict) -> list[str]:
    return [f["features"][0]["uri"] for f in record["facets"] if "uri" in f["features"][0]]


def first_url(status: str) -> str:
    start, end = find_urls(status)[0]
    return status[start:end]


def test_titled_post_says_its_title_and_leaves_link_and_description_to_the_card():
    record = bluesky(entry())
    assert record["text"] == "Hello world\n\n#Python"
    assert link_uris(record) == []
    assert record["embed"]["external"] == {
        "uri": LINK, "title": "Hello world", "description": "A short excerpt that says what the post is about.",
    }


def test_untitled_post_is_its_text_and_the_card_does_not_repeat_it():
    record = bluesky(entry(title="", categories=[]))
    assert record["text"] == "A short excerpt that says what the post is about."
    assert record["embed"]["external"]["uri"] == LINK
    assert record["embed"]["external"]["description"] == ""


def test_the_writers_template_decides_and_the_card_leaves_out_what_the_text_says():
    record = bluesky(entry(), template="{title}\n\n{summary}\n\n{url}")
    assert record["text"] == "Hello world\n\nA short excerpt that says what the post is about.\n\nexample.com/2024/05/hello-world"
    assert link_uris(record) == [LINK]
    assert record["embed"]["external"]["description"] == ""


def test_without_a_card_the_link_is_in_the_text():
    chosen = bluesky_settings()
    post = replace(render_post(entry(), chosen), card=None)  # e.g. the embed slot holds images
    record = bluesky_payload(post, chosen, created_at=CREATED)["record"]
    assert "embed" not in record
    assert record["text"] == "Hello world\n\n#Python\n\nexample.com/2024/05/hello-world"  # at the end
    assert link_uris(record) == [LINK]


def test_link_post_cards_the_article_and_keeps_the_permalink():
    item = entry(target=ARTICLE)
    record = bluesky(item)
    assert record["embed"]["external"]["uri"] == ARTICLE
    assert record["text"] == "Hello world\n\n#Python ★"
    assert link_uris(record) == [LINK]  # the one-grapheme mark links the writer's own post
    status = mastodon(item)
    assert first_url(status) == ARTICLE  # Mastodon's card: the article
    assert f"{ARTICLE}\n★ {LINK}" in status


def test_pointer_links_keep_their_address_and_the_intended_url_comes_first_on_mastodon():
    item = entry(summary_html='<p>Two examples: <a href="https://t.example/1">here</a> and <a href="https://t.example/2">here</a>.</p>')
    status = mastodon(item)
    assert "here (https://t.example/1) and here (https://t.example/2)." in status
    assert first_url(status) == LINK
    record = bluesky(item, template="{summary}")
    assert record["text"] == "Two examples: here and here."
    assert link_uris(record) == ["https://t.example/1", "https://t.example/2"]
    # a card cannot link a word: it says "here" without the address
    assert "https://" not in record["embed"]["external"]["description"]


def test_pointer_words_are_found_at_the_end_of_the_words_before_the_address():
    text = "Read this post (https://a.example/1), not that one (https://a.example/2)."
    assert [(word, url) for _s, _e, word, url in pointer_links(text)] == [("this post", "https://a.example/1")]


ATOM_LINKBLOG = """<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom">
  <title>Linkblog</title><link rel="alternate" href="https://blog.example.org/"/><id>https://blog.example.org/</id>
  <updated>2024-05-01T10:00:00Z</updated>
  <entry>
    <title>A story worth reading</title>
    <link rel="alternate" href="https://news.example.net/story"/>
    <link rel="related" href="https://blog.example.org/linked/2024/05/story"/>
    <id>tag:blog.example.org,2024:/linked/story</id><updated>2024-05-01T10:00:00Z</updated>
    <content type="html">&lt;p&gt;Worth it.&lt;/p&gt;</content>
  </entry>
  <entry>
    <title>My own article</title>
    <link rel="alternate" href="https://blog.example.org/2024/05/mine"/>
    <id>tag:blog.example.org,2024:/mine</id><updated>2024-05-01T09:00:00Z</updated>
    <content type="html">&lt;p&gt;Mine.&lt;/p&gt;</content>
  </entry>
</feed>"""

RSS_LINKBLOG = """<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>Links</title><link>https://www.blog.example.org/</link><description>d</description>
  <item><title>Elsewhere</title><link>https://news.example.net/other</link>
    <guid isPermaLink="true">https://blog.example.org/links/other</guid><description>Look.</description></item>
  <item><title>A mirror</title><link>https://cdn.example.net/mirror</link>
    <guid isPermaLink="false">not-a-link-1</guid><description>Nothing of ours.</description></item>
  <item><title>Our mirror</title><link>https://blog.example.org/mirror</link>
    <guid>https://other.example.com/p/1</guid><description>Ours.</description></item>
</channel></rss>"""


def test_daring_fireball_style_feeds_make_link_posts():
    from bridge.feeds import parse_feed

    atom = parse_feed(ATOM_LINKBLOG.encode(), "https://blog.example.org/feed.atom").entries
    assert [(e.link, e.target) for e in atom] == [
        ("https://blog.example.org/linked/2024/05/story", "https://news.example.net/story"),
        ("https://blog.example.org/2024/05/mine", None),
    ]
    rss = parse_feed(RSS_LINKBLOG.encode(), "https://blog.example.org/rss.xml").entries
    assert [(e.link, e.target) for e in rss] == [
        ("https://blog.example.org/links/other", "https://news.example.net/other"),
        ("https://cdn.example.net/mirror", None),  # no permalink of its own: the link is all it has
        ("https://blog.example.org/mirror", None),  # on the site already
    ]
    status = mastodon(atom[0])
    assert first_url(status) == "https://news.example.net/story"
    assert "★ https://blog.example.org/linked/2024/05/story" in status
