"""The data that flows between the steps: feeds in -> Entry -> render -> payload -> publish.

Everything here is plain data that round-trips through JSON (state rows, golden files, `--json`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class ImageCandidate:
    """An image the entry offers, best first: media:thumbnail, media:content, enclosure, first <img>, JSON Feed image."""

    url: str
    alt: str = ""
    source: str = ""
    width: int | None = None
    height: int | None = None
    mime_type: str | None = None


@dataclass
class Entry:
    key: str
    link: str | None
    title: str = ""
    summary_html: str = ""
    content_html: str = ""
    published: datetime | None = None
    updated: datetime | None = None
    categories: list[str] = field(default_factory=list)
    language: str | None = None  # the entry's own language, else the one its feed gives every entry
    authors: list[str] = field(default_factory=list)
    images: list[ImageCandidate] = field(default_factory=list)
    # Categories nearly every entry of the document carried when this one was read (bridge.feeds.feedwide)
    feed_wide_categories: list[str] = field(default_factory=list)
    # The feed's language (or the parse's default): a language equal to it was not declared by the entry itself,
    # so a confident detection may overrule it (bridge/render/language.py).
    feed_language: str | None = None
    # A link post's subject: the article it points at (JSON Feed external_url; an RSS/Atom link off-site beside
    # a permalink on the site), when `link` is the writer's own permalink. The post's card goes to the target; the permalink stays in the text.
    target: str | None = None

    def to_dict(self) -> dict:
        # By hand rather than dataclasses.asdict, whose deep copies were a tenth of a cold poll's time.
        return {
            "key": self.key,
            "link": self.link,
            "title": self.title,
            "summary_html": self.summary_html,
            "content_html": self.content_html,
            "published": self.published.isoformat() if self.published else None,
            "updated": self.updated.isoformat() if self.updated else None,
            "categories": list(self.categories),
            "language": self.language,
            "authors": list(self.authors),
            "images": [dict(vars(image)) for image in self.images],
            "feed_wide_categories": list(self.feed_wide_categories),
            "feed_language": self.feed_language,
            "target": self.target,
        }

    @classmethod
    def from_dict(cls, data: dict) -> "Entry":
        data = dict(data)
        for name in ("published", "updated"):
            if data.get(name):
                data[name] = datetime.fromisoformat(data[name])
        data["images"] = [ImageCandidate(**image) for image in data.get("images") or []]
        return cls(**data)


@dataclass
class ParsedFeed:
    """One parsed feed document."""

    format: str  # rss20, rss10, rss090, atom10, jsonfeed11, ...
    title: str = ""
    link: str | None = None
    language: str | None = None
    ttl_seconds: int | None = None  # RSS <ttl>, converted
    entries: list[Entry] = field(default_factory=list)
    bozo: str | None = None  # the parser's complaint about a flawed but usable document
    hub: str | None = None  # a WebSub hub the document names (<link rel="hub">, JSON Feed hubs)
    self_url: str | None = None  # the document's own URL as it names it (rel="self", feed_url): the WebSub topic
