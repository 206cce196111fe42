"""Bluesky (the AT Protocol's app.bsky.feed.post records), through any PDS.

    account.py   the [accounts.NAME] table (handle, service, app_password)
    limits.py    the lexicon's limits and names
    payload.py   Post -> app.bsky.feed.post record (and preview's description of it)
    facets.py    rich text -> link and tag facets (UTF-8 byte offsets)
    links.py     long URLs shown shortened in the text
    target.py    publishing through atproto, the record key (a TID chosen at queueing) as the retry identity
"""

from __future__ import annotations

from bridge import ids
from bridge.platforms.base import Platform, lazy
from bridge.platforms.bluesky.account import BlueskyAccount
from bridge.platforms.bluesky.limits import BLUESKY_MAX_IMAGES

HERE = __name__
# The card (title, description, image) is the link: the text need not repeat them nor spend ~35 of its 300
# graphemes on the URL. A titled post says its title, an untitled one its own text.
DEFAULT_TEMPLATES = ("{title}\n\n{hashtags}", "{summary}\n\n{hashtags}")

PLATFORM = Platform(
    name="bluesky",
    title="Bluesky",
    account_model=BlueskyAccount,
    credential="app_password",
    credential_noun="an app password",
    make_target=lazy(f"{HERE}.target", "make_target"),  # imports atproto
    payload=lazy(f"{HERE}.payload", "payload"),
    describe=lazy(f"{HERE}.payload", "describe"),
    default_templates=DEFAULT_TEMPLATES,
    max_images=BLUESKY_MAX_IMAGES,
    uses_article_page=lambda settings, account: True,  # its card: the page's title, description and picture
    new_record_key=ids.new_tid,  # the record key (rkey), chosen once when the delivery is queued
    status=lambda name, account, info: {"handle": account.handle},
    credential_check=lazy(f"{HERE}.doctor", "credential_check"),
    long_note_threads=True,
    reactions=lazy(f"{HERE}.reactions", "gather"),
)
