"""Putting the pieces together for the commands that publish: targets, composer and delivery engine."""

from __future__ import annotations

import time
from typing import Callable

from bridge.config import Config
from bridge.delivery import Deliverer
from bridge.state import State


class _ComposingDeliverer(Deliverer):
    """A Deliverer that also closes the composer's HTTP client."""

    composer = None

    def close(self) -> None:
        super().close()
        if self.composer is not None:
            self.composer.close()


def build_deliverer(config: Config, state: State, *, should_stop: Callable[[], bool] = lambda: False,
                    on_progress: Callable[[], None] = lambda: None, clock: Callable[[], float] = time.time) -> Deliverer:
    from bridge.compose import Composer
    from bridge.targets import make_target

    composer = Composer(config, state, clock=clock)
    deliverer = _ComposingDeliverer(
        config,
        state,
        target_factory=lambda account: make_target(config, state, account, media_fetcher=composer.fetch_image),
        payload_builder=composer.payload,
        clock=clock,
        should_stop=should_stop,
        on_progress=on_progress,
    )
    deliverer.composer = composer
    return deliverer
