"""Crash matrix: `bridge poll` is SIGKILLed at each injected point, then run again. Every entry must be on
every account exactly once — on the real PDS and on the Mastodon fake answering like each server it can be
(tests/mastodon_fake/profiles.py: Mastodon, Takahē, GoToSocial, Akkoma) — and nothing lost; with the state in
SQLite and in PostgreSQL.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from bridge.faults import POINTS
from tests.bluesky_helpers import jpeg, record_links
from tests.mastodon_fake import MastodonFake
from tests.mastodon_fake.profiles import PROFILES
from tests.test_pipeline import posts, rss

ROOT = Path(__file__).resolve().parent.parent


def run_poll(config: Path, env: dict) -> subprocess.CompletedProcess:
    full_env = {**os.environ, **env}
    full_env.pop("BRIDGE_CONFIG", None)
    return subprocess.run([sys.executable, "-m", "bridge", "--config", str(config), "poll", "--feed", "blog"], cwd=ROOT, env=full_env,
                          capture_output=True, text=True, timeout=180)


def list_posts(pds, did: str) -> list[dict]:
    response = httpx.get(f"{pds.url}/xrpc/com.atproto.repo.listRecords",
                         params={"repo": did, "collection": "app.bsky.feed.post", "limit": 100}, timeout=10)
    response.raise_for_status()
    return response.json()["records"]


@pytest.fixture(scope="module", params=sorted(PROFILES))
def fake(request):
    with MastodonFake(profile=request.param) as server:
        yield server


@pytest.mark.parametrize("point", POINTS)
def test_killed_at_each_point_then_run_again_posts_everything_exactly_once(point, tmp_path, feed_server, pds, fake, store):
    username = f"crash{POINTS.index(point)}{store.kind[0]}"
    token = fake.add_account(username)
    account = pds.create_account(username)
    # an article page with an image: Bluesky uploads its card thumbnail, Mastodon attaches it (attach_image)
    feed_server.image("/cover.jpg", jpeg(800, 420), content_type="image/jpeg")
    # entries of their own per case: Akkoma keeps one Idempotency-Key cache for all accounts, and that sharing
    # is the two-writers test's subject below, not this one's
    entries = posts(2, guid_prefix=f"{point}-{store.kind}-")
    for entry in entries:
        path = entry["link"].split("blog.example", 1)[1]
        entry["link"] = feed_server.url(path)
        feed_server.page(path, f'<html><head><title>{entry["title"]}</title><meta property="og:title" content="{entry["title"]}">'
                               f'<meta property="og:image" content="/cover.jpg"></head><body>x</body></html>')
    feed_server.route("/feed", rss(entries[1:]))
    config = tmp_path / "config.toml"
    config.write_text(
        f'[bridge]\n{store.config_line()}\nallow_private_addresses = true\n'
        f'[accounts.masto]\ntype = "mastodon"\ninstance = "{fake.url}"\naccess_token = {{ env = "BRIDGE_TEST_MASTO" }}\n'
        f'attach_image = true\nposts_per_hour = 100\n'
        f'[accounts.sky]\ntype = "bluesky"\nhandle = "{account.handle}"\nservice = "{pds.url}"\n'
        f'app_password = {{ env = "BRIDGE_TEST_SKY" }}\nposts_per_hour = 100\n'
        f'[[feeds]]\nname = "blog"\nurl = "{feed_server.url("/feed")}"\naccounts = ["masto", "sky"]\n'
    )
    env = {"BRIDGE_TEST_MASTO": token, "BRIDGE_TEST_SKY": account.app_password}
    baseline = run_poll(config, env)
    assert baseline.returncode == 0, baseline.stderr
    feed_server.route("/feed", rss(entries))  # one new entry

    crashed = run_poll(config, {**env, "BRIDGE_TEST_CRASH_AT": point})
    assert crashed.returncode == -signal.SIGKILL, f"expected a SIGKILL at {point}: {crashed.stderr}"
    # the point is hit by whichever account comes first; a second crash covers the other account's path
    again = run_poll(config, {**env, "BRIDGE_TEST_CRASH_AT": point})
    assert again.returncode in (0, -signal.SIGKILL), again.stderr

    final = run_poll(config, env)
    assert final.returncode == 0, final.stderr
    statuses = fake.statuses(username)
    records = list_posts(pds, account.did)
    new_link = entries[0]["link"]
    assert len(statuses) == 1, statuses
    assert new_link in statuses[0]["text"]
    assert len(records) == 1, records
    assert new_link in record_links(records[0]["value"])
    if point == "mid-media-upload":
        assert records[0]["value"]["embed"]["external"].get("thumb")
        assert statuses[0]["media_attachments"]


def test_two_writers_of_one_feed_on_one_server_each_get_the_entry_once(tmp_path, feed_server, fake):
    """Two people bridge the same feed to their own accounts on one server, each with their own bridge and
    the same names in its config. Akkoma and Pleroma keep one Idempotency-Key cache for all accounts: a key
    that only says (account name, feed, entry) gives the second writer the first writer's status."""
    entries = posts(2, guid_prefix="shared-")
    feed_server.route("/shared-feed", rss(entries[1:]))
    configs = {}
    for writer in ("writer1", "writer2"):
        home = tmp_path / writer
        home.mkdir()
        configs[writer] = home / "config.toml"
        configs[writer].write_text(
            f'[bridge]\nstate = "{home}/state.sqlite3"\nallow_private_addresses = true\n'
            f'[accounts.masto]\ntype = "mastodon"\ninstance = "{fake.url}"\naccess_token = {{ env = "BRIDGE_TEST_MASTO" }}\n'
            f'[[feeds]]\nname = "blog"\nurl = "{feed_server.url("/shared-feed")}"\naccounts = ["masto"]\n'
        )
    tokens = {writer: fake.add_account(f"{writer}_{fake.profile}") for writer in configs}
    for writer, config in configs.items():  # the first poll learns the feed, posts nothing
        assert run_poll(config, {"BRIDGE_TEST_MASTO": tokens[writer]}).returncode == 0
    feed_server.route("/shared-feed", rss(entries))  # one new entry for both
    for writer, config in configs.items():
        done = run_poll(config, {"BRIDGE_TEST_MASTO": tokens[writer]})
        assert done.returncode == 0, done.stderr
    for writer in configs:
        statuses = fake.statuses(f"{writer}_{fake.profile}")
        assert [entries[0]["link"] in status["text"] for status in statuses] == [True], (writer, statuses)
