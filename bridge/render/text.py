"""HTML -> readable plain text, with the blog platforms' boilerplate removed.

markdownify does the walk over the HTML; our converter makes plain text rather than Markdown: paragraphs kept
(separated by a blank line), entities decoded, whitespace collapsed, images dropped (an emoji drawn as an
image keeps its emoji), inline links reduced to their text (a link whose text is its own address keeps the full
address, so Mastodon's "https:// example.com/lon…" display becomes the real URL), lists as "• " lines.

Boilerplate, found in the corpus of real feeds (tests/render_corpus.py):
- Medium: "<title> was originally published in <publication> on Medium, where people are continuing the
  conversation…", "Continue reading on Medium »", the 1x1 stat image.
- WordPress: "The post <title> appeared first on <site>.", "[…]" excerpt tails, "… Read More Here →" /
  "Continue reading" more-links, Jetpack sharing and related-posts blocks, screen-reader-only text.
- Substack: share/subscribe buttons and widgets, footnotes, the closing "Read more" link.
- Ghost: bookmark/file/signup/call-to-action cards, the "Reply to this post" mailto link.
- Blogger: the "#more" jump link (its text is the blog's own, e.g. "Did You Click to Read the Whole Story?"),
  FeedBurner flare and tracking pixels.
- Others: Slashdot's "Read more of this story at Slashdot.", Bluesky's "[contains quote post or other embedded
  content]", Hatena's Amazon boxes, Podlove/Flattr buttons, Mastodon's invisible link parts.
"""

from __future__ import annotations

import functools
import html as html_lib
import re
import warnings
from dataclasses import dataclass

import regex

from bs4 import BeautifulSoup, Comment, MarkupResemblesLocatorWarning, NavigableString, Tag
from markdownify import MarkdownConverter

from bridge.render import fasthtml
from bridge.render.fit import sentence_cuts
from bridge.render.links import is_pointer

# A summary that is just a URL is text to us, not a file name to open: bs4 need not say so.
warnings.filterwarnings("ignore", category=MarkupResemblesLocatorWarning, module=__name__)

# Elements that never carry readable prose for a post.
_DROP_TAGS = (
    "script", "style", "noscript", "svg", "math", "form", "button", "input", "select", "textarea", "source",
    "picture", "canvas", "map", "template", "figcaption", "head", "title", "meta", "link",
)  # fmt: skip
# Blocks that interrupt the prose (code, tables, embedded players): dropped too, and the opening of a text
# stops where the first one was, so a teaser never reads "Here is how:" followed by nothing.
_BREAK_TAGS = ("pre", "table", "iframe", "object", "embed", "video", "audio")

# Embeds whose content is the fallback shown without the player ("<object><p>Read the transcript…</p></object>"):
# that text is the writer's and is kept, unless it only says the reader's browser cannot play the embed.
_FALLBACK_TAGS = ("iframe", "object", "video", "audio")
_NO_SUPPORT = re.compile(r"\b(?:browser|player)\b.{0,40}\b(?:not|n't|doesn't|cannot|can't)\b.{0,30}\b(?:support|play|"
                         r"display|show|render)|\benable (?:javascript|iframes)\b|\b(?:upgrade|update) your browser\b",
                         re.IGNORECASE | re.DOTALL)


def _readable_fallback(tag: Tag) -> bool:
    text = tag.get_text(" ", strip=True)
    return bool(text) and not _NO_SUPPORT.search(text)


