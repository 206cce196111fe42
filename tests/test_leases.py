"""The leases that let several `bridge run` workers share one state (docs/workers.md), on both stores: due feeds
are claimed by one worker at a time and come back when released or when the lease runs out; an account's
delivery lock is held by one worker, and is free again the moment that worker dies."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading

import pytest

from tests.test_daemon import ROOT, wait_for

NOW = 1_800_000_000.0
LEASE = 300.0


def add_feeds(state, count: int, *, next_poll_at: float | None = None) -> list[str]:
    names = [f"feed{number:03d}" for number in range(count)]
    state.ensure_feeds([(name, f"http://blog.example.com/{name}.xml") for name in names])
    if next_poll_at is not None:
        for name in names:
            state.update_feed(name, next_poll_at=next_poll_at)
    return names


def test_a_due_feed_goes_to_one_worker_until_released_or_its_lease_runs_out(store):
    with store.open("shared") as state:
        names = add_feeds(state, 5, next_poll_at=NOW - 1)
        state.update_feed("feed003", next_poll_at=NOW + 600)  # not due
        state.update_feed("feed004", gone=1)  # 410: never polled again
        first = state.claim_due_feeds("w1", NOW, limit=2, lease_seconds=LEASE)
        rest = state.claim_due_feeds("w2", NOW, limit=10, lease_seconds=LEASE)
        assert len(first) == 2 and not set(first) & set(rest)
        assert sorted(first + rest) == names[:3]
        assert state.claim_due_feeds("w3", NOW + 10, limit=10, lease_seconds=LEASE) == []  # all held
        assert state.get_feed(first[0]).lease_owner == "w1"

        state.release_feeds(first, "w2")  # not w2's to release
        assert state.claim_due_feeds("w3", NOW + 10, limit=10, lease_seconds=LEASE) == []
        state.release_feeds(first, "w1")
        assert state.claim_due_feeds("w3", NOW + 10, limit=10, lease_seconds=LEASE) == first

        # w2 died holding its feeds: once its lease has run out they are anybody's
        assert state.claim_due_feeds("w4", NOW + LEASE - 1, limit=10, lease_seconds=LEASE) == []
        assert state.claim_due_feeds("w4", NOW + LEASE, limit=10, lease_seconds=LEASE) == sorted(rest)


def test_a_polls_record_releases_its_workers_lease_in_the_same_write(store):
    """One commit per poll: the record of a claimed feed's poll frees it, unless the lease ran out meanwhile and
    another worker holds it now."""
    with store.open("shared") as state:
        add_feeds(state, 2, next_poll_at=NOW - 1)
        assert state.claim_due_feeds("w1", NOW, limit=2, lease_seconds=LEASE) == ["feed000", "feed001"]
        state.update_feed("feed000", next_poll_at=NOW + 600, last_checked_at=NOW, release_lease_of="w1")
        feed = state.get_feed("feed000")
        assert (feed.lease_owner, feed.lease_until, feed.next_poll_at) == (None, None, NOW + 600)

        # w1's poll of feed001 outlived its lease; w2 took the feed over, and w1's record leaves w2's lease alone
        assert state.claim_due_feeds("w2", NOW + LEASE, limit=2, lease_seconds=LEASE) == ["feed001"]
        state.update_feed("feed001", next_poll_at=NOW + 600, release_lease_of="w1")
        assert state.get_feed("feed001").lease_owner == "w2"
        assert state.claim_due_feeds("w3", NOW + LEASE + 1, limit=2, lease_seconds=LEASE) == []


def test_a_pushed_feed_is_claimed_only_when_no_other_worker_holds_it(store):
    with store.open("shared") as state:
        add_feeds(state, 1, next_poll_at=NOW + 600)  # a push comes between polls: due or not, it is read
        assert state.claim_feed("feed000", "w1", NOW, lease_seconds=LEASE)
        assert not state.claim_feed("feed000", "w2", NOW, lease_seconds=LEASE)
        assert not state.claim_feed("feed000", "w1", NOW, lease_seconds=LEASE)  # polled already: the next poll reads it
        state.release_feeds(["feed000"], "w1")
        assert state.claim_feed("feed000", "w2", NOW, lease_seconds=LEASE)


def test_workers_claiming_at_once_never_get_the_same_feed(store):
    """Four workers, each with its own connection, claim from the same 400 due feeds at the same moment."""
    states = [store.open("shared") for _ in range(4)]
    try:
        names = add_feeds(states[0], 400)
        claimed: dict[str, list[str]] = {f"w{number}": [] for number in range(4)}
        start = threading.Barrier(4)

        def work(owner: str, state) -> None:
            start.wait()
            while batch := state.claim_due_feeds(owner, NOW, limit=7, lease_seconds=LEASE):
                claimed[owner].extend(batch)

        threads = [threading.Thread(target=work, args=(owner, state)) for owner, state in zip(claimed, states)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        everything = [name for batch in claimed.values() for name in batch]
        assert sorted(everything) == names  # each once: none lost, none twice
        if store.kind == "postgres":  # SQLite runs one writer at a time; PostgreSQL's claims interleave
            assert sum(1 for batch in claimed.values() if batch) >= 2, claimed
    finally:
        for state in states:
            state.close()


def test_an_account_changes_hands_when_another_worker_delivered_it_last(store):
    with store.open("shared") as state:
        assert state.account_changed_hands("masto", "w1")  # nobody had it: nothing kept in memory is trusted
        assert not state.account_changed_hands("masto", "w1")
        assert state.account_changed_hands("masto", "w2")
        assert state.account_changed_hands("masto", "w1")
        assert state.account("masto")["name"] == "masto"


def test_on_sqlite_the_one_writer_holds_every_lock(tmp_path):
    from bridge.state import State

    with State.open(tmp_path / "state.sqlite3") as state:
        assert not state.shared
        with state.try_lock("account:masto") as mine, state.try_lock("account:masto") as again:
            assert mine and again


HOLDER = """
import sys, time
from bridge.state import State
state = State.open_postgres(sys.argv[1])
with state.try_lock("account:masto") as mine:
    print("held" if mine else "refused", flush=True)
    time.sleep(600)
