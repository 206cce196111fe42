"""Media RSS alt text (bridge/feeds/mediaalt.py) is found however a feed declares the namespace: the quick look
at the bytes that spares most documents a second parse never misses a description."""

from __future__ import annotations

import pytest

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
])
def test_the_alt_text_is_found_however_the_namespace_is_declared(rss_attributes, item_attributes, prefix):
    entry = parse_feed(document(rss_attributes, item_attributes, prefix), URL).entries[0]
    assert [(image.url, image.alt) for image in entry.images if image.source == "media:content"] == [(PICTURE, "A red fox")]
