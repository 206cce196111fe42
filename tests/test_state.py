"""The state database: private file, migrations on open, one writer, dry runs that write nothing. The tests that
take `store` run on SQLite and on PostgreSQL (tests/postgres_fixture.py)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import textwrap


from bridge.model import Entry
from bridge.state import State


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_database_and_lock_are_private_and_migrated(tmp_path):
    path = tmp_path / "sub" / "bridge.sqlite3"
    old_umask = os.umask(0o022)
    try:
        with State.open(path) as state:
            assert state.applied_migrations()[:3] == ["0001_initial", "0002_repair_earlier_schemas", "0003_account_deferred_at"]
            assert state.pending_migrations() == []
            assert state.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        os.umask(old_umask)
    assert _mode(path) == 0o600
    assert _mode(f"{path}.lock") == 0o600
    for extra in (f"{path}-wal", f"{path}-shm"):
        if os.path.exists(extra):
            assert _mode(extra) == 0o600


def test_a_second_writer_process_is_refused_with_a_clear_message(tmp_path):
    path = tmp_path / "bridge.sqlite3"
    with State.open(path):
        code = textwrap.dedent(
            f"""
            from bridge.state import State
            from bridge.errors import StateLockedError
            try:
                State.open({str(path)!r})
            except StateLockedError as exc:
                print(exc)
                raise SystemExit(3)
            """
        )
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 3
    assert f"process {os.getpid()}" in result.stdout
    assert "bridge status" in result.stdout  # says what can run alongside
    # once the first writer is gone, the next one gets in
    with State.open(path):
        pass


def test_readers_and_dry_runs_run_alongside_the_writer_and_write_nothing(store):
    with store.open() as writer:
        writer.ensure_feed("blog", "https://b.example/feed")
        with writer.transaction():
            writer.add_entry("blog", Entry(key="k1", link="https://b.example/1"), "baseline", "h", ["b.example/1"], 1.0)
        with store.open("readonly") as reader:
            assert reader.count_entries("blog") == 1
        dry = store.open("dry_run")
        with dry.transaction():
            dry.add_entry("blog", Entry(key="k2", link="https://b.example/2"), "new", "h", ["b.example/2"], 2.0)
        with dry.group_commit():  # a one-shot poll's commits: still nothing written
            dry.ensure_feed("other", "https://o.example/feed")
            dry.commit_group()
        assert dry.count_entries("blog") == 2
        dry.close()
        assert writer.count_entries("blog") == 1
        assert [row.name for row in writer.list_feeds()] == ["blog"]


def test_readonly_on_a_missing_database_creates_nothing(tmp_path):
    path = tmp_path / "none.sqlite3"
    with State.open_readonly(path) as state:
        assert state.list_feeds() == []
    assert not path.exists()


def test_outbox_one_delivery_per_entry_and_account(store):
    with store.open() as state:
        state.ensure_feed("blog", "https://b.example/feed")
        with state.transaction():
            entry_id = state.add_entry("blog", Entry(key="k", link="https://b.example/p"), "new", "h", ["b.example/p"], 10.0)
            first = state.add_delivery(entry_id, "masto", idempotency_key="key-1", rkey=None, now=10.0)
            again = state.add_delivery(entry_id, "masto", idempotency_key="key-1", rkey=None, now=11.0)
        assert first is not None and again is None
        assert state.account_has_alias("masto", ["b.example/p"])
        assert not state.account_has_alias("other", ["b.example/p"])
        due = state.due_deliveries("masto", now=10.0)
        assert [row.entry_key for row in due] == ["k"]
        state.mark_sending(first, now=12.0)
        state.mark_posted(first, "remote-1", "https://m.example/@me/1", now=13.0)
        row = state.get_delivery(first)
        assert (row.state, row.attempts, row.remote_url) == ("posted", 1, "https://m.example/@me/1")
        assert state.due_deliveries("masto", now=100.0) == []


def test_due_deliveries_stuck_sends_first_then_oldest_due_within_the_limit(store):
    with store.open() as state:
        state.ensure_feed("blog", "https://b.example/feed")
        ids = {}
        with state.transaction():
            for number in range(6):
                entry_id = state.add_entry("blog", Entry(key=f"k{number}", link=f"https://b.example/{number}"), "new",
                                           "h", [f"b.example/{number}"], 10.0)
                not_before = 500.0 if number == 1 else None  # waiting for a retry: not due at 100
                ids[number] = state.add_delivery(entry_id, "masto", idempotency_key=f"key-{number}", rkey=None,
                                                 now=10.0 + number, not_before=not_before)
            other = state.add_entry("blog", Entry(key="x", link="https://b.example/x"), "new", "h", ["b.example/x"], 10.0)
            state.add_delivery(other, "someone-else", idempotency_key="key-x", rkey=None, now=1.0)
        state.mark_sending(ids[4], now=20.0)  # an attempt whose answer was lost: it goes before everything else
        state.mark_posted(ids[0], "r0", None, now=21.0)
        assert [row.entry_key for row in state.due_deliveries("masto", now=100.0)] == ["k4", "k2", "k3", "k5"]
        assert [row.entry_key for row in state.due_deliveries("masto", now=100.0, limit=2)] == ["k4", "k2"]
        assert [row.entry_key for row in state.due_deliveries("masto", now=600.0)] == ["k4", "k1", "k2", "k3", "k5"]
        row = state.due_deliveries("masto", now=100.0, limit=1)[0]
        assert (row.feed, row.link, row.state) == ("blog", "https://b.example/4", "sending")
