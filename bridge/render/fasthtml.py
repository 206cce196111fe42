"""The fast path of HTML -> text (bridge/render/text.py) for the HTML most feeds carry: ordinary prose markup.

bs4 builds a tree of rich objects and markdownify walks it with many generic look-ups: most of a render's cost.
This module builds a plain tree from the same tokenizer events bs4 sees (bs4's own html.parser subclass, so
entities and attributes are read exactly as bs4 reads them, and tags are opened and closed by bs4's rules),
removes the same clutter and writes the same text as our markdownify converter would, rule for rule. Markup it
has no rule for (a doctype or CDATA section, <template>, <textarea>, ruby text, a table cell outside a table,
nesting deeper than text.MAX_NESTING) returns None or raises Unusual, and takes the bs4 path.
tests/test_render_fasthtml.py holds both paths to the same output on the corpus and on crafted markup;
bench/render_check.py compares every corpus payload before and after.
"""

from __future__ import annotations

import functools
import re

from html import unescape as html_unescape

from bs4.builder._htmlparser import BeautifulSoupHTMLParser, HTMLParserTreeBuilder
from bs4.dammit import EntitySubstitution
from markdownify import MarkdownConverter, re_all_whitespace, re_extract_newlines, re_html_heading, re_line_with_content

# Dropped with their content; bs4 keeps their text out of get_text() (its Script and Stylesheet strings).
HIDDEN_TEXT_TAGS = frozenset(("script", "style"))
_VOID = frozenset(HTMLParserTreeBuilder().empty_element_tags)  # <br>, <img>, <input>, <meta>...
# Tags whose text bs4 keeps in other string classes or whitespace rules than the ones followed here.
_SPECIAL = frozenset(("template", "rt", "rp", "textarea"))
_ASCII_SPACES = "\x20\x0a\x09\x0c\x0d"  # BeautifulSoup.ASCII_SPACES
_NON_WHITESPACE = re.compile(r"\S+")  # bs4 splits the class attribute with it (cdata_list_attributes)
_BLOCK_INSIDE = frozenset(
    ("p", "blockquote", "article", "div", "section", "ol", "ul", "li", "dl", "dt", "dd", "table", "thead", "tbody",
     "tfoot", "tr", "td", "th")
)  # fmt: skip
_HEADINGS = frozenset(("h1", "h2", "h3", "h4", "h5", "h6"))


class Unusual(Exception):
    """The markup needs the bs4 path."""


class Node:
    """A tag: its name, attributes (class as a list, as bs4 gives it) and children (Node or str), in order."""

    __slots__ = ("name", "attrs", "children", "parent")

    def __init__(self, name: str, attrs: dict, parent: "Node | None") -> None:
        self.name, self.attrs, self.children, self.parent = name, attrs, [], parent

    @property
    def contents(self) -> list:
        return self.children

    def decompose(self) -> None:
        """Nothing: the caller's walk drops the node (bs4's Tag.decompose, for text.py's shared rules)."""

    def get(self, key: str, default=None):
        return self.attrs.get(key, default)

    def strings(self, found: list | None = None) -> list[str]:
        """Its text, in order (not a script's or style sheet's)."""
        found = [] if found is None else found
        for child in self.children:
            if type(child) is str:
                found.append(child)
            elif type(child) is Node:
                child.strings(found)
        return found

    def get_text(self, separator: str = "", strip: bool = False) -> str:
        if strip:
            return separator.join(s for s in (string.strip() for string in self.strings()) if s)
        return separator.join(self.strings())

    def find_all(self, name: str) -> list["Node"]:
        found = []
        for child in self.children:
            if isinstance(child, Node):
                if child.name == name:
                    found.append(child)
                found.extend(child.find_all(name))
        return found


