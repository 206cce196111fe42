"""What `bridge doctor` checks of a Bluesky account beyond logging in."""

from __future__ import annotations

import re

# An app password: four groups of four; the account's main password is anything else.
APP_PASSWORD_SHAPE = re.compile(r"[a-z2-7]{4}(-[a-z2-7]{4}){3}")


def credential_check(label: str, value: str):
    """doctor, offline too: an app password, not the main password?"""
    from bridge.doctor import Check

    if not APP_PASSWORD_SHAPE.fullmatch(value):
        return Check(False, label, "it does not look like an app password (four groups of four characters joined by "
                     "dashes); the account's main password works but can do everything, and a leak would give the "
                     "whole account away",
                     "create an app password (Settings > Privacy and security > App passwords) and use it instead",
                     warning=True)
    return Check(True, label, "found, an app password's shape")
