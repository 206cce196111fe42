"""The editor's audit (issue 15): render every corpus entry as `bridge preview --no-fetch` would, for Mastodon
(500 characters, default settings) and Bluesky, and count the posts that show each defect a careful writer
would not sign. Each detector is a small pure function over one rendered post and what the entry's source says;
docs/editor-audit.md says what each one looks for, precisely, and what it does not catch.

    .venv/bin/python -m bench.editor_audit [--json OUT]
    .venv/bin/python -m bench.editor_audit --compare BEFORE.json AFTER.json [--examples 10]

The detectors are independent of the renderer's own helpers (no bridge.render.text, no language detector):
they read the payloads as a reader sees them and the feed's own data (BeautifulSoup for its HTML, the raw JSON
Feed items for fields the parser does not keep). Network: none. The card is built from the entry, as render
does without a fetched page.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import sys
import tempfile
import unicodedata
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import regex
from bs4 import BeautifulSoup

# --- what a detector sees ---------------------------------------------------------------------------------------


@dataclass
class Rendered:
    """One payload as a reader sees it, whatever extra fields the renderer adds."""

    platform: str  # "mastodon" | "bluesky"
    text: str
    links: list[str] = field(default_factory=list)  # every URL the post links: text URLs, link facets
    tags: list[str] = field(default_factory=list)  # the hashtags a reader sees
    languages: list[str] = field(default_factory=list)
    card: dict | None = None  # Bluesky external card: uri, title, description
    images: int = 0  # native images (Mastodon media, Bluesky images embed)
    link_spans: list[tuple[int, int]] = field(default_factory=list)  # character spans of links in `text`


@dataclass
class Source:
    """What the feed says about one entry (independent of the renderer)."""

    feed: str
    key: str
    title: str = ""  # the entry's title as the parser read it
    text: str = ""  # the entry's content (or summary) as plain text
    link: str = ""
    external_url: str = ""  # JSON Feed external_url
    pointers: list[tuple[str, str, str]] = field(default_factory=list)  # (words before, anchor text, href)
    headings: list[str] = field(default_factory=list)
    literals: list[tuple[str, str, str]] = field(default_factory=list)  # (word before, "<token>", word after)
    reblog_handles: list[str] = field(default_factory=list)  # anchor texts that are bare handles
    image_count: int = 0  # <img> in the HTML plus JSON Feed image attachments
    categories: list[str] = field(default_factory=list)


@dataclass
class FeedFacts:
    """Feed-wide facts a detector needs: the categories on >= FEED_WIDE_SHARE of entries."""

    feed_wide: frozenset[str] = frozenset()


# --- shared text helpers -----------------------------------------------------------------------------------------

_WORD = regex.compile(r"[\p{L}\p{M}\p{N}'’]+")
_LETTERS = regex.compile(r"[\p{L}\p{N}]+")
_URL = regex.compile(r"https?://[^\s<>\"]+")
_TEXT_TAG = regex.compile(r"(?<![\p{L}\p{N}_/&#])#([\p{L}\p{M}\p{N}_]*[\p{L}\p{M}_][\p{L}\p{M}\p{N}_]*)")
_ELLIPSIS = regex.compile(r"([\p{L}\p{M}'’]+)\s?(?:…|\.\.\.)(?=\s*(?:\n|$))")


def letters(text: str) -> str:
    """Letters and digits only, case-folded: how two texts are compared for "the same words"."""
    return "".join(_LETTERS.findall(unicodedata.normalize("NFKC", text).casefold()))


def words(text: str) -> list[str]:
    return [w.casefold() for w in _WORD.findall(text)]


def prose(post: Rendered, source: Source | None = None) -> list[str]:
    """The post's paragraphs of prose: links, hashtags, a "CW:" line and the title line removed."""
    text = post.text
    for start, end in sorted(post.link_spans, reverse=True):
        text = text[:start] + text[end:]
    text = _URL.sub("", text)
    text = _TEXT_TAG.sub("", text)
    title = letters(source.title) if source else ""
    out = []
    for paragraph in regex.split(r"\n\s*\n", text):
        paragraph = paragraph.strip()
        if not letters(paragraph) and not paragraph.strip(" \n|·-–—"):
            continue
        if paragraph.startswith("CW: ") or (title and letters(paragraph) == title):
            continue
        out.append(paragraph)
    return out


# --- the detectors: each returns a short detail when the post shows the defect, else None -----------------------

REPEAT_MIN_LETTERS = 12  # a card title shorter than this ("Home") may be repeated by chance
DESCRIPTION_COMPARE_LETTERS = 60  # the card description's opening, compared letter for letter


