"""The contract every publishing target passes (issue 16), each case run against every row of the table in
targets.py -- the real PDS, the Mastodon fake as each server it can be, the real Takahē: a post is made and reads
back; a lost answer, a 5xx, a rate limit, a refused credential and a crash at each crash point all end with the
post made exactly once; a post the server refuses fails with the server's words and the others go on.

bridge is driven as a writer drives it: a config file and `bridge poll` (in this process, or a process of its own
where it has to die at a crash point).
"""

from __future__ import annotations

import contextlib
import json
import logging
import signal
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from bridge.cli import cli
from bridge.state import State
from tests.bluesky_helpers import jpeg
from tests.contract.targets import (ANSWER_LOST, CONNECTION_RESET, INVALID, RATE_LIMITED, RESET_SECONDS, TABLE, TRANSIENT,
                                    unique)
from tests.test_crash_matrix import run_poll
from tests.test_pipeline import posts, rss

ACCOUNT = "target"
CREDENTIAL_ENV = "BRIDGE_CONTRACT_CREDENTIAL"
SETTLE_SECONDS = 15.0  # a retry comes after retry_delay (1 s, jittered), a rate limit's reset after RESET_SECONDS
BACKOFF_SECONDS = 1  # retry_delay where a rate limit states no reset time: 1 s, then 2 s


@dataclass
class Poll:
    code: int
    stdout: str
    stderr: str


class World:
    """One account on a row's server, a feed of its own, a config and a state."""

    def __init__(self, tmp_path: Path, feed_server, target, server) -> None:
        self.target = target
        self.server = server
        self.feed_server = feed_server
        self.account = server.new_account()
        self.config = tmp_path / "config.toml"
        self.state_path = tmp_path / "state.sqlite3"
        self.feed_path = f"/{unique('feed')}.xml"
        # entries of their own: servers keep Idempotency-Keys for every account (Akkoma), other tests post too
        self.entries = posts(4, guid_prefix=unique("entry") + "-")
        for entry in self.entries:
            entry["link"] = feed_server.url(f"/{unique('post')}/")
            self.page(entry)
        self.write_config()

    def write_config(self, retry_delay: str = "1s") -> None:
        self.config.write_text(
            f'[bridge]\nstate = "{self.state_path}"\nallow_private_addresses = true\nretry_delay = "{retry_delay}"\n'
            f'[accounts.{ACCOUNT}]\n{self.account.config_section(CREDENTIAL_ENV)}'
            'posts_per_hour = 1000000\nposts_per_day = 1000000\n'  # no pacing: the cases are about the server
            f'[[feeds]]\nname = "blog"\nurl = "{self.feed_server.url(self.feed_path)}"\naccounts = ["{ACCOUNT}"]\n'
        )

    def page(self, entry: dict, image: str | None = None) -> None:
        meta = f'<meta property="og:image" content="{image}">' if image else ""
        self.feed_server.page(entry["link"].split(self.feed_server.base_url, 1)[1],
                              f'<html><head><title>{entry["title"]}</title><meta property="og:title" '
                              f'content="{entry["title"]}">{meta}</head><body>An article.</body></html>')

    def start(self) -> None:
        """The first poll learns the feed (its oldest entry) and posts nothing."""
        self.publish(0)
        baseline = self.poll()
        assert baseline.code == 0, baseline.stderr
        assert self.account.posts() == []

    def publish(self, count: int) -> list[dict]:
        """The feed now has `count` new entries (oldest first in the answer)."""
        self.feed_server.route(self.feed_path, rss(self.entries[-1 - count:]))
        return list(reversed(self.entries[-1 - count:-1]))

    def poll(self, *args: str) -> Poll:
        """`bridge poll --feed blog`, in this process."""
        with logging_as_it_was():
            result = CliRunner().invoke(cli, ["--config", str(self.config), *(args or ("poll", "--feed", "blog"))],
                                        env={CREDENTIAL_ENV: self.account.credential, "BRIDGE_CONFIG": None},
                                        standalone_mode=False)
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception
        return Poll(result.return_value, result.stdout, result.stderr)

    def poll_until_settled(self) -> None:
        """Poll, as a timer would (often), until nothing is left to send; each pass sends only what is due."""
        deadline = time.monotonic() + SETTLE_SECONDS
        while any(row.state in ("pending", "sending", "unknown") for row in self.deliveries()):
            assert time.monotonic() < deadline, [(row.state, row.last_error) for row in self.deliveries()]
            self.poll()
            time.sleep(0.2)

    def deliveries(self) -> list:
        with State.open_readonly(self.state_path) as state:
            return state.deliveries(account=ACCOUNT)

    def account_state(self) -> dict:
        with State.open_readonly(self.state_path) as state:
            return state.account(ACCOUNT)

    def status(self) -> dict:
        shown = self.poll("status", "--json")
        return json.loads(shown.stdout)["accounts"][0]


