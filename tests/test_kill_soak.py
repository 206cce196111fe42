"""Random-SIGKILL soak: `bridge run` and one-shot `bridge poll` are killed again and again — at random moments
and at every crash point of bridge/faults.py — while new entries with images keep appearing in two feeds.
The posts go to a real PDS account and to a Mastodon fake running as a process of its own, so both servers
outlive every kill. At the end bridge runs undisturbed until the queue is empty; each server's own records
must then hold every entry exactly once, and `status` must be clean.

BRIDGE_SOAK_SEED replays a run's random choices (the seed is printed and named in every failure);
BRIDGE_SOAK_KILLS sets how many kills to make (default 100). The numbers go to stdout and to soak.json.
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
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

import pytest

from bridge.faults import POINTS
from bridge.state import State
from tests.bluesky_helpers import jpeg
from tests.mastodon_fake import MastodonFakeProcess
from tests.test_daemon import ROOT, stop, wait_for
from tests.test_pipeline import rss
from tests.bluesky_helpers import record_links
from tests.test_soak import bluesky_records

pytestmark = pytest.mark.slow

FEEDS = ("alpha", "beta")
KILLS = int(os.environ.get("BRIDGE_SOAK_KILLS") or 100)
COVERAGE_KILLS = 60  # from this many kills on, every phase and server must have been hit (fewer: a quick look)
# The phase of the work each crash point interrupts (the docstring of bridge/faults.py says where each one is).
PHASES = {"mid-fetch": "fetch", "mid-commit": "commit", "mid-render": "render", "after-delivery-row": "post",
          "mid-media-upload": "upload", "after-remote-post": "commit"}
RUN_SHARE = 0.6  # the rest are one-shot polls
ARMED_SHARE = 0.5  # the rest are killed at a random moment
NEW_ENTRY_CHANCE = 0.6  # per start
DELIVERY_POINTS = ("after-delivery-row", "mid-media-upload", "after-remote-post")  # the delivery is `sending`
NEEDS_NEW_ENTRY = ("mid-commit", "mid-render")  # reached only with a new entry (rendering: before its first try)
RANDOM_KILL_AFTER = {"run": (0.8, 4.0), "poll": (0.6, 3.0)}  # seconds after the start
ARMED_WAIT = {"run": 8.0, "poll": 15.0}  # a point not reached by then: killed anyway, as a random kill
SETTLE_TIMEOUT = 240.0
URL = re.compile(r"https?://[^\s<>\"]+")
# The fake's real limits would throttle a few hundred restarts within minutes; limits are not what this tests.
FAKE_LIMITS = {"per_token": (100_000, 300), "per_user": (100_000, 300), "media": (100_000, 1800),
               "statuses": (100_000, 10800)}


class Soak:
    """The blog (two feeds that grow), bridge's starts and kills, and the tally."""

    def __init__(self, tmp_path: Path, feed_server, settings: str, accounts: dict[str, str], feeds: str, env: dict,
                 rng: random.Random, seed: int) -> None:
        self.feed_server, self.env, self.rng, self.seed = feed_server, env, rng, seed
        self.settings, self.accounts, self.feeds = settings, accounts, feeds
        self.config = tmp_path / "config.toml"
        self.state_path = tmp_path / "state.sqlite3"
        self.log_path = tmp_path / "bridge.log"  # every start's output, one after another
        self.write_config(list(accounts))
        self.documents: dict[str, list[dict]] = {name: [] for name in FEEDS}
        self.published: list[str] = []  # links of the entries that must be posted
        self.kills: Counter = Counter()  # by crash point, or "random (run)" / "random (poll)"
        self.kills_in_delivery: Counter = Counter()  # (crash point, account) for the points inside a delivery
        self.starts: Counter = Counter()
        self.polls_completed = 0
        self.armed_not_reached = 0  # armed starts killed at the deadline instead (counted as random kills)

    # --- the blog ----------------------------------------------------------------------------------------------

    def add_entry(self, feed: str, *, published: bool = True) -> None:
        number = sum(len(entries) for entries in self.documents.values())
        path = f"/{feed}/posts/{number}/"
        link = self.feed_server.url(path)
        title = f"Soak entry {number} of {feed}"
        cover = f"/covers/{number % 3}.jpg"
        self.feed_server.page(path, f'<html><head><title>{title}</title><meta property="og:title" content="{title}">'
                                    f'<meta property="og:image" content="{cover}"></head><body>{title}</body></html>')
        self.documents[feed].insert(0, {"guid": f"{feed}-{number}", "link": link, "title": title,
                                        "date": datetime.now(timezone.utc)})
        self.feed_server.route(f"/{feed}.xml", rss(self.documents[feed], title=f"The {feed} blog"))
        if published:
            self.published.append(link)

    # --- bridge ---------------------------------------------------------------------------------------------------

    def write_config(self, order: list[str]) -> None:
        """Accounts are served in config order: the first one with work takes a delivery crash point."""
        self.config.write_text(self.settings + "".join(self.accounts[name] for name in order) + self.feeds)

    def account_order(self, point: str | None) -> list[str]:
        names = list(self.accounts)
        self.rng.shuffle(names)
        if point in DELIVERY_POINTS:  # the account this point has hit least goes first
            names.sort(key=lambda name: self.kills_in_delivery[point, name])
        return names

    def sending_since(self, started: float) -> list[str]:
        """The accounts whose delivery this start marked `sending` (and left so: it was killed)."""
        with State.open_readonly(self.state_path) as state:
            return [row.account for row in state.deliveries(state="sending") if (row.sending_at or 0) >= started]

    def start(self, command: str, crash_at: str | None) -> subprocess.Popen:
        env = {**os.environ, **self.env}
        env.pop("BRIDGE_CONFIG", None)
        env.pop("BRIDGE_TEST_CRASH_AT", None)
        if crash_at:
            env["BRIDGE_TEST_CRASH_AT"] = crash_at
        self.starts[command] += 1
        with self.log_path.open("a") as log:
            log.write(f"--- {command}{f' armed at {crash_at}' if crash_at else ''}\n")
            log.flush()
            return subprocess.Popen([sys.executable, "-m", "bridge", "--config", str(self.config), command], cwd=ROOT,
                                    env=env, stdout=log, stderr=log, text=True)

    def cycle(self) -> None:
        """One start of bridge, ended by a kill (random or at a crash point) or, for a poll, by its own end."""
        command = "run" if self.rng.random() < RUN_SHARE else "poll"
        point = self.least_killed_point() if self.rng.random() < ARMED_SHARE else None
        wait = ARMED_WAIT[command] if point else self.rng.uniform(*RANDOM_KILL_AFTER[command])
        if point in NEEDS_NEW_ENTRY or self.rng.random() < NEW_ENTRY_CHANCE:
            self.add_entry(self.rng.choice(FEEDS))
        self.write_config(self.account_order(point))
        started = time.time()
        process = self.start(command, point)
        try:
            code = process.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            self.kills[f"random ({command})"] += 1
            self.armed_not_reached += bool(point)
            return
        finally:
            if process.poll() is None:  # the test itself was interrupted: leave no daemon behind
                process.kill()
                process.wait()
        if code == -signal.SIGKILL and point:
            self.kills[point] += 1
            if point in DELIVERY_POINTS:
                in_flight = self.sending_since(started)
                self.check(len(in_flight) == 1, f"killed at {point}, yet {in_flight or 'no'} deliveries in flight")
                self.kills_in_delivery[point, in_flight[0]] += 1
        elif command == "poll" and code == 0:
            self.polls_completed += 1
        else:
            self.check(False, f"bridge {command} ended by itself with code {code}")

    def least_killed_point(self) -> str:
        """A crash point chosen at random among those hit least so far, so every phase gets its share."""
        fewest = min(self.kills[point] for point in POINTS)
        return self.rng.choice([point for point in POINTS if self.kills[point] == fewest])

    def bridge(self, *args: str) -> subprocess.CompletedProcess:
        env = {**os.environ, **self.env}
        env.pop("BRIDGE_CONFIG", None)
        env.pop("BRIDGE_TEST_CRASH_AT", None)
        return subprocess.run([sys.executable, "-m", "bridge", "--config", str(self.config), *args], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=120)

    def status(self) -> dict:
        result = self.bridge("status", "--json")
        self.check(result.returncode == 0, f"status failed: {result.stderr}")
        return json.loads(result.stdout)

    def check(self, condition: bool, message: str) -> None:
        if not condition:
            tail = self.log_path.read_text()[-6000:] if self.log_path.exists() else ""
            raise AssertionError(f"{message} (seed {self.seed}: rerun with BRIDGE_SOAK_SEED={self.seed})\n"
                                 f"kills so far {dict(self.kills)}\n--- bridge's log, last lines:\n{tail}")


