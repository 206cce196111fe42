"""What a poll stores for each entry (bridge/feeds/prepare.py): the content hash is the one every earlier
version stored, so an entry recorded before is not taken for a changed one; the stored JSON gives back the very
entry; a worker process hands back what reading the document here gives."""

from __future__ import annotations

import hashlib
import json
import pickle
from datetime import UTC, datetime, timedelta, timezone

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from bench import synthetic
from bridge.feeds.prepare import PreparedEntry, entry_content_hash, entry_data, read_document
from bridge.model import Entry, ImageCandidate

URL = "https://blog.example/feed.xml"


def stored_hash(entry: Entry) -> str:
    """The hash as bridge has stored it since its first version."""
    material = json.dumps(
        [entry.title, entry.link, entry.summary_html, entry.content_html, sorted(entry.categories)], ensure_ascii=False
    )
    return hashlib.sha256(material.encode()).hexdigest()


# Any text a feed can carry: control characters, quotes, backslashes, non-BMP characters (no lone surrogates:
# a document holding one cannot be stored at all, as before).
text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)


@settings(max_examples=300, deadline=None)
@given(title=text, link=st.none() | text, summary=text, content=text, categories=st.lists(text, max_size=4))
def test_the_content_hash_is_the_one_stored_before(title, link, summary, content, categories):
    entry = Entry(key="k", link=link, title=title, summary_html=summary, content_html=content, categories=categories)
    assert entry_content_hash(entry) == stored_hash(entry)


def test_the_content_hash_of_real_documents_is_the_one_stored_before():
    for body in (synthetic.rss(1, 0, "https://blog.example"), synthetic.atom(3, 2, "https://blog.example")):
        prepared = read_document(body, URL, None)
        assert len(prepared.entries) == synthetic.ENTRIES
        assert all(item.content_hash == stored_hash(item.entry) for item in prepared.entries)


# UTC, as the parsers give (orjson writes those itself), and any other zone or none
moments = st.none() | st.datetimes(timezones=st.just(UTC)) | st.datetimes(timezones=st.none() | st.timezones())
images = st.lists(st.builds(ImageCandidate, url=text, alt=text, source=text, width=st.none() | st.integers(0, 10**6),
                            height=st.none() | st.integers(0, 10**6), mime_type=st.none() | text), max_size=3)


@settings(max_examples=300, deadline=None)
@given(entry=st.builds(Entry, key=text, link=st.none() | text, title=text, summary_html=text, content_html=text,
                       published=moments, updated=moments, categories=st.lists(text, max_size=3),
                       language=st.none() | text, authors=st.lists(text, max_size=2), images=images,
                       feed_wide_categories=st.lists(text, max_size=2), feed_language=st.none() | text,
                       target=st.none() | text))
def test_the_stored_json_is_to_dict_written_compactly(entry):
    # entry_data has orjson write the dataclass itself, not the dict to_dict builds
    assert entry_data(entry) == orjson.dumps(entry.to_dict()).decode()


def test_the_stored_json_gives_back_the_entry():
    entry = Entry(key="k", link="https://blog.example/p/1", title='A "quoted" title \\ é 日 😀', summary_html="<p>s</p>",
                  content_html="<p>c\n\t</p>", published=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
                  updated=datetime(2026, 1, 3, tzinfo=timezone(timedelta(hours=2))), categories=["b", "a"],
                  language="fr", authors=["Ann"], feed_language="en", target="https://elsewhere.example/",
                  images=[ImageCandidate(url="https://blog.example/i.jpg", alt="alt", source="media:content", width=1200,
                                         height=800, mime_type="image/jpeg")])
    item = PreparedEntry.of(entry)
    assert Entry.from_dict(json.loads(item.data)) == entry
    assert (item.key, item.link, item.published_at, item.appeared_at) == \
        ("k", entry.link, entry.published.timestamp(), entry.published.timestamp())
    assert item.host == "blog.example"


def test_a_worker_hands_back_the_same_entries_without_sending_them_twice():
    prepared = read_document(synthetic.rss(1, 0, "https://blog.example"), URL, None)
    received = pickle.loads(pickle.dumps(prepared))  # as from a worker process (bridge/feeds/pool.py)
    assert received == prepared
    assert [item.entry for item in received.entries] == [item.entry for item in prepared.entries]
    assert len(pickle.dumps(prepared)) < 1.2 * sum(len(item.data) for item in prepared.entries)
