"""Photo posts and the `images` setting (bridge/render/photos.py): which entries attach their pictures natively,
with which alt text, within each platform's limits; placeholder titles and Tumblr reblog handles; card
thumbnails too small to show. The corpus-wide checks read the Tumblr feeds of ../shared/corpus."""

from __future__ import annotations

import json
import re

import pytest

from bridge.config import ConfigError, parse_config
from bridge.feeds import parse_feed
from bridge.linkpreview import Thumbnail
from bridge.model import Entry, ImageCandidate
from bridge.platforms.bluesky.payload import bluesky_payload
from bridge.platforms.mastodon.limits import MastodonLimits
from bridge.platforms.mastodon.payload import mastodon_payload
from bridge.render import render_post
from bridge.render.photos import PLACEHOLDER_TITLES
from tests.feedserver import png_bytes
from tests.render_corpus import corpus_files, load_feed, requires_corpus, settings

CREATED = "2024-01-01T00:00:00.000Z"
LINK = "https://photos.example.com/post/1"
ARTICLE = "<p>" + "A long paragraph of an article that is about something other than its pictures. " * 12 + "</p>"


def imgs(count: int, alt: str = "Picture {n}") -> str:
    return "".join(f'<img src="https://cdn.example.com/{n}.jpg" alt="{alt.format(n=n)}"/>' for n in range(1, count + 1))


def photo(title: str = "Photo", html: str | None = None, **fields) -> Entry:
    return Entry(key="p1", link=LINK, title=title, summary_html=imgs(2) if html is None else html, **fields)


def payloads(entry: Entry, limits: MastodonLimits = MastodonLimits(), thumbnail: Thumbnail | None = None, **options):
    chosen = settings(**options)
    post = render_post(entry, chosen)
    return post, mastodon_payload(post, chosen, limits), bluesky_payload(post, chosen, thumbnail=thumbnail,
                                                                           created_at=CREATED)["record"]


def thumb(width: int, height: int) -> Thumbnail:
    return Thumbnail(data=png_bytes(width, height), mime_type="image/png", width=width, height=height,
                     source_url="https://cdn.example.com/card.png")


# --------------------------------------------------------------------------- photo posts


@pytest.mark.parametrize("title", ["Photo", "Video", "Untitled", " photo ", "(no title)"])
def test_a_placeholder_title_is_never_posted(title):
    post, mastodon, bluesky = payloads(photo(title, "<p>The view from the ferry this morning.</p>"))
    assert post.title == "" and post.summary == "The view from the ferry this morning."
    assert not mastodon["status"].startswith(title.strip()) and not bluesky["text"].startswith(title.strip())


def test_a_photo_post_attaches_its_pictures_with_alt_text_on_both_platforms_and_no_card_on_bluesky():
    post, mastodon, bluesky = payloads(photo(html=imgs(3) + "<p>Three panels.</p>"), thumbnail=thumb(1200, 630))
    assert [image.alt for image in post.images] == ["Picture 1", "Picture 2", "Picture 3"]
    assert mastodon["media"] == [{"url": f"https://cdn.example.com/{n}.jpg", "description": f"Picture {n}"}
                                 for n in (1, 2, 3)]
    embed = bluesky["embed"]
    assert embed["$type"] == "app.bsky.embed.images" and "external" not in embed
    assert embed["images"] == [{"alt": f"Picture {n}", "image": {"source_url": f"https://cdn.example.com/{n}.jpg"}}
                               for n in (1, 2, 3)]
    # one embed: the link is in the text, as a link facet
    assert [facet["features"][0] for facet in bluesky["facets"]] == [
        {"$type": "app.bsky.richtext.facet#link", "uri": LINK}]
    assert LINK in mastodon["status"]