def _card_repeats(post: Rendered) -> dict[str, bool] | None:
    """For a Bluesky post with a card: whether its text repeats the card's title, its description's opening
    (only parts of REPEAT_MIN_LETTERS+ letters are compared: "Home" may be repeated by chance)."""
    if post.platform != "bluesky" or not post.card:
        return None
    text = letters(post.text)
    title = letters(post.card.get("title") or "")
    description = letters(post.card.get("description") or "")[:DESCRIPTION_COMPARE_LETTERS]
    return {part: value in text for part, value in (("title", title), ("description", description))
            if len(value) >= REPEAT_MIN_LETTERS}  # fmt: skip


def bsky_repeats_card(post: Rendered, source: Source, facts: FeedFacts) -> str | None:
    """Bluesky text that repeats its card: the title and the description (each the card has)."""
    repeats = _card_repeats(post)
    return " and ".join(repeats) + " repeated" if repeats and all(repeats.values()) else None


def bsky_repeats_card_title(post: Rendered, source: Source, facts: FeedFacts) -> str | None:
    """Bluesky text that contains its card's title (alone or with the description)."""
    repeats = _card_repeats(post)
    return "title repeated" if repeats and repeats.get("title") else None


def bsky_card_url_in_text(post: Rendered, source: Source, facts: FeedFacts) -> str | None:
    """Bluesky text that spends graphemes on the URL its card already carries."""
    if post.platform != "bluesky" or not post.card:
        return None
    uri = post.card.get("uri") or ""
    for (start, end), link in zip(post.link_spans, post.links):
        shown = post.text[start:end]
        if link == uri and regex.fullmatch(r"\S*[./:]\S*", shown):  # the URL itself, not words linked to it
            return f"{end - start} characters on {shown!r}"
    return None


def no_language(post: Rendered, source: Source, facts: FeedFacts) -> str | None:
    return None if post.languages else "no language"


# Script ranges: a text whose letters are mostly in one of these scripts is not English.
NON_LATIN_SCRIPTS = ("Han", "Hiragana", "Katakana", "Hangul", "Cyrillic", "Arabic", "Hebrew", "Greek", "Thai",
                     "Devanagari", "Bengali", "Georgian", "Armenian")  # fmt: skip
NON_LATIN_SHARE = 0.3
_SCRIPT = {name: regex.compile(rf"\p{{Script={name}}}") for name in NON_LATIN_SCRIPTS}
# Function words that (nearly) only one language uses; English words shared with another language left out.
STOPWORDS = {
    "en": {"the", "and", "of", "to", "is", "that", "for", "it", "with", "was", "this", "are", "be", "by", "from",
           "have", "you", "not", "but", "or", "they", "which", "were", "been", "has", "what", "about", "we", "will"},
    "fr": {"le", "les", "des", "du", "et", "est", "une", "pour", "dans", "qui", "sur", "au", "aux", "pas", "ce",
           "cette", "avec", "sont", "il", "elle", "nous", "vous", "mais", "ou", "leur", "plus", "été", "être"},
    "de": {"der", "das", "und", "ist", "nicht", "ein", "eine", "mit", "von", "den", "dem", "zu", "auf", "für",
           "sich", "auch", "ich", "wir", "sie", "im", "bei", "aus", "wie", "noch", "nur", "wird", "oder", "aber",
           "dass", "hat", "sind", "einen", "zum", "zur"},
    "es": {"el", "los", "las", "y", "que", "por", "para", "con", "del", "se", "al", "lo", "su", "como", "más",
           "pero", "una", "es", "muy"},
    "pt": {"os", "é", "do", "da", "dos", "das", "em", "na", "um", "uma", "para", "com", "não", "mais", "ao",
           "foi", "são", "pelo", "pela"},
    "it": {"il", "gli", "di", "è", "che", "per", "non", "della", "sono", "nel", "alla", "questo", "anche"},
    "nl": {"het", "een", "en", "van", "dat", "niet", "op", "te", "met", "zijn", "voor", "er", "maar", "ook", "bij"},
}  # fmt: skip
STOPWORD_MIN_HITS = 3


def non_english(text: str) -> str | None:
    """The reason `text` is not English (its script, or another language's function words), else None."""
    found = regex.findall(r"\p{L}", text)
    if found:
        for name, pattern in _SCRIPT.items():
            share = sum(1 for ch in found if pattern.match(ch)) / len(found)
            if share >= NON_LATIN_SHARE:
                return f"{share:.0%} {name} letters"
    tokens = words(text)
    hits = {lang: sum(1 for w in tokens if w in stop) for lang, stop in STOPWORDS.items()}
    english = hits.pop("en")
    lang, best = max(hits.items(), key=lambda item: item[1])
    if best >= STOPWORD_MIN_HITS and best > english:
        return f"{best} {lang} function words vs {english} English"
    return None


