"""Reading a Nostr note's reactions back (bridge/platforms/nostr/reactions.py) from real relays on 127.0.0.1
(nostr-relay, tests/nostr_relay_fixture.py).

Other people are keys made with nostr-sdk; their replies, reactions, reposts, quotes, deletions and profiles are
signed with nostr-sdk and sent to the relay with a plain websocket, as any client would.
"""

from __future__ import annotations

import dataclasses
import json
import threading
import time

import nostr_sdk
import pytest
from websockets.sync.client import connect
from websockets.sync.server import serve

from bridge.config import Secret, parse_config
from bridge.errors import ReactionsError, ReactionsRateLimited, RemotePostGone
from bridge.platforms.nostr.reactions import gather
from bridge.platforms.nostr.signing import sign
from bridge.reactions.gatherer import HttpOptions, gatherer_for
from bridge.reactions.model import Thread
from tests.bluesky_helpers import delivery
from tests.nostr_relay_fixture import free_port
from tests.reactions_helpers import TOKEN_ENV, Blog, flatten

HTTP = HttpOptions(user_agent="bridge-test (nostr reactions)")
GATEWAY = "https://njump.me"


# --------------------------------------------------------------------------- people on Nostr


def send(relay_url: str, event: dict) -> dict:
    """Publish one event as a client does; the relay must take it."""
    with connect(relay_url, open_timeout=10) as ws:
        ws.send(json.dumps(["EVENT", event]))
        while True:
            message = json.loads(ws.recv(timeout=10))
            if message[0] == "OK":
                assert message[2] is True, message
                return event


class Person:
    """Someone on Nostr: a key of their own, writing to the test relay."""

    def __init__(self, relay_url: str, name: str | None = None, **profile) -> None:
        self.keys = nostr_sdk.Keys.generate()
        self.relay_url = relay_url
        self.pubkey = self.keys.public_key().to_hex()
        self.npub = self.keys.public_key().to_bech32()
        if name is not None:
            self.publish(0, json.dumps({"name": name, **profile}))

    def event(self, kind: int, content: str, tags: list[list[str]]) -> dict:
        return sign({"kind": kind, "content": content, "tags": tags}, self.keys, int(time.time()))

    def publish(self, kind: int, content: str = "", tags: list[list[str]] | None = None) -> dict:
        return send(self.relay_url, self.event(kind, content, tags or []))

    def reply(self, root: dict, text: str, parent: dict | None = None, extra: list[list[str]] = ()) -> dict:
        """NIP-10 marked tags: the root, and the event answered when it is not the root."""
        tags = [["e", root["id"], "", "root"]]
        if parent is not None:
            tags.append(["e", parent["id"], "", "reply"])
        return self.publish(1, text, tags + [["p", root["pubkey"]]] + list(extra))

    def react(self, note: dict, content: str = "+") -> dict:
        return self.publish(7, content, [["e", note["id"]], ["p", note["pubkey"]], ["k", "1"]])

    def repost(self, note: dict, kind: int = 6) -> dict:
        return self.publish(kind, json.dumps(note), [["e", note["id"], self.relay_url], ["p", note["pubkey"]]])

    def quote(self, note: dict, text: str) -> dict:
        return self.publish(1, text, [["q", note["id"]], ["p", note["pubkey"]]])

    def delete(self, event: dict) -> dict:
        return self.publish(5, "", [["e", event["id"]]])


@pytest.fixture
def writer(nostr_relay) -> Person:
    return Person(nostr_relay.url, "The Writer")


def account(relays: list[str], **extra):
    return parse_config({"accounts": {"nostr": {"type": "nostr", "relays": relays, **extra}}}).accounts["nostr"]


def row_for(note: dict):
    return dataclasses.replace(delivery("nostr"), state="posted", remote_id=note["id"],
                               remote_url="nostr:" + nostr_sdk.EventId.parse(note["id"]).to_bech32())


def gathered(relays: list[str], note: dict, seconds: float = 20, **extra) -> Thread:
    return gather(account(relays, **extra), None, row_for(note), deadline=time.monotonic() + seconds, http=HTTP)


# --------------------------------------------------------------------------- the thread


