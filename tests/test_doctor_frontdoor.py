"""`bridge doctor` as a new user meets it: offline it still checks every credential it can, and online every
failure reads as a plain sentence with a concrete fix -- tried against real local servers that refuse, hang,
show a bad certificate, or do not exist."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def bridge(config: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    full = {**os.environ, **(env or {})}
    full.pop("BRIDGE_CONFIG", None)
    full.pop("CREDENTIALS_DIRECTORY", None)
    return subprocess.run([sys.executable, "-m", "bridge", "--config", str(config), *args], cwd=ROOT, env=full,
                          capture_output=True, text=True, timeout=180)


def write_config(tmp_path: Path, accounts: str, feeds: str = "") -> Path:
    config = tmp_path / "config.toml"
    config.write_text(f'[bridge]\nstate = "{tmp_path}/s.sqlite3"\n{accounts}{feeds}')
    return config


def mastodon_account(name: str, instance: str, secret: str) -> str:
    return f'[accounts.{name}]\ntype = "mastodon"\ninstance = "{instance}"\naccess_token = {secret}\n'


# --------------------------------------------------------------------------- offline: the credentials


def test_offline_doctor_fails_like_check_config_on_a_missing_credential(tmp_path):
    config = write_config(tmp_path, mastodon_account("masto", "https://mastodon.example", '{ env = "FD_UNSET_TOKEN" }'))
    checked = bridge(config, "check-config")
    assert checked.returncode == 2 and "FD_UNSET_TOKEN is not set" in checked.stderr
    doctor = bridge(config, "doctor", "--offline")
    assert doctor.returncode == 1, doctor.stdout
    assert "all is well" not in doctor.stdout
    assert "FAIL account masto credential: the environment variable FD_UNSET_TOKEN is not set or empty" in doctor.stdout
    assert "fix: export FD_UNSET_TOKEN=... before starting bridge" in doctor.stdout


def test_offline_doctor_checks_every_credential_it_can_reach(tmp_path):
    missing, unreadable, wrong_shape = tmp_path / "missing", tmp_path / "unreadable", tmp_path / "wrong-shape"
    unreadable.mkdir()  # a directory where the token file should be: cannot be read as a file
    wrong_shape.write_text("Bearer abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG\n")
    wrong_shape.chmod(0o600)
    open_file = tmp_path / "open"
    open_file.write_text("abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG")
    open_file.chmod(0o644)
    sky_password = tmp_path / "sky"
    sky_password.write_text("my main password")
    sky_password.chmod(0o600)
    config = write_config(tmp_path, "".join([
        mastodon_account("gone", "https://a.example", f'{{ file = "{missing}" }}'),
        mastodon_account("dir", "https://b.example", f'{{ file = "{unreadable}" }}'),
        mastodon_account("bearer", "https://c.example", f'{{ file = "{wrong_shape}" }}'),
        mastodon_account("open", "https://d.example", f'{{ file = "{open_file}" }}'),
        f'[accounts.sky]\ntype = "bluesky"\nhandle = "writer.example"\napp_password = {{ file = "{sky_password}" }}\n',
    ]))
    out = bridge(config, "doctor", "--offline").stdout
    assert f"FAIL account gone credential: the secret file {missing} does not exist" in out
    assert f"FAIL account dir credential: cannot read the secret file {unreadable}" in out
    assert "FAIL account bearer credential: the access token starts with 'Bearer '" in out
    assert "fix: put the token alone in" in out
    assert f"warn secret file permissions: {open_file} is readable by other users" in out
    assert f"fix: chmod 600 {open_file}" in out
    assert "ok   account open credential" in out
    assert "warn account sky credential: it does not look like an app password (four groups of four characters" in out
    assert "my main password" not in out and "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG" not in out
    assert "4 problem(s) found" not in out and "3 problem(s) found" in out


def test_offline_doctor_passes_with_good_credentials(tmp_path):
    token = tmp_path / "token"
    token.write_text("abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG\n")
    token.chmod(0o600)
    config = write_config(tmp_path, mastodon_account("masto", "https://mastodon.example", f'{{ file = "{token}" }}')
                          + '[accounts.sky]\ntype = "bluesky"\nhandle = "writer.example"\n'
                            'app_password = { env = "FD_SKY" }\n')
    doctor = bridge(config, "doctor", "--offline", env={"FD_SKY": "abcd-efgh-ijkl-mnop"})
    assert doctor.returncode == 0, doctor.stdout
    assert "ok   account masto credential" in doctor.stdout and "ok   account sky credential" in doctor.stdout
    assert doctor.stdout.rstrip().endswith("all is well")
