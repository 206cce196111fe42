"""Every document of the shared corpus (../shared/corpus/feeds, listed in MANIFEST.tsv), fetched from a local
server with Fetcher and parsed with parse_feed.

The documents are third-party data and are used where they lie; without ../shared these tests skip.

Entry counts are MANIFEST's `entries` column (what feedparser 6.0.14 reads) with two documented differences:
* JSON Feed: feedparser reads none of the six (the quirks column says feedparser_entries=0); our own parser
  reads every item, and the `entries` column there is the item count — we match it and beat feedparser.
* Two feeds repeat an entry; parse_feed keeps the first of each key (KNOWN_DUPLICATES says which, and the
  test recounts the repeats in the raw XML so the exemption cannot hide a real loss).
broken-dylanharris-bad-prolog.rss (0 entries, not well-formed) must raise FeedParseError, nothing else.
"""

from __future__ import annotations

import asyncio
import csv
import json
import re
from datetime import UTC

import pytest

from bridge.config import BridgeSettings
from bridge.errors import FeedParseError
from bridge.feeds import Fetcher, canonical_link, parse_feed
from bridge.model import Entry
from tests.feedserver import CORPUS_DIR, CORPUS_MISSING, FeedServer, corpus_available

pytestmark = pytest.mark.skipif(not corpus_available(), reason=CORPUS_MISSING)


