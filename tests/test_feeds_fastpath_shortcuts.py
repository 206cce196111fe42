"""The fast path's shortcuts give what the obvious way gives, on many generated inputs.

fastpath.parse_tree stops testing events once it has the root; Names.attributes reuses its work per tuple of
attribute names; add_tag stands in for feedparser's _add_tag; looks_like_html and link_text skip work on text
without '&' or '</'. Each is checked here against the way it was done before (or feedparser's own code).
"""

from __future__ import annotations

import random
import re
import xml.etree.ElementTree as ET

import pytest
from feedparser.mixin import _FeedParserMixin

from bridge.feeds import mediaalt
from bridge.feeds.fastpath import parse_tree
from bridge.feeds.fpconventions import KNOWN_NAMESPACES, Bookkeeper, Names, add_tag, link_text, looks_like_html

# --- parse_tree: the root, every namespace declaration, and which of them are on the root --------------------


def events_one_by_one(data: bytes):
    """The way before: every event tested in one loop."""
    parser = ET.XMLPullParser(events=("start-ns", "start"))
    parser.feed(data)
    parser.close()
    root, declarations, root_declarations = None, [], []
    for event, value in parser.read_events():
        if event == "start-ns":
            declarations.append(value)
            if root is None:
                root_declarations.append(value)
        elif root is None:
            root = value
    return root, declarations, root_declarations


_URIS = ["http://www.w3.org/2005/Atom", "http://purl.org/dc/elements/1.1/", "http://search.yahoo.com/mrss/",
         "http://example.com/ns", "http://purl.org/rss/1.0/", "urn:x"]  # fmt: skip
_PREFIXES = ["", "", "a", "dc", "media", "x"]


def _declarations(rng: random.Random) -> str:
    """Attributes declaring namespaces, and sometimes undeclaring the default one (xmlns="")."""
    chosen = {}
    for _ in range(rng.randint(0, 3)):
        prefix = rng.choice(_PREFIXES)
        chosen[prefix] = "" if prefix == "" and rng.random() < 0.2 else rng.choice(_URIS)
    return "".join(f' xmlns{":" + p if p else ""}="{uri}"' for p, uri in chosen.items() if uri or not p)


def _element(rng: random.Random, depth: int) -> str:
    prefix = rng.choice([p for p in _PREFIXES if p])
    name = f"{prefix}:e{depth}" if rng.random() < 0.3 else f"e{depth}"
    declared = _declarations(rng)
    if prefix and name.startswith(prefix + ":") and f"xmlns:{prefix}=" not in declared:
        declared += f' xmlns:{prefix}="{rng.choice(_URIS)}"'
    children = "".join(_element(rng, depth + 1) for _ in range(rng.randint(0, 3))) if depth < 4 else ""
    text = rng.choice(["", "text", "<![CDATA[xmlns:a='b' <x xmlns='c'>]]>", "&lt;y xmlns=&quot;d&quot;&gt;"])
    return f"<{name}{declared} attr='xmlns=\"z\"'>{text}{children}</{name}>"


def generated_documents(count: int):
    rng = random.Random(20261205)
    for _ in range(count):
        prolog = rng.choice(["", '<?xml version="1.0"?>', "<!-- <a xmlns='u'> -->", "<?pi xmlns:p='q'?>\n"])
        yield (prolog + _element(rng, 0)).encode()


@pytest.mark.parametrize(
    "document",
    [
        b'<rss xmlns:a="http://a"><channel xmlns:b="http://b"><item xmlns:a="http://other"/></channel></rss>',
        b'<rss><channel xmlns="http://www.w3.org/2005/Atom"/></rss>',  # no declaration on the root itself
        b'<feed xmlns="http://www.w3.org/2005/Atom"><entry xmlns=""><id xmlns="http://x"/></entry></feed>',
        b'<feed xmlns="http://www.w3.org/2005/Atom" xmlns:dc="http://purl.org/dc/elements/1.1/"/>',
        b"<!-- <rss xmlns:c='http://c'> --><rss version='2.0'><channel xmlns:c='http://c'/></rss>",
        b"<a xmlns:p='u1'><p:b xmlns:p='u2'><p:c xmlns:p='u1'/></p:b></a>",
    ],
)
def test_parse_tree_tells_the_root_declarations_from_the_others(document):
    root, declarations, root_declarations = parse_tree(document)
    expected_root, expected_declarations, expected_root_declarations = events_one_by_one(document)
    assert root.tag == expected_root.tag
    assert ET.tostring(root) == ET.tostring(expected_root)
    assert (declarations, root_declarations) == (expected_declarations, expected_root_declarations)


def test_parse_tree_equals_the_event_loop_on_generated_documents():
    for document in generated_documents(500):
        root, declarations, root_declarations = parse_tree(document)
        expected_root, expected_declarations, expected_root_declarations = events_one_by_one(document)
        assert ET.tostring(root) == ET.tostring(expected_root), document
        assert declarations == expected_declarations, document
        assert root_declarations == expected_root_declarations, document


def test_parse_tree_refuses_what_is_not_well_formed():
    for broken in (b"<a><b></a>", b"<a/>junk", b"<a>&foo;</a>", b"<a xmlns:p='u'><p:b></p:b>"):
        with pytest.raises(ET.ParseError):
            parse_tree(broken)


