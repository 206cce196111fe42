"""The state database: every line of SQL in bridge lives in this module.

SQLite (bridge/state/sqlite.py: the standard library's sqlite3), WAL, a busy timeout, named migrations applied on
open, the file created 0600. One writer at a time: a writer holds an exclusive lock on the database file itself; a
second writer is refused with StateLockedError. Read-only users (status) open it without the lock; dry runs work on
an in-memory copy, so they run the real code path and throw every write away.

A database that cannot be used (not SQLite, damaged, read-only, on a full disk, a directory) raises StateError
with one line saying what to do; the file is never overwritten or deleted.

Times are stored as UNIX seconds (REAL) so that scheduling comparisons are plain SQL.
Error texts (feeds.last_error, deliveries.last_error, accounts.paused_reason) are servers' words: they pass
bridge.redact on the way in, so that an echoed credential is never written to disk.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import functools
import json
import os
import sqlite3
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bridge.errors import StateError, StateLockedError
from bridge.model import Entry
from bridge.redact import redact
from bridge.state.sqlite import Database, Migrations

if TYPE_CHECKING:
    from bridge.feeds.prepare import PreparedEntry

BUSY_TIMEOUT_MS = 10_000
# Inside group_commit, whose checkpoints a thread runs: past this many frames (256 MB of 4 KB pages) the WAL is
# made to start over (commit_group)
WAL_RESTART_FRAMES = 65_536
# A time recorded as past (a check, a post, a pause) lying further ahead of now than this means the clock went back.
CLOCK_SLACK_SECONDS = 60.0
# ensure_feeds adds new feeds this many rows per INSERT: 3 parameters each, well inside SQLite's 32,766.
ENSURE_FEEDS_PER_INSERT = 500
# add_entries writes a first poll's entries this many per INSERT (9 parameters each), and their aliases (3 each).
ENTRIES_PER_INSERT = 200
ALIASES_PER_INSERT = 1000

migrations = Migrations("bridge")

# Migrations are append-only. A migration that has shipped is never edited: databases made by it exist, and
# an edit reaches none of them (0001_initial was edited twice; 0002 repairs the databases those versions made).
# Change the schema by appending a new migration at the end. tests/test_migrations.py holds each one's hash.


@migrations(name="0001_initial")
def _m0001_initial(db: Database) -> None:
    db.execute(
        """CREATE TABLE feeds (
            name TEXT PRIMARY KEY,
            configured_url TEXT NOT NULL,
            url TEXT NOT NULL,               -- where we poll now: follows 301/308
            etag TEXT,
            last_modified TEXT,
            body_hash TEXT,
            title TEXT,
            baseline_done INTEGER NOT NULL DEFAULT 0,
            gone INTEGER NOT NULL DEFAULT 0,
            last_checked_at REAL,
            last_success_at REAL,
            last_status INTEGER,
            last_outcome TEXT,               -- new / unchanged / not-modified / error / gone
            last_error TEXT,
            error_count INTEGER NOT NULL DEFAULT 0,
            next_poll_at REAL,
            ttl_seconds REAL
        )"""
    )
    db.execute(
        """CREATE TABLE entries (
            id INTEGER PRIMARY KEY,
            feed TEXT NOT NULL,
            key TEXT NOT NULL,
            link TEXT,
            status TEXT NOT NULL,            -- baseline / new / too_old / duplicate / backfill
            content_hash TEXT NOT NULL,
            published REAL,
            first_seen_at REAL NOT NULL,
            updated_at REAL NOT NULL,
            data TEXT NOT NULL,              -- Entry.to_dict() as JSON
            UNIQUE (feed, key)
        )"""
    )
    db.execute("CREATE INDEX entries_feed_published ON entries (feed, published)")
    db.execute(
        """CREATE TABLE aliases (
            alias TEXT NOT NULL,             -- canonical link without scheme, www. and trailing slash
            feed TEXT NOT NULL,
            entry_id INTEGER NOT NULL REFERENCES entries(id),
            PRIMARY KEY (feed, alias)
        ) WITHOUT ROWID"""
    )
    db.execute("CREATE INDEX aliases_alias ON aliases (alias)")
    db.execute(
        """CREATE TABLE deliveries (
            id INTEGER PRIMARY KEY,
            entry_id INTEGER NOT NULL REFERENCES entries(id),
            account TEXT NOT NULL,
            state TEXT NOT NULL,             -- pending / sending / posted / failed
            kind TEXT NOT NULL DEFAULT 'new',  -- new / backfill / update
            payload TEXT,                    -- the rendered payload, JSON, fixed before the first attempt
            idempotency_key TEXT NOT NULL,   -- Mastodon Idempotency-Key
            rkey TEXT,                       -- Bluesky record key (TID), chosen once
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at REAL NOT NULL,
            last_error TEXT,
            remote_id TEXT,
            remote_url TEXT,
            created_at REAL NOT NULL,
            first_sent_at REAL,              -- the first attempt: Mastodon's idempotency window runs from here
            sending_at REAL,
            posted_at REAL,
            UNIQUE (entry_id, account)
        )"""
    )
    db.execute("CREATE INDEX deliveries_due ON deliveries (account, state, next_attempt_at, id)")
    db.execute("CREATE INDEX deliveries_posted ON deliveries (account, posted_at)")
    db.execute(
        """CREATE TABLE accounts (
            name TEXT PRIMARY KEY,
            paused_reason TEXT,              -- set while the credentials do not work
            paused_at REAL,
            paused_fingerprint TEXT,         -- hash of the credential that failed: a new one un-pauses
            session TEXT,                    -- Bluesky session string; secret, the file is 0600
            session_updated_at REAL,
            limits TEXT,                     -- instance limits as JSON (Mastodon)
            limits_fetched_at REAL,
            deferred_until REAL              -- rate limited until
        )"""
    )


@migrations(name="0002_repair_earlier_schemas")
def _m0002_repair_earlier_schemas(db: Database) -> None:
    """Bring a database made by an earlier 0001_initial up to today's: it gained columns after it first shipped."""
    for table, column, kind in (("accounts", "paused_fingerprint", "TEXT"), ("deliveries", "first_sent_at", "REAL")):
        if column not in db[table].columns_dict:
            db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")
    for index, definition in (
        ("entries_feed_published", "entries (feed, published)"),
        ("aliases_alias", "aliases (alias)"),
        ("deliveries_due", "deliveries (account, state, next_attempt_at, id)"),
        ("deliveries_posted", "deliveries (account, posted_at)"),
    ):
        db.execute(f"CREATE INDEX IF NOT EXISTS {index} ON {definition}")


@migrations(name="0003_account_deferred_at")
def _m0003_account_deferred_at(db: Database) -> None:
    # When a rate-limit deferral was set: with it, a deferral found set "in the future" (the clock went back)
    # can be moved back with the clock instead of holding the account for the length of the jump.
    db.execute("ALTER TABLE accounts ADD COLUMN deferred_at REAL")


@migrations(name="0004_nostr")
def _m0004_nostr(db: Database) -> None:
    # A Nostr delivery's signed events, stored before the first send: every retry sends the very same events
    # (same ids), so no repeat can make a second post. `relays`: each relay's answer per event, for status.
    db.execute(
        """CREATE TABLE nostr_events (
            delivery_id INTEGER PRIMARY KEY REFERENCES deliveries(id) ON DELETE CASCADE,
            payload_hash TEXT NOT NULL,      -- of the payload they were signed from
            events TEXT NOT NULL,            -- the signed events, JSON list
            relays TEXT NOT NULL DEFAULT '{}',  -- {relay URL: {event id: {ok, message, at}}}
            signed_at REAL NOT NULL,
            updated_at REAL NOT NULL
        )"""
    )
    # A platform's latest facts about an account, JSON, for `bridge status` (Nostr: each relay's last answer).
    db.execute("ALTER TABLE accounts ADD COLUMN platform_status TEXT")


@migrations(name="0005_alerts")
def _m0005_alerts(db: Database) -> None:
    # The problems alerts know of (bridge/alerts/), so that each is told once and its recovery once, across
    # daemon restarts and one-shot `bridge poll` runs.
    db.execute(
        """CREATE TABLE alerts (
            key TEXT PRIMARY KEY,            -- kind:subject, e.g. account_paused:masto
            kind TEXT NOT NULL,
            text TEXT NOT NULL,              -- what is wrong and what to do, redacted
            first_seen_at REAL NOT NULL,
            opened_at REAL,                  -- past its threshold: the writer is to be told
            alerted_at REAL,                 -- told (NULL: not yet, or no destination took it: tried again)
            cleared_at REAL                  -- gone since; the row stays until the recovery is told
        )"""
    )
    db.execute("CREATE TABLE alert_meta (name TEXT PRIMARY KEY, value REAL)")  # last_digest_at


@migrations(name="0006_reactions")
def _m0006_reactions(db: Database) -> None:
    # The way back (bridge.reactions): what each posted delivery got in return, read on a decaying schedule.
    db.execute(
        """CREATE TABLE reaction_threads (
            delivery_id INTEGER PRIMARY KEY REFERENCES deliveries(id),
            root_url TEXT,                   -- the remote post's web address, as its platform gave it
            counts TEXT,                     -- bridge.reactions.model.Counts as JSON
            hidden_ids TEXT,                 -- JSON list: replies the writer hid on the platform itself
            gathered_at REAL,                -- the last successful read
            next_refresh_at REAL NOT NULL,
            refreshes INTEGER NOT NULL DEFAULT 0,
            error_count INTEGER NOT NULL DEFAULT 0,
            last_error TEXT,
            gone INTEGER NOT NULL DEFAULT 0  -- the remote post was deleted: read no more
        )"""
    )
    db.execute("CREATE INDEX reaction_threads_due ON reaction_threads (gone, next_refresh_at)")
    db.execute(
        """CREATE TABLE reaction_replies (
            delivery_id INTEGER NOT NULL REFERENCES deliveries(id),
            remote_id TEXT NOT NULL,
            url TEXT,
            author_handle TEXT NOT NULL,
            data TEXT NOT NULL,              -- Reply.to_dict() as JSON: a stranger's words, unsanitized
            PRIMARY KEY (delivery_id, remote_id)
        ) WITHOUT ROWID"""
    )
    db.execute("CREATE INDEX reaction_replies_url ON reaction_replies (url)")
    db.execute("CREATE TABLE reaction_hidden (url TEXT PRIMARY KEY, hidden_at REAL NOT NULL) WITHOUT ROWID")
    db.execute("CREATE TABLE reaction_blocked (handle TEXT PRIMARY KEY, blocked_at REAL NOT NULL) WITHOUT ROWID")


@migrations(name="0007_threads")
def _m0007_threads(db: Database) -> None:
    # A Threads delivery's media container, stored before it is published: the container is the retry identity
    # (a container publishes once), and an unknown outcome is settled by asking for its status.
    db.execute(
        """CREATE TABLE threads_containers (
            delivery_id INTEGER PRIMARY KEY REFERENCES deliveries(id) ON DELETE CASCADE,
            container_id TEXT NOT NULL,
            created_at REAL NOT NULL
        )"""
    )