# Platform widgets and hidden text, by class or attribute. Matched with set lookups in one walk over the
# tree: a CSS selector list this long made soupsieve the largest cost of rendering.
_DROP_CLASSES = frozenset(
    (
        # Substack
        "button-wrapper", "subscription-widget-wrap", "subscription-widget-wrap-editor",
        "subscription-widget", "captioned-button-wrap", "share-dialog", "embedded-post-wrap",
        "image-link-expand", "footnote-anchor", "footnote", "footnotes",
        # footnotes elsewhere (kramdown, Hugo, GitHub-style)
        "footnote-ref", "footnote-backref", "data-footnote-backref",
        # Medium
        "medium-feed-image", "medium-feed-link",
        # FeedBurner / Blogger
        "feedflare", "blogger-post-footer",
        # WordPress
        "sharedaddy", "jp-relatedposts", "wp-block-embed", "wp-caption-text", "more-link", "read_more",
        "read-more", "screen-reader-text", "wp-block-buttons",
        # Ghost cards that are not prose
        "kg-bookmark-card", "kg-file-card", "kg-signup-card", "kg-cta-card", "kg-button-card",
        "kg-audio-card", "kg-video-card", "kg-embed-card", "kg-gallery-card", "kg-product-card",
        "kg-header-card",
        # Slashdot, Hatena, Podlove, Mastodon, generic hidden text
        "share_submission", "hatena-asin-detail", "podlove-contributor-button", "FlattrButton",
        "invisible", "sr-only", "visually-hidden",
    )
)  # fmt: skip
_DROP_ATTRIBUTES = ("hidden", "data-footnote-backref", "data-footnote-ref")


def _is_widget(tag) -> bool:
    classes = tag.get("class")
    if classes and not _DROP_CLASSES.isdisjoint(classes):
        return True
    attrs = tag.attrs
    return any(name in attrs for name in _DROP_ATTRIBUTES) or attrs.get("aria-hidden") == "true"


_MORE_BREAK = re.compile(r"<!--\s*more\b[^>]*-->", re.IGNORECASE)
_ENTITY = re.compile(r"&(?:#\d{1,7}|#[xX][0-9a-fA-F]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});")
_ESCAPED_MARKUP = re.compile(r"&lt;/?(?:p|div|br|a|span|img|em|strong|b|i|ul|ol|li|h[1-6])\b", re.IGNORECASE)
_TAG_LIKE = re.compile(r"</?[A-Za-z][A-Za-z0-9]*(?:\s[^<>]*)?/?>")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_INVISIBLE = re.compile("[\u00ad\u200b\ufeff]")  # soft hyphen, zero-width space, BOM (ZWJ/ZWNJ are kept)
_SPACES = re.compile(r"[^\S\n]+")
_ODD_SPACE = re.compile(r"[^\S\n ]")  # whitespace _SPACES turns into a space even alone (a tab, U+00A0...)
_BLANK_LINES = re.compile(r"\n{3,}")
_URLISH_TEXT = re.compile(r"^(?:https?://)?(?:www\.)?[^\s/]+\.[^\s]+$", re.IGNORECASE)
# markdownify converts the tree recursively, a few Python frames per level: a feed with hundreds of unclosed
# tags (`<b><b><b>...`) would pass the interpreter's recursion limit. Real prose nests a few dozen levels at most;
# the tags below this depth are replaced by their text before conversion.
MAX_NESTING = 64
_HEADING_MARK = "\ue000"  # marks a heading's paragraph between conversion and _drop_headings
_BREAK_MARK = "\ue001"  # a paragraph standing for a dropped code block, table or embed
_ELLIPSIS_TAIL = re.compile(r"(?:…|\.\.\.+)$")

# Whole paragraphs that are a platform's footer.
_BOILERPLATE_PARAGRAPHS = (
    re.compile(r"\bwas originally published in\b.{1,300}\bon Medium\b", re.IGNORECASE),
    re.compile(r"^\[contains quote post or other embedded content\]$"),
)
# The same, found anywhere in the text: no match there, none in any paragraph (a match never spans a line).
_BOILERPLATE_ANYWHERE = tuple(re.compile(rule.pattern, rule.flags | re.MULTILINE) for rule in _BOILERPLATE_PARAGRAPHS)
# Tails of the last paragraph: (pattern, replacement, marks the text as cut short).
_MORE_WORDS = (
    r"(?:Read more|Read More|READ MORE|Read More Here|Read more here|Continue reading|Continue Reading|"
    r"Keep reading|Keep Reading|Read the full (?:story|post|article)|Read full (?:story|post|article)|Read the rest)"
)
_MORE_END = r"\s*(?:[»→›>]|&raquo;|\.\.\.|…)?\s*$"
_TAIL_RULES = (
    (re.compile(r"\s*\bThe post\b.{1,500}?\bappeared first on\b.{1,300}$"), "", False),
    (re.compile(r"\s*\bContinue reading on\b.{0,80}$"), "", True),
    (re.compile(r"\s*\bRead more of this story at Slashdot\.?$"), "", False),
    (re.compile(r"\s*\[contains quote post or other embedded content\]$"), "", False),
    (re.compile(r"\s*\[\s*(?:…|\.\.\.|&hellip;)\s*\]$"), "…", True),
    (re.compile(r"\s*(?:…|\.\.\.)\s*" + _MORE_WORDS + _MORE_END), "…", True),
    (re.compile(r"^\(?(?:" + _MORE_WORDS + r"|More)" + r"\)?" + _MORE_END), "", True),
    (re.compile(r"^\((?:more|More)(?:…|\.\.\.)\)$"), "", True),
)
# Text each rule's match must hold ("" for any text): a paragraph without it is not searched (the rules start with
# \s*, so the regex engine would try them at every position).
_TAIL_HINTS = ("appeared first on", "Continue reading on", "Read more of this story at Slashdot",
               "[contains quote post or other embedded content]", "]", "", "", "")


