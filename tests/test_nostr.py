"""Nostr through the real CLI (`bridge poll`, `status`, `preview`), against real relays on 127.0.0.1 (nostr-relay,
tests/nostr_relay_fixture.py) and a local feed server. Every event is read back from the relay with a plain REQ and
its id and signature verified with nostr-sdk."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import nostr_sdk

from bridge.platforms.nostr.events import article_identifier
from tests.test_pipeline import posts, rss

ROOT = Path(__file__).resolve().parent.parent


def verified(event: dict) -> bool:
    return nostr_sdk.Event.from_json(json.dumps(event)).verify()


def tags(event: dict, name: str) -> list[list[str]]:
    return [tag for tag in event["tags"] if tag[0] == name]


class Writer:
    """One writer's key, config and state, run through `python -m bridge`."""

    def __init__(self, tmp_path: Path, feed_server, relays: list[str], *, keys=None, nsec: bool = True, **account):
        self.keys = keys or nostr_sdk.Keys.generate()
        self.secret = self.keys.secret_key().to_bech32() if nsec else self.keys.secret_key().to_hex()
        self.pubkey = self.keys.public_key().to_hex()
        self.feed_server = feed_server
        self.path = tmp_path / "config.toml"
        self.state = tmp_path / "state.sqlite3"
        lines = [f'[bridge]\nstate = "{self.state}"\ntotal_timeout = "20s"\nretry_delay = "1s"\n',
                 '[accounts.nostr]\ntype = "nostr"\nsecret_key = { env = "BRIDGE_TEST_NOSTR_KEY" }\n',
                 f"relays = {json.dumps(relays)}\nposts_per_hour = 1000000\nposts_per_day = 10000\n"]
        lines += [f"{key} = {json.dumps(value)}\n" for key, value in account.items()]
        lines.append(f'[[feeds]]\nname = "blog"\nurl = "{feed_server.url("/feed")}"\naccounts = ["nostr"]\n'
                     'language = "en"\n')
        self.path.write_text("".join(lines))

    def run(self, *args: str, secret: str | None = None) -> subprocess.CompletedProcess:
        env = {**os.environ, "BRIDGE_TEST_NOSTR_KEY": self.secret if secret is None else secret}
        env.pop("BRIDGE_CONFIG", None)
        return subprocess.run([sys.executable, "-m", "bridge", "--config", str(self.path), *args], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=180)

    def poll(self, *args: str) -> subprocess.CompletedProcess:
        return self.run("poll", "--feed", "blog", *args)  # --feed: now, whatever the feed's schedule

    def status(self) -> dict:
        result = self.run("status", "--json")
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)["accounts"][0]

    def baseline(self, items: list[dict]) -> None:
        self.feed_server.route("/feed", rss(items))
        result = self.poll()
        assert result.returncode == 0, result.stderr

    def stored(self) -> list[dict]:
        with sqlite3.connect(self.state) as db:
            return [json.loads(row[0]) for row in db.execute("SELECT events FROM nostr_events ORDER BY delivery_id")]


def new_post(number: int, **extra) -> dict:
    item = posts(1, start=number)[0]
    item.update(extra)
    return item


def test_a_new_entry_becomes_one_signed_note_with_its_link_hashtags_and_language(tmp_path, feed_server, nostr_relay):
    writer = Writer(tmp_path, feed_server, [nostr_relay.url])
    writer.baseline(posts(1))
    before = int(time.time())
    entry = new_post(7, title="Fresh bread at home", categories=["Baking", "Sourdough Starter"],
                     description="&lt;p&gt;How I bake a loaf every morning, and why it is easier than it looks.&lt;/p&gt;")
    feed_server.route("/feed", rss([entry] + posts(1)))
    result = writer.poll()
    assert result.returncode == 0, result.stderr
    events = nostr_relay.events(authors=[writer.pubkey])
    assert len(events) == 1, result.stderr
    note = events[0]
    assert verified(note) and note["kind"] == 1
    assert entry["link"] in note["content"] and "Fresh bread at home" in note["content"]
    assert "#Baking" in note["content"] and "#SourdoughStarter" in note["content"]
    assert tags(note, "t") == [["t", "baking"], ["t", "sourdoughstarter"]]
    assert tags(note, "r") == [["r", entry["link"]]]
    assert tags(note, "L") == [["L", "ISO-639-1"]] and tags(note, "l") == [["l", "en", "ISO-639-1"]]
    assert before <= note["created_at"] <= int(time.time())
    status = writer.status()
    assert status["posted"] == 1 and status["last_post_url"] == "nostr:" + nostr_sdk.EventId.parse(note["id"]).to_bech32()
    assert status["relays"] == [{"relay": nostr_relay.url, "kind": 1, "event": note["id"], "ok": True, "message": "",
                                 "fix": ""}]
    # the stored event is the one on the relay; polling again posts nothing more
    assert writer.stored() == [[note]]
    assert writer.poll().returncode == 0
    assert len(nostr_relay.events(authors=[writer.pubkey])) == 1
    assert writer.secret not in result.stderr + result.stdout + json.dumps(status)