def non_english_tagged_en(post: Rendered, source: Source, facts: FeedFacts) -> str | None:
    """Tagged English (run with language = "en" configured) although the text is not English."""
    if not any(lang.lower() == "en" or lang.lower().startswith("en-") for lang in post.languages):
        return None
    # what the reader sees in the post's language: its text and, on Bluesky, its card (the text may be a title only)
    card = post.card or {}
    reason = non_english(" ".join([post.text, card.get("title") or "", card.get("description") or ""]))
    return f"tagged en: {reason}" if reason else None


FEED_WIDE_SHARE = 0.8  # a category on this share of a feed's entries says nothing about one of them
FEED_WIDE_MIN_ENTRIES = 3
GENERIC_TAGS = frozenset(letters(t) for t in (
    "news", "blog", "blogs", "blogpost", "podcast", "podcasts", "episode", "episodes", "uncategorized",
    "uncategorised", "general", "misc", "miscellaneous", "other", "others", "video", "videos", "article",
    "articles", "post", "posts", "update", "updates", "featured", "home", "main", "allgemein", "nachrichten",
    "sonstiges", "unkategorisiert", "actualités", "actualite", "divers", "non classé", "noticias", "notícias",
    "geral", "sem categoria", "sin categoría", "general", "notizie", "varie", "новости", "новини",
))  # fmt: skip
MAX_TAGS = 4
LONG_TAG = 25


def feed_wide_tag(post: Rendered, source: Source, facts: FeedFacts) -> str | None:
    hits = [tag for tag in post.tags if letters(tag) in facts.feed_wide]
    return "#" + ", #".join(hits) if hits else None


def generic_tag(post: Rendered, source: Source, facts: FeedFacts) -> str | None:
    hits = [tag for tag in post.tags if letters(tag) in GENERIC_TAGS]
    return "#" + ", #".join(hits) if hits else None


def too_many_tags(post: Rendered, source: Source, facts: FeedFacts) -> str | None:
    return f"{len(post.tags)} tags" if len(post.tags) > MAX_TAGS else None


def long_tag(post: Rendered, source: Source, facts: FeedFacts) -> str | None:
    hits = [tag for tag in post.tags if len("#" + tag) >= LONG_TAG]  # as shown, with its "#"
    return "#" + ", #".join(hits) if hits else None


_LIST_LINE = regex.compile(r"^\s*(?:[•◦▪‣●○■□►▸*\-–—]|\d{1,2}[.)]|\(\d{1,2}\))\s+\S")
LIST_LINES_MIN = 3


def bullet_teaser(post: Rendered, source: Source, facts: FeedFacts) -> str | None:
    """A teaser that is a list: a "•", or LIST_LINES_MIN+ lines starting like list items."""
    body = "\n\n".join(prose(post, source))
    if "•" in body and "•" not in source.title:
        return f"{body.count('•')} •"
    items = sum(1 for line in body.split("\n") if _LIST_LINE.match(line))
    return f"{items} list lines" if items >= LIST_LINES_MIN else None


# Words a clause cannot end on (articles, conjunctions, prepositions, possessives), in the corpus's main
# languages: en, de, fr, es, pt, nl, ru, uk. Pronouns and verbs ("it", "is") are left out: "we did it…" is a cut.
FUNCTION_WORDS = frozenset("""
the a an and or but nor in at to of for with from as into onto under between than if its their our your my
der die das den dem des ein eine einen einem einer und oder aber im am auf zu zum zur von vom mit für bei aus
nach über unter dass
le la les un une des du de et ou mais dans sur à au aux pour par avec ces son sa ses leur
el los las y pero con por para del al su sus una
os um uma do da dos das em no na ao com
het een en van op te met voor
и в на с к по а но у из за от для
і та з до й від
""".split())  # fmt: skip


def cut_after_function_word(post: Rendered, source: Source, facts: FeedFacts) -> str | None:
    """A teaser cut ("word…" ending a paragraph) right after a function word the author did not end on."""
    for paragraph in prose(post, source):
        match = _ELLIPSIS.search(paragraph)
        if match and match.group(1).casefold() in FUNCTION_WORDS:
            if regex.search(regex.escape(match.group(0).rstrip()), source.text):
                continue  # the author's own "and so on..."
            return f"…{paragraph[max(0, match.start() - 30):].strip()}"
    return None


def _same_url(a: str, b: str) -> bool:
    def norm(url: str) -> str:
        return regex.sub(r"^https?://(www\.)?", "", url.strip()).rstrip("/")

    return bool(a and b) and norm(a) == norm(b)


