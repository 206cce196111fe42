"""Feed-wide categories: the ones (nearly) every entry of a document carries.

A podcast that files each episode under "GiantBomb", "video games" and "PS3", or an API blog whose every post is
"adwords_api", says with them what the feed is, not what one post is about; as hashtags they would repeat on
every post. They are found when a document is read, from its own entries, and kept with each entry
(Entry.feed_wide_categories), so that rendering the stored entry again - a retry, an edit - gives the same post.

Channel-level categories are not used: Blogger lists every label the blog ever used there, and podcasts'
iTunes categories are caught by the entries' own share anyway.
"""

from __future__ import annotations

from collections import Counter

from bridge.model import Entry

FEED_WIDE_SHARE = 0.8  # our choice: a category on at least 4 of every 5 entries...
FEED_WIDE_MIN_ENTRIES = 5  # ...of a document with at least this many (fewer say nothing about the feed)


def mark_feed_wide_categories(entries: list[Entry]) -> None:
    """Set each entry's feed_wide_categories: those of its categories that at least FEED_WIDE_SHARE of the
    document's entries carry (compared case-insensitively), when it has FEED_WIDE_MIN_ENTRIES or more."""
    if len(entries) < FEED_WIDE_MIN_ENTRIES:
        return
    counts = Counter(folded for entry in entries for folded in {category.casefold() for category in entry.categories})
    common = {folded for folded, count in counts.items() if count >= FEED_WIDE_SHARE * len(entries)}
    if not common:
        return
    for entry in entries:
        entry.feed_wide_categories = [category for category in entry.categories if category.casefold() in common]
