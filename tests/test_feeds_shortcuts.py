"""The shortcuts that make reading a document's entries cheap give what the plain way gives, on many generated
inputs: the <img> search that skips the body after its last "<img" (and after the picture it stopped at), the avatar
and pixel test, a permalink's host without urlsplit, a plain link's aliases without canonicalising it first, an
index document looked for in the last segment alone, image candidates made without their __init__, and a feed's
folder without urljoin."""

from __future__ import annotations

import html
import re
from itertools import islice
from urllib.parse import urljoin, urlsplit

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.feeds.htmltools import _img_tokens, iter_img_tags
from bridge.feeds.images import _AVATAR, _PIXEL, _candidate, _unwanted
from bridge.feeds.identity import _INDEX_DOCUMENT, _index_document, _plain_link, canonical_link, link_aliases
from bridge.feeds.parse import _directory
from bridge.model import ImageCandidate
from bridge.permalinks import link_host

# Pieces of markup that move where a tag starts or ends: comments, CDATA, raw text, quotes, odd tag names.
_MARKUP = st.lists(
    st.sampled_from([
        "<img", "<IMG", "<iMg", "<imgx", "<img/", " src=", " alt=", " width=1", "a.png", "b.png", '"', "'", ">", "/>",
        "<!--", "-->", "--!>", "<!-->", "<script>", "</script>", "<style x='>'>", "</style >", "<![CDATA[", "]]>",
        "<!DOCTYPE x>", "<?pi ", "?>", "<p>", "</p>", "<a href='", "<b title=\"<img src=q.png>\">", "<", "=", " ",
        "\n", "\t", "&amp;", "&lt;", "text", "é", "<br/>", "</", "<img\tsrc=t.png>", "<img src=c.png>", '<a"b', "<q",
        'c"', "d'",
    ]),
    max_size=30,
).map("".join)


# An attribute: name, then optionally = and a double-quoted, single-quoted or bare value, read the plain way
_ATTRIBUTE = re.compile(r"""([^\s/>=][^\s/>=]*)(?:\s*=+\s*("[^"]*"|'[^']*'|[^\s>]*))?""")


def tokenwise_img_tags(fragment: str) -> list[dict[str, str]]:
    """iter_img_tags the plain way: every token of the markup read in turn."""
    found = []
    for match in _img_tokens(fragment):
        attrs = {}
        for name, value in _ATTRIBUTE.findall(match.group("attrs")):
            value = value[1:-1] if value[:1] in ("'", '"') else value
            attrs[name.lower()] = html.unescape(value)
        found.append(attrs)
    return found


@settings(max_examples=3000, deadline=None)
@given(fragment=_MARKUP)
def test_the_img_search_finds_what_reading_every_token_finds(fragment):
    assert list(iter_img_tags(fragment)) == tokenwise_img_tags(fragment)


@settings(max_examples=1000, deadline=None)
@given(fragment=_MARKUP, wanted=st.integers(min_value=0, max_value=3))
def test_the_img_search_stopped_early_finds_the_same_first_pictures(fragment, wanted):
    assert list(islice(iter_img_tags(fragment), wanted)) == tokenwise_img_tags(fragment)[:wanted]


def test_the_img_search_skips_nothing_after_a_picture():
    body = "<p>text</p>" * 50 + '<img src="a.png">' + "<p>more</p>" * 50 + "<!-- <img src=hidden.png> -->" + \
        "<IMG SRC='b.png' alt='B &amp; C'>" + "<p>end</p>"
    assert list(iter_img_tags(body)) == [{"src": "a.png"}, {"src": "b.png", "alt": "B & C"}]
    assert list(iter_img_tags(body)) == tokenwise_img_tags(body)


def urlsplit_host(url: str) -> str:
    try:
        return (urlsplit(url).hostname or "").lower().rstrip(".")
    except ValueError:
        return ""


