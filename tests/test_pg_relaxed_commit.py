"""An unchanged poll's record on PostgreSQL is committed without waiting for the WAL flush (State.update_feed,
durable=False), and only it: the setting ends with its own statement's transaction, and inside a caller's
transaction (entries, deliveries) nothing is relaxed."""

from __future__ import annotations

from bridge.state import State


def setting(state: State) -> str:
    return state.db.execute("SELECT current_setting('synchronous_commit')").fetchone()[0]


def test_a_relaxed_record_is_written_and_relaxes_nothing_after_it_nor_a_callers_transaction(postgres):
    state = State.open_postgres(postgres.new_database())
    state.db.execute("SET synchronous_commit = local")  # the session's own setting, distinct from the relaxed one
    state.ensure_feed("blog", "https://b.example/feed")

    state.update_feed("blog", durable=False, last_status=304, last_outcome="not-modified")
    assert state.get_feed("blog").last_outcome == "not-modified"
    assert setting(state) == "local"  # SET LOCAL ended with the record's own transaction

    with state.transaction():
        state.update_feed("blog", durable=False, last_outcome="unchanged")
        assert setting(state) == "local"  # a caller's transaction is committed as the server says, whole
    assert state.get_feed("blog").last_outcome == "unchanged"
    state.close()
