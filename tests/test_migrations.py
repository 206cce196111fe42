"""Migrations are append-only: a database made by any earlier schema is brought up to date and keeps working.

tests/state_schemas/<commit>.sql are databases as made by 0001_initial before it was edited in place (rebuilt
from that commit's migration, with a feed, entries and a queued post), loaded here and run through the CLI.
"""

from __future__ import annotations

import hashlib
import inspect
import os
import sqlite3
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from pathlib import Path

import pytest
import sqlite_utils

from bridge.state import State, migrations
from bridge.state.sqlite import Database
from tests.mastodon_fake import MastodonFake

ROOT = Path(__file__).resolve().parent.parent
SCHEMAS = Path(__file__).resolve().parent / "state_schemas"
BLOG = "http://blog.example.com"

# The source of every migration as it shipped. A failure here means a shipped migration was edited: undo the
# edit and append a new migration instead. A new migration adds its line.
SHIPPED = {
    "0001_initial": "7e89c2d2f1f983cade695221bee17fa29518e6d93bccdc3d4c49fcc1bdfbb2be",
    "0002_repair_earlier_schemas": "e4bd640982cc181ced252386537080bfb69ad156afed62baed7fb0fc878c0396",
    "0003_account_deferred_at": "d527da37b7b7cc598a4f3245c9bd79e7bf8b7ce0672230764817601aefa2c4ae",
    "0004_nostr": "4a5626cdd4dc3558477bc2dbdaef802086435976351b8305d0f780f8b82264d0",
    "0005_alerts": "bcba0550f70caf344e0c06c7060e47b9cba6c9767b533abb0dd5f591ed04339b",
    "0006_reactions": "bb7e4a90d19d4d25c83403336c74a597bf0865406492fe422bd9b63a0242acde",
    "0007_threads": "a1f68a8ae01414e152840d9a184e683d97e16dc64a5be863681f89ce5b824786",
    "0008_life": "74d9f72f73a4026f20686d659255ab6f47ecf623b052b8b9597a5134ad1bb6e6",
    "0009_websub": "d7db273d11af54e241249597ca657bed9714d9adb3957507b2bee64b57be1462",
    "0010_longnotes": "908c03403eda6a55702ab605afc00b7a3639256047003c8ee31d7b4d4a9d590a",
    "0011_workers": "60449737cca6cf5974414c790cc805f4969769cf9a9478f4c0c6db692b1caf27",
    "0012_pgperf": "4ed99c96ddea7b0ea720177b88270825ba53e5b61713776fbaee6bd3e0d275d8",
}


def _source_hash(function) -> str:
    return hashlib.sha256(inspect.getsource(function).encode()).hexdigest()


def test_no_shipped_migration_was_edited():
    registered = {migration.name: _source_hash(migration.fn) for migration in migrations.pending(Database(sqlite3.connect(":memory:")))}
    assert list(registered)[:len(SHIPPED)] == list(SHIPPED), "migrations are append-only: add new ones at the end"
    for name, digest in registered.items():
        assert name in SHIPPED, f"record the hash of the new migration {name} in SHIPPED: {digest}"
        assert digest == SHIPPED[name], f"migration {name} was edited after it shipped; revert it and append a new one"


def made_by_sqlite_utils(path: Path) -> None:
    """A database as bridge made it before bridge/state/sqlite.py: the same migrations, applied by sqlite-utils."""
    theirs = sqlite_utils.Migrations("bridge")
    for migration in migrations.pending(Database(sqlite3.connect(":memory:"))):
        theirs(name=migration.name)(migration.fn)
    db = sqlite_utils.Database(path)
    theirs.apply(db)
    db.close()
    path.chmod(0o600)


def schema(path: Path) -> list[tuple]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute("SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY name").fetchall()
    finally:
        conn.close()


def test_a_database_migrated_by_sqlite_utils_opens_as_up_to_date_and_the_schemas_are_identical(tmp_path):
    theirs, ours = tmp_path / "theirs.sqlite3", tmp_path / "ours.sqlite3"
    made_by_sqlite_utils(theirs)
    with State.open(theirs) as state:
        assert state.pending_migrations() == []
        assert state.applied_migrations() == list(SHIPPED)[:len(state.applied_migrations())]
        state.ensure_feed("blog", "https://blog.example.com/feed.xml")
    State.open(ours).close()
    assert schema(ours) == schema(theirs)  # the record table and its unique index too, byte for byte
    # and sqlite-utils reads bridge's record as its own: nothing pending, in the order applied
    theirs_view = sqlite_utils.Migrations("bridge")
    for migration in migrations.pending(Database(sqlite3.connect(":memory:"))):
        theirs_view(name=migration.name)(migration.fn)
    db = sqlite_utils.Database(ours)
    assert theirs_view.pending(db) == []
    assert [row.name for row in theirs_view.applied(db)] == [m.name for m in theirs_view._migrations]
    db.close()


