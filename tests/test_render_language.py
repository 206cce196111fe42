"""A post's language: precedence (force_language > the entry's own > detected when confident > the feed's > the
`language` setting > best guess), the script guard (a Chinese post is never "en"), and the corpus-wide check
(check_post_language, run by tests/test_render_corpus.py on the posts it renders anyway).

The corpus check is detector-independent: letters are classified by their Unicode character names, not by the
`regex` script classes bridge/render/scripts.py uses.
"""

from __future__ import annotations

import re
import tomllib
import unicodedata

import pytest

from bridge.config import parse_config
from bridge.errors import ConfigError
from bridge.model import Entry
from bridge.platforms.bluesky.payload import bluesky_payload
from bridge.platforms.mastodon.payload import mastodon_payload
from bridge.render import render_post
from bridge.render.detect import guesses
from bridge.render.language import DETECTION_CONFIDENCE, post_language

from tests.render_corpus import settings

GERMAN = "Der Hund schläft heute im Garten, weil es draußen so warm ist."
FRENCH = "Le chat dort dans le jardin parce qu'il fait chaud dehors."
CHINESE = "充电桩 2020：大火一年，它依然没赚到钱"
UNCLEAR = "PdfPig Version 0.0.5"  # a product name and a number: no language to read


def test_detection_is_confident_on_a_sentence_and_not_on_a_product_name():
    assert guesses(GERMAN)[0].language == "de" and guesses(GERMAN)[0].score >= DETECTION_CONFIDENCE
    assert guesses(UNCLEAR)[0].score < DETECTION_CONFIDENCE
    assert guesses("12345 — !!!") == []


def test_forced_language_wins_over_everything_it_can():
    assert post_language(GERMAN, forced="fr", declared="de", feed_declared="de", default="de") == "fr"


def test_entry_declared_language_wins_over_detection():
    assert post_language(GERMAN, declared="fr", feed_declared="en", default="en") == "fr"


def test_confident_detection_wins_over_the_feed_and_the_default():
    assert post_language(GERMAN, feed_declared="en-US", default="en") == "de"
    assert post_language(FRENCH, default="en") == "fr"


def test_detection_that_agrees_keeps_the_declared_detail():
    assert post_language(GERMAN, feed_declared="de-AT") == "de-AT"
    assert post_language(GERMAN, default="de-CH") == "de-CH"


def test_unclear_text_takes_the_feed_then_the_default_then_a_guess():
    assert post_language(UNCLEAR, feed_declared="en-GB", default="en-US") == "en-GB"
    assert post_language(UNCLEAR, default="en") == "en"
    assert post_language(UNCLEAR) == guesses(UNCLEAR)[0].language  # every post with words gets a language
    assert post_language("12345 — !!!") is None


@pytest.mark.parametrize("source", ["forced", "declared", "feed_declared", "default"])
def test_a_chinese_post_is_never_english(source):
    assert post_language(CHINESE, **{source: "en"}) == "zh"


def test_the_script_guard_picks_the_scripts_language_from_the_ranking():
    assert post_language("Привет, как дела у тебя сегодня?", declared="en") == "ru"
    assert post_language("今日はとても良い天気ですね", default="zh") == "ja"  # kana: Japanese, not Chinese


def _entry(text: str, *, language: str | None = None, feed_language: str | None = None) -> Entry:
    return Entry(key="k", link="https://example.com/p", title="", content_html=f"<p>{text}</p>", language=language,
                 feed_language=feed_language)


def test_render_tells_the_entrys_own_language_from_its_feeds():
    # the feed says en-US for every entry; the text is German: detection overrules the feed
    assert render_post(_entry(GERMAN, language="en-US", feed_language="en-US"), settings()).language == "de"
    # the entry declares French itself: that wins over what the text reads as
    assert render_post(_entry(GERMAN, language="fr", feed_language="en-US"), settings()).language == "fr"
    # an entry stored before feed_language existed keeps its language as its own
    assert render_post(_entry(GERMAN, language="fr"), settings(language="en")).language == "fr"


def test_both_platforms_follow_the_posts_language():
    chosen = settings(language="en", force_language="pt-BR")
    post = render_post(_entry(GERMAN, language="de", feed_language="de"), chosen)
    assert post.language == "pt-BR"
    assert mastodon_payload(post, chosen)["language"] == "pt"
    assert bluesky_payload(post, chosen, created_at="2024-01-01T00:00:00.000Z")["record"]["langs"] == ["pt-BR"]


CONFIG = """
[bridge]
language = "en"
[accounts.m]
type = "mastodon"
instance = "https://example.social"
force_language = "de"
[accounts.b]
type = "bluesky"
handle = "a.bsky.social"
[[feeds]]
name = "blog"
url = "https://example.com/feed"
accounts = ["m", "b"]
{feed}
[feeds.overrides.b]
force_language = "fr"
"""


def load_config_text(text: str):
    return parse_config(tomllib.loads(text))


def test_force_language_precedence_in_the_config():
    config = load_config_text(CONFIG.format(feed=""))
    feed = config.feed("blog")
    assert config.post_settings(feed, "m").force_language == "de"  # the account's
    assert config.post_settings(feed, "b").force_language == "fr"  # the feed's override for this account
    assert config.post_settings(feed, "m").language == "en"  # `language` stays a fallback from [bridge]
    config = load_config_text(CONFIG.format(feed='force_language = "uk"'))
    assert config.post_settings(config.feed("blog"), "m").force_language == "uk"  # the feed beats the account


