"""Deletes that follow the blog (bridge/deletes.py, docs/deletes.md), through `bridge poll` processes: on the
Mastodon fake and on the real PDS. Permalinks are on http://blog.example.com, served by the feed server as the
bridge process's HTTP proxy (tests/mastodon_blog.py)."""

from __future__ import annotations

import json
import subprocess
import time
from datetime import datetime, timedelta, timezone

import pytest

from bridge.state import State
from tests.mastodon_blog import BLOG, mastodon_blog, run_bridge, write_blog_config
from tests.test_crash_matrix import list_posts
from tests.test_pipeline import rss

START = datetime.now(timezone.utc) - timedelta(days=1)
RECHECK = 1.0  # [bridge] delete_recheck in these tests: the two checks must be this far apart


def _items(numbers) -> list[dict]:
    """Post n was published n hours after post 0, each time the feed is read (as a blog's dates stay)."""
    return [{"guid": f"g{n}", "link": f"{BLOG}/posts/{n}", "title": f"Post {n}", "date": START + timedelta(hours=n)}
            for n in numbers]


def _feed(server, numbers) -> None:
    server.route("/feed.xml", rss(_items(numbers), link=f"{BLOG}/"), content_type="application/rss+xml")


def _post_two_of_four(run, server) -> None:
    """A feed of g0..g3, then g4 and g5 arrive and are posted."""
    _feed(server, [3, 2, 1, 0])
    assert run("poll").returncode == 0  # baseline
    _feed(server, [5, 4, 3, 2, 1, 0])
    posted = 0
    for _ in range(5):  # flood control spaces two posts (3600 an hour: a second apart)
        result = run("poll", "--feed", "blog")
        assert result.returncode == 0, result.stderr
        posted += int(result.stdout.split("; posted ")[1].split(",")[0])
        if posted == 2:
            return
        time.sleep(1.0)
    raise AssertionError(f"posted {posted} of 2")


def _delete_post_4(run, server, account: str) -> None:
    """Posts 4 and 5 posted; post 4 deleted from the blog (410, gone from the feed), checked twice: deleted."""
    _post_two_of_four(run, server)
    server.gone("/posts/4")
    _feed(server, [5, 3, 2, 1, 0])
    assert run("poll", "--feed", "blog").returncode == 0
    time.sleep(RECHECK + 0.1)
    done = run("poll", "--feed", "blog")
    assert done.returncode == 0, done.stderr
    assert f"deleted {account}: " in done.stdout


@pytest.fixture
def masto(tmp_path, feed_server):
    with mastodon_blog(tmp_path, feed_server, "follow_deletes = true\nposts_per_hour = 1000000", f'delete_recheck = "{RECHECK:g}s"') as blog:
        yield blog


def _texts(blog) -> list[str]:
    return sorted(status["text"].split("\n")[0] for status in blog.mastodon.statuses("alice"))