def test_a_migration_that_fails_is_rolled_back_with_nothing_recorded(tmp_path):
    from bridge.state.sqlite import Migrations

    steps = Migrations("bridge")

    @steps(name="0001_table")
    def _one(db: Database) -> None:
        db.execute("CREATE TABLE kept (id INTEGER)")

    @steps(name="0002_broken")
    def _two(db: Database) -> None:
        db.execute("CREATE TABLE half (id INTEGER)")
        db.execute("THIS IS NOT SQL")

    db = Database(sqlite3.connect(tmp_path / "state.sqlite3", isolation_level=None))
    with pytest.raises(sqlite3.OperationalError):
        steps.apply(db)
    tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert "kept" in tables and "half" not in tables
    assert [m.name for m in steps.applied(db)] == ["0001_table"]
    assert [m.name for m in steps.pending(db)] == ["0002_broken"]


def load_schema(name: str, path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.executescript((SCHEMAS / f"{name}.sql").read_text())
    conn.close()
    path.chmod(0o600)


def rss(items: list[tuple[str, str]]) -> str:
    now = datetime.now(timezone.utc)
    parts = ['<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>A Blog</title>'
             f"<link>{BLOG}/</link>"]
    for number, (guid, title) in enumerate(items):
        parts.append(f'<item><guid isPermaLink="false">{guid}</guid><title>{title}</title>'
                     f"<link>{BLOG}/posts/{guid.split('-')[1]}</link><description>About {title}.</description>"
                     f"<pubDate>{format_datetime(now - timedelta(hours=number + 1))}</pubDate></item>")
    return "".join(parts) + "</channel></rss>"


@pytest.mark.parametrize("schema", sorted(path.stem for path in SCHEMAS.glob("*.sql")))
def test_a_database_from_an_earlier_schema_is_migrated_then_polls_delivers_and_passes_doctor(schema, tmp_path, feed_server):
    state_path = tmp_path / "state.sqlite3"
    load_schema(schema, state_path)
    feed_server.route("/feed.xml", rss([("post-3", "Third post"), ("post-2", "Second post"), ("post-1", "First post")]))
    with MastodonFake() as fake:
        token = fake.add_account("alice")
        config = tmp_path / "config.toml"
        config.write_text(
            f'[bridge]\nstate = "{state_path}"\nallow_private_addresses = true\n\n'
            f'[accounts.masto]\ntype = "mastodon"\ninstance = "{fake.url}"\naccess_token = {{ env = "BRIDGE_TEST_TOKEN" }}\n\n'
            f'[[feeds]]\nname = "blog"\nurl = "{feed_server.url("/feed.xml")}"\naccounts = ["masto"]\n'
        )
        # The article links name blog.example.com: the feed server answers for it as a proxy; nothing leaves loopback.
        env = {**os.environ, "BRIDGE_TEST_TOKEN": token, "HTTP_PROXY": feed_server.base_url,
               "http_proxy": feed_server.base_url, "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}
        env.pop("BRIDGE_CONFIG", None)

        def bridge(*args: str) -> subprocess.CompletedProcess:
            return subprocess.run([sys.executable, "-m", "bridge", "--config", str(config), *args], capture_output=True,
                                  text=True, timeout=120, env=env, cwd=ROOT)

        before = bridge("doctor", "--offline")
        assert before.returncode == 0, before.stdout + before.stderr
        assert "to apply on next start" in before.stdout
        polled = bridge("poll")
        assert polled.returncode == 0, polled.stdout + polled.stderr
        assert "Traceback" not in polled.stderr
        # the post queued by the old version goes first; the new entry waits its turn (posts_per_hour spacing)
        assert "1 new entry" in polled.stdout and "posted 1, failed 0" in polled.stdout
        assert [status["text"].split("\n")[0] for status in fake.statuses("alice")] == ["Second post"]
        with State.open_readonly(state_path) as state:
            assert state.pending_migrations() == []
            assert {row.entry_key: row.state for row in state.deliveries(account="masto")} == {
                "post-2": "posted", "post-3": "pending"}
            assert state.account("masto")["paused_fingerprint"] is None
        after = bridge("doctor", "--offline")
    assert after.returncode == 0, after.stdout + after.stderr
    assert "all is well" in after.stdout and "to apply" not in after.stdout