@migrations(name="0008_life")
def _m0008_life(db: Database) -> None:
    # Deletes that follow the blog (bridge/deletes.py): a posted entry gone from its feed is watched here until
    # its permalink has answered 404/410 twice some time apart (then its posts are deleted) or it is kept.
    db.execute(
        """CREATE TABLE vanished (
            entry_id INTEGER PRIMARY KEY REFERENCES entries(id),
            missing_since REAL NOT NULL,     -- the poll that first read the feed without it
            state TEXT NOT NULL,             -- checking / kept / deleting / deleted
            gone_checks INTEGER NOT NULL DEFAULT 0,  -- 404/410 answers of its permalink
            first_gone_at REAL,
            next_check_at REAL NOT NULL,
            last_status INTEGER,
            note TEXT,                       -- why it is kept, or the last error
            updated_at REAL NOT NULL
        )"""
    )
    db.execute("CREATE INDEX vanished_due ON vanished (state, next_check_at)")
    db.execute("ALTER TABLE deliveries ADD COLUMN deleted_at REAL")  # the remote post deleted (state 'deleted')
    db.execute("ALTER TABLE feeds ADD COLUMN entry_count INTEGER")  # entries in the last document read
    db.execute("ALTER TABLE feeds ADD COLUMN deletes_warning TEXT")  # why vanished entries were not followed


@migrations(name="0009_websub")
def _m0009_websub(db: Database) -> None:
    # WebSub (bridge/websub): per feed, the hub and topic its document names and bridge's subscription there.
    db.execute(
        """CREATE TABLE websub (
            feed TEXT PRIMARY KEY,
            hub TEXT,                        -- as the feed last named it (Link header, rel="hub", JSON Feed hubs)
            topic TEXT,                      -- its self URL (the topic), else the polled URL
            sub_hub TEXT,                    -- where bridge subscribed (differs from hub: resubscribe)
            sub_topic TEXT,
            token TEXT UNIQUE,               -- the callback path's random part
            callback TEXT,                   -- the callback URL given (public_url changed: resubscribe)
            secret TEXT,                     -- hub.secret: the HMAC key of this subscription's pushes
            status TEXT NOT NULL DEFAULT 'none',  -- none, requested, active, failed, unsubscribing
            requested_at REAL,
            lease_expires_at REAL,
            last_push_at REAL,
            rejected_pushes INTEGER NOT NULL DEFAULT 0,
            failures INTEGER NOT NULL DEFAULT 0,
            next_attempt_at REAL,
            last_error TEXT
        ) WITHOUT ROWID"""
    )


@migrations(name="0010_longnotes")
def _m0010_longnotes(db: Database) -> None:
    # Threads for long notes (bridge/notethreads.py): each part of a delivery's thread, saved as soon as it is made,
    # so a crash in the middle resumes with the next part. Part 0 is the first post (the delivery's remote_id).
    db.execute(
        """CREATE TABLE thread_parts (
            delivery_id INTEGER NOT NULL REFERENCES deliveries(id) ON DELETE CASCADE,
            part INTEGER NOT NULL,           -- 0 the first post, 1.. its replies, in order
            remote_id TEXT NOT NULL,         -- the platform's id (a status id, an at:// URI)
            url TEXT,
            cid TEXT,                        -- Bluesky: the record's CID (replies refer to it)
            digest TEXT NOT NULL,            -- of the part as sent: an edit changes only parts whose text changed
            posted_at REAL NOT NULL,
            PRIMARY KEY (delivery_id, part)
        )"""
    )


@migrations(name="0011_workers")
def _m0011_workers(db: Database) -> None:
    # Several `bridge run` on one database (bridge/daemon.py, docs/workers.md): a feed being polled is leased to
    # one worker until lease_until; the worker that delivered an account last is remembered, so the next one
    # knows to start from the stored session rather than one another worker may have rotated since.
    db.execute("ALTER TABLE feeds ADD COLUMN lease_owner TEXT")
    db.execute("ALTER TABLE feeds ADD COLUMN lease_until REAL")
    db.execute("CREATE INDEX feeds_next_poll ON feeds (next_poll_at)")
    db.execute("ALTER TABLE accounts ADD COLUMN last_worker TEXT")


@migrations(name="0012_pgperf")
def _m0012_pgperf(db: Database) -> None:
    # The claim's index-friendly branches (State.claim_due_feeds): a feed is due by next_poll_at, or because its
    # last check is "in the future"; a gone feed (410) never is, so it is left out of both indexes.
    db.execute("DROP INDEX feeds_next_poll")
    db.execute("CREATE INDEX feeds_due ON feeds (next_poll_at) WHERE gone = 0")
    db.execute("CREATE INDEX feeds_checked ON feeds (last_checked_at) WHERE gone = 0")


@dataclass
class AlertRow:
    key: str
    kind: str
    text: str
    first_seen_at: float
    opened_at: float | None
    alerted_at: float | None
    cleared_at: float | None


@dataclass
class WebSubRow:
    feed: str
    hub: str | None
    topic: str | None
    sub_hub: str | None
    sub_topic: str | None
    token: str | None
    callback: str | None
    secret: str | None
    status: str
    requested_at: float | None
    lease_expires_at: float | None
    last_push_at: float | None
    rejected_pushes: int
    failures: int
    next_attempt_at: float | None
    last_error: str | None

    def pushing(self, now: float) -> bool:
        """Does the hub push this feed now (verified, lease running)? Then polling slows down."""
        return self.status == "active" and (self.lease_expires_at or 0) > now


@dataclass(slots=True)  # one per feed, all read at once for a cycle: 100,000 in a big one
class FeedRow:
    name: str
    configured_url: str
    url: str
    etag: str | None
    last_modified: str | None
    body_hash: str | None
    title: str | None
    baseline_done: bool
    gone: bool
    last_checked_at: float | None
    last_success_at: float | None
    last_status: int | None
    last_outcome: str | None
    last_error: str | None
    error_count: int
    next_poll_at: float | None
    ttl_seconds: float | None
    entry_count: int | None = None
    deletes_warning: str | None = None
    lease_owner: str | None = None  # the worker polling it now (workers sharing a state: claim_due_feeds)
    lease_until: float | None = None


@dataclass
class DeliveryRow:
    """One delivery. `state`: pending / sending / posted / failed / unknown (an earlier attempt may have posted
    and the target cannot look: held) / filtered (kept back by the account's filters: never sent, the reason in
    last_error) / deleted (posted, or a thread failed part way, then deleted with the blog's entry:
    bridge/deletes.py; deleted_at). `first_sent_at`: the first attempt whose outcome is not known -- set
    by mark_sending, cleared when the server refused the post itself or the writer forced a retry."""

    id: int
    entry_id: int
    account: str
    state: str
    kind: str
    payload: dict | None
    idempotency_key: str
    rkey: str | None
    attempts: int
    next_attempt_at: float
    last_error: str | None
    remote_id: str | None
    remote_url: str | None
    created_at: float
    first_sent_at: float | None
    sending_at: float | None
    posted_at: float | None
    deleted_at: float | None = None
    feed: str = ""
    entry_key: str = ""
    link: str | None = None


@dataclass
class PostedEntry:
    """A posted delivery with what its entry says of itself."""

    delivery: DeliveryRow
    title: str
    first_seen_at: float  # when a poll first saw the entry


def _unserialized(method):
    """A State method that _serialized leaves alone: it does not touch the state's connection."""
    method.unserialized = True
    return method


def _serialized(cls):
    """Every public method runs under the instance's lock (the daemon's threads share one connection), and
    turns the engine's errors into StateError (a full disk, a damaged file: say what to do, not a traceback)."""
    for name, value in list(vars(cls).items()):
        if (name.startswith("_") or not callable(value) or isinstance(value, (classmethod, staticmethod))
                or getattr(value, "unserialized", False)):
            continue

        def wrap(method):
            @functools.wraps(method)
            def locked(self, *args, **kwargs):
                with self._lock, self._errors():
                    return method(self, *args, **kwargs)

            return locked

        setattr(cls, name, wrap(value))
    return cls


