"""Putting the pieces together for the commands that publish: targets, composer and delivery engine."""

from __future__ import annotations

import time
from typing import Callable

from bridge.config import Config
from bridge.delivery import Deliverer
from bridge.state import State


class _ComposingDeliverer(Deliverer):
    """A Deliverer with a composer for its payloads, made at the first payload or image it needs: a pass with
    nothing to post never loads the renderer, the link preview fetcher or their HTTP client."""

    def __init__(self, config: Config, state: State, **options) -> None:
        super().__init__(
            config,
            state,
            target_factory=lambda account: make_target(config, state, account,
                                                       media_fetcher=lambda url: self.composer().fetch_image(url)),
            payload_builder=lambda *args, **kwargs: self.composer().payload(*args, **kwargs),
            **options,
        )
        self._composer = None

    def composer(self):
        if self._composer is None:
            from bridge.compose import Composer

            self._composer = Composer(self.config, self.state, clock=self.clock)
        return self._composer

    def close(self) -> None:
        super().close()
        if self._composer is not None:
            self._composer.close()


def build_deliverer(config: Config, state: State, *, should_stop: Callable[[], bool] = lambda: False,
                    on_progress: Callable[[], None] = lambda: None, clock: Callable[[], float] = time.time) -> Deliverer:
    return _ComposingDeliverer(config, state, clock=clock, should_stop=should_stop, on_progress=on_progress)


def make_target(config: Config, state: State, account: str, *, media_fetcher=None):
    """The target for one configured account, made by its platform (which imports its SDK only now). Raises
    ConfigError when its credential cannot be found."""
    from bridge import __version__
    from bridge.config import resolve_secret
    from bridge.platforms import platform
    from bridge.platforms.base import TargetContext

    settings = config.accounts[account]
    secret = resolve_secret(config, account)
    return platform(settings.type).make_target(TargetContext(
        account=account, settings=settings, secret=secret, state=state,
        user_agent=config.bridge.user_agent.replace("{version}", __version__),
        connect_timeout=config.bridge.connect_timeout, read_timeout=config.bridge.read_timeout,
        total_timeout=config.bridge.total_timeout, media_fetcher=media_fetcher,
    ))


def follow_deletes(config: Config, state: State, *, dry_run: bool = False, clock: Callable[[], float] = time.time):
    """Check the permalinks of posted entries gone from their feeds, and delete the posts of the deleted ones
    (bridge/deletes.py). `dry_run`: list what would be deleted, delete nothing. Returns a DeleteReport."""
    from bridge.deletes import DeleteFollower

    targets: dict = {}

    def target(account: str):
        if account not in targets:
            targets[account] = make_target(config, state, account)
        return targets[account]

    follower = DeleteFollower(config, state, target_factory=None if dry_run else target, clock=clock)
    try:
        return follower.run()
    finally:
        follower.close()
        for made in targets.values():
            made.close()
