"""Teasers are prose (issue 15, item 4): show notes give their opening sentences, not bullet lists; a lead-in
ending in ":" keeps the text; stray glyphs, headings and sponsor/download lines are no teaser; a cut never ends
on a function word. Unit tests on hand-written HTML, then assertions over the whole corpus."""

from __future__ import annotations

import pytest
import regex

from bridge.model import Entry
from bridge.render import render_post
from bridge.render.fit import shorten, without_dangling_words
from bridge.render.text import html_to_text

from tests.render_corpus import rendered_corpus, requires_corpus, settings


def teaser(html: str) -> str:
    return html_to_text(html).opening


def post_summary(summary_html: str = "", content_html: str = "", title: str = "An episode") -> str:
    entry = Entry(key="k", link="https://example.com/e", title=title, summary_html=summary_html,
                  content_html=content_html)  # fmt: skip
    return render_post(entry, settings()).summary


# --- lists ---------------------------------------------------------------------------------------------------


def test_show_notes_give_their_opening_sentences_not_the_list():
    html = (
        "<p>This week we talk about keyboards. Casey has news.</p><p>Follow-up:</p>"
        "<ul><li>Butterfly keyboards</li><li><a href='https://x.example'>Apple's statement</a></li></ul>"
        "<p>Later prose after the list.</p>"
    )
    assert teaser(html) == "This week we talk about keyboards. Casey has news."


def test_a_list_that_opens_the_text_is_skipped():
    html = "<ul><li>Guest: Ann</li><li>Length: 1h</li></ul><p>Ann joins us to talk about type design.</p>"
    assert teaser(html) == "Ann joins us to talk about type design."


def test_a_text_that_is_all_list_gives_the_sentences_among_its_first_items_or_nothing():
    with_sentence = "<ul><li>Follow-up:</li><li>Does anyone doubt that Facebook is garbage?</li><li>Tesla</li></ul>"
    assert teaser(with_sentence) == "Does anyone doubt that Facebook is garbage?"
    link_titles = "<ul><li>Follow-up:<ul><li>TechCrunch summary</li><li>ReCode recaps</li></ul></li></ul>"
    assert teaser(link_titles) == ""


def test_an_all_list_summary_gives_a_title_only_post_not_the_list():
    # atp's show notes: the feed's summary is the whole list and there is no content
    summary = post_summary("<ul><li>Follow-up:<ul><li>Wireless Accessory Config</li><li>Docker</li></ul></li></ul>")
    assert summary == ""


def test_list_written_with_line_breaks_ends_the_teaser():
    html = "<p>Framasoft is busy. Its plan:<br>1. raise awareness<br>2. offer alternatives</p>"
    assert teaser(html) == "Framasoft is busy."


def test_emoji_bulleted_lines_are_a_list_but_dialogue_dashes_are_not():
    assert teaser("<p>Our new episode is out.</p><p>🎙️ Guest: Ann<br>🎧 Length: 1h</p>") == "Our new episode is out."
    dialogue = "<p>— Who works in security and does not know NDA?<br>— Maybe the NDA says he cannot know.</p>"
    assert teaser(dialogue) == html_to_text(dialogue).text


def test_a_short_signpost_before_a_list_gives_way_to_the_prose_after_it():
    html = "<p>Posts in this series:</p><ul><li>Part 1</li><li>Part 2</li></ul><p>Step 3 fixes the cache.</p>"
    assert teaser(html) == "Step 3 fixes the cache."
    assert teaser("<p>Posts in this series:</p><ul><li>Part 1</li></ul>") == "Posts in this series:"


# --- lead-ins ------------------------------------------------------------------------------------------------


def test_a_lead_in_before_code_keeps_its_earlier_sentences():
    html = (
        "<p>I was investigating performance issues of a Django application. First, I added more timing to "
        "Nginx access.log:</p><pre><code>log_format timing</code></pre><p>After the reload it worked.</p>"
    )
    assert teaser(html) == "I was investigating performance issues of a Django application."


def test_a_lead_in_that_is_the_whole_opening_is_kept():
    html = "<p>Wikipedia says that O stands for:</p><pre>Open-closed</pre><p>Once again, let's go on.</p>"
    assert teaser(html) == "Wikipedia says that O stands for:"
    assert post_summary(content_html=html, title="The O of SOLID") == "Wikipedia says that O stands for:"


def test_abbreviations_are_not_sentence_ends_of_a_lead_in():
    html = "<p>Hier braust am 09. Januar 2020 das Sturmtief über Schiphol:</p><pre>EHAM 0917</pre>"
    assert teaser(html) == "Hier braust am 09. Januar 2020 das Sturmtief über Schiphol:"


# --- glyphs, headings, sponsor lines --------------------------------------------------------------------------


@pytest.mark.parametrize("glyph", ["★", "◉", "¶", "→", "🔥", "* * *"])
def test_stray_glyphs_are_no_teaser(glyph):
    assert teaser(f"<p>A fine linked post.</p><p>{glyph}</p>") == "A fine linked post."
    assert teaser(f"<p>{glyph}</p><p>A fine linked post.</p>") == "A fine linked post."


