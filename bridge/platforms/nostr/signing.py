"""Keys and signatures, by rust-nostr's Python bindings (`nostr-sdk`): never hand-written secp256k1 Schnorr.

Why nostr-sdk (compared on PyPI, docs/nostr.md): it is the maintained reference implementation (monthly releases,
NIP-01/19/23 complete), ships binary wheels (no compiler, no libsecp256k1 to install), and parses both nsec and
hex keys. `pynostr` and `nostr` (0.0.2, 2023) are small and slow-moving, `monstr` and `aionostr` are asyncio
clients without NIP-19/23 coverage to match.
"""

from __future__ import annotations

import json

from bridge.errors import AuthError

KEY_FIX = "give the account's secret key as nsec1... or 64 hex characters (secret_key = { env = \"VAR\" } or { file = \"path\" })"


def load_keys(secret: str):
    """nostr_sdk.Keys from an nsec or hex secret key; AuthError (the account pauses) when it is not one. The
    key is never quoted in the message."""
    import nostr_sdk

    try:
        return nostr_sdk.Keys.parse(secret.strip())
    except Exception:  # the SDK's NostrSdkError says what it could not parse: which is the secret itself
        raise AuthError("the secret key is not a Nostr secret key", KEY_FIX) from None


def public_key(keys) -> tuple[str, str]:
    """(hex, npub) of the keys' public key."""
    key = keys.public_key()
    return key.to_hex(), key.to_bech32()


def sign(unsigned: dict, keys, created_at: int) -> dict:
    """The signed event (id, pubkey, created_at, sig) of an unsigned {kind, content, tags}."""
    import nostr_sdk

    draft = {"pubkey": keys.public_key().to_hex(), "created_at": int(created_at), "kind": unsigned["kind"],
             "tags": unsigned["tags"], "content": unsigned["content"]}
    event = nostr_sdk.UnsignedEvent.from_json(json.dumps(draft)).sign(keys)
    return json.loads(event.as_json())


def note_address(event_id: str) -> str:
    """nostr:note1... (NIP-19/21): how a client opens the note."""
    import nostr_sdk

    return "nostr:" + nostr_sdk.EventId.parse(event_id).to_bech32()
