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


# The instance document, newest first, spelled without a trailing slash: Takahē answers 404 to
# `/api/v2/instance/`, which is what Mastodon.py asks for.
INSTANCE_PATHS = ("/api/v2/instance", "/api/v1/instance")


def profile_named(name: str | None) -> ServerProfile:
    """A profile by its key in PROFILES (as stored with an account's limits); CONSERVATIVE for anything else."""
    return PROFILES.get(name or "", CONSERVATIVE)


def profile_key(profile: ServerProfile) -> str:
    """The key under which `profile` is in PROFILES ("unknown" for CONSERVATIVE)."""
    return next((key for key, value in PROFILES.items() if value is profile), CONSERVATIVE.software)


def identify(version: str | None) -> tuple[ServerProfile, str | None]:
    """The profile for an instance's `version` string, and the software's own version when it says one."""
    text = (version or "").strip()
    match = re.match(r"takahe/(\S+)", text, re.IGNORECASE)
    if match:
        return PROFILES["takahe"], match.group(1)
    if re.fullmatch(r"\d+\.\d+\.\d+\S*", text):
        return PROFILES["mastodon"], text
    return CONSERVATIVE, None