@dataclass(frozen=True)
class ExtractedText:
    """Plain text taken from HTML."""

    text: str  # paragraphs separated by one blank line; lines stripped
    truncated: bool = False  # the source stops mid-text: it ended in "…", "[…]", "Read more"...
    excerpt: str = ""  # the text before a <!--more--> break, when the author placed one
    all_text: str = ""  # every piece of text in the HTML, code and tables too (to compare two versions)
    opening: str = ""  # the teaser's prose: before the first code block, table, embed or list (see _opening)


@functools.lru_cache(maxsize=64)
def html_to_text(html: str) -> ExtractedText:
    """Readable plain text of an HTML fragment, boilerplate removed.

    Cached (the result is immutable): an entry going to a Mastodon and a Bluesky account is rendered twice in
    one delivery pass, and parsing its HTML is most of a render's cost.
    """
    if not html or not html.strip():
        return ExtractedText("")
    if _ESCAPED_MARKUP.search(html) and not _TAG_LIKE.search(html):
        html = html_lib.unescape(html)  # a feed that escaped its HTML twice
    excerpt = ""
    parts = _MORE_BREAK.split(html, maxsplit=1)
    if len(parts) == 2:
        excerpt = _opening(_convert(parts[0])[0])
    tree = fasthtml.parse(html, MAX_NESTING)  # ordinary markup; None for what needs bs4
    all_text = tree.get_text(" ") if tree is not None else ""  # before _convert_tree changes the tree
    converted = _convert_tree(tree) if tree is not None else None
    if converted is not None:
        marked, truncated = converted
    else:
        soup = BeautifulSoup(html, "html.parser")
        all_text = soup.get_text(" ")
        marked, truncated = _convert_soup(soup)
    text = "\n\n".join(p for p in marked.split("\n\n") if p != _BREAK_MARK)
    return ExtractedText(
        text=text, truncated=truncated, excerpt=excerpt, all_text=all_text, opening=_opening(marked)
    )


def clean_inline(value: str) -> str:
    """An author or feed name as one clean line: tags stripped, entities decoded, whitespace collapsed."""
    if not value:
        return ""
    text = value
    if "<" in text and _TAG_LIKE.search(text):
        text = BeautifulSoup(text, "html.parser").get_text(" ")
    return clean_plain(text)


def clean_plain(value: str) -> str:
    """Text that is already plain (an entry's title, the teaser) as one clean line: entities left by feeds that
    escape twice decoded, whitespace collapsed, and literal "<i>" or "<details>" kept as the writer typed them."""
    if not value:
        return ""
    text = value
    for _ in range(2):  # some feeds escape twice: &amp;#8217;
        if not _ENTITY.search(text):
            break
        text = html_lib.unescape(text)
    text = _INVISIBLE.sub("", _CONTROL.sub(" ", text))
    return _SPACES.sub(" ", text.replace("\n", " ")).strip()


def normalize(text: str) -> str:
    """Collapse whitespace within lines, strip lines, keep at most one blank line between paragraphs."""
    text = _INVISIBLE.sub("", _CONTROL.sub(lambda m: "\n" if m.group() in "\r\x0b\x0c" else "", text))
    # (runs of spaces never span a line: one pass over the text leaves at most one space at either end of a line)
    if "  " in text or "\t" in text or (not text.isascii() and _ODD_SPACE.search(text)):  # else nothing to collapse
        text = _SPACES.sub(" ", text)
    text = text.replace(" \n", "\n").replace("\n ", "\n")
    return (_BLANK_LINES.sub("\n\n", text) if "\n\n\n" in text else text).strip()