_URL = st.builds(
    "".join,
    st.lists(st.sampled_from(["http", "https", "HTTP", "ftp", ":", "//", "/", "@", "[", "]", "?", "#", ".", "-",
                              "example", "com", "WWW", "8080", ":443", " ", "\t", "\n", "é", "%2F", "x", "1"]),
             max_size=12),
)


@settings(max_examples=3000, deadline=None)
@given(url=_URL | st.builds(lambda scheme, rest: scheme + rest, st.sampled_from(["http://", "https://"]), _URL))
def test_a_links_host_is_urlsplits(url):
    assert link_host(url) == urlsplit_host(url)


@settings(max_examples=3000, deadline=None)
@given(url=st.builds(lambda scheme, rest: scheme + rest, st.sampled_from(["http://", "https://", "HTTPS://"]),
                     st.from_regex(r"[a-zA-Z0-9.:/_~%?#=&-]{0,30}", fullmatch=True)))
def test_a_plain_link_is_its_own_canonical_form(url):
    # link_aliases reads such a link without canonicalising it first
    if _plain_link(url):
        assert canonical_link(url) == url
    assert link_aliases(url) == link_aliases(canonical_link(url))


_IMAGE_URL = st.lists(st.sampled_from([
    "https://", "http://", "gravatar.com/", "secure.gravatar.com", "/avatar/", "/AVATARS/", "/avatarx/", "medium.com",
    "/_/stat", "feeds.feedburner.com/~r/", "feedproxy.google.com/~R/", "pixel.wp.com/", "stats.wordpress.com/",
    "/~ff/", "feedsportal.com/", "pixel.quantserve", "/tracking/", "pixel.gif", "/matomo.php", "/piwik.PHP",
    "?idsite=1", "&amp;idsite=2", "x", "/", ".", "é", "İ", "a.jpg",
]), max_size=8).map("".join)


@settings(max_examples=3000, deadline=None)
@given(url=_IMAGE_URL)
def test_avatars_and_pixels_are_what_their_patterns_say(url):
    assert _unwanted(url) == bool(_AVATAR.search(url) or _PIXEL.search(url))


@settings(max_examples=2000, deadline=None)
@given(path=st.lists(st.sampled_from(["/", "index", "INDEX", "default", ".", "html", "htm", "php", "aspx", "asp", "x",
                                      "\n"]), max_size=8).map("".join))
def test_an_index_document_is_found_in_the_last_segment_alone(path):
    found, expected = _index_document(path), _INDEX_DOCUMENT.search(path)
    assert (found and found.span()) == (expected and expected.span())


@settings(max_examples=500, deadline=None)
@given(url=st.text(), alt=st.text(), source=st.sampled_from(["content:img", "media:content"]),
       width=st.none() | st.integers(1, 5000), height=st.none() | st.integers(1, 5000),
       mime_type=st.none() | st.sampled_from(["image/png", "image/jpeg"]))
def test_an_image_candidate_made_without_init_is_the_one_init_makes(url, alt, source, width, height, mime_type):
    made = _candidate(url, alt, source, width, height, mime_type)
    plain = ImageCandidate(url=url, alt=alt, source=source, width=width, height=height, mime_type=mime_type)
    assert made == plain and hash(made) == hash(plain)
    assert list(vars(made).items()) == list(vars(plain).items())
    assert orjson.dumps(made) == orjson.dumps(plain)


@settings(max_examples=3000, deadline=None)
@given(url=_URL | st.builds(lambda scheme, rest: scheme + rest, st.sampled_from(["http://", "https://"]),
                            st.lists(st.sampled_from(["host", ".", "..", "/", "//", "a", "b.xml", "?", "#", "x=1", ";",
                                                      ":8080", " ", "%2e", "é"]), max_size=10).map("".join)))
def test_a_feeds_folder_is_urljoins(url):
    try:
        expected = urljoin(url, "./")
    except ValueError:
        return
    assert _directory(url) == expected
