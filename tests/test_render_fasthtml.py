"""The renderer's fast paths write exactly what the slow ones do: a post must not change because it got cheaper.

- HTML -> text: bridge/render/fasthtml.py (ordinary markup, no bs4 tree) against bs4 + markdownify.
- Tokenizing: fasthtml's one-regex tokenizer against html.parser, tree for tree.
- Grapheme counting: len() where no character joins a cluster, against regex's \\X.
- Cutting text: word and sentence cut positions, against the straightforward definitions.
"""

from __future__ import annotations

import random

import pytest
import regex
from bs4 import BeautifulSoup
from bs4.builder._htmlparser import BeautifulSoupHTMLParser

from bridge.render import fasthtml, graphemes, text
from bridge.render.fit import (
    _NOT_A_SENTENCE_END, FUNCTION_WORDS, _TRAILING_JOINERS, _WORD_EDGE, _abbreviation_before, ends_on_function_word,
    protected_spans, sentence_cuts, word_cuts,
)
from tests.render_corpus import corpus_files, load_feed, requires_corpus

CRAFTED = [
    "<p>Plain <b>bold</b> and <em> spaced </em> text.</p>\n\n<p>Second&nbsp;paragraph &#147;quoted&#148; &amp; more</p>",
    "<p><strong>A bold heading</strong></p><p>Then the prose.</p>",
    "<ol start='3'><li>three</li><li>four<ul><li>nested</li></ul></li></ol>After the list.",
    "<ul>\n<li><p>item one</p></li>\n<li>item two</li>\n</ul>\n<ul><li>another list</li></ul>",
    "<p>Intro:</p><pre>  code\n\n  more  </pre><p>After <code>x</code>.</p>",
    "<table><tr><td>cell</td></tr></table><p>After the table.</p>",
    '<p>Watch:</p><iframe src="https://v.example/1"><p>Read the transcript instead.</p></iframe><p>End.</p>',
    '<p>Watch:</p><video src="a.mp4">Your browser does not support the video tag.</video><p>End.</p>',
    "<p>Before</p><script>var x = '<p>not text</p>';</script><style>p {color: red}</style><p>After</p>",
    "<p>One<!-- a comment -->two</p><!--more--><p>Rest</p>",
    '<div class="sharedaddy">Share this</div><p hidden>hidden</p><p style="display: none">gone</p><p>kept</p>',
    '<p>Text<sup><a href="#fn1">1</a></sup> and <a href="https://example.com/post#more-12">Read on</a></p>',
    '<p><a href="https://example.com/a/long/path">example.com/a/long/…</a> and <a href="https://x.example/">here</a></p>',
    '<p><a class="mention" href="https://social.example/@someone">@someone</a> wrote</p>',
    "<p>Image <img src='a.png' alt='😀'> and <img src='b.png' alt='a chart'/> and <br/> break<br></p>",
    "<h2>Heading</h2><p>Para</p><hr><blockquote>Quote <q>inner</q></blockquote><dl><dt>term</dt><dd>def</dd></dl>",
    "<figure><img src='x.jpg'><figcaption>caption</figcaption></figure><p>text &#x1F600; &bogus; &#99999999;</p>",
    "<p>unclosed <b>bold <i>italic",
    "<td>a cell outside any table</td>",  # fast path declines after parsing: markdownify's table rules are not in it
    "<p>misnested <b>bold <i>both</b> italic</i></p>",
    "<div><p>a <b>b</div>c</p> d",  # an end tag closes what was opened inside it; a stray one is ignored
    "<p>a</br>b</p><p>c<br></br>d</p><p>e</span>f</p>",
    "<center>centered</center> <tt>mono</tt> <font color=red>red</font> <custom-tag>custom</custom-tag>",
    "<form><input name=q><button>Go</button></form><p>after <svg><image href='x'/><text>t</text></svg></p>",
    "<head><title>A page</title><meta charset=utf-8><link rel=x></head><p>body text</p>",
    "<p>a <textarea>  kept  </textarea> b</p>",
    "<template><p>t</p></template><p>after</p>",
    "<p>ruby <ruby>漢<rt>kan</rt></ruby></p>",
    "<div>" * 70 + "deep" + "</div>" * 70,
    "<!DOCTYPE html><p>doctype</p>",
    "<p>CDATA <![CDATA[x < y]]></p>",
]


def _both_paths(html: str) -> tuple[tuple[str, bool, str], tuple[str, bool, str] | None]:
    soup = BeautifulSoup(html, "html.parser")
    slow = (*text._convert_soup(BeautifulSoup(html, "html.parser")), soup.get_text(" "))
    tree = fasthtml.parse(html, text.MAX_NESTING)
    if tree is None:
        return slow, None
    all_text = tree.get_text(" ")
    converted = text._convert_tree(tree)
    return slow, (*converted, all_text) if converted is not None else None


