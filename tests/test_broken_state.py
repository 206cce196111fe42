"""A state database that cannot be used: every command says what is wrong in one line and exits 1, `doctor` finds
it, and the user's file is never changed. The read-only file system and the full disk are real: a tiny tmpfs
mounted for the test (root, as in CI), remounted read-only or filled to the last byte.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import subprocess
from pathlib import Path

import pytest

from bridge.model import Entry
from bridge.state import State
from tests.test_cli import bridge
from tests.test_pipeline import posts, rss

COMMANDS = [("poll",), ("poll", "--dry-run"), ("status",), ("retry",), ("run",), ("backfill", "--feed", "blog", "--dry-run"),
            ("doctor", "--offline")]


def write_config(tmp_path: Path, state: Path, feed_url: str = "http://127.0.0.1:9/feed") -> Path:
    config = tmp_path / "config.toml"
    config.write_text(f'[bridge]\nstate = "{state}"\ninterval = "1s"\nallow_private_addresses = true\n\n'
                      f'[[feeds]]\nname = "blog"\nurl = "{feed_url}"\n')
    return config


def healthy_state(path: Path, entries: int = 300) -> None:
    with State.open(path) as state:
        state.ensure_feed("blog", "http://127.0.0.1:9/feed")
        with state.transaction():
            for number in range(entries):
                entry = Entry(key=f"k{number}", link=f"https://b.example/{number}", title=f"Post {number}",
                              summary_html="<p>" + "words " * 40 + "</p>")
                state.add_entry("blog", entry, "baseline", "h", [f"b.example/{number}"], 1.0)


def digest(path: Path) -> str:
    if path.is_dir():
        return "dir:" + ",".join(sorted(p.name for p in path.iterdir()))
    return hashlib.sha256(path.read_bytes()).hexdigest()


def assert_one_line_error(result: subprocess.CompletedProcess, *needles: str) -> str:
    assert result.returncode == 1, (result.args, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and result.stderr.strip().endswith(errors[0]), result.stderr
    for needle in needles:
        assert needle in errors[0], errors[0]
    return errors[0]


def truncated(path: Path) -> None:
    healthy_state(path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def garbage(path: Path) -> None:
    path.write_bytes(hashlib.sha512(b"not a database").digest() * 1024)


def text_file(path: Path) -> None:
    path.write_text('[bridge]\nstate = "this is a config file, not the state"\n')


def directory(path: Path) -> None:
    path.mkdir()
    (path / "something").write_text("kept")


BROKEN = {
    "truncated": (truncated, "is damaged"),
    "garbage": (garbage, "is not a bridge state database"),
    "text file": (text_file, "is not a bridge state database"),
    "directory": (directory, "is a directory"),
}


@pytest.mark.parametrize("kind", list(BROKEN))
def test_every_command_on_a_broken_state_says_what_to_do_and_changes_nothing(kind, tmp_path):
    make, problem = BROKEN[kind]
    path = tmp_path / "state.sqlite3"
    make(path)
    before = digest(path)
    config = write_config(tmp_path, path)
    for command in COMMANDS:
        result = bridge("--config", str(config), *command, timeout=60)
        if command[0] == "doctor":
            assert result.returncode == 1 and "Traceback" not in result.stderr, result.stdout + result.stderr
            assert "FAIL state" in result.stdout and problem in result.stdout, result.stdout
        else:
            line = assert_one_line_error(result, problem)
            assert "mv " in line or "set [bridge] state" in line  # the fix
        assert digest(path) == before, f"{command} changed the broken state"


def test_doctor_runs_integrity_check_and_reports_a_damaged_page(tmp_path):
    path = tmp_path / "state.sqlite3"
    healthy_state(path)
    config = write_config(tmp_path, path)
    assert "ok   state integrity: integrity_check: ok" in bridge("--config", str(config), "doctor", "--offline").stdout
    data = bytearray(path.read_bytes())
    page = 4096
    data[page * 5: page * 7] = b"\xa5" * (2 * page)  # two pages of the tables; the file header stays valid
    path.write_bytes(bytes(data))
    result = bridge("--config", str(config), "doctor", "--offline")
    assert result.returncode == 1, result.stdout
    assert "FAIL state integrity: integrity_check:" in result.stdout and "all is well" not in result.stdout
    assert ".recover" in result.stdout and "Traceback" not in result.stderr


@contextlib.contextmanager
def polled_state_on_tiny_tmpfs(tmp_path: Path, feed_server, size: str):
    """(mount, state path, config): a tmpfs of `size` mounted for the test, holding a state that polled 3 entries."""
    mount = tmp_path / "mnt"
    mount.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(mount)],
                             capture_output=True, text=True)
    assert mounted.returncode == 0, f"mounting a tmpfs needs root (CAP_SYS_ADMIN), as in CI: {mounted.stderr}"
    try:
        feed_server.route("/feed", rss(posts(3)))
        path = mount / "state.sqlite3"
        config = write_config(tmp_path, path, feed_server.url("/feed"))
        assert bridge("--config", str(config), "poll").returncode == 0
        yield mount, path, config
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=True)


def test_read_only_file_system_every_writer_says_so_and_status_still_reads(tmp_path, feed_server):
    with polled_state_on_tiny_tmpfs(tmp_path, feed_server, "4m") as (mount, path, config):
        subprocess.run(["mount", "-o", "remount,ro", str(mount)], check=True)
        before = digest(path)
        for command in (("poll",), ("retry",), ("run",), ("backfill", "--feed", "blog")):
            assert_one_line_error(bridge("--config", str(config), *command, timeout=60), "read-only")
        status = bridge("--config", str(config), "status")
        assert status.returncode == 0 and "3 entries known" in status.stdout, status.stderr
        doctor = bridge("--config", str(config), "doctor", "--offline")
        assert doctor.returncode == 1 and "FAIL state writable" in doctor.stdout, doctor.stdout
        assert digest(path) == before


def fill(directory: Path) -> Path:
    filler = directory / "filler"
    fd = os.open(filler, os.O_CREAT | os.O_WRONLY, 0o600)
    try:
        with contextlib.suppress(OSError):
            while True:
                os.write(fd, b"\0" * 4096)
    finally:
        os.close(fd)
    return filler


def test_full_disk_fails_the_poll_in_one_line_loses_nothing_and_doctor_sees_it(tmp_path, feed_server):
    with polled_state_on_tiny_tmpfs(tmp_path, feed_server, "1m") as (mount, path, config):
        long = [dict(item, title=item["title"] + " " + "long title words " * 100) for item in posts(60, start=3)]
        feed_server.route("/feed", rss(long + posts(3)))
        filler = fill(mount)
        # --feed: polled due or not (the polls here can all fall within the feed's interval)
        full = bridge("--config", str(config), "poll", "--feed", "blog")
        assert_one_line_error(full, "is full", "free some space")
        doctor = bridge("--config", str(config), "doctor", "--offline")
        assert doctor.returncode == 1 and "FAIL state disk space" in doctor.stdout, doctor.stdout
        filler.unlink()
        again = bridge("--config", str(config), "poll", "--feed", "blog")
        assert again.returncode == 0, again.stderr
        assert "60 new entries" in again.stdout
        with State.open_readonly(path) as state:
            assert state.count_entries("blog") == 63
            assert state.check_integrity() == ([], "integrity_check")
