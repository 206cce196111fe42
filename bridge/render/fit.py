"""Fitting a post into a platform's limit, link-aware and grapheme-safe.

Shrink in this order (design.md; the issue "Render every entry into the best post each platform allows"):
1. the summary, cut at a sentence boundary (kept whole, no ellipsis), else at a word boundary with "…" —
   with every hashtag first, then dropping hashtags from the end, as long as a useful part of the summary
   (MIN_SUMMARY_GRAPHEMES) survives;
2. without the summary, hashtags dropped from the end;
3. the title, cut at a word boundary with "…";
4. only the template's fixed text and the link.
The permalink is never cut or altered. Text is cut only between grapheme clusters (\\X), never inside a URL,
hashtag or mention; text without spaces (Chinese, Japanese, Thai...) is cut between characters. Nothing is
reordered, so right-to-left text stays as written.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from typing import Callable, Protocol

import regex

from bridge.errors import BridgeError
from bridge.render import graphemes
from bridge.render.hashtags import TEXT_HASHTAG
from bridge.render.links import find_urls
from bridge.render.template import RichText, Segment, parse_template, render_template

ELLIPSIS = "…"
PERMALINK_MARK = "★"  # a link post's own permalink, as linkblogs (Daring Fireball) mark it
MIN_SUMMARY_GRAPHEMES = 40  # our choice: a shorter stub of a summary says nothing; drop a hashtag instead
SENTENCE_PREFERENCE = 0.5  # cut at a sentence when that keeps at least half of what a word cut would keep

# A sentence ends with . ! ? … (then closing quotes/brackets) before whitespace and a non-lowercase letter,
# or with the CJK, Arabic-script and Devanagari full stops, which need no space after them.
_SENTENCE_END = regex.compile(
    r"(?:[.!?…]+[\"'”’»)\]]*(?=\s+(?!\p{Ll}))|[。！？｡]+[」』）”’]*|[؟۔।]+(?=\s|$))"
)
_NO_SPACE_SCRIPT = regex.compile(
    r"[\p{Han}\p{Hiragana}\p{Katakana}\p{Thai}\p{Lao}\p{Khmer}\p{Myanmar}\p{Tibetan}"
    r"\u3000-\u303f\uff00-\uffef\u30fc]"
)
_MENTION = regex.compile(r"(?<![=/\w])@[A-Za-z0-9_]+(?:[.-]+[A-Za-z0-9_]+)*(?:@[\w]+(?:[.-]+[\w]+)*)?")
_NOT_A_SENTENCE_END = regex.compile(
    r"(?:(?<![\w.])(?:\d{1,2}|\p{L}|Mr|Mrs|Ms|Dr|St|Prof|Sr|Jr|vs|ca|bzw|usw|Nr|No|Mt|Fig|Vol|Abs|Art)|\w\.\w+)$"
)
# The last non-word character before a position, found by searching backwards from it (regex's (?r)).
_LAST_NON_WORD = regex.compile(r"(?r)\W")
_NON_SPACE_RUN = re.compile(r"\S+")  # re's \s is exactly str.isspace (regex's is not: \x1c-\x1f)
_CLOSING = ".!?…。！？｡؟۔।\"'”’»)]」』）"
_LIST_ITEM = regex.compile(r"^(?:[•\-*–]|\d{1,3}[.)])\s")
_OPEN_ENDINGS = ":,;–—-([{\"'“‘«„/"  # a paragraph ending like this leads into what was cut ("Sponsored by:")
_TRAILING_JOINERS = " \t\n,;:–—-([{/\\\"'“‘«„"
_SENTENCE_PUNCT = ".!?。！？…؟۔।"
# A cut never leaves a post on an article, conjunction or preposition ("…and the…"): the words that cannot end a
# phrase, in the corpus's main languages (en, de, fr, es, pt, it, nl). Matched case-insensitively.
FUNCTION_WORDS = frozenset(
    """
    a an the and or but nor in into to of for from with on at by as
    der die das den dem des ein eine einen einem einer eines und oder aber in im ins zu zum zur von vom mit auf
    an am für bei aus nach über um
    le la les l un une des du de d et ou mais à au aux en dans pour par sur avec sans
    el los las lo unos unas y e o u del al a con por para sin sobre
    os as um uma umas uns do da dos das em no na nos nas ao aos pelo pela com
    il gli i uno di della dello delle dei degli nel nella su da ed
    het een en of op te voor met aan bij naar
    """.split()
)  # fmt: skip
_FUNCTION_WORD_MAX = max(map(len, FUNCTION_WORDS))
_WORD_EDGE = "\"'“”‘’«»„([{"


class RenderError(BridgeError):
    """A post cannot be made within the platform's limit (the link and the fixed text alone are too long)."""


