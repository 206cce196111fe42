"""`bridge run` as a real process: systemd notifications, signals, reloads, one daemon per database. The tests that
take `store` run with the state in SQLite and in PostgreSQL."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path


from tests.mastodon_fake import MastodonFake
from tests.postgres_fixture import Store
from tests.test_pipeline import posts, rss

ROOT = Path(__file__).resolve().parent.parent


def start_daemon(config: Path, env: dict | None = None) -> subprocess.Popen:
    full_env = {**os.environ, **(env or {})}
    full_env.pop("BRIDGE_CONFIG", None)
    return subprocess.Popen([sys.executable, "-m", "bridge", "--config", str(config), "run"], cwd=ROOT, env=full_env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for(condition, timeout: float = 30.0, step: float = 0.1, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(step)
    raise AssertionError(f"timed out waiting for {what}")


def stop(process: subprocess.Popen, sig=signal.SIGTERM, timeout: float = 30.0) -> tuple[int, str]:
    process.send_signal(sig)
    try:
        _, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        _, err = process.communicate()
        raise AssertionError(f"bridge run did not exit after {sig!r}:\n{err}")
    return process.returncode, err


def feed_config(tmp_path: Path, feeds: dict[str, str], *, accounts: str = "", feed_accounts: str = "[]", extra: str = "",
                store: Store | None = None) -> Path:
    where = store.config_line() if store else f'state = "{tmp_path}/state.sqlite3"'
    lines = [f'[bridge]\n{where}\ninterval = "1s"\ndelivery_interval = "1s"\n'
             f'allow_private_addresses = true\n{extra}\n{accounts}']
    for name, url in feeds.items():
        lines.append(f'[[feeds]]\nname = "{name}"\nurl = "{url}"\naccounts = {feed_accounts}\n')
    path = tmp_path / "config.toml"
    path.write_text("\n".join(lines))
    return path


def _store(where: Path | Store) -> Store:
    """A test's state: its Store, or given its tmp_path, the SQLite file feed_config puts there."""
    return where if isinstance(where, Store) else Store("sqlite", where / "state.sqlite3")


def feed_polled(where: Path | Store, name: str) -> bool:
    store = _store(where)
    if store.url is None and not store.path.exists():
        return False
    with store.open("readonly") as state:
        row = state.get_feed(name)
        return bool(row and row.last_checked_at)


def delivery_states(where: Path | Store) -> list[str]:
    store = _store(where)
    if store.url is None and not store.path.exists():
        return []
    with store.open("readonly") as state:
        return [row.state for row in state.deliveries()]


def test_sd_notify_ready_status_watchdog_stopping(tmp_path, feed_server, store):
    feed_server.route("/feed", rss(posts(2)))
    config = feed_config(tmp_path, {"blog": feed_server.url("/feed")}, store=store)
    address = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(address)
    sock.settimeout(20)
    process = start_daemon(config, {"NOTIFY_SOCKET": address, "WATCHDOG_USEC": "2000000"})
    messages: list[str] = []

    def receive_until(prefix: str) -> str:
        while True:
            message = sock.recv(4096).decode()
            messages.append(message)
            if any(line.startswith(prefix) for line in message.splitlines()):
                return message

    try:
        ready = receive_until("READY=1")
        assert "STATUS=1 feeds" in ready
        receive_until("WATCHDOG=1")
        receive_until("WATCHDOG=1")
        code, err = stop(process)
        receive_until("STOPPING=1")
    finally:
        if process.poll() is None:
            process.kill()
        sock.close()
    assert code == 0, err
    status_lines = [line for m in messages for line in m.splitlines() if line.startswith("STATUS=")]
    assert any("queued" in line and "failing" in line for line in status_lines)


def test_sighup_picks_up_a_new_feed_and_sigterm_exits_0(tmp_path, feed_server, store):
    feed_server.route("/a", rss(posts(1)))
    feed_server.route("/b", rss(posts(1)))
    config = feed_config(tmp_path, {"a": feed_server.url("/a")}, store=store)
    process = start_daemon(config)
    try:
        wait_for(lambda: feed_polled(store, "a"), what="feed a polled")
        assert not feed_server.requests_for("/b")
        feed_config(tmp_path, {"a": feed_server.url("/a"), "b": feed_server.url("/b")}, store=store)
        process.send_signal(signal.SIGHUP)
        wait_for(lambda: feed_polled(store, "b"), what="feed b polled after SIGHUP")
        code, err = stop(process)
    finally:
        if process.poll() is None:
            process.kill()
    assert code == 0, err
    assert "config reloaded" in err


