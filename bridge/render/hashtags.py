"""Hashtags from an entry's categories, valid on both platforms, and only those that say something.

A hashtag is letters (accents and any script kept), combining marks, digits and underscores, not all digits,
at most 64 grapheme clusters (Bluesky's tag limit; Mastodon's own rule is looser). A multi-word category
becomes CamelCase ("machine learning" -> MachineLearning, "urban-gardening" -> UrbanGardening); a
hierarchical one keeps its last part ("Technology/Open Source" -> OpenSource); "life, writing" is two
categories.

Categories that would make poor tags are left out:
- more than four words, a URL, one character;
- a tag over MAX_TAG_GRAPHEMES ("SoftwareArchitectureDocumentation" is a sentence, not a tag);
- a code identifier ("adwords_MutateJobService", "adwords_api_v201509"): a label the blog engine or a script
  made, not a word a reader follows;
- a generic word (GENERIC_TAGS: "News", "Blog", "Podcast", "Uncategorized" in the corpus' languages);
- a feed-wide category: one nearly every entry of the feed carries (bridge.feeds.feedwide marks them when the
  feed is read), which says what the feed is, not what this post is about.
The writer's settings win: an ignored category is never a tag, and a renamed one always is (renaming a
category to itself keeps a tag these rules would drop).

A text that ends in a block of hashtags (YouTube descriptions: "... forever. #shorts #investing #stockmarket",
a last line of tags) gives those tags to the post's hashtags, under the same rules and the same cap, instead of keeping them all
in the text.
"""

from __future__ import annotations

import re
import unicodedata

import regex

from bridge.config import HashtagSettings
from bridge.render import graphemes
from bridge.render.limits import HASHTAG_MAX_BYTES, HASHTAG_MAX_GRAPHEMES

MAX_HASHTAG_WORDS = 4  # our choice: "ThisMonthIHaveLearned" reads worse than no tag
MAX_TAG_GRAPHEMES = 25  # our choice: longer CamelCase tags ("SoftwareArchitectureChallenge") are unreadable
TAG_BLOCK_MIN_TAGS = 3  # a run of this many hashtags ending a text is a block of tags, not the last sentence's words

# Words that are a post's kind or a blog's furniture, not its subject; compared after CamelCasing, ignoring case
# and spaces. The languages of the corpus; one place to extend.
GENERIC_TAGS = {
    "en": "news, blog, blogs, blog post, blog posts, post, posts, article, articles, podcast, podcasts, episode, "
          "episodes, video, videos, shorts, update, updates, uncategorized, uncategorised, general, misc, "
          "miscellaneous, other, featured, default, links, random, stuff",
    "de": "Nachrichten, Neuigkeiten, Aktuelles, Allgemein, Unkategorisiert, Beitrag, Beiträge, Artikel, Folge, "
          "Folgen, Sonstiges, Verschiedenes",
    "fr": "actualités, actualité, actus, nouvelles, général, divers, non classé, billet, billets, épisode, épisodes, "
          "vidéo, vidéos",
    "es": "noticias, sin categoría, artículo, artículos, entrada, entradas, episodio, episodios, vídeo, vídeos, "
          "actualidad, otros, varios",
    "pt": "notícias, geral, sem categoria, artigo, artigos, episódio, episódios, outros, diversos, postagem, postagens",
    "it": "notizie, generale, senza categoria, articolo, articoli, episodi, varie, altro",
    "nl": "nieuws, algemeen, ongecategoriseerd, aflevering, afleveringen, overig, diversen, berichten",
    "ru/uk": "новости, без рубрики, блог, разное, статьи, видео, подкаст, новини, без категорії, різне",
    "ja": "ニュース, ブログ, 日記, 雑記, 未分類, お知らせ, 記事, 動画, ポッドキャスト, その他",
    "zh": "新闻, 新聞, 资讯, 博客, 未分类, 未分類, 文章, 视频, 視頻, 播客, 其他",
}  # fmt: skip

_TAG = regex.compile(r"^[\p{L}\p{M}\p{Nd}_]+$")
_WORD_SPLIT = regex.compile(r"[^\p{L}\p{M}\p{Nd}_]+")
_APOSTROPHES = re.compile(r"['’ʼ]")
_PARENTHESES = re.compile(r"\s*[(\[][^)\]]*[)\]]")
_VERSION_CODE = re.compile(r"^[A-Za-z]{0,3}\d{4,}$")  # v201509, r12345: a release or build number
# A hashtag written in text: "#" at the start or after whitespace, ending before anything that is not part
# of a tag. Used for Bluesky tag facets (Mastodon finds them itself).
TEXT_HASHTAG = regex.compile(r"(?:(?<=\s)|^)#([\p{L}\p{M}\p{Nd}_]+)(?![\p{L}\p{M}\p{Nd}_])")


