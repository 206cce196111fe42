"""The editor's audit (bench/editor_audit.py): each detector catches the defect planted in a hand-made post and
passes a clean one, the payload readers see what a reader sees, and --compare picks before/after examples."""

from __future__ import annotations

import json

import pytest

from bench.editor_audit import (
    ROWS,
    FeedFacts,
    Source,
    audit_corpus,
    compare,
    detect,
    non_english,
    pick_examples,
    read_bluesky,
    read_mastodon,
)
from tests.render_corpus import requires_corpus

LINK = "https://blog.example/2024/05/a-post"
TITLE = "Tracking the busy worker count"
TEASER = "I was investigating performance issues of a Django application, and found the cause."


def mastodon(status: str, language: str | None = "en", media: int = 0):
    return read_mastodon({"status": status, "language": language, "media": [{"url": "u", "description": ""}] * media})


def bluesky(text: str, *, links=(), tags=(), langs=("en",), card_title=TITLE, card_description=TEASER, images=0):
    """A Bluesky record as the renderer makes it: facets at UTF-8 byte offsets of the shown text."""
    facets = []
    for shown, uri in links:
        start = text.encode().index(shown.encode())
        facets.append({"index": {"byteStart": start, "byteEnd": start + len(shown.encode())},
                       "features": [{"$type": "app.bsky.richtext.facet#link", "uri": uri}]})  # fmt: skip
    for tag in tags:
        start = text.encode().index(f"#{tag}".encode())
        facets.append({"index": {"byteStart": start, "byteEnd": start + len(tag.encode()) + 1},
                       "features": [{"$type": "app.bsky.richtext.facet#tag", "tag": tag}]})  # fmt: skip
    embed = {"$type": "app.bsky.embed.external",
             "external": {"uri": LINK, "title": card_title, "description": card_description}}  # fmt: skip
    if images:
        embed = {"$type": "app.bsky.embed.images", "images": [{"alt": "a", "image": {}}] * images}
    return read_bluesky({"record": {"text": text, "facets": facets, "langs": list(langs), "embed": embed}})


def source(**changes) -> Source:
    values = dict(feed="blog.rss", key=LINK, title=TITLE, text=TEASER + " More follows.", link=LINK)
    values.update(changes)
    return Source(**values)


CLEAN_MASTODON = mastodon(f"{TITLE}\n\n{TEASER}\n\n{LINK}\n\n#Python #Django")
CLEAN_BLUESKY = bluesky("Found the cause of a slow Django application.\n\n#Python", tags=["Python"])

# row id -> (post, source, feed facts) showing exactly that defect
PLANTED = {
    "bsky_repeats_card": (bluesky(f"{TITLE}\n\n{TEASER}"), source(), FeedFacts()),
    "bsky_repeats_card_title": (bluesky(f"{TITLE}"), source(), FeedFacts()),
    "bsky_card_url_in_text": (bluesky("A teaser of its own.\n\nblog.example/2024/05/a-p…",
                                      links=[("blog.example/2024/05/a-p…", LINK)]), source(), FeedFacts()),
    "no_language": (mastodon(f"{TITLE}\n\n{TEASER}\n\n{LINK}", language=None), source(), FeedFacts()),
    "feed_wide_tag": (mastodon(f"{TEASER}\n\n{LINK}\n\n#GiantBomb"), source(), FeedFacts(frozenset({"giantbomb"}))),
    "generic_tag": (mastodon(f"{TEASER}\n\n{LINK}\n\n#News"), source(), FeedFacts()),
    "too_many_tags": (mastodon(f"{TEASER}\n\n{LINK}\n\n#A1 #B2 #C3 #D4 #E5"), source(), FeedFacts()),
    "long_tag": (mastodon(f"{TEASER}\n\n{LINK}\n\n#adwords_MutateJobService"), source(), FeedFacts()),
    "bullet_teaser": (mastodon(f"311: Pasta\n\n• Follow-up: • Apple • Pasta\n\n{LINK}"), source(title="311: Pasta"), FeedFacts()),
    "cut_after_function_word": (mastodon(f"{TITLE}\n\nThen let's get into the…\n\n{LINK}"),
                                source(text="Then let's get into the news... is Valve going"), FeedFacts()),
    "link_target_dropped": (mastodon(f"{TITLE}\n\n{TEASER}\n\n{LINK}"),
                            source(external_url="https://news.example/story"), FeedFacts()),
    "dangling_pointer": (mastodon(f"{TITLE}\n\nMore on his account: here and here.\n\n{LINK}"),
                         source(pointers=[("his account:", "here", "https://x.example/1")]), FeedFacts()),
    "mastodon_card_wrong_url": (mastodon(f"{TITLE}\n\nSponsored by https://sponsor.example/atp today.\n\n{LINK}"),
                                source(), FeedFacts()),
    "entry_text_dropped": (mastodon(f"{TITLE}\n\n{LINK}"),
                           source(text="I was investigating performance issues of a Django application:"), FeedFacts()),
    "placeholder_title": (mastodon(f"Photo\n\n{LINK}"), source(title="Photo", text=""), FeedFacts()),
    "reblog_handle_leading": (mastodon(f"storybookprincess: so true\n\n{LINK}"),
                              source(title="", reblog_handles=["storybookprincess"]), FeedFacts()),
    "photo_without_images": (mastodon(f"A drawing\n\n{LINK}"), source(title="A drawing", text="", image_count=1), FeedFacts()),
    "stray_glyph_or_heading": (mastodon(f"{TITLE}\n\n{TEASER}\n\n★\n\n{LINK}"), source(), FeedFacts()),
    "private_permalink": (mastodon(f"{TITLE}\n\n{TEASER}\n\nhttp://localhost:4000/2020/01/a-post"),
                          source(link="http://localhost:4000/2020/01/a-post"), FeedFacts()),
    "angle_brackets_lost": (mastodon(f"Die Rückkehr von und\n\n{LINK}"),
                            source(title="Die Rückkehr von und", literals=[("von", "<i>", "und")]), FeedFacts()),
}  # fmt: skip


