"""The way back on Mastodon, end to end: bridge posts an entry to the fake Mastodon (tests/mastodon_fake, its
context endpoint proven against real recordings in tests/test_mastodon_conformance.py), other accounts reply,
like and boost through the API, and `bridge reactions refresh` writes what the writer's site shows.
"""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import time
from urllib.parse import urlsplit

import pytest

from bridge.reactions.files import document_name
from bridge.state import State
from tests.reactions_helpers import Api, Blog, flatten
from tests.test_daemon import start_daemon, stop, wait_for
from tests.test_mastodon_fake import fake  # noqa: F401  (the fake, started and checked for its own errors)


@pytest.fixture
def blog(tmp_path, feed_server, fake):
    return Blog(tmp_path, feed_server, fake.url, fake.add_account("writer", display_name="The Writer"))


def test_replies_by_others_come_back_threaded_with_counts(blog, fake):
    link, root = blog.post("/posts/bridges", "On bridges")
    api = Api(fake.url)
    alice = fake.add_account("alice", display_name="Alice", avatar="https://avatars.example/alice.png")
    bob = fake.add_account("bob", display_name="Bob")
    carol = fake.add_account("carol")
    first = api.reply(alice, root, "@writer Lovely bridges!")
    api.reply(bob, first["id"], "@alice agreed, and <b>bold</b> words stay text")
    api.reply(blog.token, first["id"], "@alice thank you")  # the writer's own answer is part of the thread
    api.reply(carol, root, "@writer another view")
    for token in (alice, bob, carol):
        api.favourite(token, root)
    api.reblog(bob, root)
    api.reblog(carol, root)

    blog.refresh(link)
    document = blog.document(link)
    assert document["schema"] == "bridge.comments/1" and document["permalink"] == link
    assert document["counts"] == {"likes": 3, "reposts": 2, "quotes": 0, "replies": 4}
    [post] = document["posts"]
    assert post["platform"] == "mastodon" and post["url"] == f"{fake.url}/@writer/{root}"
    host = urlsplit(fake.url).hostname
    assert flatten(document["replies"]) == [
        (0, f"alice@{host}", "@writer Lovely bridges!"),
        (1, f"bob@{host}", "@alice agreed, and <b>bold</b> words stay text"),
        (1, f"writer@{host}", "@alice thank you"),
        (0, f"carol@{host}", "@writer another view"),
    ]
    alice_reply = document["replies"][0]
    assert alice_reply["author"]["name"] == "Alice"
    assert alice_reply["author"]["avatar"] == "https://avatars.example/alice.png"
    assert alice_reply["url"] == f"{fake.url}/@alice/{first['id']}"
    # the fake's default avatar is plain http: never put on the page
    assert document["replies"][1]["author"]["avatar"] is None
    # the no-JavaScript fragment lists the same replies, as links to them
    fragment = blog.fragment(link)
    assert fragment.count("<li") == 4 + 1 and f'href="{alice_reply["url"]}"' in fragment
    assert "&lt;b&gt;bold&lt;/b&gt;" in fragment and "<b>" not in fragment
    assert "3 likes · 2 reposts · 4 replies" in fragment
    # the widget's files are written next to the documents, readable by the web server
    for name in ("bridge-comments.js", "bridge-comments.css"):
        assert stat.S_IMODE(os.stat(blog.comments_dir / name).st_mode) == 0o644
    # the syndication file names the remote post and the comments files
    syndication = json.loads(blog.syndication_file.read_text())
    assert syndication[link]["posts"][0]["url"] == post["url"]
    assert syndication[link]["comments"]["json"].endswith(".json")
    # `bridge reactions` and `status` read the same back
    listed = json.loads(blog.bridge("reactions", "--json").stdout)
    assert listed[link]["counts"] == document["counts"]
    status = json.loads(blog.bridge("status", "--json").stdout)
    assert status["accounts"][0]["reactions"] == {"posts": 1, "likes": 3, "reposts": 2, "quotes": 0, "replies": 4}
    assert "reactions: 3 likes, 2 reposts, 4 replies on 1 post" in blog.bridge("status").stdout