@pytest.mark.parametrize("html", CRAFTED)
def test_fast_html_path_writes_what_bs4_and_markdownify_write(html):
    slow, fast = _both_paths(html)
    if fast is not None:
        assert fast == slow


def test_fast_html_path_takes_ordinary_markup_and_declines_the_rest():
    taken = {html for html in CRAFTED if _both_paths(html)[1] is not None}
    assert "<p>unclosed <b>bold <i>italic" in taken
    assert "<p>misnested <b>bold <i>both</b> italic</i></p>" in taken
    assert CRAFTED[4] in taken and CRAFTED[8] in taken  # <pre>, <script>
    for declined in ("<td>a cell outside any table</td>", "<div>" * 70 + "deep" + "</div>" * 70,
                     "<!DOCTYPE html><p>doctype</p>", "<p>a <textarea>  kept  </textarea> b</p>",
                     "<template><p>t</p></template><p>after</p>", "<p>ruby <ruby>漢<rt>kan</rt></ruby></p>"):
        assert declined not in taken


def _corpus_bodies() -> set[str]:
    return {
        html
        for name in corpus_files()
        for entry in (load_feed(name).entries if load_feed(name) else ())
        for html in (entry.summary_html, entry.content_html)
        if html and html.strip()
    }


@requires_corpus
def test_fast_html_path_matches_on_every_corpus_body():
    bodies = _corpus_bodies()
    taken = 0
    for html in sorted(bodies):
        slow, fast = _both_paths(html)
        if fast is not None:
            taken += 1
            assert fast == slow, html[:200]
    assert taken >= 0.95 * len(bodies)  # the fast path is the common one, or it makes nothing fast


# Markup at the edges of what the one-regex tokenizer takes: it must build html.parser's tree or decline.
TOKENIZER_CRAFTED = [
    "<P CLASS='a  b' Id=x data-y DATA-Y=z>Upper &AMP; &amp; &Amp; &nosuch; &a.b; &#38; &#x26; &#X26; &#0; &#128;</P>",
    "<p title=\"a > b\" alt='&lt;x&gt;' href=https://e.example/a/b?c>x</p><a href='?b=1&amp;c=2&d'>y</a>",
    "<p a=1 a=2 b = 'spaced' c\n=\n\"newlines\">duplicates</p><img src=x.png/><img src=y.png /><br/><br></br>",
    "<p/>x<div/>y<span />z</p></br></img></p>",
    "a & b &, c < d <3 <= e <<p>f</p>",
    "AT&T, ?a=1&b=2, &#12a; &#; &amp <!-- x -- y --> <!----> <!--->--> <!-->",  # declined: html.parser's own
    "<p>one<!-- two -->three<!-- four\n- five -->six</p> <!-- tail -->",
    "<script type='text/javascript'>if (a && b) { x = '&amp;' }</script><style>p > a {}</style>after",
    "<script>document.write('<p>')</script>",  # a "<" inside: declined
    "<SCRIPT>x</script ><Style>y</STYLE>",
    "<script/>x<title>t <b>b</b></title><textarea>x</textarea>",
    "<iframe src='v'><p>fallback</p></iframe><noscript><p>n</p></noscript>",
    "<a b='c'd='e'>glued attributes</a><a\u00a0b=c>no-break space</a><a b=c\u00a0d>x</a>",
    "<o:p>word</o:p><my-element x-on:click=y>custom</my-element><a @click=x>at</a>",
    "text at the end &", "text at the end <", "<p>unclosed <b>bold <i>italic", "</p>stray end tag",
    "<p>\r\n  \t</p>\n\n<p>\u00a0</p><pre>  \n  </pre>",
    "<a href='x'>x</a >< /a>",
]


def _tree(node) -> object:
    if isinstance(node, str):
        return type(node).__name__, str(node)
    return node.name, node.attrs, [_tree(child) for child in node.children]


def _html_parser_tree(html: str) -> object:
    builder = fasthtml._Builder(text.MAX_NESTING)
    parser = BeautifulSoupHTMLParser(builder, convert_charrefs=False)
    try:
        parser.feed(html)
        parser.close()
        builder.endData()
    except fasthtml.Unusual as exc:
        return "unusual", str(exc)
    return _tree(builder.root)


def _tokenizer_tree(html: str) -> object | None:
    builder = fasthtml._Builder(text.MAX_NESTING)
    try:
        if not fasthtml._tokenize(html, builder):
            return None
        builder.endData()
    except fasthtml.Unusual as exc:
        return "unusual", str(exc)
    return _tree(builder.root)