def _convert(html: str) -> tuple[str, bool]:
    tree = fasthtml.parse(html, MAX_NESTING)
    converted = _convert_tree(tree) if tree is not None else None
    return converted if converted is not None else _convert_soup(BeautifulSoup(html, "html.parser"))


def _convert_soup(soup: BeautifulSoup) -> tuple[str, bool]:
    _remove_clutter(soup)
    _flatten_deep_tags(soup)
    return _finish(_PlainText().convert_soup(soup))


def _convert_tree(tree: fasthtml.Node) -> tuple[str, bool] | None:
    """_convert_soup's twin on the fast path's tree: the same rules, the same text (None: take the bs4 path).
    The tree is changed in place."""
    fasthtml.remove_clutter(tree, _drop_or_mark_node, _drop_hidden_or_jump_link)
    try:
        converted = fasthtml.convert(tree, _PLAIN_TEXT, _is_bold_heading)
    except fasthtml.Unusual:
        return None
    return _finish(converted)


# Tags _drop_or_mark_node reads by name; any other is dropped only as a widget, which takes an attribute.
_NAMED_CLUTTER = frozenset(_DROP_TAGS + _FALLBACK_TAGS + _BREAK_TAGS)


def _drop_or_mark_node(tag: fasthtml.Node):
    """_drop_or_mark's rules for the fast path's tree: True drops the tag, a Node replaces it."""
    if tag.name not in _NAMED_CLUTTER:
        return bool(tag.attrs) and _is_widget(tag)  # (most tags: <p>, <em>, <li> without attributes)
    if tag.name in _DROP_TAGS:
        return True
    if tag.name in _FALLBACK_TAGS and _readable_fallback(tag):
        tag.name, tag.attrs = "div", {}
        return False
    if tag.name in _BREAK_TAGS:
        return fasthtml.break_mark(_BREAK_MARK)
    return _is_widget(tag)


def _finish(converted: str) -> tuple[str, bool]:
    text = _drop_headings(converted)
    if _ENTITY.search(text):
        text = html_lib.unescape(text)  # entities escaped twice in the source
    text = normalize(text)
    return _strip_boilerplate(text)


def _opening(marked: str) -> str:
    """The teaser: the first run of prose, before the first dropped block (code, table, embed) or list.

    Prose only: lists (show notes, link roundups) are skipped where they open the text and end the run where
    they follow it; stray glyphs ("★", "◉"), sponsor and download lines are passed over. A text that is all
    list gives the
    sentences among its first items, or nothing (the title speaks). A closing lead-in ("Here is how:") loses
    its last sentence, whose code block is gone; a one-sentence lead-in that is the whole opening is kept.
    """
    paragraphs = [p for p in marked.split("\n\n") if p.strip()]
    run: list[str] = []
    lone_lead_in = ""  # "Posts in this series:" before a list: kept only when no prose follows the list
    for paragraph in paragraphs:
        kind = _kind(paragraph)
        if kind == "prose":
            prose, list_follows = _before_list_lines(paragraph)
            run.append(prose)
            kind = "list" if list_follows else kind
        if kind == "noise" or not run or kind == "prose":
            continue
        if kind == "list" and len(run) == 1 and _is_signpost(run[0]):
            first_lead_in = run.pop()
            lone_lead_in = lone_lead_in or first_lead_in
            continue
        break
    if not run:
        return lone_lead_in or _sentences_from_list(paragraphs)
    if _is_lead_in(run[-1]):
        run[-1] = _without_lead_in(run[-1], alone=len(run) == 1)
    return "\n\n".join(p for p in run if p)