@dataclass(frozen=True)
class Parts:
    """What a template is filled with; the renderer shrinks summary, hashtags and title."""

    url: str
    title: str = ""
    summary: str = ""
    hashtags: tuple[str, ...] = ()
    author: str = ""
    feed_title: str = ""
    published: str = ""
    target: str = ""  # a link post's subject: the {url} field gives it first, then the permalink after PERMALINK_MARK


class Platform(Protocol):
    def url_segments(self, url: str) -> list[Segment]: ...

    def text_segments(self, text: str) -> list[Segment]: ...

    def fits(self, rich: RichText) -> bool: ...


@dataclass
class Fitter:
    template: str
    parts: Parts
    platform: Platform
    prefix: list[Segment] = field(default_factory=list)  # fixed text before the template (Bluesky's CW line)
    suffix: list[Segment] = field(default_factory=list)  # fixed text after it (a link post's permalink mark)

    # The platform's segments of each text and of the link, made once for all the cuts tried (pure functions)
    _segments: dict[str, list[Segment]] = field(default_factory=dict, repr=False, compare=False)
    _link: list[Segment] | None = field(default=None, repr=False, compare=False)

    def text_segments(self, text: str) -> list[Segment]:
        found = self._segments.get(text)
        if found is None:
            found = self._segments[text] = self.platform.text_segments(text)
        return found

    def build(self, title: str, summary: str, tags: tuple[str, ...], extras: bool = True) -> RichText:
        hashtag_segments: list[Segment] = []
        for tag in tags:
            if hashtag_segments:
                hashtag_segments.append(Segment(" "))
            hashtag_segments.append(Segment("#" + tag, tag=tag))
        if self._link is None:
            self._link = self.link_segments()
        fields = {
            "title": self.text_segments(title),
            "summary": self.text_segments(summary),
            "url": self._link,
            "hashtags": hashtag_segments,
            "author": self.text_segments(self.parts.author) if extras else [],
            "feed_title": self.text_segments(self.parts.feed_title) if extras else [],
            "published": [Segment(self.parts.published)] if extras and self.parts.published else [],
        }
        body = render_template(self.template, fields)
        if not self.prefix and not self.suffix:
            return body
        suffix = self.suffix if body.segments else [segment for segment in self.suffix if segment.text.strip()]
        return RichText(tuple(self.prefix) + body.segments + tuple(suffix))

    def link_segments(self) -> list[Segment]:
        """The {url} field: the permalink; for a link post, the article it points at first (Mastodon builds its
        card from the first URL), then the permalink after its mark."""
        permalink = self.platform.url_segments(self.parts.url)
        if not self.parts.target:
            return permalink
        return [*self.platform.url_segments(self.parts.target), Segment(f"\n{PERMALINK_MARK} "), *permalink]

    def fits(self, rich: RichText) -> bool:
        return self.platform.fits(rich)

    def fit(self) -> RichText:
        title, summary, tags = self.parts.title, self.parts.summary, tuple(self.parts.hashtags)
        full = self.build(title, summary, tags)
        if self.fits(full):
            return full
        # 1. the summary, with every hashtag, then with fewer
        if summary:
            minimum = min(MIN_SUMMARY_GRAPHEMES, graphemes.count(summary))
            for n in range(len(tags), -1, -1):
                kept = tags[:n]
                cut = shorten(summary, lambda s: self.fits(self.build(title, s, kept)), minimum=minimum)
                if cut is not None:
                    return self.build(title, cut, kept)
        # 2. no summary; hashtags from the end
        for n in range(len(tags), -1, -1):
            candidate = self.build(title, "", tags[:n])
            if self.fits(candidate):
                return candidate
        # 3. the title
        if title:
            cut = shorten(title, lambda t: self.fits(self.build(t, "", ())), minimum=1, sentences=False)
            if cut is not None:
                return self.build(cut, "", ())
        # 4. the link and the template's own text
        bare = self.build("", "", (), extras=False)
        if self.fits(bare):
            return bare
        raise RenderError(
            "the link and the template's fixed text alone exceed the platform's limit; "
            "shorten the template or the content warning"
        )


