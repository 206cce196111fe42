"""Threads for long notes (docs/threads-for-notes.md): the payloads — a long untitled note split at sentences into
parts that each fit the platform's rules, numbered or not; a note that fits and an article stay one post — and the
config's opt-in. The posting itself, on the Mastodon fake and the real PDS, with crashes: test_longnotes_e2e.py."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from bridge.config import parse_config
from bridge.errors import ConfigError
from bridge.model import Entry
from bridge.platforms import platform
from bridge.platforms.base import PayloadInputs
from bridge.platforms.mastodon.counting import mastodon_length as counted
from bridge.render import graphemes, render_post
from bridge.render.longnote import REPLIES, note_text, split_note

LINK = "https://blog.example/notes/42"
SENTENCE = "This sentence says a little more about the long walk by the river this morning. "
FEED_TITLE = "A blog"


def note(sentences: int = 20, *, title: str = "", extra: str = "") -> Entry:
    text = "".join(f"Sentence {n}: {SENTENCE[5:]}" for n in range(1, sentences + 1)) + extra
    return Entry(key="note-42", link=LINK, title=title, content_html=f"<p>{text.strip()}</p>",
                 published=datetime(2026, 12, 1, tzinfo=timezone.utc))


def config(platform_name: str, **account) -> object:
    table = {"type": platform_name, **account}
    if platform_name == "mastodon":
        table["instance"] = "https://social.example"
    elif platform_name == "bluesky":
        table["handle"] = "writer.example"
    return parse_config({"accounts": {"acct": table}, "feeds": [{"name": "blog", "url": "https://blog.example/feed",
                                                                   "accounts": ["acct"]}]})


def payload(entry: Entry, platform_name: str, **account) -> dict:
    cfg = config(platform_name, **account)
    feed = cfg.feeds[0]
    settings = cfg.post_settings(feed, "acct")
    post = render_post(entry, settings, feed_title=FEED_TITLE)
    inputs = PayloadInputs(server_limits=None, created_at=datetime(2026, 12, 1, 12, tzinfo=timezone.utc),
                           thumbnail=lambda url: None, account=cfg.accounts["acct"], entry=entry)
    return platform(platform_name).payload(post, settings, inputs)


def mastodon_texts(result: dict) -> list[str]:
    return [result["status"], *(reply["status"] for reply in result.get(REPLIES, []))]


def bluesky_texts(result: dict) -> list[str]:
    return [result["record"]["text"], *(reply["record"]["text"] for reply in result.get(REPLIES, []))]


def mastodon_length(text: str, spoiler_text: str = "") -> int:
    return counted(text, characters_per_url=23, spoiler_text=spoiler_text)


def words(text: str) -> list[str]:
    return text.split()


# --- Mastodon ---------------------------------------------------------------------------------------------------


def test_a_long_note_becomes_a_mastodon_thread_cut_at_sentences_each_part_within_500_characters():
    entry = note(20)
    result = payload(entry, "mastodon", thread_long_notes=True)
    texts = mastodon_texts(result)
    assert len(texts) >= 4
    assert all(mastodon_length(text) <= 500 for text in texts)
    assert LINK in texts[0] and all(LINK not in text for text in texts[1:])  # the first part carries the link
    body = [texts[0].split("\n\n" + LINK)[0], *texts[1:]]
    assert all(part.endswith(".") for part in body)  # each part ends at a sentence
    assert words(" ".join(body)) == words(note_text(entry))  # nothing lost, nothing repeated
    replies = result[REPLIES]
    assert all(reply.keys() == {"status", "spoiler_text", "visibility", "language"} for reply in replies)
    assert {reply["visibility"] for reply in replies} == {result["visibility"]}


def test_numbering_ends_each_part_with_its_place_and_still_fits():
    texts = mastodon_texts(payload(note(20), "mastodon", thread_long_notes=True, thread_numbering=True))
    total = len(texts)
    assert f"(1/{total})\n\n{LINK}" in texts[0]
    assert [text.endswith(f" ({n}/{total})") for n, text in enumerate(texts[1:], start=2)] == [True] * (total - 1)
    assert all(mastodon_length(text) <= 500 for text in texts)
    unnumbered = mastodon_texts(payload(note(20), "mastodon", thread_long_notes=True))
    assert not any("/" in text.replace(LINK, "") for text in unnumbered)


def test_a_note_that_fits_stays_one_post_and_an_opted_out_account_gets_the_cut_post():
    short = note(3)
    assert payload(short, "mastodon", thread_long_notes=True) == payload(short, "mastodon")
    assert REPLIES not in payload(short, "mastodon", thread_long_notes=True)
    single = payload(note(20), "mastodon")
    assert REPLIES not in single and mastodon_length(single["status"]) <= 500


def test_an_article_keeps_its_teaser_and_link():
    article = note(20, title="A walk by the river, in full")
    threaded = payload(article, "mastodon", thread_long_notes=True, thread_numbering=True)
    assert threaded == payload(article, "mastodon")
    assert REPLIES not in threaded
    assert threaded["status"].startswith("A walk by the river, in full\n\n") and LINK in threaded["status"]


def test_the_content_warning_goes_on_every_part_and_counts_in_each():
    result = payload(note(20), "mastodon", thread_long_notes=True, content_warning="river talk")
    assert result["spoiler_text"] == "river talk"
    assert {reply["spoiler_text"] for reply in result[REPLIES]} == {"river talk"}
    assert all(mastodon_length(reply["status"], spoiler_text="river talk") <= 500 for reply in result[REPLIES])


def test_links_in_the_note_count_as_the_server_counts_them_and_are_never_cut():
    url = "https://example.org/" + "a-very-long-path-segment/" * 8
    entry = note(12, extra=f"Read more at {url} today. " + SENTENCE * 6)
    texts = mastodon_texts(payload(entry, "mastodon", thread_long_notes=True))
    assert sum(text.count(url) for text in texts) == 1  # whole, in one part
    assert all(mastodon_length(text) <= 500 for text in texts)


def test_at_most_thread_max_parts_posts_the_last_one_cut():
    texts = mastodon_texts(payload(note(60), "mastodon", thread_long_notes=True, thread_max_parts=3))
    assert len(texts) == 3 and texts[-1].endswith("…")


# --- Bluesky ----------------------------------------------------------------------------------------------------


def test_a_long_note_becomes_a_bluesky_thread_each_record_within_300_graphemes():
    entry = note(12)
    result = payload(entry, "bluesky", thread_long_notes=True, thread_numbering=True)
    texts = bluesky_texts(result)
    assert len(texts) >= 4
    assert all(graphemes.count(text) <= 300 and len(text.encode()) <= 3000 for text in texts)
    assert result["record"]["embed"]["external"]["uri"] == LINK  # the card (the link) on the first post
    assert all("embed" not in reply["record"] and "reply" not in reply["record"] for reply in result[REPLIES])
    stamps = [result["record"]["createdAt"], *(reply["record"]["createdAt"] for reply in result[REPLIES])]
    assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)
    total = len(texts)
    assert [text.endswith(f"({n}/{total})") for n, text in enumerate(texts, start=1)] == [True] * total


def test_bluesky_keeps_a_short_note_and_an_article_as_one_post():
    assert REPLIES not in payload(note(2), "bluesky", thread_long_notes=True)
    article = note(12, title="A walk by the river, in full")
    assert payload(article, "bluesky", thread_long_notes=True) == payload(article, "bluesky")


# --- the splitter itself ----------------------------------------------------------------------------------------


def test_a_sentence_longer_than_a_post_is_cut_between_words():
    text = "word " * 200 + "end."
    fits = (lambda piece: graphemes.count(piece) <= 100)
    pieces = split_note(text.strip(), fits, fits, numbering=False, max_parts=25)
    assert all(graphemes.count(piece) <= 100 for piece in pieces)
    assert words(" ".join(pieces)) == words(text)


def test_ten_or_more_parts_number_with_room_for_two_digits():
    text = " ".join(f"Sentence {n} is here." for n in range(200))
    fits = (lambda piece: graphemes.count(piece) <= 60)
    pieces = split_note(text, fits, fits, numbering=True, max_parts=25)
    assert len(pieces) >= 10 and all(graphemes.count(piece) <= 60 for piece in pieces)
    assert pieces[0].endswith(f" (1/{len(pieces)})") and pieces[-1].endswith(f" ({len(pieces)}/{len(pieces)})")


def test_bluesky_text_with_a_long_url_is_measured_as_shown():
    url = "https://example.org/" + "segment/" * 40
    entry = note(4, extra=f"See {url} for the map. " + SENTENCE * 3)
    result = payload(entry, "bluesky", thread_long_notes=True)
    assert len(result[REPLIES]) >= 1
    assert all(graphemes.count(text) <= 300 for text in bluesky_texts(result))
    links = [feature["uri"] for part in [result, *result[REPLIES]] for facet in part["record"]["facets"]
             for feature in facet["features"] if feature.get("uri")]
    assert url in links  # shown shortened, linked in full


# --- the config -------------------------------------------------------------------------------------------------


def test_the_options_are_off_by_default_and_checked():
    account = config("mastodon").accounts["acct"]
    assert (account.thread_long_notes, account.thread_numbering, account.thread_max_parts) == (False, False, 10)
    with pytest.raises(ConfigError) as error:
        config("mastodon", thread_long_notes="yes")
    assert error.value.key == "accounts.acct.thread_long_notes"
    assert "'yes' is not true or false" in str(error.value) and "write true or false" in str(error.value)
    with pytest.raises(ConfigError) as error:
        config("bluesky", thread_long_notes=True, thread_max_parts=1)
    assert error.value.key == "accounts.acct.thread_max_parts" and "from 2 to 25" in str(error.value)


def test_threads_accounts_refuse_the_option():
    with pytest.raises(ConfigError) as error:
        config("threads", thread_long_notes=True)
    assert "thread_long_notes cannot apply to Threads accounts yet" in str(error.value)
    assert "remove it" in str(error.value)


# --- Nostr -------------------------------------------------------------------------------------------------------


def test_a_long_note_becomes_a_nostr_thread_of_notes_marked_as_replies():
    from bridge.platforms.nostr.events import THREAD_REPLY

    entry = note(40)
    result = payload(entry, "nostr", relays=["wss://relay.example"], thread_long_notes=True, long_form=True)
    root, *rest = result["events"]
    replies = [event for event in rest if event.get(THREAD_REPLY)]
    assert len(replies) >= 2 and rest[-1]["kind"] == 30023  # the article stays last
    assert LINK in root["content"] and all(LINK not in reply["content"] for reply in replies)
    assert all(graphemes.count(event["content"]) <= 800 for event in [root, *replies])
    body = [root["content"].split("\n\n" + LINK)[0], *(reply["content"] for reply in replies)]
    assert words(" ".join(body)) == words(note_text(entry))
    assert REPLIES not in result  # Nostr signs and sends the whole thread as one set of events
    single = payload(note(3), "nostr", relays=["wss://relay.example"], thread_long_notes=True)
    assert len(single["events"]) == 1


def test_preview_shows_every_part_of_the_thread(tmp_path):
    from click.testing import CliRunner

    from bridge.cli import cli
    from tests.test_pipeline import rss

    text = " ".join(f"Sentence {n}: {SENTENCE[5:].strip()}" for n in range(1, 15))
    feed = tmp_path / "feed.xml"
    feed.write_text(rss([{"guid": "note", "link": LINK, "title": "", "description": f"&lt;p&gt;{text}&lt;/p&gt;"}]))
    config = tmp_path / "config.toml"
    config.write_text('[accounts.masto]\ntype = "mastodon"\ninstance = "https://social.example"\n'
                      'access_token = { env = "NONE" }\nthread_long_notes = true\nthread_numbering = true\n'
                      f'[[feeds]]\nname = "blog"\nurl = "https://blog.example/feed"\naccounts = ["masto"]\n')
    env = {"BRIDGE_CONFIG": None, "XDG_CONFIG_HOME": str(tmp_path), "XDG_DATA_HOME": str(tmp_path),
           "CONFIGURATION_DIRECTORY": None, "STATE_DIRECTORY": None}
    result = CliRunner().invoke(cli, ["--config", str(config), "preview", "--file", str(feed), "--account", "masto",
                                      "--no-fetch"], env=env)
    assert result.exit_code == 0, result.output
    assert "--- reply 2 ---" in result.output and "reply 2: " in result.output
    as_json = CliRunner().invoke(cli, ["--config", str(config), "preview", "--file", str(feed), "--account", "masto",
                                       "--no-fetch", "--json"], env=env)
    [item] = json.loads(as_json.output)
    assert len(item["payload"][REPLIES]) >= 2


def test_the_way_back_leaves_the_threads_own_replies_out_and_lifts_answers_to_them():
    from bridge.notethreads import without_own_parts
    from bridge.reactions.model import Author, Counts, Reply, Thread

    def reply(remote_id: str, parent: str, handle: str) -> Reply:
        return Reply("mastodon", remote_id, None, Author(handle), "2026-12-01T12:00:00Z", parent, text=remote_id)

    read = Thread("root", None, Counts(replies=2), [reply("part2", "root", "me@x"), reply("part3", "part2", "me@x"),
                                                    reply("hello", "part3", "ann@y"), reply("hi", "root", "bo@z")])
    shown = without_own_parts(read, {"part2", "part3"})
    assert [(r.remote_id, r.parent_id) for r in shown.replies] == [("hello", "root"), ("hi", "root")]
    assert shown.counts.replies == 1
    assert without_own_parts(read, set()) is read