def test_deleted_private_and_noindex_replies_never_show(blog, fake):
    link, root = blog.post("/posts/privacy", "Privacy")
    api = Api(fake.url)
    alice = fake.add_account("alice")
    hidden_person = fake.add_account("quiet", noindex=True)
    dave = fake.add_account("dave")
    kept = api.reply(alice, root, "@writer public words")
    doomed = api.reply(alice, root, "@writer words I will take back")
    api.reply(dave, doomed["id"], "@alice an answer to words taken back")
    api.reply(alice, root, "@writer unlisted words", visibility="unlisted")
    followers_only = api.reply(alice, root, "@writer @dave for followers only", visibility="private")
    api.reply(dave, followers_only["id"], "@alice a public answer to a followers-only reply")
    api.reply(alice, root, "@writer a direct message", visibility="direct")
    api.reply(hidden_person, root, "@writer please do not index me")
    api.reply(dave, kept["id"], "@alice fine")

    blog.refresh(link)
    texts = [text for _, _, text in flatten(blog.document(link)["replies"])]
    assert texts == ["@writer public words", "@alice fine", "@writer words I will take back",
                     "@alice an answer to words taken back", "@writer unlisted words"]
    # the writer's token sees the followers-only and direct replies; they are not kept at all
    with State.open_readonly(blog.state_path) as state:
        [thread] = state.reaction_threads(entry_link=link)
    assert {reply["visibility"] for reply in thread["replies"]} == {"public", "unlisted"}
    assert not any("index me" in reply["text"] for reply in thread["replies"])  # the noindex author's: not kept

    api.delete(alice, doomed["id"])
    blog.refresh(link)
    texts = [text for _, _, text in flatten(blog.document(link)["replies"])]
    assert texts == ["@writer public words", "@alice fine", "@writer unlisted words"]
    assert "taken back" not in blog.fragment(link)


def test_hide_and_block_apply_to_the_site_and_can_be_undone(blog, fake):
    link, root = blog.post("/posts/manners", "Manners")
    api = Api(fake.url)
    alice, troll = fake.add_account("alice"), fake.add_account("troll")
    rude = api.reply(alice, root, "@writer something rude")
    api.reply(alice, rude["id"], "@writer and more below it")
    api.reply(alice, root, "@writer something kind")
    api.reply(troll, root, "@writer spam spam")
    blog.refresh(link)
    assert len(flatten(blog.document(link)["replies"])) == 4
    host = urlsplit(fake.url).hostname

    hide = blog.bridge("reactions", "hide", rude["url"])
    assert hide.returncode == 0, hide.stderr
    block = blog.bridge("reactions", "block", f"@Troll@{host}")  # any case, with or without the leading @
    assert block.returncode == 0, block.stderr
    shown = [text for _, _, text in flatten(blog.document(link)["replies"])]
    assert shown == ["@writer something kind"]  # applied at once, without reading anything anew
    assert "rude" not in blog.fragment(link) and "spam" not in blog.fragment(link)
    blog.refresh(link)  # and kept through the next read
    assert [text for _, _, text in flatten(blog.document(link)["replies"])] == ["@writer something kind"]

    assert blog.bridge("reactions", "unhide", rude["url"]).returncode == 0
    assert blog.bridge("reactions", "unblock", f"troll@{host}").returncode == 0
    assert len(flatten(blog.document(link)["replies"])) == 4

    bad = blog.bridge("reactions", "hide", "javascript:alert(1)")
    assert bad.returncode == 2 and "is not a reply's address" in bad.stderr


def test_a_deleted_post_is_read_no_more_and_leaves_no_reply_link(blog, fake):
    link, root = blog.post("/posts/gone", "Gone")
    api = Api(fake.url)
    api.reply(fake.add_account("alice"), root, "@writer hello")
    blog.refresh(link)
    assert blog.document(link)["counts"]["replies"] == 1
    api.delete(blog.token, root)
    run = blog.refresh(link)
    assert "1 deleted" in run.stdout
    document = blog.document(link)
    assert document["posts"] == [] and document["replies"] == []
    before = len(fake.requests("status_context"))
    blog.bridge("reactions", "refresh")  # not due any more, ever
    assert len(fake.requests("status_context")) == before


def test_a_failing_server_is_reported_and_the_last_read_stays(blog, fake):
    link, root = blog.post("/posts/flaky", "Flaky")
    Api(fake.url).reply(fake.add_account("alice"), root, "@writer still here")
    blog.refresh(link)
    fake.inject("status_context", 503, times=5)
    run = blog.bridge("reactions", "refresh", "--entry", link)
    assert run.returncode == 1 and "HTTP 503" in run.stderr
    assert [text for _, _, text in flatten(blog.document(link)["replies"])] == ["@writer still here"]