@_serialized
class State:
    """The state database. Use `State.open()` for the one writer, `open_readonly()` and `open_dry_run()` otherwise."""

    def __init__(self, db: Database, path: Path | None, lock_fd: int | None = None, *, engine: str = "sqlite") -> None:
        self.db = db  # bridge.state.sqlite.Database, or bridge.state.postgres.PgDatabase with the same surface
        self.path = path
        self.engine = engine  # "sqlite" or "postgres"
        self._lock_fd = lock_fd
        self._lock = threading.RLock()
        self._sqlite_errors = _SqliteErrors(path)  # what _errors() gives every method on SQLite
        self._advisory = None  # PostgreSQL: bridge.state.locks.AdvisoryLocks, made at the first try_lock
        self.migrations_due: list[str] = []  # set by open_readonly on a database the writer has yet to migrate
        self._group_checkpointer = None  # inside group_commit: the thread that runs its checkpoints

    # --- opening ---------------------------------------------------------------------------------------

    @classmethod
    def open(cls, path: Path, *, exclusive: bool = True) -> "State":
        """Open for writing: create 0600 if missing, take the writer lock, apply migrations.

        exclusive=False skips the writer lock, for small edits that are safe beside a running poller
        (`bridge retry` re-queueing failed posts); SQLite's own locking keeps each transaction whole.
        """
        path = Path(path)
        _refuse_directory(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as exc:
            raise StateError(f"cannot create the state directory {path.parent}: {exc.strerror}; {_fix_for(exc, path)}") from None
        _create_private(path)
        lock_fd = _take_lock(path) if exclusive else None
        try:
            with _SqliteErrors(path):
                conn = _connect(str(path))
                db = Database(conn)
                db.execute("PRAGMA journal_mode = WAL")
                migrations.apply(db)
            for extra in (Path(f"{path}-wal"), Path(f"{path}-shm")):
                if extra.exists():
                    os.chmod(extra, 0o600)
        except BaseException:
            if lock_fd is not None:
                os.close(lock_fd)
            raise
        return cls(db, path, lock_fd)

    @classmethod
    def open_readonly(cls, path: Path) -> "State":
        """Open without the writer lock, for reading only (status). A missing database reads as empty."""
        path = Path(path)
        _refuse_directory(path)
        if not path.exists():
            return cls.open_memory()
        with _SqliteErrors(path):
            conn = _connect_readonly(path)
            db = Database(conn)
            due = [migration.name for migration in migrations.pending(db)]
        if due:
            # An older database that the writer has not migrated yet: read a migrated copy instead.
            conn.close()
            state = cls.open_dry_run(path)
            state.migrations_due = due
            return state
        return cls(db, path)

    @classmethod
    def open_dry_run(cls, path: Path) -> "State":
        """An in-memory copy of the database: the real code path runs, and nothing is written to disk."""
        path = Path(path)
        _refuse_directory(path)
        with _SqliteErrors(path):
            memory = _connect(":memory:")
            if path.exists():
                source = _connect_readonly(path)
                try:
                    source.backup(memory)
                finally:
                    source.close()
            db = Database(memory)
            migrations.apply(db)
        return cls(db, None)

    @classmethod
    def open_memory(cls) -> "State":
        db = Database(_connect(":memory:"))
        migrations.apply(db)
        return cls(db, None)

    @classmethod
    def open_postgres(cls, url: str, *, readonly: bool = False, dry_run: bool = False) -> "State":
        """The state in PostgreSQL (bridge/state/postgres.py). No writer lock: several workers share it.
        readonly: a read-only session; dry_run: one transaction, rolled back on close."""
        from bridge.state.postgres import PgDatabase, check_url, pg_errors

        check_url(url)
        db = PgDatabase(url, readonly=readonly, hold_open=dry_run)
        try:
            with pg_errors(url):
                due = db.pending_migrations() if readonly else db.migrate()
        except BaseException:
            db.close()
            raise
        state = cls(db, None, engine="postgres")
        if readonly and due:
            # nothing has made the schema yet (or a newer bridge is due to migrate it): read it as a dry run would
            db.close()
            state = cls.open_postgres(url, dry_run=True)
            state.migrations_due = due
        return state

    def dedicated_connection(self):
        """PostgreSQL only: a connection of its own to the same database (bridge.state.postgres.PgDatabase: execute
        with `?`, atomic(), close()), for what must outlive the shared connection's transactions -- a session
        advisory lock held while an account is delivered. The caller closes it; closing drops its locks."""
        if self.engine != "postgres":
            raise StateError("a dedicated connection is for the state in PostgreSQL; SQLite has one writer")
        from bridge.state.postgres import PgDatabase

        return PgDatabase(self.db.url)

    def _errors(self):
        if self.engine == "postgres":
            from bridge.state.postgres import pg_errors

            return pg_errors(self.db.url, self.db)
        return self._sqlite_errors

    def _json_text(self, column: str, field: str) -> str:
        """SQL for a field of a JSON text column (json, not jsonb: PostgreSQL's jsonb refuses a \u0000)."""
        if self.engine == "postgres":
            return f"(({column})::json ->> '{field}')"
        return f"json_extract({column}, '$.{field}')"

    def _greatest(self, *expressions: str) -> str:
        return f"{'GREATEST' if self.engine == 'postgres' else 'MAX'}({', '.join(expressions)})"

    def close(self) -> None:
        if self._advisory is not None:
            self._advisory.close()
        self.db.conn.close()
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def __enter__(self) -> "State":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    @contextlib.contextmanager
    def transaction(self):
        """One atomic unit of work; nested calls become savepoints. Holds the lock for its whole duration."""
        with self._lock, self._errors(), self.db.atomic():
            yield self

    @contextlib.contextmanager
    def group_commit(self):
        """Many small transactions, few commits: a poll of thousands of feeds would otherwise pay a commit (an
        fsync) per feed. Inside, `transaction()` blocks are savepoints of one outer transaction, each still all
        or nothing; `commit_group()` commits the finished ones and starts the next group. A crash loses at
        most the current group, whose feeds are simply fetched again. Holds the lock throughout: for the
        one-shot `bridge poll`, not for the daemon, whose threads share this connection.

        On SQLite the groups are committed without waiting for the disk (`synchronous = NORMAL`), and the block's
        end waits for all of them at once (the WAL file's fsync); the WAL is copied into the database by a thread
        of its own (bridge/state/checkpointer.py), and past WAL_RESTART_FRAMES `commit_group()` copies the rest
        itself so that the WAL starts over. A first poll of 10,000 feeds commits about 30 groups; waiting for
        each, and checkpointing after it, held up the event loop. Nothing is posted inside the block, and in WAL
        mode SQLite writes commits in order: a power loss during it loses, at worst, a tail of its groups, whose
        feeds are fetched again, as a crash loses the current one. A kill loses nothing more than before: the
        commits are in the operating system's hands.
        """
        with self._lock, self._errors():
            wal = Path(f"{self.path}-wal") if self.engine == "sqlite" and self.path is not None else None
            relaxed = wal is not None and wal.exists()  # WAL mode: commits stay in order on the disk
            checkpointer = None
            if relaxed:  # see the docstring: the groups' commits do not wait for the disk, the block's end does
                from bridge.state.checkpointer import Checkpointer

                before = {name: self.db.execute(f"PRAGMA {name}").fetchone()[0]
                          for name in ("synchronous", "wal_autocheckpoint")}
                self.db.execute("PRAGMA synchronous = NORMAL")
                self.db.execute("PRAGMA wal_autocheckpoint = 0")
                checkpointer = Checkpointer(self.path).start()
            self._group_checkpointer = checkpointer
            self._begin()
            try:
                yield self
            finally:
                try:
                    if self.db.conn.in_transaction:
                        self._commit()
                finally:
                    self._group_checkpointer = None
                    if checkpointer is not None:
                        checkpointer.stop()
                    if relaxed and not self.db.conn.in_transaction:  # as SQLite requires (a failed COMMIT stays in one)
                        for name, value in before.items():
                            self.db.execute(f"PRAGMA {name} = {value}")
                        _sync_file(wal)

    def commit_group(self) -> None:
        with self._lock:
            if self.db.conn.in_transaction:
                self._commit()
                checkpointer = self._group_checkpointer
                if checkpointer is not None and checkpointer.wal_frames > WAL_RESTART_FRAMES:
                    # The WAL starts over only at a write that began with every frame already copied, which the
                    # thread's checkpoints, always a group behind, never see: this one copies the rest.
                    self.db.execute("PRAGMA wal_checkpoint(PASSIVE)")
                    checkpointer.wal_frames = 0  # until the thread's next look
                self._begin()

    def _begin(self) -> None:
        self.db.execute("BEGIN") if self.engine == "sqlite" else self.db.begin()

    def _commit(self) -> None:
        self.db.execute("COMMIT") if self.engine == "sqlite" else self.db.commit()

    def check_integrity(self, *, thorough: bool = True) -> tuple[list[str], str]:
        """(problems found, which check ran): PRAGMA integrity_check, or the quicker quick_check; on PostgreSQL,
        the connection and the migrations (its server keeps its own pages whole)."""
        if self.engine == "postgres":
            return self.db.check()
        pragma = "integrity_check" if thorough else "quick_check"
        rows = [row[0] for row in self.db.execute(f"PRAGMA {pragma}(20)").fetchall()]
        return ([] if rows == ["ok"] else rows), pragma

    def applied_migrations(self) -> list[str]:
        if self.engine == "postgres":
            return self.db.applied_migrations()
        return [m.name for m in migrations.applied(self.db)]

    def pending_migrations(self) -> list[str]:
        if self.engine == "postgres":
            return self.db.pending_migrations()
        return [m.name for m in migrations.pending(self.db)]

    # --- feeds -----------------------------------------------------------------------------------------

    def ensure_feed(self, name: str, configured_url: str) -> FeedRow:
        """The feed's row; created on first sight. A changed configured URL resets the poll URL and validators."""
        row = self.get_feed(name)
        if row is None:
            with self.transaction():
                self.db.execute(  # workers starting together each add the new feeds: the first one wins
                    "INSERT INTO feeds (name, configured_url, url) VALUES (?, ?, ?) ON CONFLICT (name) DO NOTHING",
                    [name, configured_url, configured_url],
                )
        elif row.configured_url != configured_url:
            with self.transaction():
                self.db.execute(
                    """UPDATE feeds SET configured_url = ?, url = ?, etag = NULL, last_modified = NULL, body_hash = NULL,
                       gone = 0, error_count = 0, next_poll_at = NULL WHERE name = ?""",
                    [configured_url, configured_url, name],
                )
        return self.get_feed(name)  # type: ignore[return-value]

    def ensure_feeds(self, feeds: list[tuple[str, str]]) -> dict[str, FeedRow]:
        """ensure_feed for many (name, configured URL) pairs, reading all rows in one query and adding the new ones
        in one transaction, a few hundred rows per INSERT (100,000 new feeds one commit each took minutes)."""
        rows = {row.name: row for row in self.list_feeds()}
        new = {name: url for name, url in feeds if name not in rows}
        if new:
            pairs = list(new.items())
            with self.transaction():
                for start in range(0, len(pairs), ENSURE_FEEDS_PER_INSERT):
                    chunk = pairs[start:start + ENSURE_FEEDS_PER_INSERT]
                    self.db.execute(  # workers starting together each add the new feeds: the first one wins
                        f"INSERT INTO feeds (name, configured_url, url) VALUES {', '.join(['(?, ?, ?)'] * len(chunk))} "
                        "ON CONFLICT (name) DO NOTHING",
                        [value for name, url in chunk for value in (name, url, url)])
            rows = {row.name: row for row in self.list_feeds()}
        for name, url in feeds:
            if rows[name].configured_url != url:
                rows[name] = self.ensure_feed(name, url)
        return rows

    def get_feed(self, name: str) -> FeedRow | None:
        row = self.db.execute("SELECT * FROM feeds WHERE name = ?", [name]).fetchone()
        return _feed_row(row) if row else None

    def list_feeds(self) -> list[FeedRow]:
        # row by row, not fetchall(): 100,000 rows held twice over (SQLite's and ours) were 50 MB more at the peak
        return [_feed_row(row) for row in self.db.execute("SELECT * FROM feeds ORDER BY name")]

    _FEED_COLUMNS = frozenset(FeedRow.__dataclass_fields__) - {"name"}

    def update_feed(self, name: str, *, release_lease_of: str | None = None, durable: bool = True,
                    **fields: Any) -> None:
        """`release_lease_of`: the worker whose lease on the feed ends with this write (its poll's record), in the
        same statement: one commit per poll rather than two, and a worker killed before it leaves its lease to run
        out. A lease that ran out and passed to another worker meanwhile is that worker's, and stays.

        `durable=False` (an unchanged poll's record, Poller.record): on PostgreSQL, committed without waiting for
        the WAL flush (`SET LOCAL synchronous_commit = off`, this statement's own transaction only). Safe because
        the record holds nothing but the feed's schedule, validators and lease: a database crash may lose the last
        fraction of a second of such records, and each lost one only means that feed is fetched again (its lease
        runs out first). PostgreSQL never reorders commits: any later synchronous commit (entries, deliveries,
        another feed's record of new entries) flushes the WAL up to itself, these records included, so nothing
        that was recorded synchronously can outlive an asynchronous record made before it. Inside a caller's
        transaction it is durable like the rest of that transaction."""
        release = ([("lease_owner = CASE WHEN lease_owner = ? THEN NULL ELSE lease_owner END", release_lease_of),
                    ("lease_until = CASE WHEN lease_owner = ? THEN NULL ELSE lease_until END", release_lease_of)]
                   if release_lease_of is not None else [])
        relaxed = not durable and self.engine == "postgres" and not self.db.conn.in_transaction
        self._update_columns("feeds", "name", name, self._FEED_COLUMNS, fields, release,
                             prefix="SET LOCAL synchronous_commit = off; " if relaxed else "")

    def _update_columns(self, table: str, key_column: str, key: str, columns: frozenset, fields: dict,
                        extra: list[tuple[str, Any]] = (), prefix: str = "") -> None:
        unknown = set(fields) - columns
        if unknown:
            raise ValueError(f"not {table} columns: {sorted(unknown)}")
        if fields.get("last_error"):
            fields["last_error"] = redact(fields["last_error"])  # a server's words: may quote a credential
        assignments = ", ".join([f"{column} = ?" for column in fields] + [sql for sql, _ in extra])
        # one statement: atomic on its own, and inside a caller's transaction when there is one
        # `prefix` runs in the same implicit transaction: several statements of one query are one transaction
        self.db.execute(f"{prefix}UPDATE {table} SET {assignments} WHERE {key_column} = ?",
                        [*fields.values(), *(value for _, value in extra), key])

    def rewind_feed_if_ahead(self, row: FeedRow, now: float) -> FeedRow:
        """A feed last checked "in the future": the clock went back. Its schedule moves back with the clock, keeping
        its length (interval, backoff, Retry-After), instead of waiting for the clock to catch up."""
        if row.last_checked_at is None or row.last_checked_at <= now + CLOCK_SLACK_SECONDS:
            return row
        shift = row.last_checked_at - now
        fields = {"last_checked_at": now, "next_poll_at": row.next_poll_at - shift if row.next_poll_at else None}
        if row.last_success_at is not None and row.last_success_at > now:
            fields["last_success_at"] = row.last_success_at - shift
        with self.transaction():
            self.update_feed(row.name, **fields)
        return self.get_feed(row.name)  # type: ignore[return-value]

    # --- workers: leases (bridge/daemon.py; docs/workers.md) --------------------------------------------------
    # One process owns a SQLite database (the writer lock), so every lease is granted: the same calls work on both
    # stores, and on PostgreSQL they decide which of several workers does what.

    @property
    def shared(self) -> bool:
        """Do several workers share this store (PostgreSQL)? A SQLite file has one writer (the lock file)."""
        return self.engine == "postgres"

    def claim_due_feeds(self, owner: str, now: float, *, limit: int, lease_seconds: float) -> list[str]:
        """Up to `limit` feeds due for a poll that no worker holds, leased to `owner` until now + lease_seconds.
        A feed last checked "in the future" is due too: the clock went back (the poll sets its schedule anew).
        On PostgreSQL, rows another worker is claiming at this moment are skipped, not waited for."""
        with self.transaction():
            rows = self.db.execute(self._claim_sql(), [
                owner, now + lease_seconds,
                now, limit,  # never polled
                now, now, limit,  # due by their schedule
                now + CLOCK_SLACK_SECONDS, now, now, limit,  # checked "in the future": the clock went back
                limit,
            ]).fetchall()
        return sorted(row[0] for row in rows)

    def _claim_sql(self) -> str:
        """The claim as three branches, each one range of an index (feeds_due, feeds_checked): one query with their
        ORs read and sorted the whole feeds table (30 ms a claim at 100,000 feeds)."""
        skip_locked = " FOR UPDATE SKIP LOCKED" if self.engine == "postgres" else ""
        free = "gone = 0 AND (lease_until IS NULL OR lease_until <= ?)"
        return f"""UPDATE feeds SET lease_owner = ?, lease_until = ? WHERE name IN (
            SELECT name FROM (
                SELECT * FROM (SELECT name, next_poll_at FROM feeds WHERE next_poll_at IS NULL AND {free}
                               LIMIT ?{skip_locked}) AS never_polled
                UNION ALL
                SELECT * FROM (SELECT name, next_poll_at FROM feeds WHERE next_poll_at <= ? AND {free}
                               ORDER BY next_poll_at LIMIT ?{skip_locked}) AS due
                UNION ALL
                SELECT * FROM (SELECT name, next_poll_at FROM feeds WHERE last_checked_at > ? AND next_poll_at > ?
                               AND {free} LIMIT ?{skip_locked}) AS checked_ahead
            ) AS candidates ORDER BY next_poll_at IS NOT NULL, next_poll_at LIMIT ?)
            RETURNING name"""

    def claim_feed(self, name: str, owner: str, now: float, *, lease_seconds: float) -> bool:
        """Lease this one feed (a WebSub push for it), due or not, unless a poll of it holds it now."""
        with self.transaction():
            cursor = self.db.execute(
                "UPDATE feeds SET lease_owner = ?, lease_until = ? WHERE name = ? AND (lease_until IS NULL OR lease_until <= ?)",
                [owner, now + lease_seconds, name, now],
            )
        return cursor.rowcount == 1

    def release_feeds(self, names: list[str], owner: str) -> None:
        """The polls are recorded: other workers may take these feeds when they are next due."""
        with self.transaction():
            self.db.conn.executemany("UPDATE feeds SET lease_owner = NULL, lease_until = NULL WHERE name = ? AND lease_owner = ?",
                                     [(name, owner) for name in names])

    def try_lock(self, name: str):
        """A context manager yielding whether this worker may do the named work now (one account's deliveries, a job
        meant to run once across workers), held until the block ends; a worker that dies lets go of it at once.
        SQLite: one process, one owner, always granted. PostgreSQL: an advisory lock (bridge/state/locks.py)."""
        if self.engine != "postgres":
            return contextlib.nullcontext(True)
        if self._advisory is None:
            from bridge.state.locks import AdvisoryLocks

            self._advisory = AdvisoryLocks(self.db.url, self.db.outage)
        return self._advisory.hold(name)

    @_unserialized  # only the locks' connection (its own mutex): a slow answer must not hold up the state's users
    def still_holds(self, name: str) -> bool:
        """Inside try_lock(name), before an act that needs the lock (sending a post): is it still this worker's? A
        PostgreSQL lock goes with its connection (a restart, pg_terminate_backend), and another worker may hold
        it now. SQLite's one process always does."""
        if self.engine != "postgres":
            return True
        return self._advisory is not None and self._advisory.still_holds(name)

    def keep_reconnecting(self) -> None:
        """For `bridge run` on PostgreSQL: a lost connection is made again, with backoff, instead of every later call
        failing (bridge/state/reconnect.py); meanwhile calls fail at once with StateConnectionLost."""
        if self.engine != "postgres" or self.db.outage is not None:
            return
        from bridge.state.postgres import describe
        from bridge.state.reconnect import Outage

        outage = Outage(describe(self.db.url))
        self.db.keep_reconnecting(outage)
        if self._advisory is not None:
            self._advisory.outage = outage

    def account_changed_hands(self, account: str, owner: str) -> bool:
        """Called holding the account's lock: did another worker deliver this account since `owner` last did? Then
        what `owner` kept in memory for it (a Bluesky session, which the other may have refreshed) is stale."""
        with self.transaction():
            self._ensure_account(account)
            cursor = self.db.execute(
                "UPDATE accounts SET last_worker = ? WHERE name = ? AND (last_worker IS NULL OR last_worker <> ?)",
                [owner, account, owner])
        return cursor.rowcount == 1

    # --- WebSub subscriptions (bridge/websub) -------------------------------------------------------------

    _WEBSUB_COLUMNS = frozenset(WebSubRow.__dataclass_fields__) - {"feed"}

    def websub(self, feed: str) -> WebSubRow | None:
        row = self.db.execute("SELECT * FROM websub WHERE feed = ?", [feed]).fetchone()
        return WebSubRow(**dict(row)) if row else None

    def websub_rows(self) -> list[WebSubRow]:
        return [WebSubRow(**dict(row)) for row in self.db.execute("SELECT * FROM websub ORDER BY feed").fetchall()]

    def update_websub(self, feed: str, **fields: Any) -> None:
        """Insert or update one feed's row (a new row starts as status 'none')."""
        with self._lock, self._errors():
            self.db.execute("INSERT INTO websub (feed) VALUES (?) ON CONFLICT (feed) DO NOTHING", [feed])
            if fields:
                self._update_columns("websub", "feed", feed, self._WEBSUB_COLUMNS, fields)

    def delete_websub(self, feed: str) -> None:
        self.db.execute("DELETE FROM websub WHERE feed = ?", [feed])

    # --- entries ---------------------------------------------------------------------------------------

    def entry_id_by_key(self, feed: str, key: str) -> int | None:
        row = self.db.execute("SELECT id FROM entries WHERE feed = ? AND key = ?", [feed, key]).fetchone()
        return row[0] if row else None

    def entry_id_by_aliases(self, feed: str, aliases: list[str]) -> int | None:
        if not aliases:
            return None
        marks = ",".join("?" * len(aliases))
        row = self.db.execute(
            f"SELECT entry_id FROM aliases WHERE feed = ? AND alias IN ({marks}) LIMIT 1", [feed, *aliases]
        ).fetchone()
        return row[0] if row else None

    def known_entries(self, feed: str, keys: list[str]) -> dict[str, tuple[int, str]]:
        """key -> (entry id, content hash) for the feed's entries among `keys` (the keys in a document: a feed
        with years of history must not cost a read of every entry it ever had)."""
        rows = []
        for start in range(0, len(keys), 500):  # SQLite's limit on bound parameters, with room to spare
            chunk = keys[start:start + 500]
            rows += self.db.execute(
                f"SELECT key, id, content_hash FROM entries WHERE feed = ? AND key IN ({','.join('?' * len(chunk))})",
                [feed, *chunk],
            ).fetchall()
        return {key: (entry_id, content_hash) for key, entry_id, content_hash in rows}

    def feed_has_entries(self, feed: str) -> bool:
        return self.db.execute("SELECT 1 FROM entries WHERE feed = ? LIMIT 1", [feed]).fetchone() is not None

    def add_entry(self, feed: str, entry: Entry, status: str, content_hash: str, aliases: list[str], now: float,
                  *, data: str | None = None) -> int:
        """`data`: the entry's JSON when the caller has it already (bridge/feeds/prepare.py)."""
        rows = self.db.execute(
            """INSERT INTO entries (feed, key, link, status, content_hash, published, first_seen_at, updated_at, data)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id""",
            [
                feed,
                entry.key,
                entry.link,
                status,
                content_hash,
                entry.published.timestamp() if entry.published else None,
                now,
                now,
                data if data is not None else json.dumps(entry.to_dict(), ensure_ascii=False),
            ],
        ).fetchall()
        entry_id = rows[0][0]
        self.add_aliases(feed, entry_id, aliases)
        return entry_id

    def add_entries(self, feed: str, rows: list[tuple[PreparedEntry, str, list[str]]], now: float) -> None:
        """add_entry for many (prepared entry, status, aliases) of one feed, distinct keys, a few hundred rows per
        INSERT: a feed's first poll records its whole document (200,000 entries in a cold poll of 10,000 feeds),
        and on PostgreSQL a statement per entry was a network round trip per entry."""
        for start in range(0, len(rows), ENTRIES_PER_INSERT):
            chunk = rows[start:start + ENTRIES_PER_INSERT]
            values = [value for item, status, _ in chunk
                      for value in (feed, item.key, item.link, status, item.content_hash, item.published_at, now, now,
                                    item.data)]
            ids = dict(self.db.execute(  # (key, id): the order of RETURNING's rows is not promised
                f"""INSERT INTO entries (feed, key, link, status, content_hash, published, first_seen_at, updated_at, data)
                    VALUES {', '.join(['(?, ?, ?, ?, ?, ?, ?, ?, ?)'] * len(chunk))} RETURNING key, id""",
                values).fetchall())  # fetchall: SQLite finishes a RETURNING statement only when its rows are read
            aliases = [(alias, feed, ids[item.key]) for item, _, entry_aliases in chunk for alias in entry_aliases]
            for first in range(0, len(aliases), ALIASES_PER_INSERT):
                part = aliases[first:first + ALIASES_PER_INSERT]
                self.db.execute(f"INSERT INTO aliases (alias, feed, entry_id) VALUES {', '.join(['(?, ?, ?)'] * len(part))} "
                                "ON CONFLICT (feed, alias) DO NOTHING", [value for row in part for value in row])

    def add_aliases(self, feed: str, entry_id: int, aliases: list[str]) -> None:
        self.db.conn.executemany(
            "INSERT INTO aliases (alias, feed, entry_id) VALUES (?, ?, ?) ON CONFLICT (feed, alias) DO NOTHING",
            [(alias, feed, entry_id) for alias in aliases],
        )

    def update_entry(self, entry_id: int, entry: Entry, content_hash: str, now: float, *, data: str | None = None) -> None:
        self.db.execute(
            "UPDATE entries SET link = ?, content_hash = ?, updated_at = ?, data = ? WHERE id = ?",
            [entry.link, content_hash, now, data if data is not None else json.dumps(entry.to_dict(), ensure_ascii=False),
             entry_id],
        )

    def rekey_entry(self, entry_id: int, key: str) -> None:
        self.db.execute("UPDATE entries SET key = ? WHERE id = ?", [key, entry_id])

    def get_entry(self, entry_id: int) -> tuple[str, Entry, str]:
        """(feed name, entry, status)."""
        row = self.db.execute("SELECT feed, data, status FROM entries WHERE id = ?", [entry_id]).fetchone()
        if row is None:
            raise StateError(f"no entry with id {entry_id}")
        return row[0], Entry.from_dict(json.loads(row[1])), row[2]

    def entries_of_feed(self, feed: str, *, since: float | None = None, oldest_first: bool = False) -> list[tuple[int, Entry, str]]:
        order = "ASC" if oldest_first else "DESC"
        clauses, params = ["feed = ?"], [feed]
        if since is not None:
            clauses.append("published >= ?")
            params.append(since)
        rows = self.db.execute(
            f"SELECT id, data, status FROM entries WHERE {' AND '.join(clauses)} "
            f"ORDER BY COALESCE(published, first_seen_at) {order}, id {order}",
            params,
        ).fetchall()
        return [(row[0], Entry.from_dict(json.loads(row[1])), row[2]) for row in rows]

    def newest_link(self, feed: str) -> str | None:
        """The link of the entry recorded last for `feed` (None when there is none)."""
        row = self.db.execute("SELECT link FROM entries WHERE feed = ? ORDER BY id DESC LIMIT 1", [feed]).fetchone()
        return row[0] if row else None

    def count_entries(self, feed: str) -> int:
        return self.db.execute("SELECT COUNT(*) FROM entries WHERE feed = ?", [feed]).fetchone()[0]

    # --- deliveries (the outbox) -------------------------------------------------------------------------

    def add_delivery(
        self,
        entry_id: int,
        account: str,
        *,
        idempotency_key: str,
        rkey: str | None,
        now: float,
        kind: str = "new",
        payload: dict | None = None,
        not_before: float | None = None,
    ) -> int | None:
        """Queue one (entry, account); returns None when that pair already has a delivery."""
        rows = self.db.execute(
            """INSERT INTO deliveries
               (entry_id, account, state, kind, payload, idempotency_key, rkey, next_attempt_at, created_at)
               VALUES (?, ?, 'pending', ?, ?, ?, ?, ?, ?) ON CONFLICT (entry_id, account) DO NOTHING RETURNING id""",
            [
                entry_id,
                account,
                kind,
                json.dumps(payload, ensure_ascii=False) if payload is not None else None,
                idempotency_key,
                rkey,
                not_before if not_before is not None else now,
                now,
            ],
        ).fetchall()
        return rows[0][0] if rows else None

    def add_filtered(self, entry_id: int, account: str, reason: str, *, idempotency_key: str, now: float) -> int | None:
        """Record that a filter kept this entry from this account (state `filtered`, the reason in last_error): the
        row is the entry's history for the account and keeps it from being queued later. None when a row exists."""
        rows = self.db.execute(
            """INSERT INTO deliveries
               (entry_id, account, state, kind, idempotency_key, next_attempt_at, created_at, last_error)
               VALUES (?, ?, 'filtered', 'new', ?, ?, ?, ?) ON CONFLICT (entry_id, account) DO NOTHING RETURNING id""",
            [entry_id, account, idempotency_key, now, now, redact(reason)],
        ).fetchall()
        return rows[0][0] if rows else None

    def filter_unsent(self, entry_id: int, account: str, reason: str) -> bool:
        """A delivery never attempted becomes `filtered` (its entry changed into one the filters leave out)."""
        cursor = self.db.execute(
            """UPDATE deliveries SET state = 'filtered', last_error = ?
               WHERE entry_id = ? AND account = ? AND state = 'pending' AND attempts = 0 AND first_sent_at IS NULL""",
            [redact(reason), entry_id, account],
        )
        return cursor.rowcount > 0

    # --- deletes that follow the blog (bridge/deletes.py) ----------------------------------------------------

    # A delivery whose posts are out: posted, or a long note's thread that failed after some of its parts were
    # posted (they are the writer's posts all the same: deleted with the entry, bridge/deletes.py).
    _HAS_POSTS = ("(d.state = 'posted' OR (d.state = 'failed' AND EXISTS "
                  "(SELECT 1 FROM thread_parts t WHERE t.delivery_id = d.id)))")

    def posted_entries_since(self, feed: str, since: float, accounts: list[str]) -> dict[str, int]:
        """key -> id of the feed's entries dated `since` or later that have a post on one of `accounts` and are not
        watched yet: the ones whose disappearance from the feed means something."""
        if not accounts:
            return {}
        rows = self.db.execute(
            f"""SELECT e.key, e.id FROM entries e
                WHERE e.feed = ? AND COALESCE(e.published, e.first_seen_at) >= ?
                  AND EXISTS (SELECT 1 FROM deliveries d WHERE d.entry_id = e.id AND {self._HAS_POSTS}
                              AND d.account IN ({','.join('?' * len(accounts))}))
                  AND NOT EXISTS (SELECT 1 FROM vanished v WHERE v.entry_id = e.id)""",
            [feed, since, *accounts],
        ).fetchall()
        return {key: entry_id for key, entry_id in rows}

    def watch_vanished(self, entry_ids: list[int], now: float) -> None:
        self.db.conn.executemany(
            """INSERT INTO vanished (entry_id, missing_since, state, next_check_at, updated_at)
               VALUES (?, ?, 'checking', ?, ?) ON CONFLICT (entry_id) DO NOTHING""",
            [(entry_id, now, now, now) for entry_id in entry_ids],
        )

    def forget_reappeared(self, feed: str, keys: list[str]) -> int:
        """Entries back in their feed are no longer watched, unless their deletion has begun."""
        forgotten = 0
        for start in range(0, len(keys), 500):
            chunk = keys[start:start + 500]
            forgotten += self.db.execute(
                f"""DELETE FROM vanished WHERE state = 'checking' AND entry_id IN
                    (SELECT id FROM entries WHERE feed = ? AND key IN ({','.join('?' * len(chunk))}))""",
                [feed, *chunk],
            ).rowcount
        return forgotten

    def vanished(self, *, states: tuple[str, ...], due_by: float | None = None) -> list[dict]:
        """Watched entries in these states (due for a check by `due_by`), with their feed, key and link."""
        rows = self.db.execute(
            f"""SELECT v.*, e.feed AS feed, e.key AS key, e.link AS link, {self._json_text('e.data', 'title')} AS title
                FROM vanished v JOIN entries e ON e.id = v.entry_id
                WHERE v.state IN ({','.join('?' * len(states))}) AND (? IS NULL OR v.next_check_at <= ?)
                ORDER BY v.entry_id""",
            [*states, due_by, due_by],
        ).fetchall()
        return [dict(row) for row in rows]

    def update_vanished(self, entry_id: int, now: float, **fields: Any) -> None:
        allowed = {"state", "gone_checks", "first_gone_at", "next_check_at", "last_status", "note"}
        if set(fields) - allowed:
            raise ValueError(f"not vanished columns: {sorted(set(fields) - allowed)}")
        if fields.get("note"):
            fields["note"] = redact(fields["note"])
        assignments = ", ".join(f"{column} = ?" for column in fields)
        with self.transaction():
            self.db.execute(f"UPDATE vanished SET {assignments}, updated_at = ? WHERE entry_id = ?",
                            [*fields.values(), now, entry_id])

    def with_posts(self, entry_id: int) -> list[DeliveryRow]:
        """The entry's deliveries whose posts are out (_HAS_POSTS): what deleting the entry deletes."""
        rows = self.db.execute(f"{self._DELIVERY_SELECT} WHERE d.entry_id = ? AND {self._HAS_POSTS} ORDER BY d.id",
                               [entry_id]).fetchall()
        return [self._delivery_row(row) for row in rows]

    def mark_deleted(self, delivery_id: int, now: float) -> None:
        """The remote post (or a failed thread's posted parts) was deleted; the row stays, as the entry's history."""
        with self.transaction():
            self.db.execute("UPDATE deliveries SET state = 'deleted', deleted_at = ? WHERE id = ? "
                            "AND state IN ('posted', 'failed')", [now, delivery_id])

    def has_delivery(self, entry_id: int, account: str) -> bool:
        row = self.db.execute("SELECT 1 FROM deliveries WHERE entry_id = ? AND account = ?", [entry_id, account]).fetchone()
        return row is not None

    def account_has_alias(self, account: str, aliases: list[str]) -> bool:
        """Has this account a delivery for any entry, of any feed, with one of these canonical links?"""
        if not aliases:
            return False
        marks = ",".join("?" * len(aliases))
        row = self.db.execute(
            f"""SELECT 1 FROM aliases a JOIN deliveries d ON d.entry_id = a.entry_id
                WHERE d.account = ? AND d.state != 'filtered' AND a.alias IN ({marks}) LIMIT 1""",
            [account, *aliases],
        ).fetchone()
        return row is not None

    _DELIVERY_SELECT = """SELECT d.*, e.feed AS feed, e.key AS entry_key, e.link AS link
                          FROM deliveries d JOIN entries e ON e.id = d.entry_id"""

    def get_delivery(self, delivery_id: int) -> DeliveryRow | None:
        row = self.db.execute(f"{self._DELIVERY_SELECT} WHERE d.id = ?", [delivery_id]).fetchone()
        return self._delivery_row(row) if row else None

    def deliveries(self, *, account: str | None = None, state: str | None = None, feed: str | None = None,
                   entry_id: int | None = None) -> list[DeliveryRow]:
        clauses, params = [], []
        for column, value in (("d.account", account), ("d.state", state), ("e.feed", feed), ("d.entry_id", entry_id)):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = self.db.execute(f"{self._DELIVERY_SELECT} {where} ORDER BY d.id", params).fetchall()
        return [self._delivery_row(row) for row in rows]

    def due_deliveries(self, account: str, now: float, limit: int = 100) -> list[DeliveryRow]:
        """Pending deliveries whose time has come, oldest first; rows stuck in `sending`, and rows of unknown outcome
        due for another look, come first of all."""
        # The ids come from three ranges of the deliveries_due index alone, and only the chosen few are joined to
        # their entries: joining every pending one before the LIMIT read the entries table once per queued post.
        rows = self.db.execute(
            f"""{self._DELIVERY_SELECT}
                WHERE d.id IN (
                    SELECT id FROM (
                        SELECT id, 1 AS sending FROM deliveries WHERE account = ? AND state = 'sending'
                        UNION ALL
                        SELECT id, 0 FROM deliveries WHERE account = ? AND state = 'pending' AND next_attempt_at <= ?
                        UNION ALL
                        SELECT id, 1 FROM deliveries WHERE account = ? AND state = 'unknown' AND next_attempt_at <= ?
                    ) AS due ORDER BY sending DESC, id LIMIT ?)
                ORDER BY d.state IN ('sending', 'unknown') DESC, d.id""",
            [account, account, now, account, now, limit],
        ).fetchall()
        return [self._delivery_row(row) for row in rows]

    def set_payload(self, delivery_id: int, payload: dict, idempotency_key: str | None = None) -> None:
        """The payload to send (and, after the server refused the last one, the new key to send it under)."""
        with self.transaction():
            self.db.execute(
                "UPDATE deliveries SET payload = ?, idempotency_key = COALESCE(?, idempotency_key) WHERE id = ?",
                [json.dumps(payload, ensure_ascii=False), idempotency_key, delivery_id],
            )

    def mark_sending(self, delivery_id: int, now: float) -> None:
        with self.transaction():
            self.db.execute(
                """UPDATE deliveries SET state = 'sending', sending_at = ?, first_sent_at = COALESCE(first_sent_at, ?),
                   attempts = attempts + 1 WHERE id = ?""",
                [now, now, delivery_id],
            )

    def mark_posted(self, delivery_id: int, remote_id: str, remote_url: str | None, now: float) -> None:
        with self.transaction():
            self.db.execute(
                """UPDATE deliveries SET state = 'posted', remote_id = ?, remote_url = ?, posted_at = ?, last_error = NULL
                   WHERE id = ?""",
                [remote_id, remote_url, now, delivery_id],
            )

    def mark_retry(self, delivery_id: int, error: str, next_attempt_at: float) -> None:
        """Back to pending, to be tried again at next_attempt_at."""
        with self.transaction():
            self.db.execute(
                "UPDATE deliveries SET state = 'pending', last_error = ?, next_attempt_at = ? WHERE id = ?",
                [redact(error), next_attempt_at, delivery_id],
            )

    def mark_unsent(self, delivery_id: int, error: str, next_attempt_at: float, first_sent_at: float | None) -> None:
        """This attempt made nothing (rate limited, credentials refused): back to pending, the attempt not counted,
        and the outcome as known as before it (first_sent_at as it was)."""
        with self.transaction():
            self.db.execute(
                f"""UPDATE deliveries SET state = 'pending', last_error = ?, next_attempt_at = ?,
                   attempts = {self._greatest('attempts - 1', '0')}, first_sent_at = ?,
                   sending_at = CASE WHEN ? IS NULL THEN NULL ELSE sending_at END WHERE id = ?""",
                [redact(error), next_attempt_at, first_sent_at, first_sent_at, delivery_id],
            )

    def queue_edit(self, entry_id: int, account: str, now: float) -> str | None:
        """An entry changed: a posted delivery becomes an edit to make; an unsent one is re-rendered.

        Returns what was done ("edit", "rerender") or None when nothing applies (in flight, failed, absent).
        """
        row = self.db.execute(
            "SELECT id, state, attempts, remote_id FROM deliveries WHERE entry_id = ? AND account = ?", [entry_id, account]
        ).fetchone()
        if row is None:
            return None
        if row["state"] == "posted" and row["remote_id"]:
            self.db.execute(
                """UPDATE deliveries SET kind = 'update', state = 'pending', payload = NULL, attempts = 0,
                   next_attempt_at = ?, last_error = NULL WHERE id = ?""",
                [now, row["id"]],
            )
            return "edit"
        if row["state"] == "pending" and row["attempts"] == 0:
            self.db.execute("UPDATE deliveries SET payload = NULL WHERE id = ?", [row["id"]])
            return "rerender"
        return None

    def mark_failed(self, delivery_id: int, reason: str, *, next_key: str | None = None) -> None:
        """Given up. `next_key`: the server refused the post itself, so no attempt made it -- a retry need not look
        for it (first_sent_at is cleared) and goes out under this new key (Pleroma and Akkoma answer a key they
        refused with the same refusal for hours)."""
        with self.transaction():
            self.db.execute(
                f"""UPDATE deliveries SET state = 'failed', last_error = ?
                    {', first_sent_at = NULL, sending_at = NULL, idempotency_key = ?' if next_key else ''} WHERE id = ?""",
                [redact(reason), *([next_key] if next_key else []), delivery_id],
            )

    def mark_unknown(self, delivery_id: int, reason: str, next_look_at: float) -> None:
        """An earlier attempt may have posted and nobody can tell: held, not sent, until the target can look
        (tried again at next_look_at) or the writer says `bridge retry --force`."""
        with self.transaction():
            self.db.execute(
                "UPDATE deliveries SET state = 'unknown', last_error = ?, next_attempt_at = ? WHERE id = ?",
                [redact(reason), next_look_at, delivery_id],
            )

    def requeue_failed(self, *, account: str | None, entry_key: str | None, now: float, force: bool = False) -> int:
        """Failed and unknown-outcome deliveries back to pending. An outcome that was not known stays so
        (first_sent_at is kept): the engine asks the server before it posts again. `force` -- the writer
        checked by hand that the post is not there -- forgets it, so the post goes out without a look."""
        clauses, params = ["d.state IN ('failed', 'unknown')"], []
        if account:
            clauses.append("d.account = ?")
            params.append(account)
        if entry_key:
            clauses.append("d.entry_id IN (SELECT id FROM entries WHERE key = ? OR link = ?)")
            params.extend([entry_key, entry_key])
        with self.transaction():
            cursor = self.db.execute(
                f"""UPDATE deliveries SET state = 'pending', attempts = 0, next_attempt_at = ?
                    {', first_sent_at = NULL, sending_at = NULL' if force else ''}
                    WHERE id IN (SELECT d.id FROM deliveries d WHERE {' AND '.join(clauses)})""",
                [now, *params],
            )
        return cursor.rowcount

    def rewind_account_if_ahead(self, account: str, now: float) -> None:
        """Times of this account recorded "in the future" mean the clock went back: move them back with it, so that
        no retry, pacing, deferral, pause or flood-control window waits for the clock to catch up.

        A queued delivery's schedule keeps its length from the moment it was set (created, or last sent). Posts
        made "in the future" count as made now: flood control then holds the account for at most its own hourly
        or daily window.
        """
        ahead = now + CLOCK_SLACK_SECONDS
        with self.transaction():
            newest = self._greatest("created_at", "COALESCE(sending_at, 0)")
            shift = f"({newest} - ?)"  # every SET reads the row's old values
            self.db.execute(
                f"""UPDATE deliveries SET next_attempt_at = next_attempt_at - {shift}, created_at = created_at - {shift},
                        sending_at = sending_at - {shift}, first_sent_at = first_sent_at - {shift}
                    WHERE account = ? AND state IN ('pending', 'sending', 'unknown') AND {newest} > ?""",
                [now, now, now, now, account, ahead],
            )
            self.db.execute("UPDATE deliveries SET posted_at = ? WHERE account = ? AND posted_at > ?", [now, account, ahead])
            self.db.execute(
                """UPDATE accounts SET deferred_until = deferred_until - (deferred_at - ?), deferred_at = ?
                   WHERE name = ? AND deferred_at > ?""",
                [now, now, account, ahead],
            )
            for column in ("paused_at", "session_updated_at", "limits_fetched_at"):
                self.db.execute(f"UPDATE accounts SET {column} = ? WHERE name = ? AND {column} > ?", [now, account, ahead])

    def posted_times_since(self, account: str, since: float) -> list[float]:
        rows = self.db.execute(
            "SELECT posted_at FROM deliveries WHERE account = ? AND state = 'posted' AND posted_at >= ? ORDER BY posted_at",
            [account, since],
        ).fetchall()
        return [row[0] for row in rows]

    def delivery_counts(self) -> dict[tuple[str, str], int]:
        """(account, state) -> count."""
        rows = self.db.execute("SELECT account, state, COUNT(*) FROM deliveries GROUP BY account, state").fetchall()
        return {(account, state): count for account, state, count in rows}

    def pending_count_by_feed(self) -> dict[str, int]:
        rows = self.db.execute(
            """SELECT e.feed, COUNT(*) FROM deliveries d JOIN entries e ON e.id = d.entry_id
               WHERE d.state IN ('pending', 'sending') GROUP BY e.feed"""
        ).fetchall()
        return dict(rows)

    def recent_posts(self, account: str, *, limit: int, since: float | None = None) -> list[PostedEntry]:
        """The account's posts, newest first (posted after `since`, when given), with their entries' titles and
        first sight: for the status page's recent posts and the delivery-latency metric."""
        rows = self.db.execute(
            f"""SELECT sub.*, {self._json_text('e2.data', 'title')} AS title, e2.first_seen_at AS first_seen_at
                FROM ({self._DELIVERY_SELECT} WHERE d.account = ? AND d.state = 'posted' AND (? IS NULL OR d.posted_at > ?)
                      ORDER BY d.posted_at DESC LIMIT ?) sub JOIN entries e2 ON e2.id = sub.entry_id
                ORDER BY sub.posted_at DESC""",
            [account, since, since, limit],
        ).fetchall()
        posts = []
        for row in rows:
            data = dict(row)
            title, first_seen_at = data.pop("title"), data.pop("first_seen_at")
            posts.append(PostedEntry(self._delivery_row_from(data), title or "", first_seen_at))
        return posts

    def cancel_pending(self, *, account: str | None = None, feed: str | None = None, kind: str | None = None) -> int:
        clauses, params = ["d.state = 'pending'"], []
        for column, value in (("d.account", account), ("e.feed", feed), ("d.kind", kind)):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        with self.transaction():
            cursor = self.db.execute(
                f"""DELETE FROM deliveries WHERE id IN (SELECT d.id FROM deliveries d JOIN entries e ON e.id = d.entry_id
                    WHERE {' AND '.join(clauses)})""",
                params,
            )
        return cursor.rowcount

    def _delivery_row(self, row: sqlite3.Row) -> DeliveryRow:
        return self._delivery_row_from(dict(row))

    @staticmethod
    def _delivery_row_from(data: dict) -> DeliveryRow:
        data["payload"] = json.loads(data["payload"]) if data["payload"] else None
        return DeliveryRow(**data)

    # --- Nostr: signed events and the relays' answers, per delivery ----------------------------------------

    def nostr_events(self, delivery_id: int) -> dict | None:
        """{"payload_hash", "events", "relays", "signed_at"} of a delivery, or None before it was first signed."""
        row = self.db.execute("SELECT * FROM nostr_events WHERE delivery_id = ?", [delivery_id]).fetchone()
        if row is None:
            return None
        return {"payload_hash": row["payload_hash"], "events": json.loads(row["events"]),
                "relays": json.loads(row["relays"]), "signed_at": row["signed_at"]}

    def save_nostr_events(self, delivery_id: int, payload_hash: str, events: list[dict], relays: dict, now: float) -> None:
        """Store (replace) a delivery's signed events, committed before any of them is sent."""
        with self.transaction():
            self.db.execute(
                """INSERT INTO nostr_events (delivery_id, payload_hash, events, relays, signed_at, updated_at)
                   VALUES (?, ?, ?, ?, ?, ?)
                   ON CONFLICT (delivery_id) DO UPDATE SET payload_hash = excluded.payload_hash,
                   events = excluded.events, relays = excluded.relays, signed_at = excluded.signed_at,
                   updated_at = excluded.updated_at""",
                [delivery_id, payload_hash, json.dumps(events, ensure_ascii=False), json.dumps(relays), now, now],
            )

    def save_nostr_relays(self, delivery_id: int, relays: dict, now: float) -> None:
        """The relays' answers so far (their messages pass redact: they are servers' words)."""
        cleaned = {url: {event_id: {**answer, "message": redact(answer.get("message") or "")}
                         for event_id, answer in answers.items()} for url, answers in relays.items()}
        with self.transaction():
            self.db.execute("UPDATE nostr_events SET relays = ?, updated_at = ? WHERE delivery_id = ?",
                            [json.dumps(cleaned, ensure_ascii=False), now, delivery_id])

    # --- threads for long notes: the parts made so far (bridge/notethreads.py) ------------------------------

    def thread_parts(self, delivery_id: int) -> list[dict]:
        """[{"part", "remote_id", "url", "cid", "digest"}] of a delivery's thread, in order; [] for a single post."""
        rows = self.db.execute("SELECT part, remote_id, url, cid, digest FROM thread_parts WHERE delivery_id = ? "
                               "ORDER BY part", [delivery_id]).fetchall()
        return [dict(row) for row in rows]

    def save_thread_part(self, delivery_id: int, part: int, *, remote_id: str, url: str | None, cid: str | None,
                         digest: str, now: float) -> None:
        """One part made (or edited), committed before the next is sent."""
        with self.transaction():
            self.db.execute(
                """INSERT INTO thread_parts (delivery_id, part, remote_id, url, cid, digest, posted_at)
                   VALUES (?, ?, ?, ?, ?, ?, ?)
                   ON CONFLICT (delivery_id, part) DO UPDATE SET remote_id = excluded.remote_id, url = excluded.url,
                   cid = excluded.cid, digest = excluded.digest""",
                [delivery_id, part, remote_id, url, cid, digest, now])

    # --- Threads: the media container of a delivery ---------------------------------------------------------

    def threads_container(self, delivery_id: int) -> dict | None:
        """{"container_id", "created_at"} of a delivery, or None before its container was made."""
        row = self.db.execute("SELECT container_id, created_at FROM threads_containers WHERE delivery_id = ?",
                              [delivery_id]).fetchone()
        return None if row is None else {"container_id": row["container_id"], "created_at": row["created_at"]}

    def save_threads_container(self, delivery_id: int, container_id: str | None, now: float) -> None:
        """Store (or, with None, forget) a delivery's container, committed before it is published."""
        with self.transaction():
            if container_id is None:
                self.db.execute("DELETE FROM threads_containers WHERE delivery_id = ?", [delivery_id])
                return
            self.db.execute(
                """INSERT INTO threads_containers (delivery_id, container_id, created_at) VALUES (?, ?, ?)
                   ON CONFLICT (delivery_id) DO UPDATE SET container_id = excluded.container_id,
                   created_at = excluded.created_at""", [delivery_id, container_id, now])

    def save_platform_status(self, name: str, status: dict) -> None:
        """A platform's latest facts about an account, shown by `bridge status` (servers' words pass redact)."""
        with self.transaction():
            self._ensure_account(name)
            self.db.execute("UPDATE accounts SET platform_status = ? WHERE name = ?",
                            [redact(json.dumps(status, ensure_ascii=False)), name])
    # --- reactions (the way back) -----------------------------------------------------------------------

    def syndicated_deliveries(self, feed: str | None = None) -> list[DeliveryRow]:
        """Deliveries that made a remote post (posted, or posted and since queued for an edit), oldest first; not
        those deleted since with their entry (bridge/deletes.py)."""
        where = "WHERE d.remote_id IS NOT NULL AND d.state != 'deleted'" + (" AND e.feed = ?" if feed is not None else "")
        rows = self.db.execute(f"{self._DELIVERY_SELECT} {where} ORDER BY d.posted_at, d.id",
                               [feed] if feed is not None else []).fetchall()
        return [self._delivery_row(row) for row in rows]

    def due_reaction_deliveries(self, account: str, now: float, *, posted_since: float, first_before: float,
                                limit: int) -> list[DeliveryRow]:
        """The account's remote posts whose reactions are due a read: never read and posted before `first_before`,
        or due by their schedule; posted since `posted_since` (older ones are no longer read), most overdue first."""
        rows = self.db.execute(
            f"""{self._DELIVERY_SELECT} LEFT JOIN reaction_threads t ON t.delivery_id = d.id
                WHERE d.account = ? AND d.remote_id IS NOT NULL AND d.state != 'deleted' AND d.posted_at >= ?
                  AND ((t.delivery_id IS NULL AND d.posted_at <= ?) OR (t.gone = 0 AND t.next_refresh_at <= ?))
                ORDER BY COALESCE(t.next_refresh_at, d.posted_at), d.id LIMIT ?""",
            [account, posted_since, first_before, now, limit],
        ).fetchall()
        return [self._delivery_row(row) for row in rows]

    def save_reactions(self, delivery_id: int, *, root_url: str | None, counts: dict, hidden_ids: list[str],
                       replies: list[dict], now: float, next_refresh_at: float) -> None:
        """One read of a post's reactions: the replies replace the last read's, so a reply deleted or made
        private since is gone."""
        with self.transaction():
            self.db.execute(
                """INSERT INTO reaction_threads (delivery_id, root_url, counts, hidden_ids, gathered_at, next_refresh_at,
                       refreshes, error_count, last_error, gone)
                   VALUES (?, ?, ?, ?, ?, ?, 1, 0, NULL, 0)
                   ON CONFLICT (delivery_id) DO UPDATE SET root_url = excluded.root_url, counts = excluded.counts,
                       hidden_ids = excluded.hidden_ids, gathered_at = excluded.gathered_at,
                       next_refresh_at = excluded.next_refresh_at, refreshes = reaction_threads.refreshes + 1, error_count = 0,
                       last_error = NULL, gone = 0""",
                [delivery_id, root_url, json.dumps(counts), json.dumps(sorted(hidden_ids)), now, next_refresh_at],
            )
            self.db.execute("DELETE FROM reaction_replies WHERE delivery_id = ?", [delivery_id])
            self.db.conn.executemany(
                """INSERT INTO reaction_replies (delivery_id, remote_id, url, author_handle, data) VALUES (?, ?, ?, ?, ?)
                   ON CONFLICT (delivery_id, remote_id) DO UPDATE SET url = excluded.url,
                   author_handle = excluded.author_handle, data = excluded.data""",
                [(delivery_id, reply["remote_id"], reply.get("url"), reply["author"]["handle"],
                  json.dumps(reply, ensure_ascii=False)) for reply in replies],
            )

    def reactions_failed(self, delivery_id: int, error: str, next_refresh_at: float, now: float) -> None:
        """A read that failed: the last good read stays shown, the next one is tried at next_refresh_at."""
        with self.transaction():
            self.db.execute(
                """INSERT INTO reaction_threads (delivery_id, next_refresh_at, error_count, last_error)
                   VALUES (?, ?, 1, ?)
                   ON CONFLICT (delivery_id) DO UPDATE SET next_refresh_at = excluded.next_refresh_at,
                       error_count = reaction_threads.error_count + 1, last_error = excluded.last_error""",
                [delivery_id, next_refresh_at, redact(error)],
            )

    def reactions_gone(self, delivery_id: int, reason: str, now: float) -> None:
        """The remote post was deleted: its replies are forgotten and it is read no more."""
        with self.transaction():
            self.db.execute(
                """INSERT INTO reaction_threads (delivery_id, next_refresh_at, gone, last_error, gathered_at)
                   VALUES (?, ?, 1, ?, ?)
                   ON CONFLICT (delivery_id) DO UPDATE SET gone = 1, counts = NULL, hidden_ids = NULL,
                       last_error = excluded.last_error, gathered_at = excluded.gathered_at""",
                [delivery_id, now, redact(reason), now],
            )
            self.db.execute("DELETE FROM reaction_replies WHERE delivery_id = ?", [delivery_id])

    def reaction_error_count(self, delivery_id: int) -> int:
        """How many reads of this post failed in a row."""
        row = self.db.execute("SELECT error_count FROM reaction_threads WHERE delivery_id = ?", [delivery_id]).fetchone()
        return row[0] if row else 0

    def reaction_threads(self, *, entry_link: str | None = None) -> list[dict]:
        """Every read thread (gone ones too), with its delivery's account, entry and replies (dicts)."""
        where, params = "", []
        if entry_link is not None:
            where, params = "WHERE e.link = ?", [entry_link]
        rows = self.db.execute(
            f"""SELECT t.*, d.account, d.remote_id, d.remote_url, d.posted_at, d.entry_id, e.feed, e.link, e.data AS entry
                FROM reaction_threads t JOIN deliveries d ON d.id = t.delivery_id JOIN entries e ON e.id = d.entry_id
                {where} ORDER BY e.id, d.id""",
            params,
        ).fetchall()
        replies: dict[int, list[dict]] = {}
        ids = [row["delivery_id"] for row in rows]
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            for delivery_id, data in self.db.execute(
                f"SELECT delivery_id, data FROM reaction_replies WHERE delivery_id IN ({','.join('?' * len(chunk))})", chunk
            ).fetchall():
                replies.setdefault(delivery_id, []).append(json.loads(data))
        out = []
        for row in rows:
            data = dict(row)
            data["counts"] = json.loads(data["counts"]) if data["counts"] else None
            data["hidden_ids"] = json.loads(data["hidden_ids"]) if data["hidden_ids"] else []
            data["entry"] = Entry.from_dict(json.loads(data["entry"]))
            data["replies"] = replies.get(row["delivery_id"], [])
            out.append(data)
        return out

    def reaction_totals(self) -> dict[str, dict[str, int]]:
        """account -> totals of likes, reposts, quotes and shown-or-not replies over its read posts."""
        total = {name: f"CAST(SUM(COALESCE(CAST({self._json_text('t.counts', name)} AS BIGINT), 0)) AS BIGINT)"
                 for name in ("likes", "reposts", "quotes")}
        rows = self.db.execute(
            f"""SELECT d.account, COUNT(*) AS posts,
                      {total['likes']} AS likes, {total['reposts']} AS reposts, {total['quotes']} AS quotes,
                      (SELECT COUNT(*) FROM reaction_replies r JOIN deliveries d2 ON d2.id = r.delivery_id
                       WHERE d2.account = d.account) AS replies
               FROM reaction_threads t JOIN deliveries d ON d.id = t.delivery_id
               WHERE t.gone = 0 AND t.gathered_at IS NOT NULL GROUP BY d.account"""
        ).fetchall()
        return {row["account"]: {key: row[key] for key in ("posts", "likes", "reposts", "quotes", "replies")} for row in rows}

    def find_reply(self, url: str) -> dict | None:
        """A gathered reply by its web address (for `bridge reactions hide`), or None."""
        row = self.db.execute("SELECT data FROM reaction_replies WHERE url = ? LIMIT 1", [url]).fetchone()
        return json.loads(row[0]) if row else None

    def set_reply_hidden(self, url: str, hidden: bool, now: float) -> bool:
        """Hide (or show again) a reply by its URL; False when nothing changed."""
        return self._set_choice("reaction_hidden", "url", "hidden_at", url, hidden, now)

    def set_author_blocked(self, handle: str, blocked: bool, now: float) -> bool:
        """Block (or unblock) an author by handle, as given (already normalized); False when nothing changed."""
        return self._set_choice("reaction_blocked", "handle", "blocked_at", handle, blocked, now)

    def _set_choice(self, table: str, column: str, since: str, value: str, on: bool, now: float) -> bool:
        with self.transaction():
            if on:
                cursor = self.db.execute(
                    f"INSERT INTO {table} ({column}, {since}) VALUES (?, ?) ON CONFLICT ({column}) DO NOTHING", [value, now])
            else:
                cursor = self.db.execute(f"DELETE FROM {table} WHERE {column} = ?", [value])
        return cursor.rowcount > 0

    def hidden_reply_urls(self) -> set[str]:
        return {row[0] for row in self.db.execute("SELECT url FROM reaction_hidden").fetchall()}

    def blocked_authors(self) -> set[str]:
        return {row[0] for row in self.db.execute("SELECT handle FROM reaction_blocked").fetchall()}

    # --- accounts: pause, rate-limit deferral, session, instance limits ----------------------------------

    def _ensure_account(self, name: str) -> None:
        self.db.execute("INSERT INTO accounts (name) VALUES (?) ON CONFLICT (name) DO NOTHING", [name])

    def account(self, name: str) -> dict[str, Any]:
        row = self.db.execute("SELECT * FROM accounts WHERE name = ?", [name]).fetchone()
        if row is None:
            return {"name": name, "paused_reason": None, "paused_at": None, "paused_fingerprint": None,
                    "session": None, "limits": None, "limits_fetched_at": None, "deferred_until": None,
                    "deferred_at": None, "session_updated_at": None, "platform_status": None}
        data = dict(row)
        data["limits"] = json.loads(data["limits"]) if data["limits"] else None
        data["platform_status"] = json.loads(data["platform_status"]) if data.get("platform_status") else None
        return data

    def pause_account(self, name: str, reason: str, now: float, fingerprint: str | None = None) -> None:
        with self.transaction():
            self._ensure_account(name)
            self.db.execute(
                "UPDATE accounts SET paused_reason = ?, paused_at = ?, paused_fingerprint = ? WHERE name = ?",
                [redact(reason), now, fingerprint, name],
            )

    def resume_account(self, name: str) -> None:
        with self.transaction():
            self.db.execute(
                "UPDATE accounts SET paused_reason = NULL, paused_at = NULL, paused_fingerprint = NULL WHERE name = ?", [name]
            )

    def defer_account(self, name: str, until: float | None, now: float | None = None) -> None:
        with self.transaction():
            self._ensure_account(name)
            self.db.execute("UPDATE accounts SET deferred_until = ?, deferred_at = ? WHERE name = ?", [until, now, name])

    def load_session(self, name: str) -> str | None:
        row = self.db.execute("SELECT session FROM accounts WHERE name = ?", [name]).fetchone()
        return row[0] if row else None

    def save_session(self, name: str, session: str | None, now: float) -> None:
        with self.transaction():
            self._ensure_account(name)
            self.db.execute(
                "UPDATE accounts SET session = ?, session_updated_at = ? WHERE name = ?", [session, now, name]
            )

    def save_limits(self, name: str, limits: dict, now: float) -> None:
        with self.transaction():
            self._ensure_account(name)
            self.db.execute(
                "UPDATE accounts SET limits = ?, limits_fetched_at = ? WHERE name = ?", [json.dumps(limits), now, name]
            )

    # --- alerts: the problems known, told and recovered (bridge/alerts/engine.py) ------------------------

    def alert_rows(self) -> list[AlertRow]:
        return [AlertRow(**dict(row)) for row in self.db.execute("SELECT * FROM alerts ORDER BY first_seen_at, key")]

    def save_alert(self, key: str, kind: str, text: str, first_seen_at: float, opened_at: float | None) -> None:
        """Record a problem seen now (new, or still there: its text and opening move on, a clearing is undone)."""
        with self.transaction():
            self.db.execute(
                """INSERT INTO alerts (key, kind, text, first_seen_at, opened_at) VALUES (?, ?, ?, ?, ?)
                   ON CONFLICT (key) DO UPDATE SET text = excluded.text, cleared_at = NULL,
                   opened_at = COALESCE(alerts.opened_at, excluded.opened_at)""",
                [key, kind, redact(text), first_seen_at, opened_at],
            )

    def clear_alert(self, key: str, now: float) -> None:
        """The problem is gone: forget it if the writer was never told, else keep it until the recovery is told."""
        with self.transaction():
            self.db.execute("DELETE FROM alerts WHERE key = ? AND alerted_at IS NULL", [key])
            self.db.execute("UPDATE alerts SET cleared_at = ? WHERE key = ? AND cleared_at IS NULL", [now, key])

    def mark_alerts_told(self, keys: list[str], now: float) -> None:
        """The writer was told about these: open problems are marked, recovered ones forgotten."""
        with self.transaction():
            for key in keys:
                self.db.execute("DELETE FROM alerts WHERE key = ? AND cleared_at IS NOT NULL", [key])
                self.db.execute("UPDATE alerts SET alerted_at = ? WHERE key = ?", [now, key])

    def alert_meta(self, name: str) -> float | None:
        row = self.db.execute("SELECT value FROM alert_meta WHERE name = ?", [name]).fetchone()
        return row[0] if row else None

    def set_alert_meta(self, name: str, value: float) -> None:
        with self.transaction():
            self.db.execute("INSERT INTO alert_meta (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                            [name, value])


def _sync_file(path: Path) -> None:
    """Wait until `path` is on the disk (a missing file has nothing to wait for)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise StateError(f"cannot open the state's {path.name}: {exc.strerror}; {_fix_for(exc, path)}") from None
    try:
        os.fsync(fd)
    except OSError as exc:  # a disk full, or failing, as the writes reach it
        raise StateError(f"cannot write the state's {path.name} to the disk: {exc.strerror}; "
                         f"{_fix_for(exc, path)}") from None
    finally:
        os.close(fd)


def _connect(target: str, uri: bool = False) -> sqlite3.Connection:
    conn = sqlite3.connect(target, uri=uri, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA foreign_keys = ON")
    # 32 MB of page cache instead of 2: a poll that records thousands of entries (a few KB each) in one
    # transaction would otherwise spill dirty pages to the WAL mid-transaction, which made writes 4x slower.
    conn.execute("PRAGMA cache_size = -32000")
    return conn


def _connect_readonly(path: Path) -> sqlite3.Connection:
    """A read-only connection. On a read-only directory SQLite cannot create the WAL index (-shm) that reading
    needs; nobody can be writing there, so the file is read as immutable instead."""
    try:
        conn = _connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.OperationalError:
        if os.access(path.parent, os.W_OK) and not _read_only_mount(path):
            raise
        return _connect(f"file:{path}?mode=ro&immutable=1", uri=True)
    return conn


def _read_only_mount(path: Path) -> bool:
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def _refuse_directory(path: Path) -> None:
    if path.is_dir():
        raise StateError(f"the state path {path} is a directory, not a database file; "
                         f"set [bridge] state to a file path such as {path / 'bridge.sqlite3'}")


class _SqliteErrors:
    """SQLite's errors as StateError: one line saying what is wrong with the database and how to fix it.

    A class rather than a generator's context manager: every State method enters one (50,000 in a cold poll),
    and a State keeps one for all of them."""

    __slots__ = ("path",)

    def __init__(self, path: Path | None) -> None:
        self.path = path

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind, exc, traceback) -> bool:
        if isinstance(exc, sqlite3.Error) and getattr(exc, "sqlite_errorcode", -1) & 0xFF in _UNUSABLE:
            raise StateError(_describe_sqlite_error(self.path, exc)) from None
        return False  # no error, or a constraint, a busy timeout...: the caller's business, not a broken database


# SQLite's primary result codes that say the database itself cannot be used as it is.
_UNUSABLE = {sqlite3.SQLITE_FULL, sqlite3.SQLITE_READONLY, sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_PERM,
             sqlite3.SQLITE_NOTADB, sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_IOERR}


def broken_state_fix(where: Path | str) -> str:
    """What to do with a state file that is not SQLite or is damaged (bridge itself never touches it)."""
    return (f"bridge leaves it untouched: restore a backup, or move it aside (mv {where} {where}.broken) to start "
            f"afresh (`sqlite3 {where}.broken .recover` may save its contents)")


def _describe_sqlite_error(path: Path | None, exc: sqlite3.Error) -> str:
    where = str(path) if path else "the state database"
    code = getattr(exc, "sqlite_errorcode", -1) & 0xFF
    if code == sqlite3.SQLITE_FULL or (code == sqlite3.SQLITE_IOERR and _disk_full(path)):
        return (f"the disk holding {where} is full; the unfinished work was rolled back and nothing is lost — "
                f"free some space (df -h {Path(where).parent}) and run again")
    if code in (sqlite3.SQLITE_READONLY, sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_PERM):
        return (f"cannot write {where} ({exc}): the file or its directory is read-only — make "
                f"{Path(where).parent} and the files in it writable for this user (is it a read-only mount?)")
    if code == sqlite3.SQLITE_NOTADB:
        return f"{where} is not a bridge state database (SQLite: {exc}); {broken_state_fix(where)}"
    if code == sqlite3.SQLITE_CORRUPT:
        return f"{where} is damaged (SQLite: {exc}); {broken_state_fix(where)}"
    return f"cannot read or write {where} (SQLite: {exc}): a failing disk? check `df -h` and the kernel log (dmesg)"


def _fix_for(exc: OSError, path: Path) -> str:
    if exc.errno == errno.ENOSPC:
        return f"the disk is full: free some space (df -h {path.parent})"
    if exc.errno == errno.EROFS:
        return f"{path.parent} is on a read-only file system: remount it read-write, or set [bridge] state elsewhere"
    return f"make {path.parent} and {path.name} writable for this user, or set [bridge] state elsewhere"


def _disk_full(path: Path | None) -> bool:
    try:
        usage = os.statvfs(path.parent if path else ".")
    except OSError:
        return False
    return usage.f_bavail * usage.f_frsize < 64 * 1024  # less than SQLite needs for a WAL index


def _create_private(path: Path) -> None:
    """Create the database file 0600 before SQLite does (SQLite would honour the umask)."""
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        os.close(fd)
    except FileExistsError:
        pass
    except OSError as exc:
        raise StateError(f"cannot create the state database {path}: {exc.strerror}; {_fix_for(exc, path)}") from None
    try:
        if path.stat().st_mode & 0o077:
            os.chmod(path, 0o600)
    except OSError:
        pass


def _take_lock(path: Path) -> int:
    """The writer lock: flock on the database file itself, so that deleting a file cannot lift it.

    On Linux flock and the fcntl record locks SQLite uses do not interact, so this lock and SQLite's own
    never meet. The fd stays open for the writer's life: closing it earlier would also drop SQLite's fcntl
    locks on the same file in this process. `<db>.lock` only names the holder's pid for the message.
    """
    try:
        fd = os.open(path, os.O_RDWR)
    except OSError as exc:
        raise StateError(f"cannot open the state database {path} for writing: {exc.strerror}; {_fix_for(exc, path)}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        holder = ""
        with contextlib.suppress(OSError, UnicodeDecodeError):
            holder = Path(f"{path}.lock").read_text().strip()
        who = f" (process {holder})" if holder.isdigit() else ""
        raise StateLockedError(
            f"another bridge process{who} is writing to {path}; only one may run at a time. "
            "Stop it first (systemctl stop bridge), or use `bridge status` / `--dry-run`, which can run alongside."
        ) from None
    with contextlib.suppress(OSError):  # a note for the message above; the lock does not depend on it
        note = os.open(f"{path}.lock", os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
        try:
            os.write(note, str(os.getpid()).encode())
        finally:
            os.close(note)
    return fd


def _feed_row(row: sqlite3.Row) -> FeedRow:
    data = dict(row)
    data["baseline_done"] = bool(data["baseline_done"])
    data["gone"] = bool(data["gone"])
    # A cycle holds every feed's row: the same text once, not once per row (100,000 rows: 15 MB less)
    if data["url"] == data["configured_url"]:
        data["url"] = data["configured_url"]
    if data["last_outcome"] is not None:
        data["last_outcome"] = sys.intern(data["last_outcome"])
    return FeedRow(**data)

