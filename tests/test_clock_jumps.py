"""The clock set back a day (or on a day): polling and posting go on within one interval, keeping their pace.

Stored times are absolute; a clock set back finds them a day ahead. Each is moved back with the clock when read,
so no feed, retry, deferral, pause or flood-control window waits for the clock to catch up.
"""

from __future__ import annotations

import importlib.util
from datetime import datetime, timezone
from pathlib import Path

import pytest

from bridge.errors import AuthError, RateLimited, TransientPublishError
from tests.fake_target import FakeTarget
from tests.test_daemon import feed_config, feed_polled, start_daemon, stop, wait_for
from tests.test_delivery import _config, _posted_keys, env  # noqa: F401  (the fixture)
from tests.test_pipeline import posts, rss, world  # noqa: F401  (the fixture)

DAY = 86400.0
INTERVAL = 600.0  # world.config's "10m"


def test_polling_goes_on_within_one_interval_after_the_clock_is_set_back_a_day(world):
    world.server.route("/feed", rss(posts(2)))
    config = world.config({"blog": "/feed"})
    assert world.poll(config).feeds[0].baseline == 2
    world.clock.now -= DAY
    world.server.route("/feed", rss(posts(1, start=2) + posts(2)))
    assert world.poll(config).feeds == []  # not due yet: the feed keeps its interval...
    row = world.state.get_feed("blog")
    assert row.next_poll_at <= world.clock.now + INTERVAL * 1.1  # ...counted from now, not from a day ahead
    world.clock.now += INTERVAL * 1.1 + 1
    [outcome] = world.poll(config).feeds
    assert outcome.new_entries == 1 and world.queued() == ["guid-2"]
    assert world.state.get_feed("blog").last_checked_at == world.clock.now


def test_a_failing_feed_keeps_its_backoff_length_when_the_clock_goes_back(world):
    world.server.error("/down", 503, retry_after="3000")
    config = world.config({"down": "/down"})
    world.poll(config)
    wait = world.state.get_feed("down").next_poll_at - world.clock.now
    assert wait >= 3000
    world.clock.now -= DAY
    world.poll(config)
    assert world.state.get_feed("down").next_poll_at == pytest.approx(world.clock.now + wait)


def test_polling_after_the_clock_is_set_on_a_day_happens_once_then_keeps_its_interval(world):
    world.server.route("/feed", rss(posts(2)))
    config = world.config({"blog": "/feed"})
    world.poll(config)
    world.clock.now += DAY
    assert len(world.poll(config).feeds) == 1
    assert world.poll(config).feeds == []
    assert world.state.get_feed("blog").next_poll_at <= world.clock.now + INTERVAL * 1.1


def test_flood_control_spacing_counts_from_now_after_the_clock_is_set_back(env):
    config = _config(per_hour=2, accounts=("a",))  # one post every 30 minutes
    env.queue(2, accounts=("a",))
    deliverer = env.deliverer(config)
    assert deliverer.deliver_due().posted == 1  # entry-001 waits 30 minutes
    env.clock.now -= DAY
    assert deliverer.deliver_due().accounts[0].waiting == 1
    env.clock.now += 1800 + 1
    deliverer.deliver_due()
    assert _posted_keys(env.state, "a") == ["entry-000", "entry-001"]


@pytest.mark.parametrize("failure, wait", [
    (TransientPublishError("HTTP 503"), 90.0),  # retry_delay 60 s, +-20% jitter
    (RateLimited("429", retry_at=datetime.fromtimestamp(1_800_000_000 + 900, timezone.utc)), 900.0),
    (AuthError("401 token invalid", "put a new token in TOKEN_A"), 3600.0),  # a pause is tried again after an hour
], ids=["retry backoff", "rate-limit deferral", "pause"])
def test_a_waiting_post_waits_its_own_length_not_a_day_after_the_clock_is_set_back(env, failure, wait):
    env.queue(1, accounts=("a",))
    env.targets["a"] = FakeTarget("a", failures=[failure])
    deliverer = env.deliverer(_config(accounts=("a",)))
    assert deliverer.deliver_due().posted == 0
    env.clock.now -= DAY
    deliverer.deliver_due()
    env.clock.now += wait + 1
    deliverer.deliver_due()
    assert _posted_keys(env.state, "a") == ["entry-000"]
    assert len(env.targets["a"].posts) == 1


def faketime_env(control: Path) -> dict[str, str]:
    """The daemon's wall clock set from a file, through libfaketime (LD_PRELOAD; its monotonic clock stays real)."""
    spec = importlib.util.find_spec("libfaketime")
    assert spec and spec.origin, "the test extra libfaketime is not installed: pip install -e '.[test]'"
    library = Path(spec.origin).parent / "vendor" / "libfaketime" / "src" / "libfaketime.so.1"
    assert library.is_file(), f"{library} is missing from the libfaketime package"
    control.write_text("+0\n")
    return {"LD_PRELOAD": str(library), "FAKETIME_TIMESTAMP_FILE": str(control), "FAKETIME_NO_CACHE": "1",
            "FAKETIME_DONT_FAKE_MONOTONIC": "1"}


def test_the_daemon_keeps_polling_when_the_clock_is_set_back_a_day_and_on_again(tmp_path, feed_server):
    feed_server.route("/feed", rss(posts(1)))
    config = feed_config(tmp_path, {"blog": feed_server.url("/feed")})  # polls every second
    control = tmp_path / "faketime"
    process = start_daemon(config, faketime_env(control))
    try:
        wait_for(lambda: feed_polled(tmp_path, "blog"), what="the first poll")
        for setting, direction in (("-1d", "back"), ("+0", "forward")):
            control.write_text(setting + "\n")
            polls = len(feed_server.requests_for("/feed"))
            wait_for(lambda: len(feed_server.requests_for("/feed")) >= polls + 3, timeout=20,
                     what=f"polls after the clock was set {direction} a day")
        code, err = stop(process)
    finally:
        if process.poll() is None:
            process.kill()
    assert code == 0, err
    assert "the clock was set back by 864" in err and "the clock was set forward by 864" in err
