"""Fitting posts into each platform's limit: unit tests and hypothesis properties.

Lengths, graphemes and facet offsets are checked here by independent computations (regex \\X directly, our
own knowledge of which URLs were put in, bytes.find), not by calling the renderer's counters.
"""

from __future__ import annotations

import regex
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st

from bridge.config import HashtagSettings
from bridge.model import Entry
from bridge.platforms.bluesky.limits import BlueskyLimits
from bridge.platforms.bluesky.links import display_url
from bridge.platforms.bluesky.payload import bluesky_payload
from bridge.platforms.mastodon.counting import mastodon_length
from bridge.platforms.mastodon.limits import MastodonLimits
from bridge.platforms.mastodon.payload import mastodon_payload
from bridge.platforms.mastodon.payload import MastodonText
from bridge.render import RenderError, render_post
from bridge.render.fit import Parts, fit, shorten
from bridge.render.post import Post

from tests.bluesky_helpers import check_facets
from tests.mastodon_fake.length import status_length
from tests.render_corpus import settings as post_settings

CREATED = "2024-01-01T00:00:00.000Z"
GRAPHEME = regex.compile(r"\X")


def clusters(text: str) -> list[str]:
    return GRAPHEME.findall(text)


def make_post(**fields) -> Post:
    values = dict(key="k", link="https://example.com/2024/05/a-post", template=post_settings().template)
    values.update(fields)
    return Post(**values)


def mastodon_count(text: str, urls: list[str], spoiler: str = "", per_url: int = 23) -> int:
    """Mastodon's rule for texts whose URLs and mentions we know (each standing alone between spaces)."""
    words = regex.split(r"(\s+)", text)
    counted = []
    for word in words:
        base = word.rstrip("…")  # an ellipsis right after a cut is not part of a link or mention
        suffix = word[len(base) :]
        if base in urls:
            counted.append("\0" * per_url + suffix)
        elif base in MENTIONS:
            counted.append("@" + base.split("@")[1] + suffix)  # "@ann@social.example" counts as "@ann"
        else:
            counted.append(word)
    return len(clusters(spoiler + "".join(counted)))


# --- unit tests --------------------------------------------------------------------------------------------


LONG_SUMMARY = (
    "The first sentence is here. The second sentence follows it closely. "
    "A third sentence makes the paragraph long enough to need cutting somewhere sensible."
)


def test_everything_fits_untouched():
    post = make_post(title="Title", summary="Short summary.", hashtags=("One", "Two"))
    status = mastodon_payload(post, post_settings())["status"]
    assert status == "Title\n\nShort summary.\n\nhttps://example.com/2024/05/a-post\n\n#One #Two"


def test_summary_cut_at_sentence_without_ellipsis():
    post = make_post(title="Title", summary=LONG_SUMMARY)
    status = mastodon_payload(post, post_settings(), MastodonLimits(max_characters=130))["status"]
    assert status == (
        "Title\n\nThe first sentence is here. The second sentence follows it closely.\n\n"
        "https://example.com/2024/05/a-post"
    )


def test_summary_cut_at_word_with_ellipsis_when_no_sentence_fits():
    post = make_post(title="T", summary="word " * 60 + "end.")
    status = mastodon_payload(post, post_settings(), MastodonLimits(max_characters=100))["status"]
    body = status.split("\n\n")[1]
    assert body.endswith("word…")
    assert mastodon_count(status, [post.link]) <= 100


def test_hashtags_dropped_from_the_end_before_the_title_is_cut():
    post = make_post(title="A title of some length here", summary="", hashtags=("First", "Second", "Third"))
    full = mastodon_count(mastodon_payload(post, post_settings())["status"], [post.link])
    status = mastodon_payload(post, post_settings(), MastodonLimits(max_characters=full - 3))["status"]
    assert status.endswith("#First #Second")
    assert status.startswith("A title of some length here\n")


def test_title_cut_last_and_link_kept():
    post = make_post(title="word " * 40, summary="", hashtags=("Tag",))
    status = mastodon_payload(post, post_settings(), MastodonLimits(max_characters=60))["status"]
    title, link = status.split("\n\n")
    assert title.endswith("…") and link == post.link


def test_bare_link_when_nothing_else_fits_and_error_when_even_that_cannot():
    post = make_post(title="Title", summary="Summary.", hashtags=("Tag",))
    assert mastodon_payload(post, post_settings(), MastodonLimits(max_characters=23))["status"] == post.link
    with pytest.raises(RenderError):
        mastodon_payload(post, post_settings(), MastodonLimits(max_characters=22))


