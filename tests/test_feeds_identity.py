"""Entry identity: canonical_link, link_aliases, key rules, and the re-key property at parse level."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.feeds import canonical_link, link_aliases, parse_feed

# --- canonical_link ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("https://example.com/post?utm_source=rss&utm_medium=feed&id=5", "https://example.com/post?id=5"),
        ("https://example.com/post?UTM_Campaign=x", "https://example.com/post"),
        ("https://example.com/p?fbclid=IwAR0abc&gclid=Cj0K&page=2", "https://example.com/p?page=2"),
        ("https://example.com/p?mc_cid=1a2b&mc_eid=3c4d", "https://example.com/p"),
        (
            "https://medium.com/@hodlhodl/hodl-hodl-closes-funding-round-417d97952d42?source=rss-b1f3d322dadf------2",
            "https://medium.com/@hodlhodl/hodl-hodl-closes-funding-round-417d97952d42",
        ),
        ("https://medium.com/x/slug-1234567890ab?source=rss----5517fd7b58a6---4", "https://medium.com/x/slug-1234567890ab"),
        ("https://www.lemonde.fr/a/article.html?xtor=RSS-3208", "https://www.lemonde.fr/a/article.html"),
        ("https://example.com/p?ref=rss", "https://example.com/p"),
        ("https://example.com/p?source=twitter", "https://example.com/p?source=twitter"),  # not a feed marker
        ("https://example.com/p?ref=producthunt", "https://example.com/p?ref=producthunt"),
        ("HTTPS://Example.COM:443/Path/Case/", "https://example.com/Path/Case/"),  # path case is the site's
        ("http://example.com:80", "http://example.com/"),
        ("http://example.com:8080/x", "http://example.com:8080/x"),
        ("https://example.com:80/x", "https://example.com:80/x"),  # not the default port for https
        ("//cdn.example.com/x.html", "https://cdn.example.com/x.html"),
        ("http://simonwillison.net/2023/Jul/16/weeknotes/#atom-everything", "http://simonwillison.net/2023/Jul/16/weeknotes/"),
        ("https://example.com/p#rss", "https://example.com/p"),
        ("https://example.com/p#xtor=RSS-1", "https://example.com/p"),
        ("http://scripting.com/2017/06/26.html#a080605", "http://scripting.com/2017/06/26.html#a080605"),
        ("https://example.com/p#comments", "https://example.com/p#comments"),
        ("https://example.com/s?q=a%20b&x=%2F", "https://example.com/s?q=a%20b&x=%2F"),  # encoding untouched
        ("https://example.com/s?a=1&&utm_source=x&b", "https://example.com/s?a=1&b"),
        ("  https://example.com/trim  ", "https://example.com/trim"),
        ("relative/path", "relative/path"),
        ("mailto:someone@example.com", "mailto:someone@example.com"),
    ],
)
def test_canonical_link(given, expected):
    assert canonical_link(given) == expected


# --- link_aliases ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "variant",
    [
        "http://example.com/2024/01/hello/",
        "https://example.com/2024/01/hello",
        "https://www.example.com/2024/01/hello/",
        "https://WWW.Example.Com:443/2024/01/hello/",
        "http://example.com:80/2024/01/hello?utm_source=rss&utm_medium=feed",
        "https://www.example.com/2024/01/hello/?fbclid=abc&gclid=def",
        "https://example.com/2024/01/hello/#atom-everything",
        "https://example.com/2024/01/%68ello/",  # escaped unreserved letter
    ],
)
def test_variants_share_the_main_alias(variant):
    assert link_aliases(variant)[0] == "example.com/2024/01/hello"


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ("https://example.com/a", "https://example.com/b"),
        ("https://example.com/?p=1", "https://example.com/?p=2"),
        ("http://scripting.com/2017/06/26.html#a080605", "http://scripting.com/2017/06/26.html#a030658"),
        ("https://example.com:8443/a", "https://example.com/a"),
        ("https://blog.example.com/a", "https://example.com/a"),
        ("https://example.com/A", "https://example.com/a"),
    ],
)
def test_different_things_keep_different_aliases(one, other):
    assert not set(link_aliases(one)) & set(link_aliases(other))


def test_alias_details():
    assert link_aliases("https://example.com/s?b=2&a=1") == link_aliases("https://example.com/s?a=1&b=2")
    assert link_aliases("https://example.com/caf%c3%a9/")[0] == link_aliases("https://example.com/café")[0]
    assert link_aliases("https://example.com/%7Euser")[0] == "example.com/~user"
    assert link_aliases("https://example.com/")[0] == "example.com"
    assert "example.com/blog" in link_aliases("https://example.com/blog/index.html")
    assert link_aliases("not a url") == []


def test_medium_aliases_survive_the_move_to_subdomains():
    old = link_aliases("https://medium.com/@hodlhodl/hodl-hodl-closes-funding-round-417d97952d42?source=rss-b1f3d322dadf------2")
    new = link_aliases("https://hodlhodl.medium.com/hodl-hodl-closes-funding-round-417d97952d42")
    guid = link_aliases("https://medium.com/p/417d97952d42")
    assert "medium.com/p/417d97952d42" in set(old) & set(new) & set(guid)


_label = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=8)
_segment = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.~", min_size=1, max_size=10).filter(
    lambda s: s not in (".", "..")
)
_param = st.tuples(st.sampled_from(["p", "id", "page", "q", "lang", "v"]), _label)
_tracking = st.lists(
    st.sampled_from(["utm_source=rss", "utm_medium=feed", "utm_campaign=x", "fbclid=abc", "gclid=1", "mc_cid=2", "mc_eid=3", "source=rss-abc------2", "xtor=RSS-1"]),
    max_size=4,
)


@st.composite
def _urls(draw):
    host = ".".join(draw(st.lists(_label, min_size=1, max_size=3))) + "." + draw(st.sampled_from(["com", "org", "net", "de"]))
    path = "/" + "/".join(draw(st.lists(_segment, max_size=4)))
    params = draw(st.lists(_param, max_size=3, unique_by=lambda p: p[0]))
    query = "&".join(f"{k}={v}" for k, v in params)
    return host, path, query


@settings(max_examples=300, deadline=None)
@given(_urls(), st.sampled_from(["http", "https"]), st.booleans(), st.booleans(), _tracking, st.booleans())
def test_reposting_variants_map_to_the_same_alias(parts, scheme, www, slash, tracking, upper):
    host, path, query = parts
    base = f"https://{host}{path}" + (f"?{query}" if query else "")
    variant_host = ("www." if www else "") + (host.upper() if upper else host)
    variant_path = path if path.endswith("/") or not slash else path + "/"
    variant_query = "&".join(filter(None, [query, *tracking]))
    variant = f"{scheme}://{variant_host}{variant_path}" + (f"?{variant_query}" if variant_query else "")
    assert link_aliases(variant)[0] == link_aliases(base)[0]


@settings(max_examples=300, deadline=None)
@given(st.one_of(_urls().map(lambda p: f"https://{p[0]}{p[1]}" + (f"?{p[2]}" if p[2] else "")), st.text(max_size=40)))
def test_canonical_link_is_idempotent_and_aliases_agree(url):
    once = canonical_link(url)
    assert canonical_link(once) == once
    assert link_aliases(once) == link_aliases(url)


# --- keys and links at parse level -----------------------------------------------------------------------------

FEED_URL = "https://blog.example.org/feed.xml"


def rss(items: str, channel_extra: str = "", url: str = FEED_URL, **kwargs):
    body = f"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0" xmlns:feedburner="http://rssnamespace.org/feedburner/ext/1.0"><channel>
<title>Blog</title><link>https://blog.example.org/</link>{channel_extra}{items}</channel></rss>"""
    return parse_feed(body.encode(), url, **kwargs)


