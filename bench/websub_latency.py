"""Publish-to-post latency, WebSub against polling: `python -m bench.websub_latency [--entries 50]`.

A local blog (tests/feedserver.py) whose feed names a real WebSub hub (flask-websub's, tests/websub_hub.py),
`bridge run` posting to the Mastodon fake and to the real Bluesky PDS, all on 127.0.0.1. For each entry: it is
added to the feed, the clock starts, the hub is pinged (WebSub mode) and the time until the post shows on each
platform is taken. Polling mode (interval 1 minute, no public_url) publishes the entries at random moments,
a few seconds apart, without waiting for each (a writer does not publish in step with the poller), so the
polls find them at every point of the interval. Prints p50 and p95 per mode and platform (docs/benchmarks.md).
A script, not a timed test.
"""

from __future__ import annotations

import argparse
import os
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx

from bridge.state import State

from tests.feedserver import FeedServer
from tests.mastodon_fake.process import MastodonFakeProcess
from tests.pds_fixture import start_pds
from tests.test_pipeline import rss
from tests.websub_hub import WebSubHub

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))]


class Blog:
    """The feed: newest first, the hub and self URL in the Link header (as WordPress's WebSub plugin sends them)."""

    def __init__(self, server: FeedServer, hub: WebSubHub, prefix: str) -> None:
        self.server, self.hub, self.prefix = server, hub, prefix
        self.items: list[dict] = []
        self.topic = server.url(f"/{prefix}.xml")
        self._lock = threading.Lock()
        self.add(0, timedelta(hours=1), serve=True)  # one old entry: the baseline

    def add(self, number: int, age: timedelta = timedelta(0), serve: bool = True) -> str:
        title = f"{self.prefix} entry {number} {os.urandom(3).hex()}"
        with self._lock:
            self.items.insert(0, {"guid": f"{self.prefix}-{number}", "link": f"https://blog.example/{self.prefix}/{number}/",
                                  "title": title, "date": datetime.now(timezone.utc) - age})
            self.server.route(f"/{self.prefix}.xml", rss(self.items[:20]),
                              headers={"Link": f'<{self.hub.url}>; rel="hub", <{self.topic}>; rel="self"'})
        return title


class Watcher:
    """Sees when each title appears on Mastodon and on Bluesky."""

    def __init__(self, fake: MastodonFakeProcess, user: str, pds_url: str, did: str) -> None:
        self.fake, self.user, self.pds_url, self.did = fake, user, pds_url, did
        self.http = httpx.Client(base_url=pds_url, timeout=30)

    def seen(self) -> dict[str, set[str]]:
        mastodon = {status["content"] for status in self.fake.statuses(self.user)}
        answer = self.http.get("/xrpc/com.atproto.repo.listRecords",
                               params={"repo": self.did, "collection": "app.bsky.feed.post", "limit": 100}).json()
        bluesky = {record["value"].get("text", "") for record in answer.get("records", [])}
        return {"mastodon": mastodon, "bluesky": bluesky}


def run_mode(mode: str, entries: int, root: Path, server: FeedServer, hub: WebSubHub, fake, pds, gap: float) -> dict:
    account = pds.create_account(f"bench{mode[:4]}")
    token = fake.add_account(f"writer{mode}")  # each mode its own accounts: empty timelines
    workdir = root / mode
    workdir.mkdir()
    blog = Blog(server, hub, mode)
    port = free_port()
    websub = mode == "websub"
    config = workdir / "config.toml"
    config.write_text(
        f'[bridge]\nstate = "{workdir}/state.sqlite3"\ninterval = "{"1h" if websub else "1m"}"\n'
        f'delivery_interval = "1s"\nallow_private_addresses = true\n'
        + (f'http_listen = "127.0.0.1:{port}"\npublic_url = "http://127.0.0.1:{port}"\n' if websub else "")
        + f'[accounts.masto]\ntype = "mastodon"\ninstance = "{fake.url}"\naccess_token = {{ env = "BENCH_MASTO" }}\n'
        f'posts_per_hour = 100000\nposts_per_day = 100000\n'
        f'[accounts.sky]\ntype = "bluesky"\nhandle = "{account.handle}"\nservice = "{pds.url}"\n'
        f'app_password = {{ env = "BENCH_SKY" }}\nposts_per_hour = 100000\nposts_per_day = 100000\n'
        f'[[feeds]]\nname = "blog"\nurl = "{blog.topic}"\naccounts = ["masto", "sky"]\n')
    env = {**os.environ, "BENCH_MASTO": token, "BENCH_SKY": account.app_password,
           "HTTP_PROXY": server.base_url, "http_proxy": server.base_url,
           "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}
    env.pop("BRIDGE_CONFIG", None)
    log = open(workdir / "bridge.log", "w")
    daemon = subprocess.Popen([sys.executable, "-m", "bridge", "--config", str(config), "run"], cwd=REPO, env=env,
                              stdout=log, stderr=subprocess.STDOUT)
    watcher = Watcher(fake, f"writer{mode}", pds.url, account.did)
    try:
        if websub:
            wait(lambda: hub.subscriptions(blog.topic), 120, "the subscription")
        else:
            wait(lambda: baseline_done(workdir / "state.sqlite3"), 90, "the first poll")  # else entries join the baseline
        time.sleep(2)
        published: dict[str, float] = {}
        latencies: dict[str, dict[str, float]] = {"mastodon": {}, "bluesky": {}}

        def collect() -> None:
            seen = watcher.seen()
            now = time.monotonic()
            for platform, texts in seen.items():
                for title, start in published.items():
                    if title not in latencies[platform] and any(title in text for text in texts):
                        latencies[platform][title] = now - start

        for number in range(1, entries + 1):
            title = blog.add(number)
            published[title] = time.monotonic()
            if websub:
                hub.publish(blog.topic)
                wait(lambda: (collect(), all(title in found for found in latencies.values()))[1], 60, title)
            else:
                deadline = time.monotonic() + random.uniform(gap / 2, gap * 1.5)
                while time.monotonic() < deadline:
                    collect()
                    time.sleep(0.2)
        wait(lambda: (collect(), all(len(found) == entries for found in latencies.values()))[1], 180, "every post")
    finally:
        daemon.terminate()
        daemon.wait(timeout=60)
        log.close()
    return {platform: sorted(found.values()) for platform, found in latencies.items()}


def baseline_done(path: Path) -> bool:
    if not path.exists():
        return False
    with State.open_readonly(path) as state:
        row = state.get_feed("blog")
        return bool(row and row.baseline_done)


def wait(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise SystemExit(f"timed out waiting for {what}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", type=int, default=50)
    parser.add_argument("--gap", type=float, default=6.0, help="polling mode: mean seconds between entries")
    parser.add_argument("--modes", default="websub,polling")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bridge-websub-bench-"))
    pds = start_pds()
    hub = WebSubHub(root).start()
    try:
        with FeedServer() as server, MastodonFakeProcess(accounts=[]) as fake:
            results = {mode: run_mode(mode, args.entries, root, server, hub, fake, pds, args.gap)
                       for mode in args.modes.split(",")}
    finally:
        hub.stop()
        pds.close()
    print(f"{'mode':8} {'platform':9} {'n':>3} {'p50 s':>7} {'p95 s':>7} {'max s':>7}")
    for mode, platforms in results.items():
        for platform, values in platforms.items():
            print(f"{mode:8} {platform:9} {len(values):3d} {percentile(values, 0.5):7.2f} "
                  f"{percentile(values, 0.95):7.2f} {max(values):7.2f}")


if __name__ == "__main__":
    main()
