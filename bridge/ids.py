"""Retry identities, fixed once per delivery: Mastodon's Idempotency-Key and a Bluesky record key (TID)."""

from __future__ import annotations

import hashlib
import random
import secrets
import time

_BASE32_SORTABLE = "234567abcdefghijklmnopqrstuvwxyz"
_last_tid_micros = 0


def idempotency_key(account: str, feed: str, entry_key: str) -> str:
    """A delivery's key, chosen once and stored with it: every retry of that delivery sends the same key.

    Random as well as derived from (account, feed, entry): Pleroma and Akkoma keep one key cache for every
    account on the server (lib/pleroma/web/plugs/idempotency_plug.ex), where a key made of config names alone --
    the same in two writers' configs -- would hand one writer the other's status and never post theirs.
    """
    digest = hashlib.sha256(f"{account}\x00{feed}\x00{entry_key}\x00{secrets.token_hex(16)}".encode()).hexdigest()
    return f"bridge-{digest[:40]}"


def new_tid(now: float | None = None) -> str:
    """An atproto TID: 53 bits of microseconds since the epoch and a 10-bit clock id, base32-sortable, 13 chars."""
    global _last_tid_micros
    micros = int((now if now is not None else time.time()) * 1_000_000)
    # TIDs must increase within a process even when the clock does not
    micros = max(micros, _last_tid_micros + 1)
    _last_tid_micros = micros
    value = (micros << 10) | random.getrandbits(10)
    chars = []
    for _ in range(13):
        chars.append(_BASE32_SORTABLE[value & 31])
        value >>= 5
    return "".join(reversed(chars))
