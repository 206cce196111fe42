"""Media RSS alt text (bridge/feeds/mediaalt.py) is found however a feed declares the namespace: the quick look
at the bytes that spares most documents a second parse never misses a description, and neither does the look at
the fast path's tree that spares them the bytes."""

from __future__ import annotations

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from bridge.feeds import parse as parse_module
from bridge.feeds.fastpath import read_fast_with_tree
from bridge.feeds.mediaalt import describes, media_alt_texts
from bridge.feeds.parse import parse_feed

URL = "https://blog.example/feed.xml"
PICTURE = "https://blog.example/fox.jpg"
PADDING = " ".join(f'data-{n}="{"x" * 20}"' for n in range(20))  # declarations far into a long start tag


def document(rss_attributes: str, item_attributes: str, prefix: str) -> bytes:
    picture = f'<{prefix}content url="{PICTURE}" type="image/jpeg"><{prefix}description>A red fox</{prefix}description></{prefix}content>'
    return (f'<?xml version="1.0"?><rss version="2.0" {rss_attributes}><channel><title>t</title><link>https://blog.example/</link>'
            f'<item {item_attributes}><title>Fox</title><link>https://blog.example/fox</link>{picture}</item>'
            "</channel></rss>").encode()


@pytest.mark.parametrize(("rss_attributes", "item_attributes", "prefix"), [
    ('xmlns:media="http://search.yahoo.com/mrss/"', "", "media:"),
    ("xmlns:m = 'http://search.yahoo.com/mrss/'", "", "m:"),
    (f'{PADDING} xmlns:media="http://search.yahoo.com/mrss/"', "", "media:"),
    ("", f'{PADDING} xmlns:media="http://search.yahoo.com/mrss/"', "media:"),
    ('xmlns:media="http://search.yahoo.com/mrss/" xmlns:pic="http://search.yahoo.com/mrss/"', "", "pic:"),
    ('xmlns:media="https://search.yahoo.com/mrss"', "", "media:"),
])
def test_the_alt_text_is_found_however_the_namespace_is_declared(rss_attributes, item_attributes, prefix):
    entry = parse_feed(document(rss_attributes, item_attributes, prefix), URL).entries[0]
    assert [(image.url, image.alt) for image in entry.images if image.source == "media:content"] == [(PICTURE, "A red fox")]


_NAMESPACES = ["http://search.yahoo.com/mrss/", "https://search.yahoo.com/mrss", "http://search.yahoo.com/mrss/x",
               "http://example.com/ns"]
_PARTS = st.lists(st.sampled_from([
    '<m:content url="https://blog.example/a.jpg" type="image/jpeg"/>', '<n:content url="https://blog.example/b.jpg"/>',
    '<m:content url="https://blog.example/c.jpg"><m:description>C</m:description></m:content>',
    '<m:content url="https://blog.example/d.jpg"><n:title>D</n:title></m:content>',
    '<m:group><m:content url="https://blog.example/e.jpg"/><m:title type="html">&lt;b&gt;E&lt;/b&gt;</m:title></m:group>',
    "<m:description>item</m:description>", "<n:description>other</n:description>",
    '<content xmlns="http://search.yahoo.com/mrss/" url="https://blog.example/f.jpg"><title>F</title></content>',
]), max_size=4)


@settings(max_examples=300, deadline=None)
@given(m=st.sampled_from(_NAMESPACES), n=st.sampled_from(_NAMESPACES), items=st.lists(_PARTS, min_size=1, max_size=3))
def test_the_fast_paths_tree_gives_the_alt_text_the_bytes_give(m, n, items):
    body = "".join(f"<item><title>{number}</title><link>https://blog.example/{number}</link>{''.join(parts)}</item>"
                   for number, parts in enumerate(items))
    data = (f'<?xml version="1.0"?><rss version="2.0" xmlns:m="{m}" xmlns:n="{n}"><channel><title>t</title>'
            f"<link>https://blog.example/</link>{body}</channel></rss>").encode()
    fast = read_fast_with_tree(data, URL, "application/xml")
    assume(fast is not None)
    from_bytes = media_alt_texts(data, len(fast.result.entries))
    assert media_alt_texts(data, len(fast.result.entries), fast.root) == from_bytes
    if not describes(fast.root, fast.namespaces):
        assert not any(from_bytes or [])
    assert parse_module._map(fast.result, data, URL, None, fast) == parse_module._map(fast.result, data, URL, None)
