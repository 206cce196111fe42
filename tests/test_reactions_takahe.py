"""The way back on a real Takahē (tests/takahe_fixture.py), a Mastodon-API server nobody on this project wrote:
bridge posts an entry, other identities reply, like and boost, `bridge reactions refresh` reads it all back.

Takahē's context holds at most 50 descendants, needs a token (its `read` scope) and has no `noindex` (the noindex
case is proven on the fake, whose context is proven against real Mastodon recordings).
"""

from __future__ import annotations

import itertools
import os

import pytest

from bridge.state import State
from tests.reactions_helpers import Api, Blog, flatten
from tests.takahe_fixture import DOMAIN, TakaheServer

SCOPES = ["read", "write"]
_names = itertools.count()


def identity(takahe: TakaheServer, prefix: str):
    account = takahe.new_identity(f"{prefix}{os.getpid()}x{next(_names)}")
    return account, account.token(SCOPES)


@pytest.fixture
def blog(tmp_path, feed_server, takahe):
    writer, token = identity(takahe, "w")
    world = Blog(tmp_path, feed_server, takahe.url, token)
    world.writer = writer
    return world


def test_takahe_replies_by_others_threaded_counts_and_privacy(blog, takahe):
    link, root = blog.post("/posts/takahe", "On Takahē")
    api = Api(takahe.url)
    (alice, alice_token), (bob, bob_token) = identity(takahe, "a"), identity(takahe, "b")
    writer = f"@{blog.writer.acct}"
    first = api.reply(alice_token, root, f"{writer} lovely")
    api.reply(bob_token, first["id"], f"@{alice.acct} agreed <script>alert(1)</script>")
    api.reply(alice_token, root, f"{writer} unlisted thought", visibility="unlisted")
    api.reply(alice_token, root, f"{writer} followers only", visibility="private")
    api.reply(bob_token, root, f"{writer} a direct word", visibility="direct")
    doomed = api.reply(bob_token, root, f"{writer} I take this back")
    api.favourite(alice_token, root)
    api.favourite(bob_token, root)
    api.reblog(alice_token, root)

    blog.refresh(link)
    document = blog.document(link)
    assert document["counts"]["likes"] == 2 and document["counts"]["reposts"] == 1
    shown = f"@{blog.writer.username}"  # Takahē shows a local mention by its username
    assert flatten(document["replies"]) == [
        (0, f"{alice.username}@{DOMAIN}", f"{shown} lovely"),
        (1, f"{bob.username}@{DOMAIN}", f"@{alice.username} agreed <script>alert(1)</script>"),
        (0, f"{alice.username}@{DOMAIN}", f"{shown} unlisted thought"),
        (0, f"{bob.username}@{DOMAIN}", f"{shown} I take this back"),
    ]
    assert "<script>" not in blog.fragment(link) and "&lt;script&gt;" in blog.fragment(link)
    with State.open_readonly(blog.state_path) as state:
        [thread] = state.reaction_threads(entry_link=link)
    assert {reply["visibility"] for reply in thread["replies"]} == {"public", "unlisted"}

    api.delete(bob_token, doomed["id"])
    bob_reply = document["replies"][0]["replies"][0]
    assert blog.bridge("reactions", "hide", bob_reply["url"]).returncode == 0
    blog.refresh(link)
    assert [text for _, _, text in flatten(blog.document(link)["replies"])] == [
        f"{shown} lovely", f"{shown} unlisted thought"]
    assert blog.bridge("reactions", "block", alice.acct).returncode == 0
    assert blog.document(link)["replies"] == []
