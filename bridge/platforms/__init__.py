"""The registry: every platform bridge posts to, one line each. The rest of bridge finds platforms only here.

Adding a platform: a package bridge/platforms/<name>/ whose PLATFORM is a base.Platform, its test fixture, and
one line below (docs/platforms.md). Importing a platform's package loads its config model, never its SDK.
"""

from __future__ import annotations

from importlib import import_module

from bridge.platforms.base import Platform

# One line per platform: its package's name (= the accounts' `type`). In this order in `preview` and wherever
# platforms are listed.
PLATFORMS: tuple[Platform, ...] = tuple(import_module(f"bridge.platforms.{package}").PLATFORM for package in (
    "mastodon",
    "bluesky",
    "nostr",
    "threads",
))

_BY_NAME = {entry.name: entry for entry in PLATFORMS}


def platform(name: str) -> Platform:
    """The platform an account's `type` names; KeyError for a name no platform has (the config refuses those)."""
    return _BY_NAME[name]


def names() -> tuple[str, ...]:
    return tuple(_BY_NAME)