def test_platform_limits_on_count_and_alt_text():
    long_alt = "é" * 2500
    post, mastodon, bluesky = payloads(photo(html=imgs(6, alt=long_alt)),
                                       MastodonLimits(max_media_attachments=2, description_limit=1500))
    assert len(post.images) == 4  # the most either platform takes
    assert len(mastodon["media"]) == 2 and all(len(item["description"]) == 1500 for item in mastodon["media"])
    assert len(bluesky["embed"]["images"]) == 4
    assert all(len(image["alt"]) == 2000 for image in bluesky["embed"]["images"])
    _, no_media, _ = payloads(photo(), MastodonLimits(max_media_attachments=0))
    assert no_media["media"] == []


def test_an_article_keeps_its_link_card_and_its_pictures_stay_in_the_article():
    post, mastodon, bluesky = payloads(Entry(key="a", link=LINK, title="A real article", content_html=imgs(2) + ARTICLE),
                                       thumbnail=thumb(1200, 630))
    assert post.images == () and mastodon["media"] == []
    assert bluesky["embed"]["$type"] == "app.bsky.embed.external" and bluesky["embed"]["external"]["thumb"]


@pytest.mark.parametrize("html, why", [
    ("<p>Short, but an excerpt of an article elsewhere […]</p>" + imgs(1), "an excerpt"),
    ('<img src="https://cdn.example.com/clip.gifv"/>', "a video page, not a picture"),
    ('<img src="https://cdn.example.com/logo.png" width="64" height="64"/>', "smaller than a card image"),
    ('<img src="https://stats.wordpress.com/b.gif?v=1"/>', "a tracking pixel"),
])
def test_no_photo_post_without_a_usable_picture(html, why):
    post, mastodon, bluesky = payloads(photo("A title", html))
    assert post.images == () and mastodon["media"] == [], why
    assert bluesky["embed"]["$type"] == "app.bsky.embed.external", why


def test_a_media_thumbnail_is_a_preview_not_a_photo():
    """YouTube and articles carry media:thumbnail: their post keeps the link card."""
    entry = Entry(key="v", link=LINK, title="A video", summary_html="<p>Watch it.</p>",
                  images=[ImageCandidate(url="https://i.ytimg.com/vi/x/hqdefault.jpg", source="media:thumbnail")])
    post, _, bluesky = payloads(entry)
    assert post.images == () and bluesky["embed"]["$type"] == "app.bsky.embed.external"


def test_json_feed_image_attachments_with_their_titles_as_alt_text():
    document = {
        "version": "https://jsonfeed.org/version/1.1", "title": "Photos", "items": [{
            "id": "1", "url": LINK, "content_text": "Snow on the harbour.",
            "attachments": [{"url": "https://cdn.example.com/harbour.jpg", "mime_type": "image/jpeg",
                             "title": "The harbour under snow, boats frozen in"},
                            {"url": "https://cdn.example.com/talk.mp3", "mime_type": "audio/mpeg", "title": "Audio"}],
        }]}
    [entry] = parse_feed(json.dumps(document).encode(), "https://photos.example.com/feed.json").entries
    post, mastodon, _ = payloads(entry)
    assert mastodon["media"] == [{"url": "https://cdn.example.com/harbour.jpg",
                                  "description": "The harbour under snow, boats frozen in"}]


def media_rss(items: str) -> bytes:
    return ('<?xml version="1.0" encoding="utf-8"?><rss version="2.0" xmlns:media="http://search.yahoo.com/mrss/">'
            f"<channel><title>Photos</title><link>https://photos.example.com/</link>{items}</channel></rss>").encode()


FOX = "A red fox asleep in the snow, its tail over its nose"


