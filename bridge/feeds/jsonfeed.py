"""JSON Feed 1.0 and 1.1 (https://jsonfeed.org/version/1.1), which feedparser 6 cannot read.

Leniencies, each seen in real feeds: a version URL with http://; an id given as a number (coerced to a
string, as the spec asks); `date_updated` for `date_modified`; dates without a time zone (taken as UTC);
content_html that was HTML-escaped once more (``&lt;p&gt;…``, unescaped once); 1.0's `author` object and
1.1's `authors` list (1.1 wins when both exist); items inherit the feed's authors and language.
`url` is the entry's link; `external_url` (the page a linkblog post points at) is the entry's target when it has
a `url` of its own (a link post), else the fallback link.
"""

from __future__ import annotations

import html
import json
import logging
import re
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import urljoin

from bridge.errors import FeedParseError
from bridge.language import normalise_language
from bridge.model import Entry, ParsedFeed
from bridge.unexpected import entry_left_out

from .htmltools import collapse_space, text_to_html, title_text, unique_terms
from .identity import canonical_link, entry_key, separate_shared_keys
from .images import ImageList, is_image_type

log = logging.getLogger("bridge.feeds")

_VERSION = re.compile(r"jsonfeed\.org/version/(\d+)(?:\.(\d+))?", re.IGNORECASE)
_ESCAPED_HTML = re.compile(r"^\s*&lt;[a-zA-Z!/]")
_SURROGATE = re.compile("[\ud800-\udfff]")
_URL_ENTITY = re.compile(r"&(?:amp|#0*38|#x0*26);", re.IGNORECASE)


