"""Reading a Bluesky post's reactions back (bridge/platforms/bluesky/reactions.py) from a real AppView.

bridge posts through its own Bluesky target to the PDS of tests/appview_fixture.py; other accounts on the same
PDS reply, like, repost, quote, delete, hide and label themselves; the reference AppView (@atproto/bsky) indexes
it all from the PDS's firehose, and the gatherer reads it back over loopback like any logged-out reader would.
"""

from __future__ import annotations

import dataclasses
import json
import socket
import time

import pytest

from bridge.config import AccountConfig, parse_config, resolve_secret
from bridge.platforms.bluesky.account import DEFAULT_APPVIEW as DEFAULT_BLUESKY_APPVIEW
from bridge.errors import ReactionsError, ReactionsRateLimited, RemotePostGone
from bridge.platforms.bluesky.reactions import gather
from bridge.reactions.gatherer import HttpOptions, gatherer_for
from bridge.reactions.model import Reply, Thread
from bridge.state import State
from bridge.platforms.bluesky.target import BlueskyTarget
from tests.appview_fixture import AppViewServer, BskyActor, Ref
from tests.bluesky_helpers import byte_range, delivery, get_record
from tests.reactions_helpers import TOKEN_ENV, Blog, flatten

ACCOUNT = "bsky"
PASSWORD_ENV = "BRIDGE_TEST_APPVIEW_APP_PASSWORD"
HTTP = HttpOptions(user_agent="bridge-test (reactions)")


# --------------------------------------------------------------------------- wiring


@pytest.fixture
def settings(appview: AppViewServer, monkeypatch: pytest.MonkeyPatch):
    """The writer's account as a user configures it, reading reactions from the local AppView."""
    monkeypatch.setenv(PASSWORD_ENV, appview.bridge.app_password)
    config = parse_config({"accounts": {ACCOUNT: {
        "type": "bluesky", "handle": appview.bridge.handle, "service": appview.pds_url,
        "app_password": {"env": PASSWORD_ENV}, "appview": appview.appview_url}}})
    return config, config.accounts[ACCOUNT]


@pytest.fixture
def posted(appview: AppViewServer, settings, tmp_path):
    """Posts as bridge does (its Bluesky target) and returns (delivery row as stored once posted, its Ref)."""
    config, account = settings
    state = State.open(tmp_path / "state.sqlite3")
    target = BlueskyTarget(ACCOUNT, account, resolve_secret(config, ACCOUNT), state)

    def post(text: str):
        row = delivery(ACCOUNT)
        published = target.publish(row, {"record": {"text": text, "langs": ["en"]}})
        row = dataclasses.replace(row, state="posted", remote_id=published.remote_id, remote_url=published.url)
        return row, Ref(published.remote_id, get_record(appview.pds_url, published.remote_id)["cid"])

    yield post
    state.close()


@pytest.fixture(scope="module")
def people(appview: AppViewServer) -> dict[str, BskyActor]:
    """Readers who react: each with a display name and an avatar, one of them asking not to be shown."""
    return {
        "ada": appview.new_account("ada", display_name="Ada Lovelace"),
        "bob": appview.new_account("bob", display_name="Bob"),
        "shy": appview.new_account("shy", display_name="Shy Person"),
    }


@pytest.fixture(scope="module")
def writer(appview: AppViewServer) -> BskyActor:
    """The writer's account, acting by hand on the platform (hiding a reply, setting a threadgate)."""
    return appview.actor(appview.bridge)


def gathered(account: AccountConfig, row) -> Thread:
    return gather(account, None, row, deadline=time.monotonic() + 30, http=HTTP)


def by_text(thread: Thread) -> dict[str, Reply]:
    return {reply.text: reply for reply in thread.replies}


def replies_counted(n: int):
    return lambda thread: thread["post"].get("replyCount") == n


# --------------------------------------------------------------------------- the thread


