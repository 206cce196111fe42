"""A lost PostgreSQL connection, in one process against the real server: `bridge run`'s state connects again
(after failing what was under way, never finishing half a transaction on the new session), a one-shot command
stops with the fix, and a post is never sent under an account lock that went with its connection.

Each test ends only sessions of its own (pg_terminate_backend of a backend pid it holds), so the session's
shared cluster serves: the whole-cluster restart is tests/test_pg_recovery.py's, on a cluster of its own.
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone

import psycopg
import pytest

from bridge import ids
from bridge.config import parse_config
from bridge.delivery import Deliverer
from bridge.errors import StateConnectionLost, StateError
from bridge.model import Entry
from bridge.state import State
from bridge.state.locks import lock_key
from tests.fake_target import FakeTarget
from tests.test_daemon import wait_for


@pytest.fixture
def url(postgres) -> str:
    return postgres.new_database()


def end_session(url: str, backend_pid: int) -> None:
    """What a database restart or an administrator's pg_terminate_backend does to one session."""
    with psycopg.connect(url, autocommit=True) as admin:
        assert admin.execute("SELECT pg_terminate_backend(%s)", [backend_pid]).fetchone()[0]


def test_a_worker_connects_again_after_its_session_ends_saying_so_once(url, postgres, caplog):
    state = State.open_postgres(url)
    state.keep_reconnecting()
    state.ensure_feed("blog", "https://b.example/feed")
    caplog.set_level(logging.INFO, logger="bridge.state")
    end_session(url, state.db.raw.info.backend_pid)

    with pytest.raises(StateConnectionLost, match="reconnecting"):  # what was under way fails: its session is gone
        state.get_feed("blog")
    assert state.get_feed("blog") is not None  # the next call connects again
    assert state.get_feed("blog") is not None
    said = [record.getMessage() for record in caplog.records if record.levelno >= logging.WARNING]
    assert len([line for line in said if "PostgreSQL connection lost" in line]) == 1, said
    assert len([line for line in said if "PostgreSQL connection back" in line]) == 1, said
    assert "127.0.0.1" in said[0] and postgres.db_password not in "".join(said)
    state.close()


def test_a_one_shot_command_stops_with_the_fix_rather_than_connecting_again(url, postgres):
    state = State.open_postgres(url)  # bridge poll, status, retry: no keep_reconnecting()
    end_session(url, state.db.raw.info.backend_pid)
    for _ in range(2):
        with pytest.raises(StateError, match="check that the server is up, then run again") as error:
            state.list_feeds()
        assert postgres.db_password not in str(error.value) and "127.0.0.1" in str(error.value)
    state.close()


def test_a_transaction_cut_by_a_lost_connection_is_not_finished_on_the_next_session(url):
    state = State.open_postgres(url)
    state.keep_reconnecting()
    with pytest.raises(StateConnectionLost):
        with state.transaction():
            state.ensure_feed("first", "https://b.example/first")
            end_session(url, state.db.raw.info.backend_pid)
            state.ensure_feed("second", "https://b.example/second")  # must not run in autocommit on a new session
    assert [row.name for row in state.list_feeds()] == []  # neither: the server rolled the transaction back
    state.close()


def _queue_one(state: State, account: str) -> int:
    now = datetime.now(timezone.utc)
    state.ensure_feed("blog", "https://b.example/feed")
    with state.transaction():
        entry_id = state.add_entry("blog", Entry(key="entry-1", link="https://b.example/1", title="Post 1", published=now),
                                   "new", "h", ["b.example/1"], now.timestamp())
        return state.add_delivery(entry_id, account, idempotency_key=ids.idempotency_key(account, "blog", "entry-1"),
                                  rkey=None, now=now.timestamp())


def test_no_post_is_sent_under_an_account_lock_that_went_with_its_connection(url, monkeypatch):
    monkeypatch.setenv("TOKEN_A", "token-a")
    config = parse_config({"accounts": {"a": {"type": "mastodon", "instance": "https://m.example",
                                              "access_token": {"env": "TOKEN_A"}}},
                           "feeds": [{"name": "blog", "url": "https://b.example/feed", "accounts": ["a"]}]})
    state = State.open_postgres(url)
    state.keep_reconnecting()
    delivery_id = _queue_one(state, "a")
    target = FakeTarget("a")
    other_worker = psycopg.connect(url, autocommit=True)

    def payload(row, target):
        # Between taking the account's lock and sending, the lock's session ends, and another worker takes the lock.
        end_session(url, state._advisory._conn.info.backend_pid)
        wait_for(lambda: other_worker.execute("SELECT pg_try_advisory_lock(%s)", [lock_key("account:a")]).fetchone()[0],
                 what="the other worker to take the lock (the ended session's process exits a moment later)")
        return {"status": f"{row.entry_key} {row.link}"}

    deliverer = Deliverer(config, state, target_factory=lambda account: target, payload_builder=payload,
                          worker="this-worker")
    report = deliverer.deliver_due()
    assert target.calls == 0 and report.posted == 0  # nothing sent: the lock is the other worker's now
    assert state.get_delivery(delivery_id).state == "pending"  # left as it was, for whoever holds the account

    other_worker.close()  # the other worker goes: the next pass takes the lock again, on a new session, and posts
    deliverer.payload_builder = lambda row, target: {"status": f"{row.entry_key} {row.link}"}
    assert deliverer.deliver_due().posted == 1
    assert target.calls == 1 and state.get_delivery(delivery_id).state == "posted"
    state.close()