def parse_json_feed(body: bytes, url: str, *, default_language: str | None = None) -> ParsedFeed:
    """A JSON Feed document -> ParsedFeed. Raises FeedParseError for invalid JSON or JSON that is not a feed."""
    complaint = None
    try:
        data = json.loads(body)
    except UnicodeDecodeError:
        try:
            data = json.loads(body.decode("utf-8", "replace"))
        except (ValueError, RecursionError) as exc:
            raise FeedParseError(f"{url}: not valid JSON ({exc})") from None
        complaint = "UnicodeDecodeError: JSON Feed is not valid UTF-8; undecodable bytes replaced"
    except (ValueError, RecursionError) as exc:
        raise FeedParseError(f"{url}: not valid JSON ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("items"), list):
        raise FeedParseError(f"{url}: JSON without an 'items' list is not a JSON Feed")
    version = data.get("version") if isinstance(data.get("version"), str) else ""
    match = _VERSION.search(version)
    if match:
        fmt = f"jsonfeed{match.group(1)}{match.group(2) or '0'}"
    else:
        fmt = "jsonfeed"
        complaint = complaint or f"JSON Feed version missing or unknown: {version!r}"
    home = _url(data.get("home_page_url"), url)
    feed_language = normalise_language(_str(data.get("language"))) or None
    feed_authors = _authors(data)
    entries = []
    for number, item in enumerate(data["items"]):
        if not isinstance(item, dict):
            continue
        try:
            entries.append(_entry(item, url, home, feed_language or normalise_language(default_language), feed_authors))
        except Exception as exc:  # one item nobody planned for is left out; the feed's other items are read
            complaint = complaint or entry_left_out(log, url, number, exc)
    return ParsedFeed(
        format=fmt,
        title=_title(_str(data.get("title"))),
        link=canonical_link(home) if home else None,
        language=feed_language or normalise_language(default_language),
        ttl_seconds=None,
        entries=separate_shared_keys(entries),
        bozo=complaint,
        hub=_websub_hub(data.get("hubs"), url),
        self_url=_url(data.get("feed_url"), url),
    )


def _websub_hub(hubs, base: str) -> str | None:
    """JSON Feed 1.1 `hubs`: the first of type WebSub (its spelling varies: WebSub, websub)."""
    for hub in hubs if isinstance(hubs, list) else []:
        if isinstance(hub, dict) and str(hub.get("type", "")).lower() == "websub":
            url = _url(hub.get("url"), base)
            if url:
                return url
    return None


def _str(value) -> str:
    if isinstance(value, str):
        # JSON's \ud800 escapes give lone surrogates, which no UTF-8 text (state, hashes, posts) can hold.
        return _SURROGATE.sub("\ufffd", value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return ""


def _list(value) -> list:
    return value if isinstance(value, list) else []


def _title(text: str) -> str:
    """JSON Feed titles are plain text, but generators put entities (and sometimes tags) in them."""
    return title_text(text, html_label=True)


def _url(value, base: str) -> str | None:
    text = _str(value).strip()
    if not text:
        return None
    try:
        absolute = urljoin(base, text)
    except ValueError:
        return None
    return absolute if absolute.startswith(("http://", "https://")) else None


def _target(external: str | None, item_url: str | None) -> str | None:
    """A link post's subject: `external_url` beside a `url` of its own. A WordPress plugin writes it HTML-escaped
    ("&#038;utm_source="), which would cut the query at a fragment: a link's "&" is never an entity."""
    if not external or not item_url:
        return None
    if _URL_ENTITY.search(external):
        external = html.unescape(external)
    return external if external != item_url else None


def _authors(obj: dict) -> list[str]:
    names: list[str] = []
    authors = obj.get("authors")
    if not isinstance(authors, list) or not authors:
        authors = [obj.get("author")] if isinstance(obj.get("author"), dict) else []
    for author in authors:
        if isinstance(author, dict):
            name = collapse_space(_str(author.get("name")))
            if name and name not in names:
                names.append(name)
    return names


def parse_date(value) -> datetime | None:
    """RFC 3339 (and the ISO 8601 variants seen in the wild) -> aware UTC; no zone means UTC; junk -> None."""
    text = _str(value).strip()
    if not text:
        return None
    try:
        parsed = datetime.fromisoformat(text.replace(" ", "T", 1) if re.match(r"^\d{4}-\d\d-\d\d \d", text) else text)
    except ValueError:
        try:
            parsed = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except (OverflowError, ValueError):
        return None


def _entry(item: dict, feed_url: str, home: str | None, language: str | None, feed_authors: list[str]) -> Entry:
    item_url = _url(item.get("url"), home or feed_url)
    external = _url(item.get("external_url"), home or feed_url)
    link_url = item_url or external
    link = canonical_link(link_url) if link_url else None
    base = link_url or home or feed_url
    title = _title(_str(item.get("title")))
    content = _str(item.get("content_html"))
    if content and "<" not in content and _ESCAPED_HTML.match(content):
        content = html.unescape(content)
    if not content.strip() and _str(item.get("content_text")).strip():
        content = text_to_html(_str(item.get("content_text")))
    summary = _str(item.get("summary")).strip()
    summary_html = text_to_html(summary) if summary else ""
    published = parse_date(item.get("date_published"))
    updated = parse_date(item.get("date_modified") or item.get("date_updated"))
    images = ImageList(base)
    images.add(_str(item.get("image")), "jsonfeed:image")
    images.add(_str(item.get("banner_image")), "jsonfeed:banner_image")
    for attachment in _list(item.get("attachments")):
        if isinstance(attachment, dict) and is_image_type(_str(attachment.get("mime_type"))):
            images.add(_str(attachment.get("url")), "attachment", alt=_str(attachment.get("title")) or "",
                       mime_type=_str(attachment.get("mime_type")))
    images.add_first_img(content, "content:img")
    images.add_first_img(summary_html, "summary:img")
    categories = unique_terms(collapse_space(_str(tag)) for tag in _list(item.get("tags")))
    identifier = _str(item.get("id"))
    return Entry(
        key=entry_key(identifier, link, title, _str(item.get("date_published")), content or summary),
        link=link,
        title=title,
        summary_html=summary_html,
        content_html=content,
        published=published,
        updated=updated,
        categories=categories,
        language=normalise_language(_str(item.get("language"))) or language,
        feed_language=language,
        authors=_authors(item) or list(feed_authors),
        images=images.items,
        target=_target(external, item_url),
    )
