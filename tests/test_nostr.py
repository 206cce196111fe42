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
import pytest

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
                 f"relays = {json.dumps(relays)}\nposts_per_hour = 3600\nposts_per_day = 10000\n"]
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
