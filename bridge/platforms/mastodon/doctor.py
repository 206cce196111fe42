"""What `bridge doctor` checks for a Mastodon account beyond logging in: may its token upload the images its feeds
attach?"""

from __future__ import annotations

from bridge.config import Config


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