def _offsite(source: Source) -> str:
    """The link-post target: JSON Feed external_url, or a link to another site than the permalink (key)."""
    if source.external_url:
        return source.external_url
    key_host, link_host = urlsplit(source.key).hostname, urlsplit(source.link).hostname
    if source.key.startswith("http") and key_host and link_host and key_host != link_host:
        return source.link
    return ""


def link_target_dropped(post: Rendered, source: Source, facts: FeedFacts) -> str | None:
    target = _offsite(source)
    if not target:
        return None
    carried = post.links + ([post.card.get("uri", "")] if post.card else [])
    return None if any(_same_url(target, link) for link in carried) else f"no link to {target}"


POINTER_TEXTS = frozenset({"here", "this", "this post", "this article", "this link", "link", "this one", "hier",
                           "ici", "aquí", "aqui", "тут", "здесь"})  # fmt: skip


def dangling_pointer(post: Rendered, source: Source, facts: FeedFacts) -> str | None:
    """A link whose text is a pointer ("here", "this post") kept as bare text, its URL not in the post."""
    text = " ".join(post.text.split())
    for before, anchor, href in source.pointers:
        phrase = f"{before} {anchor}".strip()
        if regex.search(r"(?<![\p{L}])" + regex.escape(phrase) + r"(?![\p{L}])", text):
            if not any(_same_url(href, link) for link in post.links):
                return f"{phrase!r} without {href}"
    return None


def mastodon_card_from_earlier_url(post: Rendered, source: Source, facts: FeedFacts) -> str | None:
    """Mastodon builds the card from the first URL: flag a status whose first URL is not the intended one."""
    if post.platform != "mastodon" or not post.links:
        return None
    target = _offsite(source)
    intended = target if target and any(_same_url(target, link) for link in post.links) else source.link
    if not intended or _same_url(post.links[0], intended):
        return None
    return f"first URL {post.links[0]}"


SENTENCE = regex.compile(r"(?:[\p{L}\p{N}'’,\-]+\s+){4,}[\p{L}\p{N}'’\-]+[.!?:。！？]")


def entry_text_dropped(post: Rendered, source: Source, facts: FeedFacts) -> str | None:
    """Title + link only although the entry has at least one sentence of its own (not just its title)."""
    teaser = letters(" ".join(prose(post, source)))
    if post.card and post.platform == "bluesky":
        teaser += letters(post.card.get("description") or "")
    if teaser:
        return None  # some of the entry's text is shown, however short ("Met Museum")
    if letters(source.text) == letters(source.title) or not SENTENCE.search(source.text):
        return None
    return f"the entry says {' '.join(source.text.split())[:60]!r}…"


PLACEHOLDER_TITLES = frozenset({"photo", "video", "audio", "quote", "link", "chat", "text", "untitled"})


def placeholder_title(post: Rendered, source: Source, facts: FeedFacts) -> str | None:
    lines = [line.strip() for line in post.text.split("\n")]
    if post.card:
        lines.append((post.card.get("title") or "").strip())
    hits = [line for line in lines if line.casefold() in PLACEHOLDER_TITLES]
    return f"title {hits[0]!r}" if hits else None


def reblog_handle_leading(post: Rendered, source: Source, facts: FeedFacts) -> str | None:
    """A paragraph that opens with a reblogged blog's handle ("storybookprincess:")."""
    for paragraph in prose(post, source):
        for handle in source.reblog_handles:
            if paragraph.startswith(handle + ":"):
                return f"opens with {handle}:"
    return None


PHOTO_POST_MAX_WORDS = 15


def photo_without_images(post: Rendered, source: Source, facts: FeedFacts) -> str | None:
    """A photo post (placeholder title, or images with under PHOTO_POST_MAX_WORDS words) with no native image."""
    if not source.image_count or post.images:
        return None
    placeholder = source.title.strip().casefold() in PLACEHOLDER_TITLES
    if placeholder or len(words(source.text)) < PHOTO_POST_MAX_WORDS:
        return f"{source.image_count} image(s) in the entry, none attached"
    return None


STRAY_GLYPHS = "★☆◉◎¶§※✱✦❖■□▪►▶"  # not "→" or "•": prose and lists use them
_STRAY = regex.compile(rf"(?:^|(?<=\s))[{STRAY_GLYPHS}](?=\s|$)")


