"""An in-memory publishing target for engine tests: records what it was sent and can be told to fail."""

from __future__ import annotations

from dataclasses import dataclass, field

from bridge.platforms.base import Published
from bridge.state import DeliveryRow


@dataclass
class FakeTarget:
    account: str
    platform: str = "mastodon"
    posts: dict[str, dict] = field(default_factory=dict)  # retry identity -> payload
    failures: list[Exception] = field(default_factory=list)  # raised by the next publish calls, in order
    lose_answer: bool = False  # the post is made, then the "connection" breaks
    calls: int = 0

    def render_limits(self, strict=False):
        return None

    def _identity(self, delivery: DeliveryRow) -> str:
        return delivery.rkey or delivery.idempotency_key

    def publish(self, delivery: DeliveryRow, payload: dict) -> Published:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        identity = self._identity(delivery)
        self.posts.setdefault(identity, payload)
        if self.lose_answer:
            self.lose_answer = False
            from bridge.errors import TransientPublishError

            raise TransientPublishError("connection dropped after the request was sent")
        return Published(remote_id=identity, url=f"https://fake.example/{self.account}/{identity}")

    def find_existing(self, delivery: DeliveryRow):
        identity = self._identity(delivery)
        if identity in self.posts:
            return Published(remote_id=identity, url=f"https://fake.example/{self.account}/{identity}")
        return None

    def edit(self, delivery: DeliveryRow, payload: dict) -> Published:
        self.posts[self._identity(delivery)] = payload
        return Published(remote_id=delivery.remote_id or "", url=delivery.remote_url)

    def close(self) -> None:
        pass