ARTICLE_HTML = ("&lt;h2&gt;Flour&lt;/h2&gt;&lt;p&gt;Use &lt;strong&gt;strong&lt;/strong&gt; flour and "
                "&lt;a href='https://flour.example/'&gt;good water&lt;/a&gt;.&lt;/p&gt;&lt;img src='https://blog.example/loaf.jpg' alt='A loaf'&gt;")


def test_long_form_article_is_replaced_in_place_when_the_entry_changes_and_the_note_stays(tmp_path, feed_server, nostr_relay):
    writer = Writer(tmp_path, feed_server, [nostr_relay.url], long_form=True)
    writer.baseline(posts(1))
    published = datetime.now(timezone.utc) - timedelta(hours=2)
    entry = new_post(3, title="Bread, the long version", date=published, description=ARTICLE_HTML, categories=["Baking"])
    feed_server.route("/feed", rss([entry] + posts(1)))
    result = writer.poll()
    assert result.returncode == 0, result.stderr
    notes = nostr_relay.events(authors=[writer.pubkey], kinds=[1])
    articles = nostr_relay.events(authors=[writer.pubkey], kinds=[30023])
    assert len(notes) == 1 and len(articles) == 1
    article = articles[0]
    assert verified(article) and verified(notes[0])
    assert tags(article, "d") == [["d", article_identifier(entry["guid"])]]
    assert tags(article, "title") == [["title", "Bread, the long version"]]
    assert tags(article, "published_at") == [["published_at", str(int(published.timestamp()))]]
    assert tags(article, "t") == [["t", "baking"]] and tags(article, "r") == [["r", entry["link"]]]
    assert tags(article, "summary") and tags(article, "image") == [["image", "https://blog.example/loaf.jpg"]]
    assert "## Flour" in article["content"] and "**strong**" in article["content"]
    assert "[good water](https://flour.example/)" in article["content"]
    assert article["created_at"] > int(published.timestamp()) + 3600  # posted now, not backdated

    time.sleep(1.1)  # a replacement must be newer by at least a second (created_at is in seconds)
    edited = dict(entry, title="Bread, the long version (updated)",
                  description=ARTICLE_HTML.replace("good water", "cold water"))
    feed_server.route("/feed", rss([edited] + posts(1)))
    result = writer.poll()
    assert result.returncode == 0, result.stderr
    articles = nostr_relay.events(authors=[writer.pubkey], kinds=[30023], **{"#d": [article_identifier(entry["guid"])]})
    assert len(articles) == 1, "one article per address: the edit replaced it"
    replacement = articles[0]
    assert verified(replacement) and replacement["id"] != article["id"]
    assert "[cold water](https://flour.example/)" in replacement["content"]
    assert tags(replacement, "title") == [["title", "Bread, the long version (updated)"]]
    assert replacement["created_at"] > article["created_at"]
    assert nostr_relay.events(authors=[writer.pubkey], kinds=[1]) == notes  # the note was not posted again
    assert writer.status()["posted"] == 1


