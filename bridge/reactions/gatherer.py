"""The contract a platform's gatherer fulfils, and how the core finds it.

Each platform that can read reactions back names, as its Platform.reactions, a function (by convention in
`bridge/platforms/<platform>/reactions.py`)

    def gather(settings: AccountConfig, secret: Secret | None, delivery: DeliveryRow, *,
               deadline: float, http: HttpOptions) -> Thread

* `settings`: the account's config ([accounts.NAME]); `secret` its credential (None when it has none).
* `delivery`: a posted delivery (remote_id, remote_url, account, link).
* `deadline`: a time.monotonic() value; the whole gathering for this post ends by then (bridge.deadline).
* `http`: the user agent and per-request timeouts every request sends with.

It returns the post's Thread: counts, the public reply tree (replies by anyone, the writer's own included; never
"private"/"direct" ones), and the ids of replies the writer hid on the platform. Authors who asked not to be
indexed come back with `author.noindex = True` (or are left out); the core never shows them.

It raises only bridge.errors' ReactionsError tree: RemotePostGone (the post was deleted: stop, forget its
replies), ReactionsRateLimited (come back at `retry_at`), ReactionsError (anything else: try later). Anything
else that escapes is isolated by the caller (bridge.unexpected) and treated as ReactionsError.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from bridge.config import AccountConfig, Secret
from bridge.reactions.model import Thread
from bridge.state import DeliveryRow


@dataclass(frozen=True)
class HttpOptions:
    user_agent: str
    connect_timeout: float = 10.0
    read_timeout: float = 20.0


class Gather(Protocol):
    def __call__(self, settings: AccountConfig, secret: Secret | None, delivery: DeliveryRow, *,
                 deadline: float, http: HttpOptions) -> Thread: ...


def gatherer_for(name: str) -> Gather | None:
    """The platform's `gather` (Platform.reactions), or None when it cannot read reactions back (yet)."""
    from bridge.platforms import platform

    return platform(name).reactions