def test_mastodon_counts_urls_as_23_and_mentions_without_domain():
    assert mastodon_length("https://example.com/" + "x" * 100, characters_per_url=23) == 23
    assert mastodon_length("hi @ann@social.example", characters_per_url=23) == len("hi @ann")
    assert mastodon_length("mail me@example.com", characters_per_url=23) == len("mail me@example.com")
    assert mastodon_length("👨‍👩‍👧‍👦🇫🇷", characters_per_url=23) == 2
    assert mastodon_length("ab", characters_per_url=23, spoiler_text="CW") == 4
    # hosts Mastodon does not take for links count in full (never less than 23)
    assert mastodon_length("http://localhost:4000/" + "p" * 30, characters_per_url=23) == len("http://localhost:4000/") + 30
    assert mastodon_length("https://blog.example/" + "p" * 30, characters_per_url=23) == len("https://blog.example/") + 30
    assert mastodon_length("http://a.co", characters_per_url=23) == 23


def test_a_mention_followed_by_an_at_sign_an_accent_or_a_scheme_is_no_mention_and_counts_as_written():
    # Mastodon's Extractor drops a match that twitter-text's end_mention_match follows (app/lib/extractor.rb)
    assert mastodon_length("@a@b@c", characters_per_url=23) == 6
    assert mastodon_length("@ann@social.example://x", characters_per_url=23) == len("@ann@social.example://x")
    assert mastodon_length("@ann@social.example ok", characters_per_url=23) == len("@ann ok")
    chained = "@00000000000" * 40  # found by test_fuzz_render: bridge counted it as 20 mentions, 240 characters
    assert mastodon_length(chained, characters_per_url=23) == 480 == status_length(chained)
    post = make_post(title="", summary=chained, link="https://blog.example/posts/1/")
    payload = mastodon_payload(post, post_settings(), MastodonLimits(max_characters=500))
    assert status_length(payload["status"]) <= 500 and payload["status"].endswith("https://blog.example/posts/1/")


def test_spoiler_text_counts():
    post = make_post(title="Title", summary=LONG_SUMMARY, content_warning="spoilers " * 5)
    payload = mastodon_payload(post, post_settings(), MastodonLimits(max_characters=150))
    assert payload["spoiler_text"] == "spoilers " * 5
    assert mastodon_count(payload["status"], [post.link], payload["spoiler_text"]) <= 150


def test_bluesky_long_link_shortened_with_full_uri_in_facet():
    link = "https://example.com/2024/05/a-very-long-slug-that-goes-on-and-on?utm_source=x"
    post = make_post(link=link, title="Title")
    record = bluesky_payload(post, post_settings(), created_at=CREATED)["record"]
    assert "example.com/2024/05/a-very-long…" in record["text"]
    links = [f for f in record["facets"] if f["features"][0]["$type"].endswith("#link")]
    assert [f["features"][0]["uri"] for f in links] == [link]
    check_facets(record)


def test_bluesky_byte_limit_binds_before_graphemes():
    # 3-byte characters: 300 graphemes would be 900 bytes; a 400-byte limit must bind
    post = make_post(title="", summary="中" * 280, template=post_settings().template_untitled)
    record = bluesky_payload(post, post_settings(), created_at=CREATED, limits=BlueskyLimits(max_bytes=400))["record"]
    assert len(record["text"].encode()) <= 400
    assert "中…" in record["text"]  # CJK is cut between characters, with an ellipsis
    check_facets(record)


def test_cjk_cut_between_characters_and_rtl_untouched():
    cut = shorten("これは日本語の文章です" * 10, lambda s: len(s) <= 20)
    assert cut is not None and cut.endswith("…") and len(cut) <= 20
    urdu = "امریکہ اور پاکستان کے تعلقات میں جب بھی زیادہ کشیدگی آتی ہے"
    cut = shorten(urdu, lambda s: len(s) <= 30)
    assert cut.endswith("…") and urdu.startswith(cut[:-1])


def test_never_cut_inside_a_url_or_hashtag():
    text = "See https://example.com/" + "a" * 40 + " and #LongHashtagHere for more words after it"
    for limit in range(5, len(text)):
        cut = shorten(text, lambda s, limit=limit: len(s) <= limit)
        if cut is None:
            continue
        assert ("https://" not in cut) or ("a" * 40 in cut)
        assert "#Long" not in cut or "#LongHashtagHere" in cut


