"""The renderer's shortcuts give the posts the long way gives (docs/benchmarks.md, *Rendering*, third pass).

bench/render_check.py compares every corpus payload before and after a speed change; these pin the shortcuts'
edges on text made for them: a teaser cut from a long opening, an entry going to accounts with other settings.
"""

from __future__ import annotations

import random

from bridge.config import HashtagSettings
from bridge.model import Entry
from bridge.render import graphemes, render_post
from bridge.render.fit import shorten

from tests.render_corpus import settings

_WORDS = ["the", "and", "of", "a", "river", "morning", "Garden", "über", "“quoted”", "end.", "Really?", "—", "–",
          "(aside)", "word,", "list:", "https://example.com/a/b", "#tag", "@someone", "e.g.", "l’été", "—“", "…"]


def _text(rng: random.Random) -> str:
    words = [rng.choice(_WORDS) for _ in range(rng.randint(1, 400))]
    text = " ".join(words)
    if rng.random() < 0.2:
        text = rng.choice(["— ", "“ ", "( ", ", "]) + text  # a first cut that leaves nothing
    if rng.random() < 0.1:
        text = text.replace(" ", "\n", rng.randint(1, 5))
    return text


def test_a_teaser_cut_to_a_limit_is_the_cut_made_from_every_word_end():
    rng = random.Random(22)
    for _ in range(1500):
        text = _text(rng)
        limit = rng.choice([1, 5, 40, 100, 280, 500])
        preference = rng.choice([0.3, 0.6])
        fits = lambda s, limit=limit: graphemes.count(s) <= limit  # noqa: E731
        for sentences in (True, False):
            whole = shorten(text, fits, sentences=sentences, sentence_preference=preference)
            limited = shorten(text, fits, sentences=sentences, sentence_preference=preference, max_graphemes=limit)
            assert limited == whole, (text, limit)


def _entry(**fields) -> Entry:
    values = dict(key="https://blog.example/p/1", link="https://blog.example/p/1", title="A walk by the river",
                  content_html="<p>We walked along the river all morning. It rained.</p>",
                  categories=["river walks", "Rain", "weekend plans", "photography"])
    values.update(fields)
    return Entry(**values)


def test_each_account_gets_the_hashtags_its_own_settings_give():
    entry = _entry()
    three = render_post(entry, settings("mastodon"))
    one = render_post(entry, settings("bluesky", hashtags=HashtagSettings(max=1)))
    renamed = render_post(entry, settings("mastodon", hashtags=HashtagSettings(rename={"rain": "Weather"})))
    ignored = render_post(entry, settings("bluesky", hashtags=HashtagSettings(ignore=["RiverWalks"])))
    off = render_post(entry, settings("mastodon", hashtags=HashtagSettings(enabled=False)))
    assert three.hashtags == ("RiverWalks", "Rain", "WeekendPlans")
    assert one.hashtags == ("RiverWalks",)
    assert renamed.hashtags == ("RiverWalks", "Weather", "WeekendPlans")
    assert ignored.hashtags == ("Rain", "WeekendPlans", "photography")
    assert off.hashtags == ()
    assert render_post(entry, settings("mastodon")).hashtags == three.hashtags  # and again, after the others


def test_an_entry_changed_between_accounts_gets_its_new_hashtags():
    assert render_post(_entry(), settings("mastodon")).hashtags[0] == "RiverWalks"
    assert render_post(_entry(categories=["Hiking"]), settings("bluesky")).hashtags == ("Hiking",)
