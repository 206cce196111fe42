"""Photo posts: which entries are mostly pictures, which pictures they carry, and the placeholder text that
photo platforms put where a title or an opening line would be. Pure.

- A placeholder title ("Photo", "Video", "Untitled"... -- Tumblr titles every photo post "Photo") says nothing:
  it is dropped, and the post is made like a title-less one.
- A Tumblr reblog opens with the reblogged blog's name and a colon ("storybookprincess:") in its own paragraph,
  marked class="tumblr_blog" in the HTML: that line is not the writer's text and is dropped (also from a title
  the feed made of the text's first words).
- A photo post is an entry with at least one usable picture of its own (an <img> of its text, a JSON Feed image
  attachment; for an untitled entry also a media:content or enclosure image -- never a media:thumbnail, which
  is a video's or an article's preview) and little text: a placeholder title, or at most PHOTO_POST_MAX_TEXT
  characters in its whole HTML (a title-less entry: that much a picture, a caption each), not an excerpt ("…", "[…]", "Read more" at the end: the article is elsewhere).
- Image modes (the `images` post setting): "auto" attaches a photo post's pictures natively and gives every
  other entry its link card; "attach" does the same and on Mastodon also attaches an article's image (what
  attach_image = true did: Mastodon then shows no link card; Bluesky's card shows the image anyway); "card"
  always makes a link card; "none" makes a card without any image.
"""

from __future__ import annotations

import html
import re
from itertools import islice
from urllib.parse import urlsplit

from bridge.feeds.htmltools import iter_img_tags
from bridge.feeds.images import ImageList
from bridge.model import Entry
from bridge.render.limits import MIN_IMAGE_HEIGHT, MIN_IMAGE_WIDTH
from bridge.render.text import clean_inline

IMAGE_MODES = ("auto", "attach", "card", "none")
MAX_PHOTOS = 4  # Bluesky's most; Mastodon's default max_media_attachments is 4 too
PHOTO_POST_MAX_TEXT = 300  # our choice: a caption, not an article (characters of text a picture)
IMG_SCAN_LIMIT = 40  # <img> tags looked at per fragment: a gallery's first pictures are the ones posted
PLACEHOLDER_TITLES = frozenset({
    "photo", "photos", "video", "audio", "image", "images", "picture", "untitled", "no title", "(untitled)",
    "(no title)", "[no title]", "quote", "link", "chat", "answer",
})
# Where a feed names its own pictures (entry.images sources); media:thumbnail and itunes:image are previews.
_OWN_IMAGE_SOURCES = frozenset({"media:content", "enclosure", "attachment"})
_TITLED_IMAGE_SOURCES = frozenset({"attachment"})
_TAG = re.compile(r"<[^>]*>")
_EXCERPT_END = re.compile(r"(?:…|\.\.\.|\[…\]|\[\.\.\.\]|read more|continue reading|more\s*»|»)\W*$", re.IGNORECASE)
# Not pictures, though an <img> may point at them: Tumblr's .gifv is a video page.
_NOT_A_PICTURE = re.compile(r"\.(?:gifv|mp4|m4v|webm|mov|svg)$", re.IGNORECASE)
_HANDLE_LINE = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?:", re.IGNORECASE)
_REBLOG_MARK = 'tumblr_blog'


def is_placeholder_title(title: str) -> bool:
    return " ".join(title.split()).casefold() in PLACEHOLDER_TITLES


def reblog_handles(entry: Entry) -> bool:
    """Whether the entry's HTML marks reblog attributions (Tumblr's class="tumblr_blog")."""
    return _REBLOG_MARK in entry.summary_html or _REBLOG_MARK in entry.content_html


def drop_reblog_handles(body: str, title: str, entry: Entry) -> tuple[str, str]:
    """(body, title) without the leading "handle:" paragraphs of a reblog chain."""
    if not body or not reblog_handles(entry):
        return body, title
    while True:
        first, _, rest = body.partition("\n\n")
        if not _HANDLE_LINE.fullmatch(first.strip()):
            return body, title
        handle = first.strip()
        body = rest.lstrip()
        if title.startswith(handle):  # "sarahseeandersen:Hi friends!..." -- a title made of the text
            title = title[len(handle):].lstrip()


def photos(entry: Entry, titled: bool, limit: int = MAX_PHOTOS) -> list[dict]:
    """The entry's own pictures, best first, as PostImage fields: feed-declared media, then the <img>s of its
    text with their alt text. Pixels, avatars, videos and pictures declared smaller than a card image are out.
    A titled entry's media:content is its article's feature image (Ghost, WordPress): not a photo of its own."""
    found = ImageList(entry.link)
    own_sources = _TITLED_IMAGE_SOURCES if titled else _OWN_IMAGE_SOURCES
    for candidate in entry.images:
        if candidate.source in own_sources:
            found.add(candidate.url, candidate.source, alt=candidate.alt, width=candidate.width,
                      height=candidate.height, mime_type=candidate.mime_type)
    for fragment, source in ((entry.content_html, "content:img"), (entry.summary_html, "summary:img")):
        for attrs in islice(iter_img_tags(fragment), IMG_SCAN_LIMIT):
            found.add(attrs.get("src") or attrs.get("data-src") or "", source, alt=clean_inline(attrs.get("alt", "")),
                      width=attrs.get("width") or attrs.get("data-orig-width"),
                      height=attrs.get("height") or attrs.get("data-orig-height"))
    usable = [image for image in found.items if _usable(image)]
    return [{"url": image.url, "alt": clean_inline(image.alt), "width": image.width, "height": image.height,
             "mime_type": image.mime_type} for image in usable[:limit]]


def is_photo_post(entry: Entry, pictures: list, titled: bool, placeholder_title: bool) -> bool:
    if not pictures:
        return False
    if placeholder_title:
        return True
    # The markup stripped by a plain regex: only a length is wanted, and only of entries that have pictures.
    text = max((" ".join(html.unescape(_TAG.sub(" ", fragment)).split())
                for fragment in (entry.content_html, entry.summary_html)), key=len)
    budget = PHOTO_POST_MAX_TEXT if titled else PHOTO_POST_MAX_TEXT * len(pictures)
    return len(text) <= budget and not _EXCERPT_END.search(text)


def big_enough(width: int | None, height: int | None) -> bool:
    """Unknown sizes pass: most feeds do not declare them (the fetched image is checked again)."""
    return not ((width is not None and width < MIN_IMAGE_WIDTH) or (height is not None and height < MIN_IMAGE_HEIGHT))


def _usable(image) -> bool:
    if image.mime_type and not image.mime_type.startswith("image/"):
        return False
    if image.mime_type == "image/svg+xml":
        return False
    return not _NOT_A_PICTURE.search(urlsplit(image.url).path) and big_enough(image.width, image.height)
