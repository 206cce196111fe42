"""Nostr: a kind-1 note per entry (and, with long_form, the whole article as a NIP-23 kind-30023 event), signed
with the writer's key and sent to their relays.

    account.py   the [accounts.NAME] table (secret_key, relays, min_relays, long_form)
    events.py    Post -> unsigned events (note, article): tags, length budget. Pure
    payload.py   Platform.payload / describe (the relays' NIP-11 limits applied)
    signing.py   keys (nsec / hex), signatures, ids, NIP-19 -- by nostr-sdk (rust-nostr)
    relays.py    the relay protocol: EVENT/OK per relay under one deadline, REQ, NIP-11
    refusals.py  the relays' answers -> posted / RateLimited / TransientPublishError / AuthError / Permanent
    target.py    exactly once: the signed events are stored before the first send, every retry sends them again
    status.py    what `bridge status` adds: each relay's last answer and the fix
    reactions.py the way back: replies, likes, reposts, quotes of a posted note, read from the relays
docs/nostr.md tells the choices.
"""

from __future__ import annotations

from bridge.config import DEFAULT_TEMPLATE, DEFAULT_TEMPLATE_UNTITLED
from bridge.platforms.base import Platform, lazy
from bridge.platforms.nostr.account import NostrAccount

HERE = __name__

PLATFORM = Platform(
    name="nostr",
    title="Nostr",
    account_model=NostrAccount,
    credential="secret_key",
    credential_noun="a secret key (nsec)",
    make_target=lazy(f"{HERE}.target", "make_target"),  # imports nostr-sdk and websockets
    payload=lazy(f"{HERE}.payload", "payload"),
    describe=lazy(f"{HERE}.payload", "describe"),
    default_templates=(DEFAULT_TEMPLATE, DEFAULT_TEMPLATE_UNTITLED),
    server_limits=True,  # the relays' NIP-11 documents, cached in the state
    uses_article_page=lazy(f"{HERE}.payload", "uses_article_page"),
    status=lazy(f"{HERE}.status", "account_status"),
    status_text=lazy(f"{HERE}.status", "status_text"),
    held_posts_fix=lazy(f"{HERE}.status", "held_posts_fix"),
    reactions=lazy(f"{HERE}.reactions", "gather"),  # replies, reactions, reposts read back from the relays
    long_note_threads=True,  # the thread's notes are signed and stored together (target.py): one set of events
)
