"""Threads for long notes, posted by `bridge poll` processes: on the Mastodon fake (an in_reply_to_id chain) and on
the real PDS (reply refs to the root and the parent, with their CIDs); SIGKILLed around the second part and run
again: resumed, no part twice; deleted with the blog: every part gone (of a thread that failed part way, the parts
that were posted); edited: the changed part only."""

from __future__ import annotations

import contextlib
import dataclasses
import html
import json
import re
import signal
import subprocess
import time
from datetime import datetime, timedelta, timezone

import httpx
import pytest

from bridge.state import State
from tests.mastodon_blog import BLOG, mastodon_blog, run_bridge, write_blog_config
from tests.test_crash_matrix import list_posts
from tests.test_pipeline import rss

START = datetime.now(timezone.utc) - timedelta(days=1)
RECHECK = 1.0  # [bridge] delete_recheck here


def sentences(count: int, *, changed: int | None = None) -> list[str]:
    return [f"Sentence {n} tells a little more of the walk by the river{' (corrected)' if n == changed else ''}, "
            "with the herons, the reeds and the old mill in the morning light." for n in range(1, count + 1)]


def feed(server, *, note: list[str] | None) -> None:
    """An article (baseline) and, when given, an untitled long note after it."""
    items = [{"guid": "article", "link": f"{BLOG}/posts/0", "title": "An article", "date": START}]
    if note is not None:
        body = html.escape(f"<p>{' '.join(note)}</p>")
        items.insert(0, {"guid": "note", "link": f"{BLOG}/posts/1", "title": "", "date": START + timedelta(hours=1),
                         "description": body})
    server.route("/feed.xml", rss(items, link=f"{BLOG}/"), content_type="application/rss+xml")


def words(texts: list[str]) -> list[str]:
    return " ".join(texts).split()


def delete_the_note(server, bridge) -> subprocess.CompletedProcess:
    """The note leaves the feed and its page answers 410: the poll that reads the feed watches it, the next one
    (delete_recheck later) confirms it and deletes its posts. That poll is returned."""
    server.gone("/posts/1")
    feed(server, note=None)
    assert bridge("poll", "--feed", "blog").returncode == 0
    time.sleep(RECHECK + 0.1)
    done = bridge("poll", "--feed", "blog")
    assert done.returncode == 0, done.stderr
    return done


# --- Mastodon -------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def long_notes_blog(tmp_path, feed_server, account_settings: str = ""):
    """The blog on the Mastodon fake, its long notes threaded, following deletes; `account_settings`: more TOML
    lines for the account."""
    with mastodon_blog(tmp_path, feed_server, "thread_long_notes = true\nthread_numbering = true\n"
                       "posts_per_hour = 1000000\nfollow_deletes = true\nedit_on_update = true\n" + account_settings,
                       f'delete_recheck = "{RECHECK:g}s"') as blog:
        feed(blog.server, note=None)
        assert blog.bridge("poll").returncode == 0  # baseline
        yield blog


@pytest.fixture
def masto(tmp_path, feed_server):
    with long_notes_blog(tmp_path, feed_server) as blog:
        yield blog


def thread(blog) -> list[dict]:
    return [status for status in blog.mastodon.statuses("alice")]


def assert_chain(statuses: list[dict]) -> None:
    assert statuses[0]["in_reply_to_id"] is None and f"{BLOG}/posts/1" in statuses[0]["text"]
    for parent, reply in zip(statuses, statuses[1:]):
        assert reply["in_reply_to_id"] == parent["id"]
    total = len(statuses)
    assert [f"({n}/{total})" in status["text"] for n, status in enumerate(statuses, start=1)] == [True] * total


