"""When a post's reactions are read again: often while it is new, ever more rarely, never after max age.

Most replies come in the first hours; a post a month old rarely gets one. The steps below are what a hosted
instance with many writers can afford (docs/reactions.md works out the requests per post over its life:
REFRESHES_PER_POST reads over 30 days, two requests each on Mastodon, one on Bluesky).
"""

from __future__ import annotations

import random

HOUR = 3600.0
DAY = 24 * HOUR

# (a post younger than this, is read again after this long)
STEPS: tuple[tuple[float, float], ...] = (
    (1 * HOUR, 15 * 60.0),
    (6 * HOUR, 1 * HOUR),
    (1 * DAY, 3 * HOUR),
    (3 * DAY, 12 * HOUR),
    (7 * DAY, 1 * DAY),
    (float("inf"), 3 * DAY),
)
FIRST_READ_AFTER = STEPS[0][1]  # the first read: a quarter of an hour after posting
JITTER = 0.1  # +-10%: thousands of posts made at the same minute do not come due in the same minute
# A read that failed is tried again after this long, doubled each time, at most the post's normal interval x 4.
RETRY_AFTER = 5 * 60.0


def interval(age: float) -> float:
    """How long until the next read of a post `age` seconds old."""
    for younger_than, wait in STEPS:
        if age < younger_than:
            return wait
    return STEPS[-1][1]


def next_read(posted_at: float, now: float, *, rng: random.Random | None = None) -> float:
    wait = interval(max(now - posted_at, 0.0))
    return now + wait * (1 + (rng or random).uniform(-JITTER, JITTER))


def next_retry(posted_at: float, now: float, failures: int) -> float:
    """After `failures` reads in a row failed: back off, but never past four normal intervals."""
    normal = interval(max(now - posted_at, 0.0))
    return now + min(RETRY_AFTER * 2 ** max(failures - 1, 0), 4 * normal)


def reads_over(max_age: float) -> int:
    """How many reads a post gets over its life, without jitter (the request budget in docs/reactions.md)."""
    at, count = FIRST_READ_AFTER, 0
    while at <= max_age:
        count += 1
        at += interval(at)
    return count
