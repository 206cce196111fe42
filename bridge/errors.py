"""The one exception tree of bridge.

    BridgeError
    ├── ConfigError              bad or missing configuration: exit code 2, names the key and the fix
    ├── StateError               the state database cannot be used
    │   ├── StateLockedError     another writer holds the state database
    │   └── StateConnectionLost  the connection to PostgreSQL broke, or cannot be made again yet
    ├── FeedError                a feed could not be read this time (recorded on the feed, never fatal)
    │   ├── FeedHTTPError        404/5xx/429... with an optional Retry-After
    │   ├── FeedGone             410: the feed is retired, no further polls
    │   ├── FeedNotAFeed         an HTML page; carries the autodiscovered feed URLs
    │   ├── FeedTooLarge         the body passed the size cap
    │   ├── FeedNetworkError     DNS, connection, TLS, timeouts
    │   └── FeedParseError       nothing usable in the body
    ├── PublishError             a target refused or failed a post
    │   ├── TransientPublishError    retry later (5xx, timeouts, connection errors)
    │   │   └── RateLimited          retry at `reset_at`
    │   ├── PermanentPublishError    give up on this delivery (validation: 400/422)
    │   │   └── TooLong              the server refused the post as too long (re-rendered once, strictly)
    │   ├── AuthError                pause the account until the credentials are fixed
    │   └── OutcomeUnknown           an earlier attempt may have posted and nobody can tell: hold the delivery
    └── ReactionsError           reactions to a post could not be read this time (never touches posting)
        ├── ReactionsRateLimited     come back at `retry_at`
        └── RemotePostGone           the syndicated post was deleted: stop gathering, forget its replies

Library errors are translated into these at the boundary of the module that talks to the library;
only cli.py turns them into exit codes.
"""

from __future__ import annotations

from datetime import datetime


class BridgeError(Exception):
    """Base of every error bridge raises on purpose."""


class ConfigError(BridgeError):
    def __init__(self, key: str, problem: str, fix: str = "") -> None:
        self.key = key
        self.problem = problem
        self.fix = fix
        text = f"{key}: {problem}" if key else problem
        if fix:
            text += f" — {fix}"
        super().__init__(text)


class StateError(BridgeError):
    pass


class StateLockedError(StateError):
    pass


class StateConnectionLost(StateError):
    """The PostgreSQL connection broke (a restart, a failover, a network cut) or is not back yet: what was under way
    is rolled back by the server; `bridge run` reconnects (bridge/state/reconnect.py), a one-shot command stops."""


# What to do about a feed that cannot be read (doctor, and the alert about a failing feed).
FEED_ERROR_FIX = "check the URL in a browser; bridge keeps retrying with backoff"


class FeedError(BridgeError):
    """A feed could not be read this time. `retry_after` (seconds) is the server's wish, if any."""

    retry_after: float | None = None


class FeedHTTPError(FeedError):
    def __init__(self, status: int, url: str, retry_after: float | None = None) -> None:
        self.status = status
        self.url = url
        self.retry_after = retry_after
        super().__init__(f"HTTP {status} from {url}")


class FeedGone(FeedError):
    def __init__(self, url: str) -> None:
        self.url = url
        super().__init__(f"HTTP 410 Gone from {url}: the feed was retired; remove it from the config or give its new URL")


class FeedNotAFeed(FeedError):
    def __init__(self, url: str, candidates: list[str]) -> None:
        self.url = url
        self.candidates = candidates
        if candidates:
            hint = "it advertises these feeds: " + ", ".join(candidates) + " — put one of them in the config as the feed url"
        else:
            hint = "it advertises no feed (<link rel=\"alternate\">); find the blog's RSS/Atom/JSON feed URL"
        super().__init__(f"{url} is an HTML page, not a feed; {hint}")


class FeedTooLarge(FeedError):
    def __init__(self, url: str, limit: int) -> None:
        self.url = url
        self.limit = limit
        super().__init__(f"{url} sent more than {limit} bytes; raise [bridge] max_feed_bytes if the feed is really that big")


class FeedNetworkError(FeedError):
    pass


class FeedParseError(FeedError):
    pass


class PublishError(BridgeError):
    pass


class TransientPublishError(PublishError):
    """Try again later; `retry_at` is when the server said it would accept again, if it said."""

    def __init__(self, message: str, retry_at: datetime | None = None) -> None:
        self.retry_at = retry_at
        super().__init__(message)


class RateLimited(TransientPublishError):
    pass


class PermanentPublishError(PublishError):
    """Give up on this delivery. `not_posted`: the server refused the post itself (a validation error), which
    also settles every earlier attempt -- a server that honours the Idempotency-Key answers a repeated key
    with the first status before it validates anything."""

    def __init__(self, message: str, *, not_posted: bool = False) -> None:
        self.not_posted = not_posted
        super().__init__(message)


class TooLong(PermanentPublishError):
    """The server refused the post as too long; the message is the server's."""

    def __init__(self, message: str) -> None:
        super().__init__(message, not_posted=True)


class AuthError(PublishError):
    """The account's credentials do not work; `fix` tells the user what to do."""

    def __init__(self, message: str, fix: str) -> None:
        self.fix = fix
        super().__init__(f"{message} — {fix}")


class OutcomeUnknown(PublishError):
    """An earlier attempt may have made the post and the target cannot look (no Idempotency-Key to trust, a
    token that may not read the account's statuses). Posting again could post twice: the delivery waits.
    `fix` tells the user what to do."""

    def __init__(self, message: str, fix: str) -> None:
        self.fix = fix
        super().__init__(f"{message} — {fix}")


class ReactionsError(BridgeError):
    """Reactions to one post could not be gathered this time: try again at the next scheduled refresh."""


class ReactionsRateLimited(ReactionsError):
    """The platform asks for a pause; `retry_at` (UNIX seconds) is when it said it would answer again."""

    def __init__(self, message: str, retry_at: float | None = None) -> None:
        self.retry_at = retry_at
        super().__init__(message)


class RemotePostGone(ReactionsError):
    """The syndicated post no longer exists (deleted by the writer or a moderator): nothing more to gather."""