def test_a_long_note_becomes_a_thread_of_replies_on_mastodon(masto):
    note = sentences(14)
    feed(masto.server, note=note)
    done = masto.bridge("poll", "--feed", "blog")
    assert done.returncode == 0, done.stderr
    statuses = thread(masto)
    assert len(statuses) >= 3
    assert_chain(statuses)
    texts = [status["text"].replace(f"{BLOG}/posts/1", "") for status in statuses]
    assert [word for word in words(texts) if not re.fullmatch(r"\(\d+/\d+\)", word)] == words(note)  # all, in order
    assert all(len(status["text"]) <= 500 for status in statuses)
    assert {status["visibility"] for status in statuses} == {"public"}
    with State.open_readonly(masto.state_path) as state:
        [row] = [row for row in state.deliveries() if row.entry_key == "note"]
        assert row.state == "posted" and row.remote_id == statuses[0]["id"]
        assert [part["remote_id"] for part in state.thread_parts(row.id)] == [s["id"] for s in statuses]
    # once: a later poll posts nothing more
    assert masto.bridge("poll", "--feed", "blog").returncode == 0
    assert len(thread(masto)) == len(statuses)


CRASHES = [("thread-part-2-sent", 2), ("thread-part-2-saved", 2), ("thread-part-1-sent", 1)]  # (point, parts out)


@pytest.mark.parametrize("point, made", CRASHES)
def test_killed_after_the_second_part_the_thread_resumes_and_no_part_is_posted_twice(masto, point, made):
    feed(masto.server, note=sentences(14))
    killed = masto.bridge("poll", "--feed", "blog", BRIDGE_TEST_CRASH_AT=point)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert len(thread(masto)) == made
    resumed = masto.bridge("poll", "--feed", "blog")
    assert resumed.returncode == 0, resumed.stderr
    statuses = thread(masto)
    assert len(statuses) >= 3 and len({status["text"] for status in statuses}) == len(statuses)
    assert_chain(statuses)
    creates = masto.mastodon.requests("status_create")
    assert len({request["headers"].get("idempotency-key") for request in creates}) == len(statuses)


def test_a_token_that_may_read_finds_the_part_a_crash_left_unsaved_and_sends_nothing_again(masto):
    reader = dataclasses.replace(masto, token=masto.mastodon.add_account(
        "reader", ["write:statuses", "write:media", "read:accounts", "read:statuses"]))
    feed(reader.server, note=sentences(14))
    killed = reader.bridge("poll", "--feed", "blog", BRIDGE_TEST_CRASH_AT="thread-part-2-sent")
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    resumed = reader.bridge("poll", "--feed", "blog")
    assert resumed.returncode == 0, resumed.stderr
    assert "part 2 of the thread of" in resumed.stderr and "was already posted" in resumed.stderr
    statuses = reader.mastodon.statuses("reader")
    assert_chain(statuses)
    assert len(reader.mastodon.requests("status_create")) == len(statuses)  # looked for, not sent again


def test_a_deleted_note_loses_every_part_of_its_thread(masto):
    feed(masto.server, note=sentences(14))
    assert masto.bridge("poll", "--feed", "blog").returncode == 0
    posted = len(thread(masto))
    assert posted >= 3
    delete_the_note(masto.server, masto.bridge)
    assert thread(masto) == []
    assert len(masto.mastodon.requests("status_delete")) == posted


def test_a_deleted_note_whose_thread_failed_part_way_loses_the_parts_that_were_posted(tmp_path, feed_server):
    with long_notes_blog(tmp_path, feed_server, "max_attempts = 1") as blog:
        feed(blog.server, note=sentences(14))
        killed = blog.bridge("poll", "--feed", "blog", BRIDGE_TEST_CRASH_AT="thread-part-2-saved")
        assert killed.returncode == -signal.SIGKILL, killed.stderr
        blog.mastodon.inject("status_create", 503, times=None)  # part 3 never goes out: given up (max_attempts = 1)
        blog.bridge("poll", "--feed", "blog")
        with State.open_readonly(blog.state_path) as state:
            [row] = [row for row in state.deliveries() if row.entry_key == "note"]
            assert row.state == "failed" and len(state.thread_parts(row.id)) == 2
        posted = thread(blog)
        assert len(posted) == 2

        blog.mastodon.clear_faults()
        done = delete_the_note(blog.server, blog.bridge)
        assert thread(blog) == []
        deleted = [request["path"].rsplit("/", 1)[-1] for request in blog.mastodon.requests("status_delete")]
        assert deleted == [posted[1]["id"], posted[0]["id"]]  # the reply first, as for a whole thread
        assert f"deleted masto: {posted[0]['url']}" in done.stdout + done.stderr
        with State.open_readonly(blog.state_path) as state:
            [row] = [row for row in state.deliveries() if row.entry_key == "note"]
            assert row.state == "deleted"