def test_a_bad_forced_language_is_a_clear_error():
    with pytest.raises(ConfigError) as error:
        load_config_text(CONFIG.format(feed='force_language = "German"'))
    assert "force_language" in str(error.value) and "BCP 47" in str(error.value)


# Detector-independent truth: the share of letters whose Unicode name puts them in one of these scripts.
SCRIPT_NAMES = {"CJK UNIFIED": "cjk", "HIRAGANA": "cjk", "KATAKANA": "cjk", "HANGUL": "cjk", "CYRILLIC": "cyrillic",
                "ARABIC": "arabic"}  # fmt: skip
SCRIPT_TAGS = {
    "cjk": {"zh", "ja", "ko", "yue", "wuu"},
    "cyrillic": {"ru", "uk", "be", "bg", "sr", "mk", "kk", "ky", "mn", "tg", "tt", "ba", "cv"},
    "arabic": {"ar", "fa", "ur", "ps", "ckb", "ku", "sd", "ug"},
}


def script_counts(text: str) -> tuple[dict[str, int], int]:
    letters = [char for char in text if char.isalpha()]
    counts: dict[str, int] = {}
    for char in letters:
        name = unicodedata.name(char, "")
        for prefix, script in SCRIPT_NAMES.items():
            if name.startswith(prefix):
                counts[script] = counts.get(script, 0) + 1
    return counts, len(letters)


def check_post_language(name: str, post, where: str) -> None:
    """For the corpus test (tests/test_render_corpus.py), rendered with `language = "en"` as config.example.toml
    sets it: a post with words has a language; no Chinese, Cyrillic or Arabic post is tagged en; a post tagged with
    such a language has text in its script; the curated non-English feeds (lang-XX-*) are tagged XX throughout."""
    text = f"{post.title}\n{post.summary}"
    where = f"{where}: {text[:60]!r} tagged {post.language!r}"
    if not any(char.isalpha() for char in text):
        return
    assert post.language, where
    primary = post.language.split("-")[0]
    counts, letters = script_counts(text)
    for script, tags in SCRIPT_TAGS.items():
        if counts.get(script, 0) * 2 > letters:  # mostly written in this script
            assert primary in tags, where
        if primary in tags:  # a language of this script: some of the text is written in it (code aside)
            assert counts.get(script, 0) > 0, where
    curated = re.match(r"lang-([a-z]{2})-", name)
    if curated:
        assert primary == curated.group(1), where


def test_the_parser_tells_an_entrys_own_language_from_its_feeds():
    from bridge.feeds import parse_feed

    atom = b"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xml:lang="en-US"><title>t</title><id>urn:f</id><updated>2024-01-01T00:00:00Z</updated>
<entry><id>urn:1</id><title>Eins</title><link href="https://example.com/1"/><updated>2024-01-01T00:00:00Z</updated>
<content type="html">&lt;p&gt;Der Hund schl\xc3\xa4ft heute im Garten, weil es drau\xc3\x9fen so warm ist.&lt;/p&gt;</content></entry>
<entry xml:lang="fr"><id>urn:2</id><title>Deux</title><link href="https://example.com/2"/><updated>2024-01-01T00:00:00Z</updated>
<content type="html">&lt;p&gt;Der Hund schl\xc3\xa4ft heute im Garten, weil es drau\xc3\x9fen so warm ist.&lt;/p&gt;</content></entry>
</feed>"""
    first, second = parse_feed(atom, "https://example.com/feed").entries
    assert (first.language, first.feed_language) == ("en-US", "en-US")
    assert (second.language, second.feed_language) == ("fr", "en-US")
    # the feed's en-US is overruled by the German text; the entry's own fr is not
    assert render_post(first, settings()).language == "de"
    assert render_post(second, settings()).language == "fr"


def test_the_detector_needs_no_network():
    """Its model ships in the wheel: loading and detecting with every socket refused still works."""
    import subprocess
    import sys

    code = (
        "import socket\n"
        "def refuse(*args, **kwargs): raise OSError('network used')\n"
        "socket.socket.connect = refuse; socket.create_connection = refuse; socket.getaddrinfo = refuse\n"
        "from bridge.render.detect import guesses\n"
        f"print(guesses({FRENCH!r})[0].language)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                            env={"PATH": "/usr/bin:/bin", "HOME": "/nonexistent"})  # fmt: skip
    assert result.returncode == 0 and result.stdout.strip() == "fr", result.stderr


def test_a_fallback_the_detector_rules_out_gives_way_to_its_guess():
    headline = "Promotoria abre inquérito para apurar suspeita de improbidade de Skaf no Sebrae-SP"  # corpus: uol
    assert guesses(headline)[0].score < DETECTION_CONFIDENCE  # pt, but es is close: not confident
    assert post_language(headline, default="en") == "pt"
    assert post_language(headline, feed_declared="es") == "es"  # plausible: the feed's word stands


def test_a_title_alone_does_not_overrule_the_feeds_declared_language():
    # ATP's "307: Casey Apple Pencil" (an English feed, en-US) was detected as Spanish once its teaser was empty.
    from bridge.render.language import post_language

    assert post_language("307: Casey Apple Pencil", feed_declared="en-US", default="en") == "en-US"
    # A longer text still overrules a feed that declares the wrong language.
    french = "Les Jeux olympiques d'hiver commencent demain et la France espère remporter plusieurs médailles."
    assert post_language(french, feed_declared="en-US") == "fr"
    # And the script guard stands: a short title in Han script is never the feed's "en" (a title this short may
    # read as Chinese or Japanese).
    assert post_language("充电桩 2020：大火一年", feed_declared="en") in {"zh", "ja"}