def test_replies_come_back_threaded_with_authors_and_counts(appview, settings, posted, people):
    _, account = settings
    row, root = posted("A new article: replies come home")
    ada, bob = people["ada"], people["bob"]
    text = "Lovely piece, see https://example.org/more"
    start, end = byte_range(text, "https://example.org/more")
    first = ada.reply(root, text, langs=["de"], facets=[{
        "index": {"byteStart": start, "byteEnd": end},
        "features": [{"$type": "app.bsky.richtext.facet#link", "uri": "https://example.org/more"}]}])
    second = bob.reply(first, "Agreed with Ada", root=root, langs=["en"])
    ada.like(root)
    bob.like(root)
    bob.repost(root)
    ada.quote(root, "Everyone should read this")
    appview.wait_thread(root.uri, lambda t: t["post"].get("likeCount") == 2 and t["post"].get("quoteCount") == 1
                        and len(t.get("replies") or []) == 1 and t["replies"][0].get("replies"))

    thread = gathered(account, row)

    assert thread.root_id == root.uri and thread.root_url == row.remote_url
    assert (thread.counts.likes, thread.counts.reposts, thread.counts.quotes, thread.counts.replies) == (2, 1, 1, 1)
    assert [reply.remote_id for reply in thread.replies] == [first.uri, second.uri]  # parents first
    top, nested = thread.replies
    assert top.parent_id == root.uri and nested.parent_id == first.uri
    assert top.platform == "bluesky" and top.visibility == "public"
    assert top.text == text and top.language == "de" and nested.language == "en"
    assert top.content_html == ('Lovely piece, see <a href="https://example.org/more" rel="nofollow noopener ugc">'
                                'https://example.org/more</a>')
    assert top.author.handle == ada.handle and top.author.name == "Ada Lovelace" and top.author.id == ada.did
    assert top.author.profile_url == f"https://bsky.app/profile/{ada.handle}"
    assert top.url == f"https://bsky.app/profile/{ada.handle}/post/{first.uri.rsplit('/', 1)[1]}"
    assert top.author.avatar_url and ada.did in top.author.avatar_url  # the AppView's image URL for her avatar
    assert nested.author.handle == bob.handle and not nested.author.noindex
    assert top.created_at.startswith(time.strftime("%Y-", time.gmtime()))
    assert thread.hidden_ids == frozenset()


def test_the_registry_names_the_bluesky_gatherer():
    found = gatherer_for("bluesky")
    assert found is not None and found.__qualname__ == f"lazy({gather.__module__}.{gather.__name__})"


def test_a_deleted_reply_disappears_at_the_next_refresh(appview, settings, posted, people):
    _, account = settings
    row, root = posted("A post whose reply will be deleted")
    keep = people["bob"].reply(root, "I stay")
    gone = people["ada"].reply(root, "I will think better of this")
    appview.wait_thread(root.uri, replies_counted(2))
    assert set(by_text(gathered(account, row))) == {"I stay", "I will think better of this"}

    people["ada"].delete(gone.uri)
    appview.wait_thread(root.uri, replies_counted(1))

    thread = gathered(account, row)
    assert [reply.remote_id for reply in thread.replies] == [keep.uri]
    assert thread.counts.replies == 1


def test_a_reply_the_writer_hid_stays_hidden_with_what_is_below_it(appview, settings, posted, people, writer):
    _, account = settings
    row, root = posted("A post with a reply the writer hides")
    rude = people["bob"].reply(root, "Something rude")
    below = people["ada"].reply(rude, "A reply to the rude one", root=root)
    fine = people["ada"].reply(root, "Something kind")
    writer.threadgate(root, hidden_replies=[rude.uri])
    appview.wait_thread(root.uri, lambda t: (t["post"].get("threadgate") or {}).get("record", {}).get("hiddenReplies"))

    thread = gathered(account, row)

    assert [reply.remote_id for reply in thread.replies] == [fine.uri]
    assert rude.uri in thread.hidden_ids
    assert below.uri not in {reply.remote_id for reply in thread.replies}


def test_a_reply_the_threadgate_refused_never_comes_back(appview, settings, posted, people, writer):
    _, account = settings
    row, root = posted("Nobody may reply to this one")
    writer.threadgate(root, allow=[])  # "nobody can reply"
    appview.sync()
    people["bob"].reply(root, "Replying anyway")  # the PDS stores it; the AppView knows the gate refuses it
    appview.wait_thread(root.uri, lambda t: (t["post"].get("threadgate") or {}).get("record") is not None)

    thread = gathered(account, row)

    assert thread.replies == []