def stray_glyph_or_heading(post: Rendered, source: Source, facts: FeedFacts) -> str | None:
    """A lone glyph (★ ◉ ¶ …) that labels no link, a heading of the entry as its own paragraph, or prose
    ending in ":" with nothing after it."""
    link_starts = {start for start, _ in post.link_spans}
    for match in _STRAY.finditer(post.text):
        after = len(post.text) - len(post.text[match.end() :].lstrip(" \t"))
        linked = any(start <= match.start() < end for start, end in post.link_spans)
        if after in link_starts or linked or match.group() in source.title:
            continue  # "★ https://…" or a linked "★": Daring Fireball's mark for the permalink, kept on purpose
        return f"glyph {match.group()}"
    paragraphs = prose(post, source)
    headings = {letters(h) for h in source.headings} - {letters(source.title), ""}
    for paragraph in paragraphs:
        if letters(paragraph) in headings:
            return f"heading {paragraph!r}"
    if paragraphs and paragraphs[-1].rstrip().endswith(":"):
        return f"ends on {paragraphs[-1][-40:]!r}"
    return None


def _private_host(url: str) -> bool:
    try:
        host = (urlsplit(url).hostname or "").rstrip(".").lower()
    except ValueError:
        return False
    if host in ("localhost",) or host.endswith((".localhost", ".local", ".internal", ".lan")):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_private or address.is_loopback or address.is_link_local or address.is_unspecified


def private_permalink(post: Rendered, source: Source, facts: FeedFacts) -> str | None:
    urls = post.links + ([post.card.get("uri", "")] if post.card else [])
    hits = [url for url in urls if _private_host(url)]
    return hits[0] if hits else None


def angle_brackets_lost(post: Rendered, source: Source, facts: FeedFacts) -> str | None:
    """A literal "<i>" the source wrote as text, gone from the post while its neighbours stayed ("von und")."""
    seen = " ".join((post.text + " " + " ".join((post.card or {}).get(k) or "" for k in ("title", "description"))).split())
    for before, token, after in source.literals:
        # the token's neighbours now touch: it was removed here (the same token kept elsewhere does not count)
        if before and after and regex.search(rf"(?<!\p{{L}}){regex.escape(before)}\s+{regex.escape(after)}(?!\p{{L}})", seen):
            return f"{before} {token} {after} -> {before} {after}"
    return None


@dataclass(frozen=True)
class Row:
    id: str
    label: str
    detect: object  # (Rendered, Source, FeedFacts) -> str | None
    variant: str = "default"  # which rendering it reads: "default" or "lang-en" ([bridge] language = "en")
    platforms: tuple[str, ...] = ("mastodon", "bluesky")


ROWS = (
    Row("bsky_repeats_card", "Bluesky text repeats the card's title and description", bsky_repeats_card, platforms=("bluesky",)),
    Row("bsky_repeats_card_title", "Bluesky text repeats the card's title", bsky_repeats_card_title, platforms=("bluesky",)),
    Row("bsky_card_url_in_text", "Bluesky text spends graphemes on the card's URL", bsky_card_url_in_text, platforms=("bluesky",)),
    Row("no_language", "no language tag", no_language),
    Row("non_english_tagged_en", 'non-English post tagged en (language = "en")', non_english_tagged_en, variant="lang-en"),
    Row("feed_wide_tag", "feed-wide hashtag (on >= 80% of the feed's entries)", feed_wide_tag),
    Row("generic_tag", "generic hashtag (#News, #Blog, #Podcast, ...)", generic_tag),
    Row("too_many_tags", f"more than {MAX_TAGS} hashtags", too_many_tags),
    Row("long_tag", f"hashtag of {LONG_TAG}+ characters", long_tag),
    Row("bullet_teaser", "teaser is a bullet list (show notes)", bullet_teaser),
    Row("cut_after_function_word", "teaser cut right after a function word", cut_after_function_word),
    Row("link_target_dropped", "link post's target dropped", link_target_dropped),
    Row("dangling_pointer", '"here"/"this post" left without its URL', dangling_pointer),
    Row("mastodon_card_wrong_url", "Mastodon card from an earlier URL", mastodon_card_from_earlier_url, platforms=("mastodon",)),
    Row("entry_text_dropped", "entry text dropped (title + link only)", entry_text_dropped),
    Row("placeholder_title", 'placeholder title ("Photo", "Video")', placeholder_title),
    Row("reblog_handle_leading", 'reblog handle leading ("name:")', reblog_handle_leading),
    Row("photo_without_images", "photo post without native images", photo_without_images),
    Row("stray_glyph_or_heading", "stray glyph / heading / dangling \":\" paragraph", stray_glyph_or_heading),
    Row("private_permalink", "link to localhost / a private address", private_permalink),
    Row("angle_brackets_lost", "literal <…> from the source lost", angle_brackets_lost),
)  # fmt: skip
FILE_PREVIEW_ROW = ("file_preview_unresolved", "preview --file: entry link relative/unresolved (entries)")


def detect(post: Rendered, source: Source, facts: FeedFacts, variant: str = "default") -> dict[str, str]:
    """{row id: detail} for every row whose defect this post shows."""
    flags = {}
    for row in ROWS:
        if row.variant == variant and post.platform in row.platforms:
            detail = row.detect(post, source, facts)
            if detail:
                flags[row.id] = detail
    return flags