class _Builder:
    """What bs4's html.parser subclass calls on its BeautifulSoup object, building Nodes instead (the same rules:
    data joined between events, all-ASCII-whitespace data collapsed to one space or newline, void tags closed at
    once). Anything whose bs4 tree would need more rules raises Unusual."""

    class builder:  # the attributes BeautifulSoupHTMLParser reads from soup.builder
        attribute_dict_class = dict
        store_line_numbers = False

    def __init__(self, max_depth: int) -> None:
        self.root = Node("[document]", {}, None)
        self.current = self.root
        self.depth = 0
        self.max_depth = max_depth
        self.data: list[str] = []
        self.in_hidden = 0  # inside <script> or <style>
        self.in_pre = 0  # bs4 keeps whitespace-only text as it is inside <pre> (preserve_whitespace_tags)

    def handle_starttag(self, name, namespace, nsprefix, attrs, sourceline=None, sourcepos=None):
        self.endData()
        if name in _SPECIAL:
            raise Unusual(name)
        if "class" in attrs:
            attrs["class"] = _NON_WHITESPACE.findall(attrs["class"])
        node = Node(name, attrs, self.current)
        self.current.children.append(node)
        self.current = node
        self.depth += 1
        self.in_pre += name == "pre"
        self.in_hidden += name in HIDDEN_TEXT_TAGS
        if self.depth >= self.max_depth:
            raise Unusual("deep")  # text._flatten_deep_tags would rewrite it
        # bs4's parser ends a void tag (<br>, <img>, <input>...) at once, and ignores its end tag if one follows
        return _Void if name in _VOID else _Open

    def handle_endtag(self, name, nsprefix=None):
        """Close the nearest open tag of that name and every tag opened inside it; none open: ignore it (bs4's
        BeautifulSoup._popToTag)."""
        self.endData()
        open_tag = self.current
        while open_tag is not self.root and open_tag.name != name:
            open_tag = open_tag.parent
        if open_tag is self.root:
            return
        while True:
            closing = self.current
            self.in_pre -= closing.name == "pre"
            self.in_hidden -= closing.name in HIDDEN_TEXT_TAGS
            self.current = closing.parent
            self.depth -= 1
            if closing is open_tag:
                return

    def handle_data(self, data):
        self.data.append(data)

    def endData(self, containerClass=None):
        if not self.data:
            return
        text = "".join(self.data)
        self.data = []
        if containerClass is not None:
            if containerClass.__name__ == "Comment":
                return  # text._remove_clutter drops every comment
            raise Unusual(containerClass.__name__)  # doctype, CDATA, processing instruction
        if not self.in_pre and not text.strip(_ASCII_SPACES):
            text = "\n" if "\n" in text else " "
        self.current.children.append(HiddenText(text) if self.in_hidden else text)


class HiddenText(str):
    """A script's or style sheet's text: in the tree, never in get_text()."""


class _Open:
    is_empty_element = False


class _Void:
    is_empty_element = True


def parse(html: str, max_depth: int) -> Node | None:
    """The tree of `html` as bs4's html.parser builder would make it, or None when the markup is not ordinary."""
    builder = _Builder(max_depth)
    try:
        if not _tokenize(html, builder):  # markup the one-regex tokenizer does not vouch for: html.parser's own
            builder = _Builder(max_depth)
            parser = BeautifulSoupHTMLParser(builder, convert_charrefs=False)
            parser.feed(html)
            parser.close()
        builder.endData()
    except Exception:  # Unusual, or anything bs4 would meet too: its path says it in its own words
        return None
    return builder.root


# --- tokenizing well-formed markup -------------------------------------------------------------------------
#
# html.parser finds each tag with several regexes and Python-level bookkeeping per token; for markup made only of
# the constructs below, one regex gives the same events (what BeautifulSoupHTMLParser would call on the builder)
# several times faster. The constructs are the ones every html.parser since Python 3.11 reads alike (later
# versions changed how they read malformed tags, comments and raw text, not these): a start tag whose
# attributes are separated by ASCII whitespace and valued by "...", '...' or a plain unquoted word, an end tag,
# a comment with no "--" inside, text, "&name;", "&#123;" and "&#x7B;", and a lone "&" or "<" followed by a
# character that cannot start markup. Anything else (an entity without its semicolon, a doctype, a tag
# html.parser would have to repair, the raw text of <title> or <textarea>) is left to html.parser.
# tests/test_render_fasthtml.py holds the two to the same tree on every corpus body and on crafted markup.

_SPACE = r"[ \t\n\r\f]"  # ASCII whitespace: what every version takes as whitespace in a tag
_TAG_NAME = r"[a-zA-Z][-a-zA-Z0-9_:.]*"
# name, then "quoted", 'quoted' or an unquoted value (a valueless attribute is bs4's "")
_ATTRIBUTE = rf"{_SPACE}+([a-zA-Z_:][-a-zA-Z0-9_:.]*)(?:{_SPACE}*={_SPACE}*(?:\"([^\"]*)\"|'([^']*)'|([^\s\"'=<>`]+)))?"
_ATTRIBUTES = re.compile(_ATTRIBUTE)
_TOKEN = re.compile(
    r"(?P<text>[^<&]+)"
    rf"|<(?P<start>{_TAG_NAME})(?P<attributes>(?:{_ATTRIBUTE})*){_SPACE}*(?P<self_closing>/?)>"
    rf"|</(?P<end>{_TAG_NAME}){_SPACE}*>"
    r"|(?P<comment><!--(?![->])(?:[^-]|-(?!-))*-->)"
    r"|&(?P<entity>[a-zA-Z][-.a-zA-Z0-9]*);"
    r"|&#(?P<number>[0-9]+|[xX][0-9a-fA-F]+);"
    r"|(?P<literal>&(?=[^a-zA-Z#])|<(?=[^a-zA-Z/!?]))"
)
# Elements whose content some html.parser version reads as raw text (3.11: script and style; later ones also
# iframe, xmp, noembed, noframes, noscript when scripting, and title and textarea as escapable raw text): left to
# html.parser, except a script or style sheet with no "<" inside, which every version reads alike.
_RAW_TEXT = frozenset(("script", "style", "iframe", "xmp", "noembed", "noframes", "noscript", "title", "textarea",
                       "plaintext"))
