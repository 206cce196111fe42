"""Two `bridge run` workers on one PostgreSQL ride out the database going away: the cluster restarted (stopped for
a while, new entries arriving meanwhile) and their sessions ended by pg_terminate_backend, each in the middle of
a delivery round on the Mastodon fake. The workers stay up, say once that the connection was lost and once that it
is back, post nothing while the database is away, and in the end every entry is on every account exactly once.

The cluster is this module's own (tests/postgres_fixture.py): restarting the session's would break the tests
running beside these.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import psycopg
import pytest

from tests.mastodon_fake import MastodonFakeProcess
from tests.postgres_fixture import start_postgres
from tests.test_daemon import ROOT, stop, wait_for
from tests.test_kill_soak import FAKE_LIMITS, count_once
from tests.test_pipeline import rss

WORKERS = 2
FEEDS = 10
ACCOUNTS = ["masto0", "masto1"]  # every feed goes to both
POSTS_PER_HOUR = 14400  # a post every 0.25 s per account: a round of 10 entries takes each account some 2.5 s
URL = re.compile(r"https?://[^\s<>\"]+")
LOST = "PostgreSQL connection lost"
BACK = "PostgreSQL connection back"
DOWN_SECONDS = 4.0  # how long the cluster stays stopped


@pytest.fixture(scope="module")
def own_postgres():
    """A cluster for this module alone: these tests stop and start it."""
    server = start_postgres()
    try:
        yield server
    finally:
        server.close()


class Blog:
    """The feeds, two workers sharing a database, and the fake's statuses of each account."""

    def __init__(self, tmp_path: Path, feed_server, fake, url: str) -> None:
        self.tmp_path, self.feed_server, self.fake, self.url = tmp_path, feed_server, fake, url
        self.documents: dict[int, list[dict]] = {feed: [] for feed in range(FEEDS)}
        self.expected: list[str] = []  # links every account must get once
        env = {"BRIDGE_TEST_DATABASE": url}
        accounts = ""
        for name in ACCOUNTS:
            env[f"BRIDGE_TEST_{name.upper()}"] = fake.add_account(name)
            accounts += (f'[accounts.{name}]\ntype = "mastodon"\ninstance = "{fake.url}"\n'
                         f'access_token = {{ env = "BRIDGE_TEST_{name.upper()}" }}\n'
                         f'posts_per_hour = {POSTS_PER_HOUR}\nposts_per_day = 100000\nmax_attempts = 100\n')
        self.env = env
        settings = ('[bridge]\ndatabase = { env = "BRIDGE_TEST_DATABASE" }\nallow_private_addresses = true\n'
                    'interval = "2s"\ndelivery_interval = "1s"\nretry_delay = "1s"\nmax_backoff = "2s"\n'
                    'max_post_age = "30d"\ntotal_timeout = "4s"\n')
        feeds = "".join(f'[[feeds]]\nname = "f{feed}"\nurl = "{feed_server.url(f"/f{feed}.xml")}"\n'
                        f'accounts = {ACCOUNTS!r}\n'.replace("'", '"') for feed in range(FEEDS))
        self.config = tmp_path / "config.toml"
        self.config.write_text(settings + accounts + feeds)
        self.processes: list[subprocess.Popen] = []

    def add_entry(self, feed: int, *, new: bool = True) -> None:
        number = len(self.documents[feed])
        path = f"/f{feed}/posts/{number}/"
        title = f"Entry {number} of feed {feed}"
        self.feed_server.page(path, f"<html><head><title>{title}</title></head><body>{title}</body></html>")
        self.documents[feed].insert(0, {"guid": f"f{feed}-{number}", "link": self.feed_server.url(path), "title": title,
                                        "date": datetime.now(timezone.utc)})
        self.feed_server.route(f"/f{feed}.xml", rss(self.documents[feed], title=f"Blog {feed}"))
        if new:
            self.expected.append(self.feed_server.url(path))

    def round(self) -> None:
        """A new entry in every feed."""
        for feed in range(FEEDS):
            self.add_entry(feed)

    def start(self, *, wait: bool = True) -> None:
        for feed in range(FEEDS):
            self.add_entry(feed, new=False)  # the archive: seen on first sight, never posted
        env = {**os.environ, **self.env}
        env.pop("BRIDGE_CONFIG", None)
        for slot in range(WORKERS):
            log = (self.tmp_path / f"worker{slot}.log").open("w")
            self.processes.append(subprocess.Popen([sys.executable, "-m", "bridge", "--config", str(self.config), "run"],
                                                   cwd=ROOT, env=env, stdout=log, stderr=log, text=True))
        if wait:
            self.wait_for_first_polls()

    def wait_for_first_polls(self) -> None:
        wait_for(lambda: self.query("SELECT count(*) FROM feeds WHERE baseline_done = 1")[0][0] == FEEDS,
                 timeout=30, step=0.2, what="the first poll of every feed")

    def query(self, sql: str) -> list[tuple]:
        with psycopg.connect(self.url, autocommit=True) as db:
            return db.execute(sql).fetchall()

    def posted(self) -> int:
        """Statuses on the fake, all accounts."""
        return sum(len(self.fake.statuses(name)) for name in ACCOUNTS)

    def all_posted(self) -> bool:
        return self.posted() >= len(self.expected) * len(ACCOUNTS) and self.query(
            "SELECT count(*) FROM deliveries WHERE state <> 'posted'")[0][0] == 0

    def alive(self) -> list[bool]:
        return [process.poll() is None for process in self.processes]

    def logs(self) -> list[str]:
        return [(self.tmp_path / f"worker{slot}.log").read_text() for slot in range(WORKERS)]

    def check(self, condition: bool, message: str) -> None:
        if not condition:
            tails = "".join(f"\n--- worker {slot}'s log, last lines:\n{text[-3000:]}" for slot, text in enumerate(self.logs()))
            raise AssertionError(message + tails)

    def finish(self) -> None:
        """Every entry delivered, the workers stopped by SIGTERM (exit 0), every account's posts exactly once."""
        try:
            wait_for(self.all_posted, timeout=40, step=0.5, what="every entry to be posted")
        except AssertionError:
            self.check(False, f"not everything was posted: {self.query('SELECT state, count(*) FROM deliveries GROUP BY state')}")
        for slot, process in enumerate(self.processes):
            code, _ = stop(process)
            self.check(code == 0, f"worker {slot} exited with {code} on SIGTERM")
        for name in ACCOUNTS:
            found = [link for status in self.fake.statuses(name) for link in URL.findall(status["text"])]
            self.check(count_once(self.expected, found) == (0, 0),
                       f"{name}: (duplicates, lost) = {count_once(self.expected, found)}")

    def close(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.kill()
                process.wait()


@pytest.fixture
def blog(tmp_path, feed_server, own_postgres):
    with MastodonFakeProcess(rate_limits=FAKE_LIMITS, card_fetch=False) as fake:
        running = Blog(tmp_path, feed_server, fake, own_postgres.new_database())
        try:
            yield running
        finally:
            running.close()


def mid_round(blog: Blog, before: int) -> None:
    """Wait until a round's delivery is under way: some of its posts made, most still to come."""
    wait_for(lambda: blog.posted() >= before + 4, timeout=30, step=0.05, what="the round's first posts")
    blog.check(blog.posted() < before + FEEDS * len(ACCOUNTS), "the round was over before the database went away")


def test_workers_ride_out_a_database_restart_posting_nothing_while_it_is_down_and_every_entry_once(blog, own_postgres):
    blog.start()
    blog.round()
    mid_round(blog, 0)

    own_postgres.stop_server()
    blog.round()  # new entries while the database is away: noticed only once it is back
    time.sleep(1.0)  # a post already on its way when the server stopped lands within this
    posted_while_down = blog.posted()
    time.sleep(DOWN_SECONDS - 1.0)
    blog.check(blog.posted() == posted_while_down, "posted while the database was down")
    blog.check(all(blog.alive()), f"a worker exited while the database was down: {blog.alive()}")
    own_postgres.start_server()

    blog.round()
    blog.finish()
    for slot, text in enumerate(blog.logs()):
        blog.check(text.count(LOST) == 1 and text.count(BACK) == 1,
                   f"worker {slot} did not say once that the connection was lost and once that it was back")
        blog.check("127.0.0.1" in text.split(LOST, 1)[1].splitlines()[0], f"worker {slot}'s warning names no host")
        blog.check(own_postgres.db_password not in text, f"worker {slot} logged the database password")
        blog.check("job failed" not in text, f"worker {slot} logged a job failure per tick instead of one warning")


def test_workers_ride_out_their_sessions_being_terminated_mid_round(blog, own_postgres):
    blog.start()
    before = 0
    for _ in range(2):
        blog.round()
        mid_round(blog, before)
        ended = 0
        for _ in range(3):  # every session of the workers, the state's and the locks' alike, several times a round
            ended += blog.query("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE "
                                "application_name LIKE 'bridge%' AND datname = current_database()")[0][0]
            time.sleep(0.5)  # a session is made again at its next use
        blog.check(ended >= WORKERS, f"only {ended} sessions of the workers to end")
        wait_for(blog.all_posted, timeout=40, step=0.5, what="the round to be posted")
        before = blog.posted()
    blog.check(all(blog.alive()), f"a worker exited: {blog.alive()}")
    blog.round()
    blog.finish()
    for slot, text in enumerate(blog.logs()):
        blog.check(LOST in text and BACK in text, f"worker {slot} did not log the reconnection")


def test_workers_started_while_the_database_is_down_wait_for_it(blog, own_postgres):
    own_postgres.stop_server()
    try:
        blog.start(wait=False)
        wait_for(lambda: all("waiting for it" in text for text in blog.logs()), timeout=30, step=0.2,
                 what="the workers to say they wait for the database")
        time.sleep(2.0)  # a few of their attempts
        blog.check(all(blog.alive()), f"a worker exited while the database was down: {blog.alive()}")
    finally:
        own_postgres.start_server()
    blog.wait_for_first_polls()
    blog.round()
    blog.finish()
    for slot, text in enumerate(blog.logs()):
        waiting = [line for line in text.splitlines() if "waiting for it" in line]
        blog.check(len(waiting) == 1 and "pg_isready" in waiting[0] and own_postgres.db_password not in text,
                   f"worker {slot} did not say once, with the fix, that it waits for the database")
