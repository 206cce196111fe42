"""What `bridge doctor` shows and checks for a Mastodon account beyond logging in: the server's limits, what its
token may do, and whether it may upload the images its feeds attach."""

from __future__ import annotations

import re

from bridge.config import Config

# An RFC 6750 b64token: what Doorkeeper, GoToSocial and Takahē hand out.
TOKEN_SHAPE = re.compile(r"[A-Za-z0-9._~+/-]+=*")


def credential_check(label: str, value: str):
    """doctor, offline too: does the access token look like one?"""
    from bridge.doctor import Check

    if value.lower().startswith("bearer "):
        return Check(False, label, "the access token starts with 'Bearer '",
                     "put the token alone in its file or variable: bridge adds 'Bearer ' itself")
    if not TOKEN_SHAPE.fullmatch(value):
        return Check(False, label, "the access token holds spaces or other characters no token has",
                     "copy the token again (Preferences > Development > your application > Your access token)")
    return Check(True, label, "found, a token's shape")


def upload_check(config: Config, account: str, label: str, info: dict) -> list:
    """Images are uploaded only where a feed attaches them; without write:media that pauses the account."""
    from bridge.doctor import Check

    if info.get("can_upload") is not False:
        return []
    attaching = [feed.name for feed in config.feeds if account in feed.accounts
                 and config.post_settings(feed, account).images in ("auto", "attach")]
    if not attaching:
        return []
    return [Check(False, f"{label} token", f"the token may not upload images (no write:media), and feed(s) "
                  f"{', '.join(attaching)} attach them (photo posts, with images = \"auto\"): the account would be paused at the first image",
                  f"create a token with write:statuses write:media (`bridge login mastodon --instance URL`) and put it "
                  f"where accounts.{account}.access_token points, or set images = \"card\"")]


def details(info: dict) -> list[str]:
    """The server's limits and the token's probed permissions, from the target's diagnose()."""
    details: list[str] = []
    limits = info.get("limits")
    if isinstance(limits, dict) and limits.get("max_characters"):
        details.append(f"max {limits['max_characters']} characters"
                       + (f" counted in {limits['counting']}" if limits.get("counting") else "")
                       + (", URLs in full" if limits.get("urls_in_full") else
                          f", URLs as {limits['characters_reserved_per_url']}" if limits.get("characters_reserved_per_url") else "")
                       + (f", {limits['max_media_attachments']} images" if limits.get("max_media_attachments") else "")
                       + (" (Mastodon's defaults: the server gives none)" if info.get("limits_source") == "defaults" else ""))
    if "can_post" in info:
        # Probed: Mastodon's API cannot list a token's scopes.
        may = {"post": info.get("can_post"), "upload images": info.get("can_upload"),
               "read its own statuses": info.get("can_read")}
        details.append("token may " + ", ".join(f"{what} {'yes' if ok else 'no' if ok is False else 'unknown'}"
                                                for what, ok in may.items()) + " (probed)")
    return details