_SCRIPT_OR_STYLE = frozenset(("script", "style"))
_RAW_CONTENT = re.compile(rf"([^<]*)</([a-zA-Z]+){_SPACE}*>")
_ENTITIES = EntitySubstitution.HTML_ENTITY_TO_CHARACTER
_character_reference = BeautifulSoupHTMLParser._dereference_numeric_character_reference


def _tokenize(html: str, builder: "_Builder") -> bool:
    """Give `builder` the tree BeautifulSoupHTMLParser's calls would give it for `html`; False (having built some)
    when the markup holds anything outside the constructs above.

    The builder's handle_starttag, handle_endtag and endData are written out here on local variables (one
    method call per event was a third of the time): tests/test_render_fasthtml.py holds the two to the same tree.
    """
    position, end = 0, len(html)
    closed_voids: list[str] = []  # BeautifulSoupHTMLParser.already_closed_empty_element
    token = _TOKEN.match
    root = builder.root
    current, depth, max_depth = builder.current, builder.depth, builder.max_depth
    in_pre, in_hidden = builder.in_pre, builder.in_hidden
    data = builder.data  # text pieces since the last tag or comment (joined by the next one: endData)
    spaces, void, special, hidden_tags = _ASCII_SPACES, _VOID, _SPECIAL, HIDDEN_TEXT_TAGS
    while position < end:
        match = token(html, position)
        if match is None:
            return False
        position = match.end()
        kind = match.lastgroup
        if kind == "text" or kind == "literal":
            data.append(match.group())
            continue
        if kind == "entity":
            name = match.group("entity")
            character = _ENTITIES.get(name)
            data.append(character if character is not None else "&" + name)
            continue
        if kind == "number":  # a numeric character reference
            character, _replaced, rest = _character_reference(match.group("number"))
            data.append(character)
            data.append(rest)
            continue
        if kind == "end":
            name = match.group("end").lower()
            if name in closed_voids:
                closed_voids.remove(name)  # the end tag of a void element bs4 already closed (text runs on)
                continue
        # a tag or comment: the text before it becomes a string of the open tag (endData)
        if data:
            text = data[0] if len(data) == 1 else "".join(data)
            data.clear()
            if not in_pre and not text.strip(spaces):
                text = "\n" if "\n" in text else " "
            current.children.append(HiddenText(text) if in_hidden else text)
        if kind == "comment":
            continue  # the builder drops the comment itself
        if kind == "self_closing":  # a start tag (its last group, which always takes part)
            name = match.group("start").lower()
            attributes = {}
            written = match.group("attributes")
            if written:
                for attribute in _ATTRIBUTES.finditer(written):
                    value = attribute.group(2)
                    if value is None:
                        value = attribute.group(3)
                        if value is None:
                            value = attribute.group(4) or ""  # no value at all: bs4's ""
                    attributes[attribute.group(1).lower()] = html_unescape(value) if "&" in value else value
            self_closing = match.group("self_closing")
            raw = None
            if name in _RAW_TEXT:
                raw = _RAW_CONTENT.match(html, position)
                if self_closing or name not in _SCRIPT_OR_STYLE or raw is None or raw.group(2).lower() != name:
                    return False
            # handle_starttag
            if name in special:
                raise Unusual(name)
            if "class" in attributes:
                attributes["class"] = _NON_WHITESPACE.findall(attributes["class"])
            node = Node(name, attributes, current)
            current.children.append(node)
            depth += 1
            if depth >= max_depth:
                raise Unusual("deep")  # text._flatten_deep_tags would rewrite it
            if raw is not None:  # a script or style sheet: its text, then its end
                text = raw.group(1)
                if text:
                    if not in_pre and not text.strip(spaces):
                        text = "\n" if "\n" in text else " "
                    node.children.append(HiddenText(text))  # (a script or style sheet: never in get_text)
                position = raw.end()
                depth -= 1
            elif self_closing or name in void:
                depth -= 1  # bs4's parser ends it at once (a void tag: and ignores an end tag that follows)
                if not self_closing:
                    closed_voids.append(name)
            else:
                current = node
                in_pre += name == "pre"
        else:  # an end tag (name read above)
            # handle_endtag: close the nearest open tag of that name and every tag opened inside it; none: ignore
            open_tag = current
            while open_tag is not root and open_tag.name != name:
                open_tag = open_tag.parent
            if open_tag is root:
                continue
            while True:
                closing = current
                in_pre -= closing.name == "pre"
                current = closing.parent
                depth -= 1
                if closing is open_tag:
                    break
    builder.current, builder.depth, builder.in_pre, builder.in_hidden = current, depth, in_pre, in_hidden
    return True