# Paragraphs that are no teaser: sponsor reads, download/subscribe calls (podcast feeds), a list's own lead-in.
_NOT_TEASER = re.compile(
    r"^(?:[\w’' ]{0,40}\b(?:sponsored|brought to you|supported) by\b|(?:our )?sponsors?:|(?:you can )?download\b|"
    r"support (?:the|this|our) (?:show|podcast)|(?:please )?subscribe\b|(?:show ?notes|links|follow[- ]up):?$)",
    re.IGNORECASE,
)
_LIST_LINE = re.compile(r"^(?:•|\d{1,3}[.)])\s")
# A symbol (emoji, ★) or an arrow; not a dash, which opens lines of dialogue.
_SYMBOL_BULLET = regex.compile(r"^[\p{So}\u2190-\u21ff\p{Sk}*]+\ufe0f?\s")
_LEAD_IN_ENDS = (":", "：")
SIGNPOST_MAX_WORDS = 8  # "Posts in this series:", "Show notes:": a lead-in this short says nothing by itself
_ITEM_SENTENCE = re.compile(r"^\w.{20,}[.!?]$")
LIST_ITEMS_FOR_TEASER = 8  # a list-only text: how many of its first items may give their sentences


def _is_list(text: str) -> bool:
    """A list: markdownify's "• " and "1. " items, or lines that each open with a symbol and a space
    ("🎙️ Guest", "→ Link"), as podcast show notes often draw them."""
    if _LIST_LINE.match(text):
        return True
    lines = text.split("\n")
    return len(lines) >= 2 and all(_SYMBOL_BULLET.match(line) for line in lines)


def _kind(paragraph: str) -> str:
    """"prose"; "block" (a dropped code block or table) and "list" end the teaser; "noise" (a stray glyph such as
    "★", "◉", "¶", "→" or a lone emoji, a sponsor or download line) is passed over."""
    text = paragraph.strip()
    if text == _BREAK_MARK:
        return "block"
    if _is_list(text):
        return "list"
    if not re.search(r"\w", text) or _NOT_TEASER.match(text):
        return "noise"
    return "prose"


def _before_list_lines(paragraph: str) -> tuple[str, bool]:
    """A paragraph's lines before a list written with line breaks ("Topics:<br>• one<br>• two"), and whether
    such a list followed."""
    lines = paragraph.split("\n")
    for index, line in enumerate(lines):
        if index and _is_list(line):
            return "\n".join(lines[:index]), True
    return paragraph, False


def _is_lead_in(paragraph: str) -> bool:
    return paragraph.rstrip().endswith(_LEAD_IN_ENDS)


def _is_signpost(paragraph: str) -> bool:
    """A short one-sentence lead-in to a list: the teaser looks for prose after the list first."""
    return _is_lead_in(paragraph) and len(paragraph.split()) <= SIGNPOST_MAX_WORDS and not sentence_cuts(paragraph)


def _without_lead_in(paragraph: str, *, alone: bool) -> str:
    """A paragraph ending in ":" (its code block or list is not in the teaser) without its last sentence;
    when that sentence is all there is, dropped, or kept as written when it is the teaser's only paragraph (the
    link follows it: "Wikipedia says that O stands for:")."""
    ends = sentence_cuts(paragraph.rstrip())
    if ends:
        return paragraph[: ends[-1]].rstrip()
    return paragraph if alone else ""


def _sentences_from_list(paragraphs: list[str]) -> str:
    """The items among a list's first ones that are sentences ("Does anyone doubt that…?"), not link titles."""
    items = [
        _LIST_LINE.sub("", line, count=1).strip()
        for paragraph in paragraphs
        if _LIST_LINE.match(paragraph.strip())
        for line in paragraph.split("\n")
        if _LIST_LINE.match(line)
    ]
    items = [item for item in items if item and not item.endswith(_LEAD_IN_ENDS)][:LIST_ITEMS_FOR_TEASER]
    return " ".join(item for item in items if _ITEM_SENTENCE.match(item))


def _drop_headings(text: str) -> str:
    """Headings are signposts for a reader of the page, not part of a post's prose: drop them (unless the
    text has nothing else)."""
    paragraphs = text.split("\n\n")
    prose = [p for p in paragraphs if not p.strip().startswith(_HEADING_MARK)]
    if not any(p.strip() for p in prose):
        prose = paragraphs
    return "\n\n".join(prose).replace(_HEADING_MARK, "")