def test_an_edited_note_edits_only_the_part_that_changed(masto):
    feed(masto.server, note=sentences(14))
    assert masto.bridge("poll", "--feed", "blog").returncode == 0
    before = thread(masto)
    feed(masto.server, note=sentences(14, changed=13))  # a fix near the end: the last part
    done = masto.bridge("poll", "--feed", "blog")
    assert done.returncode == 0, done.stderr
    after = thread(masto)
    assert [status["id"] for status in after] == [status["id"] for status in before]
    changed = [status for old, status in zip(before, after) if old["text"] != status["text"]]
    assert len(changed) == 1 and "(corrected)" in changed[0]["text"]
    assert len(masto.mastodon.requests("status_edit")) == 1


def test_a_short_note_that_grows_long_stays_one_post_when_edited(masto):
    feed(masto.server, note=sentences(2))
    assert masto.bridge("poll", "--feed", "blog").returncode == 0
    [before] = thread(masto)
    feed(masto.server, note=sentences(14))
    done = masto.bridge("poll", "--feed", "blog")
    assert done.returncode == 0, done.stderr
    [after] = thread(masto)  # edited in place; no replies follow an edit
    assert after["id"] == before["id"] and after["text"] != before["text"] and "Sentence 3 " in after["text"]
    assert len(after["text"]) <= 500


# --- the real PDS -------------------------------------------------------------------------------------------------


def bluesky_blog(tmp_path, feed_server, pds, name: str, *, follow_deletes: bool = False):
    account = pds.create_account(name)
    config = write_blog_config(tmp_path, feed_server, "sky", f'type = "bluesky"\nhandle = "{account.handle}"\n'
                               f'service = "{pds.url}"\napp_password = {{ env = "BRIDGE_TEST_SKY" }}\n'
                               f"posts_per_hour = 1000000\nthread_long_notes = true\nfollow_deletes = {str(follow_deletes).lower()}",
                               f'delete_recheck = "{RECHECK:g}s"')

    def run(*args: str, **env: str) -> subprocess.CompletedProcess:
        return run_bridge(config, feed_server, *args, BRIDGE_TEST_SKY=account.app_password, **env)

    feed(feed_server, note=None)
    assert run("poll").returncode == 0  # baseline
    return account, run


def bluesky_thread(pds, did: str) -> list[dict]:
    """The account's posts, oldest first (rkeys are TIDs: they sort by time)."""
    return sorted(list_posts(pds, did), key=lambda record: record["uri"].rsplit("/", 1)[1])


def assert_reply_refs(records: list[dict]) -> None:
    root = records[0]
    assert "reply" not in root["value"] and root["value"]["embed"]["external"]["uri"] == f"{BLOG}/posts/1"
    for parent, record in zip(records, records[1:]):
        reply = record["value"]["reply"]
        assert reply["root"] == {"uri": root["uri"], "cid": root["cid"]}
        assert reply["parent"] == {"uri": parent["uri"], "cid": parent["cid"]}


def test_a_long_note_becomes_a_thread_on_the_real_pds(tmp_path, feed_server, pds):
    account, run = bluesky_blog(tmp_path, feed_server, pds, "longnote")
    note = sentences(8)
    feed(feed_server, note=note)
    done = run("poll", "--feed", "blog")
    assert done.returncode == 0, done.stderr
    records = bluesky_thread(pds, account.did)
    assert len(records) >= 3
    assert_reply_refs(records)
    assert sorted(words([r["value"]["text"] for r in records])) == sorted(words(note))
    thread_view = httpx.get(f"{pds.url}/xrpc/com.atproto.repo.getRecord", timeout=10,
                            params={"repo": account.did, "collection": "app.bsky.feed.post",
                                    "rkey": records[-1]["uri"].rsplit("/", 1)[1]})
    assert thread_view.status_code == 200