def test_bluesky_text_hashtags_and_links_get_facets():
    post = make_post(title="", summary="Read #Python news at https://news.example/today and more", template=post_settings().template_untitled)
    record = bluesky_payload(post, post_settings(), created_at=CREATED)["record"]
    types = [f["features"][0]["$type"].rsplit("#", 1)[1] for f in record["facets"]]
    assert types == ["tag", "link", "link"]
    check_facets(record)


def test_content_warning_is_first_line_on_bluesky():
    post = make_post(title="Title", content_warning="Spoilers")
    record = bluesky_payload(post, post_settings(), created_at=CREATED)["record"]
    assert record["text"].startswith("CW: Spoilers\n\nTitle")
    check_facets(record)


def test_custom_template_blank_lines_collapse():
    template = "{title}\n\n{summary}\n\nby {author}\n\n{url}\n{hashtags}"
    post = make_post(title="T", summary="", author="", template=template)
    assert mastodon_payload(post, post_settings())["status"] == "T\n\nhttps://example.com/2024/05/a-post"
    post = replace(post, author="Ann", hashtags=("X",))
    assert mastodon_payload(post, post_settings())["status"] == "T\n\nby Ann\n\nhttps://example.com/2024/05/a-post\n#X"


def test_template_with_fixed_text_counts_it():
    post = make_post(title="T", summary=LONG_SUMMARY, template="📝 {title}: {summary} {url}")
    status = mastodon_payload(post, post_settings(), MastodonLimits(max_characters=80))["status"]
    assert status.startswith("📝 T: ") and status.endswith(" " + post.link)
    assert mastodon_count(status, [post.link]) <= 80


def test_fit_parts_directly_with_mastodon_platform():
    rich = fit("{title}\n\n{url}", Parts(url="https://example.com/x", title="Hello"), MastodonText(MastodonLimits()))
    assert rich.text == "Hello\n\nhttps://example.com/x"


# --- properties ------------------------------------------------------------------------------------------

EMOJI = ["👨‍👩‍👧‍👦", "🇫🇷", "🇯🇵", "👍🏽", "1️⃣", "🏳️‍🌈", "❤️", "🧑🏿‍💻"]
COMBINING = ["e\u0301", "n\u0303", "a\u0308\u0301", "o\u0302"]
CJK = ["中文字符测试", "日本語の文章です", "한국어문장"]
RTL = ["سلام", "עברית", "پاکستان", "مرحبا"]
INDIC = ["नमस्ते", "क्षत्रिय"]
LATIN = ["word", "another", "sentence.", "end!", "why?", "naïve", "Straße", "x"]
URLS = ["https://example.com/", "https://news.example.org/2024/01/02/some-long-article-slug?ref=feed", "http://a.co/b"]
TAGS = ["#Tag", "#日本", "#Économie", "#a_b"]
MENTIONS = ["@ann@social.example", "@bob"]

token = st.one_of(
    st.sampled_from(LATIN),
    st.sampled_from(EMOJI),
    st.sampled_from(COMBINING),
    st.sampled_from(CJK),
    st.sampled_from(RTL),
    st.sampled_from(INDIC),
    st.sampled_from(URLS),
    st.sampled_from(TAGS),
    st.sampled_from(MENTIONS),
    st.text(
        alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc", "Zl", "Zp"), exclude_characters="@#:/"),
        min_size=1,
        max_size=6,
    ),
)
separator = st.sampled_from([" ", " ", " ", "", "\n", "\n\n", ". "])
STANDALONE = set(URLS) | set(TAGS) | set(MENTIONS)


@st.composite
def texts(draw, max_tokens=60):
    parts = draw(st.lists(st.tuples(token, separator), max_size=max_tokens))
    out = []
    for t, s in parts:
        if t in STANDALONE:  # links, tags and mentions stand between spaces, so the oracle knows them
            out.append(" " + t + " ")
        else:
            out.append(t + s)
    return "".join(out).strip()


links = st.sampled_from(
    [
        "https://example.com/p/1",
        "https://blog.example.org/2024/05/01/a-rather-long-permalink-slug-for-testing?utm_source=rss#frag",
        "https://xn--mnchen-3ya.de/ü/path",
        "http://example.net/" + "segment/" * 12,
    ]
)
tags = st.lists(st.sampled_from(["Python", "MachineLearning", "日本語", "Économie", "a_b", "Emoji"]), max_size=5, unique=True)


