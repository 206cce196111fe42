"""Text a feed puts inside an embed's fallback, or in a body written as a whole HTML document, is the writer's
text: it reaches the post. A fallback that only says the browser cannot play the embed does not."""

from __future__ import annotations

import pytest

from bridge.feeds import parse_feed
from bridge.render import render_post
from bridge.render.text import html_to_text
from tests.render_corpus import settings


@pytest.mark.parametrize("html, text", [
    ('<p>Intro.</p><object data="talk.swf"><p>Read the <a href="/t">transcript of the talk</a>.</p></object>',
     "Intro.\n\nRead the transcript of the talk."),
    ('<iframe src="https://player.example/1">The talk, in words: bridges are hard.</iframe>',
     "The talk, in words: bridges are hard."),
    ('<video src="v.mp4"><p>The video shows a heron <b>landing</b>.</p><script>track()</script></video>',
     "The video shows a heron landing."),
    ('<p>Before.</p><video src="v.mp4">Your browser does not support the video tag.</video><p>After.</p>',
     "Before.\n\nAfter."),
    ('<iframe src="x"><p>Sorry, your browser doesn\'t support embedded videos.</p></iframe><p>After.</p>', "After."),
])
def test_fallback_text_of_embeds(html, text):
    assert html_to_text(html).text == text


@pytest.mark.parametrize("body", [
    b"<![CDATA[<html><head><title>Page</title></head><body><p>Hello from a whole page.</p></body></html>]]>",
    b"<![CDATA[<!DOCTYPE html><html><body><p>Hello from a whole page.</p></body></html>]]>",
    b"&lt;html&gt;&lt;body&gt;&lt;p&gt;Hello from a whole page.&lt;/p&gt;&lt;/body&gt;&lt;/html&gt;",
])
@pytest.mark.parametrize("well_formed", [True, False])
def test_whole_html_document_body_keeps_its_text(body, well_formed):
    channel = b"<title>S</title>" if well_formed else b"<title>S&nbsp;</title>"  # ill-formed: the lenient parser
    document = (b'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>' + channel +
                b"<link>https://s.example/</link><item><title>T</title><link>https://s.example/a</link>"
                b"<description>" + body + b"</description></item></channel></rss>")
    entry = parse_feed(document, "https://s.example/feed").entries[0]
    assert render_post(entry, settings()).summary == "Hello from a whole page."
