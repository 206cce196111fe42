"""The state in PostgreSQL: the same schema as SQLite's, migrations applied once however many workers start
together, the commands that read or edit the state (status, doctor, retry, backfill) against it, and a database
URL that is a credential: never shown, and a bad one or an unreachable server said in one line."""

from __future__ import annotations

import json
import re
import threading

import psycopg

from bridge.model import Entry
from bridge.state import State
from bridge.state.postgres import MIGRATIONS_TABLE, PG_MIGRATIONS
from tests.mastodon_fake import MastodonFake
from tests.takahe_fixture import _free_port
from tests.test_cli import bridge, write_config
from tests.test_daemon import wait_for
from tests.test_pipeline import posts, rss


def _sqlite_columns() -> dict[str, set[str]]:
    with State.open_memory() as state:
        tables = [row[0] for row in state.db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name != '_sqlite_migrations'")]
        return {table: {row["name"] for row in state.db.execute(f"PRAGMA table_info({table})")} for table in tables}


def _postgres_columns(url: str) -> dict[str, set[str]]:
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT table_name, column_name FROM information_schema.columns "
                            "WHERE table_schema = current_schema() AND table_name != %s", [MIGRATIONS_TABLE]).fetchall()
    columns: dict[str, set[str]] = {}
    for table, column in rows:
        columns.setdefault(table, set()).add(column)
    return columns


def test_both_stores_have_the_same_tables_and_columns(postgres):
    """A migration added to one store and not the other fails here: append its twin (bridge/state/postgres.py)."""
    assert _postgres_columns(postgres.new_database()) == _sqlite_columns()


def test_workers_starting_together_on_an_empty_database_apply_the_migrations_once(postgres):
    url = postgres.new_database(empty=True)
    start = threading.Barrier(4)
    opened, failures = [], []

    def worker():
        start.wait()
        try:
            with State.open_postgres(url) as state:
                opened.append(state.applied_migrations())
        except Exception as exc:  # noqa: BLE001 -- reported below
            failures.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert opened == [[name for name, _ in PG_MIGRATIONS]] * 4
    with psycopg.connect(url) as conn:
        assert conn.execute(f"SELECT count(*) FROM {MIGRATIONS_TABLE}").fetchone()[0] == len(PG_MIGRATIONS)


def test_status_on_an_empty_database_reads_it_as_empty_and_changes_nothing(postgres):
    url = postgres.new_database(empty=True)
    with State.open_postgres(url, readonly=True) as state:
        assert state.list_feeds() == [] and state.migrations_due == [name for name, _ in PG_MIGRATIONS]
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT to_regclass('feeds')").fetchone()[0] is None


def test_text_with_a_nul_character_is_stored(store):
    """SQLite keeps a NUL inside text; PostgreSQL refuses it: a feed's stray control character must not stop a poll."""
    with store.open() as state:
        state.ensure_feed("blog", "https://b.example/feed")
        with state.transaction():
            state.add_entry("blog", Entry(key="k\x00", link="https://b.example/1", title="A\x00B"), "new", "h", [], 1.0)
        [(_, entry, _)] = state.entries_of_feed("blog")
        assert entry.title.startswith("A") and entry.title.endswith("B")


def test_ensure_feeds_adds_thousands_of_new_feeds_and_keeps_or_resets_the_known_ones(store):
    """A first start with a big config adds every feed before the first poll, in a few statements on both stores."""
    with store.open() as state:
        state.ensure_feeds([("kept", "https://k.example/feed"), ("moved", "https://old.example/feed")])
        state.update_feed("kept", etag='"k1"')
        state.update_feed("moved", etag='"m1"')
        config = [(f"feed{number:04d}", f"https://f{number}.example/feed") for number in range(1200)]
        rows = state.ensure_feeds(config + [("kept", "https://k.example/feed"), ("moved", "https://new.example/feed")])
        assert len(rows) == 1202 and rows["feed1199"].url == "https://f1199.example/feed"
        assert rows["kept"].etag == '"k1"'  # the same URL: its validators stay
        assert (rows["moved"].url, rows["moved"].etag) == ("https://new.example/feed", None)  # a new URL starts afresh
        assert {row.name for row in state.list_feeds()} == set(rows)


def test_placeholders_are_translated_but_not_inside_quoted_text(store):
    with store.open() as state:
        row = state.db.execute("SELECT 'a%b?' AS text, ? AS number, '%%' AS percents", [7]).fetchone()
        assert (row["text"], row[1], dict(row)["percents"]) == ("a%b?", 7, "%%")