# --- reading the feed's own data -------------------------------------------------------------------------------------


def source_of(feed_name: str, entry, raw_item: dict | None) -> Source:
    """What the entry's source says, read with BeautifulSoup (not the renderer's own HTML-to-text)."""
    html = entry.content_html or entry.summary_html or ""
    soup = BeautifulSoup(html, "html.parser") if html else None
    text = " ".join(soup.get_text(" ").split()) if soup else ""
    pointers, handles, headings, literals = [], [], [], []
    if soup:
        for anchor in soup.find_all("a"):
            label = " ".join(anchor.get_text(" ").split())
            if label.casefold() in POINTER_TEXTS and anchor.get("href"):
                before = " ".join("".join(_preceding_text(anchor)).split()[-2:])
                pointers.append((before, label, anchor["href"]))
            if regex.fullmatch(r"[a-z0-9][a-z0-9\-]{2,31}", label):
                handles.append(label)
        headings = [" ".join(h.get_text(" ").split()) for h in soup.find_all(regex.compile(r"^h[1-6]$"))]
        literals += _literals(text)
    raw_title = (raw_item or {}).get("title")  # JSON Feed titles are plain text: "<i>" there is literal
    literals += _literals(raw_title if isinstance(raw_title, str) else "")
    images = len(soup.find_all("img")) if soup else 0
    for attachment in (raw_item or {}).get("attachments") or []:
        if isinstance(attachment, dict) and str(attachment.get("mime_type", "")).startswith("image/"):
            images += 1
    external = (raw_item or {}).get("external_url")
    return Source(
        feed=feed_name, key=entry.key, title=entry.title or "", text=text,
        link=entry.link or "", external_url=external if isinstance(external, str) else "", pointers=pointers,
        headings=headings, literals=literals, reblog_handles=handles, image_count=images,
        categories=[c for c in entry.categories if isinstance(c, str)],
    )  # fmt: skip


def _preceding_text(node) -> list[str]:
    """Up to ~40 characters of text just before `node` in document order."""
    out, size = [], 0
    for string in node.find_all_previous(string=True):
        out.insert(0, str(string))
        size += len(string)
        if size >= 40:
            break
    return out


_LITERAL = regex.compile(r"<[^<>\s][^<>]{0,40}>")


def _literals(text: str) -> list[tuple[str, str, str]]:
    found = []
    for match in _LITERAL.finditer(text):
        before = (_WORD.findall(text[: match.start()]) or [""])[-1]
        after = (_WORD.findall(text[match.end() :]) or [""])[0]
        found.append((before, match.group(), after))
    return found


def raw_json_items(path: Path) -> dict[str, dict]:
    """A JSON Feed's items by url and id: for external_url, attachments and the title as written."""
    try:
        data = json.loads(path.read_bytes())
    except (ValueError, OSError):
        return {}
    items = {}
    for item in data.get("items") or [] if isinstance(data, dict) else []:
        if isinstance(item, dict):
            for name in ("url", "id"):
                if isinstance(item.get(name), str):
                    items.setdefault(item[name], item)
    return items


def feed_facts(entries) -> FeedFacts:
    if len(entries) < FEED_WIDE_MIN_ENTRIES:
        return FeedFacts()
    counts = Counter()
    for entry in entries:
        counts.update({letters(c) for c in entry.categories if isinstance(c, str) and letters(c)})
    return FeedFacts(frozenset(tag for tag, n in counts.items() if n >= FEED_WIDE_SHARE * len(entries)))


# --- rendering, as `bridge preview --no-fetch` does ----------------------------------------------------------------


def _settings(language: str | None):
    """Post settings for a default Mastodon and a default Bluesky account, made by the config layer itself."""
    from bridge.config import parse_config

    data = {
        "accounts": {
            "m": {"type": "mastodon", "instance": "https://mastodon.example", "access_token": {"env": "AUDIT_UNUSED"}},
            "b": {"type": "bluesky", "handle": "me.example", "app_password": {"env": "AUDIT_UNUSED"}},
        },
        "feeds": [{"name": "corpus", "url": "https://corpus.example/feed", "accounts": ["m", "b"]}],
    }
    if language:
        data["bridge"] = {"language": language}
    config = parse_config(data)
    return config.post_settings(config.feeds[0], "m"), config.post_settings(config.feeds[0], "b")


def read_mastodon(payload: dict) -> Rendered:
    status = payload.get("status") or ""
    spans = [match.span() for match in _URL.finditer(status)]
    links = [status[start:end].rstrip(".,;:!?)") for start, end in spans]
    tags = _TEXT_TAG.findall(_URL.sub(" ", status))
    language = payload.get("language")
    media = payload.get("media") or payload.get("media_attachments") or []
    return Rendered("mastodon", status, links, tags, [language] if language else [], None, len(media), spans)


