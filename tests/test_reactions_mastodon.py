"""The way back on Mastodon, end to end: bridge posts an entry to the fake Mastodon (tests/mastodon_fake, its
context endpoint proven against real recordings in tests/test_mastodon_conformance.py), other accounts reply,
like and boost through the API, and `bridge reactions refresh` writes what the writer's site shows.
"""

from __future__ import annotations

import json
import os
import stat
from urllib.parse import urlsplit

import pytest

from bridge.state import State
from tests.mastodon_fake import MastodonFake
from tests.reactions_helpers import Api, Blog, flatten


@pytest.fixture
def fake():
    server = MastodonFake()
    server.start()
    yield server
    errors = server.errors
    server.stop()
    assert not errors, errors[0]["exception"]


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