def _flatten_deep_tags(soup: BeautifulSoup) -> None:
    """Replace every tag deeper than MAX_NESTING by its text, so no later step recurses deeper than that.

    An iterative walk; each deep subtree is replaced once, as a whole (unwrapping tag by tag costs bs4 a walk
    down the remaining chain each time: quadratic in the depth).
    """
    stack = [(soup, 0)]
    while stack:
        tag, depth = stack.pop()
        children = [child for child in tag.contents if isinstance(child, Tag)]
        if depth < MAX_NESTING:
            stack.extend((child, depth + 1) for child in children)
            continue
        for child in children:
            child.replace_with(NavigableString(child.get_text(" ")))


def _remove_clutter(soup: BeautifulSoup) -> None:
    for comment in soup.find_all(string=lambda node: isinstance(node, Comment)):
        comment.extract()
    _walk_pruning(soup, lambda tag: _drop_or_mark(soup, tag))
    _walk_pruning(soup, _drop_hidden_or_jump_link)


def _walk_pruning(soup: BeautifulSoup, visit) -> None:
    """Visit every tag in document order, not descending into one that visit() removed or replaced (True).

    Iterative: no recursion limit on nesting. (bs4's `tag.decomposed` is no way to skip removed tags: on a live
    tag it searches the whole subtree, which made deeply nested input quadratic.)
    """
    stack = [node for node in reversed(soup.contents) if isinstance(node, Tag)]
    while stack:
        tag = stack.pop()
        if not visit(tag):
            stack.extend(node for node in reversed(tag.contents) if isinstance(node, Tag))


def _drop_or_mark(soup: BeautifulSoup, tag: Tag) -> bool:
    if tag.name in _DROP_TAGS:
        tag.decompose()
    elif tag.name in _FALLBACK_TAGS and _readable_fallback(tag):
        tag.name, tag.attrs = "div", {}  # the text a reader without the player gets: kept, and walked like any
        return False
    elif tag.name in _BREAK_TAGS:
        marker = soup.new_tag("p")
        marker.string = _BREAK_MARK
        tag.replace_with(marker)
    elif _is_widget(tag):
        tag.decompose()
    else:
        return False
    return True


def _drop_hidden_or_jump_link(tag: Tag) -> bool:
    if not tag.attrs and tag.name != "sup":
        return False  # no style, no link to look at (a footnote marker's links are inside it)
    style = (tag.get("style") or "").replace(" ", "").lower()
    if "display:none" in style or "visibility:hidden" in style:
        tag.decompose()
        return True
    if tag.name == "a":
        href = (tag.get("href") or "").strip()
        if re.search(r"#more(?:-\d+)?$", href):  # Blogger jump link, WordPress more-link
            tag.decompose()
            return True
        if href.lower().startswith("mailto:") and "reply" in tag.get_text(" ", strip=True).lower():
            tag.decompose()  # "Reply to this post" by email
            return True
    elif tag.name == "sup":
        links = tag.find_all("a")
        if links and all((a.get("href") or "").startswith("#") for a in links):  # footnote marker
            tag.decompose()
            return True
    return False


def _strip_boilerplate(text: str) -> tuple[str, bool]:
    paragraphs = text.split("\n\n")
    if any(rule.search(text) for rule in _BOILERPLATE_ANYWHERE):  # (one pass over the text, not one per paragraph)
        paragraphs = [p for p in paragraphs if not any(rule.search(p) for rule in _BOILERPLATE_PARAGRAPHS)]
    truncated = False
    while paragraphs:
        last = paragraphs[-1]
        if last == _BREAK_MARK:
            paragraphs.pop()  # a trailing code block or embed: nothing to read after it
            continue
        new = last
        for (pattern, replacement, marks_cut), hint in zip(_TAIL_RULES, _TAIL_HINTS):
            candidate = (pattern.sub(replacement, new, count=1) if hint in new else new).rstrip()
            if candidate != new:
                truncated = truncated or marks_cut
                new = candidate
        if _ELLIPSIS_TAIL.search(new):
            truncated = True
            new = _ELLIPSIS_TAIL.sub("…", new)
        if new.strip() in ("", "…"):
            paragraphs.pop()
            continue
        paragraphs[-1] = new
        if new == last:
            break
    return "\n\n".join(paragraphs).strip(), truncated


BOLD_HEADING_MAX_CHARS = 100