def _inputs_clusters(post: Post, extra: list[str]) -> set[str]:
    pieces = [post.title, post.summary, post.link, post.content_warning or "", "…", "CW: ", " ".join("#" + t for t in post.hashtags)]
    pieces += extra
    found: set[str] = set()
    for piece in pieces:
        found.update(clusters(piece))
    return found


@hsettings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(title=texts(12), summary=texts(), link=links, hashtags=tags, limit=st.integers(min_value=0, max_value=700),
       cw=st.one_of(st.none(), texts(4)), untitled=st.booleans())  # fmt: skip
def test_mastodon_property(title, summary, link, hashtags, limit, cw, untitled):
    template = post_settings().template_untitled if untitled else post_settings().template
    post = make_post(title="" if untitled else title, summary=summary, link=link, hashtags=tuple(hashtags),
                     content_warning=cw or None, template=template)  # fmt: skip
    limits = MastodonLimits(max_characters=limit)
    spoiler = cw or ""
    minimum = mastodon_count(link, [link], spoiler)
    if limit < minimum:
        with pytest.raises(RenderError):
            mastodon_payload(post, post_settings(), limits)
        return
    status = mastodon_payload(post, post_settings(), limits)["status"]
    assert mastodon_count(status, URLS + [link], spoiler) <= limit
    assert regex.search(r"(?:^|\s)" + regex.escape(link) + r"(?:\s|$)", status), "the permalink is intact"
    assert set(clusters(status)) <= _inputs_clusters(post, ["\n"]), "a grapheme cluster was split"


@hsettings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(title=texts(12), summary=texts(), link=links, hashtags=tags, graphemes_limit=st.integers(min_value=0, max_value=300),
       bytes_limit=st.integers(min_value=0, max_value=3000), untitled=st.booleans())  # fmt: skip
def test_bluesky_property(title, summary, link, hashtags, graphemes_limit, bytes_limit, untitled):
    template = post_settings().template_untitled if untitled else post_settings().template
    post = make_post(title="" if untitled else title, summary=summary, link=link, hashtags=tuple(hashtags), template=template)
    limits = BlueskyLimits(max_graphemes=graphemes_limit, max_bytes=bytes_limit)
    shown = display_url(link)
    if len(clusters(shown)) > graphemes_limit or len(shown.encode()) > bytes_limit:
        with pytest.raises(RenderError):
            bluesky_payload(post, post_settings(), created_at=CREATED, limits=limits)
        return
    record = bluesky_payload(post, post_settings(), created_at=CREATED, limits=limits)["record"]
    text = record["text"]
    assert len(clusters(text)) <= graphemes_limit and len(text.encode("utf-8")) <= bytes_limit
    link_uris = [f["features"][0]["uri"] for f in record["facets"] if f["features"][0]["$type"].endswith("#link")]
    assert link in link_uris, "the permalink has its link facet"
    check_facets(record)
    displays = [display_url(u) for u in URLS + [link]]
    assert set(clusters(text)) <= _inputs_clusters(post, ["\n"] + displays), "a grapheme cluster was split"


@hsettings(max_examples=100, deadline=None)
@given(text=texts(), limit=st.integers(min_value=1, max_value=200))
def test_shorten_property(text, limit):
    cut = shorten(text, lambda s: len(clusters(s)) <= limit)
    if cut is None:
        return
    assert len(clusters(cut)) <= limit
    assert set(clusters(cut)) <= set(clusters(text)) | {"…"}
    body = cut[:-1] if cut.endswith("…") and not text.endswith("…") else cut
    assert text.startswith(body.rstrip())


@hsettings(max_examples=60, deadline=None)
@given(title=texts(8), summary=texts(40), categories=st.lists(st.sampled_from(["Python", "machine learning", "2018", "Café"]), max_size=4))
def test_render_post_from_entry_property(title, summary, categories):
    from html import escape

    entry = Entry(key="k", link="https://example.com/x", title=title, summary_html=f"<p>{escape(summary)}</p>", categories=categories)
    post = render_post(entry, post_settings(hashtags=HashtagSettings(max=3)))
    assert post.link == "https://example.com/x"
    mastodon_payload(post, post_settings())
    record = bluesky_payload(post, post_settings(), created_at=CREATED)["record"]
    assert len(clusters(record["text"])) <= 300
    check_facets(record)
