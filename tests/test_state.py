"""The state database: private file, migrations on open, one writer, dry runs that write nothing. The tests that
take `store` run on SQLite and on PostgreSQL (tests/postgres_fixture.py)."""

from __future__ import annotations

import errno
import os
import stat
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from bridge.errors import StateError
from bridge.model import Entry
from bridge.state import State, checkpointer
from bridge.state import store as store_module


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


def test_a_one_shot_polls_groups_wait_for_the_disk_once_at_the_end(tmp_path, monkeypatch):
    """`bridge poll` commits its feeds in groups: each group's commit leaves the disk to the operating system, and
    the end of the block waits for the WAL file once; every other transaction waits for the disk as always."""
    synced = []
    monkeypatch.setattr(store_module, "_sync_file", synced.append)
    path = tmp_path / "bridge.sqlite3"
    full, normal = 2, 1
    with State.open(path) as state:
        assert state.db.execute("PRAGMA synchronous").fetchone()[0] == full
        with state.group_commit():
            for number in range(3):
                with state.transaction():
                    state.ensure_feed(f"feed{number}", f"https://b.example/{number}")
                state.commit_group()
                assert state.db.execute("PRAGMA synchronous").fetchone()[0] == normal
            assert synced == []
        assert synced == [tmp_path / "bridge.sqlite3-wal"]
        assert state.db.execute("PRAGMA synchronous").fetchone()[0] == full
        with state.transaction():
            state.ensure_feed("after", "https://b.example/after")
    with State.open(path) as state:
        assert sorted(row.name for row in state.list_feeds()) == ["after", "feed0", "feed1", "feed2"]


def test_a_one_shot_polls_wal_is_copied_into_the_database_by_a_thread_meanwhile(tmp_path, monkeypatch):
    """The writer's own automatic checkpoints are off during the groups (a checkpoint after a commit held up the
    poll's event loop): a thread copies the WAL into the database file while the groups go on."""
    monkeypatch.setattr(checkpointer, "INTERVAL_SECONDS", 0.05)
    path = tmp_path / "bridge.sqlite3"
    with State.open(path) as state:
        state.ensure_feed("blog", "https://b.example/feed")
        before = path.stat().st_size
        with state.group_commit():
            assert state.db.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0
            for number in range(3000):  # about 3 MB: well past what fits in the empty database's pages
                with state.transaction():
                    state.add_entry("blog", Entry(key=f"k{number}", link=f"https://b.example/{number}", title="x" * 800),
                                    "baseline", "h", [f"b.example/{number}"], 1.0)
                if number % 500 == 499:
                    state.commit_group()
            deadline = time.monotonic() + 30
            while path.stat().st_size <= before + 1_000_000 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert path.stat().st_size > before + 1_000_000, "the WAL was not copied while the group went on"
        assert state.db.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 1000
        assert [thread for thread in threading.enumerate() if thread.name == "bridge-checkpointer"] == []
    with State.open(path) as state:
        assert state.count_entries("blog") == 3000


def test_the_wal_starts_over_during_a_long_one_shot_poll(tmp_path, monkeypatch):
    """The thread's checkpoints always run a group behind the writer, and SQLite starts the WAL over only at a
    write that began with every frame copied: without the writer's own checkpoint past WAL_RESTART_FRAMES, a first
    poll's WAL would grow as large as everything it wrote (a gigabyte for 10,000 feeds)."""
    monkeypatch.setattr(checkpointer, "INTERVAL_SECONDS", 0.02)
    monkeypatch.setattr(store_module, "WAL_RESTART_FRAMES", 250)  # about 1 MB
    path = tmp_path / "bridge.sqlite3"
    wal = tmp_path / "bridge.sqlite3-wal"
    largest = 0
    with State.open(path) as state:
        state.ensure_feed("blog", "https://b.example/feed")
        with state.group_commit():
            for group in range(30):  # about 0.5 MB each: 15 MB in all
                for number in range(500):
                    with state.transaction():
                        key = f"k{group}-{number}"
                        state.add_entry("blog", Entry(key=key, link=f"https://b.example/{key}", title="x" * 800),
                                        "baseline", "h", [f"b.example/{key}"], 1.0)
                state.commit_group()
                state.count_entries("blog")  # as a poll does, the next group reads at once: before the thread copies
                time.sleep(0.1)  # the thread's turn
                largest = max(largest, wal.stat().st_size)
        assert state.count_entries("blog") == 15000
    assert largest < 5_000_000, f"the WAL grew to {largest} bytes"


