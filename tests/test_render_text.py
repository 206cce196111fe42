"""HTML -> plain text and boilerplate removal (bridge.render.text), on small hand-written HTML."""

from __future__ import annotations

import pytest

from bridge.render.text import clean_inline, html_to_text


def text(html: str) -> str:
    return html_to_text(html).text


def test_paragraphs_entities_whitespace():
    html = "<p>One&nbsp;&amp;   two,\n  three&#8217;s.</p>\n\n<p>Second   <b>bold</b> <em>em</em> paragraph.</p>"
    assert text(html) == "One & two, three’s.\n\nSecond bold em paragraph."


def test_images_dropped_links_reduced_to_text():
    html = '<p>See <a href="https://example.com/x">the launch notes</a> <img src="a.png" alt="a cat"> now.</p>'
    assert text(html) == "See the launch notes now."


def test_a_link_whose_text_only_points_keeps_its_address():
    html = ('<p>Examples: <a href="https://t.example/1">here</a> and <a href="https://t.example/2">Here</a>; '
            'read <a href="https://example.com/x">this post</a>, or <a href="/relative">here</a>.</p>')
    assert text(html) == (
        "Examples: here (https://t.example/1) and Here (https://t.example/2); read this post (https://example.com/x), "
        "or here."
    )


def test_emoji_image_keeps_its_emoji():
    html = '<p>Thanks <img class="wp-smiley" src="x.svg" alt="🙂"> all</p>'
    assert text(html) == "Thanks 🙂 all"


def test_link_showing_its_own_address_becomes_the_full_url():
    # Mastodon's HTML hides parts of long links in invisible spans
    html = (
        '<p>Behooves <a href="https://chriscoyier.net/2022/12/14/behooves/"><span class="invisible">https://</span>'
        '<span class="ellipsis">chriscoyier.net/2022/12/14/beh</span><span class="invisible">ooves/</span></a></p>'
    )
    assert text(html) == "Behooves https://chriscoyier.net/2022/12/14/behooves/"


def test_mastodon_mention_keeps_its_domain():
    html = '<p>Hi <span class="h-card"><a href="https://social.example/@ann" class="u-url mention">@<span>ann</span></a></span></p>'
    assert text(html) == "Hi @ann@social.example"


def test_lists_become_bullets_and_headings_are_dropped():
    html = "<h2>Intro</h2><p>Things:</p><ul><li>one</li><li>two</li></ul><ol><li>first</li><li>second</li></ol>"
    assert text(html) == "Things:\n\n• one\n• two\n\n1. first\n2. second"


def test_only_headings_are_kept_when_nothing_else():
    assert text("<h1>Just a heading</h1>") == "Just a heading"


def test_code_tables_scripts_dropped_and_opening_stops_before_code():
    html = (
        "<p>Recently I needed this.</p><p>It is simple:</p><pre><code>run --it</code></pre>"
        "<p>After that it works.</p><table><tr><td>cell</td></tr></table><script>alert(1)</script>"
    )
    extracted = html_to_text(html)
    assert extracted.text == "Recently I needed this.\n\nIt is simple:\n\nAfter that it works."
    assert extracted.opening == "Recently I needed this."
    assert "run --it" in extracted.all_text


def test_more_break_marks_the_excerpt():
    html = "<p>Intro para.</p><!-- more --><p>Rest of the post.</p>"
    extracted = html_to_text(html)
    assert extracted.excerpt == "Intro para."
    assert extracted.text == "Intro para.\n\nRest of the post."