def test_a_relay_refusing_while_another_accepts_is_posted_and_status_shows_the_refusal(
        tmp_path, feed_server, nostr_relay, nostr_relay_restricted):
    writer = Writer(tmp_path, feed_server, [nostr_relay.url, nostr_relay_restricted.url])  # this key is not allowed there
    writer.baseline(posts(1))
    feed_server.route("/feed", rss([new_post(4)] + posts(1)))
    result = writer.poll()
    assert result.returncode == 0, result.stderr
    [note] = nostr_relay.events(authors=[writer.pubkey])
    assert verified(note)
    assert nostr_relay_restricted.events(authors=[writer.pubkey]) == []
    status = writer.status()
    assert status["posted"] == 1 and status["failed"] == 0
    refused = next(answer for answer in status["relays"] if answer["relay"] == nostr_relay_restricted.url)
    assert refused["ok"] is False and refused["message"].startswith("rejected:") and writer.pubkey in refused["message"]
    assert "allow your npub" in refused["fix"]
    text = writer.run("status").stdout
    assert f"relay {nostr_relay_restricted.url}: note REFUSED (rejected:" in text and "allow your npub" in text
    assert f"relay {nostr_relay.url}: note accepted" in text


def test_a_relay_down_during_the_post_gets_the_same_event_when_it_is_back(tmp_path, feed_server, nostr_relay_factory):
    relay = nostr_relay_factory()
    writer = Writer(tmp_path, feed_server, [relay.url])
    writer.baseline(posts(1))
    relay.stop()
    feed_server.route("/feed", rss([new_post(5)] + posts(1)))
    result = writer.poll()
    assert result.returncode == 0, result.stderr
    status = writer.status()
    assert (status["posted"], status["queued"]) == (0, 1)
    [answer] = status["relays"]
    assert answer["ok"] is False and "cannot connect" in answer["message"] and "reachable" in answer["fix"]
    [[signed]] = writer.stored()  # signed and stored before the send that failed
    relay.start()
    time.sleep(2.5)  # the retry is due after retry_delay (1 s, with jitter)
    result = writer.poll()
    assert result.returncode == 0, result.stderr
    assert relay.events(authors=[writer.pubkey]) == [signed]  # the very event stored: same id, one event
    assert verified(signed)
    assert writer.status()["posted"] == 1
    assert writer.poll().returncode == 0 and len(relay.events(authors=[writer.pubkey])) == 1


def test_the_restricted_relay_refusals_are_recorded_with_their_reason(tmp_path, feed_server, nostr_relay_restricted):
    # The allowed key, a post too long for the relay, which does not state its limit (NIP-11): refused as invalid,
    # the delivery fails with the relay's own words -- bridge does not send it again and again.
    writer = Writer(tmp_path, feed_server, [nostr_relay_restricted.url], keys=nostr_relay_restricted.allowed_keys)
    writer.baseline(posts(1))
    long_summary = "&lt;p&gt;" + "Every loaf tells a story of patience and flour. " * 12 + "&lt;/p&gt;"
    feed_server.route("/feed", rss([new_post(6, description=long_summary)] + posts(1)))
    result = writer.poll()
    assert result.returncode == 1 and "gave up on" in result.stderr  # a post failed: poll says so
    status = writer.status()
    assert status["failed"] == 1 and status["posted"] == 0
    assert "280 characters should be enough for anybody" in status["failures"][0]["reason"]
    [answer] = status["relays"]
    assert answer["message"].startswith("invalid:") and "room for it" in answer["fix"]
    assert nostr_relay_restricted.events(authors=[writer.pubkey]) == []


def test_a_key_no_relay_takes_pauses_the_account_and_keeps_the_post(tmp_path, feed_server, nostr_relay_restricted):
    writer = Writer(tmp_path, feed_server, [nostr_relay_restricted.url])  # a key outside its allow-list
    writer.baseline(posts(1))
    feed_server.route("/feed", rss([new_post(8)] + posts(1)))
    result = writer.poll()
    status = writer.status()
    assert status["paused"] and "rejected:" in status["paused"] and "allow your key" in status["paused"]
    assert status["queued"] == 1 and status["posted"] == 0
    assert nostr_relay_restricted.events(authors=[writer.pubkey]) == []
    assert result.returncode == 1 and "paused" in result.stderr