def _config(tmp_path, feed_url: str, fake_url: str, database: str):
    return write_config(tmp_path / "config.toml", (
        f'[bridge]\ndatabase = {database}\nallow_private_addresses = true\n'
        f'[accounts.masto]\ntype = "mastodon"\ninstance = "{fake_url}"\naccess_token = {{ env = "BRIDGE_TEST_TOKEN" }}\n'
        f'[[feeds]]\nname = "blog"\nurl = "{feed_url}"\naccounts = ["masto"]\n'))


def test_poll_status_doctor_retry_and_backfill_work_on_postgresql_and_never_show_its_password(tmp_path, feed_server, postgres):
    url = postgres.new_database()
    password = postgres.db_password
    feed_server.route("/feed", rss(posts(1, start=1)))
    with MastodonFake() as fake:
        env = {"BRIDGE_TEST_TOKEN": fake.add_account("writer"), "BRIDGE_TEST_DATABASE": url}
        config = _config(tmp_path, feed_server.url("/feed"), fake.url, '{ env = "BRIDGE_TEST_DATABASE" }')
        outputs = []

        def run(*args):
            done = bridge("--config", str(config), *args, env=env, timeout=120)
            outputs.append(done.stdout + done.stderr)
            assert "Traceback" not in done.stderr, done.stderr
            return done

        assert run("poll", "--feed", "blog").returncode == 0  # the baseline
        feed_server.route("/feed", rss(posts(2)))
        assert run("poll", "--feed", "blog", "--dry-run").returncode == 0
        assert fake.statuses("writer") == []
        with State.open_postgres(url, readonly=True) as state:
            assert state.deliveries() == []  # the dry run wrote nothing
        fake.inject("status_create", 500, times=None)
        run("poll", "--feed", "blog")
        with State.open_postgres(url) as state:  # given up on, as after the last of its attempts
            [row] = state.deliveries()
            state.mark_failed(row.id, "the server kept answering 500")
        fake.clear_faults()
        assert "1 failed or held post(s) queued again" in run("retry").stdout
        assert run("poll", "--feed", "blog").returncode == 0
        assert len(fake.statuses("writer")) == 1

        report = json.loads(run("status", "--json").stdout)
        assert report["state"] == re.sub(r":[^:@/]+@", "@", url)  # the database, without its password
        doctor = run("doctor", "--offline").stdout
        assert "ok   state (PostgreSQL)" in doctor and f"ok   state migrations: {len(PG_MIGRATIONS)} applied" in doctor
        assert "ok   state database: PostgreSQL" in doctor
        backfill = run("backfill", "--feed", "blog", "--dry-run")
        assert backfill.returncode == 0, backfill.stderr
        assert run("check-config").returncode == 0
    for output in outputs:
        assert password not in output


def test_an_unreachable_server_or_a_bad_url_is_one_line_with_the_fix_and_no_password(tmp_path):
    secret = "hunter2-Very-Secret"
    closed = _free_port()
    cases = {
        f'"postgresql://bridge:{secret}@127.0.0.1:{closed}/bridge"': "check that the server is up",
        f'"postgresql://bridge:{secret}@127.0.0.1:{closed}/bridge?sslmode=bogus"': "a setting PostgreSQL's client refuses",
        f'"mysql://bridge:{secret}@127.0.0.1/bridge"': "not a postgresql:// URL",
        f'"postgresql://bridge:{secret}@127.0.0.1:{closed}/bridge?no_such_option=1"': "not a valid PostgreSQL URL",
    }
    for database, expected in cases.items():
        config = write_config(tmp_path / "config.toml", f"[bridge]\ndatabase = {database}\n")
        for command in ("status", "poll"):
            done = bridge("--config", str(config), command, timeout=60)
            assert done.returncode == 1, done.stderr
            assert expected in done.stderr, done.stderr
            assert secret not in done.stderr + done.stdout and "Traceback" not in done.stderr
            assert len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_an_advisory_lock_on_a_dedicated_connection_is_held_against_other_workers_until_closed(postgres):
    url = postgres.new_database()
    with State.open_postgres(url) as one, State.open_postgres(url) as two:
        held = one.dedicated_connection()
        assert held.execute("SELECT pg_try_advisory_lock(?)", [42]).fetchone()[0] is True
        other = two.dedicated_connection()
        assert other.execute("SELECT pg_try_advisory_lock(?)", [42]).fetchone()[0] is False
        held.close()  # the worker let go, or died: its server process ends a moment later, and the lock with it
        wait_for(lambda: other.execute("SELECT pg_try_advisory_lock(?)", [42]).fetchone()[0], what="the lock freed")
        other.close()