@pytest.mark.parametrize(
    "line",
    [
        "Sponsored by:",
        "This episode is sponsored by Hover. Hover makes domain names easy.",
        "Today's show is brought to you by Squarespace.",
        "Download MP3",
        "You can download the m4a file or subscribe in iTunes.",
        "Support the show on Patreon.",
        "Subscribe to our newsletter",
    ],
)
def test_sponsor_download_and_subscribe_lines_are_no_teaser(line):
    html = f"<p>Brent talks about NetNewsWire.</p><p>{line}</p><p>He also wrote Vesper.</p>"
    assert teaser(html) == "Brent talks about NetNewsWire.\n\nHe also wrote Vesper."


def test_a_sentence_merely_mentioning_a_download_is_prose():
    html = "<p>The new release is a free download for every Mac.</p>"
    assert teaser(html) == "The new release is a free download for every Mac."


def test_a_bold_paragraph_is_a_heading_but_a_bold_sentence_is_prose():
    html = "<p>The abstract:</p><blockquote><p><strong>Stateful Machines</strong></p><p>State is hard.</p></blockquote>"
    assert teaser(html) == "The abstract:\n\nState is hard."
    assert teaser("<p><strong>This matters a lot.</strong></p><p>Here is why.</p>") == "This matters a lot.\n\nHere is why."


# --- cuts -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "Tickets for the best show in the world and more besides",  # en
        "Wir fahren mit dem Zug nach Berlin und dann weiter",  # de
        "Nous partons avec les enfants dans la maison de campagne",  # fr
        "Vamos con los niños a la casa del pueblo y luego",  # es
        "Vamos com as crianças para a casa da praia e depois",  # pt
        "Andiamo con gli amici nella casa del mare e poi",  # it
        "We gaan met de kinderen naar het huis van opa",  # nl
    ],
)
def test_a_cut_never_ends_on_a_function_word(text):
    for limit in range(12, len(text)):
        cut = shorten(text, lambda s: len(s) <= limit)
        if cut and cut.endswith("…"):
            last = cut[:-1].split()[-1].casefold()
            assert last not in FUNCTION_WORDS, f"{cut!r} at {limit}"


def test_a_cut_of_nothing_but_function_words_still_cuts_at_a_word():
    assert shorten("of the and in to the", lambda s: len(s) <= 10) == "of the…"


def test_a_feeds_own_cut_after_a_function_word_backs_off():
    assert without_dangling_words("a free tool that helps you locate and…") == "a free tool that helps you locate…"
    assert without_dangling_words("Gaza, a free tool in the…") == "Gaza, a free tool…"
    assert without_dangling_words("Ends well.") == "Ends well."


# --- the corpus -----------------------------------------------------------------------------------------------

# Checked independently of the renderer's list: the words the issue names, in its corpus's main languages.
FUNCTION_WORDS = frozenset(
    """the a an and or in to of for with on at by
    der die das und oder zu von mit le la les et ou de du des el los y con para o os e em com het een en""".split()
)
CUT_AFTER_WORD = regex.compile(r"(?<![\w/.@#-])(\w+)…(?=\s*(?:\n|$))")
LIST_LINE = regex.compile(r"(?m)^(?:[•◦▪‣]|\d{1,3}[.)])\s")


def dangling_cut(text: str) -> str | None:
    for match in CUT_AFTER_WORD.finditer(text):
        if match.group(1).casefold() in FUNCTION_WORDS:
            return text[max(0, match.start() - 40) : match.end()]
    return None


@requires_corpus
def test_no_corpus_teaser_is_a_bullet_list():
    lists = [(r.where, r.post.summary[:80]) for r in rendered_corpus() if LIST_LINE.search(r.post.summary)]
    assert not lists, f"{len(lists)} bullet-list teasers, e.g. {lists[:3]}"


@requires_corpus
def test_no_corpus_cut_ends_on_a_function_word():
    found = []
    for rendered in rendered_corpus():
        for name, text in (("Mastodon", rendered.mastodon_status), ("Bluesky", rendered.bluesky_text),
                           ("card", rendered.post.card.description if rendered.post.card else "")):  # fmt: skip
            cut = dangling_cut(text)
            if cut:
                found.append(f"{rendered.where} {name}: {cut!r}")
    assert not found, f"{len(found)} cuts after a function word, e.g. {found[:3]}"


@requires_corpus
def test_no_corpus_teaser_is_a_stray_glyph_or_sponsor_line():
    stray = []
    for rendered in rendered_corpus():
        for paragraph in rendered.post.summary.split("\n\n"):
            if paragraph and not regex.search(r"\w", paragraph) or regex.match(r"(?i)sponsored by|download\b", paragraph):
                stray.append((rendered.where, paragraph))
    assert not stray, stray[:5]


@requires_corpus
def test_no_corpus_entry_with_prose_loses_its_text():
    """An entry whose body has a paragraph of prose gets a teaser (aivarsk's lead-ins before code were lost)."""
    lost = []
    for rendered in rendered_corpus():
        if rendered.post.summary:
            continue
        body = html_to_text(rendered.entry.content_html or rendered.entry.summary_html).text
        prose = [p for p in body.split("\n\n") if len(regex.findall(r"\w", p)) >= 40 and not LIST_LINE.match(p)]
        if prose:
            lost.append((rendered.where, prose[0][:80]))
    assert not lost, lost[:5]


@requires_corpus
def test_aivarsk_gunicorn_keeps_its_text():
    (rendered,) = [r for r in rendered_corpus() if r.entry.title == "Tracking Gunicorn's busy worker count"]
    opening = "I was investigating performance issues of a Django application running with Gunicorn behind a Nginx server."
    assert rendered.post.summary == opening
    assert opening in rendered.mastodon_status