def fit(
    template: str,
    parts: Parts,
    platform: Platform,
    prefix: list[Segment] | None = None,
    *,
    suffix: list[Segment] | None = None,
    link_elsewhere: bool = False,
) -> RichText:
    """The best text for `template` within the platform's limit. A template without {url} gets the link at the
    end, unless the post carries it `link_elsewhere` (Bluesky's card)."""
    if not link_elsewhere and "url" not in template_fields(template):
        template = template.rstrip() + "\n\n{url}"  # a post always carries its link
    return Fitter(template, parts, platform, list(prefix or []), list(suffix or [])).fit()


@functools.lru_cache(maxsize=64)
def template_fields(template: str) -> frozenset[str]:
    return frozenset(name for _literal, name in parse_template(template) if name)


# --- cutting text ------------------------------------------------------------------------------------------


def shorten(
    text: str,
    fits: Callable[[str], bool],
    *,
    minimum: int = 0,
    sentences: bool = True,
    sentence_preference: float = SENTENCE_PREFERENCE,
    max_graphemes: int | None = None,
) -> str | None:
    """The longest good prefix of `text` that `fits`: whole sentences if that keeps enough, else words with
    "…", else (text without spaces) characters with "…". None when nothing of at least `minimum` graphemes fits.

    `max_graphemes`: say that `fits` is `graphemes.count(s) <= max_graphemes`, and word cuts far past it are not
    looked for (a teaser cut from an 8,000-character opening: the same cut, found in the first few hundred).
    """
    if fits(text):
        return text
    protected = protected_spans(text)
    word_positions = word_cuts(text, protected, max_graphemes=max_graphemes)
    best_word = _longest(text, word_positions, fits, with_ellipsis=True)
    if best_word is None:
        best_word = _longest(text, grapheme_cuts(text, protected), fits, with_ellipsis=True)
    best_sentence = _longest(text, sentence_cuts(text), fits, with_ellipsis=False) if sentences else None
    choice = best_word
    if best_sentence is not None and (
        best_word is None or graphemes.count(best_sentence) >= sentence_preference * graphemes.count(best_word)
    ):
        choice = best_sentence
    if choice is None or graphemes.count(choice.rstrip(ELLIPSIS)) < max(minimum, 1):
        return None
    return choice


def prefix_at(text: str, position: int, *, with_ellipsis: bool) -> str:
    """text[:position] made into a clean ending: trailing spaces and joiners dropped, "…" added if asked."""
    head = text[:position].rstrip()
    if not with_ellipsis:
        return head
    head = head.rstrip(_TRAILING_JOINERS)
    if not head:
        return ""
    if head[-1] in _SENTENCE_PUNCT:
        return head
    return head + ELLIPSIS