def test_replies_likes_reposts_and_quotes_come_back_threaded_with_profiles(nostr_relay, writer):
    note = writer.publish(1, "A new article: replies come home")
    ada = Person(nostr_relay.url, "ada", display_name="Ada Lovelace", picture="https://pics.example/ada.png")
    bob = Person(nostr_relay.url, "bob", picture="http://pics.example/bob.png")  # not https: no avatar
    cyd = Person(nostr_relay.url)  # no profile at all
    first = ada.reply(note, "Lovely piece", extra=[["L", "ISO-639-1"], ["l", "de", "ISO-639-1"]])
    second = bob.reply(note, "Agreed with Ada", parent=first)
    ada.react(note, "+")
    bob.react(note, "🔥")
    bob.react(note, "+")  # the same person twice: one like
    cyd.react(note, "-")  # a dislike is not a like
    bob.repost(note)
    cyd.repost(note, kind=16)
    cyd.quote(note, "Everyone should read this")

    thread = gathered([nostr_relay.url], note)

    assert thread.root_id == note["id"]
    assert thread.root_url.startswith(f"{GATEWAY}/nevent1")
    assert nostr_sdk.Nip19Event.from_bech32(thread.root_url.rsplit("/", 1)[1]).event_id().to_hex() == note["id"]
    assert (thread.counts.likes, thread.counts.reposts, thread.counts.quotes, thread.counts.replies) == (2, 2, 1, 2)
    replies = {reply.remote_id: reply for reply in thread.replies}
    assert set(replies) == {first["id"], second["id"]}  # the quote is not a reply
    top, nested = replies[first["id"]], replies[second["id"]]
    assert top.parent_id == note["id"] and nested.parent_id == first["id"]
    assert top.platform == "nostr" and top.visibility == "public"
    assert top.text == "Lovely piece" and top.language == "de" and nested.language is None
    assert top.author.handle == ada.npub and top.author.id == ada.pubkey
    assert top.author.name == "Ada Lovelace" and top.author.avatar_url == "https://pics.example/ada.png"
    assert top.author.profile_url == f"{GATEWAY}/{ada.npub}"
    assert top.url.startswith(f"{GATEWAY}/nevent1")
    assert nested.author.name == "bob" and nested.author.avatar_url is None
    assert top.created_at.startswith(time.strftime("%Y-", time.gmtime())) and top.created_at.endswith("Z")


def test_the_registry_names_the_nostr_gatherer():
    found = gatherer_for("nostr")
    assert found is not None and found.__qualname__ == f"lazy({gather.__module__}.{gather.__name__})"


def test_deletions_by_their_authors_remove_replies_and_reactions_and_nobody_elses_do(nostr_relay, nostr_relay_factory,
                                                                                      writer):
    """The deletions reach one relay only (which drops the events); the other relay still holds the events and
    knows nothing of the deletions: bridge reads both, and the deletions still count."""
    other = nostr_relay_factory()
    note = send(other.url, writer.publish(1, "A post whose replies will be deleted"))
    ada, bob = Person(nostr_relay.url, "ada"), Person(nostr_relay.url, "bob")
    gone = send(other.url, ada.reply(note, "I regret this"))
    stays = send(other.url, bob.reply(note, "I stay"))
    like = send(other.url, ada.react(note))
    ada.delete(gone)
    ada.delete(like)
    send(other.url, ada.publish(5, "", [["e", stays["id"]]]))  # Ada cannot delete Bob's reply (NIP-09)
    assert {event["id"] for event in other.events(ids=[gone["id"], like["id"], stays["id"]])} == \
        {gone["id"], like["id"], stays["id"]}

    thread = gathered([nostr_relay.url, other.url], note)

    assert [reply.text for reply in thread.replies] == ["I stay"]
    assert (thread.counts.likes, thread.counts.replies) == (0, 1)


def test_a_note_the_writer_deleted_is_gone(nostr_relay, writer):
    note = writer.publish(1, "Soon deleted")
    Person(nostr_relay.url).reply(note, "Too late")
    writer.delete(note)
    assert nostr_relay.events(ids=[note["id"]]) == []  # the relay honoured the deletion: only the kind 5 is left
    with pytest.raises(RemotePostGone):
        gather(account([nostr_relay.url]), Secret(writer.keys.secret_key().to_bech32()), row_for(note),
               deadline=time.monotonic() + 20, http=HTTP)
    # Someone else's "deletion" of the note means nothing.
    note = writer.publish(1, "Not deleted")
    Person(nostr_relay.url).delete(note)
    assert gathered([nostr_relay.url], note).root_id == note["id"]


def test_protected_and_content_warned_replies_are_left_out_and_mentions_are_not_replies(nostr_relay, writer):
    note = writer.publish(1, "Respect people")
    ada = Person(nostr_relay.url, "ada")
    ada.reply(note, "Keep me on my relays", extra=[["-"]])  # NIP-70: a protected event
    ada.reply(note, "Spoilers", extra=[["content-warning", "spoilers"]])  # NIP-36
    ada.publish(1, "Saw this somewhere", [["e", note["id"], "", "mention"]])
    shown = ada.reply(note, "Plain and public")

    thread = gathered([nostr_relay.url], note)

    assert [reply.remote_id for reply in thread.replies] == [shown["id"]]


