"""`bridge login PLATFORM`: get an account's credential interactively, each platform its own way
(Platform.login, e.g. bridge/platforms/mastodon/login.py)."""

from __future__ import annotations

import click

from bridge.platforms import PLATFORMS


@click.group("login")
def login() -> None:
    """Get credentials for an account, interactively."""


for _platform in PLATFORMS:
    if _platform.login is not None:
        login.add_command(_platform.login())