def test_a_backfilled_old_entry_is_posted_now_and_not_refused_as_backdated(tmp_path, feed_server, nostr_relay):
    writer = Writer(tmp_path, feed_server, [nostr_relay.url], long_form=True)
    old = datetime.now(timezone.utc) - timedelta(days=800)  # older than the relay's oldest_event (a year)
    entry = new_post(9, title="An old favourite", date=old, description=ARTICLE_HTML)
    writer.baseline([entry])
    result = writer.run("backfill", "--feed", "blog", "--since", (old - timedelta(days=1)).date().isoformat(),
                        "--pace", "1s")
    assert result.returncode == 0, result.stderr
    result = writer.poll()
    assert result.returncode == 0, result.stderr
    events = nostr_relay.events(authors=[writer.pubkey])
    assert sorted(event["kind"] for event in events) == [1, 30023] and all(map(verified, events))
    now = int(time.time())
    assert all(now - 300 <= event["created_at"] <= now for event in events)
    article = next(event for event in events if event["kind"] == 30023)
    assert tags(article, "published_at") == [["published_at", str(int(old.timestamp()))]]


def test_preview_json_shows_the_unsigned_events_and_no_secret(tmp_path, feed_server, nostr_relay):
    writer = Writer(tmp_path, feed_server, [nostr_relay.url], long_form=True)
    feed_server.route("/feed", rss([new_post(2, title="Preview me", description=ARTICLE_HTML, categories=["Baking"])]))
    result = writer.run("preview", "--feed", "blog", "--json")
    assert result.returncode == 0, result.stderr
    [item] = json.loads(result.stdout)
    assert item["platform"] == "nostr"
    note, article = item["payload"]["events"]
    assert set(note) == set(article) == {"kind", "content", "tags"}  # no id, pubkey, created_at or sig yet
    assert note["kind"] == 1 and ["t", "baking"] in note["tags"] and article["kind"] == 30023
    assert writer.secret not in result.stdout + result.stderr
    assert writer.keys.secret_key().to_hex() not in result.stdout + result.stderr


def test_a_relay_stating_a_small_limit_gets_a_shorter_note_and_no_article(tmp_path, feed_server, nostr_relay,
                                                                         nostr_relay_factory):
    small = nostr_relay_factory(max_event_size=200)  # says so in its NIP-11 document
    writer = Writer(tmp_path, feed_server, [nostr_relay.url, small.url], long_form=True)
    writer.baseline(posts(1))
    long_summary = "&lt;p&gt;" + "Every loaf tells a story of patience and flour. " * 12 + "&lt;/p&gt;"
    entry = new_post(11, title="Patience", description=long_summary + ARTICLE_HTML)
    feed_server.route("/feed", rss([entry] + posts(1)))
    result = writer.poll()
    assert result.returncode == 0, result.stderr
    [note] = small.events(authors=[writer.pubkey])
    assert note["kind"] == 1 and len(note["content"]) <= 200 and entry["link"] in note["content"] and verified(note)
    on_open = nostr_relay.events(authors=[writer.pubkey])
    assert sorted(event["kind"] for event in on_open) == [1, 30023] and all(map(verified, on_open))
    assert note in on_open  # the same note on both relays: one event, one id
    refused = [answer for answer in writer.status()["relays"] if not answer["ok"]]
    assert [(answer["relay"], answer["kind"]) for answer in refused] == [(small.url, 30023)]
    assert "too long for this relay" in refused[0]["message"] and "max_content_length is 200" in refused[0]["message"]


def test_doctor_prints_each_relays_information(tmp_path, feed_server, nostr_relay, nostr_relay_restricted):
    writer = Writer(tmp_path, feed_server, [nostr_relay.url, nostr_relay_restricted.url])
    feed_server.route("/feed", rss(posts(1)))
    result = writer.run("doctor")
    assert writer.keys.public_key().to_bech32() in result.stdout
    assert f"{nostr_relay.url}: max content 65536 characters" in result.stdout
    assert f"{nostr_relay_restricted.url}: no content limit stated" in result.stdout


def test_a_hex_key_works_and_a_wrong_key_pauses_with_the_fix(tmp_path, feed_server, nostr_relay):
    writer = Writer(tmp_path, feed_server, [nostr_relay.url], nsec=False)
    writer.baseline(posts(1))
    feed_server.route("/feed", rss([new_post(12)] + posts(1)))
    wrong = writer.run("poll", "--feed", "blog", secret="nsec1notakey")
    assert wrong.returncode == 1 and "not a Nostr secret key" in wrong.stderr and "nsec1" in wrong.stderr
    assert "nsec1notakey" not in wrong.stderr
    assert writer.status()["queued"] == 1
    fixed = writer.poll()
    assert fixed.returncode == 0, fixed.stderr
    [note] = nostr_relay.events(authors=[writer.pubkey])
    assert verified(note)
