"""Synthetic feeds for the benchmark: realistic RSS 2.0 and Atom documents, deterministic per (feed, generation).

Each document holds `ENTRIES` entries of a few KB of HTML (paragraphs, links, a list, an inline image),
categories and a media:content / enclosure image, like a WordPress, Ghost or Substack feed. A feed's
"generation" is how many times it has gained a new entry: generation g holds entries g .. g+19, newest first,
so bumping it adds exactly one new entry and drops the oldest.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from html import escape

ENTRIES = 20
_WORDS = (
    "bridge river morning light garden letter winter summer reading writing coffee market harbour station "
    "island valley forest lantern journey kitchen window orchard meadow thunder compass archive chapter "
    "quiet bright distant careful simple hidden gentle curious ancient modern honest patient"
).split()
_TOPICS = ["Essays", "Travel", "Books", "Photography", "Cooking", "Technology", "Music", "Gardening", "Notes"]
# Entry n is published at EPOCH + 7n hours: the first document's newest entry a few hours old, so the entries a
# change cycle adds are new (not older than max_post_age) and get queued, as a writer's fresh posts do.
EPOCH = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=7 * ENTRIES)


def _sentence(rng: random.Random) -> str:
    words = [rng.choice(_WORDS) for _ in range(rng.randint(8, 18))]
    return " ".join(words).capitalize() + "."


def _entry_html(rng: random.Random, link: str, image: str) -> str:
    parts = []
    for paragraph in range(rng.randint(5, 8)):
        sentences = " ".join(_sentence(rng) for _ in range(rng.randint(3, 5)))
        if paragraph == 1:
            sentences += f' See <a href="{link}#more">the notes</a> and <a href="https://example.org/ref/{rng.randint(1, 999)}">a reference</a>.'
        parts.append(f"<p>{sentences}</p>")
        if paragraph == 2:
            parts.append(f'<figure><img src="{image}" alt="{escape(_sentence(rng))}" width="1200" height="800"/>'
                         f"<figcaption>{_sentence(rng)}</figcaption></figure>")
        if paragraph == 3:
            parts.append("<ul>" + "".join(f"<li><strong>{rng.choice(_WORDS)}</strong> {_sentence(rng)}</li>" for _ in range(3)) + "</ul>")
    return "\n".join(parts)


def _entry(feed: int, number: int, base: str):
    rng = random.Random(feed * 1_000_003 + number)
    link = f"{base}/posts/{number}-{rng.choice(_WORDS)}-{rng.choice(_WORDS)}"
    image = f"{base}/images/{number}.jpg"
    published = EPOCH + timedelta(hours=number * 7, minutes=feed % 60)
    return {
        "title": _sentence(rng).rstrip(".").title(),
        "link": link,
        "guid": f"{base}/?p={number}",
        "published": published,
        "categories": rng.sample(_TOPICS, 3),
        "image": image,
        "html": _entry_html(rng, link, image),
        "summary": _sentence(rng) + " " + _sentence(rng),
    }


def rss(feed: int, generation: int, base: str) -> bytes:
    items = []
    for number in range(generation + ENTRIES - 1, generation - 1, -1):
        e = _entry(feed, number, base)
        categories = "".join(f"<category><![CDATA[{c}]]></category>" for c in e["categories"])
        items.append(
            f"<item><title>{escape(e['title'])}</title><link>{e['link']}</link>"
            f'<guid isPermaLink="false">{e["guid"]}</guid>'
            f"<pubDate>{format_datetime(e['published'])}</pubDate><dc:creator>Writer {feed}</dc:creator>"
            f"{categories}<description><![CDATA[{e['summary']}]]></description>"
            f"<content:encoded><![CDATA[{e['html']}]]></content:encoded>"
            f'<media:content url="{e["image"]}" medium="image" width="1200" height="800"/>'
            f"</item>"
        )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/" '
        'xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:media="http://search.yahoo.com/mrss/">'
        f"<channel><title>Synthetic blog {feed}</title><link>{base}/</link>"
        f"<description>Benchmark feed {feed}</description><language>en</language>"
        + "".join(items)
        + "</channel></rss>\n"
    ).encode()


def atom(feed: int, generation: int, base: str) -> bytes:
    entries = []
    for number in range(generation + ENTRIES - 1, generation - 1, -1):
        e = _entry(feed, number, base)
        categories = "".join(f'<category term="{c}"/>' for c in e["categories"])
        stamp = e["published"].isoformat()
        entries.append(
            f"<entry><title>{escape(e['title'])}</title><link rel=\"alternate\" href=\"{e['link']}\"/>"
            f"<id>{e['guid']}</id><published>{stamp}</published><updated>{stamp}</updated>"
            f"<author><name>Writer {feed}</name></author>{categories}"
            f'<summary type="html">{escape(e["summary"])}</summary>'
            f'<content type="html">{escape(e["html"])}</content>'
            f'<link rel="enclosure" type="image/jpeg" href="{e["image"]}"/></entry>'
        )
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n<feed xmlns="http://www.w3.org/2005/Atom">'
        f"<title>Synthetic blog {feed}</title><link href=\"{base}/\"/><id>{base}/</id>"
        f"<updated>{EPOCH.isoformat()}</updated>" + "".join(entries) + "</feed>\n"
    ).encode()


def document(feed: int, generation: int, base: str) -> bytes:
    """Every fourth feed is Atom, the rest RSS 2.0."""
    return atom(feed, generation, base) if feed % 4 == 3 else rss(feed, generation, base)