def atom(entries: str, url: str = FEED_URL, feed_attrs: str = ""):
    body = f"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" {feed_attrs}><title>Blog</title><id>urn:x</id><updated>2024-01-01T00:00:00Z</updated>
{entries}</feed>"""
    return parse_feed(body.encode(), url)


def test_key_is_the_guid_verbatim():
    feed = rss("<item><title>A</title><link>https://blog.example.org/a?utm_source=rss</link><guid isPermaLink='false'>  post-17  </guid></item>")
    entry = feed.entries[0]
    assert entry.key == "post-17"
    assert entry.link == "https://blog.example.org/a"


def test_key_without_guid_is_the_canonical_link():
    feed = rss("<item><title>A</title><link>http://blog.example.org/a/?utm_source=rss&amp;x=1</link></item>")
    assert feed.entries[0].key == "http://blog.example.org/a/?x=1" == feed.entries[0].link


def test_key_without_guid_or_link_is_a_hash_of_title_and_date():
    item = "<item><title>{t}</title><pubDate>{d}</pubDate><description>x</description></item>"
    first = rss(item.format(t="Hello", d="Mon, 01 Jan 2024 10:00:00 GMT")).entries[0]
    again = rss(item.format(t="Hello", d="Mon, 01 Jan 2024 10:00:00 GMT")).entries[0]
    other_date = rss(item.format(t="Hello", d="Tue, 02 Jan 2024 10:00:00 GMT")).entries[0]
    other_title = rss(item.format(t="Bye", d="Mon, 01 Jan 2024 10:00:00 GMT")).entries[0]
    assert first.key.startswith("sha256:") and len(first.key) == 7 + 64
    assert first.key == again.key
    assert len({first.key, other_date.key, other_title.key}) == 3
    assert first.link is None


def test_untitled_undated_entries_are_told_apart_by_text():
    feed = rss("<item><description>first note</description></item><item><description>second note</description></item>")
    assert len({e.key for e in feed.entries}) == 2


def test_permalink_guid_gives_the_link():
    feed = rss("<item><title>A</title><guid>https://blog.example.org/a</guid></item>"
               "<item><title>B</title><guid isPermaLink='false'>https://blog.example.org/b?utm_source=x</guid></item>"
               "<item><title>C</title><guid isPermaLink='false'>urn:uuid:1234</guid></item>")
    a, b, c = feed.entries
    assert (a.key, a.link) == ("https://blog.example.org/a", "https://blog.example.org/a")
    assert (b.key, b.link) == ("https://blog.example.org/b?utm_source=x", "https://blog.example.org/b")
    assert (c.key, c.link) == ("urn:uuid:1234", None)


def test_atom_http_id_without_link_gives_the_link():
    feed = atom("<entry><id>https://blog.example.org/p/1</id><title>T</title><updated>2024-01-01T00:00:00Z</updated></entry>")
    assert feed.entries[0].link == "https://blog.example.org/p/1"


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_schemeless_links_get_the_feeds_scheme(scheme):
    feed = rss("<item><title>A</title><link>//blog.example.org/a</link></item>", url=f"{scheme}://blog.example.org/feed.xml")
    assert feed.entries[0].link == f"{scheme}://blog.example.org/a"


def test_relative_links_and_xml_base():
    feed = rss("<item><title>A</title><link>/2024/a/</link></item><item><title>B</title><link>b.html</link></item>",
               url="https://host.example/blog/feed.xml")
    assert [e.link for e in feed.entries] == ["https://host.example/2024/a/", "https://host.example/blog/b.html"]
    based = atom("<entry xml:base='https://other.example/x/'><id>urn:1</id><title>T</title><updated>2024-01-01T00:00:00Z</updated>"
                 "<link rel='alternate' href='post/'/><content type='html'>&lt;img src=\"i.png\" alt=\"Pic\"&gt;</content></entry>")
    entry = based.entries[0]
    assert entry.link == "https://other.example/x/post/"
    assert entry.images[0].url == "https://other.example/x/i.png" and entry.images[0].alt == "Pic"


def test_feedburner_origlink_wins():
    feed = rss("<item><title>A</title><link>http://feedproxy.google.com/~r/blog/~3/abc/a.html</link>"
               "<feedburner:origLink>https://blog.example.org/a.html</feedburner:origLink><guid isPermaLink='false'>g</guid></item>")
    assert feed.entries[0].link == "https://blog.example.org/a.html"


def test_repeated_keys_keep_the_first_entry():
    feed = rss("<item><title>New</title><guid>g1</guid></item><item><title>Old copy</title><guid>g1</guid></item>")
    assert [e.title for e in feed.entries] == ["New"]


# --- the re-key scenario ------------------------------------------------------------------------------------------

POSTS = [("hello-world", "Hello world"), ("second-post", "Second post"), ("2024/03/third", "Third"), ("tags/python?page=2", "Python page 2")]


def _v1() -> bytes:
    items = "".join(
        f"<item><title>{title}</title><link>http://example.com/{slug}{'&amp;' if '?' in slug else '?'}utm_source=rss&amp;utm_medium=feed</link>"
        f"<guid isPermaLink='false'>old-{index}</guid><pubDate>Mon, 0{index + 1} Jan 2024 10:00:00 GMT</pubDate></item>"
        for index, (slug, title) in enumerate(POSTS)
    )
    return f"<?xml version='1.0'?><rss version='2.0'><channel><title>B</title><link>http://example.com/</link>{items}</channel></rss>".encode()


def _v2() -> bytes:
    entries = "".join(
        f"<entry><id>tag:example.com,2024:post-{index}</id><title>{title}</title><updated>2024-01-0{index + 1}T10:00:00Z</updated>"
        f"<link rel='alternate' href='https://www.example.com/{slug}{'/' if '?' not in slug else ''}"
        f"{'&amp;' if '?' in slug else '?'}utm_campaign=spring&amp;fbclid=IwAR{index}&amp;mc_cid=9'/></entry>"
        for index, (slug, title) in enumerate(POSTS)
    )
    return (f"<?xml version='1.0'?><feed xmlns='http://www.w3.org/2005/Atom'><title>B</title><id>urn:b</id>"
            f"<updated>2024-02-01T00:00:00Z</updated>{entries}</feed>").encode()


def test_rekeyed_feed_has_the_same_aliases():
    before = parse_feed(_v1(), "http://example.com/feed")
    after = parse_feed(_v2(), "https://www.example.com/feed.atom")
    assert len(before.entries) == len(after.entries) == len(POSTS)
    assert not {e.key for e in before.entries} & {e.key for e in after.entries}  # every GUID changed
    assert {e.link for e in before.entries}.isdisjoint({e.link for e in after.entries})  # and every link
    main_before = [link_aliases(e.link)[0] for e in before.entries]
    main_after = [link_aliases(e.link)[0] for e in after.entries]
    assert main_before == main_after
    assert [set(link_aliases(e.link)) for e in before.entries] == [set(link_aliases(e.link)) for e in after.entries]