def test_an_author_who_asked_not_to_be_shown_to_logged_out_readers_is_left_out(appview, settings, posted, people):
    _, account = settings
    shy = people["shy"]
    shy.ask_not_to_be_indexed("Shy Person")
    appview.sync()
    row, root = posted("A post a shy person answers")
    shy_reply = shy.reply(root, "Please do not show me anywhere")
    answer = people["bob"].reply(shy_reply, "Answering the shy person", root=root)
    people["ada"].reply(root, "Ada is fine being shown")
    appview.wait_thread(root.uri, replies_counted(2))

    thread = gathered(account, row)

    shown = [reply for reply in thread.replies if not reply.author.noindex]
    assert {reply.text for reply in shown} >= {"Ada is fine being shown"}
    for reply in thread.replies:  # nothing of the shy person's is kept: not their words, name, handle or avatar
        if reply.remote_id == shy_reply.uri:
            assert reply.author.noindex and reply.text == "" and reply.content_html == "" and reply.url is None
            assert reply.author.handle == "" and reply.author.name == "" and reply.author.avatar_url is None
    assert "Please do not show me anywhere" not in repr(thread)
    assert shy.handle not in repr(thread)
    assert shy.did not in repr([reply.author for reply in thread.replies])  # only in its at:// id, for the tree
    # A reply below theirs keeps its place in the tree (its parent is the placeholder, if the AppView shows it).
    below = [reply for reply in thread.replies if reply.remote_id == answer.uri]
    assert all(reply.parent_id == shy_reply.uri for reply in below)


def test_hostile_reply_text_and_links_come_back_as_text(appview, settings, posted, people):
    _, account = settings
    row, root = posted("A post that gets a hostile reply")
    text = "<script>alert(1)</script> click me \u202eevil & <img src=x onerror=alert(2)>"
    start, end = byte_range(text, "click me")
    people["bob"].reply(root, text, facets=[{
        "index": {"byteStart": start, "byteEnd": end},
        "features": [{"$type": "app.bsky.richtext.facet#link", "uri": "javascript:alert(3)"}]}])
    appview.wait_thread(root.uri, replies_counted(1))

    (reply,) = gathered(account, row).replies

    assert reply.text == text  # the words as written: the comments document sanitizes when it is written
    assert "<script>" not in reply.content_html and "<img" not in reply.content_html
    assert "javascript:" not in reply.content_html and "<a " not in reply.content_html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in reply.content_html


def test_replies_by_someone_the_writer_blocked_on_bluesky_are_not_gathered(appview, settings, posted, writer):
    _, account = settings
    row, root = posted("A post answered by someone the writer then blocks")
    troll, ada = appview.new_account("troll"), appview.new_account("ada2")
    unwanted = troll.reply(root, "Unwanted")
    ada.reply(unwanted, "Answering the unwanted one", root=root)
    kept = ada.reply(root, "A welcome reply")
    appview.wait_thread(root.uri, replies_counted(2))
    writer.create("app.bsky.graph.block", {"subject": troll.did, "createdAt": time.strftime("%Y-%m-%dT%H:%M:%SZ")})
    appview.wait_thread(root.uri, lambda t: len(t.get("replies") or []) == 1)

    assert [reply.remote_id for reply in gathered(account, row).replies] == [kept.uri]