def test_positional_e_tags_thread_like_markers(nostr_relay, writer):
    """Deprecated NIP-10 positional tags (older clients): the first is the root, the last the one answered."""
    note = writer.publish(1, "Old clients")
    ada, bob = Person(nostr_relay.url), Person(nostr_relay.url)
    first = ada.publish(1, "direct", [["e", note["id"]]])
    second = bob.publish(1, "nested", [["e", note["id"]], ["e", first["id"]]])

    replies = {reply.remote_id: reply.parent_id for reply in gathered([nostr_relay.url], note).replies}

    assert replies == {first["id"]: note["id"], second["id"]: first["id"]}


def test_two_relays_are_merged_by_event_id_and_a_dead_one_does_not_matter(nostr_relay, nostr_relay_factory, writer):
    other = nostr_relay_factory()
    note = writer.publish(1, "On two relays")
    send(other.url, note)
    ada = Person(nostr_relay.url, "ada")
    both = ada.reply(note, "Everywhere")
    send(other.url, both)
    only_there = Person(other.url).reply(note, "Only on the second relay")
    dead = f"ws://127.0.0.1:{free_port()}"

    thread = gathered([nostr_relay.url, other.url, dead], note)

    assert sorted(reply.remote_id for reply in thread.replies) == sorted([both["id"], only_there["id"]])
    assert thread.counts.replies == 2


# --------------------------------------------------------------------------- forged events


def test_an_event_whose_signature_does_not_verify_is_dropped(nostr_relay_factory):
    """A relay that stores anything (its signature check off) holds a forged reply and a forged like: another
    key's signature over changed content. Neither is used."""
    lax = nostr_relay_factory(verify_signatures=False)
    writer = Person(lax.url, "The Writer")
    note = writer.publish(1, "Forgeries")
    mallory, ada = Person(lax.url), Person(lax.url, "ada")
    honest = ada.reply(note, "A real reply")
    forged = dict(mallory.event(1, "Ada never wrote this", [["e", note["id"], "", "root"]]), pubkey=ada.pubkey)
    forged_like = dict(mallory.event(7, "+", [["e", note["id"]]]), content="🔥")  # its id no longer matches
    send(lax.url, forged)
    send(lax.url, forged_like)
    assert {event["id"] for event in lax.events(ids=[forged["id"], forged_like["id"]])} == {forged["id"], forged_like["id"]}

    thread = gathered([lax.url], note)

    assert [reply.remote_id for reply in thread.replies] == [honest["id"]]
    assert thread.counts.likes == 0


# --------------------------------------------------------------------------- relays that do not answer


class SilentRelay:
    """A websocket server on 127.0.0.1 that answers every REQ with CLOSED and given words (or never)."""

    def __init__(self, closed: str | None) -> None:
        self.closed = closed
        self.server = serve(self._handle, "127.0.0.1", 0, compression=None)
        self.url = f"ws://127.0.0.1:{self.server.socket.getsockname()[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def _handle(self, ws) -> None:
        for raw in ws:
            message = json.loads(raw)
            if message[0] == "REQ" and self.closed is not None:
                ws.send(json.dumps(["CLOSED", message[1], self.closed]))

    def __enter__(self) -> "SilentRelay":
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()


def test_relays_that_all_say_rate_limited_say_when_to_come_back(writer):
    note = writer.event(1, "unread", [])
    with SilentRelay("rate-limited: slow down") as relay:
        before = time.time()
        with pytest.raises(ReactionsRateLimited) as raised:
            gathered([relay.url], note)
    assert "rate-limited: slow down" in str(raised.value)
    assert before + 60 <= raised.value.retry_at <= time.time() + 3600


def test_relays_that_all_fail_are_a_reactions_error_within_the_deadline(writer):
    note = writer.event(1, "unread", [])
    with SilentRelay(None) as mute, SilentRelay("error: no") as refusing:
        started = time.monotonic()
        with pytest.raises(ReactionsError) as raised:
            gathered([mute.url, refusing.url, f"ws://127.0.0.1:{free_port()}"], note, seconds=3)
        assert time.monotonic() - started < 10
    assert not isinstance(raised.value, ReactionsRateLimited)
    assert "no relay answered" in str(raised.value) and "error: no" in str(raised.value)


def test_a_silent_relay_next_to_a_working_one_leaves_time_for_the_whole_read(nostr_relay, writer):
    note = writer.publish(1, "One relay never answers")
    Person(nostr_relay.url, "ada").reply(note, "Heard anyway")
    doomed = Person(nostr_relay.url, "bob").reply(note, "Deleted, and the deletion must be read in time")
    Person(nostr_relay.url).delete(doomed)  # not Bob: means nothing
    with SilentRelay(None) as mute:
        started = time.monotonic()
        thread = gathered([mute.url, nostr_relay.url], note, seconds=6)
        assert time.monotonic() - started < 8
    assert sorted(reply.text for reply in thread.replies) == sorted(["Heard anyway", doomed["content"]])
    assert {reply.author.name for reply in thread.replies} == {"ada", "bob"}  # the second round was read too