def _manifest() -> list[dict]:
    if not corpus_available():
        return []
    with open(CORPUS_DIR / "MANIFEST.tsv", newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


MANIFEST = _manifest()
NAMES = [row["file"] for row in MANIFEST]
ROWS = {row["file"]: row for row in MANIFEST}

# Entries the feed itself lists twice (same guid, or same link when there is no guid); the first is kept.
KNOWN_DUPLICATES = {
    "podcast-fallthrough-transistor.rss": 2,  # two episodes repeated verbatim, same guid
    "lang-uk-suspilne.rss": 1,  # one article twice (no guid, same link), the later copy with another date
}
UNPARSEABLE = {"broken-dylanharris-bad-prolog.rss"}

# Relative links, xml:base and bare-host links: where the entry links must point. {base} is the local server.
LINK_PATTERNS = {
    "relative-tpm-entry-links.atom": r"{base}/(?:livewire|edblog|news|muckraker|cafe|dc|election|opinion|features|morning-memo|prime|\w[\w-]*)/[\w-]+",
    "relative-neverwinter.rss": r"{base}/en/games/neverwinter/news/detail/\d+-",
    "hugo-relative-links.rss": r"{base}/blog/[\w.-]+/",
    "jekyll-qemu-relative.atom": r"{base}/20\d\d/\d\d/\d\d/[\w-]+/",
    "xmlbase-ongoing-tbray.atom": r"http://www\.tbray\.org/ongoing/When/\d+x/\d{4}/\d\d/\d\d/[\w-]+",
    "jekyll-coghlan-schemeless-links.rss": r"http://coghlan\.me/[\w-]+/",
}

# Legacy encodings and mis-declared documents: real words that must come out right.
EXPECTED_TEXT = {
    "lang-ru-ibash-windows1251.rss": ["Цитата", "есть у кого"],
    "lang-de-golem-iso8859-1.rss": ["für", "Sicherheitslücke", "Über"],
    "broken-cerclepsy-no-encoding-decl.rss": ["criminalité", "Perturbateurs endocriniens", "européens"],
    "broken-uol-undeclared-cp1252.rss": ["simulações", "inquérito", "São"],
    "rdf-davidbau-movabletype-latin1.rdf": ["My Family's Classical Chinese Genealogy"],
    "broken-eliotjones-utf16-declared.rss": ["Corporación", "So you want to parse a PDF?"],
    "rdf-heise-rss090-de.rdf": ["Vorsichtsmaßnahmen", "übernimmt"],
    "lang-uk-suspilne.rss": ["Торгівля між Росією"],
    "lang-zh-geekpark.rss": ["充电桩"],
    "lang-ur-bbcurdu-rtl.rss": ["امریکی"],
    "lang-fr-lemonde.rss": ["Maëlys", "médaille"],
    "hatena-lambdacocktail-ja.rss": ["なぜDBから引くときに"],
    "jsonfeed-3960-v1.1-de.json": ["Frank Boës", "„Sabine“ am Flughafen Amsterdam"],
    "peertube-framatube-fr.rss": ["neutralité"],
}
# UTF-8 read as a single-byte code page ("Ã©", "â€™", "Ð¦"), or replacement characters
MOJIBAKE = re.compile(
    "[ÃÂÐÑ][\u0080-\u00bf\u2013-\u203a\u20ac\u0152\u0153\u0160\u0161\u0178\u017d\u017e\u0192\u02c6\u02dc]|â€|\ufffd"
)
LANGUAGE_TAG = re.compile(r"^[a-z]{2,3}(?:-[A-Z][a-z]{3})?(?:-(?:[A-Z]{2}|\d{3}))?(?:-[a-z0-9]{1,8})*$")


@pytest.fixture(scope="module")
def corpus_server():
    with FeedServer(corpus_dir=CORPUS_DIR) as server:
        yield server


@pytest.fixture(scope="module")
def fetched(corpus_server):
    """name -> (FetchResult, ParsedFeed | FeedParseError); each document fetched and parsed once."""
    cache = {}

    def get(name):
        if name not in cache:
            async def go():
                async with Fetcher(BridgeSettings()) as fetcher:
                    return await fetcher.fetch(corpus_server.corpus_url(name))

            result = asyncio.run(go())
            try:
                parsed = parse_feed(result.body, result.url, content_type=result.content_type)
            except FeedParseError as exc:
                parsed = exc
            cache[name] = (result, parsed)
        return cache[name]

    return get


def _raw_duplicates(data: bytes) -> int:
    """Items beyond the first with the same guid (or link, without guid), counted in the raw XML."""
    identities = []
    for item in re.findall(rb"<item\b.*?</item>", data, re.DOTALL):
        found = re.search(rb"<guid[^>]*>\s*(.*?)\s*</guid>", item, re.DOTALL) or re.search(rb"<link>\s*(.*?)\s*</link>", item, re.DOTALL)
        identities.append(found.group(1) if found else item)
    return len(identities) - len(set(identities))


def _text(feed) -> str:
    parts = [feed.title]
    for entry in feed.entries:
        parts += [entry.title, entry.summary_html, entry.content_html, *entry.categories, *entry.authors]
    return "\n".join(parts)


def test_manifest_lists_every_document():
    files = {p.name for p in CORPUS_DIR.iterdir() if p.name != "MANIFEST.tsv"}
    assert set(NAMES) == files
    assert len(NAMES) == 70


@pytest.mark.parametrize("name", NAMES)
def test_corpus_document(name, fetched, corpus_server):
    row = ROWS[name]
    result, feed = fetched(name)
    assert result.status == 200 and result.body == (CORPUS_DIR / name).read_bytes()
    if name in UNPARSEABLE:
        assert isinstance(feed, FeedParseError), "a document with no readable entry is a FeedParseError"
        assert int(row["entries"]) == 0
        return
    assert not isinstance(feed, Exception), feed

    # counts
    expected = int(row["entries"]) - KNOWN_DUPLICATES.get(name, 0)
    assert len(feed.entries) == expected
    if name in KNOWN_DUPLICATES:
        assert _raw_duplicates(result.body) == KNOWN_DUPLICATES[name]
    if row["format"].startswith("jsonfeed"):
        feedparser_count = int(re.search(r"feedparser_entries=(\d+)", row["notable_quirks"]).group(1))
        assert len(feed.entries) > feedparser_count
        assert feed.format in ("jsonfeed10", "jsonfeed11")
    if row["bozo_exception"].startswith("SAXParseException") and not row["format"].startswith("jsonfeed"):
        assert feed.bozo and "SAXParseException" in feed.bozo  # flawed but used

    # identity
    keys = [entry.key for entry in feed.entries]
    assert all(isinstance(key, str) and key.strip() == key and key for key in keys)
    assert len(set(keys)) == len(keys), "keys are unique within a feed"

    for entry in feed.entries:
        if entry.link is None:
            # only an item that carries nothing at all (broken-cerclepsy has one: empty title, link and description)
            assert not (entry.title or entry.summary_html or entry.content_html), entry
            assert entry.key.startswith("sha256:")
            continue
        assert re.match(r"^https?://[^/\s]+/", entry.link), entry.link
        assert canonical_link(entry.link) == entry.link
        for moment in (entry.published, entry.updated):
            assert moment is None or moment.tzinfo == UTC
        assert entry.language is None or LANGUAGE_TAG.match(entry.language), entry.language
        urls = [image.url for image in entry.images]
        assert len(urls) == len(set(urls))
        assert all(re.match(r"^https?://", url) for url in urls)
        assert len({c.casefold() for c in entry.categories}) == len(entry.categories)
        # no markup left in titles; a lone "<i>" the writer typed as text is kept (jsonfeed-3960: "Die Rückkehr
        # von <i> und <b>"), but nothing closes a tag or carries attributes
        assert not re.search(r"</(?:p|a|b|i|em|strong|span|div)>|<(?:p|a|span|div|img)\s[^>]*>|<br\s*/?>",
                             entry.title), entry.title
        assert Entry.from_dict(json.loads(json.dumps(entry.to_dict()))) == entry
    links = [entry.link for entry in feed.entries if entry.link]
    assert len(links) >= len(feed.entries) - 1
    assert feed.link is None or feed.link.startswith(("http://", "https://"))
    assert feed.language is None or LANGUAGE_TAG.match(feed.language)

    # where relative links must land
    if name in LINK_PATTERNS:
        pattern = re.compile(LINK_PATTERNS[name].replace("{base}", re.escape(corpus_server.base_url)))
        for link in links:
            assert pattern.match(link), link
            assert "/corpus/" not in link

    # text: right characters, no mojibake
    text = _text(feed)
    for word in EXPECTED_TEXT.get(name, []):
        assert word in text, word
    assert not MOJIBAKE.search(text), MOJIBAKE.search(text)


# --- what individual feeds must show -------------------------------------------------------------------------


def parsed(fetched, name):
    _result, feed = fetched(name)
    return feed


def test_medium_links_lose_tracking_and_keys_are_guids(fetched):
    feed = parsed(fetched, "medium-hodlhodl-user.rss")
    for entry in feed.entries:
        assert "source=" not in entry.link and "?" not in entry.link
        assert entry.key.startswith("https://medium.com/p/")
    assert feed.link == "https://medium.com/@hodlhodl"


def test_lemonde_xtor_removed_and_images_from_enclosures(fetched):
    feed = parsed(fetched, "lang-fr-lemonde.rss")
    assert all("xtor" not in e.link for e in feed.entries)
    assert all(e.images and e.images[0].source == "enclosure" for e in feed.entries)
    # one enclosure is a .jpg labelled text/html: still the image, but its wrong type is not passed on
    assert [e.images[0].mime_type for e in feed.entries].count(None) == 1
    assert all(e.images[0].mime_type in ("image/jpeg", None) for e in feed.entries)


def test_simonwillison_tracking_fragment_dropped_but_scripting_fragments_kept(fetched):
    assert all("#" not in e.link for e in parsed(fetched, "django-simonwillison.atom").entries)
    scripting = parsed(fetched, "scriptingnews-oldschool-untitled.rss")
    assert all(re.search(r"\.html#a\d+$", e.link) for e in scripting.entries if e.link != "http://scripting.com/")
    assert sum(1 for e in scripting.entries if not e.title) >= 37  # untitled microposts stay untitled


def test_feedburner_origlink_preferred(fetched):
    feed = parsed(fetched, "blogger-feedburner.atom")
    assert all("feedproxy" not in e.link and "blogspot.com" in e.link for e in feed.entries)


def test_mastodon_video_labelled_image_is_not_an_image(fetched):
    feed = parsed(fetched, "mastodon-chriscoyier.rss")
    urls = [image.url for entry in feed.entries for image in entry.images]
    assert urls and not any(url.endswith(".mp4") for url in urls)
    assert all(entry.title == "" for entry in feed.entries)


def test_wordpress_com_gravatar_is_not_the_image(fetched):
    feed = parsed(fetched, "wordpress-com-telescoper.rss")
    images = [image for entry in feed.entries for image in entry.images]
    assert images and not any("gravatar" in image.url for image in images)
    with_thumb = [e for e in feed.entries if any(i.source == "media:thumbnail" for i in e.images)]
    assert len(with_thumb) == 8 and all(e.images[0].source == "media:thumbnail" for e in with_thumb)


def test_dates(fetched):
    assert all(e.published is None for e in parsed(fetched, "broken-uol-undeclared-cp1252.rss").entries)  # 'Seg, 24 Set'
    bsky = parsed(fetched, "bluesky-kaedotcom-excerpt.rss").entries[0]
    assert bsky.published.isoformat() == "2026-01-14T16:33:00+00:00"  # '14 Jan 2026 16:33 +0000'
    curt = parsed(fetched, "jsonfeed-curtclifton-v1-minified.json").entries[0]
    assert curt.published.isoformat() == "2018-01-06T08:00:00+00:00"  # no zone given: UTC
    ongoing = parsed(fetched, "xmlbase-ongoing-tbray.atom").entries[0]
    assert ongoing.published.isoformat() == "2006-12-12T20:00:00+00:00"  # -08:00 converted
    assert all(e.published is None for e in parsed(fetched, "rdf-heise-rss090-de.rdf").entries)  # RSS 0.90: no dates


def test_languages_and_ttl(fetched):
    assert parsed(fetched, "relative-neverwinter.rss").language == "en-US"  # 'en_US'
    assert parsed(fetched, "hatena-lambdacocktail-ja.atom").entries[0].language == "ja"  # xml:lang
    assert parsed(fetched, "jsonfeed-3960-v1.1-de.json").entries[0].language == "de-DE"
    assert parsed(fetched, "lang-ur-bbcurdu-rtl.rss").ttl_seconds == 900  # <ttl>15</ttl>
    assert parsed(fetched, "ghost-404media.rss").ttl_seconds == 3600
    assert parsed(fetched, "medium-hodlhodl-user.rss").ttl_seconds is None


def test_titles_and_authors(fetched):
    assert parsed(fetched, "jekyll-localhost-selflink.atom").title == "Science & technology experiments"
    assert "\n" not in parsed(fetched, "tumblr-sarahcandersen.rss").title
    assert parsed(fetched, "bearblog-killjoy.rss").entries[0].authors == ["killjoy"]  # <author>hidden (killjoy)
    assert parsed(fetched, "bearblog-herman.atom").entries[0].authors == ["herman"]
    titles = [e.title for e in parsed(fetched, "broken-oscard0m-unescaped-amp.rss").entries]
    assert any("Record, replay & measure" in title for title in titles)  # the unescaped & survives


def test_summary_and_content_are_not_duplicated(fetched):
    for name in ("blogger-quiltville.atom", "medium-hodlhodl-user.rss"):  # content only
        assert all(e.content_html and not e.summary_html for e in parsed(fetched, name).entries)
    for name in ("tumblr-sarahcandersen.rss", "hugo-drewolson.rss"):  # summary only
        assert all(e.summary_html and not e.content_html for e in parsed(fetched, name).entries)
    ghost = parsed(fetched, "ghost-404media.rss").entries  # both
    assert all(e.summary_html and e.content_html and e.summary_html != e.content_html for e in ghost)
    youtube = parsed(fetched, "youtube-l2inc-channel.atom").entries[0]  # plain text keeps its paragraphs
    assert youtube.summary_html.startswith("<p>") and "<br>" in youtube.summary_html


def test_bare_host_and_relative_ids(fetched, corpus_server):
    coghlan = parsed(fetched, "jekyll-coghlan-schemeless-links.rss")
    assert coghlan.link == "http://coghlan.me/"
    assert all(e.key.startswith("http://coghlan.me/") for e in coghlan.entries)
    hugo = parsed(fetched, "hugo-relative-links.rss")
    assert hugo.link == corpus_server.url("/blog/")


def test_json_feed_linkblog_uses_item_url(fetched):
    feed = parsed(fetched, "jsonfeed-daringfireball-v1.json")
    assert all(e.link.startswith("https://daringfireball.net/") for e in feed.entries)
    humane = parsed(fetched, "jsonfeed-humanwhocodes-v1.json").entries[0]
    assert humane.content_html.startswith("<p>")  # content_html that was escaped twice is unescaped once
    assert humane.summary_html.startswith("<p>Supabase generates")
