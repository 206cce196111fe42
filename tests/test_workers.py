"""Four `bridge run` workers on one real PostgreSQL, killed at random and restarted, while new entries keep
appearing in 500 feeds. Each feed goes to two accounts, one on the Mastodon fake (a process of its own) and one
on the real PDS; the accounts are shared by many feeds, so their flood limits hold a queue back all the time.

At the end the workers run undisturbed until the queue is empty and stop on SIGTERM. Then each server's own
records must hold every entry on every account exactly once, and no account may have posted faster than its
flood limits allow (by the servers' clocks and by the state's). The kills must have landed mid-work: some while
the victim held an account's lock with a post `sending`, some while it held feed leases.

BRIDGE_WORKERS_SEED replays a run's random choices (printed, and named in every failure); BRIDGE_WORKERS_KILLS
and BRIDGE_WORKERS_FEEDS change the size. The numbers go to stdout and to workers.json.
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict
from datetime import datetime, timezone
from pathlib import Path

import psycopg
import pytest

from bridge.state.locks import application_name, lock_key
from tests.bluesky_helpers import record_links
from tests.mastodon_fake import MastodonFakeProcess
from tests.test_daemon import ROOT, stop, wait_for
from tests.test_kill_soak import FAKE_LIMITS, count_once
from tests.test_pipeline import rss
from tests.test_soak import bluesky_records

pytestmark = pytest.mark.slow

WORKERS = 4
FEEDS = int(os.environ.get("BRIDGE_WORKERS_FEEDS") or 500)
KILLS = int(os.environ.get("BRIDGE_WORKERS_KILLS") or 50)
ACCOUNTS_PER_PLATFORM = 8  # feed i goes to masto{i % 8} and sky{i % 8}: each account serves many feeds
WAVES = 5  # new entries arrive in waves, each to a share of the feeds; every feed gets NEW_PER_FEED in all
NEW_PER_FEED = 1
POSTS_PER_HOUR = 7200  # a post every 0.5 s per account: a wave queues a dozen per account, which trickle out
SPACING = 3600 / POSTS_PER_HOUR
KILL_GAP = (0.5, 2.5)  # seconds between kills
AIMED_SHARE = 0.5  # the rest are killed at random: these go to a worker seen with a post `sending`
AIM_WAIT = 2.0  # seconds to look for one before killing at random instead
SETTLE_TIMEOUT = 300.0
URL = re.compile(r"https?://[^\s<>\"]+")


class Workers:
    """The blog, the four workers (started, killed, restarted) and the tally of what each kill interrupted."""

    def __init__(self, tmp_path: Path, feed_server, url: str, config: str, env: dict, rng: random.Random,
                 seed: int) -> None:
        self.tmp_path, self.feed_server, self.url, self.env, self.rng, self.seed = tmp_path, feed_server, url, env, rng, seed
        self.config = tmp_path / "config.toml"
        self.config.write_text(config)
        self.db = psycopg.connect(url, autocommit=True)
        self.documents: dict[int, list[dict]] = {number: [] for number in range(FEEDS)}
        self.expected: dict[str, list[str]] = defaultdict(list)  # account -> links it must get
        self.processes: list[subprocess.Popen | None] = [None] * WORKERS
        self.kills = 0
        self.kills_holding_account = 0  # the victim held an account's delivery lock
        self.kills_mid_send = 0  # ... with one of that account's posts `sending`
        self.kills_holding_feeds = 0  # the victim held feed leases (polls in flight)
        self.starts = 0

    # --- the blog ------------------------------------------------------------------------------------------

    def add_entry(self, feed: int, *, new: bool = True) -> None:
        number = len(self.documents[feed])
        path = f"/f{feed}/posts/{number}/"
        link = self.feed_server.url(path)
        title = f"Entry {number} of feed {feed}"
        self.feed_server.page(path, f"<html><head><title>{title}</title></head><body>{title}</body></html>")
        self.documents[feed].insert(0, {"guid": f"f{feed}-{number}", "link": link, "title": title,
                                        "date": datetime.now(timezone.utc)})
        self.feed_server.route(f"/f{feed}.xml", rss(self.documents[feed], title=f"Blog {feed}"))
        if new:
            for account in accounts_of(feed):
                self.expected[account].append(link)

    def wave(self, number: int) -> None:
        for feed in range(FEEDS):
            if feed % WAVES == number:
                for _ in range(NEW_PER_FEED):
                    self.add_entry(feed)

    # --- the workers ---------------------------------------------------------------------------------------

    def start(self, slot: int) -> None:
        env = {**os.environ, **self.env}
        env.pop("BRIDGE_CONFIG", None)
        env.pop("BRIDGE_TEST_CRASH_AT", None)
        self.starts += 1
        with (self.tmp_path / f"worker{slot}.log").open("a") as log:
            log.write(f"--- start {self.starts}\n")
            log.flush()
            self.processes[slot] = subprocess.Popen(
                [sys.executable, "-m", "bridge", "--config", str(self.config), "run"], cwd=ROOT, env=env,
                stdout=log, stderr=log, text=True)

    def all_running(self) -> bool:
        """Every worker has said "bridge running" since its last start (its signal handlers come before that)."""
        return all("bridge running" in (self.tmp_path / f"worker{slot}.log").read_text().rsplit("--- start", 1)[-1]
                   for slot in range(WORKERS))

    def kill_one(self) -> None:
        """SIGKILL a worker (at random, or one seen sending a post), note what it held then, and start it again."""
        slot = self.sending_worker() if self.rng.random() < AIMED_SHARE else None
        if slot is None:
            slot = self.rng.randrange(WORKERS)
        process = self.processes[slot]
        self.check(process.poll() is None, f"worker {slot} ended by itself with code {process.returncode}")
        held_accounts = self.accounts_locked_by(process.pid)
        held_feeds = self.db.execute("SELECT count(*) FROM feeds WHERE lease_owner LIKE %s AND lease_until > %s",
                                     [f"%:{process.pid}:%", time.time()]).fetchone()[0]
        process.kill()
        process.wait()
        self.kills += 1
        sending = self.db.execute("SELECT count(*) FROM deliveries WHERE state = 'sending' AND account = ANY(%s)",
                                  [held_accounts]).fetchone()[0] if held_accounts else 0
        self.kills_holding_account += bool(held_accounts)
        self.kills_mid_send += bool(sending)
        self.kills_holding_feeds += bool(held_feeds)
        self.start(slot)

    def sending_worker(self) -> int | None:
        """The slot of a worker that holds an account with a post `sending` right now (looked for a while)."""
        deadline = time.monotonic() + AIM_WAIT
        while time.monotonic() < deadline:
            sending = {account for (account,) in self.db.execute("SELECT account FROM deliveries WHERE state = 'sending'")}
            if sending:
                for slot, process in enumerate(self.processes):
                    if set(self.accounts_locked_by(process.pid)) & sending:
                        return slot
            time.sleep(0.01)
        return None

    def accounts_locked_by(self, pid: int) -> list[str]:
        """The accounts whose delivery lock the worker `pid` holds (pg_locks, its lock connection's name)."""
        rows = self.db.execute(
            """SELECT l.classid::bigint, l.objid::bigint FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
               WHERE l.locktype = 'advisory' AND l.granted AND a.application_name = %s""",
            [application_name(pid)]).fetchall()
        keys = {(classid << 32) | objid for classid, objid in rows}
        return [name for name in all_accounts() if lock_key(f"account:{name}") % 2**64 in keys]

    def baseline_done(self) -> bool:
        return self.db.execute("SELECT count(*) FROM feeds WHERE baseline_done = 1").fetchone()[0] == FEEDS

    def queue_empty(self) -> bool:
        counts = dict(self.db.execute("SELECT state, count(*) FROM deliveries GROUP BY state").fetchall())
        expected = sum(len(links) for links in self.expected.values())
        return counts == {"posted": expected}

    def check(self, condition: bool, message: str) -> None:
        if not condition:
            tails = "".join(f"\n--- worker {slot}'s log, last lines:\n{(self.tmp_path / f'worker{slot}.log').read_text()[-3000:]}"
                            for slot in range(WORKERS) if (self.tmp_path / f"worker{slot}.log").exists())
            raise AssertionError(f"{message} (seed {self.seed}: rerun with BRIDGE_WORKERS_SEED={self.seed}){tails}")

    def close(self) -> None:
        for process in self.processes:
            if process is not None and process.poll() is None:
                process.kill()
                process.wait()
        self.db.close()


def accounts_of(feed: int) -> tuple[str, str]:
    return f"masto{feed % ACCOUNTS_PER_PLATFORM}", f"sky{feed % ACCOUNTS_PER_PLATFORM}"


def all_accounts() -> list[str]:
    return [f"{kind}{number}" for kind in ("masto", "sky") for number in range(ACCOUNTS_PER_PLATFORM)]


def too_close(times: list[float]) -> list[float]:
    """Gaps between an account's consecutive posts shorter than its flood limits allow (1 ms for rounding)."""
    times = sorted(times)
    return [round(b - a, 3) for a, b in zip(times, times[1:]) if b - a < SPACING - 0.001]


def most_in_an_hour(times: list[float]) -> int:
    times = sorted(times)
    return max((sum(1 for t in times[i:] if t < start + 3600) for i, start in enumerate(times)), default=0)


def parse_time(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def test_four_workers_killed_at_random_post_every_entry_once_within_flood_limits(tmp_path, feed_server, pds, postgres,
                                                                                 capsys):
    seed = int(os.environ.get("BRIDGE_WORKERS_SEED") or random.SystemRandom().randrange(2**32))
    with capsys.disabled():
        print(f"\nworkers: seed {seed}, {WORKERS} workers, {FEEDS} feeds, {KILLS} kills "
              "(BRIDGE_WORKERS_SEED / _FEEDS / _KILLS to change)")
    rng = random.Random(seed)
    began = time.monotonic()
    url = postgres.new_database()
    sky = {f"sky{number}": pds.create_account(f"worker{number}") for number in range(ACCOUNTS_PER_PLATFORM)}
    pds_mark = pds.mark()
    with MastodonFakeProcess(rate_limits=FAKE_LIMITS, card_fetch=False) as fake:
        env = {"BRIDGE_TEST_DATABASE": url}
        limits = f"posts_per_hour = {POSTS_PER_HOUR}\nposts_per_day = 100000\nmax_attempts = 100\n"
        accounts = ""
        for number in range(ACCOUNTS_PER_PLATFORM):
            env[f"BRIDGE_TEST_MASTO{number}"] = fake.add_account(f"masto{number}")
            env[f"BRIDGE_TEST_SKY{number}"] = sky[f"sky{number}"].app_password
            accounts += (f'[accounts.masto{number}]\ntype = "mastodon"\ninstance = "{fake.url}"\n'
                         f'access_token = {{ env = "BRIDGE_TEST_MASTO{number}" }}\n{limits}'
                         f'[accounts.sky{number}]\ntype = "bluesky"\nhandle = "{sky[f"sky{number}"].handle}"\n'
                         f'service = "{pds.url}"\napp_password = {{ env = "BRIDGE_TEST_SKY{number}" }}\n{limits}')
        settings = ('[bridge]\ndatabase = { env = "BRIDGE_TEST_DATABASE" }\nallow_private_addresses = true\n'
                    'interval = "10s"\ndelivery_interval = "1s"\nretry_delay = "1s"\nmax_backoff = "4s"\n'
                    'max_post_age = "30d"\ntotal_timeout = "6s"\n')
        feeds = "".join(f'[[feeds]]\nname = "f{feed}"\nurl = "{feed_server.url(f"/f{feed}.xml")}"\n'
                        f'accounts = ["{accounts_of(feed)[0]}", "{accounts_of(feed)[1]}"]\n' for feed in range(FEEDS))
        run = Workers(tmp_path, feed_server, url, settings + accounts + feeds, env, rng, seed)
        try:
            for feed in range(FEEDS):
                run.add_entry(feed, new=False)  # the archive: seen on first sight, never posted
            for slot in range(WORKERS):
                run.start(slot)
            wait_for(run.baseline_done, timeout=120, step=0.5, what="the first poll of every feed")
            baseline_done = time.monotonic()

            # Kill at random; the waves of new entries come out while the killing goes on.
            wave_every = max(KILLS // (WAVES + 1), 1)
            waves = 0
            while run.kills < KILLS or waves < WAVES:
                if waves < WAVES and run.kills >= waves * wave_every:
                    run.wave(waves)
                    waves += 1
                time.sleep(rng.uniform(*KILL_GAP))
                run.kill_one()
            killing_done = time.monotonic()

            # Settle: the workers, left alone, deliver everything the kills interrupted, then stop on SIGTERM.
            try:
                wait_for(run.queue_empty, timeout=SETTLE_TIMEOUT, step=1.0, what="the queue to empty")
            except AssertionError:
                counts = run.db.execute("SELECT account, state, count(*) FROM deliveries WHERE state <> 'posted' "
                                        "GROUP BY account, state").fetchall()
                run.check(False, f"the queue did not empty within {SETTLE_TIMEOUT:.0f} s: {counts}")
            # A worker restarted by the last kill may still be starting: SIGTERM before its handler is in place ends
            # it by the signal, as it should, but what is checked here is the clean stop of a running worker.
            wait_for(run.all_running, timeout=60, step=0.2, what="every worker to be running")
            for slot, process in enumerate(run.processes):
                code, _ = stop(process)
                run.check(code == 0, f"worker {slot} exited with {code} on SIGTERM")
            settled = time.monotonic()

            posted_at = defaultdict(list)
            for account, when in run.db.execute("SELECT account, posted_at FROM deliveries WHERE state = 'posted'"):
                posted_at[account].append(when)
            statuses = {f"masto{number}": fake.statuses(f"masto{number}") for number in range(ACCOUNTS_PER_PLATFORM)}
            records = {name: bluesky_records(pds, account.did) for name, account in sky.items()}
            logins = pds.create_session_count(since=pds_mark)
        finally:
            run.close()

    found = {name: [link for status in posts for link in URL.findall(status["text"])] for name, posts in statuses.items()}
    found |= {name: [link for record in posts for link in record_links(record["value"])] for name, posts in records.items()}
    server_times = {name: [parse_time(status["created_at"]) for status in posts] for name, posts in statuses.items()}
    server_times |= {name: [parse_time(record["value"]["createdAt"]) for record in posts] for name, posts in records.items()}
    tally = {name: count_once(run.expected[name], found[name]) for name in all_accounts()}
    numbers = {
        "seed": seed,
        "workers": WORKERS,
        "feeds": FEEDS,
        "kills": run.kills,
        "kills_holding_an_account": run.kills_holding_account,
        "kills_mid_send": run.kills_mid_send,
        "kills_holding_feed_leases": run.kills_holding_feeds,
        "starts": run.starts,
        "entries": sum(len(links) for links in run.expected.values()) // 2,
        "posts": {name: len(found[name]) for name in all_accounts()},
        "duplicates": sum(duplicates for duplicates, _ in tally.values()),
        "lost": sum(lost for _, lost in tally.values()),
        "too_close": {name: too_close(server_times[name]) + too_close(posted_at[name]) for name in all_accounts()
                      if too_close(server_times[name]) or too_close(posted_at[name])},
        "most_in_an_hour": max(most_in_an_hour(times) for times in server_times.values()),
        "bluesky_logins": logins,
        "baseline_seconds": round(baseline_done - began, 1),
        "wall_seconds": round(settled - began, 1),
        "settle_seconds": round(settled - killing_done, 1),
    }
    (tmp_path / "workers.json").write_text(json.dumps(numbers, indent=2) + "\n")
    with capsys.disabled():
        print(f"workers numbers ({tmp_path / 'workers.json'}): {json.dumps(numbers)}")

    run.check(numbers["duplicates"] == 0 and numbers["lost"] == 0,
              f"not exactly once on every account: {numbers}\n{ {name: tally[name] for name in tally if tally[name] != (0, 0)} }")
    run.check(all(numbers["posts"][name] == len(run.expected[name]) for name in all_accounts()), f"posts: {numbers}")
    run.check(not numbers["too_close"] and numbers["most_in_an_hour"] <= POSTS_PER_HOUR,
              f"an account posted faster than its flood limits: {numbers}")
    # Sessions stay correct across workers: each account logs in once, and again only if a kill took the worker
    # holding it between a login and its session being stored; a worker taking an account over reuses the session.
    run.check(logins <= ACCOUNTS_PER_PLATFORM + run.kills_holding_account, f"too many Bluesky logins: {numbers}")
    run.check(run.kills >= KILLS, f"only {run.kills} kills")
    run.check(run.kills_mid_send > 0 and run.kills_holding_feeds > 0,
              f"no kill landed mid-send or during a poll: {numbers}")