def test_in_the_service_a_stuck_reactions_read_never_delays_a_post(tmp_path, feed_server, fake):
    """`bridge run`: reading reactions is a job of its own. While it hangs on a slow server, a new entry is
    posted on time and the syndication file names it; the reply read later shows up on the site."""
    blog = Blog(tmp_path, feed_server, fake.url, fake.add_account("writer"),
                settings='interval = "1s"\ndelivery_interval = "1s"\ntotal_timeout = "30s"')
    link, root = blog.post("/posts/old", "Old")
    Api(fake.url).reply(fake.add_account("alice"), root, "@writer a reply to read")
    with sqlite3.connect(blog.state_path) as db:  # posted an hour ago: its first read is due
        db.execute("UPDATE deliveries SET posted_at = posted_at - 3600")
    fake.inject(f"GET /api/v1/statuses/{root}/context", "slow", times=1, seconds=12)
    process = start_daemon(blog.config, blog.env())
    try:
        wait_for(lambda: fake.requests("status_get"), what="the reactions job's first read")
        started = time.monotonic()
        blog.serve(("/posts/new", "New"), ("/posts/old", "Old"))
        new_link = "http://blog.example.com/posts/new"
        wait_for(lambda: any(new_link in s["text"] for s in fake.statuses("writer")), timeout=10, what="the new post")
        assert time.monotonic() - started < 10  # posted while the read was still waiting on the server
        wait_for(lambda: blog.syndication_file.exists() and new_link in json.loads(blog.syndication_file.read_text()),
                 timeout=10, what="the syndication file naming the new post")
        wait_for(lambda: (blog.comments_dir / f"{document_name(link)}.json").exists()
                 and blog.document(link)["counts"]["replies"] == 1, timeout=30, what="the read reply on the site")
    finally:
        code, err = stop(process)
    assert code == 0, err


def test_syndication_command_and_file_list_each_entrys_posts(blog, fake):
    link, root = blog.post("/posts/links", "Links")
    text = blog.bridge("syndication")
    assert text.returncode == 0 and text.stdout.splitlines() == [link, f"  mastodon masto {fake.url}/@writer/{root}"]
    data = json.loads(blog.bridge("syndication", "--json", "--feed", "blog").stdout)
    assert data == json.loads(blog.syndication_file.read_text())  # `bridge poll` wrote the file after posting
    [post] = data[link]["posts"]
    assert data[link]["title"] == "Links" and post["id"] == root and post["posted_at"].endswith("Z")
    assert stat.S_IMODE(os.stat(blog.syndication_file).st_mode) == 0o644
    unknown = blog.bridge("syndication", "--feed", "nope")
    assert unknown.returncode == 2 and "no feed named 'nope'" in unknown.stderr
    listed = blog.bridge("reactions", "--entry", link)
    assert listed.returncode == 0 and "0 likes · 0 reposts · 0 replies (not read yet)" in listed.stdout
    assert f"Mastodon: {fake.url}/@writer/{root}" in listed.stdout


def test_a_token_that_may_not_read_falls_back_to_public_reads_and_429_waits_for_the_reset(tmp_path, feed_server, fake):
    blog = Blog(tmp_path, feed_server, fake.url, fake.add_account("writer", ["write:statuses", "write:media"]))
    link, root = blog.post("/posts/scopes", "Scopes")
    Api(fake.url).reply(fake.add_account("alice"), root, "@writer public words")
    blog.refresh(link)
    assert [text for _, _, text in flatten(blog.document(link)["replies"])] == ["@writer public words"]
    # refused with the token, read without; the context then without asking again
    assert [entry["status"] for entry in fake.requests("status_get")][-2:] == [403, 200]
    assert [entry["status"] for entry in fake.requests("status_context")] == [200]

    fake.inject("status_get", 429, times=1)
    run = blog.bridge("reactions", "refresh", "--entry", link)
    assert run.returncode == 1 and "rate limited" in run.stderr
    with State.open_readonly(blog.state_path) as state:
        [thread] = state.reaction_threads(entry_link=link)
    # read again when the server's 5-minute window ends (X-RateLimit-Reset), not before
    assert time.time() < thread["next_refresh_at"] <= time.time() + 301 and "429" in thread["last_error"]
    assert thread["counts"] is not None  # the last good read stays


def test_an_unwritable_comments_folder_is_one_clear_error_and_the_post_still_goes_out(blog, fake):
    blog.comments_dir.parent.mkdir(parents=True)
    blog.comments_dir.write_text("not a folder")  # where the folder should be
    blog.serve()
    assert blog.bridge("poll").returncode == 1
    blog.serve(("/posts/stuck", "Stuck"))
    run = blog.bridge("poll", "--feed", "blog")
    assert run.returncode == 1 and "posted 1, failed 0" in run.stdout
    errors = [line for line in run.stderr.splitlines() if line.startswith("error:")]
    assert errors == [f"error: cannot write {blog.comments_dir}/bridge-comments.js: Not a directory; "
                      f"make sure {blog.comments_dir} is a folder bridge may write to"]
    assert len(fake.statuses("writer")) == 1  # posted all the same
    assert "http://blog.example.com/posts/stuck" in json.loads(blog.syndication_file.read_text())