def _is_bold_heading(paragraph) -> bool:
    """<p><strong>Session abstract</strong></p>: a heading written as a bold paragraph (no sentence end)."""
    # (str, not NavigableString, and "not a str" for a tag: the fast path's tree has the same shape)
    parts = [child for child in paragraph.contents if not (isinstance(child, str) and not child.strip())]
    if len(parts) != 1 or isinstance(parts[0], str) or parts[0].name not in ("strong", "b"):
        return False
    text = parts[0].get_text(" ", strip=True)
    return 0 < len(text) <= BOLD_HEADING_MAX_CHARS and not text.endswith((".", "!", "?", "…", "。", "！", "？"))


class _PlainText(MarkdownConverter):
    """markdownify, told to write plain text."""

    class Options(MarkdownConverter.DefaultOptions):
        escape_asterisks = False
        escape_underscores = False
        escape_misc = False
        autolinks = False
        wrap = True  # collapse source newlines inside text like a browser does
        wrap_width = None  # ...without re-wrapping paragraphs
        bullets = "•"
        strip_document = "strip"

    def _keep_text(self, el, text, parent_tags):
        return text

    convert_b = convert_strong = convert_em = convert_i = convert_u = _keep_text
    convert_del = convert_s = convert_sub = convert_sup = convert_small = convert_mark = _keep_text
    convert_code = convert_kbd = convert_samp = convert_var = convert_abbr = convert_cite = _keep_text

    def convert_a(self, el, text, parent_tags):
        href = (el.get("href") or "").strip()
        label = text.strip()
        classes = el.get("class") or []
        if not label:
            return text
        if "mention" in classes and label.startswith("@") and "hashtag" not in classes:
            # A Mastodon mention: write it as @user@domain so it still finds the right account.
            match = re.match(r"https?://([^/]+)/@([A-Za-z0-9_]+)", href)
            if match and "@" not in label[1:]:
                return text.replace(label, f"@{match.group(2)}@{match.group(1)}")
            return text
        if href.lower().startswith(("http://", "https://")) and _URLISH_TEXT.match(label.rstrip("…").rstrip(".")):
            shown = re.sub(r"^(?:https?://)?(?:www\.)?", "", label.rstrip("…").rstrip(".").rstrip("…")).lower()
            target = re.sub(r"^https?://(?:www\.)?", "", href).lower()
            if shown and target.startswith(shown):
                return text.replace(label, href)  # the link shows (part of) its own address: give all of it
        if href.lower().startswith(("http://", "https://")) and is_pointer(label):
            return text.replace(label, f"{label} ({href})")  # "here" means nothing without where it points
        return text

    def convert_img(self, el, text, parent_tags):
        alt = (el.get("alt") or "").strip()
        # An emoji drawn as an image (WordPress wp-smiley, Twemoji) keeps its character.
        if alt and len(alt) <= 8 and all(ord(ch) > 0x2000 for ch in alt):
            return alt
        return ""

    def convert_hN(self, n, el, text, parent_tags):
        if "_inline" in parent_tags:
            return text
        text = text.strip()
        return f"\n\n{_HEADING_MARK}{text}\n\n" if text else ""

    def convert_p(self, el, text, parent_tags):
        if "_inline" not in parent_tags and _is_bold_heading(el):
            return self.convert_hN(2, el, text, parent_tags)
        return super().convert_p(el, text, parent_tags)

    def convert_hr(self, el, text, parent_tags):
        return "\n\n"

    def convert_br(self, el, text, parent_tags):
        return " " if "_inline" in parent_tags else "\n"

    def convert_blockquote(self, el, text, parent_tags):
        text = (text or "").strip()
        if "_inline" in parent_tags:
            return f" {text} "
        return f"\n\n{text}\n\n" if text else ""

    def convert_q(self, el, text, parent_tags):
        return f"“{text}”"

    def convert_dt(self, el, text, parent_tags):
        text = (text or "").strip()
        return f"\n\n{text}\n" if text else ""

    def convert_dd(self, el, text, parent_tags):
        text = (text or "").strip()
        return f"{text}\n" if text else ""

    def convert_figure(self, el, text, parent_tags):
        text = (text or "").strip()
        return f"\n\n{text}\n\n" if text else ""


_PLAIN_TEXT = _PlainText()  # stateless: one converter for the fast path
