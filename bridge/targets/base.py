"""What every publishing target offers the delivery engine.

A target wraps one account on one platform. It translates its library's errors into bridge.errors'
PublishError tree at its boundary: TransientPublishError / RateLimited (try later), PermanentPublishError
(give up on this post; TooLong: render it once more, strictly), AuthError (pause the account), OutcomeUnknown
(hold the post: it may exist and cannot be looked for).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from bridge.state import DeliveryRow


@dataclass(frozen=True)
class Published:
    remote_id: str  # Mastodon status id, or the Bluesky at:// URI
    url: str | None  # the post's web address


class Target(Protocol):
    account: str
    platform: str  # "mastodon" | "bluesky"

    def render_limits(self, strict: bool = False) -> dict | None:
        """What the renderer must know about this account's server (Mastodon instance limits), or None.
        `strict`: read anew and counted the strictest way, after the server refused a post as too long."""

    def publish(self, delivery: DeliveryRow, payload: dict) -> Published:
        """Post the payload, using the delivery's retry identity (Idempotency-Key or rkey)."""

    def find_existing(self, delivery: DeliveryRow) -> Published | None:
        """After an unknown outcome: did this delivery's post get made? None when it surely did not (or a repeat
        is safe); raises OutcomeUnknown when the target cannot tell."""

    def edit(self, delivery: DeliveryRow, payload: dict) -> Published:
        """Replace a posted entry's text (Mastodon only); raise PermanentPublishError where impossible."""

    def close(self) -> None:
        """Release connections."""