def test_a_delivery_without_a_note_id_is_refused_clearly(nostr_relay):
    row = dataclasses.replace(delivery("nostr"), state="posted")
    with pytest.raises(RemotePostGone):
        gather(account([nostr_relay.url]), None, row, deadline=time.monotonic() + 5, http=HTTP)


def test_web_gateway_is_a_setting_with_njump_as_default(nostr_relay, writer):
    assert account([nostr_relay.url]).web_gateway == GATEWAY
    note = writer.publish(1, "Elsewhere")
    ada = Person(nostr_relay.url, "ada")
    ada.reply(note, "hi")
    thread = gathered([nostr_relay.url], note, web_gateway="https://gateway.example/")
    assert thread.root_url.startswith("https://gateway.example/nevent1")
    assert thread.replies[0].author.profile_url == f"https://gateway.example/{ada.npub}"


# --------------------------------------------------------------------------- the whole way, through the CLI


class NostrBlog(Blog):
    """tests/reactions_helpers.py's Blog, posting to the writer's Nostr relay."""

    account = "nostr"

    def __init__(self, tmp_path, feed_server, relay_url: str, writer: Person) -> None:
        super().__init__(tmp_path, feed_server, "https://unused.example", writer.keys.secret_key().to_bech32())
        self.config.write_text(
            f'[bridge]\nstate = "{self.state_path}"\nallow_private_addresses = true\n'
            f'comments_dir = "{self.comments_dir}"\nsyndication_file = "{self.syndication_file}"\n\n'
            f'[accounts.{self.account}]\ntype = "nostr"\nrelays = ["{relay_url}"]\n'
            f'secret_key = {{ env = "{TOKEN_ENV}" }}\nposts_per_hour = 1000000\nposts_per_day = 1000000\n\n'
            f'[[feeds]]\nname = "blog"\nurl = "{feed_server.url("/blog.json")}"\naccounts = ["{self.account}"]\n'
        )


def test_bridge_reactions_refresh_brings_nostr_replies_to_the_site(nostr_relay, feed_server, tmp_path):
    writer = Person(nostr_relay.url, "The Writer")
    blog = NostrBlog(tmp_path, feed_server, nostr_relay.url, writer)
    link, note_id = blog.post("/posts/home", "Replies come home")
    [note] = nostr_relay.events(ids=[note_id])
    assert note["pubkey"] == writer.pubkey
    ada = Person(nostr_relay.url, "ada", display_name="Ada Lovelace", picture="https://pics.example/ada.png")
    bob, troll = Person(nostr_relay.url, "bob"), Person(nostr_relay.url, "troll")
    first = ada.reply(note, "Welcome home, replies")
    bob.reply(note, "Nested answer from Bob", parent=first)
    regretted = bob.reply(note, "A reply Bob deletes")
    bob.delete(regretted)
    hidden = ada.reply(note, "A reply the writer hides in bridge")
    troll.reply(note, "Troll says hi")
    ada.react(note)
    bob.react(note, "-")
    bob.repost(note)
    bob.quote(note, "Quoting this")

    assert blog.bridge("reactions", "block", troll.npub).returncode == 0
    hide_url = f"{GATEWAY}/" + nostr_sdk.Nip19Event(nostr_sdk.EventId.parse(hidden["id"]), None, None, []).to_bech32()
    hid = blog.bridge("reactions", "hide", hide_url)
    assert hid.returncode == 0, hid.stderr
    run = blog.refresh(link)
    assert "read 1 post(s)" in run.stdout

    document = blog.document(link)
    assert document["counts"] == {"likes": 1, "reposts": 1, "quotes": 1, "replies": 2}
    [post] = document["posts"]
    assert post["platform"] == "nostr" and post["url"].startswith(f"{GATEWAY}/nevent1")
    assert flatten(document["replies"]) == [(0, ada.npub, "Welcome home, replies"),
                                            (1, bob.npub, "Nested answer from Bob")]
    top = document["replies"][0]
    assert top["author"]["name"] == "Ada Lovelace" and top["author"]["url"] == f"{GATEWAY}/{ada.npub}"
    assert top["author"]["avatar"] == "https://pics.example/ada.png"
    fragment = blog.fragment(link)
    assert "Welcome home, replies" in fragment and "Reply on Nostr" in fragment
    for absent in ("A reply Bob deletes", "hides in bridge", "Troll says hi", troll.npub):
        assert absent not in fragment and absent not in json.dumps(document)

    # Ada deletes her reply on Nostr: gone from the site at the next refresh, with Bob's answer below it.
    ada.delete(first)
    blog.refresh(link)
    assert blog.document(link)["replies"] == []