@pytest.mark.parametrize("point, made", CRASHES)
def test_killed_after_the_second_part_the_pds_thread_resumes_once(tmp_path, feed_server, pds, point, made):
    account, run = bluesky_blog(tmp_path, feed_server, pds, f"resume{CRASHES.index((point, made))}")
    feed(feed_server, note=sentences(8))
    killed = run("poll", "--feed", "blog", BRIDGE_TEST_CRASH_AT=point)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert len(list_posts(pds, account.did)) == made
    resumed = run("poll", "--feed", "blog")
    assert resumed.returncode == 0, resumed.stderr
    records = bluesky_thread(pds, account.did)
    assert len(records) >= 3 and len({r["value"]["text"] for r in records}) == len(records)
    assert_reply_refs(records)
    with State.open_readonly(tmp_path / "state.sqlite3") as state:
        [row] = [row for row in state.deliveries() if row.entry_key == "note"]
        assert row.state == "posted" and json.dumps(row.payload).count('"rkey"') == len(records) - 1


def test_a_deleted_note_loses_every_part_of_its_thread_on_the_real_pds(tmp_path, feed_server, pds):
    account, run = bluesky_blog(tmp_path, feed_server, pds, "gonenote", follow_deletes=True)
    feed(feed_server, note=sentences(8))
    assert run("poll", "--feed", "blog").returncode == 0
    assert len(list_posts(pds, account.did)) >= 3
    done = delete_the_note(feed_server, run)
    assert "deleted sky: " in done.stdout
    assert list_posts(pds, account.did) == []


# --- a real Nostr relay -------------------------------------------------------------------------------------------


def test_a_long_note_becomes_a_nip10_thread_on_the_relay_once_even_after_a_crash(tmp_path, feed_server, nostr_relay,
                                                                                   monkeypatch):
    import nostr_sdk

    from tests.test_nostr import Writer

    writer = Writer(tmp_path, feed_server, [nostr_relay.url], thread_long_notes=True, thread_numbering=True)
    feed_server.route("/feed", rss([{"guid": "article", "link": f"{BLOG}/posts/0", "title": "An article", "date": START}]))
    assert writer.poll().returncode == 0  # baseline
    note = sentences(16)
    feed_server.route("/feed", rss([
        {"guid": "note", "link": f"{BLOG}/posts/1", "title": "", "date": START + timedelta(hours=1),
         "description": html.escape(f"<p>{' '.join(note)}</p>")},
        {"guid": "article", "link": f"{BLOG}/posts/0", "title": "An article", "date": START}]))
    monkeypatch.setenv("BRIDGE_TEST_CRASH_AT", "after-remote-post")  # every part out, `posted` not yet saved
    killed = writer.poll()
    monkeypatch.delenv("BRIDGE_TEST_CRASH_AT")
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    again = writer.poll()
    assert again.returncode == 0, again.stderr
    notes = sorted(nostr_relay.events(kinds=[1], authors=[writer.pubkey]), key=lambda event: event["created_at"])
    root, replies = notes[0], notes[1:]
    assert len(replies) >= 1 and f"{BLOG}/posts/1" in root["content"]
    assert all(nostr_sdk.Event.from_json(json.dumps(event)).verify() for event in notes)
    for parent, reply in zip(notes, replies):
        e_tags = [tag for tag in reply["tags"] if tag[0] == "e"]
        expected = [["e", root["id"], "", "root"]] + ([["e", parent["id"], "", "reply"]] if parent is not root else [])
        assert e_tags == expected
        assert ["p", writer.pubkey] in reply["tags"]
    total = len(notes)
    assert [f"({n}/{total})" in event["content"] for n, event in enumerate(notes, start=1)] == [True] * total