# --- Names.attributes ----------------------------------------------------------------------------------------


def attributes_one_by_one(element) -> dict[str, str]:
    """The way before: every name worked out on every element."""
    found: dict[str, str] = {}
    for name, value in element.attrib.items():
        names = [name]
        if name[0] == "{":
            uri, local = name[1:].split("}", 1)
            prefix = KNOWN_NAMESPACES.get(uri.lower(), "")
            names = [prefix + ":" + local, local] if prefix else [local]
        for each in names:
            each = each.lower()
            if each in found:
                raise ValueError(f"attribute {each!r} given twice")
            found[each] = value.lower() if each in ("rel", "type") else value
    return found


def test_attributes_equal_working_out_every_name_on_every_element():
    rng = random.Random(7)
    names = ["href", "HREF", "rel", "Rel", "type", "TYPE", "term", "url", "{http://www.w3.org/XML/1998/namespace}lang",
             "{http://www.w3.org/XML/1998/namespace}base", "lang", "{http://search.yahoo.com/mrss/}url",
             "{http://example.com/ns}term", "{http://purl.org/dc/elements/1.1/}Type"]  # fmt: skip
    values = ["Alternate", "text/HTML", "x", "", "MiXeD"]
    for _ in range(3000):
        element = ET.Element("e", {name: rng.choice(values) for name in rng.sample(names, rng.randint(1, 4))})
        try:
            expected = attributes_one_by_one(element)
        except ValueError as exc:
            with pytest.raises(ValueError, match=re.escape(str(exc))):
                Names.attributes(element)
            continue
        found = Names.attributes(element)
        assert dict(found) == expected and list(found) == list(expected), element.attrib


# --- add_tag, looks_like_html, link_text ---------------------------------------------------------------------


def test_add_tag_equals_feedparsers_bookkeeping():
    rng = random.Random(11)
    choices = [None, "", "Books", "books", "Travel"]
    for _ in range(2000):
        ours: dict = {}
        theirs: dict = {}
        for _ in range(rng.randint(0, 6)):
            term, scheme, label = rng.choice(choices), rng.choice(choices[:3]), rng.choice(choices[:3])
            add_tag(ours, term, scheme, label)
            Bookkeeper(theirs)._add_tag(term, scheme, label)
        assert ours == theirs


def test_looks_like_html_equals_feedparsers_test():
    rng = random.Random(13)
    pieces = ["plain", " ", "</p>", "<p>", "&amp;", "&#39;", "&bogus;", "<blink>", "</blink>", "&", "<", "/", ";"]
    for _ in range(5000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 6)))
        assert looks_like_html(text) == _FeedParserMixin.looks_like_html(text), text


def test_link_text_leaves_text_without_ampersands_alone():
    entity = re.compile("&([A-Za-z0-9_]+);")
    rng = random.Random(17)
    pieces = ["http://x.example/?a=1", "&amp;", "b=2", "&copy;", ";", "&", "amp"]
    for _ in range(3000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 5)))
        for in_entry in (True, False):
            expected = entity.sub(r"&\g<1>", text.replace("&amp;", "&") if in_entry else text)
            assert link_text(text, in_entry=in_entry) == expected, text


# --- mediaalt: whether a document may describe its pictures ----------------------------------------------------


def may_describe_one_by_one(data: bytes) -> bool:
    """The way before: a search per declared prefix and element name."""
    prefixes = []
    at = data.find(mediaalt._MEDIA_NAMESPACE)
    while at >= 0:
        end = at + len(mediaalt._MEDIA_NAMESPACE)
        declared = mediaalt._MEDIA_PREFIX.search(data, max(0, at - mediaalt._PREFIX_REACH), at)
        if declared is None or not mediaalt._MEDIA_PREFIX_END.match(data, end):
            return True
        prefixes.append(declared.group(1))
        at = data.find(mediaalt._MEDIA_NAMESPACE, end)
    return any(b"<" + p + b":description" in data or b"<" + p + b":title" in data for p in set(prefixes))


def test_may_describe_equals_a_search_per_prefix():
    rng = random.Random(19)
    declarations = [b' xmlns:media="http://search.yahoo.com/mrss/"', b" xmlns:m='https://search.yahoo.com/mrss'",
                    b' xmlns:a.b="http://search.yahoo.com/mrss/"', b' xmlns="http://search.yahoo.com/mrss/"', b""]
    elements = [b"<media:description>x</media:description>", b"<m:title>t</m:title>", b"<a.b:title/>",
                b"<xmedia:description/>", b"<media:content url='u'/>", b"<media:titles/>", b"<m:descriptionx/>",
                b"<![CDATA[<m:title>]]>", b"<item>text</item>"]  # fmt: skip
    for _ in range(3000):
        declared = b"".join(rng.sample(declarations, rng.randint(1, 3)))
        body = b"".join(rng.choice(elements) for _ in range(rng.randint(0, 4)))
        data = b"<rss" + declared + b"><channel>" + body + b"</channel></rss>"
        assert mediaalt._may_describe(data) == may_describe_one_by_one(data), data
