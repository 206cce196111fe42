"""A `bridge run` worker's view of its PostgreSQL connection: up, or lost since when, and when to try again.

The state's connection and the advisory locks' connection (bridge/state/locks.py) share one Outage, so that a
database restart is one warning in the log, not one per job and connection, and one line again when it is back.
Reconnecting is lazy: the next use of a connection after the backoff tries once (bridge/state/postgres.py); until
then every use fails at once with StateConnectionLost, so that no job polls or posts on a database it cannot reach.
"""

from __future__ import annotations

import logging
import threading
import time

log = logging.getLogger("bridge.state")

# Seconds between reconnect attempts: doubling from the first, capped (a database down for long is asked twice a
# minute, not hammered by every worker of every host).
FIRST_RETRY_SECONDS = 1.0
MAX_RETRY_SECONDS = 30.0


class Outage:
    def __init__(self, where: str, clock=time.monotonic) -> None:
        self.where = where  # user@host:port/dbname, never the password (bridge.state.postgres.describe)
        self.clock = clock
        self._mutex = threading.Lock()
        self.down_since: float | None = None
        # Counts the returns: a connection made before the last one broke in an outage already over (a restart
        # ends every session, and each connection finds out at its next use), which is not logged again.
        self.epoch = 0
        self._wait = FIRST_RETRY_SECONDS
        self._next_try = 0.0

    @property
    def down(self) -> bool:
        return self.down_since is not None

    def lost(self, said: str, epoch: int) -> None:
        """A connection made in `epoch` broke: the first loss since the database was last reachable is logged,
        with what happens now."""
        with self._mutex:
            if self.down_since is not None or epoch < self.epoch:
                return
            self.down_since = self.clock()
            self._wait = FIRST_RETRY_SECONDS
            self._next_try = self.down_since  # the first attempt at once: a restart is often over already
        log.warning("PostgreSQL connection lost (%s: %s); reconnecting every %.0f-%.0f s (backing off), nothing "
                    "is polled or posted until it is back", self.where, said, FIRST_RETRY_SECONDS, MAX_RETRY_SECONDS)

    def may_try(self) -> bool:
        with self._mutex:
            return self.down_since is None or self.clock() >= self._next_try

    def failed(self) -> None:
        """A reconnect attempt failed: the next one after a longer wait."""
        with self._mutex:
            self._next_try = self.clock() + self._wait
            self._wait = min(self._wait * 2, MAX_RETRY_SECONDS)

    def back(self) -> None:
        with self._mutex:
            if self.down_since is None:
                return
            down_for, self.down_since = self.clock() - self.down_since, None
            self.epoch += 1
        log.warning("PostgreSQL connection back (%s) after %.0f s; resuming (locks taken again before any work "
                    "that needs them)", self.where, down_for)

    def reason(self) -> str:
        """What a use of the connection meanwhile says (StateConnectionLost)."""
        since = f" for {self.clock() - self.down_since:.0f} s" if self.down_since is not None else ""
        return (f"the connection to PostgreSQL at {self.where} is lost{since}; reconnecting (check that the server "
                "is up: pg_isready -h HOST -p PORT)")
