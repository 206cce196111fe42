"""One way in to the state, for every command: the SQLite file at [bridge] state (the default), or the
PostgreSQL database of [bridge] database. psycopg is imported only when the latter is configured."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from bridge.state.store import State

if TYPE_CHECKING:
    from bridge.config import Config

# writer: the one SQLite writer (holds the lock file); on PostgreSQL one of any number of workers.
# shared: small edits beside a running writer (`bridge retry`, reactions hide/block): no writer lock.
# readonly: status, doctor, the status page; a missing SQLite file reads as empty and is not created.
# dry_run: the real code path, every write thrown away (SQLite: an in-memory copy; PostgreSQL: a transaction
# rolled back on close).
Mode = Literal["writer", "shared", "readonly", "dry_run"]


def open_state(config: "Config", mode: Mode = "writer") -> State:
    url = config.database_url()
    if url is not None:
        return State.open_postgres(url.reveal(), readonly=mode == "readonly", dry_run=mode == "dry_run")
    path = config.state_path()
    if mode == "readonly":
        return State.open_readonly(path)
    if mode == "dry_run":
        return State.open_dry_run(path)
    return State.open(path, exclusive=mode == "writer")


def describe_store(config: "Config") -> str:
    """Which store, for doctor, status and logs: the SQLite file's path, or the database's URL without its password."""
    url = config.database_url()
    if url is None:
        return str(config.state_path())
    from bridge.state.postgres import describe

    return f"postgresql://{describe(url.reveal())}"