def _key(text: str) -> str:
    """What two spellings of one tag share: "Blog Posts", "blog-posts" and "BlogPosts" -> "blogposts"."""
    return "".join(_WORD_SPLIT.split(unicodedata.normalize("NFC", text).casefold())).replace("_", "")


_GENERIC_KEYS = frozenset(_key(word) for words in GENERIC_TAGS.values() for word in words.split(","))


def is_valid_hashtag(tag: str) -> bool:
    """A tag (without '#') both platforms accept and link."""
    return (
        bool(tag)
        and bool(_TAG.match(tag))
        and not tag.replace("_", "").isdigit()
        and any(ch.isalpha() for ch in tag)
        and graphemes.count(tag) <= HASHTAG_MAX_GRAPHEMES
        and len(tag.encode("utf-8")) <= HASHTAG_MAX_BYTES
    )


def to_hashtag(category: str) -> str | None:
    """One category -> one tag (without '#'), or None when it makes no good tag."""
    tag = _camel_case(category)
    if tag is None or _key(tag) in _GENERIC_KEYS or _is_code_identifier(tag):
        return None
    if graphemes.count(tag) > MAX_TAG_GRAPHEMES:
        return None
    return tag


def _is_code_identifier(tag: str) -> bool:
    """A name from code or a release scheme rather than words: snake_case with a CamelCase part
    (adwords_MutateJobService) or a version/build number part (adwords_api_v201509, v201605)."""
    parts = [part for part in tag.split("_") if part]
    if any(_VERSION_CODE.match(part) for part in parts):
        return True
    return len(parts) > 1 and any(_mixed_case(part) for part in parts)


def category_hashtags(
    categories: list[str] | tuple[str, ...],
    settings: HashtagSettings,
    *,
    feed_wide: list[str] | tuple[str, ...] = (),
    text_tags: list[str] | tuple[str, ...] = (),
) -> list[str]:
    """The entry's hashtags (without '#'): its categories, then the tags that ended its text (`text_tags`), in
    that order, after rename and ignore, without the feed-wide ones (`feed_wide`) or poor ones (to_hashtag),
    de-duplicated case-insensitively, at most `settings.max`."""
    if not settings.enabled or settings.max <= 0:
        return []
    rename = {key.casefold().strip(): value for key, value in settings.rename.items()}
    ignore = {value.casefold().strip().lstrip("#") for value in settings.ignore}
    everywhere = {_key(category) for category in _split_categories(feed_wide)}
    seen: set[str] = set()
    tags: list[str] = []
    for raw in _split_categories([*categories, *text_tags]):
        folded = raw.casefold()
        if folded in ignore:
            continue
        renamed = rename.get(folded) or rename.get(folded.lstrip("#"))
        if renamed is not None:  # the writer's choice: kept whatever the rules below would say
            renamed = renamed.strip().lstrip("#")
            tag = renamed if is_valid_hashtag(renamed) else _camel_case(renamed)
        elif _key(raw) in everywhere:
            continue
        else:
            tag = to_hashtag(raw)
            if tag and _key(tag) in everywhere:
                continue
        if not tag or tag.casefold() in ignore or tag.casefold() in seen:
            continue
        seen.add(tag.casefold())
        tags.append(tag)
        if len(tags) >= settings.max:
            break
    return tags


def split_tag_block(text: str) -> tuple[str, list[str]]:
    """(the text without the hashtags that end it, those tags), when they are a block of tags rather than part
    of the writing: on a line of their own, or TAG_BLOCK_MIN_TAGS or more in a row. "Posted as is. #microblog"
    keeps its tag; "... forever. #shorts #investing #stockmarket" gives all three away."""
    block = len(text.rstrip())  # where the block of tags starts
    tags: list[str] = []
    while True:
        token_end = block
        while token_end and text[token_end - 1].isspace():
            token_end -= 1
        token_start = token_end
        while token_start and not text[token_start - 1].isspace():
            token_start -= 1
        token = text[token_start:token_end]
        if not (token.startswith("#") and is_valid_hashtag(token[1:])):
            break
        tags.insert(0, token[1:])
        block = token_start
    if not tags:
        return text, []
    before = text[:block].rstrip()
    if not before or "\n" in text[len(before) : block] or len(tags) >= TAG_BLOCK_MIN_TAGS:
        return before, tags
    return text, []


def _camel_case(category: str) -> str | None:
    """The category as one valid tag, or None: the shape rules only (words, URL, length 2..64)."""
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
