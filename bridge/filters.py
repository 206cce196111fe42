"""Which entries an account gets: the writer's filters and the per-post opt-out (docs/filters.md).

A filter is resolved per (feed, account) like the post settings (config.Config.entry_filter). `rejects(entry)`
says why an entry is left out, or None when it goes out. The poll records each rejection on a delivery row in
state `filtered`, with this reason, so that status, `poll --dry-run` and `preview` can say what was kept back.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from bridge.model import Entry

DEFAULT_OPT_OUT_CATEGORY = "nosyndicate"
ENTRY_TYPES = ("all", "titled", "untitled")


@functools.lru_cache(maxsize=256)
def compiled(pattern: str) -> re.Pattern:
    """A filter's pattern, compiled once (the config checked it compiles)."""
    return re.compile(pattern)


def _fold(category: str) -> str:
    # Categories match as category rules do: case-insensitively, a leading '#' and outer spaces ignored.
    return category.strip().lstrip("#").strip().casefold()


@dataclass(frozen=True)
class EntryFilter:
    include_categories: tuple[str, ...] = ()
    exclude_categories: tuple[str, ...] = ()
    include_pattern: str | None = None
    exclude_pattern: str | None = None
    entry_type: str = "all"
    opt_out_category: str = DEFAULT_OPT_OUT_CATEGORY  # "" turns the opt-out off

    def rejects(self, entry: Entry) -> str | None:
        """Why `entry` is left out, in a few words, or None when it passes."""
        categories = {_fold(category) for category in entry.categories}
        if self.opt_out_category and _fold(self.opt_out_category) in categories:
            return f"opted out: the entry has the category {self.opt_out_category!r}"
        if self.entry_type != "all":
            titled = is_titled(entry)
            if titled != (self.entry_type == "titled"):
                return f"entry_type = {self.entry_type!r}: the entry is {'titled' if titled else 'untitled'}"
        excluded = [name for name in self.exclude_categories if _fold(name) in categories]
        if excluded:
            return f"exclude_categories: the entry has the category {excluded[0]!r}"
        if self.include_categories and not any(_fold(name) in categories for name in self.include_categories):
            return f"include_categories: the entry has none of {', '.join(repr(c) for c in self.include_categories)}"
        if self.exclude_pattern or self.include_pattern:
            text = searchable_text(entry)
            if self.exclude_pattern and compiled(self.exclude_pattern).search(text):
                return f"exclude_pattern '{self.exclude_pattern}' matches the title or text"
            if self.include_pattern and not compiled(self.include_pattern).search(text):
                return f"include_pattern '{self.include_pattern}' matches neither the title nor the text"
        return None


def searchable_text(entry: Entry) -> str:
    """The title and the plain text of the entry (its content, else its summary): what patterns are matched on."""
    from bridge.render.text import html_to_text

    body = entry.content_html or entry.summary_html
    return f"{entry.title}\n{html_to_text(body).text if body else ''}"


def is_titled(entry: Entry) -> bool:
    """The renderer's own judgement (bridge/render/post.py): an entry whose title is only its text's first words,
    or a placeholder, is a note and gets the untitled template; so is it here."""
    from bridge.config import PostSettings
    from bridge.render import RenderError, render_post

    try:
        post = render_post(entry, PostSettings(template="", template_untitled="", language=None,
                                               visibility="public", content_warning=None))
    except RenderError:  # no link: the post could not be made anyway; judge by the title alone
        return bool(entry.title.strip())
    return bool(post.title)