def count_once(links: list[str], found: list[str]) -> tuple[int, int]:
    """(duplicates, lost) of `links` among the links `found` on a server's posts (one link a post); a post of a
    link that was never published counts as a duplicate too."""
    counts = Counter(found)
    duplicates = sum(count - 1 for count in counts.values() if count > 1) + sum(
        count for link, count in counts.items() if link not in set(links))
    lost = sum(1 for link in links if counts[link] == 0)
    return duplicates, lost


def test_random_sigkills_across_every_phase_lose_nothing_and_post_nothing_twice(tmp_path, feed_server, pds, capsys):
    seed = int(os.environ.get("BRIDGE_SOAK_SEED") or random.SystemRandom().randrange(2**32))
    with capsys.disabled():  # shown even when output is captured: CI's log keeps the seed and the numbers
        print(f"\nkill soak: seed {seed}, {KILLS} kills (BRIDGE_SOAK_SEED / BRIDGE_SOAK_KILLS to change)")
    rng = random.Random(seed)
    began = time.monotonic()
    account = pds.create_account("killsoak")
    for number in range(3):
        feed_server.image(f"/covers/{number}.jpg", jpeg(640 + 80 * number, 336), content_type="image/jpeg")
    with MastodonFakeProcess(rate_limits=FAKE_LIMITS, card_fetch=False) as fake:
        token = fake.add_account("killsoak")
        # flood control out of the way (10 ms between posts, no daily cap), and the most attempts allowed
        unhurried = "posts_per_hour = 360000\nposts_per_day = 10000000\nmax_attempts = 100\n"
        accounts = {
            "masto": f'[accounts.masto]\ntype = "mastodon"\ninstance = "{fake.url}"\n'
                     f'access_token = {{ env = "BRIDGE_TEST_MASTO" }}\nattach_image = true\n{unhurried}',
            "sky": f'[accounts.sky]\ntype = "bluesky"\nhandle = "{account.handle}"\nservice = "{pds.url}"\n'
                   f'app_password = {{ env = "BRIDGE_TEST_SKY" }}\n{unhurried}',
        }
        settings = (f'[bridge]\nstate = "{tmp_path}/state.sqlite3"\nallow_private_addresses = true\ninterval = "1s"\n'
                    f'delivery_interval = "1s"\nretry_delay = "1s"\nmax_backoff = "2s"\nmax_post_age = "30d"\n')
        feeds = "".join(f'[[feeds]]\nname = "{name}"\nurl = "{feed_server.url(f"/{name}.xml")}"\naccounts = ["masto", "sky"]\n'
                        for name in FEEDS)
        soak = Soak(tmp_path, feed_server, settings, accounts, feeds,
                    {"BRIDGE_TEST_MASTO": token, "BRIDGE_TEST_SKY": account.app_password}, rng, seed)
        for name in FEEDS:
            soak.add_entry(name, published=False)  # the archive: seen on first sight, never posted
        baseline = soak.bridge("poll")
        soak.check(baseline.returncode == 0, f"the baseline poll failed: {baseline.stderr}")

        cycles = 0
        while sum(soak.kills.values()) < KILLS:
            cycles += 1
            soak.check(cycles <= 4 * KILLS, f"only {sum(soak.kills.values())} kills in {cycles - 1} starts")
            soak.cycle()
        killing_done = time.monotonic()

        # Settle: the daemon, left alone, must deliver everything the kills interrupted.
        daemon = soak.start("run", None)
        try:
            def delivered() -> bool:
                return all(acct["queued"] == 0 for acct in soak.status()["accounts"])

            try:
                wait_for(delivered, timeout=SETTLE_TIMEOUT, step=1.0, what="the queue to empty")
            except AssertionError:
                soak.check(False, f"the queue did not empty within {SETTLE_TIMEOUT:.0f} s: {soak.status()['accounts']}")
            code, _ = stop(daemon)
        finally:
            if daemon.poll() is None:
                daemon.kill()
                daemon.wait()
        soak.check(code == 0, f"the settling daemon exited with {code} on SIGTERM")
        settled = time.monotonic()

        statuses = fake.statuses("killsoak")
        records = bluesky_records(pds, account.did)
    mastodon_links = [link for status in statuses for link in URL.findall(status["text"])]
    bluesky_links = [link for record in records for link in record_links(record["value"])]
    masto_dupes, masto_lost = count_once(soak.published, mastodon_links)
    sky_dupes, sky_lost = count_once(soak.published, bluesky_links)
    report = soak.status()
    phases = Counter()
    for what, count in soak.kills.items():
        phases[PHASES.get(what, what)] += count
    numbers = {
        "seed": seed,
        "kills": sum(soak.kills.values()),
        "kills_per_phase": dict(sorted(phases.items())),
        "kills_per_point": {what: soak.kills[what] for what in (*POINTS, "random (run)", "random (poll)")},
        "delivery_kills_per_account": {point: {name: soak.kills_in_delivery[point, name] for name in accounts}
                                       for point in DELIVERY_POINTS},
        "starts": dict(soak.starts),
        "polls_completed": soak.polls_completed,
        "armed_not_reached": soak.armed_not_reached,
        "entries": len(soak.published),
        "posts": {"mastodon": len(statuses), "bluesky": len(records)},
        "duplicates": {"mastodon": masto_dupes, "bluesky": sky_dupes},
        "lost": {"mastodon": masto_lost, "bluesky": sky_lost},
        "without_image": {"mastodon": sum(1 for status in statuses if not status["media_attachments"]),
                          "bluesky": sum(1 for record in records
                                         if not record["value"].get("embed", {}).get("external", {}).get("thumb"))},
        "wall_seconds": round(settled - began, 1),
        "settle_seconds": round(settled - killing_done, 1),
    }
    numbers_path = tmp_path / "soak.json"
    numbers_path.write_text(json.dumps(numbers, indent=2) + "\n")
    with capsys.disabled():
        print(f"kill soak numbers ({numbers_path}): {json.dumps(numbers)}")

    soak.check(numbers["duplicates"] == {"mastodon": 0, "bluesky": 0} and numbers["lost"] == {"mastodon": 0, "bluesky": 0},
               f"not exactly once: {numbers}\nMastodon: {mastodon_links}\nBluesky: {bluesky_links}")
    soak.check(numbers["without_image"] == {"mastodon": 0, "bluesky": 0}, f"a kill cost a post its image: {numbers}")
    for acct in report["accounts"]:
        soak.check((acct["posted"], acct["queued"], acct["failed"], acct["paused"]) == (len(soak.published), 0, 0, None),
                   f"status not clean: {acct}")
    for feed in report["feeds"]:
        soak.check(feed["error"] is None and feed["pending_deliveries"] == 0, f"status not clean: {feed}")
    if KILLS >= COVERAGE_KILLS:  # every phase was interrupted: at its crash points, each delivery one on both
        # servers, and at random moments
        soak.check(all(soak.kills[point] for point in POINTS) and soak.kills["random (run)"] and soak.kills["random (poll)"],
                   f"a phase was never interrupted: {numbers}")
        soak.check(all(soak.kills_in_delivery[point, name] for point in DELIVERY_POINTS for name in accounts),
                   f"a delivery crash point never hit one of the servers: {numbers}")
