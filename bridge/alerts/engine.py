"""Which problems to tell the writer about now: each once when it opens, once when it clears.

The problems seen are diffed against those recorded in the state (table `alerts`): a problem seen again is the
same row, so a feed failing on every poll or an account refused on every pass is told once. A problem counts
once it has lasted its grace (a feed failing for longer than feed_failing_after); a problem that clears before
the writer was told is forgotten silently, one that clears after is told as recovered once the next evaluation
confirms it. With digest = "daily",
everything waits for the day's one message, sent at the first evaluation after digest_time (local time) that
has something to say. A message no destination took is logged and tried again later, with a growing pause.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta
from typing import Callable

from bridge.alerts.problems import Problem
from bridge.alerts.send import Delivery, send
from bridge.config import Config, Secret
from bridge.state import AlertRow, State

log = logging.getLogger("bridge.alerts")

RETRY_FIRST_SECONDS = 60.0
RETRY_MAX_SECONDS = 3600.0
LAST_DIGEST = "last_digest_at"
LAST_OBSERVED = "last_observed_at"


class Alerter:
    def __init__(self, config: Config, state: State, destinations: list[Secret], *,
                 clock: Callable[[], float] = time.time,
                 sender: Callable[[list[Secret], str, str], list[Delivery]] = send) -> None:
        self.config = config
        self.state = state
        self.destinations = destinations
        self.clock = clock
        self.sender = sender
        self._retry_at = 0.0
        self._retry_pause = RETRY_FIRST_SECONDS
        self._confirmed_before = 0.0  # the evaluation before the latest one

    def observe(self, problems: list[Problem]) -> None:
        """Record the problems seen now; those recorded and no longer seen have cleared."""
        now = self.clock()
        self._confirmed_before = self.state.alert_meta(LAST_OBSERVED) or 0.0
        self.state.set_alert_meta(LAST_OBSERVED, now)
        rows = {row.key: row for row in self.state.alert_rows()}
        current = {problem.key: problem for problem in problems}
        for key, problem in current.items():
            row = rows.get(key)
            first_seen = row.first_seen_at if row else min(problem.since or now, now)
            opened = row.opened_at if row and row.opened_at else (now if now - first_seen >= problem.grace else None)
            self.state.save_alert(key, problem.kind, problem.text, first_seen, opened)
        for key, row in rows.items():
            if key not in current and row.cleared_at is None:
                self.state.clear_alert(key, now)

    def flush(self) -> list[Delivery]:
        """Send what is due (now, or in the digest); returns each destination's outcome ([] when nothing was due)."""
        now = self.clock()
        if not self.destinations or now < self._retry_at:
            return []
        rows = self.state.alert_rows()
        new = [row for row in rows if row.opened_at and row.alerted_at is None and row.cleared_at is None]
        # A recovery is told once the problem was also absent at the next evaluation: an account is let out of its
        # pause for one attempt an hour, and a look in that moment must not tell it recovered, then paused again.
        cleared = [row for row in rows if row.cleared_at and row.alerted_at and row.cleared_at <= self._confirmed_before]
        digest = self.config.alerts.digest == "daily"
        if not (new or cleared) or (digest and not self._digest_due(now)):
            return []
        still_open = [row for row in rows if row.alerted_at and not row.cleared_at] if digest else []
        title, body = compose(new, cleared, still_open, digest=digest)
        results = self.sender(self.destinations, title, body)
        for result in results:
            if not result.ok:
                log.error("alerts: %s did not take the alert: %s", result.destination, result.error)
        if any(result.ok for result in results):
            self.state.mark_alerts_told([row.key for row in new + cleared], now)
            if digest:
                self.state.set_alert_meta(LAST_DIGEST, now)
            self._retry_at, self._retry_pause = 0.0, RETRY_FIRST_SECONDS
        else:
            self._retry_at = now + self._retry_pause
            log.error("alerts: no destination took the alert; trying again in %.0f s", self._retry_pause)
            self._retry_pause = min(self._retry_pause * 2, RETRY_MAX_SECONDS)
        return results

    def _digest_due(self, now: float) -> bool:
        """Not yet sent since the latest digest_time (local time) before now."""
        hour, minute = (int(part) for part in self.config.alerts.digest_time.split(":"))
        local = datetime.fromtimestamp(now).astimezone()
        slot = local.replace(hour=hour, minute=minute, second=0, microsecond=0)
        if slot > local:
            slot -= timedelta(days=1)
        last = self.state.alert_meta(LAST_DIGEST)
        return last is None or last < slot.timestamp()


def compose(new: list[AlertRow], cleared: list[AlertRow], still_open: list[AlertRow], *, digest: bool) -> tuple[str, str]:
    """(title, body): the problems to fix, each with what to do, then those that cleared."""
    parts = []
    if new:
        parts.append(f"{len(new)} problem{'s' if len(new) != 1 else ''} need{'s' if len(new) == 1 else ''} you")
    if cleared:
        parts.append(f"{len(cleared)} cleared")
    title = ("bridge daily digest: " if digest else "bridge: ") + ", ".join(parts)
    sections = []
    for heading, rows, prefix in (("NEW", new, ""), ("CLEARED", cleared, "cleared: "),
                                  ("STILL OPEN", still_open, "")):
        if rows:
            sections.append(heading + "\n" + "\n".join(f"- {prefix}{row.text}" for row in rows))
    return title, "\n\n".join(sections)