def _longest(text: str, positions: list[int], fits: Callable[[str], bool], *, with_ellipsis: bool) -> str | None:
    """Binary search over the cut positions (a longer prefix never measures shorter) for the longest fit."""
    low, high = 0, len(positions) - 1
    best = None
    while low <= high:
        middle = (low + high) // 2
        candidate = prefix_at(text, positions[middle], with_ellipsis=with_ellipsis)
        if candidate and fits(candidate):
            best = candidate
            low = middle + 1
        else:
            high = middle - 1
    return best


def protected_spans(text: str) -> list[tuple[int, int]]:
    """URLs, hashtags and mentions: never cut inside them."""
    spans = list(find_urls(text))
    spans += [match.span() for match in TEXT_HASHTAG.finditer(text)]
    spans += [match.span() for match in _MENTION.finditer(text)]
    return sorted(spans)


def _inside(position: int, spans: list[tuple[int, int]]) -> bool:
    return any(start < position < end for start, end in spans)


def sentence_cuts(text: str) -> list[int]:
    """Positions just after a complete sentence or paragraph, in increasing order (never the full length)."""
    positions = set()
    for match in _SENTENCE_END.finditer(text):
        if match.group().startswith(".") and _abbreviation_before(text, match.start()):
            continue  # "z.B.", "U.S.", "Dr.", "09. Januar": an abbreviation or ordinal, not a sentence's end
        positions.add(match.end())
    newline = text.find("\n")
    while newline != -1:
        if _ends_a_block(text, newline):
            positions.add(newline)
        newline = text.find("\n", newline + 1)
    return sorted(p for p in positions if 0 < p < len(text) and _last_visible(text, p) not in _OPEN_ENDINGS)


def _abbreviation_before(text: str, end: int) -> bool:
    """Whether _NOT_A_SENTENCE_END matches text[:end]; searched only in the few characters it can span (the last
    word and what precedes it), not from the start of a long text for every full stop."""
    stop = end - 1 if text[end - 1 : end] == "\n" else end  # `$` also matches before a final newline
    previous = _LAST_NON_WORD.search(text, 0, stop)
    start = max(0, min((previous.start() if previous else 0) - 1, end - 8))
    return _NOT_A_SENTENCE_END.search(text, start, end) is not None


def _last_visible(text: str, position: int) -> str:
    """text[:position].rstrip()[-1:], without copying the text."""
    while position and text[position - 1].isspace():
        position -= 1
    return text[position - 1 : position]


def _ends_a_block(text: str, newline: int) -> bool:
    """A line ending is a sentence boundary after a sentence or a list item; not after a line that reads like
    a heading or caption (short, no closing punctuation), which would leave the post on a dangling signpost."""
    line = text[text.rfind("\n", 0, newline) + 1 : newline].strip()
    if not line:
        return False
    return line[-1] in _CLOSING or bool(_LIST_ITEM.match(line))


def word_cuts(
    text: str, protected: list[tuple[int, int]] | None = None, *, max_graphemes: int | None = None
) -> list[int]:
    """Positions before a space, or between two clusters where one is from a script written without spaces;
    not after a function word ("the", "und", "de"...) unless no other position is left.

    With `max_graphemes` (shorten's: only cuts of at most that many clusters fit) the list may stop past the
    last of those: _longest's binary search finds the same cut in it (see _space_cuts)."""
    protected = protected if protected is not None else protected_spans(text)
    blocked = {position for start, end in protected for position in range(start + 1, end)}  # = _inside, in O(1)
    # (every script without spaces is written past U+0300: the regex module's script lookups read only those)
    if graphemes.simple(text) and (text.isascii() or not _NO_SPACE_SCRIPT.search(graphemes.past_latin(text))):
        # one cluster per character and no script without spaces: the positions are where a space follows text
        if max_graphemes is not None:
            found = _space_cuts(text, blocked, max_graphemes)
            if found and prefix_at(text, found[0], with_ellipsis=True):
                return found
            # (a first cut that leaves nothing breaks the fits-then-fails order the binary search relies on)
        return _space_cuts(text, blocked)
    positions = []
    offset = 0
    previous = ""
    for cluster in graphemes.graphemes(text):
        if offset and offset not in blocked:
            if cluster.isspace() and not previous.isspace():
                positions.append(offset)
            elif _NO_SPACE_SCRIPT.match(previous) or _NO_SPACE_SCRIPT.match(cluster):
                positions.append(offset)
        previous = cluster
        offset += len(cluster)
    phrase_ends = [position for position in positions if not ends_on_function_word(text, position)]
    return phrase_ends or positions


