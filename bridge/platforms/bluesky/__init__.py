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
from bridge.platforms.base import Platform, TargetContext
from bridge.platforms.bluesky.account import BlueskyAccount
from bridge.platforms.bluesky.limits import BLUESKY_MAX_IMAGES

# The card (title, description, image) is the link: the text need not repeat them nor spend ~35 of its 300
# graphemes on the URL. A titled post says its title, an untitled one its own text.
DEFAULT_TEMPLATES = ("{title}\n\n{hashtags}", "{summary}\n\n{hashtags}")


def _make_target(context: TargetContext):
    from bridge.platforms.bluesky.target import BlueskyTarget  # imports atproto

    return BlueskyTarget(context.account, context.settings, context.secret, context.state,
                         media_fetcher=context.media_fetcher, total_timeout=context.total_timeout)


def _payload(post, settings, inputs):
    from bridge.platforms.bluesky.payload import payload

    return payload(post, settings, inputs)


def _describe(payload, server_limits):
    from bridge.platforms.bluesky.payload import describe

    return describe(payload, server_limits)


def _status(name, account, info):
    return {"handle": account.handle}


PLATFORM = Platform(
    name="bluesky",
    title="Bluesky",
    account_model=BlueskyAccount,
    credential="app_password",
    credential_noun="an app password",
    make_target=_make_target,
    payload=_payload,
    describe=_describe,
    default_templates=DEFAULT_TEMPLATES,
    max_images=BLUESKY_MAX_IMAGES,
    new_record_key=ids.new_tid,  # the record key (rkey), chosen once when the delivery is queued
    status=_status,
)