# --- removing clutter (text._remove_clutter's rules, on a Node tree) ------------------------------------------


def remove_clutter(root: Node, drop_or_mark, hidden_or_jump_link) -> None:
    """text._remove_clutter on a Node tree: two walks in document order, each not looking inside what it removed
    or replaced. A visit returns True to drop the tag, a Node to put in its place, or False to keep it."""
    _prune(root, drop_or_mark)
    _prune(root, hidden_or_jump_link)


def _prune(node: Node, visit) -> None:
    kept = []
    for child in node.children:
        if isinstance(child, Node):
            verdict = visit(child)
            if verdict is True:
                continue
            if isinstance(verdict, Node):
                verdict.parent = node
                child = verdict
            else:
                _prune(child, visit)
        kept.append(child)
    node.children = kept


def break_mark(mark: str) -> Node:
    """The <p> that stands for a dropped block (text._drop_or_mark's marker)."""
    node = Node("p", {}, None)
    node.children.append(mark)
    return node


# --- converting (markdownify's process_tag / process_text with our converter's options) ---------------------


def _removes_whitespace(name: str) -> bool:
    """markdownify's should_remove_whitespace_inside, and _outside (which adds <pre>, never on the fast path)."""
    return name in _BLOCK_INSIDE or re_html_heading.match(name) is not None


def convert(root: Node, converter, is_bold_heading) -> str:
    """The text our markdownify converter (`converter`, text._PlainText) writes for the tree."""
    return _converter(converter, is_bold_heading).tag(root, frozenset())


_LEARNED_MAX = 4096  # tag names and nestings a converter remembers (a few dozen in ordinary markup)


@functools.lru_cache(maxsize=4)
def _converter(converter, is_bold_heading) -> "_Converter":
    return _Converter(converter, is_bold_heading)  # stateless but for what it learns of tag names