@pytest.mark.parametrize("item", [
    f'<media:content url="https://cdn.example.com/fox.jpg" type="image/jpeg"/><media:description>{FOX}</media:description>',
    f'<media:content url="https://cdn.example.com/fox.jpg" medium="image"><media:description>{FOX}</media:description>'
    "</media:content>",
    f'<media:group><media:content url="https://cdn.example.com/fox.jpg" type="image/jpeg"/>'
    f'<media:description type="html">&lt;b&gt;A red fox&lt;/b&gt; asleep in the snow, its tail over its nose'
    "</media:description></media:group>",
    # media:title is the second choice (after a title: feedparser makes a first media:title the entry's title)
    f'<title>Photo</title><media:group><media:content url="https://cdn.example.com/fox.jpg" type="image/jpeg"/>'
    f"<media:title>{FOX}</media:title></media:group>",
])
def test_a_media_rss_picture_takes_its_media_description_as_alt_text_on_both_platforms(item):
    document = media_rss(f"<item><link>{LINK}</link><guid>{LINK}</guid>{item}</item>")
    [entry] = parse_feed(document, "https://photos.example.com/feed.xml").entries
    post, mastodon, bluesky = payloads(entry)
    assert mastodon["media"] == [{"url": "https://cdn.example.com/fox.jpg", "description": FOX}]
    assert bluesky["embed"]["images"] == [{"alt": FOX, "image": {"source_url": "https://cdn.example.com/fox.jpg"}}]


def test_one_media_description_for_several_pictures_is_no_pictures_alt_text():
    pictures = "".join(f'<media:content url="https://cdn.example.com/{n}.jpg" type="image/jpeg"/>' for n in (1, 2))
    document = media_rss(
        f"<item><link>{LINK}</link>{pictures}<media:description>Two views of the bay</media:description></item>"
        f'<item><link>{LINK}/2</link><media:group>{pictures}<media:description>Two views</media:description>'
        "</media:group></item>"
        f'<item><link>{LINK}/3</link><media:group>{pictures}</media:group><media:group>'
        '<media:content url="https://cdn.example.com/3.jpg" type="image/jpeg"/><media:description>The third'
        "</media:description></media:group></item>")
    entries = parse_feed(document, "https://photos.example.com/feed.xml").entries
    assert [[image.alt for image in entry.images] for entry in entries] == [["", ""], ["", ""], ["", "", "The third"]]
    post, mastodon, bluesky = payloads(entries[0])
    assert [item["description"] for item in mastodon["media"]] == ["", ""]
    assert [image["alt"] for image in bluesky["embed"]["images"]] == ["", ""]
    assert post.summary == "Two views of the bay"  # the description is still the entry's text


# --------------------------------------------------------------------------- Tumblr reblogs


REBLOG = ('<p><a class="tumblr_blog" href="https://storybookprincess.tumblr.com/post/1">storybookprincess</a>:</p>'
          "<blockquote><p>so a very long time ago, my dad worked with an arson investigator</p></blockquote>")


def test_a_tumblr_reblog_handle_does_not_lead_the_post():
    post, mastodon, bluesky = payloads(Entry(key="r", link=LINK, title="", summary_html=REBLOG))
    assert post.summary == "so a very long time ago, my dad worked with an arson investigator"
    assert "storybookprincess" not in mastodon["status"] and "storybookprincess" not in bluesky["text"]


def test_a_lead_in_ending_in_a_colon_is_kept_outside_tumblr_reblogs():
    post = render_post(Entry(key="n", link=LINK, title="", summary_html="<p>update:</p><p>It shipped.</p>"), settings())
    assert post.summary.startswith("update:")


# --------------------------------------------------------------------------- the setting


def test_images_card_and_none():
    post, mastodon, bluesky = payloads(photo(), thumbnail=thumb(1200, 630), images="card")
    assert post.images == () and mastodon["media"] == []
    assert bluesky["embed"]["external"]["thumb"]["source_url"] == "https://cdn.example.com/card.png"
    post, mastodon, bluesky = payloads(photo(), images="none")
    assert post.image is None and post.images == () and mastodon["media"] == []
    assert "thumb" not in bluesky["embed"]["external"]