@contextlib.contextmanager
def logging_as_it_was():
    """The CLI sets up logging for a process (handlers on the root logger, bridge's not propagating): in this one,
    the tests that come later must find it as it was."""
    loggers = [logging.getLogger(name) for name in ("", "bridge", "httpx", "httpcore", "apscheduler")]
    saved = [(logger, logger.handlers[:], logger.level, logger.propagate) for logger in loggers]
    try:
        yield
    finally:
        for logger, handlers, level, propagate in saved:
            logger.handlers[:], logger.level, logger.propagate = handlers, level, propagate


@pytest.fixture(params=TABLE, ids=[row.name for row in TABLE])
def world(request, tmp_path, feed_server):
    defect = request.param.defects.get(request.function.__name__)
    if defect:
        request.applymarker(pytest.mark.xfail(strict=True, reason=defect))
    server = request.getfixturevalue(request.param.fixture)
    server.reset()
    yield World(tmp_path, feed_server, request.param, server)
    server.reset()


def the_one_post_of(world: World, entry: dict):
    """The account has exactly one post, it carries the entry, and it is the one bridge recorded."""
    found = world.account.posts()
    assert len(found) == 1, found
    post = found[0]
    assert post.carries(entry["link"]), post
    assert entry["title"] in post.text, post
    posted = [row for row in world.deliveries() if row.entry_key == entry["guid"]]
    assert [(row.state, row.remote_id) for row in posted] == [("posted", post.remote_id)]
    return post


def test_a_new_entry_is_posted_and_reads_back(world):
    world.start()
    [entry] = world.publish(1)
    done = world.poll()
    assert done.code == 0, done.stderr
    the_one_post_of(world, entry)
    again = world.poll()  # nothing new, nothing due: nothing more
    assert again.code == 0, again.stderr
    the_one_post_of(world, entry)


def test_an_answer_lost_after_the_post_was_made_leaves_one_post(world):
    world.start()
    [entry] = world.publish(1)
    world.account.fail_next_post(ANSWER_LOST)
    world.poll()
    assert world.server.faults_pending() == 0  # the answer was lost
    world.poll_until_settled()
    the_one_post_of(world, entry)


@pytest.mark.parametrize("fault", [TRANSIENT, CONNECTION_RESET])
def test_a_transient_error_then_success_makes_one_post(world, fault):
    world.start()
    [entry] = world.publish(1)
    world.account.fail_next_post(fault)
    first = world.poll()
    assert world.server.faults_pending() == 0
    [row] = world.deliveries()
    assert row.state == "pending" and row.last_error, first.stderr
    assert world.account.posts() == []
    world.poll_until_settled()
    the_one_post_of(world, entry)
    assert len(world.account.post_attempts()) == 2


def test_rate_limited_waits_for_the_reset_or_backs_off_then_posts_once(world):
    if world.target.rate_limit_reset_stated:
        waits_for_the_reset(world)
    else:
        backs_off_by_retry_delay(world)


def waits_for_the_reset(world: World) -> None:
    """The server says when its limit resets: nothing is sent before that, then the post is made once."""
    world.write_config(retry_delay="1h")  # what bridge waits when a server says nothing: not what it waits here
    world.start()
    [entry] = world.publish(1)
    world.account.fail_next_post(RATE_LIMITED)
    world.poll()
    assert world.server.faults_pending() == 0
    [refused] = world.account.post_attempts()
    until = world.account_state()["deferred_until"]
    # the server's reset, a second or two ahead (plus bridge's margin for whole-second clocks)
    assert refused < until <= refused + RESET_SECONDS + 3
    assert world.account.posts() == []
    world.poll_until_settled()  # polls again at once, and again: nothing is sent before the reset
    the_one_post_of(world, entry)
    attempts = world.account.post_attempts()
    assert len(attempts) == 2 and attempts[1] >= until


