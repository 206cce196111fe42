"""Nostr's pure parts: the relays' answers -> what the delivery engine does, the account table's checks, the note's
length budget. (The end-to-end behaviour against real relays is tests/test_nostr.py.)"""

from __future__ import annotations

import pytest

from bridge.config import parse_config
from bridge.errors import AuthError, ConfigError, PermanentPublishError, RateLimited, TransientPublishError
from bridge.platforms.nostr.events import NOTE_MAX_GRAPHEMES, note_event
from bridge.platforms.nostr.refusals import outcome
from bridge.render.post import Post

A, B = "wss://a.example", "wss://b.example"
OK = {"ok": True, "message": ""}
DOWN = {"ok": False, "message": "cannot connect", "reached": False}


def said(message: str) -> dict:
    return {"ok": False, "message": message, "reached": True}


@pytest.mark.parametrize("answers, min_relays, expected", [
    ({A: OK, B: said("blocked: no")}, 1, None),
    ({A: said("duplicate: already have it"), B: DOWN}, 1, None),
    ({A: OK, B: DOWN}, 2, TransientPublishError),
    ({A: said("rate-limited: slow down"), B: said("rate-limited: slow down")}, 1, RateLimited),
    ({A: said("invalid: bad"), B: said("pow: 20 bits")}, 1, PermanentPublishError),
    ({A: said("blocked: not you"), B: said("auth-required: log in")}, 1, AuthError),
    ({A: said("restricted: members only"), B: said("rejected: not allowed")}, 1, AuthError),
    ({A: said("invalid: bad"), B: DOWN}, 1, TransientPublishError),  # B may still take it
    ({A: OK, B: said("invalid: bad")}, 2, PermanentPublishError),
])
def test_the_relays_answers_decide_what_the_engine_does(answers, min_relays, expected):
    relays = {url: {"e1": answer} for url, answer in answers.items()}
    error = outcome(relays, ["e1"], min_relays)
    assert type(error) is expected if expected else error is None
    if error is not None:
        assert all(url in str(error) for url, answer in answers.items() if not answer["ok"])


def test_a_refusal_after_another_relay_took_the_post_is_not_marked_not_posted():
    relays = {A: {"e1": OK}, B: {"e1": said("invalid: bad")}}
    assert outcome(relays, ["e1"], 2).not_posted is False
    assert outcome({A: {"e1": said("invalid: bad")}}, ["e1"], 1).not_posted is True


def account(**fields) -> dict:
    return {"accounts": {"n": {"type": "nostr", "relays": ["wss://relay.example"], **fields}}}


@pytest.mark.parametrize("fields, words", [
    ({"relays": ["ws://relay.example"]}, "unencrypted relay"),
    ({"relays": ["https://relay.example"]}, "is not a relay URL"),
    ({"relays": []}, "accounts.n.relays"),
    ({"min_relays": 2}, "only 1 relay(s) are listed"),
    ({"edit_on_update": True}, "a note cannot be edited"),
    ({"instance": "https://m.example"}, "instance is a Mastodon setting"),
])
def test_the_account_table_says_what_is_wrong(fields, words):
    with pytest.raises(ConfigError) as error:
        parse_config(account(**fields))
    assert words in str(error.value)


def test_loopback_relays_may_be_unencrypted_and_long_form_edits_by_default():
    config = parse_config(account(relays=["ws://127.0.0.1:7000", "ws://[::1]:7000"], long_form=True))
    assert config.accounts["n"].edit_on_update is True
    assert parse_config(account(long_form=True, edit_on_update=False)).accounts["n"].edit_on_update is False


def test_a_note_keeps_its_link_within_the_budget_and_tags_only_the_hashtags_it_shows():
    post = Post(key="k", link="https://blog.example/a-post/", template="{title}\n\n{summary}\n\n{url}\n\n{hashtags}",
                title="A title", summary="Words. " * 400, hashtags=("Baking", "Bread", "Flour"))
    note = note_event(post)
    assert note["content"].count("https://blog.example/a-post/") == 1 and len(note["content"]) <= NOTE_MAX_GRAPHEMES
    tight = note_event(post, max_content_length=60)
    assert "https://blog.example/a-post/" in tight["content"] and len(tight["content"]) <= 60
    shown = {tag[1] for tag in tight["tags"] if tag[0] == "t"}
    assert shown == {name.lower() for name in ("Baking", "Bread", "Flour") if f"#{name}" in tight["content"]}
    assert {tag[1] for tag in note["tags"] if tag[0] == "t"} == {"baking", "bread", "flour"}


def test_a_relay_that_never_answers_costs_the_deadline_not_more():
    """A relay that takes the connection and then says nothing: the send ends at the deadline with 'no answer'."""
    import socket
    import threading

    from bridge.platforms.nostr.relays import publish

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen()
    held = []
    threading.Thread(target=lambda: held.append(silent.accept()), daemon=True).start()
    url = f"ws://127.0.0.1:{silent.getsockname()[1]}"
    done = []
    worker = threading.Thread(target=lambda: done.append(publish(url, [{"id": "e1"}], seconds=1.0)), daemon=True)
    worker.start()
    worker.join(30)  # far beyond the deadline: only a send that hangs is still running
    silent.close()
    assert done, "the send did not end"
    [answers] = done
    assert answers["e1"].reached is False and answers["e1"].ok is False


def test_an_nsec_this_process_never_saw_is_still_redacted():
    import nostr_sdk

    from bridge.redact import redact

    nsec = nostr_sdk.Keys.generate().secret_key().to_bech32()
    assert redact(f"relay said: bad key {nsec}!") == "relay said: bad key [redacted]!"
    npub = nostr_sdk.Keys.generate().public_key().to_bech32()
    assert redact(f"allow {npub}") == f"allow {npub}"  # a public key is no secret


def test_language_labels_only_when_the_language_is_known_and_a_link_post_names_both_links():
    from bridge.platforms.nostr.events import article_event

    post = Post(key="k", link="https://blog.example/p/", template="{title}\n\n{url}", title="T",
                target="https://elsewhere.example/story", language="pt-BR")
    note = note_event(post)
    assert ["r", "https://elsewhere.example/story"] in note["tags"] and ["r", "https://blog.example/p/"] in note["tags"]
    assert ["l", "pt", "ISO-639-1"] in note["tags"] and ["L", "ISO-639-1"] in note["tags"]
    unknown = note_event(Post(key="k", link="https://blog.example/p/", template="{title}\n\n{url}", title="T"))
    assert not [tag for tag in unknown["tags"] if tag[0] in ("L", "l")]
    article = article_event(Post(key="k", link="https://blog.example/p/", template="{title}", title="T"), "<p>x</p>", None)
    assert [tag[0] for tag in article["tags"]] == ["d", "title", "r"]  # no summary, image or date to tell