def test_images_attach_also_attaches_an_articles_image_on_mastodon_and_keeps_the_bluesky_card():
    article = Entry(key="a", link=LINK, title="A real article", content_html=imgs(1) + ARTICLE,
                    images=[ImageCandidate(url="https://cdn.example.com/1.jpg", alt="Picture 1", source="content:img")])
    post, mastodon, bluesky = payloads(article, thumbnail=thumb(1200, 630), images="attach")
    assert mastodon["media"] == [{"url": "https://cdn.example.com/1.jpg", "description": "Picture 1"}]
    assert bluesky["embed"]["$type"] == "app.bsky.embed.external" and bluesky["embed"]["external"]["thumb"]


@pytest.mark.parametrize("size, used", [((1200, 630), True), ((200, 100), True), ((199, 400), False),
                                        ((600, 99), False)])
def test_a_card_thumbnail_smaller_than_200x100_is_not_used(size, used):
    _, _, bluesky = payloads(Entry(key="a", link=LINK, title="An article", summary_html="<p>Text.</p>"),
                             thumbnail=thumb(*size))
    assert ("thumb" in bluesky["embed"]["external"]) is used


def config_with(feed: dict, account: dict | None = None, override: dict | None = None):
    feed = {"name": "f", "url": "https://photos.example.com/feed", "accounts": ["m"], **feed}
    if override is not None:
        feed["overrides"] = {"m": override}
    return parse_config({"accounts": {"m": {"type": "mastodon", "instance": "https://m.example",
                                            **(account or {})}}, "feeds": [feed]})


@pytest.mark.parametrize("feed, account, override, mode", [
    ({}, None, None, "auto"),
    ({"attach_image": True}, None, None, "attach"),  # the older name still works
    ({"attach_image": False}, None, None, "card"),
    ({"images": "none"}, {"images": "attach"}, None, "none"),  # the feed wins over the account
    ({"images": "card"}, None, {"images": "auto"}, "auto"),  # the per-account override wins over the feed
])
def test_the_images_setting_and_its_older_name(feed, account, override, mode):
    config = config_with(feed, account, override)
    assert config.post_settings(config.feeds[0], "m").images == mode


def test_both_names_at_once_or_an_unknown_mode_is_a_config_error():
    with pytest.raises(ConfigError, match="attach_image"):
        config_with({"images": "auto", "attach_image": True})
    with pytest.raises(ConfigError, match="auto"):
        config_with({"images": "photos"})


# --------------------------------------------------------------------------- the corpus


TUMBLR = [name for name in corpus_files() if name.startswith("tumblr-")]
HANDLE_LINE = re.compile(r"^[a-z0-9][a-z0-9-]*:\s*$", re.MULTILINE)


@requires_corpus
@pytest.mark.parametrize("name", TUMBLR or ["(no corpus)"])
def test_tumblr_posts_have_no_placeholder_title_no_leading_reblog_handle_and_photos_attached(name):
    feed = load_feed(name)
    chosen = settings()
    for index, entry in enumerate(feed.entries):
        where = f"{name} entry #{index}"
        post = render_post(entry, chosen, feed_title=feed.title)
        mastodon = mastodon_payload(post, chosen)
        bluesky = bluesky_payload(post, chosen, created_at=CREATED)["record"]
        for text in (mastodon["status"], bluesky["text"]):
            first_line = text.split("\n", 1)[0].strip()
            assert first_line.casefold() not in PLACEHOLDER_TITLES, f"placeholder title in {where}: {text[:60]!r}"
            assert not HANDLE_LINE.match(first_line), f"reblog handle leads {where}: {text[:60]!r}"
        pictures = [src for src in re.findall(r'<img[^>]+src="([^"]+)"', entry.summary_html + entry.content_html)
                    if not src.endswith(".gifv")]
        if pictures and entry.title.strip().casefold() in PLACEHOLDER_TITLES:  # a Tumblr photo post
            assert mastodon["media"] and mastodon["media"][0]["url"] == pictures[0], f"no picture attached in {where}"
            assert bluesky["embed"]["$type"] == "app.bsky.embed.images", f"no picture attached in {where}"
