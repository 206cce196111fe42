"""Advisory locks for workers sharing one PostgreSQL state (State.try_lock): one account's delivery pass, a job
meant to run once across workers.

A session-level pg_try_advisory_lock on a connection of its own, which does nothing else: the lock lives as long
as that connection, so the server releases it the moment a worker dies (the kernel closes a killed process's
socket; a vanished host is noticed by TCP keepalives, docs/workers.md). It is not the state's connection, whose
transactions come and go: a rollback would not release a session lock, but a reconnect would lose it silently.
The connection's application_name carries the process id, so pg_stat_activity and pg_locks show who holds what.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import threading

import psycopg

from bridge.state.postgres import CONNECT_TIMEOUT_SECONDS, KEEPALIVES, connection_lost, pg_errors, reconnect
from bridge.state.reconnect import Outage

log = logging.getLogger("bridge.state")


def lock_key(name: str) -> int:
    """The 64-bit advisory lock key of a name ("account:alice", "job:deletes"); signed, as PostgreSQL's bigint."""
    digest = hashlib.blake2b(f"bridge:{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def application_name(pid: int | None = None) -> str:
    """What the lock connection calls itself in pg_stat_activity: the worker's process id."""
    return f"bridge locks {pid or os.getpid()}"


class AdvisoryLocks:
    """`outage` (bridge run's workers): a broken lock connection is made again (bridge/state/reconnect.py). The locks
    of the old session are gone with it and are never assumed: each is taken again by the next hold(), and work
    under a lock asks still_holds() before each act that needs it (a post)."""

    def __init__(self, url: str, outage: Outage | None = None) -> None:
        self.url = url
        self.outage = outage
        self._conn: psycopg.Connection | None = None
        self._epoch = 0  # the outage's epoch when the connection was made
        self._session = 0  # counts the connections made: a lock taken on an earlier one is gone
        self._held: dict[str, int] = {}  # lock name -> the session it was taken on
        self._mutex = threading.Lock()  # one connection, used by the daemon's threads in turn

    def _connect(self) -> psycopg.Connection:
        return psycopg.connect(self.url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_SECONDS,
                               application_name=application_name(), **KEEPALIVES)

    def _connection(self) -> psycopg.Connection:
        if self._conn is None or self._conn.closed:
            if self.outage is not None:
                self._conn, self._epoch = reconnect(self.outage, self._connect)
            else:
                self._conn = self._connect()
            self._session += 1
        return self._conn

    # pg_errors' view of this connection
    @property
    def broken(self) -> bool:
        return self._conn is not None and self._conn.closed

    def lost(self, exc: BaseException):
        return connection_lost(self.url, exc, self.outage, self._epoch)

    @contextlib.contextmanager
    def hold(self, name: str):
        """Yields whether the lock was free (and is now held until the block ends, or its connection breaks)."""
        key = lock_key(name)
        with self._mutex, pg_errors(self.url, self):
            granted = self._connection().execute("SELECT pg_try_advisory_lock(%s)", [key]).fetchone()[0]
            session = self._session
            if granted:
                self._held[name] = session
        try:
            yield granted
        finally:
            if granted:
                self._release(name, key, session)

    def still_holds(self, name: str) -> bool:
        """Is the lock still this worker's? Asked before each act that needs it: the session it was taken on answers
        (a session lock ends only with its session), so a lock lost with its connection is never acted under."""
        with self._mutex:
            if self._held.get(name) != self._session or self._conn is None or self._conn.closed:
                return False
            try:
                self._conn.execute("SELECT 1")
            except psycopg.Error as exc:
                if self._conn.closed:
                    self.lost(exc)  # the outage logs it
                return False
            return True

    def _release(self, name: str, key: int, session: int) -> None:
        with self._mutex:
            if self._held.get(name) == session:
                del self._held[name]
            released = False
            if session == self._session and self._conn is not None and not self._conn.closed:
                try:
                    released = self._conn.execute("SELECT pg_advisory_unlock(%s)", [key]).fetchone()[0]
                except psycopg.Error as exc:  # the connection went: the server released the lock with it
                    log.debug("advisory unlock failed: %s", exc)
            if not released:
                # Said once for the whole outage by bridge.state.reconnect; without one, here.
                log.log(logging.INFO if self.outage is not None else logging.WARNING,
                        "the lock on %s was lost while it was held (the connection to PostgreSQL broke): another "
                        "worker may have taken it meanwhile", name)

    def close(self) -> None:
        with self._mutex:
            if self._conn is not None and not self._conn.closed:
                self._conn.close()
            self._conn = None
            self._held.clear()
