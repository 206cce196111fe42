"""`bridge login mastodon`: the OAuth authorization-code flow against the fake Mastodon server (loopback).

The user's part -- open the printed address, approve, paste the code -- is played by `Approver`: it is the
command's stdin, and when the command reads it, it approves the app the command has just registered, through
the fake's real /oauth/authorize page, and "pastes" the code it shows.
"""

from __future__ import annotations

import io
import stat
import time
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from click.testing import CliRunner

from bridge.cli.login import login
from bridge.config import parse_config, resolve_secret
from bridge.model import Entry
from bridge.platforms.mastodon.login import OOB_REDIRECT, authorize_url
from bridge.platforms.mastodon.target import MastodonTarget
from bridge.state import State
from tests.mastodon_fake import MastodonFake


@pytest.fixture
def fake():
    server = MastodonFake(oauth_auto_approve="alice")
    server.start()
    server.add_account("alice")
    yield server
    errors = server.errors
    server.stop()
    assert not errors, errors[0]["exception"]


class Approver(io.RawIOBase):
    """stdin whose one line is the code the user gets by approving, in a browser, the app just registered."""

    def __init__(self, fake: MastodonFake, code: str | None = None) -> None:
        self.fake = fake
        self.code = code
        self.pending: bytes | None = None
        self.visited: str | None = None

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        if self.pending is None:
            self.pending = ((self.code if self.code is not None else self._approve()) + "\n").encode()
        size = min(len(buffer), len(self.pending))
        buffer[:size] = self.pending[:size]
        self.pending = self.pending[size:]
        return size

    def _approve(self) -> str:
        with self.fake.state.lock:
            app = [a for a in self.fake.state.apps.values() if a.name == "bridge"][-1]
        self.visited = authorize_url(self.fake.url, app.client_id, " ".join(app.scopes))
        page = httpx.get(self.visited, follow_redirects=False, trust_env=False, timeout=10)
        assert page.status_code == 302, page.text
        return parse_qs(urlsplit(page.headers["location"]).query)["code"][0]

    def stream(self) -> io.BufferedReader:
        return io.BufferedReader(self)


def run(fake, *args: str, stdin: Approver | None = None):
    approver = stdin or Approver(fake)
    result = CliRunner().invoke(login, ["mastodon", "--instance", fake.url, *args], input=approver.stream())
    return result, approver


def token_info(fake, token: str):
    return fake.state.tokens[token]


def test_write_token_stores_a_0600_token_with_only_the_write_scopes_when_asked(fake, tmp_path):
    path = tmp_path / "secrets" / "mastodon-token"
    result, approver = run(fake, "--write-token", str(path), "--no-read-scopes")
    assert result.exit_code == 0, result.output
    token = path.read_text().strip()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert token_info(fake, token).scopes == {"write:statuses", "write:media"}
    assert fake.state.accounts[token_info(fake, token).account_id].username == "alice"
    [app] = [a for a in fake.state.apps.values() if a.name == "bridge"]
    assert app.scopes == ["write:statuses", "write:media"] and app.redirect_uris == [OOB_REDIRECT]
    assert approver.visited in result.stderr  # the address the user was told to open
    assert token not in result.output  # never shown, only stored
    assert f'access_token = {{ file = "{path.resolve()}" }}' in result.stderr
    # and it works: the target posts with it
    config = parse_config({"accounts": {"masto": {"type": "mastodon", "instance": fake.url,
                                                  "access_token": {"file": str(path)}}}})
    with State.open(tmp_path / "state.sqlite3") as state:
        entry_id = state.add_entry("blog", Entry(key="e", link="https://blog.example.com/e"), "new", "h", [], time.time())
        row = state.get_delivery(state.add_delivery(entry_id, "masto", idempotency_key="k", rkey=None, now=time.time()))
        target = MastodonTarget("masto", config.accounts["masto"], resolve_secret(config, "masto"), state)
        target.publish(row, {"status": "logged in https://blog.example.com/e", "visibility": "public"})
    assert fake.statuses("alice")[0]["text"] == "logged in https://blog.example.com/e"


def test_an_existing_file_is_kept_unless_forced(fake, tmp_path):
    path = tmp_path / "token"
    path.write_text("old token\n")
    path.chmod(0o644)
    result, _ = run(fake, "--write-token", str(path))
    assert result.exit_code == 2 and "--force" in result.output
    assert path.read_text() == "old token\n"
    assert fake.requests("apps") == []  # refused before any network call
    result, _ = run(fake, "--write-token", str(path), "--force")
    assert result.exit_code == 0, result.output
    assert path.read_text().strip() in fake.state.tokens
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["token"]  # no temporary file left behind


def test_print_puts_only_the_token_on_stdout_and_the_systemd_hint_on_stderr(fake):
    result, _ = run(fake, "--print", "--read-scopes", "--account", "masto")
    assert result.exit_code == 0, result.output
    token = result.stdout.strip().splitlines()[-1]
    assert token in fake.state.tokens
    assert token_info(fake, token).scopes == {"write:statuses", "write:media", "read:accounts", "read:statuses"}
    assert "systemd-creds encrypt --name=masto" in result.stderr
    assert "LoadCredentialEncrypted=masto:" in result.stderr and "$CREDENTIALS_DIRECTORY/masto" in result.stderr
    assert token not in result.stderr


def test_a_wrong_code_fails_and_writes_nothing(fake, tmp_path):
    path = tmp_path / "token"
    result, _ = run(fake, "--write-token", str(path), stdin=Approver(fake, code="not-the-code"))
    assert result.exit_code == 1
    assert "did not accept the code" in result.output
    assert not path.exists()


def test_no_code_at_all_aborts(fake, tmp_path):
    result, _ = run(fake, "--write-token", str(tmp_path / "token"), stdin=Approver(fake, code=""))
    assert result.exit_code == 1 and "no authorization code" in result.output
    assert not (tmp_path / "token").exists()


@pytest.mark.parametrize("args, words", [
    ([], "either --write-token PATH"),
    (["--print", "--write-token", "x"], "either --write-token PATH"),
])
def test_usage_errors(fake, args, words):
    result, _ = run(fake, *args)
    assert result.exit_code == 2 and words in result.output
    assert fake.requests("apps") == []


def test_instance_addresses(tmp_path):
    runner = CliRunner()
    result = runner.invoke(login, ["mastodon", "--instance", "http://mastodon.example.com", "--print"])
    assert result.exit_code == 2 and "unencrypted" in result.output
    result = runner.invoke(login, ["mastodon", "--instance", "https://mastodon.example.com/@me", "--print"])
    assert result.exit_code == 2 and "not a server address" in result.output
    with MastodonFake() as gone:
        url = gone.url
    result = runner.invoke(login, ["mastodon", "--instance", url, "--print"])
    assert result.exit_code == 1 and "cannot reach" in result.output


def test_help_says_password_login_is_gone():
    result = CliRunner().invoke(login, ["mastodon", "--help"])
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    assert "Mastodon 4.4" in text and "write:statuses write:media" in text and "--read-scopes" in text
