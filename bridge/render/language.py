"""Language tags: BCP-47 for Bluesky `langs`, ISO 639-1 for Mastodon `language`.

Feeds write languages many ways: "en-US", "en_us", "EN", "zh-Hans", "de-DE-1996", "fr-fr", "eng".
"""

from __future__ import annotations

from bridge.language import normalise_language

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


def resolve_language(*candidates: str | None) -> str | None:
    """The first candidate that is a usable language tag, normalized."""
    for candidate in candidates:
        tag = normalise_language(candidate)
        if tag:
            return tag
    return None