def test_blocked_and_deleted_nodes_in_an_answer_are_skipped_with_what_is_below_them(appview, settings, posted, people,
                                                                                    feed_server):
    """The AppView's #blockedPost and #notFoundPost nodes (app.bsky.feed.defs) carry no post: nothing to show. The
    answer is the real AppView's, with such nodes put in the places a block or a deletion leaves them."""
    _, account = settings
    row, root = posted("A post whose thread has holes")
    ok = people["ada"].reply(root, "A reply that is there")
    people["bob"].reply(ok, "An answer to it", root=root)
    answer = appview.wait_thread(root.uri,
                                 lambda t: len(t.get("replies") or []) == 1 and t["replies"][0].get("replies"))
    did = people["bob"].did
    answer["replies"].append({"$type": "app.bsky.feed.defs#blockedPost", "uri": f"at://{did}/app.bsky.feed.post/3kb",
                              "blocked": True, "author": {"did": did, "viewer": {"blockedBy": True}}})
    answer["replies"][0]["replies"].append({"$type": "app.bsky.feed.defs#notFoundPost",
                                            "uri": f"at://{did}/app.bsky.feed.post/3kn", "notFound": True})
    feed_server.route("/xrpc/app.bsky.feed.getPostThread", json.dumps({"thread": answer}),
                      content_type="application/json")
    served = account.model_copy(update={"appview": feed_server.base_url})

    thread = gathered(served, row)

    assert [reply.text for reply in thread.replies] == ["A reply that is there", "An answer to it"]
    [request] = feed_server.requests_for("/xrpc/app.bsky.feed.getPostThread")
    assert request.headers["user-agent"] == HTTP.user_agent  # bridge's user agent, as on every request it sends
    assert f"uri={root.uri.replace(':', '%3A').replace('/', '%2F')}" in request.path and "depth=1000" in request.path


# --------------------------------------------------------------------------- failures


def test_a_deleted_post_is_gone(appview, settings, posted, writer):
    _, account = settings
    row, root = posted("A post the writer deletes")
    appview.wait_thread(root.uri, lambda t: True)
    writer.delete(root.uri)
    appview.sync()

    with pytest.raises(RemotePostGone, match=root.uri):
        gathered(account, row)


def test_an_unreachable_appview_is_a_reactions_error_not_a_crash(settings):
    _, account = settings
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens here once the socket is closed
    dead = account.model_copy(update={"appview": f"http://127.0.0.1:{port}"})
    row = dataclasses.replace(delivery(ACCOUNT), state="posted", remote_id="at://did:plc:abc/app.bsky.feed.post/3k")

    with pytest.raises(ReactionsError, match=f"127.0.0.1:{port}"):
        gathered(dead, row)


def test_a_rate_limited_appview_says_when_to_come_back(settings, feed_server):
    _, account = settings
    reset = int(time.time()) + 300
    feed_server.route("/xrpc/app.bsky.feed.getPostThread", json.dumps({"error": "RateLimitExceeded",
                                                                       "message": "Rate Limit Exceeded"}),
                      status=429, content_type="application/json",
                      headers={"ratelimit-limit": "3000", "ratelimit-remaining": "0", "ratelimit-reset": str(reset),
                               "ratelimit-policy": "3000;w=300"})
    served = account.model_copy(update={"appview": feed_server.base_url})
    row = dataclasses.replace(delivery(ACCOUNT), state="posted", remote_id="at://did:plc:abc/app.bsky.feed.post/3k")

    with pytest.raises(ReactionsRateLimited) as caught:
        gathered(served, row)
    assert caught.value.retry_at == reset


@pytest.mark.parametrize("route", [
    {"status": 502, "body": "bad gateway", "content_type": "text/plain"},
    {"status": 200, "body": "{}", "content_type": "application/json"},  # no thread in the answer
    {"status": 200, "body": '{"thread": {"$type": "app.bsky', "content_type": "application/json", "trickle": 0.5},
])
def test_a_failing_or_dripping_appview_is_a_reactions_error_within_the_deadline(settings, feed_server, route):
    _, account = settings
    body = route.pop("body")
    feed_server.route("/xrpc/app.bsky.feed.getPostThread", body, **route)
    served = account.model_copy(update={"appview": feed_server.base_url})
    row = dataclasses.replace(delivery(ACCOUNT), state="posted", remote_id="at://did:plc:abc/app.bsky.feed.post/3k")

    with pytest.raises(ReactionsError) as caught:
        gather(served, None, row, deadline=time.monotonic() + 3, http=HTTP)
    assert not isinstance(caught.value, RemotePostGone)


def test_a_delivery_without_an_at_uri_is_refused_clearly(settings):
    _, account = settings
    with pytest.raises(ReactionsError, match="no at:// URI"):
        gathered(account, delivery(ACCOUNT))


# --------------------------------------------------------------------------- the setting


