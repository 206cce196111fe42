"""Hashtags from an entry's categories, valid on both platforms.

A hashtag is letters (accents and any script kept), combining marks, digits and underscores, not all digits,
at most 64 grapheme clusters (Bluesky's tag limit; Mastodon's own rule is looser). A multi-word category
becomes CamelCase ("machine learning" -> MachineLearning, "urban-gardening" -> UrbanGardening); a
hierarchical one keeps its last part ("Technology/Open Source" -> OpenSource); "life, writing" is two
categories. Categories that would make poor tags are left out: more than four words, a URL, one character,
and the blog engines' placeholder "Uncategorized".
"""

from __future__ import annotations

import re

import regex

from bridge.config import HashtagSettings
from bridge.render import graphemes
from bridge.render.limits import BLUESKY_TAG_MAX_BYTES, BLUESKY_TAG_MAX_GRAPHEMES

MAX_HASHTAG_WORDS = 4  # our choice: "ThisMonthIHaveLearned" reads worse than no tag
# Blog engines' default category, in the languages of the corpus; never a useful tag.
PLACEHOLDER_CATEGORIES = frozenset(
    {"uncategorized", "uncategorised", "unkategorisiert", "allgemein", "non classé", "sin categoría",
     "sem categoria", "senza categoria", "без рубрики", "未分类", "未分類"}
)  # fmt: skip

_TAG = regex.compile(r"^[\p{L}\p{M}\p{Nd}_]+$")
_WORD_SPLIT = regex.compile(r"[^\p{L}\p{M}\p{Nd}_]+")
_APOSTROPHES = re.compile(r"['’ʼ]")
_PARENTHESES = re.compile(r"\s*[(\[][^)\]]*[)\]]")
# A hashtag written in text: "#" at the start or after whitespace, ending before anything that is not part
# of a tag. Used for Bluesky tag facets (Mastodon finds them itself).
TEXT_HASHTAG = regex.compile(r"(?:(?<=\s)|^)#([\p{L}\p{M}\p{Nd}_]+)(?![\p{L}\p{M}\p{Nd}_])")


def is_valid_hashtag(tag: str) -> bool:
    """A tag (without '#') both platforms accept and link."""
    return (
        bool(tag)
        and bool(_TAG.match(tag))
        and not tag.replace("_", "").isdigit()
        and any(ch.isalpha() for ch in tag)
        and graphemes.count(tag) <= BLUESKY_TAG_MAX_GRAPHEMES
        and len(tag.encode("utf-8")) <= BLUESKY_TAG_MAX_BYTES
    )


def to_hashtag(category: str) -> str | None:
    """One category -> one tag (without '#'), or None when it makes no good tag."""
    text = category.strip().lstrip("#＃").strip()
    if not text or "://" in text:
        return None
    if "/" in text:
        text = text.rstrip("/").rsplit("/", 1)[-1]
    text = _PARENTHESES.sub("", text)
    text = _APOSTROPHES.sub("", text)
    words = [word for word in _WORD_SPLIT.split(text) if word]
    if not words or len(words) > MAX_HASHTAG_WORDS:
        return None
    if len(words) == 1:
        tag = words[0]
    else:
        tag = "".join(word if _mixed_case(word) else word[:1].upper() + word[1:] for word in words)
    if graphemes.count(tag) < 2 or not is_valid_hashtag(tag):
        return None
    return tag


def category_hashtags(categories: list[str] | tuple[str, ...], settings: HashtagSettings) -> list[str]:
    """The entry's hashtags (without '#'), in category order, after rename and ignore, de-duplicated
    case-insensitively, at most `settings.max`."""
    if not settings.enabled or settings.max <= 0:
        return []
    rename = {key.casefold().strip(): value for key, value in settings.rename.items()}
    ignore = {value.casefold().strip().lstrip("#") for value in settings.ignore}
    seen: set[str] = set()
    tags: list[str] = []
    for raw in _split_categories(categories):
        folded = raw.casefold()
        if folded in ignore or folded in PLACEHOLDER_CATEGORIES:
            continue
        renamed = rename.get(folded) or rename.get(folded.lstrip("#"))
        if renamed is not None:
            renamed = renamed.strip().lstrip("#")
            tag = renamed if is_valid_hashtag(renamed) else to_hashtag(renamed)
        else:
            tag = to_hashtag(raw)
        if not tag or tag.casefold() in ignore or tag.casefold() in seen:
            continue
        seen.add(tag.casefold())
        tags.append(tag)
        if len(tags) >= settings.max:
            break
    return tags


def _split_categories(categories) -> list[str]:
    out = []
    for category in categories:
        if not isinstance(category, str):
            continue
        for part in category.split(","):  # "life, writing": some templates join categories with commas
            part = " ".join(part.split())
            if part:
                out.append(part)
    return out


def _mixed_case(word: str) -> bool:
    """iOS, macOS, GitHub: the writer's own capitals, kept as they are."""
    return any(ch.isupper() for ch in word[1:])