def test_one_daemon_per_state_database_even_with_the_lock_file_deleted(tmp_path, feed_server):
    feed_server.route("/a", rss(posts(1)))
    config = feed_config(tmp_path, {"a": feed_server.url("/a")})
    first = start_daemon(config)

    def refused(command: str) -> bool:
        second = subprocess.run([sys.executable, "-m", "bridge", "--config", str(config), command], cwd=ROOT,
                                capture_output=True, text=True, timeout=60)
        assert "Traceback" not in second.stderr, second.stderr
        return second.returncode == 1 and "only one may run at a time" in second.stderr

    try:
        wait_for(lambda: feed_polled(tmp_path, "a"), what="first daemon running")
        assert refused("run")
        lock_note = tmp_path / "state.sqlite3.lock"
        assert lock_note.read_text() == str(first.pid)
        lock_note.unlink()  # the lock is on the database itself: this file only names the holder
        assert refused("run") and refused("poll")
    finally:
        code, err = stop(first)
    assert code == 0, err


def test_sigterm_mid_publish_finishes_the_post_and_exits_0(tmp_path, feed_server, store):
    with MastodonFake() as fake:
        token = fake.add_account("writer")
        feed_server.route("/feed", rss(posts(1)))
        accounts = (f'[accounts.masto]\ntype = "mastodon"\ninstance = "{fake.url}"\n'
                    f'access_token = {{ env = "BRIDGE_TEST_TOKEN" }}\nposts_per_hour = 100\n')
        config = feed_config(tmp_path, {"blog": feed_server.url("/feed")}, accounts=accounts, feed_accounts='["masto"]',
                             store=store)
        process = start_daemon(config, {"BRIDGE_TEST_TOKEN": token})
        try:
            wait_for(lambda: feed_polled(store, "blog"), what="baseline poll")
            fake.inject("status_create", "slow", times=1, seconds=3)
            feed_server.route("/feed", rss(posts(1, start=1) + posts(1)))
            wait_for(lambda: delivery_states(store) == ["sending"], what="the publish to start", step=0.02)
            assert not fake.statuses("writer")  # the slow answer is still on its way
            code, err = stop(process)
        finally:
            if process.poll() is None:
                process.kill()
        assert code == 0, err
        assert len(fake.statuses("writer")) == 1
        with store.open("readonly") as state:
            rows = state.deliveries(account="masto")
        assert [row.state for row in rows] == ["posted"]


def test_a_poll_that_queues_posts_starts_delivery_now_or_at_the_flood_limits_next_slot():
    """A changed round's polls each queue a post: for an account flood control holds, no pass runs before its
    next slot (they ran back to back, each logging the same warning); another account's posts go at once."""
    from apscheduler.schedulers.background import BackgroundScheduler

    from bridge.config import parse_config
    from bridge.daemon import Daemon, _utc

    now = 1_800_000_000.0
    daemon = Daemon(Path("unused.toml"), deliverer_factory=None, clock=lambda: now)
    daemon.config = parse_config({
        "accounts": {name: {"type": "mastodon", "instance": "https://m.example", "access_token": {"env": "TOKEN"}}
                     for name in ("held", "free")},
        "feeds": [{"name": "to-held", "url": "https://a.example/feed", "accounts": ["held"]},
                  {"name": "to-both", "url": "https://b.example/feed", "accounts": ["held", "free"]}],
    })
    daemon.scheduler = BackgroundScheduler(timezone="UTC")
    daemon.scheduler.start(paused=True)
    try:
        daemon.scheduler.add_job(lambda: None, "interval", seconds=3600, id="deliver", next_run_time=_utc(now + 3600))
        daemon._flood_held = {"held": now + 600}

        daemon._deliver_soon("to-held")
        assert daemon.scheduler.get_job("deliver").next_run_time == _utc(now + 600)
        daemon._deliver_soon("to-held")  # already planned for then: left alone
        assert daemon.scheduler.get_job("deliver").next_run_time == _utc(now + 600)
        daemon._deliver_soon("to-both")  # "free" may post now
        assert daemon.scheduler.get_job("deliver").next_run_time == _utc(now)
    finally:
        daemon.scheduler.shutdown(wait=False)


def test_a_claim_job_started_while_one_runs_returns_at_once():
    from bridge.daemon import Daemon

    daemon = Daemon(Path("unused.toml"), deliverer_factory=None)
    daemon._poll_claimed = lambda: (_ for _ in ()).throw(AssertionError("a second claim ran"))
    with daemon._claiming:
        daemon._claim_job()  # quietly: the running claim goes on until nothing is due