@pytest.mark.parametrize(
    "html, expected, truncated",
    [
        # Medium
        (
            '<p>Body text.</p><hr><p><a href="https://medium.com/p/1">My Post</a> was originally published in '
            '<a href="https://medium.com/pub">Pub</a> on Medium, where people are continuing the conversation by '
            "highlighting and responding to this story.</p>",
            "Body text.",
            False,
        ),
        (
            '<div class="medium-feed-item"><p class="medium-feed-snippet">A snippet&#x2026;</p>'
            '<p class="medium-feed-link"><a href="https://medium.com/x">Continue reading on Medium »</a></p></div>',
            "A snippet…",
            True,
        ),
        ("<p>Some text. Continue reading on Medium »</p>", "Some text.", True),
        # WordPress
        (
            '<p>Welcome.</p>\n<p>The post <a href="https://x.example/p">Title</a> appeared first on '
            '<a href="https://x.example">Site</a>.</p>',
            "Welcome.",
            False,
        ),
        ("<p>Further afield the name is [&#8230;]</p>", "Further afield the name is…", True),
        (
            '<p>just released &#8230;  <a class="read_more" href="https://x.example/p">Read More Here '
            '<span class="meta-nav">&#8594;</span></a></p>',
            "just released …",
            True,
        ),
        ('<p>Text.</p><p><a class="more-link" href="https://x.example/p#more-12">Continue reading</a></p>', "Text.", False),
        ("<p>Text ends… Read more</p>", "Text ends…", True),
        # Substack
        (
            '<p>Post.</p><p class="button-wrapper"><a class="button primary" href="https://x.substack.com/subscribe">'
            '<span>Subscribe now</span></a></p><div class="subscription-widget-wrap"><p>Thanks for reading! '
            "Subscribe for free.</p></div><p>More.</p>\n<p>\n<a href=\"https://x.substack.com/p/y\">\nRead more\n</a>\n</p>",
            "Post.\n\nMore.",
            True,
        ),
        # Blogger jump link (its text is the blog's own)
        (
            '<div>Story start.</div><a href="https://x.blogspot.com/2021/03/p.html#more">Did You Click to Read the Whole Story?</a>',
            "Story start.",
            False,
        ),
        # Ghost custom template: reply by email
        (
            '<p>The end.</p><br><br><a href="mailto:reply@example.com?subject=RE: Post">Reply to this post</a>',
            "The end.",
            False,
        ),
        # Ghost cards that are not prose
        (
            '<p>Read this:</p><figure class="kg-card kg-bookmark-card"><a class="kg-bookmark-container" href="https://x">'
            '<div class="kg-bookmark-title">Other</div></a></figure><p>Done.</p>',
            "Read this:\n\nDone.",
            False,
        ),
        # Slashdot, Bluesky
        ('<p>Story.</p><p><a href="https://slashdot.org/s">Read more of this story</a> at Slashdot.</p>', "Story.", False),
        ("But the hardware must be acquired …\n\n[contains quote post or other embedded content]", "But the hardware must be acquired …", True),
        # FeedBurner / tracking pixels
        (
            '<p>Hello.</p><div class="feedflare"><a href="http://feeds.feedburner.com/~ff/x">Share</a></div>'
            '<img src="http://feeds.feedburner.com/~r/x/~4/y" height="1" width="1" alt="">',
            "Hello.",
            False,
        ),
    ],
)
def test_platform_boilerplate_removed(html, expected, truncated):
    extracted = html_to_text(html)
    assert extracted.text == expected
    assert extracted.truncated is truncated


def test_a_sentence_ending_in_read_more_words_is_kept():
    assert text("<p>I want to read more books.</p>") == "I want to read more books."
    assert text("<p>And then... More than fifty people came.</p>") == "And then... More than fifty people came."


def test_control_characters_and_invisible_marks_removed_but_joiners_kept():
    html = "<p>a\x02b\u200bc\u00add 👩\u200d💻</p>"
    assert text(html) == "abcd 👩\u200d💻"


def test_twice_escaped_html_is_read():
    assert text("&lt;p&gt;Hello &amp;amp; bye&lt;/p&gt;") == "Hello & bye"


def test_rtl_text_untouched():
    urdu = "امریکہ اور پاکستان کے تعلقات۔"
    assert text(f'<p dir="rtl">{urdu}</p>') == urdu


@pytest.mark.parametrize(
    "value, expected",
    [
        ("Caf&eacute; &amp;amp; bar", "Café & bar"),
        ("<b>Bold</b> title", "Bold title"),
        ("  spaced\n\ttitle  ", "spaced title"),
        ("Rock &amp; roll", "Rock & roll"),
        ("", ""),
    ],
)
def test_clean_inline(value, expected):
    assert clean_inline(value) == expected


def test_hundreds_of_unclosed_tags_render_their_text():
    # issue 13: 600 unclosed <b> (a 6 kB description) raised RecursionError in markdownify.
    html = "<p>Before.</p>" + "<b>" * 600 + "Deep <a href='https://blog.example/x'>words</a> here" + "<p>After.</p>"
    extracted = html_to_text(html)
    assert extracted.text == "Before.\n\nDeep words here After."


def test_deep_nesting_keeps_its_dropped_parts_dropped():
    html = "<div>" * 300 + "Kept<script>alert(1)</script><span class='sr-only'>hidden</span>" + "</div>" * 300
    assert html_to_text(html).text == "Kept"
