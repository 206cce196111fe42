"""Soak: the daemon runs for a while with short intervals while new entries appear across several feeds and
faults are injected everywhere (feed 500s and timeouts, Mastodon 429s and 5xx and lost answers, the PDS
restarted). At the end every entry is posted exactly once per account and `status` is clean.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import time

import httpx

from tests.bluesky_helpers import record_links
from tests.mastodon_fake import MastodonFake
from tests.test_daemon import ROOT, start_daemon, stop, wait_for
from tests.test_pipeline import posts, rss

FEEDS = ("alpha", "beta", "gamma")
NEW_ENTRIES = 24
SECONDS_BETWEEN_ENTRIES = 2.0


def bluesky_records(pds, did: str) -> list[dict]:
    """Every post record of the account, as the PDS stores it (all pages)."""
    records: list[dict] = []
    cursor = None
    while True:
        params = {"repo": did, "collection": "app.bsky.feed.post", "limit": 100, **({"cursor": cursor} if cursor else {})}
        response = httpx.get(f"{pds.url}/xrpc/com.atproto.repo.listRecords", params=params, timeout=10)
        response.raise_for_status()
        page = response.json()
        records.extend(page["records"])
        cursor = page.get("cursor")
        if not cursor or not page["records"]:
            return records


def status_report(config) -> dict:
    result = subprocess.run([sys.executable, "-m", "bridge", "--config", str(config), "status", "--json"],
                            cwd=ROOT, capture_output=True, text=True, timeout=60, check=True)
    return json.loads(result.stdout)


def link_facets(record: dict) -> list[str]:
    return [feature["uri"] for facet in record["value"].get("facets", []) for feature in facet["features"]
            if feature.get("$type", "").endswith("#link")]


def bluesky_links(pds, did: str) -> list[str]:
    """The links of every post (each post here has one: its own, in the text or the card)."""
    return [link for record in bluesky_records(pds, did) for link in record_links(record["value"])]


def test_soak_every_entry_exactly_once_per_account_under_faults(tmp_path, feed_server, pds):
    rng = random.Random(20261121)
    account = pds.create_account("soak")
    with MastodonFake() as fake:
        token = fake.add_account("soaker")
        # a real, tight rate limit on status creation: 429s with X-RateLimit-Reset a few seconds ahead
        fake.set_limits(statuses=(2, 10))
        documents = {name: posts(1, guid_prefix=f"{name}-", host=f"{name}.example") for name in FEEDS}
        for name in FEEDS:
            feed_server.route(f"/{name}", rss(documents[name]))
        config = tmp_path / "config.toml"
        lines = [
            f'[bridge]\nstate = "{tmp_path}/state.sqlite3"\ninterval = "1s"\ndelivery_interval = "1s"\nretry_delay = "1s"\n'
            f'read_timeout = "2s"\ntotal_timeout = "4s"\nmax_backoff = "3s"\nmax_post_age = "30d"\n',
            f'[accounts.masto]\ntype = "mastodon"\ninstance = "{fake.url}"\naccess_token = {{ env = "BRIDGE_TEST_MASTO" }}\n'
            f'posts_per_hour = 3600\nposts_per_day = 100000\nmax_attempts = 100\n',
            f'[accounts.sky]\ntype = "bluesky"\nhandle = "{account.handle}"\nservice = "{pds.url}"\n'
            f'app_password = {{ env = "BRIDGE_TEST_SKY" }}\nposts_per_hour = 3600\nposts_per_day = 100000\nmax_attempts = 100\n',
        ]
        for name in FEEDS:
            lines.append(f'[[feeds]]\nname = "{name}"\nurl = "{feed_server.url("/" + name)}"\naccounts = ["masto", "sky"]\n')
        config.write_text("\n".join(lines))
        process = start_daemon(config, {"BRIDGE_TEST_MASTO": token, "BRIDGE_TEST_SKY": account.app_password})
        faults = {"feed 500": 0, "feed timeout": 0, "mastodon 429": 0, "mastodon 5xx": 0, "mastodon lost": 0,
                  "pds restart": 0}
        published: list[str] = []
        try:
            # Each feed's first poll records its baseline (the daemon's first pass is spread out, and a loaded
            # machine starts slowly): an entry published before it would be baseline, never posted.
            wait_for(lambda: all(feed["last_success"] for feed in status_report(config)["feeds"]), timeout=60,
                     step=0.5, what="every feed's baseline")
            for number in range(NEW_ENTRIES):
                name = FEEDS[number % len(FEEDS)]
                entry = posts(1, start=number + 1, guid_prefix=f"{name}-", host=f"{name}.example")[0]
                documents[name].insert(0, entry)
                published.append(entry["link"])
                feed_server.route(f"/{name}", rss(documents[name]))
                fault = number % 6
                victim = FEEDS[rng.randrange(len(FEEDS))]
                if fault == 0:
                    feed_server.error(f"/{victim}", 500)
                    time.sleep(1.5)
                    feed_server.route(f"/{victim}", rss(documents[victim]))
                    faults["feed 500"] += 1
                elif fault == 1:
                    feed_server.route(f"/{victim}", rss(documents[victim]), delay=5)
                    time.sleep(1.5)
                    feed_server.route(f"/{victim}", rss(documents[victim]))
                    faults["feed timeout"] += 1
                elif fault == 3:
                    fake.inject("status_create", rng.choice([500, 502, 503]), times=1)
                    faults["mastodon 5xx"] += 1
                elif fault == 4:
                    fake.inject("status_create", "lost", times=1)
                    faults["mastodon lost"] += 1
                elif fault == 5 and number % 12 == 5:
                    with pds.stopped():
                        time.sleep(2)
                    faults["pds restart"] += 1
                time.sleep(SECONDS_BETWEEN_ENTRIES)

            def all_posted() -> bool:
                statuses = fake.statuses("soaker")
                return len(statuses) >= len(published) and len(bluesky_links(pds, account.did)) >= len(published)

            try:
                wait_for(all_posted, timeout=120, step=1.0, what="every entry posted on both accounts")
            except AssertionError:
                status = subprocess.run([sys.executable, "-m", "bridge", "--config", str(config), "status", "--json"],
                                        cwd=ROOT, capture_output=True, text=True, timeout=60)
                process.terminate()
                _, err = process.communicate(timeout=30)
                raise AssertionError(f"mastodon {len(fake.statuses('soaker'))}, bluesky {len(bluesky_links(pds, account.did))}"
                                     f" of {len(published)}\n{status.stdout}\n{err[-6000:]}")
            time.sleep(3)  # a last look: nothing more must appear
            code, err = stop(process)
        finally:
            if process.poll() is None:
                process.kill()
        assert code == 0, err[-3000:]
        faults["mastodon 429"] = sum(1 for entry in fake.requests("status_create") if entry["status"] == 429)
        mastodon_texts = [status["text"] for status in fake.statuses("soaker")]
        bluesky = bluesky_links(pds, account.did)
        for link in published:
            assert sum(link in text for text in mastodon_texts) == 1, f"{link} on Mastodon"
            assert bluesky.count(link) == 1, f"{link} on Bluesky"
        assert len(mastodon_texts) == len(published) and len(bluesky) == len(published)
        report = status_report(config)
        for acct in report["accounts"]:
            assert (acct["queued"], acct["failed"], acct["paused"]) == (0, 0, None), acct
            assert acct["posted"] == len(published)
        print(f"\nsoak: {len(published)} entries x 2 accounts, faults injected {faults}, duplicates 0, lost 0")
        assert sum(faults.values()) >= 15 and faults["mastodon 429"] >= 1