@pytest.mark.parametrize("row", [row for row in ROWS if row.variant == "default"], ids=lambda row: row.id)
def test_each_detector_catches_its_planted_defect(row):
    post, where, facts = PLANTED[row.id]
    assert row.id in detect(post, where, facts), f"{row.id} missed its planted defect: {post.text!r}"


@pytest.mark.parametrize("post", [CLEAN_MASTODON, CLEAN_BLUESKY], ids=["mastodon", "bluesky"])
def test_a_clean_post_shows_no_defect(post):
    facts = FeedFacts(frozenset({"blog"}))  # a feed-wide category the post does not carry
    assert detect(post, source(), facts) == {}
    assert detect(post, source(), facts, variant="lang-en") == {}


@pytest.mark.parametrize("text", [
    "充电桩企业正在加速出海，海外市场成为新的增长点",
    "Le gouvernement a annoncé des mesures pour les entreprises et les ménages dans la crise.",
    "Die Regierung hat neue Regeln für die Nutzung von Daten und sich auch mit dem Thema beschäftigt.",
])  # fmt: skip
def test_non_english_posts_tagged_en_are_caught(text):
    post = mastodon(f"{text}\n\n{LINK}", language="en")
    assert "non_english_tagged_en" in detect(post, source(), FeedFacts(), variant="lang-en")
    untagged = mastodon(f"{text}\n\n{LINK}", language="fr")
    assert "non_english_tagged_en" not in detect(untagged, source(), FeedFacts(), variant="lang-en")


def test_english_with_a_foreign_word_is_english():
    assert non_english("The Tour de France is the race of the summer, and this year it was won by a Dane.") is None


def test_stray_heading_and_dangling_colon():
    heading = mastodon(f"{TITLE}\n\nSponsors\n\n{TEASER}\n\n{LINK}")
    assert "heading" in detect(heading, source(headings=["Sponsors"]), FeedFacts())["stray_glyph_or_heading"]
    colon = mastodon(f"{TITLE}\n\nWe can call this function like so:\n\n{LINK}")
    assert "ends on" in detect(colon, source(), FeedFacts())["stray_glyph_or_heading"]


def test_a_link_whose_pointer_keeps_its_url_is_not_dangling():
    post = mastodon(f"{TITLE}\n\nMore on his account: here https://x.example/1\n\n{LINK}")
    assert "dangling_pointer" not in detect(post, source(pointers=[("his account:", "here", "https://x.example/1")]), FeedFacts())


