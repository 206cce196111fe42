"""Entry -> Post: the platform-neutral post, before any platform's limit is applied. Pure.

Choices made here (documented for the README):
- Summary: the feed's excerpt when it is a real one (written by the author, or at least not just the opening
  words of the content cut off), else the text before the author's <!--more--> break, else the opening of
  the content: prose only (bridge.render.text._opening: no lists, code, sponsor lines or stray glyphs). A titled
  post's summary is capped at SUMMARY_MAX_GRAPHEMES, a title-less post's text at
  TEXT_FIRST_MAX_GRAPHEMES (cut at a sentence, else word boundary).
- Title-less entries (micro.blog, Mastodon, Scripting News), and entries whose title is only the first words
  of their text, use the untitled template: text first. A title repeated as the content's first paragraph
  is not repeated in the summary.
- Language (bridge/render/language.py post_language): force_language > the entry's own > detected from the
  title and summary when confident > the feed's > the `language` setting > the detector's best guess; never
  one the text's script rules out. Normalized to BCP-47 ("en_us" -> "en-US").
- Content warning and visibility: the settings', then category rules (matched case-insensitively): the first
  matching rule with a content warning sets it; the most restrictive visibility among matching rules wins
  when it is more restrictive than the settings'.
- Hashtags: see hashtags.py; a block of hashtags ending the text moves to the post's hashtags.
- Link posts (Entry.target: JSON Feed external_url, Daring Fireball-style RSS/Atom): the card and the first URL go to the linked article; the permalink
  follows it, marked "★".
- Image: the article page's og:image (from a LinkPreview), else the feed's first image.
- Image: the article page's og:image (from a LinkPreview), else the feed's first image (none with
  images = "none"). Photo posts (bridge/render/photos.py) carry their pictures as `images`, attached natively.
- Placeholder titles ("Photo") and Tumblr's leading reblog "handle:" lines are dropped (photos.py).
"""

from __future__ import annotations

import functools
import re
from dataclasses import asdict, dataclass
from urllib.parse import urlsplit

import regex

from bridge.config import HashtagSettings, PostSettings
from bridge.linkpreview.model import LinkPreview
from bridge.model import Entry
from bridge.render import graphemes
from bridge.render.fit import PERMALINK_MARK, Parts, RenderError, shorten, without_dangling_words
from bridge.render.hashtags import category_hashtags, split_tag_block
from bridge.render.language import post_language
from bridge.render.photos import drop_reblog_handles, is_photo_post, is_placeholder_title, photos
from bridge.render.links import without_pointer_urls
from bridge.render.limits import CARD_DESCRIPTION_MAX_GRAPHEMES, CARD_TITLE_MAX_GRAPHEMES, VISIBILITIES
from bridge.render.text import clean_inline, clean_plain, html_to_text

SUMMARY_MAX_GRAPHEMES = 500  # our choice: a teaser, even on instances that allow 5000 characters
TEXT_FIRST_MAX_GRAPHEMES = 2000  # our choice: a title-less post is its text; long ones still get cut

DERIVED_TITLE_MIN_LETTERS = 20  # a shorter title that opens the text ("Hello") is still a title
OPENING_COMPARE_LETTERS = 100  # a summary whose first 100 letters open the content is not an excerpt
_ALNUM = regex.compile(r"[\p{L}\p{N}]+")
_ELLIPSES = ("…", "...")


@dataclass(frozen=True)
class PostImage:
    url: str
    alt: str = ""
    width: int | None = None
    height: int | None = None
    mime_type: str | None = None


@dataclass(frozen=True)
class Card:
    """The link card: Bluesky's app.bsky.embed.external (Mastodon builds its own from the page)."""

    uri: str
    title: str
    description: str