def backs_off_by_retry_delay(world: World) -> None:
    """The server states no reset time (a Nostr relay): bridge waits retry_delay, twice as long when refused again,
    sends nothing in between however often it polls, then makes the post once."""
    world.write_config(retry_delay=f"{BACKOFF_SECONDS}s")
    world.start()
    [entry] = world.publish(1)
    world.account.fail_next_post(RATE_LIMITED)
    world.account.fail_next_post(RATE_LIMITED)  # refused twice in a row
    world.poll()
    assert world.server.faults_pending() == 1
    [refused] = world.account.post_attempts()
    until = world.account_state()["deferred_until"]
    assert refused < until <= refused + BACKOFF_SECONDS + 1  # retry_delay from when bridge read the refusal
    assert world.account.posts() == []
    world.poll_until_settled()  # polls every 0.2 s
    assert world.server.faults_pending() == 0
    the_one_post_of(world, entry)
    attempts = world.account.post_attempts()
    assert len(attempts) == 3, attempts  # not hammered: one try after each wait
    assert attempts[1] >= until and attempts[2] - attempts[1] >= 2 * BACKOFF_SECONDS


def test_a_refused_credential_pauses_the_account_and_keeps_the_post_for_after_the_fix(world):
    world.start()
    world.account.revoke()
    [entry] = world.publish(1)
    refused = world.poll()
    assert refused.code == 1
    assert f"account {ACCOUNT} is paused" in refused.stderr
    status = world.status()
    assert status["paused"] and status["queued"] == 1
    assert world.account.posts() == []
    world.account.restore()  # the writer puts a new token / app password where the config points
    fixed = world.poll()
    assert fixed.code == 0, fixed.stderr
    assert world.poll().code == 0
    the_one_post_of(world, entry)
    status = world.status()
    assert (status["paused"], status["queued"], status["posted"]) == (None, 0, 1)


def test_a_post_refused_as_invalid_fails_with_the_servers_words_and_the_next_goes_on(world):
    world.start()
    entries = world.publish(2)
    world.account.fail_next_post(INVALID)  # whichever of the two is sent first
    done = world.poll()
    assert world.server.faults_pending() == 0
    assert done.code == 1  # a failure is worth a look
    rows = {row.entry_key: row for row in world.deliveries()}
    [failed] = [entry for entry in entries if rows[entry["guid"]].state == "failed"]
    assert world.account.invalid_message() in rows[failed["guid"]].last_error
    [other] = [entry for entry in entries if entry is not failed]
    the_one_post_of(world, other)


@pytest.mark.slow  # a crash matrix: a process of its own for each (row, point)
@pytest.mark.parametrize(("world", "point"), [(row, point) for row in TABLE for point in row.crash_points],
                         ids=[f"{row.name}-{point}" for row in TABLE for point in row.crash_points], indirect=["world"])
def test_killed_at_a_crash_point_then_run_again_posts_once(world, point):
    world.feed_server.image("/cover.jpg", jpeg(800, 420), content_type="image/jpeg")
    for entry in world.entries:  # a card image: uploaded or attached, so that mid-media-upload is passed
        world.page(entry, image="/cover.jpg")
    world.start()
    [entry] = world.publish(1)
    crashed = run_poll(world.config, {CREDENTIAL_ENV: world.account.credential, "BRIDGE_TEST_CRASH_AT": point})
    assert crashed.returncode == -signal.SIGKILL, f"expected a SIGKILL at {point}: {crashed.stderr}"
    again = world.poll()
    assert again.code == 0, again.stderr
    post = the_one_post_of(world, entry)
    if "mid-media-upload" in world.target.crash_points:  # a platform that uploads the image keeps it on the post,
        assert post.images == 1  # whether it was uploaded before the crash or again after it
