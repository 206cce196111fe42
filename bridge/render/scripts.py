"""Which languages a text's writing system allows: a check that needs no statistical model.

A text whose letters are mostly Han, kana, Hangul, Cyrillic or Arabic cannot be English, whatever a feed declares
or a detector guesses; bridge/render/detect.py uses this as a guard on every language it picks. Latin and other
scripts allow any language (None).
"""

from __future__ import annotations

from collections import Counter

import regex

_SCRIPT = regex.compile(
    r"(?P<Kana>[\p{Hiragana}\p{Katakana}])|(?P<Han>\p{Han})|(?P<Hangul>\p{Hangul})"
    r"|(?P<Cyrillic>\p{Cyrillic})|(?P<Arabic>\p{Arabic})|(?P<Other>\p{L})"
)
# Any letter of the scripts above: a text with none (most posts) has no dominant script to count.
_COUNTED_SCRIPT = regex.compile(r"[\p{Hiragana}\p{Katakana}\p{Han}\p{Hangul}\p{Cyrillic}\p{Arabic}]")
DOMINANT_SHARE = 0.5  # more than half the letters: a few Latin product names do not change a Chinese post

# Primary language subtags written in each script (ISO 639-1 where one exists; the rest as detectors name them).
SCRIPT_LANGUAGES = {
    "Kana": frozenset({"ja"}),
    "Han": frozenset({"zh", "ja", "ko", "yue", "wuu", "gan", "lzh"}),
    "Hangul": frozenset({"ko"}),
    "Cyrillic": frozenset(
        {"ru", "uk", "be", "bg", "sr", "mk", "kk", "ky", "mn", "tg", "tt", "ba", "cv", "ce", "os", "sah", "udm",
         "kv", "myv", "mhr", "mrj", "xal", "ab", "av", "bxr", "tyv", "cu", "uz", "sh"}
    ),
    "Arabic": frozenset({"ar", "fa", "ur", "ps", "ckb", "ku", "sd", "ug", "pnb", "arz", "azb", "ks", "bal", "glk", "mzn"}),
}  # fmt: skip
# The language a script implies when nothing compatible was declared or detected (Han without kana: Chinese).
SCRIPT_DEFAULT = {"Kana": "ja", "Han": "zh", "Hangul": "ko", "Cyrillic": "ru", "Arabic": "ar"}


def dominant_script(text: str) -> str | None:
    """'Han', 'Kana', 'Hangul', 'Cyrillic' or 'Arabic' when that script writes most of the text's letters."""
    if _COUNTED_SCRIPT.search(text) is None:
        return None
    counts = Counter(match.lastgroup for match in _SCRIPT.finditer(text))
    letters = sum(counts.values())
    if not letters:
        return None
    # Japanese mixes kana with Han: any real share of kana makes a Han/kana text Japanese.
    if counts["Kana"] >= 2 and (counts["Kana"] + counts["Han"]) / letters > DOMINANT_SHARE:
        return "Kana"
    script, count = max(((s, counts[s]) for s in SCRIPT_LANGUAGES if s != "Kana"), key=lambda pair: pair[1])
    return script if count / letters > DOMINANT_SHARE else None


def allows(script: str | None, tag: str | None) -> bool:
    """Whether a language tag can be right for a text in `script` (any tag can, for Latin and other scripts)."""
    if not tag:
        return False
    return script is None or tag.split("-")[0].lower() in SCRIPT_LANGUAGES[script]