def read_bluesky(payload: dict) -> Rendered:
    record = payload.get("record") or payload
    text = record.get("text") or ""
    data = text.encode("utf-8")
    links, tags, spans = [], [], []
    for facet in record.get("facets") or []:
        start, end = facet["index"]["byteStart"], facet["index"]["byteEnd"]
        for feature in facet.get("features") or []:
            kind = feature.get("$type", "")
            if kind.endswith("#link"):
                links.append(feature.get("uri", ""))
                spans.append((len(data[:start].decode("utf-8", "ignore")), len(data[:end].decode("utf-8", "ignore"))))
            elif kind.endswith("#tag"):
                tags.append(feature.get("tag", ""))
    embed = record.get("embed") or {}
    media = embed.get("media") or {}
    external = embed.get("external") or media.get("external")
    images = len(embed.get("images") or media.get("images") or []) + (1 if "video" in str(embed.get("$type")) else 0)
    card = {k: external.get(k) for k in ("uri", "title", "description")} if external else None
    return Rendered("bluesky", text, links, tags, list(record.get("langs") or []), card, images, spans)


@dataclass
class Audit:
    rows: dict[str, list[int]]  # row id -> [posts flagged, posts checked]
    posts: list[dict]
    unrenderable: int = 0


def audit_corpus(names: list[str] | None = None, progress=None) -> Audit:
    """Render every corpus entry (default settings, and with language = "en") and run every detector."""
    from bridge.platforms.bluesky.payload import bluesky_payload
    from bridge.platforms.mastodon.payload import mastodon_payload
    from bridge.render import RenderError, render_post

    from tests.render_corpus import CORPUS_DIR, corpus_files, load_feed

    variants = {"default": (None, _settings(None)), "lang-en": ("en", _settings("en"))}
    totals: dict[str, list[int]] = {row.id: [0, 0] for row in ROWS}
    posts: list[dict] = []
    unrenderable = 0
    for name in corpus_files() if names is None else names:
        if progress:
            progress(name)
        raw = raw_json_items(CORPUS_DIR / name) if name.endswith(".json") else {}
        for variant, (language, (mastodon_settings, bluesky_settings)) in variants.items():
            feed = load_feed(name, default_language=language)
            if feed is None:
                continue
            facts = feed_facts(feed.entries)
            for index, entry in enumerate(feed.entries):
                source = source_of(name, entry, raw.get(entry.link or "") or raw.get(entry.key))
                for platform, settings in (("mastodon", mastodon_settings), ("bluesky", bluesky_settings)):
                    try:
                        post = render_post(entry, settings, feed_title=feed.title)  # as preview --no-fetch
                        if platform == "mastodon":
                            rendered = read_mastodon(mastodon_payload(post, settings))
                        else:
                            rendered = read_bluesky(bluesky_payload(post, settings, created_at="2026-01-01T00:00:00.000Z"))
                    except RenderError:
                        unrenderable += variant == "default"
                        continue
                    flags = detect(rendered, source, facts, variant)
                    for row in ROWS:
                        if row.variant == variant and platform in row.platforms:
                            totals[row.id][1] += 1
                            totals[row.id][0] += row.id in flags
                    if variant == "default" or flags:
                        record = {"feed": name, "entry": entry.key, "index": index, "platform": platform,
                                  "variant": variant, "text": rendered.text, "card": rendered.card,
                                  "languages": rendered.languages, "tags": rendered.tags, "images": rendered.images,
                                  "flags": flags}  # fmt: skip
                        posts.append(record)
    return Audit(totals, posts, unrenderable)


def file_preview_unresolved() -> tuple[int, int, list[dict]]:
    """`bridge preview --file` on each corpus document (no config): entries that have an http(s) link when the
    document is read from its URL but none under --file (a relative link resolved against file://, or lost)."""
    from click.testing import CliRunner

    from bridge.cli import cli
    from tests.render_corpus import CORPUS_DIR, corpus_files, load_feed

    details: list[dict] = []  # one per previewed entry: {} when its link is fine
    runner = CliRunner()
    with tempfile.TemporaryDirectory() as empty:  # no config: the default accounts, as a first-time user has
        env = {"BRIDGE_CONFIG": None, "CONFIGURATION_DIRECTORY": None, "XDG_CONFIG_HOME": empty}
        for name in corpus_files():
            feed = load_feed(name)
            if feed is None:
                continue
            result = runner.invoke(cli, ["preview", "--file", str(CORPUS_DIR / name), "--no-fetch", "--json",
                                         "--limit", "0", "--account", "mastodon"], env=env)  # fmt: skip
            previewed = json.loads(result.stdout) if result.exit_code == 0 else []  # a hint may go to stderr
            for index, entry in enumerate(feed.entries):
                link = (previewed[index].get("link") or "") if index < len(previewed) else ""
                fine = link.startswith(("http://", "https://")) or not (entry.link or "").startswith("http")
                details.append({} if fine else {"feed": name, "entry": entry.key, "link": entry.link, "file_link": link})
    unresolved = [d for d in details if d]
    return len(unresolved), len(details), unresolved


