"""The SQLite connection as State uses it, and the named migrations applied on open: the standard library's sqlite3
and nothing else, so that a pass opening the state pays for no library import (issue 22; sqlite-utils and its
plugin scan cost 0.04 s of a 0.25 s pass).

The migrations are recorded where sqlite-utils' `Migrations` records them (bridge used it until this module): the
table `_sqlite_migrations` (same columns, same unique index), migration set "bridge". A database either made reads
the same to the other.
"""

from __future__ import annotations

import contextlib
import datetime
import itertools
import sqlite3
from dataclasses import dataclass
from typing import Any, Callable

MIGRATIONS_TABLE = "_sqlite_migrations"
# The table and index exactly as sqlite-utils creates them (tests/test_migrations.py compares the two).
_CREATE_TABLE = f"""CREATE TABLE "{MIGRATIONS_TABLE}" (
   "id" INTEGER PRIMARY KEY,
   "migration_set" TEXT,
   "name" TEXT,
   "applied_at" TEXT
)"""
_CREATE_INDEX = f"""CREATE UNIQUE INDEX "idx_{MIGRATIONS_TABLE}_migration_set_name"
    ON "{MIGRATIONS_TABLE}" ("migration_set", "name")"""


class Database:
    """One sqlite3 connection in autocommit mode (isolation_level=None): each statement is its own transaction
    unless inside atomic(), whose nested blocks are savepoints. The surface bridge.state.postgres.PgDatabase
    offers too: execute, atomic, conn (executemany, in_transaction, close)."""

    _savepoints = itertools.count(1)

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        conn.execute("PRAGMA recursive_triggers = on")  # as sqlite-utils set it on every connection bridge opened

    def execute(self, sql: str, parameters: Any = None) -> sqlite3.Cursor:
        return self.conn.execute(sql) if parameters is None else self.conn.execute(sql, parameters)

    def __getitem__(self, table: str) -> "Table":
        return Table(self, table)  # db[table].columns_dict, as shipped migration 0002 reads it

    @contextlib.contextmanager
    def atomic(self):
        if self.conn.in_transaction:
            savepoint = f"bridge_{next(self._savepoints)}"
            self.conn.execute(f"SAVEPOINT {savepoint}")
            try:
                yield self
            except BaseException:
                # an error such as a full disk can end the whole transaction, savepoints with it: then there is
                # nothing to roll back to, and trying would hide the error
                if self.conn.in_transaction:
                    self.conn.execute(f"ROLLBACK TO SAVEPOINT {savepoint}")
                    self.conn.execute(f"RELEASE SAVEPOINT {savepoint}")
                raise
            self.conn.execute(f"RELEASE SAVEPOINT {savepoint}")
            return
        self.conn.execute("BEGIN")
        try:
            yield self
            self.conn.execute("COMMIT")
        except BaseException:
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
            raise


@dataclass
class Table:
    db: Database
    name: str

    @property
    def columns_dict(self) -> dict[str, str]:
        """Column name -> declared type (sqlite-utils gave a Python type; the migrations only ask which exist)."""
        return {row[1]: row[2] for row in self.db.execute(f'PRAGMA table_info("{self.name}")').fetchall()}


@dataclass
class Migration:
    name: str
    fn: Callable[[Database], None]


@dataclass
class AppliedMigration:
    name: str
    applied_at: str


class Migrations:
    """Named migrations, applied in the order they were registered, each in one transaction with its record."""

    def __init__(self, name: str) -> None:
        self.name = name  # the migration set, a column of the table
        self._migrations: list[Migration] = []

    def __call__(self, *, name: str) -> Callable:
        def register(fn: Callable[[Database], None]) -> Callable[[Database], None]:
            if any(migration.name == name for migration in self._migrations):
                raise ValueError(f"migration {name} is registered twice")
            self._migrations.append(Migration(name, fn))
            return fn

        return register

    def applied(self, db: Database) -> list[AppliedMigration]:
        """The migrations recorded in the database, in the order they were applied. Reads only."""
        if not _table_exists(db, MIGRATIONS_TABLE):
            return []
        rows = db.execute(f'SELECT name, applied_at FROM "{MIGRATIONS_TABLE}" WHERE migration_set = ? ORDER BY rowid',
                          [self.name]).fetchall()
        return [AppliedMigration(row[0], row[1]) for row in rows]

    def pending(self, db: Database) -> list[Migration]:
        """The registered migrations not applied yet. Reads only."""
        applied = {migration.name for migration in self.applied(db)}
        return [migration for migration in self._migrations if migration.name not in applied]

    def apply(self, db: Database) -> None:
        due = self.pending(db)
        if not due:
            return
        if not _table_exists(db, MIGRATIONS_TABLE):
            with db.atomic():
                db.execute(_CREATE_TABLE)
                db.execute(_CREATE_INDEX)
        for migration in due:
            with db.atomic():
                migration.fn(db)
                # the time as sqlite-utils wrote it: str() of an aware datetime
                db.execute(f'INSERT INTO "{MIGRATIONS_TABLE}" (migration_set, name, applied_at) VALUES (?, ?, ?)',
                           [self.name, migration.name, str(datetime.datetime.now(datetime.timezone.utc))])


def _table_exists(db: Database, name: str) -> bool:
    return db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", [name]).fetchone() is not None