@pytest.mark.parametrize("html", CRAFTED + TOKENIZER_CRAFTED)
def test_one_regex_tokenizer_builds_the_tree_html_parser_builds(html):
    fast = _tokenizer_tree(html)
    if fast is not None:
        assert fast == _html_parser_tree(html)


def test_one_regex_tokenizer_declines_what_html_parser_versions_read_differently():
    for html in ("AT&T", "&amp", "a &#12a; b", "<!----> x", "<!-- a -- b -->", "<!DOCTYPE html><p>x</p>",
                 "<title>t</title>", "<textarea>t</textarea>", "<iframe>f</iframe>", "<script>'<p>'</script>",
                 "<script/>", "<a b='c'd='e'>x</a>", "<a\u00a0b=c>x</a>", "text <", "text &", "</ p>", "<?php ?>"):
        assert _tokenizer_tree(html) is None, html
    for html in ("<p class=x>a &amp; b</p>", "<SCRIPT>x</script >", "a & b < c", "<br/><img src=a.png>"):
        assert _tokenizer_tree(html) is not None, html


@requires_corpus
def test_one_regex_tokenizer_matches_html_parser_on_every_corpus_body():
    bodies = _corpus_bodies()
    taken = 0
    for html in sorted(bodies):
        fast = _tokenizer_tree(html)
        if fast is not None:
            taken += 1
            assert fast == _html_parser_tree(html), html[:200]
    assert taken >= 0.95 * len(bodies)  # most markup is tokenized the fast way, or it makes nothing fast


_JOINERS = ["e\u0301", "\r\n", "\u200d", "👨‍👩‍👧", "🇫🇷", "한국어", "\u0915\u094d\u0937", "\ufe0f", "ก่"]
_SIMPLE = list("abc .,!?\n\t") + ["é", "—", "“", "’", "…", "中", "😀", "\u00ad", "\u200b", "ß", "\x1c"]


def test_grapheme_counts_agree_with_the_unicode_rules():
    rng = random.Random(22)
    cluster = regex.compile(r"\X", regex.DOTALL)
    for _ in range(3000):
        pieces = _SIMPLE + (_JOINERS if rng.random() < 0.5 else [])
        sample = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 40)))
        clusters = cluster.findall(sample)
        assert graphemes.graphemes(sample) == clusters
        assert graphemes.count(sample) == len(clusters)
        assert graphemes.truncate(sample, 5) == "".join(clusters[:5])
        assert graphemes.boundaries(sample) == [sum(map(len, clusters[:n])) for n in range(len(clusters) + 1)]


def test_below_combining_marks_only_carriage_return_joins_a_cluster():
    # graphemes.simple looks up only the characters from U+0300 on
    assert [code for code in range(0x300) if graphemes._JOINS.match(chr(code))] == [ord("\r")]


def _ends_on_function_word_by_definition(text_: str, position: int) -> bool:
    head = text_[:position].rstrip(_TRAILING_JOINERS)
    if not head or not head[-1].isalpha():
        return False
    return head.rsplit(None, 1)[-1].lstrip(_WORD_EDGE).casefold() in FUNCTION_WORDS


def _word_cuts_by_definition(text_: str) -> list[int]:
    protected = protected_spans(text_)
    positions = [p for p in range(1, len(text_)) if text_[p].isspace() and not text_[p - 1].isspace()
                 and not any(start < p < end for start, end in protected)]
    return [p for p in positions if not _ends_on_function_word_by_definition(text_, p)] or positions


def _sentence_filter_by_definition(text_: str, positions: list[int]) -> list[int]:
    return [p for p in positions if text_[:p].rstrip()[-1:] not in ":,;–—-([{\"'“‘«„/"]


def test_cut_positions_agree_with_their_definitions():
    rng = random.Random(7)
    pieces = list("ab de.f!? \n:,;\"'“«(…") + ["the ", "and ", "Dr. ", "U.S. ", "z.B. ", "09. ", "x.yz. ", "ÜBER ", "“The ",
                                                "«dello ", "(«the ", "Straße ", "https://e.example/a ", "#tag ", "@me "]
    for _ in range(3000):
        sample = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 50)))
        for position in range(len(sample) + 1):
            assert ends_on_function_word(sample, position) == _ends_on_function_word_by_definition(sample, position)
        assert word_cuts(sample) == _word_cuts_by_definition(sample)
        cuts = sentence_cuts(sample)
        assert cuts == _sentence_filter_by_definition(sample, cuts)
        for stop in (index for index, ch in enumerate(sample) if ch == "."):
            # the abbreviation test reads a few characters back, where the pattern looks from the start
            assert _abbreviation_before(sample, stop) == (_NOT_A_SENTENCE_END.search(sample, 0, stop) is not None)