def _space_cuts(text: str, blocked: set[int], longest: int | None = None) -> list[int]:
    """word_cuts for text of one cluster per character and spaces between words: the end of every run of non-space
    characters that a space follows, except inside `blocked`; those not ending on a function word when there are
    any (ends_on_function_word, read from the run itself: the run is the word unless it ends on a joiner).

    With `longest`, the list stops once a phrase end is known and a cut ends on a character kept by prefix_at past
    `longest`: that cut's text and every later one's is longer (one cluster per character), so none of them fits a
    limit of `longest` clusters; a binary search over a fits-then-fails list finds the same last fit without them.
    """
    positions, phrase_ends = [], []
    last = len(text)
    for match in _NON_SPACE_RUN.finditer(text):
        position = match.end()
        if position == last or position in blocked:
            continue
        if longest is not None and position > longest and phrase_ends and text[position - 1] not in _TRAILING_JOINERS:
            break
        positions.append(position)
        word = match.group()
        end = word[-1]
        if end in _TRAILING_JOINERS:
            function_word = ends_on_function_word(text, position)  # the cut reaches back past the joiners
        elif not end.isalpha() or (len(word) > _FUNCTION_WORD_MAX and word[0] not in _WORD_EDGE):
            function_word = False  # (casefolding never makes a word shorter)
        else:
            function_word = word.lstrip(_WORD_EDGE).casefold() in FUNCTION_WORDS
        if not function_word:
            phrase_ends.append(position)
    return phrase_ends or positions


def without_dangling_words(text: str) -> str:
    """Text that the source itself cut after a function word ("…helps you locate and…") ending on the word
    before it instead; any other text unchanged."""
    if not text.endswith(ELLIPSIS):
        return text
    head = text[: -len(ELLIPSIS)]
    while head and ends_on_function_word(head, len(head)):
        shorter = head.rstrip(_TRAILING_JOINERS)
        shorter = shorter[: len(shorter) - len(shorter.rsplit(None, 1)[-1])].rstrip(_TRAILING_JOINERS)
        if not shorter:
            return text  # nothing but function words: leave it as written
        head = shorter
    return head + ELLIPSIS


def ends_on_function_word(text: str, position: int) -> bool:
    """Whether a cut at `position` (with its trailing joiners dropped, as prefix_at does) ends on a word such
    as "the" or "and", which leaves the reader mid-phrase."""
    # Read backwards from the cut, never copying more than a function word's length: this runs for every
    # possible cut of a long text.
    end = position
    while end and text[end - 1] in _TRAILING_JOINERS:
        end -= 1
    if not end or not text[end - 1].isalpha():
        return False
    start = end - 1
    while start and not text[start - 1].isspace():
        start -= 1
        if end - start > _FUNCTION_WORD_MAX and text[start] not in _WORD_EDGE:
            return False  # the word, edge quotes stripped, is already longer than any function word
    word = text[start:end].lstrip(_WORD_EDGE)
    return word.casefold() in FUNCTION_WORDS


def grapheme_cuts(text: str, protected: list[tuple[int, int]] | None = None) -> list[int]:
    """Every cluster boundary outside protected spans (the last resort for a long run without spaces)."""
    protected = protected if protected is not None else protected_spans(text)
    return [p for p in graphemes.boundaries(text)[1:-1] if not _inside(p, protected)]