@dataclass(frozen=True)
class Post:
    """One entry, ready for any platform: every part whole; fitting happens per platform."""

    key: str
    link: str  # the permalink, exactly as the feed gave it
    template: str  # the template chosen for this entry (titled or untitled)
    title: str = ""
    summary: str = ""
    hashtags: tuple[str, ...] = ()
    author: str = ""
    feed_title: str = ""
    published: str | None = None  # ISO 8601
    language: str | None = None  # BCP-47
    content_warning: str | None = None
    visibility: str = "public"
    card: Card | None = None
    image: PostImage | None = None  # the card's image
    images: tuple[PostImage, ...] = ()  # a photo post's pictures, attached natively
    target: str | None = None  # a link post's subject (the card's link); `link` stays the writer's permalink

    def to_dict(self) -> dict:
        data = asdict(self)
        data["hashtags"] = list(self.hashtags)
        data["images"] = [asdict(image) for image in self.images]
        return data

    @classmethod
    def from_dict(cls, data: dict) -> "Post":
        data = dict(data)
        data["hashtags"] = tuple(data.get("hashtags") or ())
        data["card"] = Card(**data["card"]) if data.get("card") else None
        data["image"] = PostImage(**data["image"]) if data.get("image") else None
        data["images"] = tuple(PostImage(**image) for image in data.get("images") or ())
        return cls(**data)


def render_post(
    entry: Entry, settings: PostSettings, *, feed_title: str = "", preview: LinkPreview | None = None
) -> Post:
    """The platform-neutral post for `entry` under `settings`. Raises RenderError when it has no link."""
    text = _entry_text(entry)
    title, summary, link, target = text.title, text.summary, text.link, text.target
    content_warning, visibility = _warning_and_visibility(entry, settings)
    image = _image(entry, preview) if settings.images != "none" else None
    images = text.photos if settings.images in ("auto", "attach") else ()
    card_title = (preview.title if preview and preview.title else "") or title or clean_inline(feed_title)
    card_title = card_title or (urlsplit(link).hostname or link)
    card_description = (preview.description if preview and preview.description else "") or summary
    return Post(
        key=entry.key,
        link=link,
        template=settings.template_untitled if not title else settings.template,
        title=title,
        summary=summary,
        hashtags=_hashtags(entry, settings.hashtags, text.text_tags),
        author=", ".join(name for name in (clean_inline(a) for a in entry.authors) if name),
        feed_title=clean_inline(feed_title),
        published=entry.published.isoformat() if entry.published else None,
        language=_language(entry, settings, f"{title}\n{summary}"),
        content_warning=content_warning,
        visibility=visibility,
        card=Card(
            uri=target or link,
            title=_card_title(card_title),
            description=_card_description(card_description),
        ),
        image=image,
        target=target,
        images=images,
    )


@dataclass(frozen=True)
class _EntryText:
    """What render_post makes of an entry whatever the account: the same for each account it goes to."""

    link: str
    target: str | None
    title: str
    summary: str
    text_tags: tuple[str, ...]
    photos: tuple[PostImage, ...]  # a photo post's pictures (with images = "auto" or "attach")


_ENTRY_TEXTS: dict[tuple, _EntryText] = {}
ENTRY_TEXTS_KEPT = 64  # an entry is rendered for each of its accounts, one after another; a backfill keeps few


def _entry_text(entry: Entry) -> _EntryText:
    """_read_entry(entry), kept for the entry's next account (keyed by every field it reads, so an entry read
    anew from the state, or changed, is recognised by what it says)."""
    key = (entry.key, entry.link, entry.target, entry.title, entry.summary_html, entry.content_html,
           tuple(entry.images))
    found = _ENTRY_TEXTS.get(key)
    if found is None:
        found = _read_entry(entry)
        if len(_ENTRY_TEXTS) >= ENTRY_TEXTS_KEPT:
            del _ENTRY_TEXTS[next(iter(_ENTRY_TEXTS))]  # the oldest
        _ENTRY_TEXTS[key] = found
    return found


