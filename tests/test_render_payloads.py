"""The documented payload formats (the `--json` format users script against), and Entry -> Post choices."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from bridge.config import CategoryRule, HashtagSettings
from bridge.language import normalise_language
from bridge.linkpreview import LinkPreview, Thumbnail
from bridge.model import Entry, ImageCandidate
from bridge.platforms.bluesky.payload import bluesky_payload, rfc3339
from bridge.platforms.mastodon.limits import MastodonLimits
from bridge.platforms.mastodon.payload import mastodon_payload
from bridge.render import Post, RenderError, render_post
from bridge.render.language import mastodon_language

from tests.render_corpus import settings

CREATED = "2024-05-01T12:00:00.000Z"


def entry(**fields) -> Entry:
    values = dict(
        key="tag:example.com,2024:1",
        link="https://example.com/2024/05/hello-world",
        title="Hello world",
        summary_html="<p>A short excerpt.</p>",
        content_html="<p>The full text of the post. It goes on.</p>",
        published=datetime(2024, 5, 1, 10, 0, tzinfo=timezone.utc),
        categories=["Python", "machine learning"],
        language="en-US",
        authors=["Ann Author"],
        images=[ImageCandidate(url="https://example.com/cover.jpg", alt="A cover", source="media:thumbnail")],
    )
    values.update(fields)
    return Entry(**values)


def test_mastodon_payload_shape():
    payload = mastodon_payload(render_post(entry(), settings()), settings())
    assert set(payload) == {"status", "spoiler_text", "visibility", "language", "media"}
    assert payload == {
        "status": "Hello world\n\nA short excerpt.\n\nhttps://example.com/2024/05/hello-world\n\n#Python #MachineLearning",
        "spoiler_text": "",
        "visibility": "public",
        "language": "en",
        "media": [],
    }
    json.dumps(payload)


def test_bluesky_payload_shape():
    thumb = Thumbnail(data=b"\xff" * 1234, mime_type="image/jpeg", width=1200, height=630, source_url="https://example.com/cover.jpg")
    payload = bluesky_payload(render_post(entry(), settings()), settings(), thumbnail=thumb, created_at=CREATED)
    assert list(payload) == ["record"]
    record = payload["record"]
    assert set(record) == {"$type", "text", "facets", "langs", "embed", "createdAt"}
    assert record["$type"] == "app.bsky.feed.post"
    assert record["text"] == "Hello world\n\nA short excerpt.\n\nexample.com/2024/05/hello-world\n\n#Python #MachineLearning"
    assert record["langs"] == ["en-US"]
    assert record["createdAt"] == CREATED
    encoded = record["text"].encode()
    link_start = encoded.find(b"example.com/2024/05/hello-world")
    assert record["facets"] == [
        {
            "index": {"byteStart": link_start, "byteEnd": link_start + len(b"example.com/2024/05/hello-world")},
            "features": [{"$type": "app.bsky.richtext.facet#link", "uri": "https://example.com/2024/05/hello-world"}],
        },
        {
            "index": {"byteStart": encoded.find(b"#Python"), "byteEnd": encoded.find(b"#Python") + 7},
            "features": [{"$type": "app.bsky.richtext.facet#tag", "tag": "Python"}],
        },
        {
            "index": {"byteStart": encoded.find(b"#Machine"), "byteEnd": len(encoded)},
            "features": [{"$type": "app.bsky.richtext.facet#tag", "tag": "MachineLearning"}],
        },
    ]
    assert record["embed"] == {
        "$type": "app.bsky.embed.external",
        "external": {
            "uri": "https://example.com/2024/05/hello-world",
            "title": "Hello world",
            "description": "",  # the template put the summary in the text: the card does not say it again
            "thumb": {"source_url": "https://example.com/cover.jpg", "size": 1234, "width": 1200, "height": 630, "mime_type": "image/jpeg"},
        },
    }
    json.dumps(payload)


def test_bluesky_without_thumbnail_has_no_thumb_key():
    record = bluesky_payload(render_post(entry(), settings()), settings(), created_at=CREATED)["record"]
    assert "thumb" not in record["embed"]["external"]


def test_created_at_from_datetime_is_rfc3339_z():
    moment = datetime(2024, 5, 1, 14, 30, 5, 123456, tzinfo=timezone(timedelta(hours=2)))
    assert rfc3339(moment) == "2024-05-01T12:30:05.123Z"
    record = bluesky_payload(render_post(entry(), settings()), settings(), created_at=moment)["record"]
    assert record["createdAt"] == "2024-05-01T12:30:05.123Z"


def test_preview_supplies_card_and_image():
    link_preview = LinkPreview(
        url="https://example.com/2024/05/hello-world",
        title="Hello world | Example",
        description="The page's own description.",
        image_url="https://example.com/og.png",
        image_alt="The OG image",
    )
    post = render_post(entry(), settings(), preview=link_preview)
    assert post.card.title == "Hello world | Example"
    assert post.card.description == "The page's own description."
    assert post.image.url == "https://example.com/og.png" and post.image.alt == "The OG image"
    assert post.summary == "A short excerpt."  # the post text still comes from the feed


def test_an_articles_image_is_attached_on_mastodon_only_with_images_attach():
    assert mastodon_payload(render_post(entry(), settings()), settings())["media"] == []
    attach = settings(images="attach")
    media = mastodon_payload(render_post(entry(), attach), attach)["media"]
    assert media == [{"url": "https://example.com/cover.jpg", "description": "A cover"}]
    long_alt = render_post(entry(images=[ImageCandidate(url="https://example.com/c.jpg", alt="x" * 3000)]), attach)
    media = mastodon_payload(long_alt, attach, MastodonLimits(description_limit=1500))["media"]
    assert len(media[0]["description"]) == 1500


def test_content_warning_and_visibility_from_settings_and_rules():
    rules = (
        CategoryRule(categories=["politics"], content_warning="Politics"),
        CategoryRule(categories=["Personal"], visibility="unlisted"),
        CategoryRule(categories=["drafts"], visibility="private", content_warning="Draft"),
    )
    post = render_post(entry(categories=["POLITICS", "personal"]), settings(rules=rules, content_warning="General"))
    assert (post.content_warning, post.visibility) == ("Politics", "unlisted")
    post = render_post(entry(categories=["other"]), settings(rules=rules, content_warning="General", visibility="unlisted"))
    assert (post.content_warning, post.visibility) == ("General", "unlisted")
    # a rule never makes a post more visible than the settings
    post = render_post(entry(categories=["personal"]), settings(rules=rules, visibility="private"))
    assert post.visibility == "private"
    payload = mastodon_payload(render_post(entry(categories=["drafts"]), settings(rules=rules)), settings())
    assert (payload["spoiler_text"], payload["visibility"]) == ("Draft", "private")


@pytest.mark.parametrize(
    "entry_language, settings_language, bcp47, iso639",
    [
        ("en-US", None, "en-US", "en"),
        ("en_us", "de", "en-US", "en"),
        # the entry declares none and its text reads as English: detection beats the `language` fallback
        (None, "de-DE", "en", "en"),
        ("zh-hans-cn", None, "zh-Hans-CN", "zh"),
        ("ja", None, "ja", "ja"),
        ("eng", None, "eng", "en"),
        ("not a language", "fr", "en", "en"),
        (None, None, "en", "en"),
    ],
)
def test_language_precedence_and_formats(entry_language, settings_language, bcp47, iso639):
    post = render_post(entry(language=entry_language), settings(language=settings_language))
    assert post.language == bcp47
    assert mastodon_payload(post, settings())["language"] == iso639
    record = bluesky_payload(post, settings(), created_at=CREATED)["record"]
    assert record["langs"] == ([bcp47] if bcp47 else [])


def test_language_helpers():
    assert normalise_language("EN-gb") == "en-GB"
    assert normalise_language("es-419") == "es-419"
    assert normalise_language("") is None
    assert mastodon_language("pt-BR") == "pt"
    assert mastodon_language("xyz") is None


def test_untitled_entry_is_text_first():
    e = entry(title="", summary_html="<p>Just a thought, posted as is. #microblog</p>", content_html="")
    post = render_post(e, settings())
    assert post.title == "" and post.template == settings().template_untitled
    assert mastodon_payload(post, settings())["status"].startswith("Just a thought, posted as is. #microblog\n\nhttps://")


def test_title_made_of_the_first_words_is_dropped():
    e = entry(title="Boston is a great city to…", summary_html="<p>Boston is a great city to visit in the spring.</p>", content_html="")
    post = render_post(e, settings())
    assert post.title == "" and post.summary == "Boston is a great city to visit in the spring."


def test_title_repeated_as_heading_is_not_repeated():
    e = entry(summary_html="", content_html="<p>Hello world</p><p>The body.</p>")
    assert render_post(e, settings()).summary == "The body."


def test_auto_excerpt_gives_way_to_the_content_opening():
    e = entry(
        summary_html="<p>The full text of the post. It goes [&#8230;]</p>",
        content_html="<p>The full text of the post. It goes on for a while.</p><p>Second paragraph.</p>",
    )
    assert render_post(e, settings()).summary.startswith("The full text of the post. It goes on for a while.")


def test_entry_without_link_falls_back_to_an_http_key_or_fails():
    assert render_post(entry(link=None, key="https://example.com/p/9"), settings()).link == "https://example.com/p/9"
    with pytest.raises(RenderError):
        render_post(entry(link=None, key="sha256:abc"), settings())


def test_post_round_trips_through_json():
    post = render_post(entry(), settings(hashtags=HashtagSettings(max=1)))
    again = Post.from_dict(json.loads(json.dumps(post.to_dict())))
    assert again == post


def test_mastodon_limits_from_instance_answers():
    answer = {"configuration": {"statuses": {"max_characters": 5000, "characters_reserved_per_url": 23, "max_media_attachments": 8},
                                "media_attachments": {"description_limit": 10000}}}  # fmt: skip
    assert MastodonLimits.from_instance(answer) == MastodonLimits(5000, 23, 8, 10000)
    assert MastodonLimits.from_instance({}) == MastodonLimits()
    assert MastodonLimits.from_dict({"max_characters": 1000, "version": "4.3"}) == MastodonLimits(max_characters=1000)


def test_mastodon_limits_keep_how_a_server_counts_and_the_strictest_counts_longest():
    takahe = MastodonLimits.from_dict({"max_characters": 300, "counting": "codepoints", "urls_in_full": True})
    assert (takahe.counting, takahe.urls_in_full) == ("codepoints", True)
    assert MastodonLimits.from_dict({"counting": "furlongs"}).counting == "utf16"  # unknown: the strictest
    assert MastodonLimits.from_dict({"urls_in_full": "yes"}).urls_in_full is False  # not a bool: Mastodon's
    strict = MastodonLimits(max_characters=300).strictest()
    assert (strict.max_characters, strict.counting, strict.urls_in_full) == (290, "utf16", True)


@pytest.mark.parametrize("text, graphemes_, codepoints, utf16", [
    ("👨‍👩‍👧 family", 8, 12, 15),  # one ZWJ cluster of five code points (three of them outside the BMP)
    ("🇩🇪🏳️‍🌈", 2, 6, 10),
    ("橋の話", 3, 3, 3),
    ("see https://example.com/" + "a" * 60, 27, 27, 27),  # a URL the servers that count it in full count 84
])
def test_mastodon_length_counts_the_way_each_server_does(text, graphemes_, codepoints, utf16):
    from bridge.platforms.mastodon.counting import mastodon_length

    def length(counting, in_full=False):
        return mastodon_length(text, characters_per_url=23, counting=counting, urls_in_full=in_full)

    assert (length("graphemes"), length("codepoints"), length("utf16")) == (graphemes_, codepoints, utf16)
    if "https://" in text:
        assert length("codepoints", in_full=True) == len(text)
    assert mastodon_length("@alice@example.social hi", characters_per_url=23) == len("@alice hi")
    assert mastodon_length("@alice@example.social hi", characters_per_url=23, urls_in_full=True) == 24
    # a short URL counted in full never counts less than the reserve
    assert mastodon_length("https://a.io", characters_per_url=23, counting="codepoints", urls_in_full=True) == 23


def test_render_is_pure_and_deterministic():
    e = entry()
    first = (mastodon_payload(render_post(e, settings()), settings()),
             bluesky_payload(render_post(e, settings()), settings(), created_at=CREATED))  # fmt: skip
    second = (mastodon_payload(render_post(e, settings()), settings()),
              bluesky_payload(render_post(e, settings()), settings(), created_at=CREATED))  # fmt: skip
    assert first == second
