"""A real PostgreSQL for the state tests: Debian's server (/usr/lib/postgresql/*/bin), a throwaway cluster made
with initdb in a temporary directory, on a free port of 127.0.0.1, its socket in that directory. One cluster per
test session; each test gets a database of its own, copied from a template that already has bridge's schema
(CREATE DATABASE ... TEMPLATE is a file copy: milliseconds). A server that cannot start FAILS the tests.

The processes are started and stopped by tests/takahe_fixture.py's ServerProcesses, as Takahē's PostgreSQL is.
"""

from __future__ import annotations

import contextlib
import itertools
import sys
import time
from pathlib import Path
from typing import Iterator

import psycopg
import pytest

from tests.takahe_fixture import ServerProcesses, close_at_exit

ROOT = Path(__file__).resolve().parent.parent
RUN_PREFIX = "bridge-postgres-"
USER = "bridge"
TEMPLATE = "bridge_template"


class PostgresError(RuntimeError):
    pass


class PostgresServer(ServerProcesses):
    """The cluster. `new_database()` gives a fresh database with bridge's schema, `empty=True` one without."""

    error = PostgresError

    def __init__(self) -> None:
        self.default_cwd = ROOT
        self._numbers = itertools.count(1)
        self._open_run_dir(RUN_PREFIX)
        self._start_or_close()

    def _start(self) -> None:
        if self._postgres_bin_missing():
            raise PostgresError("no /usr/lib/postgresql/*/bin/initdb: install Debian's postgresql package")
        self._start_postgres(USER)
        self.port = self.db_port
        self._admin = psycopg.connect(self.url(USER), autocommit=True)
        self._admin.execute(f"CREATE DATABASE {TEMPLATE}")
        from bridge.state import State

        State.open_postgres(self.url(TEMPLATE)).close()  # the schema, made once: each test's copy starts migrated

    @staticmethod
    def _postgres_bin_missing() -> bool:
        return not list(Path("/usr/lib/postgresql").glob("*/bin/initdb"))

    def url(self, dbname: str, *, password: bool = True) -> str:
        secret = f":{self.db_password}" if password else ""
        return f"postgresql://{USER}{secret}@127.0.0.1:{self.port}/{dbname}"

    def new_database(self, *, empty: bool = False) -> str:
        """A fresh database for one test: its URL (with the password)."""
        name = f"test_{next(self._numbers)}"
        self._admin.execute(f"CREATE DATABASE {name} TEMPLATE {'template0' if empty else TEMPLATE}")
        return self.url(name)

    def stop_server(self) -> None:
        """Shut the server down (PostgreSQL's fast shutdown: every session ends). Only on a cluster of a test's own:
        the session's is shared by tests running beside it."""
        self._admin.close()
        self._stop_postgres()

    def start_server(self) -> None:
        """Start the server stopped by stop_server(), on the same port, with the same data."""
        self._run_postgres()
        self._admin = psycopg.connect(self.url(USER), autocommit=True)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(Exception):
            self._admin.close()
        self._stop_processes()


class Store:
    """Where one test's state lives: a SQLite file in its tmp_path, or a fresh PostgreSQL database of the session's
    cluster. The tests that take the `store` fixture run once on each."""

    def __init__(self, kind: str, path: Path, url: str | None = None) -> None:
        self.kind = kind
        self.path = path  # the SQLite file (unused on PostgreSQL)
        self.url = url

    def __repr__(self) -> str:
        return f"<Store {self.kind}>"

    def config_line(self) -> str:
        """The [bridge] line that puts a config's state here."""
        return f'database = "{self.url}"' if self.url else f'state = "{self.path}"'

    def open(self, mode: str = "writer"):
        """The State, opened as open_state(config, mode) would open it."""
        from bridge.state import State

        if self.url:
            return State.open_postgres(self.url, readonly=mode == "readonly", dry_run=mode == "dry_run")
        if mode == "readonly":
            return State.open_readonly(self.path)
        if mode == "dry_run":
            return State.open_dry_run(self.path)
        return State.open(self.path, exclusive=mode == "writer")


STORES = ["sqlite", "postgres"]


@pytest.fixture(params=STORES)
def store(request, tmp_path) -> Store:
    """The state of one test: on SQLite (tmp_path/state.sqlite3), then on a fresh PostgreSQL database."""
    if request.param == "postgres":
        server = request.getfixturevalue("postgres")
        return Store("postgres", tmp_path / "state.sqlite3", server.new_database())
    return Store("sqlite", tmp_path / "state.sqlite3")


def start_postgres() -> PostgresServer:
    """Start the cluster, or fail the test with the reason (never skip)."""
    try:
        server = PostgresServer()
    except (PostgresError, psycopg.Error, OSError) as e:
        pytest.fail(f"real PostgreSQL unavailable: {e}", pytrace=False)
    return close_at_exit(server)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """One PostgreSQL cluster for the whole session, on 127.0.0.1. Fails if it cannot start."""
    server = start_postgres()
    try:
        yield server
    finally:
        server.close()


if __name__ == "__main__":  # `python -m tests.postgres_fixture`: start it, print the figures, stop it
    t0 = time.monotonic()
    with contextlib.closing(PostgresServer()) as running:
        print(f"PostgreSQL on port {running.port} in {time.monotonic() - t0:.1f} s: {running.timings}", file=sys.stderr)