def _read_entry(entry: Entry) -> _EntryText:
    """The link, title, summary and pictures of `entry` (reads only the fields _entry_text keys on)."""
    link = _permalink(entry)
    target = _target(entry, link)
    # The parser made the title plain text (a literal <b> in it is the writer's); a feed's own cut title loses
    # its dangling word ("…locate and…").
    title = without_dangling_words(clean_plain(entry.title))
    placeholder_title = is_placeholder_title(title)
    body, title = drop_reblog_handles(_body_text(entry), "" if placeholder_title else title, entry)
    body, text_tags = split_tag_block(body)  # tags ending the text join the post's hashtags
    if title:
        title_key = letters(title.rstrip("".join(_ELLIPSES)).rstrip("."))
        first_paragraph = body.split("\n\n", 1)[0]
        title_letters = letters(title)
        if opening_letters(first_paragraph, len(title_letters) + 1) == title_letters:
            body = body[len(first_paragraph) :].lstrip()  # the content repeats its title as a heading
            if not body.strip():
                body = ""
        elif (
            len(title_key) >= DERIVED_TITLE_MIN_LETTERS or title.endswith(_ELLIPSES)
        ) and opening_letters(body, len(title_key)).startswith(title_key):
            title = ""  # a title made of the text's first words: post the text itself
    text_first = not title
    cap = TEXT_FIRST_MAX_GRAPHEMES if text_first else SUMMARY_MAX_GRAPHEMES
    summary = _opening(body, cap)
    if target and summary.endswith(PERMALINK_MARK):  # the linkblog's own permalink mark: the post adds its own
        summary = summary[: -len(PERMALINK_MARK)].rstrip()
    return _EntryText(link=link, target=target, title=title, summary=summary, text_tags=tuple(text_tags),
                      photos=_photos(entry, bool(title), placeholder_title))


_HASHTAGS: dict[tuple, tuple[str, ...]] = {}


def _hashtags(entry: Entry, chosen: HashtagSettings, text_tags: tuple[str, ...]) -> tuple[str, ...]:
    """category_hashtags for the entry, kept for its next account (keyed by everything it reads: two accounts with
    the same hashtag settings get the same tags)."""
    key = (tuple(entry.categories), tuple(entry.feed_wide_categories), text_tags, chosen.enabled, chosen.max,
           tuple(chosen.rename.items()), tuple(chosen.ignore))
    try:
        found = _HASHTAGS.get(key)
    except TypeError:  # a category that is not a string: nothing to keep it by
        key, found = None, None
    if found is None:
        found = tuple(category_hashtags(entry.categories, chosen, feed_wide=entry.feed_wide_categories,
                                        text_tags=text_tags))
        if key is not None:
            if len(_HASHTAGS) >= ENTRY_TEXTS_KEPT:
                del _HASHTAGS[next(iter(_HASHTAGS))]  # the oldest
            _HASHTAGS[key] = found
    return found


@functools.lru_cache(maxsize=64)
def _card_title(title: str) -> str:
    return _cap(clean_plain(title), CARD_TITLE_MAX_GRAPHEMES)


@functools.lru_cache(maxsize=64)
def _card_description(description: str) -> str:
    description = " ".join(clean_plain(line) for line in description.split("\n") if line.strip())
    description = without_pointer_urls(description)  # a card is not clickable word by word
    return _cap(description, CARD_DESCRIPTION_MAX_GRAPHEMES)


def _language(entry: Entry, settings: PostSettings, text: str) -> str | None:
    # An entry whose language is its feed's did not declare one of its own (older stored entries lack feed_language).
    own = entry.language if entry.language != entry.feed_language else None
    return post_language(
        text, forced=settings.force_language, declared=own, feed_declared=entry.feed_language, default=settings.language
    )


def _target(entry: Entry, link: str) -> str | None:
    target = (entry.target or "").strip()
    if target and target != link and re.match(r"^https?://[^\s/]+", target, re.IGNORECASE):
        return target
    return None


@functools.lru_cache(maxsize=64)  # the same entry is rendered for each of its accounts, one after another
def _opening(body: str, cap: int) -> str:
    """At most `cap` grapheme clusters of `body`, cut at a sentence (preferably) or word boundary."""
    if not body:
        return ""
    head = body[: cap * 16]  # bound the work on a 50 kB article; only its opening can be used
    if len(head) < len(body):
        head = "".join(graphemes.graphemes(head)[:-1])  # the slice may have split the last cluster
    cut = shorten(head, lambda s: graphemes.count(s) <= cap, sentence_preference=0.3, max_graphemes=cap) or ""
    if cut == head and len(head) < len(body):
        cut = shorten(head + "…", lambda s: graphemes.count(s) <= cap, sentence_preference=0.3,
                      max_graphemes=cap) or ""
    return without_dangling_words(cut)  # the source's own "…" may follow "the" ("in the […]")