def test_a_deleted_entry_with_a_410_permalink_loses_its_post_a_redirected_one_keeps_it(masto):
    _post_two_of_four(masto.bridge, masto.server)
    assert _texts(masto) == ["Post 4", "Post 5"]
    masto.server.gone("/posts/4")  # deleted
    masto.server.redirect("/posts/5", f"{BLOG}/2025/post-5")  # moved
    _feed(masto.server, [3, 2, 1, 0])
    first = masto.bridge("poll", "--feed", "blog")
    assert first.returncode == 0, first.stderr
    assert _texts(masto) == ["Post 4", "Post 5"]  # one 410 is not enough
    time.sleep(RECHECK + 0.1)

    dry = masto.bridge("poll", "--feed", "blog", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    [line] = [line for line in dry.stdout.splitlines() if line.startswith("would delete")]
    assert line.startswith("would delete masto: ") and f"({BLOG}/posts/4)" in line
    assert _texts(masto) == ["Post 4", "Post 5"] and not masto.mastodon.requests("status_delete")

    second = masto.bridge("poll", "--feed", "blog")
    assert second.returncode == 0, second.stderr
    assert "deleted masto: " in second.stdout
    assert _texts(masto) == ["Post 5"]  # the 301 kept its post
    with State.open_readonly(masto.state_path) as state:
        rows = {row.entry_key: row for row in state.deliveries()}
    assert rows["g4"].state == "deleted" and rows["g4"].deleted_at and rows["g4"].remote_id  # the history stays
    assert rows["g5"].state == "posted"
    with State.open_readonly(masto.state_path) as state:  # gone from the syndication file and the way back too
        assert [row.entry_key for row in state.syndicated_deliveries()] == ["g5"]
        now = time.time()
        due = state.due_reaction_deliveries("masto", now, posted_since=0, first_before=now + 1, limit=10)
        assert [row.entry_key for row in due] == ["g5"]
    account = json.loads(masto.bridge("status", "--json").stdout)["accounts"][0]
    assert (account["posted"], account["deleted"]) == (1, 1)
    assert "deleted with the blog 1" in masto.bridge("status").stdout
    assert masto.bridge("poll", "--feed", "blog").returncode == 0
    assert len(masto.mastodon.requests("status_delete")) == 1


def test_a_truncated_feed_deletes_nothing_and_warns(masto):
    _post_two_of_four(masto.bridge, masto.server)
    for number in range(6):
        masto.server.gone(f"/posts/{number}")
    _feed(masto.server, [0])  # the feed shrank from six entries to one
    first = masto.bridge("poll", "--feed", "blog")
    assert "went from 6 entries to 1 at once; nothing is deleted" in first.stderr
    time.sleep(RECHECK + 0.1)
    assert masto.bridge("poll", "--feed", "blog").returncode == 0
    assert _texts(masto) == ["Post 4", "Post 5"] and not masto.mastodon.requests("status_delete")
    assert "DELETES HELD: the feed went from 6 entries to 1" in masto.bridge("status").stdout


def test_an_account_without_follow_deletes_keeps_its_posts(tmp_path, feed_server):
    with mastodon_blog(tmp_path, feed_server, "posts_per_hour = 1000000", f'delete_recheck = "{RECHECK:g}s"') as blog:
        _post_two_of_four(blog.bridge, blog.server)
        blog.server.gone("/posts/4")
        _feed(blog.server, [5, 3, 2, 1, 0])
        for _ in range(2):
            assert blog.bridge("poll", "--feed", "blog").returncode == 0
            time.sleep(RECHECK + 0.1)
        assert _texts(blog) == ["Post 4", "Post 5"]


def test_a_crash_during_deletion_resumes_without_error(masto):
    _post_two_of_four(masto.bridge, masto.server)
    masto.server.gone("/posts/4")
    masto.server.gone("/posts/5")
    _feed(masto.server, [3, 2, 1, 0])
    assert masto.bridge("poll", "--feed", "blog").returncode == 0
    time.sleep(RECHECK + 0.1)
    killed = masto.bridge("poll", "--feed", "blog", BRIDGE_TEST_CRASH_AT="after-remote-delete")
    assert killed.returncode == -9
    assert len(_texts(masto)) == 1  # one post deleted on the server, its row not yet marked
    resumed = masto.bridge("poll", "--feed", "blog")
    assert resumed.returncode == 0, resumed.stderr
    assert "cannot delete" not in resumed.stderr
    assert _texts(masto) == []
    with State.open_readonly(masto.state_path) as state:
        assert sorted(row.state for row in state.deliveries()) == ["deleted", "deleted"]


# --- the real PDS --------------------------------------------------------------------------------------------


def test_a_deleted_entry_loses_its_bluesky_post_on_the_real_pds(tmp_path, feed_server, pds):
    account = pds.create_account("follow")
    config = write_blog_config(tmp_path, feed_server, "sky", f'type = "bluesky"\nhandle = "{account.handle}"\n'
                               f'service = "{pds.url}"\napp_password = {{ env = "BRIDGE_TEST_SKY" }}\n'
                               "posts_per_hour = 1000000\nfollow_deletes = true", f'delete_recheck = "{RECHECK:g}s"')

    def run(*args: str) -> subprocess.CompletedProcess:
        return run_bridge(config, feed_server, *args, BRIDGE_TEST_SKY=account.app_password)

    _delete_post_4(run, feed_server, "sky")
    [left] = list_posts(pds, account.did)
    assert left["value"]["text"].startswith("Post 5")


# --- a real relay --------------------------------------------------------------------------------------------


def test_a_deleted_entry_gets_a_nip09_deletion_request_on_the_relay(tmp_path, feed_server, nostr_relay):
    import nostr_sdk

    keys = nostr_sdk.Keys.generate()
    config = write_blog_config(tmp_path, feed_server, "nostr", 'type = "nostr"\nsecret_key = { env = "BRIDGE_TEST_NOSTR_KEY" }\n'
                               f'relays = ["{nostr_relay.url}"]\nposts_per_hour = 1000000\nfollow_deletes = true',
                               f'delete_recheck = "{RECHECK:g}s"')

    def run(*args: str) -> subprocess.CompletedProcess:
        return run_bridge(config, feed_server, *args, BRIDGE_TEST_NOSTR_KEY=keys.secret_key().to_hex())

    _delete_post_4(run, feed_server, "nostr")
    with State.open_readonly(tmp_path / "state.sqlite3") as state:
        note_ids = {row.entry_key: row.remote_id for row in state.deliveries()}
    [request] = nostr_relay.events(kinds=[5], authors=[keys.public_key().to_hex()])
    assert ["e", note_ids["g4"]] in request["tags"] and ["e", note_ids["g5"]] not in request["tags"]
    assert nostr_sdk.Event.from_json(json.dumps(request)).verify()


# --- the Threads fake ---------------------------------------------------------------------------------------------


def test_a_deleted_entry_loses_its_threads_post(tmp_path, feed_server):
    from tests.threads_fake import ThreadsFake

    with ThreadsFake() as fake:
        token = fake.add_user("writer")
        config = write_blog_config(tmp_path, feed_server, "threads", 'type = "threads"\naccess_token = { env = '
                                   f'"BRIDGE_TEST_THREADS" }}\ngraph_url = "{fake.url}"\nposts_per_hour = 1000000\n'
                                   "follow_deletes = true", f'delete_recheck = "{RECHECK:g}s"')

        def run(*args: str) -> subprocess.CompletedProcess:
            return run_bridge(config, feed_server, *args, BRIDGE_TEST_THREADS=token)

        _delete_post_4(run, feed_server, "threads")
        [left] = fake.posts(token)
        assert f"{BLOG}/posts/5" in left["text"] + (left.get("link_attachment_url") or "")
        assert len([method for method, _path, _params in fake.requests if method == "DELETE"]) == 1
