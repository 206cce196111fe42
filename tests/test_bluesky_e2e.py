"""Bluesky through the real CLI and the real PDS: separate `bridge poll` processes share one login, and a wrong
app password pauses the account with the fix spelled out, keeps the post queued and posts it once when fixed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.test_crash_matrix import list_posts
from tests.test_pipeline import posts, rss

ROOT = Path(__file__).resolve().parent.parent


def poll(config: Path, password: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "BRIDGE_TEST_SKY": password}
    env.pop("BRIDGE_CONFIG", None)
    return subprocess.run([sys.executable, "-m", "bridge", "--config", str(config), *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=180)


def setup(tmp_path, feed_server, pds, prefix: str):
    account = pds.create_account(prefix)
    config = tmp_path / "config.toml"
    config.write_text(
        f'[bridge]\nstate = "{tmp_path}/s.sqlite3"\n'
        f'[accounts.sky]\ntype = "bluesky"\nhandle = "{account.handle}"\nservice = "{pds.url}"\n'
        f'app_password = {{ env = "BRIDGE_TEST_SKY" }}\nposts_per_hour = 1000000\nforce_language = "de"\n'
        f'[[feeds]]\nname = "blog"\nurl = "{feed_server.url("/feed")}"\naccounts = ["sky"]\n'
    )
    return account, config


def test_three_processes_in_a_row_post_three_entries_with_one_login(tmp_path, feed_server, pds):
    account, config = setup(tmp_path, feed_server, pds, "three")
    feed_server.route("/feed", rss(posts(1)))
    assert poll(config, account.app_password, "poll").returncode == 0  # baseline, no login needed
    mark = pds.mark()
    for number in range(1, 4):
        feed_server.route("/feed", rss(posts(number + 1)))
        result = poll(config, account.app_password, "poll", "--feed", "blog")
        assert result.returncode == 0, result.stderr
    records = list_posts(pds, account.did)
    assert len(records) == 3
    assert all(record["value"]["langs"] == ["de"] for record in records)
    assert pds.create_session_count(since=mark) == 1


def test_wrong_app_password_pauses_keeps_the_post_and_posts_once_when_fixed(tmp_path, feed_server, pds):
    account, config = setup(tmp_path, feed_server, pds, "wrongpw")
    feed_server.route("/feed", rss(posts(1)))
    poll(config, "nope-nope-nope-nope", "poll")
    feed_server.route("/feed", rss(posts(2)))
    failed = poll(config, "nope-nope-nope-nope", "poll", "--feed", "blog")
    assert failed.returncode == 1
    assert "App passwords" in failed.stderr and "app_password" in failed.stderr  # the fix, spelled out
    status = json.loads(poll(config, "x", "status", "--json").stdout)["accounts"][0]
    assert status["queued"] == 1 and status["paused"]
    assert list_posts(pds, account.did) == []
    fixed = poll(config, account.app_password, "poll", "--feed", "blog")
    assert fixed.returncode == 0, fixed.stderr
    again = poll(config, account.app_password, "poll", "--feed", "blog")
    assert again.returncode == 0
    assert len(list_posts(pds, account.did)) == 1
    status = json.loads(poll(config, account.app_password, "status", "--json").stdout)["accounts"][0]
    assert (status["queued"], status["posted"], status["paused"]) == (0, 1, None)