class _Converter:
    def __init__(self, converter, is_bold_heading) -> None:
        self.md = converter
        self.is_bold_heading = is_bold_heading
        md = converter
        self.functions = {
            "a": md.convert_a, "img": md.convert_img, "br": md.convert_br, "hr": md.convert_hr,
            "blockquote": md.convert_blockquote, "q": md.convert_q, "dt": md.convert_dt, "dd": md.convert_dd,
            "figure": md.convert_figure, "p": self.paragraph, "ul": self.list, "ol": self.list, "li": self.item,
            "div": md.convert_div, "article": md.convert_div, "section": md.convert_div, "dl": md.convert_div,
            "[document]": md.convert__document_,
        }  # fmt: skip
        for name in ("b", "strong", "em", "i", "u", "del", "s", "sub", "sup", "small", "mark", "code", "kbd", "samp",
                     "var", "abbr", "cite"):
            self.functions[name] = md._keep_text
        for name in _HEADINGS:
            self.functions[name] = functools.partial(self.heading, int(name[1:]))
        self.known: dict[str, tuple] = {}  # tag name -> (conversion or None, removes whitespace, tags it adds)
        self.blocks: dict[str, bool] = {}  # tag name -> _removes_whitespace
        self.inner: dict[tuple[frozenset, str], frozenset] = {}  # (parent tags, name) -> the children's parent tags

    def learn(self, name: str) -> tuple:
        function = self.functions.get(name)
        if function is None and self.md.get_conv_fn(name) is not None:
            raise Unusual(name)  # a table cell outside any table: markdownify's rules for it are not here
        # (a tag markdownify has no conversion for, such as span, font or time: its text as it is)
        added = {name}
        if re_html_heading.match(name) is not None:
            added.add("_inline")
        if name in ("code", "kbd", "samp"):
            added.add("_noformat")
        known = self.known[name] = (function, _removes_whitespace(name), frozenset(added))
        return known

    def removes_whitespace_outside(self, sibling) -> bool:
        if sibling is None or type(sibling) is not Node:
            return False
        name = sibling.name
        removes = self.blocks.get(name)
        if removes is None:
            removes = self.blocks[name] = _removes_whitespace(name)
        return removes

    def tag(self, node: Node, parent_tags: frozenset) -> str:
        name = node.name
        known = self.known.get(name) or self.learn(name)
        function, remove_inside, added = known
        inner_tags = self.inner.get((parent_tags, name))
        if inner_tags is None:
            if len(self.inner) >= _LEARNED_MAX:  # odd markup, feed after feed: keep the memory bounded
                self.known.clear(), self.blocks.clear(), self.inner.clear()
            inner_tags = self.inner[(parent_tags, name)] = parent_tags | added
        children = node.children
        last = len(children) - 1
        strings = []
        blocks = self.blocks
        for index, child in enumerate(children):
            if type(child) is Node:
                converted = self.tag(child, inner_tags)
            else:
                # removes_whitespace_outside(previous) and (following), written out: this runs for every text
                previous = children[index - 1] if index else None
                following = children[index + 1] if index < last else None
                after_block = before_block = False
                if type(previous) is Node:
                    after_block = blocks.get(previous.name)
                    if after_block is None:
                        after_block = self.removes_whitespace_outside(previous)
                if type(following) is Node:
                    before_block = blocks.get(following.name)
                    if before_block is None:
                        before_block = self.removes_whitespace_outside(following)
                if not child.strip() and (
                    (remove_inside and (previous is None or following is None)) or after_block or before_block
                ):
                    continue
                converted = child
                if "\n" in converted or "\t" in converted or "\r" in converted or "  " in converted:
                    converted = re_all_whitespace.sub(" ", converted)  # (a lone space stays as it is)
                if after_block or (remove_inside and previous is None):
                    converted = converted.lstrip(" \t\r\n")
                if before_block or (remove_inside and following is None):
                    converted = converted.rstrip()
            if converted:
                strings.append(converted)
        # markdownify: collapse newlines at child boundaries, at most two
        pieces = []
        pending = ""  # the previous string's trailing newlines
        for string in strings:
            if string[0] != "\n" and string[-1] != "\n":
                leading, content, trailing = "", string, ""
            else:
                leading, content, trailing = re_extract_newlines.match(string).groups()
            if pending and leading:
                leading = "\n" * min(2, max(len(pending), len(leading)))
            else:
                pieces.append(pending)
            pieces.append(leading)
            pieces.append(content)
            pending = trailing
        pieces.append(pending)
        text = "".join(pieces)
        return function(node, text, parent_tags=parent_tags) if function is not None else text

    def heading(self, level: int, node: Node, text: str, parent_tags) -> str:
        return self.md.convert_hN(level, node, text, parent_tags)

    def paragraph(self, node: Node, text: str, parent_tags) -> str:
        if "_inline" not in parent_tags and self.is_bold_heading(node):
            return self.md.convert_hN(2, node, text, parent_tags)
        return MarkdownConverter.convert_p(self.md, node, text, parent_tags)

    @staticmethod
    def list(node: Node, text: str, parent_tags) -> str:
        siblings = node.parent.children
        following = None
        for sibling in siblings[siblings.index(node) + 1 :]:
            if isinstance(sibling, Node) or sibling.strip() != "":
                following = sibling
                break
        before_paragraph = following is not None and (not isinstance(following, Node) or following.name not in ("ul", "ol"))
        if "li" in parent_tags:
            return "\n" + text.rstrip()
        return "\n\n" + text + ("\n" if before_paragraph else "")

    def item(self, node: Node, text: str, parent_tags) -> str:
        text = (text or "").strip()
        if not text:
            return "\n"
        parent = node.parent
        if parent is not None and parent.name == "ol":
            start = parent.get("start")
            start = int(start) if start and str(start).isnumeric() else 1
            siblings = parent.children
            earlier = sum(1 for s in siblings[: siblings.index(node)] if isinstance(s, Node) and s.name == "li")
            bullet = f"{start + earlier}."
        else:
            depth, up = -1, node
            while up is not None:
                if up.name == "ul":
                    depth += 1
                up = up.parent
            bullets = self.md.options["bullets"]
            bullet = bullets[depth % len(bullets)]
        bullet += " "
        width = len(bullet)
        indent = " " * width
        text = re_line_with_content.sub(lambda m: indent + m.group(1) if m.group(1) else "", text)
        return "%s\n" % (bullet + text[width:])