def test_the_readers_see_links_tags_and_images_as_a_reader_does():
    post = bluesky("Café ☕ #Python\n\nexample.com/a…", links=[("example.com/a…", LINK)], tags=["Python"], images=2)
    assert post.links == [LINK] and post.tags == ["Python"] and post.images == 2 and post.card is None
    start, end = post.link_spans[0]
    assert post.text[start:end] == "example.com/a…"  # character offsets, recovered from UTF-8 byte offsets
    status = mastodon(f"Read https://a.example/x. Then {LINK}\n\n#One #Two", media=1)
    assert status.links == ["https://a.example/x", LINK] and status.tags == ["One", "Two"] and status.images == 1


def test_compare_prints_counts_and_examples_from_different_rows_and_feeds(tmp_path, capsys):
    def post(feed, flags, text):
        return {"feed": feed, "entry": feed + "-1", "index": 0, "platform": "mastodon", "variant": "default",
                "text": text, "card": None, "flags": flags}  # fmt: skip

    before = [post("a.rss", {"generic_tag": "#News", "no_language": "no language"}, "old a"),
              post("b.rss", {"generic_tag": "#Blog"}, "old b"), post("c.rss", {"no_language": "x"}, "old c")]
    after = [post("a.rss", {}, "new a"), post("b.rss", {}, "new b"), post("c.rss", {"no_language": "x"}, "old c")]
    chosen = pick_examples(before, after, 2)
    assert {row for row, _, _ in chosen} == {"generic_tag", "no_language"}
    assert len({old["feed"] for _, old, _ in chosen}) == 2
    rows = [{"id": "generic_tag", "label": "generic hashtag", "posts": 2, "total": 3}]
    (tmp_path / "b.json").write_text(json.dumps({"rows": rows, "posts": before}))
    (tmp_path / "a.json").write_text(json.dumps({"rows": [dict(rows[0], posts=0)], "posts": after}))
    compare(tmp_path / "b.json", tmp_path / "a.json", 10)
    out = capsys.readouterr().out
    assert "| generic hashtag | 2 of 3 | 0 of 3 |" in out and "old a" in out and "new a" in out


@requires_corpus
def test_the_audit_renders_every_entry_of_a_corpus_feed_for_both_platforms():
    from tests.render_corpus import load_feed

    name = "jsonfeed-3960-v1.1-de.json"
    audit = audit_corpus([name])
    entries = len(load_feed(name).entries)
    default = [p for p in audit.posts if p["variant"] == "default"]
    assert sorted(p["platform"] for p in default) == ["bluesky"] * entries + ["mastodon"] * entries
    assert all(p["text"] for p in default)
    assert audit.rows["no_language"][1] == 2 * entries  # every post was checked for a language


def test_words_linked_to_the_card_are_not_a_url_in_the_text():
    post = bluesky("Read the whole story", links=[("the whole story", LINK)])
    assert "bsky_card_url_in_text" not in detect(post, source(), FeedFacts())


def test_a_shortened_url_without_a_dot_is_still_a_url():
    post = bluesky("A teaser.\n\nlocalhost:4000/ml/2025/08/24/opera…", links=[("localhost:4000/ml/2025/08/24/opera…", LINK)])
    assert "bsky_card_url_in_text" in detect(post, source(), FeedFacts())


def test_a_star_that_marks_the_permalink_is_not_stray():
    post = mastodon(f"{TITLE}\n\n{TEASER}\n\nhttps://news.example/story\n★ {LINK}")
    assert "stray_glyph_or_heading" not in detect(post, source(), FeedFacts())


def test_bluesky_text_that_is_the_card_title_repeats_the_title_only():
    flags = detect(bluesky(f"{TITLE}\n\n#Python", tags=["Python"]), source(), FeedFacts())
    assert "bsky_repeats_card_title" in flags and "bsky_repeats_card" not in flags


def test_a_linked_star_on_bluesky_is_not_stray():
    post = bluesky(f"{TITLE} ★", links=[("★", LINK)], card_title="Another card title")
    assert detect(post, source(), FeedFacts()) == {}


def test_a_title_only_bluesky_post_is_judged_with_its_card_for_language():
    post = bluesky("Programmierung", langs=["en"], card_title="Programmierung: Zurück zur Werkbank",
                   card_description="Die Regierung hat neue Regeln für die Nutzung von Daten und sich auch mit dem Thema.")
    assert "non_english_tagged_en" in detect(post, source(), FeedFacts(), variant="lang-en")
