"""Servers that speak Mastodon's client API, and how each one behaves where they differ.

A profile is chosen from the instance document's `version` string (`4.3.0`, `0.17.0 (compatible; GoToSocial
0.17.0)`, `2.7.2 (compatible; Akkoma 3.13.2)`, `takahe/0.11.0`, ...). Each cell cites the file of the server's
public source where the behaviour lives. Adding a server is one row in PROFILES and one pattern in
identify(); software bridge does not know gets CONSERVATIVE, which assumes the least.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field


@dataclass(frozen=True)
class ServerProfile:
    software: str
    # A repeated Idempotency-Key returns the first status instead of making a second one.
    honours_idempotency_key: bool
    # "graphemes" (Mastodon counts extended grapheme clusters) or "codepoints" (len() of the text).
    counting: str
    # True: every URL counts its own length; False: every URL counts characters_reserved_per_url.
    urls_in_full: bool
    # HTTP status codes the server gives a status it refuses as invalid (empty, too long).
    validation_statuses: frozenset[int]
    # Scopes a token needs to find the account's own statuses (verify_credentials + accounts/:id/statuses).
    own_statuses_scopes: tuple[str, ...]
    # cell name -> "repo path" of the source file where that behaviour lives.
    sources: dict[str, str] = field(default_factory=dict, compare=False)


CONSERVATIVE = ServerProfile(
    software="unknown",
    honours_idempotency_key=False,
    counting="codepoints",
    urls_in_full=True,
    validation_statuses=frozenset({400, 422}),
    own_statuses_scopes=("read",),
)

PROFILES: dict[str, ServerProfile] = {
    "mastodon": ServerProfile(
        software="mastodon",
        honours_idempotency_key=True,
        counting="graphemes",
        urls_in_full=False,
        validation_statuses=frozenset({422}),
        own_statuses_scopes=("read:accounts", "read:statuses"),
    ),
    "takahe": ServerProfile(
        software="takahe",
        honours_idempotency_key=False,
        counting="codepoints",
        urls_in_full=True,
        validation_statuses=frozenset({400}),
        own_statuses_scopes=("read",),
    ),
}


def identify(version: str | None) -> tuple[ServerProfile, str | None]:
    """The profile for an instance's `version` string, and the software's own version when it says one."""
    text = (version or "").strip()
    match = re.match(r"takahe/(\S+)", text, re.IGNORECASE)
    if match:
        return PROFILES["takahe"], match.group(1)
    if re.fullmatch(r"\d+\.\d+\.\d+\S*", text):
        return PROFILES["mastodon"], text
    return CONSERVATIVE, None