def test_a_group_that_fails_still_restores_full_durability(tmp_path, monkeypatch):
    monkeypatch.setattr(store_module, "_sync_file", lambda path: None)
    with State.open(tmp_path / "bridge.sqlite3") as state:
        try:
            with state.group_commit():
                raise KeyboardInterrupt
        except KeyboardInterrupt:
            pass
        assert state.db.execute("PRAGMA synchronous").fetchone()[0] == 2


def test_a_disk_that_fills_as_the_polls_groups_reach_it_is_reported_with_the_fix(tmp_path, monkeypatch):
    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    path = tmp_path / "bridge.sqlite3"
    with State.open(path) as state:
        monkeypatch.setattr(os, "fsync", full)
        with pytest.raises(StateError) as caught:
            with state.group_commit():
                state.ensure_feed("blog", "https://b.example/feed")
        assert "bridge.sqlite3-wal" in str(caught.value) and "the disk is full: free some space" in str(caught.value)
        monkeypatch.undo()
        assert [row.name for row in state.list_feeds()] == ["blog"]  # committed: only the wait for the disk failed


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


def test_every_query_gives_the_same_answers_on_both_stores(store):
    """The queries not met by the engine-level tests above, each once, with what a user would see of them."""
    with store.open() as state:
        state.ensure_feed("blog", "https://b.example/feed")
        state.update_feed("blog", baseline_done=True, last_checked_at=5000.0, next_poll_at=5100.0, last_error="boom")
        assert state.rewind_feed_if_ahead(state.get_feed("blog"), now=1000.0).next_poll_at == 1100.0
        state.update_websub("blog", hub="https://hub.example", status="active", lease_expires_at=9e9)
        assert state.websub("blog").pushing(now=1.0) and [row.feed for row in state.websub_rows()] == ["blog"]
        state.delete_websub("blog")
        with state.transaction():
            first = state.add_entry("blog", Entry(key="k1", link="https://b.example/1", title="One"), "new", "h1",
                                    ["b.example/1"], 10.0)
            second = state.add_entry("blog", Entry(key="k2", link="https://b.example/2", title="Two"), "new", "h2",
                                     ["b.example/2"], 20.0)
        assert state.entry_id_by_aliases("blog", ["b.example/2"]) == second
        assert state.known_entries("blog", ["k1", "nope"]) == {"k1": (first, "h1")}
        state.rekey_entry(second, "k2b")
        assert state.entry_id_by_key("blog", "k2b") == second and state.newest_link("blog") == "https://b.example/2"
        posted = state.add_delivery(first, "masto", idempotency_key="i1", rkey=None, now=10.0)
        state.mark_sending(posted, now=11.0)
        state.mark_posted(posted, "r1", "https://m.example/1", now=12.0)
        assert state.add_filtered(second, "masto", "a filter", idempotency_key="i2", now=13.0) is not None
        queued = state.add_delivery(second, "sky", idempotency_key="i3", rkey="tid", now=14.0)
        state.mark_unsent(queued, "rate limited", next_attempt_at=99.0, first_sent_at=None)
        assert state.get_delivery(queued).attempts == 0
        assert state.delivery_counts() == {("masto", "posted"): 1, ("masto", "filtered"): 1, ("sky", "pending"): 1}
        assert state.pending_count_by_feed() == {"blog": 1}
        [recent] = state.recent_posts("masto", limit=5)
        assert (recent.title, recent.delivery.remote_id) == ("One", "r1")
        assert state.posted_times_since("masto", 0.0) == [12.0]
        # deletes that follow the blog
        assert state.posted_entries_since("blog", 0.0, ["masto"]) == {"k1": first}
        state.watch_vanished([first], now=30.0)
        state.update_vanished(first, 31.0, gone_checks=1, note="404 once")
        [watched] = state.vanished(states=("checking",), due_by=40.0)
        assert (watched["key"], watched["title"], watched["gone_checks"]) == ("k1", "One", 1)
        assert state.forget_reappeared("blog", ["k1"]) == 1
        # the way back
        state.save_reactions(posted, root_url="https://m.example/1", counts={"likes": 3, "reposts": 1, "quotes": 0},
                             hidden_ids=[], replies=[{"remote_id": "x", "url": "https://m.example/x",
                                                      "author": {"handle": "@a@m.example"}}], now=50.0,
                             next_refresh_at=60.0)
        state.reactions_failed(posted, "timeout", next_refresh_at=70.0, now=65.0)
        assert state.reaction_error_count(posted) == 1
        assert state.reaction_totals() == {"masto": {"posts": 1, "likes": 3, "reposts": 1, "quotes": 0, "replies": 1}}
        assert state.set_reply_hidden("https://m.example/x", True, now=66.0)
        assert not state.set_reply_hidden("https://m.example/x", True, now=67.0)
        assert state.hidden_reply_urls() == {"https://m.example/x"} and state.find_reply("https://m.example/x")
        assert [row.id for row in state.due_reaction_deliveries("masto", 100.0, posted_since=0.0, first_before=100.0,
                                                                limit=5)] == [posted]
        state.reactions_gone(posted, "deleted", now=80.0)
        assert state.reaction_threads()[0]["gone"] == 1
        state.mark_deleted(posted, now=90.0)
        assert state.syndicated_deliveries() == []
        # Nostr and Threads
        state.save_nostr_events(queued, "hash", [{"id": "e1"}], {}, now=1.0)
        state.save_nostr_events(queued, "hash2", [{"id": "e2"}], {}, now=2.0)
        state.save_nostr_relays(queued, {"wss://r.example": {"e2": {"ok": True, "message": ""}}}, now=3.0)
        assert state.nostr_events(queued)["payload_hash"] == "hash2"
        state.save_threads_container(queued, "c1", now=4.0)
        assert state.threads_container(queued)["container_id"] == "c1"
        # accounts: pauses, deferrals, sessions, limits; and a clock that went back
        state.pause_account("sky", "bad password", now=5000.0, fingerprint="f")
        state.defer_account("sky", until=5600.0, now=5000.0)
        state.save_session("sky", "session", now=5000.0)
        state.save_limits("masto", {"characters": 500}, now=1.0)
        state.save_platform_status("masto", {"relays": 1})
        state.rewind_account_if_ahead("sky", now=1000.0)
        sky = state.account("sky")
        assert (sky["paused_at"], sky["deferred_until"], sky["session"]) == (1000.0, 1600.0, "session")
        assert state.account("masto")["limits"] == {"characters": 500}
        assert state.requeue_failed(account=None, entry_key=None, now=1.0) == 0
        assert state.cancel_pending(account="sky") == 1
        # alerts
        state.save_alert("feed:blog", "feed", "failing", first_seen_at=1.0, opened_at=2.0)
        state.mark_alerts_told(["feed:blog"], now=3.0)
        state.clear_alert("feed:blog", now=4.0)
        assert [(row.key, row.cleared_at) for row in state.alert_rows()] == [("feed:blog", 4.0)]
        state.set_alert_meta("last_digest_at", 5.0)
        state.set_alert_meta("last_digest_at", 6.0)
        assert state.alert_meta("last_digest_at") == 6.0