"""


def test_an_account_lock_is_one_workers_and_free_the_moment_that_worker_is_killed(postgres):
    from bridge.state import State

    url = postgres.new_database()
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, url], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with State.open_postgres(url) as state:
            assert state.shared
            with state.try_lock("account:masto") as mine:
                assert not mine
            with state.try_lock("account:sky") as other:  # another account's lock is its own
                assert other
            holder.send_signal(signal.SIGKILL)
            holder.wait(timeout=10)

            def free() -> bool:
                with state.try_lock("account:masto") as mine:
                    return mine

            # released by the server as the connection closed: no lease to run out (a lease would be minutes)
            wait_for(free, timeout=10, step=0.05, what="the dead worker's lock to be released")
            with state.try_lock("account:masto") as mine:  # released after each block: taken again and again
                assert mine
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()


@pytest.mark.parametrize("job", ["job:deletes", "account:masto"])
def test_a_lock_is_held_only_inside_its_block(postgres, job):
    from bridge.state import State

    url = postgres.new_database()
    with State.open_postgres(url) as first, State.open_postgres(url) as second:
        with first.try_lock(job) as mine:
            assert mine
            with second.try_lock(job) as theirs:
                assert not theirs
        with second.try_lock(job) as theirs:
            assert theirs


def queue_entry(state, number: int, accounts=("a", "b")) -> None:
    from datetime import datetime, timezone

    from bridge import ids
    from bridge.model import Entry

    state.ensure_feed("blog", "https://b.example/feed")
    key = f"entry-{number:03d}"
    with state.transaction():
        entry_id = state.add_entry("blog", Entry(key=key, link=f"https://b.example/{number}", title=f"Post {number}",
                                                 published=datetime.fromtimestamp(NOW, timezone.utc)),
                                   "new", "h", [f"b.example/{number}"], NOW)
        for account in accounts:
            state.add_delivery(entry_id, account, idempotency_key=ids.idempotency_key(account, "blog", key), rkey=None,
                               now=NOW)


def test_a_worker_leaves_an_account_another_is_delivering_and_forgets_one_another_delivered(postgres, monkeypatch):
    """Deliverer on a shared state: an account locked elsewhere waits for its holder; an account another worker
    delivered since gets a fresh target (a Bluesky session refreshed elsewhere is read from the state again)."""
    from bridge.delivery import Deliverer
    from bridge.state import State
    from tests.fake_target import FakeTarget
    from tests.test_delivery import _config

    monkeypatch.setenv("TOKEN_A", "token-a")
    monkeypatch.setenv("TOKEN_B", "token-b")
    url = postgres.new_database()
    made: list[str] = []

    def factory(account: str) -> FakeTarget:
        made.append(account)
        return FakeTarget(account)

    with State.open_postgres(url) as state, State.open_postgres(url) as other:
        deliverer = Deliverer(_config(per_hour=3600), state, target_factory=factory, clock=lambda: NOW,
                              payload_builder=lambda row, target: {"status": row.entry_key}, worker="w1")
        queue_entry(state, 0)
        with other.try_lock("account:a") as theirs:
            assert theirs
            report = deliverer.deliver_due()
        assert [(acct.account, len(acct.posted)) for acct in report.accounts] == [("b", 1)]
        assert [row.state for row in state.deliveries(account="a")] == ["pending"]  # its holder's to send

        report = deliverer.deliver_due()
        assert [(acct.account, len(acct.posted)) for acct in report.accounts] == [("a", 1), ("b", 0)]
        assert sorted(made) == ["a", "b"]

        queue_entry(state, 1)
        assert other.account_changed_hands("a", "w2")  # another worker delivered account a meanwhile
        deliverer.clock = lambda: NOW + 3600
        report = deliverer.deliver_due()
        assert sorted(made) == ["a", "a", "b"]  # a's target made again; b's kept
        assert {acct.account: len(acct.posted) for acct in report.accounts} == {"a": 1, "b": 1}
        deliverer.close()


def test_a_claim_among_100000_feeds_reads_indexes_not_the_whole_table(postgres):
    """Every worker claims every few seconds: a claim that scans and sorts the feeds table costs more the more feeds
    there are (30 ms at 100,000). Each of its branches must be an index range."""
    from bridge.state import State

    with State.open_postgres(postgres.new_database()) as state:
        state.db.execute("""INSERT INTO feeds (name, configured_url, url, next_poll_at, last_checked_at, gone)
                            SELECT 'feed' || n, 'u', 'u', ? + n, ? - 900, (n % 100 = 0)::int
                            FROM generate_series(1, 100000) AS n""", [NOW, NOW])
        state.db.execute("ANALYZE feeds")
        plan = json.dumps(state.db.execute(
            "EXPLAIN (FORMAT JSON) " + state._claim_sql(),
            ["w1", NOW + LEASE, NOW, 16, NOW, NOW, 16, NOW + 60, NOW, NOW, 16, 16],
        ).fetchone()[0])
        scans = [node["Node Type"] for node in _plan_nodes(json.loads(plan)[0]["Plan"]) if node.get("Relation Name") == "feeds"
                 and node["Node Type"] != "ModifyTable"]
        assert "Seq Scan" not in scans, plan  # (the one sort left is of the branches' few dozen rows)
        assert len(scans) == 4 and set(scans) <= {"Index Scan", "Index Only Scan"}, scans  # 3 branches + the update
        # and it still claims what is due, oldest first
        assert state.claim_due_feeds("w1", NOW + 5.5, limit=16, lease_seconds=LEASE) == [f"feed{n}" for n in range(1, 6)]


def _plan_nodes(node: dict):
    yield node
    for child in node.get("Plans", ()):
        yield from _plan_nodes(child)