def test_appview_defaults_to_the_public_endpoint_and_is_a_bluesky_setting():
    bluesky = {"type": "bluesky", "handle": "you.bsky.social"}
    assert parse_config({"accounts": {"b": bluesky}}).accounts["b"].appview_url == DEFAULT_BLUESKY_APPVIEW
    custom = parse_config({"accounts": {"b": {**bluesky, "appview": "https://api.example.net/"}}})
    assert custom.accounts["b"].appview_url == "https://api.example.net"
    with pytest.raises(Exception, match="appview is a Bluesky setting"):
        parse_config({"accounts": {"m": {"type": "mastodon", "instance": "https://m.example",
                                         "appview": "https://public.api.bsky.app"}}})


# --------------------------------------------------------------------------- end to end: bridge reactions refresh


class BlueskyBlog(Blog):
    """tests/reactions_helpers.py's Blog, posting to the writer's Bluesky account and reading its AppView."""

    account = "bsky"

    def __init__(self, tmp_path, feed_server, appview: AppViewServer) -> None:
        super().__init__(tmp_path, feed_server, "https://unused.example", appview.bridge.app_password)
        self.config.write_text(
            f'[bridge]\nstate = "{self.state_path}"\nallow_private_addresses = true\n'
            f'comments_dir = "{self.comments_dir}"\nsyndication_file = "{self.syndication_file}"\n\n'
            f'[accounts.{self.account}]\ntype = "bluesky"\nhandle = "{appview.bridge.handle}"\n'
            f'service = "{appview.pds_url}"\nappview = "{appview.appview_url}"\n'
            f'app_password = {{ env = "{TOKEN_ENV}" }}\nposts_per_hour = 1000000\nposts_per_day = 1000000\n\n'
            f'[[feeds]]\nname = "blog"\nurl = "{feed_server.url("/blog.json")}"\naccounts = ["{self.account}"]\n'
        )


def test_bridge_reactions_refresh_brings_bluesky_replies_to_the_site(appview, people, writer, feed_server, tmp_path):
    blog = BlueskyBlog(tmp_path, feed_server, appview)
    link, uri = blog.post("/posts/home", "Replies come home")
    cid = get_record(appview.pds_url, uri)["cid"]
    root = Ref(uri, cid)
    ada, bob, shy = people["ada"], people["bob"], people["shy"]
    shy.ask_not_to_be_indexed("Shy Person")
    first = ada.reply(root, "Welcome home, replies", langs=["en"])
    bob.reply(first, "Nested answer from Bob", root=root)
    rude = bob.reply(root, "A reply the writer hides on Bluesky")
    shy.reply(root, "Not for logged-out readers")
    writer.threadgate(root, hidden_replies=[rude.uri])
    ada.like(root)
    bob.repost(root)
    appview.wait_thread(uri, lambda t: t["post"].get("replyCount") == 3 and t["post"].get("likeCount") == 1
                        and t["post"].get("repostCount") == 1)

    run = blog.refresh(link)
    assert "read 1 post(s)" in run.stdout

    document = blog.document(link)
    assert document["counts"] == {"likes": 1, "reposts": 1, "quotes": 0, "replies": 2}
    [post] = document["posts"]
    assert post["platform"] == "bluesky"
    assert post["url"].startswith(f"https://bsky.app/profile/{appview.bridge.handle}/post/")
    assert flatten(document["replies"]) == [(0, ada.handle, "Welcome home, replies"),
                                            (1, bob.handle, "Nested answer from Bob")]
    top = document["replies"][0]
    assert top["author"]["name"] == "Ada Lovelace" and top["author"]["url"] == f"https://bsky.app/profile/{ada.handle}"
    assert top["author"]["avatar"] and top["author"]["avatar"].startswith("https://")
    fragment = blog.fragment(link)
    assert "Welcome home, replies" in fragment and "Reply on Bluesky" in fragment
    for absent in ("A reply the writer hides", "Not for logged-out readers", shy.handle):
        assert absent not in fragment and absent not in json.dumps(document)

    # The reply is deleted on Bluesky: gone from the site at the next refresh.
    ada.delete(first.uri)
    appview.wait_thread(uri, lambda t: t["post"].get("replyCount") == 2)
    blog.refresh(link)
    assert blog.document(link)["replies"] == []  # Bob's answer went with the reply it answered
