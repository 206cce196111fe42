"""Secrets never appear in logs, errors or `status`; secret files others can read are warned about."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

from tests.mastodon_fake import MastodonFake
from tests.test_pipeline import posts, rss

ROOT = Path(__file__).resolve().parent.parent


def _bridge(config: Path, *args: str, env: dict) -> subprocess.CompletedProcess:
    full = {**os.environ, **env}
    full.pop("BRIDGE_CONFIG", None)
    return subprocess.run([sys.executable, "-m", "bridge", "--config", str(config), *args], cwd=ROOT, env=full,
                          capture_output=True, text=True, timeout=180)


def test_known_secrets_never_leak_into_logs_errors_or_status(tmp_path, feed_server, pds):
    account = pds.create_account("leak")
    wrong_password = "wrong-pass-word-1234"
    with MastodonFake() as fake:
        token = fake.add_account("writer")
        feed_server.route("/feed", rss(posts(1)))
        token_file = tmp_path / "masto-token"
        token_file.write_text(token)
        token_file.chmod(0o600)
        config = tmp_path / "config.toml"
        config.write_text(
            f'[bridge]\nstate = "{tmp_path}/s.sqlite3"\n'
            f'[accounts.masto]\ntype = "mastodon"\ninstance = "{fake.url}"\naccess_token = {{ file = "{token_file}" }}\n'
            f'[accounts.sky]\ntype = "bluesky"\nhandle = "{account.handle}"\nservice = "{pds.url}"\n'
            f'app_password = {{ env = "BRIDGE_TEST_SKY" }}\n'
            f'[[feeds]]\nname = "blog"\nurl = "{feed_server.url("/feed")}"\naccounts = ["masto", "sky"]\n'
        )
        env = {"BRIDGE_TEST_SKY": wrong_password}
        outputs = []
        for args in (["-v", "poll"], ["--log-format", "json", "-v", "poll", "--feed", "blog"]):
            result = _bridge(config, *args, env=env)
            outputs += [result.stdout, result.stderr]
            feed_server.route("/feed", rss(posts(2)))
        fake.revoke(token)
        feed_server.route("/feed", rss(posts(3)))
        result = _bridge(config, "-v", "poll", "--feed", "blog", env=env)
        outputs += [result.stdout, result.stderr]
        for args in (["status", "--json"], ["status"], ["doctor"], ["check-config"]):
            result = _bridge(config, *args, env=env)
            outputs += [result.stdout, result.stderr]
    everything = "\n".join(outputs)
    assert "paused" in everything  # the failures were reported...
    for secret in (token, wrong_password, account.app_password):
        assert secret not in everything  # ...without their secrets
    assert stat.S_IMODE((tmp_path / "s.sqlite3").stat().st_mode) == 0o600  # it holds the Bluesky session


def test_world_readable_secret_file_is_warned_about(tmp_path):
    secret = tmp_path / "token"
    secret.write_text("a-token-value")
    secret.chmod(0o644)
    config = tmp_path / "config.toml"
    config.write_text(f'[accounts.m]\ntype = "mastodon"\ninstance = "https://m.example"\naccess_token = {{ file = "{secret}" }}\n')
    result = _bridge(config, "check-config", env={})
    assert result.returncode == 0
    assert f"chmod 600 {secret}" in result.stderr
    assert "a-token-value" not in result.stdout + result.stderr


def test_a_binary_secret_file_pauses_its_account_and_the_other_account_posts(tmp_path, feed_server):
    """check-config refuses it (exit 2); a poll names the file on that account and goes on with the others."""
    with MastodonFake() as fake:
        good_token = fake.add_account("good")
        fake.add_account("broken")
        contents = {"good": good_token.encode(), "broken": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR-XSECRETX"}
        text = f'[bridge]\nstate = "{tmp_path}/s.sqlite3"\n'
        for name, content in contents.items():
            secret = tmp_path / f"{name}-token"
            secret.write_bytes(content)
            secret.chmod(0o600)
            text += f'[accounts.{name}]\ntype = "mastodon"\ninstance = "{fake.url}"\naccess_token = {{ file = "{secret}" }}\n'
        broken_file = tmp_path / "broken-token"
        feed_server.route("/feed", rss(posts(1)))
        config = tmp_path / "config.toml"
        config.write_text(text + f'[[feeds]]\nname = "blog"\nurl = "{feed_server.url("/feed")}"\naccounts = ["good", "broken"]\n')
        checked = _bridge(config, "check-config", env={})
        assert checked.returncode == 2
        assert f"accounts.broken.access_token: the secret file {broken_file} is not text" in checked.stderr
        assert _bridge(config, "poll", env={}).returncode == 0  # the baseline
        feed_server.route("/feed", rss(posts(2)))
        polled = _bridge(config, "poll", "--feed", "blog", env={})
        assert polled.returncode == 1
        assert f"account broken is paused: accounts.broken.access_token: the secret file {broken_file} is not text" in polled.stderr
        assert "posted 1" in polled.stdout and len(fake.statuses("good")) == 1
    assert "XSECRETX" not in checked.stderr + polled.stdout + polled.stderr
