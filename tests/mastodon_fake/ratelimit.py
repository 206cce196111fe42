"""Fixed-window rate limits shaped like Mastodon's (rack-attack throttles + RateLimiter).

Windows are aligned to the Unix epoch (a 5-minute window resets at :00, :05, ...), and the
reset time is reported the way Mastodon does: ``now + (period - int(now) % period)`` in
ISO 8601 with microseconds, so it carries the sub-second part of the request time.
"""

from __future__ import annotations

import dataclasses
import threading

from .util import iso_us

# family -> (limit, period in seconds)
DEFAULT_LIMITS: dict[str, tuple[int, int]] = {
    "per_token": (300, 300),  # throttle_per_token_api: every /api request, per access token
    "per_user": (1500, 300),  # throttle_authenticated_api: every /api request, per account
    "unauthenticated": (300, 300),  # throttle_unauthenticated_api: per client IP
    "media": (30, 1800),  # throttle_api_media: POST /api/v1|v2/media, per account
    "deletes": (30, 1800),  # throttle_api_delete: DELETE /api/v1/statuses/:id, per account
    "apps": (5, 600),  # app registrations (POST /api/v1/apps), per client IP
    "statuses": (300, 10800),  # RateLimiter family :statuses - creates + edits, per account
}


@dataclasses.dataclass
class Hit:
    family: str
    limit: int
    period: int
    count: int
    now: float

    @property
    def remaining(self) -> int:
        return max(0, self.limit - self.count)

    @property
    def exceeded(self) -> bool:
        return self.count > self.limit

    def reset_epoch(self) -> float:
        return self.now + (self.period - int(self.now) % self.period)

    def headers(self, remaining: int | None = None) -> dict[str, str]:
        return {
            "x-ratelimit-limit": str(self.limit),
            "x-ratelimit-remaining": str(self.remaining if remaining is None else remaining),
            "x-ratelimit-reset": iso_us(self.reset_epoch()),
        }


class RateLimits:
    def __init__(self, limits: dict[str, tuple[int, int]] | None = None):
        self.limits = dict(DEFAULT_LIMITS)
        if limits:
            self.set(**limits)
        self._counts: dict[tuple[str, str, int], int] = {}
        self._lock = threading.Lock()

    def set(self, **families: tuple[int, int]) -> None:
        for family, value in families.items():
            if family not in DEFAULT_LIMITS:
                raise KeyError(f"unknown rate-limit family {family!r}; known: {sorted(DEFAULT_LIMITS)}")
            limit, period = value
            self.limits[family] = (int(limit), int(period))

    def _key(self, family: str, key: str, now: float) -> tuple[str, str, int]:
        period = self.limits[family][1]
        return (family, key, int(now // period))

    def increment(self, family: str, key: str, now: float) -> Hit:
        limit, period = self.limits[family]
        with self._lock:
            k = self._key(family, key, now)
            self._counts[k] = self._counts.get(k, 0) + 1
            if len(self._counts) > 10000:
                self._prune(now)
            return Hit(family, limit, period, self._counts[k], now)

    def peek(self, family: str, key: str, now: float) -> Hit:
        limit, period = self.limits[family]
        with self._lock:
            return Hit(family, limit, period, self._counts.get(self._key(family, key, now), 0), now)

    def reset(self) -> None:
        with self._lock:
            self._counts.clear()

    def _prune(self, now: float) -> None:
        for k in list(self._counts):
            family, _, window = k
            if window < int(now // self.limits[family][1]):
                del self._counts[k]