def _permalink(entry: Entry) -> str:
    for candidate in (entry.link, entry.key):
        if candidate and re.match(r"^https?://[^\s/]+", candidate.strip(), re.IGNORECASE):
            return candidate.strip()
    raise RenderError(f"entry {entry.key!r} has no http(s) link to post")


def _body_text(entry: Entry) -> str:
    """The summary's source text: a real excerpt, the <!--more--> excerpt, or the content."""
    summary = html_to_text(entry.summary_html)
    content = html_to_text(entry.content_html)
    # Never fall back to the whole text: an empty opening means it holds no prose (show notes that are all
    # list, a lone "★"), and the title says more than a bullet list would.
    if not content.text:
        return summary.excerpt or summary.opening
    if not summary.text:
        return content.excerpt or content.opening
    s = letters(summary.all_text)
    c = opening_letters(content.all_text, len(s))  # as much of it as the comparison reads
    head = min(len(s) - 8, OPENING_COMPARE_LETTERS) if len(s) > 16 else len(s)
    if len(c) >= len(s) and c.startswith(s[:head]):
        # the feed's "excerpt" is the content's opening, cut off: take the opening from the content itself
        return content.excerpt or content.opening
    return summary.opening  # a real excerpt, or the longer of two versions


def letters(text: str) -> str:
    return "".join(_ALNUM.findall(text.casefold()))


def opening_letters(text: str, wanted: int) -> str:
    """letters(text) cut anywhere after its first `wanted` letters (all of it when it has fewer), reading only as
    much of a long text as that takes: the letters of an opening open the text's letters (casefolding maps each
    character on its own)."""
    size = 2 * wanted + 64
    while True:
        found = letters(text[:size])
        if len(found) >= wanted or size >= len(text):
            return found
        size *= 4


def _cap(text: str, limit: int) -> str:
    if graphemes.count(text) <= limit:
        return text
    cut = shorten(text, lambda s: graphemes.count(s) <= limit, sentences=False, max_graphemes=limit)
    return cut or graphemes.truncate(text, limit)


def _warning_and_visibility(entry: Entry, settings: PostSettings) -> tuple[str | None, str]:
    content_warning = (settings.content_warning or "").strip() or None
    visibility = settings.visibility if settings.visibility in VISIBILITIES else "public"
    categories = {" ".join(c.split()).casefold() for c in entry.categories if isinstance(c, str)}
    rule_warning = None
    for rule in settings.rules:
        if not any(" ".join(c.split()).casefold() in categories for c in rule.categories):
            continue
        if rule.content_warning and rule_warning is None:
            rule_warning = rule.content_warning.strip() or None
        if rule.visibility and VISIBILITIES.index(rule.visibility) > VISIBILITIES.index(visibility):
            visibility = rule.visibility
    return rule_warning or content_warning, visibility


def _photos(entry: Entry, titled: bool, placeholder_title: bool) -> tuple[PostImage, ...]:
    """A photo post's pictures, to attach natively with images = "auto" or "attach" (bridge/render/photos.py)."""
    pictures = [PostImage(**found) for found in photos(entry, titled)]
    return tuple(pictures) if is_photo_post(entry, pictures, titled, placeholder_title) else ()


def _image(entry: Entry, preview: LinkPreview | None) -> PostImage | None:
    if preview is not None and preview.image_url:
        return PostImage(url=preview.image_url, alt=clean_inline(preview.image_alt))
    for candidate in entry.images:
        if candidate.url and candidate.url.lower().startswith(("http://", "https://")):
            if candidate.mime_type and not candidate.mime_type.startswith("image/"):
                continue
            return PostImage(
                url=candidate.url,
                alt=clean_inline(candidate.alt),
                width=candidate.width,
                height=candidate.height,
                mime_type=candidate.mime_type,
            )
    return None


def post_parts(post: Post) -> Parts:
    """The template's fields of `post`, for the fitter."""
    return Parts(
        url=post.link,
        title=post.title,
        summary=post.summary,
        hashtags=post.hashtags,
        author=post.author,
        feed_title=post.feed_title,
        published=(post.published or "")[:10],
        target=post.target or "",
    )
