"""The delivery engine against an in-memory target: ordering, flood control, errors, pauses, recovery."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from bridge import ids
from bridge.config import parse_config
from bridge.delivery import Deliverer
from bridge.errors import AuthError, PermanentPublishError, RateLimited, TooLong, TransientPublishError
from bridge.model import Entry
from tests.fake_target import FakeTarget


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _config(per_hour=100, per_day=1000, max_attempts=5, accounts=("a", "b")):
    return parse_config(
        {
            "accounts": {
                name: {"type": "mastodon", "instance": "https://m.example", "access_token": {"env": f"TOKEN_{name.upper()}"},
                       "posts_per_hour": per_hour, "posts_per_day": per_day, "max_attempts": max_attempts}
                for name in accounts
            },
            "feeds": [{"name": "blog", "url": "https://b.example/feed", "accounts": list(accounts)}],
        }
    )


@pytest.fixture
def env(store, monkeypatch):
    """The delivery engine over a state on SQLite, then on PostgreSQL (the `store` fixture)."""
    monkeypatch.setenv("TOKEN_A", "token-a")
    monkeypatch.setenv("TOKEN_B", "token-b")

    class Env:
        clock = Clock()
        state = store.open()
        targets: dict[str, FakeTarget] = {}

        def queue(self, count: int, accounts=("a", "b")) -> list[int]:
            self.state.ensure_feed("blog", "https://b.example/feed")
            entry_ids = []
            with self.state.transaction():
                for number in range(count):
                    key = f"entry-{number:03d}"
                    entry = Entry(key=key, link=f"https://b.example/{number}", title=f"Post {number}",
                                  published=datetime.fromtimestamp(self.clock.now, timezone.utc))
                    entry_id = self.state.add_entry("blog", entry, "new", "h", [f"b.example/{number}"], self.clock.now)
                    for account in accounts:
                        self.state.add_delivery(entry_id, account, idempotency_key=ids.idempotency_key(account, "blog", key),
                                                rkey=None, now=self.clock.now)
                    entry_ids.append(entry_id)
            return entry_ids

        def deliverer(self, config) -> Deliverer:
            def factory(account):
                return self.targets.setdefault(account, FakeTarget(account))

            def payload(row, target):
                return {"status": f"{row.entry_key} {row.link}"}

            return Deliverer(config, self.state, target_factory=factory, payload_builder=payload, clock=self.clock)

    yield Env()
    Env.state.close()


def drain(env, deliverer, passes=20, step=60.0):
    """Run delivery passes with the clock moving on, as the daemon would."""
    for _ in range(passes):
        deliverer.deliver_due()
        env.clock.now += step


def _posted_keys(state, account):
    return [row.entry_key for row in state.deliveries(account=account, state="posted")]


def test_posts_each_entry_once_per_account_oldest_first(env):
    env.queue(3)
    deliverer = env.deliverer(_config())
    report = deliverer.deliver_due()
    assert report.posted == 2  # one per account; the next waits 3600/posts_per_hour seconds
    drain(env, deliverer)
    assert _posted_keys(env.state, "a") == ["entry-000", "entry-001", "entry-002"]
    assert deliverer.deliver_due().posted == 0  # nothing twice
    assert len(env.targets["a"].posts) == 3


def test_flood_control_paces_posts_and_keeps_order(env):
    env.queue(50, accounts=("a",))
    config = _config(per_hour=6, per_day=20, accounts=("a",))
    deliverer = env.deliverer(config)
    deliverer.deliver_due()
    assert len(_posted_keys(env.state, "a")) == 1  # spacing: one post, then one every 10 minutes
    for _ in range(6 * 24 * 3):  # three days in 10-minute steps
        env.clock.now += 600
        deliverer.deliver_due()
        posted_times = [row.posted_at for row in env.state.deliveries(account="a", state="posted")]
        window = [t for t in posted_times if t > env.clock.now - 3600]
        assert len(window) <= 6
        assert len([t for t in posted_times if t > env.clock.now - 86400]) <= 20
    keys = _posted_keys(env.state, "a")
    assert keys == sorted(keys) and len(keys) == 50


def test_a_flood_held_account_reports_when_its_next_post_may_go(env):
    """The daemon waits for that moment before the next pass, instead of a pass per poll that queued a post."""
    env.queue(20, accounts=("a",))
    deliverer = env.deliverer(_config(per_hour=6, accounts=("a",)))
    [report] = deliverer.deliver_due().accounts
    assert (len(report.posted), report.waiting) == (1, 19)
    assert report.next_slot == deliverer.next_allowed_at("a") > env.clock.now
    env.clock.now = report.next_slot
    [report] = deliverer.deliver_due().accounts
    assert (len(report.posted), report.waiting) == (1, 18)
    env.state.cancel_pending(account="a")
    assert deliverer.deliver_due().accounts[0].next_slot is None  # nothing waits


def test_permanent_error_fails_that_post_only(env):
    env.queue(2)
    env.targets["a"] = FakeTarget("a", failures=[PermanentPublishError("422 text too long")])
    deliverer = env.deliverer(_config())
    report = deliverer.deliver_due()
    assert report.failed == 1
    drain(env, deliverer)
    failed = env.state.deliveries(account="a", state="failed")
    assert [row.entry_key for row in failed] == ["entry-000"]
    assert "422" in failed[0].last_error
    assert _posted_keys(env.state, "a") == ["entry-001"]
    assert _posted_keys(env.state, "b") == ["entry-000", "entry-001"]


def test_transient_errors_back_off_then_post_once(env):
    env.queue(1)
    env.targets["a"] = FakeTarget("a", failures=[TransientPublishError("HTTP 503"), TransientPublishError("timeout")])
    deliverer = env.deliverer(_config())
    deliverer.deliver_due()
    row = env.state.deliveries(account="a")[0]
    assert row.state == "pending" and row.next_attempt_at > env.clock.now and row.attempts == 1
    deliverer.deliver_due()
    assert env.state.deliveries(account="a")[0].state == "pending"  # not due yet
    for _ in range(10):
        env.clock.now += 600
        deliverer.deliver_due()
    row = env.state.deliveries(account="a")[0]
    assert row.state == "posted" and row.attempts == 3
    assert len(env.targets["a"].posts) == 1


def test_gives_up_after_max_attempts_and_retry_requeues(env):
    env.queue(1, accounts=("a",))
    env.targets["a"] = FakeTarget("a", failures=[TransientPublishError("HTTP 500")] * 3)
    deliverer = env.deliverer(_config(max_attempts=3, accounts=("a",)))
    for _ in range(10):
        deliverer.deliver_due()
        env.clock.now += 7 * 3600
    row = env.state.deliveries(account="a")[0]
    assert row.state == "failed" and "3 attempts" in row.last_error
    assert env.state.requeue_failed(account="a", entry_key=None, now=env.clock.now) == 1
    deliverer.deliver_due()
    assert env.state.deliveries(account="a")[0].state == "posted"


def test_rate_limit_defers_the_account_until_reset(env):
    env.queue(2)
    reset = datetime.fromtimestamp(env.clock.now + 900, timezone.utc)
    env.targets["a"] = FakeTarget("a", failures=[RateLimited("429", retry_at=reset)])
    deliverer = env.deliverer(_config())
    report = deliverer.deliver_due()
    assert report.accounts[0].deferred_until == reset.timestamp()
    assert _posted_keys(env.state, "a") == []
    drain(env, deliverer, passes=10)  # 600 s: still before the reset
    assert _posted_keys(env.state, "a") == []
    assert _posted_keys(env.state, "b") == ["entry-000", "entry-001"]
    env.clock.now += 301
    drain(env, deliverer)
    assert _posted_keys(env.state, "a") == ["entry-000", "entry-001"]
    assert env.state.deliveries(account="a")[0].attempts == 1  # the rate-limited try does not count


def test_a_rate_limit_without_a_reset_time_waits_retry_delay_doubling_then_posts_once(env):
    # A Nostr relay's `rate-limited:` states no reset: retry_delay (60 s by default), then twice the last wait
    env.queue(1, accounts=("a",))
    env.targets["a"] = FakeTarget("a", failures=[RateLimited("rate-limited: slow down")] * 3)
    deliverer = env.deliverer(_config(accounts=("a",)))
    waits, asked = [], []
    for _ in range(4):
        start, calls = env.clock.now, env.targets["a"].calls
        report = deliverer.deliver_due().accounts[0]
        if report.deferred_until is None:
            break
        waits.append(report.deferred_until - start)
        while env.clock.now < report.deferred_until:  # polled often meanwhile: nothing is sent before the wait ends
            deliverer.deliver_due()
            env.clock.now += 10
        asked.append(env.targets["a"].calls - calls)
    assert waits == [60, 120, 240] and asked == [1, 1, 1]
    assert _posted_keys(env.state, "a") == ["entry-000"] and env.targets["a"].calls == 4
    assert env.state.deliveries(account="a")[0].attempts == 1  # the rate-limited tries do not count


def test_auth_error_pauses_the_account_until_the_credential_changes(env, monkeypatch):
    env.queue(1)
    env.targets["a"] = FakeTarget("a", failures=[AuthError("401 token invalid", "put a new token in TOKEN_A")])
    deliverer = env.deliverer(_config())
    report = deliverer.deliver_due()
    assert "TOKEN_A" in report.accounts[0].paused
    assert env.state.account("a")["paused_reason"]
    assert env.state.deliveries(account="a")[0].state == "pending"
    assert _posted_keys(env.state, "b") == ["entry-000"]
    env.clock.now += 60
    assert deliverer.deliver_due().accounts[0].paused  # same credential: still paused
    monkeypatch.setenv("TOKEN_A", "a-new-token")
    deliverer.deliver_due()
    assert _posted_keys(env.state, "a") == ["entry-000"]
    assert env.state.account("a")["paused_reason"] is None


def test_interrupted_send_is_resolved_by_asking_the_target(env):
    env.queue(1, accounts=("a",))
    target = env.targets["a"] = FakeTarget("a", lose_answer=True)
    deliverer = env.deliverer(_config(accounts=("a",)))
    deliverer.deliver_due()  # the post was made but the answer was lost
    row = env.state.deliveries(account="a")[0]
    assert row.state == "pending"
    # a crash would leave the row in 'sending'; the next pass asks the target first
    env.state.mark_sending(row.id, env.clock.now)
    env.clock.now += 3600
    deliverer.deliver_due()
    assert env.state.deliveries(account="a")[0].state == "posted"
    assert len(target.posts) == 1 and target.calls == 1


def test_a_post_refused_as_too_long_is_rendered_once_more_strictly_then_given_up_with_the_servers_words(env):
    env.queue(2, accounts=("a",))

    class Strict(FakeTarget):
        """A server that refuses every post rendered the lenient way."""

        def publish(self, delivery, payload):
            if payload["status"].endswith("long"):
                self.calls += 1
                raise TooLong("HTTP 422: Text character limit of 500 exceeded")
            return super().publish(delivery, payload)

    target = Strict("a")
    rendered = []

    def payload(row, target, strict=False):
        rendered.append((row.entry_key, strict))
        if strict and row.entry_key == "entry-001":
            raise PermanentPublishError("the link alone exceeds the limit")
        return {"status": f"{row.entry_key} {'short' if strict else 'long'}"}

    deliverer = Deliverer(_config(accounts=("a",)), env.state, target_factory=lambda account: target,
                          payload_builder=payload, clock=env.clock)
    drain(env, deliverer)
    first, second = env.state.deliveries(account="a")
    assert first.state == "posted" and list(target.posts.values()) == [{"status": "entry-000 short"}]
    assert first.payload == {"status": "entry-000 short"}  # the strict render is what was stored and sent
    # the second cannot be made shorter: failed, keeping the server's message
    assert second.state == "failed" and second.first_sent_at is None  # refused: nothing to look for later
    assert "Text character limit of 500 exceeded; rendering it again failed" in second.last_error
    assert rendered == [("entry-000", False), ("entry-000", True), ("entry-001", False), ("entry-001", True)]
    assert target.calls == 3
