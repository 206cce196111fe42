"""Publishing targets: one small module per platform behind one narrow interface (base.Target).

The platform SDKs are imported only when a target is made, so commands that publish nothing stay fast.
"""

from __future__ import annotations

from bridge.config import Config, resolve_secret
from bridge.state import State


def make_target(config: Config, state: State, account: str, *, media_fetcher=None):
    """The target for one configured account. Raises ConfigError when its credential cannot be found."""
    settings = config.accounts[account]
    secret = resolve_secret(config, account)
    from bridge import __version__

    user_agent = config.bridge.user_agent.replace("{version}", __version__)
    if settings.type == "mastodon":
        from bridge.targets.mastodon import MastodonTarget

        return MastodonTarget(account, settings, secret, state, media_fetcher=media_fetcher, user_agent=user_agent,
                              timeout=(config.bridge.connect_timeout, config.bridge.read_timeout),
                              total_timeout=config.bridge.total_timeout)
    from bridge.targets.bluesky import BlueskyTarget

    return BlueskyTarget(account, settings, secret, state, media_fetcher=media_fetcher,
                         total_timeout=config.bridge.total_timeout)
