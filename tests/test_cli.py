"""The command line as users run it: real subprocesses, real exit codes, the corpus served on loopback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import click
import pytest

from bridge.state import State
from tests.feedserver import CORPUS_DIR, require_corpus

ROOT = Path(__file__).resolve().parent.parent


def bridge(*args: str, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    full_env = {**os.environ, **(env or {})}
    full_env.pop("BRIDGE_CONFIG", None)
    return subprocess.run([sys.executable, "-m", "bridge", *args], capture_output=True, text=True, timeout=timeout,
                          env=full_env, cwd=ROOT)


def write_config(path: Path, body: str) -> Path:
    path.write_text(body)
    return path


def manifest() -> list[tuple[str, int]]:
    rows = (CORPUS_DIR / "MANIFEST.tsv").read_text(encoding="utf-8").splitlines()[1:]
    return [(row.split("\t")[0], int(row.split("\t")[3])) for row in rows if row.strip()]


def test_poll_over_the_whole_corpus_then_conditional_requests(tmp_path, feed_server, store):
    """Every corpus feed, served locally: the first poll records every entry, the second gets 304s."""
    require_corpus()
    feeds = manifest()
    lines = [f'[bridge]\n{store.config_line()}\n']
    for number, (name, _count) in enumerate(feeds):
        lines.append(f'[[feeds]]\nname = "f{number:02d}"\nurl = "{feed_server.corpus_url(name)}"\n')
    config = write_config(tmp_path / "config.toml", "\n".join(lines))
    first = bridge("--config", str(config), "poll")
    # the one feed that is broken beyond repair fails on its own; every other feed is recorded
    assert first.returncode == 1, first.stderr
    assert f"polled {len(feeds)} feed(s)" in first.stdout and "1 failed" in first.stdout
    with store.open("readonly") as state:
        known = {row.name: state.count_entries(row.name) for row in state.list_feeds()}
        failed = [row.name for row in state.list_feeds() if row.last_outcome == "error"]
    assert failed == [f"f{number:02d}" for number, (name, _) in enumerate(feeds) if name.startswith("broken-dylanharris")]
    assert sum(known.values()) >= 2150  # the 70 documents hold 2,217 items, a few of them repeated within a feed
    feed_server.clear_log()
    names = [arg for number in range(len(feeds)) for arg in ("--feed", f"f{number:02d}")]
    second = bridge("--config", str(config), "poll", *names)
    assert "0 new entries" in second.stdout
    conditional = [record for record in feed_server.requests if "if-none-match" in record.headers]
    assert len(conditional) >= len(feeds) - 1
    with store.open("readonly") as state:
        assert {row.name: state.count_entries(row.name) for row in state.list_feeds()} == known
        outcomes = {row.last_outcome for row in state.list_feeds() if row.name not in failed}
    assert outcomes == {"not-modified"}


def test_dry_run_writes_nothing(tmp_path, feed_server):
    feed_server.route("/feed", '<rss version="2.0"><channel><title>t</title><item><guid>a</guid><title>A</title>'
                               "<link>https://b.example/a</link></item></channel></rss>")
    state = tmp_path / "state.sqlite3"
    config = write_config(tmp_path / "config.toml", f'[bridge]\nstate = "{state}"\n[[feeds]]\nname = "blog"\n'
                                                   f'url = "{feed_server.url("/feed")}"\n')
    result = bridge("--config", str(config), "poll", "--dry-run")
    assert result.returncode == 0, result.stderr
    assert "dry run" in result.stdout
    assert not state.exists()


@pytest.mark.parametrize(
    "body, key",
    [
        ('[bridge]\ncolour = "blue"\n', "bridge.colour"),
        ('[[feeds]]\nname = "blog"\nurl = "https://b.example/feed"\naccounts = ["nobody"]\n', "feeds[0] (name = 'blog').accounts"),
        ('[accounts.m]\ntype = "mastodon"\ninstance = "https://m.example"\naccess_token = { env = "BRIDGE_TEST_UNSET_VAR" }\n',
         "accounts.m.access_token"),
    ],
)
def test_bad_config_exits_2_naming_the_key(tmp_path, body, key):
    config = write_config(tmp_path / "config.toml", body)
    result = bridge("--config", str(config), "check-config", env={"BRIDGE_TEST_UNSET_VAR": ""})
    assert result.returncode == 2
    assert key in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_config_file_exits_2(tmp_path):
    result = bridge("--config", str(tmp_path / "absent.toml"), "status")
    assert result.returncode == 2 and "config.example.toml" in result.stderr


def test_usage_error_exits_2():
    assert bridge("poll", "--no-such-option").returncode == 2


def test_second_writer_is_refused_with_exit_1(tmp_path):
    state_path = tmp_path / "state.sqlite3"
    config = write_config(tmp_path / "config.toml", f'[bridge]\nstate = "{state_path}"\n')
    with State.open(state_path):
        result = bridge("--config", str(config), "poll")
        assert result.returncode == 1
        assert "only one may run at a time" in result.stderr
        assert bridge("--config", str(config), "status").returncode == 0  # readers run alongside


def test_status_json_reports_feeds_and_accounts(tmp_path, feed_server, store):
    feed_server.error("/down", 500)
    config = write_config(
        tmp_path / "config.toml",
        f'[bridge]\n{store.config_line()}\n[accounts.m]\ntype = "mastodon"\ninstance = "https://m.example"\n'
        f'access_token = {{ env = "BRIDGE_TEST_TOKEN" }}\n[[feeds]]\nname = "down"\nurl = "{feed_server.url("/down")}"\naccounts = ["m"]\n',
    )
    bridge("--config", str(config), "poll", env={"BRIDGE_TEST_TOKEN": "secret-token-value"})
    result = bridge("--config", str(config), "status", "--json")
    assert result.returncode == 0
    report = json.loads(result.stdout)
    feed = report["feeds"][0]
    assert feed["name"] == "down" and feed["http_status"] == 500 and feed["consecutive_errors"] == 1
    assert feed["error"] and feed["next_poll"]
    assert report["accounts"][0]["name"] == "m" and report["accounts"][0]["queued"] == 0


def test_version_and_help_everywhere():
    from bridge import __version__
    from bridge.cli import cli

    assert bridge("--version").stdout.strip().endswith(__version__)
    for name in cli.list_commands(click.Context(cli)):  # as --help lists them (registered on demand)
        result = bridge(name, "--help")
        assert result.returncode == 0 and "Usage:" in result.stdout, name