# --- output ------------------------------------------------------------------------------------------------------


def table(rows: list[dict]) -> str:
    lines = ["| row | posts | total |", "|---|---:|---:|"]
    lines += [f"| {row['label']} (`{row['id']}`) | {row['posts']:,} | {row['total']:,} |" for row in rows]
    return "\n".join(lines)


def run(out: Path | None) -> dict:
    audit = audit_corpus(progress=lambda name: print(f"  {name}", file=sys.stderr))
    rows = [{"id": row.id, "label": row.label, "posts": audit.rows[row.id][0], "total": audit.rows[row.id][1]} for row in ROWS]
    flagged, total, details = file_preview_unresolved()
    rows.append({"id": FILE_PREVIEW_ROW[0], "label": FILE_PREVIEW_ROW[1], "posts": flagged, "total": total})
    result = {"rows": rows, "unrenderable_entries": audit.unrenderable, "posts": audit.posts, "file_preview": details}
    print(table(rows))
    print(f"\n{audit.unrenderable // 2} entries have no http(s) link to post (not rendered).")
    if out:
        out.write_text(json.dumps(result, ensure_ascii=False, indent=1))
        print(f"details: {out}")
    return result


def compare(before_path: Path, after_path: Path, examples: int) -> None:
    before, after = json.loads(before_path.read_text()), json.loads(after_path.read_text())
    after_rows = {row["id"]: row for row in after["rows"]}
    print("| row | before | after |\n|---|---:|---:|")
    for row in before["rows"]:
        other = after_rows.get(row["id"], {"posts": "—", "total": "—"})
        print(f"| {row['label']} | {row['posts']:,} of {row['total']:,} | {other['posts']:,} of {other['total']:,} |"
              if isinstance(other["posts"], int) else f"| {row['label']} | {row['posts']:,} | — |")  # fmt: skip
    for number, (row_id, old, new) in enumerate(pick_examples(before["posts"], after["posts"], examples), 1):
        print(f"\n### {number}. {row_id} — {old['feed']} #{old['index']} ({old['platform']})")
        print(f"before ({old['flags'][row_id]}):\n{_indent(old['text'])}")
        print(f"after:\n{_indent(new['text'])}")
        if new.get("card"):
            print(f"  [card: {new['card'].get('title')!r} — {(new['card'].get('description') or '')[:100]!r}]")


def pick_examples(before: list[dict], after: list[dict], count: int) -> list[tuple[str, dict, dict]]:
    """Posts where a defect disappeared, round-robin over rows, each feed used once while others remain."""
    def key(post):
        return post["feed"], post["entry"], post["platform"], post["variant"]

    later = {key(post): post for post in after}
    fixed: dict[str, list[tuple[dict, dict]]] = defaultdict(list)
    for post in before:
        new = later.get(key(post))
        for row_id in post["flags"]:
            if new is not None and row_id not in new["flags"]:
                fixed[row_id].append((post, new))
    chosen, feeds, rows = [], set(), [row.id for row in ROWS if fixed.get(row.id)]
    while len(chosen) < count and any(fixed.get(r) for r in rows):
        for row_id in rows:
            candidates = fixed[row_id]
            if not candidates or len(chosen) >= count:
                continue
            pick = next((c for c in candidates if c[0]["feed"] not in feeds), candidates[0])
            candidates.remove(pick)
            feeds.add(pick[0]["feed"])
            chosen.append((row_id, *pick))
    return chosen


def _indent(text: str) -> str:
    return "\n".join("    " + line for line in text.split("\n"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.editor_audit", description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", type=Path, metavar="OUT", help="write the per-post details here")
    parser.add_argument("--compare", nargs=2, type=Path, metavar=("BEFORE", "AFTER"), help="compare two --json runs")
    parser.add_argument("--examples", type=int, default=10, help="before/after examples to print with --compare")
    args = parser.parse_args(argv)
    if args.compare:
        compare(*args.compare, args.examples)
        return 0
    from tests.render_corpus import SKIP_REASON, corpus_available

    if not corpus_available():
        print(SKIP_REASON, file=sys.stderr)
        return 1
    run(args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
