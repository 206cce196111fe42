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

from bridge.state.postgres import CONNECT_TIMEOUT_SECONDS, pg_errors

log = logging.getLogger("bridge.state")

# libpq's TCP keepalives on the lock connection: a worker whose host vanished without closing the connection is
# cut off by its own side too, rather than going on believing it holds its locks.
KEEPALIVES = {"keepalives": 1, "keepalives_idle": 30, "keepalives_interval": 10, "keepalives_count": 3}


def lock_key(name: str) -> int:
    """The 64-bit advisory lock key of a name ("account:alice", "job:deletes"); signed, as PostgreSQL's bigint."""
    digest = hashlib.blake2b(f"bridge:{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def application_name(pid: int | None = None) -> str:
    """What the lock connection calls itself in pg_stat_activity: the worker's process id."""
    return f"bridge locks {pid or os.getpid()}"


class AdvisoryLocks:
    def __init__(self, url: str) -> None:
        self.url = url
        self._conn: psycopg.Connection | None = None
        self._mutex = threading.Lock()  # one connection, used by the daemon's threads in turn

    def _connection(self) -> psycopg.Connection:
        if self._conn is None or self._conn.closed or self._conn.broken:
            self._conn = psycopg.connect(self.url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_SECONDS,
                                         application_name=application_name(), **KEEPALIVES)
        return self._conn

    @contextlib.contextmanager
    def hold(self, name: str):
        """Yields whether the lock was free (and is now held until the block ends)."""
        key = lock_key(name)
        with self._mutex, pg_errors(self.url):
            granted = self._connection().execute("SELECT pg_try_advisory_lock(%s)", [key]).fetchone()[0]
        try:
            yield granted
        finally:
            if granted:
                self._release(name, key)

    def _release(self, name: str, key: int) -> None:
        with self._mutex:
            try:
                released = self._conn.execute("SELECT pg_advisory_unlock(%s)", [key]).fetchone()[0]
            except psycopg.Error as exc:  # the connection went: the server released the lock with it
                released = False
                log.debug("advisory unlock failed: %s", exc)
            if not released:
                log.warning("the lock on %s was lost while it was held (the connection to PostgreSQL broke): "
                            "another worker may have taken it meanwhile", name)

    def close(self) -> None:
        with self._mutex:
            if self._conn is not None and not self._conn.closed:
                self._conn.close()
            self._conn = None
