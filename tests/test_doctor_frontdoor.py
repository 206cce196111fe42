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
    assert "FAIL credential of account masto: the environment variable FD_UNSET_TOKEN is not set or empty" in doctor.stdout
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
    assert f"FAIL credential of account gone: the secret file {missing} does not exist" in out
    assert f"FAIL credential of account dir: cannot read the secret file {unreadable}" in out
    assert "FAIL credential of account bearer: the access token starts with 'Bearer '" in out
    assert "fix: put the token alone in" in out
    assert f"warn secret file permissions: {open_file} is readable by other users" in out
    assert f"fix: chmod 600 {open_file}" in out
    assert "ok   credential of account open" in out
    assert "warn credential of account sky: it does not look like an app password (four groups of four characters" in out
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
    assert "ok   credential of account masto" in doctor.stdout and "ok   credential of account sky" in doctor.stdout
    assert doctor.stdout.rstrip().endswith("all is well")


# --------------------------------------------------------------------------- online: every failure in plain words


@pytest.fixture()
def unreachable_servers(tmp_path):
    """A closed port, a port that accepts and never answers, a TLS server with a self-signed certificate, a server
    with no Mastodon API (404), one in trouble (502), one answering a maintenance page, and a Mastodon fake."""
    import socket
    import ssl

    from tests.feedserver import FeedServer
    from tests.mastodon_fake import MastodonFake
    from tests.test_linkpreview import self_signed

    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    refused_port = closed.getsockname()[1]
    closed.close()  # nothing listens there now: connecting is refused
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)  # the kernel accepts connections; nobody ever reads or answers
    cert, key = self_signed(tmp_path, "tls.example")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    with FeedServer(tls=context) as tls, FeedServer() as empty, FeedServer() as broken, FeedServer() as garbage, \
            MastodonFake() as fake:
        for path in ("/api/v1/instance", "/api/v2/instance", "/api/v1/accounts/verify_credentials", "/feed"):
            broken.error(path, 502)
            garbage.page(path, "<html><body>Down for maintenance</body></html>")
        tls.route("/feed", "<rss/>", content_type="application/rss+xml")
        revoked = fake.add_account("writer")
        fake.revoke(revoked)
        yield {"refused": f"http://127.0.0.1:{refused_port}", "silent": f"http://127.0.0.1:{silent.getsockname()[1]}",
               "tls": tls.base_url, "empty": empty.base_url, "broken": broken.base_url, "garbage": garbage.base_url,
               "fake": fake.url, "revoked": revoked}
    silent.close()


def doctor_lines(out: str) -> dict[str, tuple[str, str]]:
    """check name -> (detail, fix) of each failed check."""
    lines, found = out.splitlines(), {}
    for number, line in enumerate(lines):
        if line.startswith("FAIL "):
            name, _, detail = line[5:].partition(": ")
            following = lines[number + 1] if number + 1 < len(lines) else ""
            found[name] = (detail, following.strip().removeprefix("fix: ") if following.startswith("     fix: ") else "")
    return found


def test_online_doctor_says_every_failure_in_plain_words_with_a_concrete_fix(tmp_path, unreachable_servers):
    urls = unreachable_servers
    names = {"dns": "https://mastodon.invalid", "refused": urls["refused"], "silent": urls["silent"], "tls": urls["tls"],
             "nothing": urls["empty"], "broken": urls["broken"], "garbage": urls["garbage"], "revoked": urls["fake"]}
    token_file = tmp_path / "token"
    token_file.write_text(urls["revoked"])
    token_file.chmod(0o600)
    accounts = "".join(mastodon_account(name, url, f'{{ file = "{token_file}" }}') for name, url in names.items())
    accounts += ('[accounts.sky]\ntype = "bluesky"\nhandle = "writer.example"\nservice = "https://pds.invalid"\n'
                 f'app_password = {{ env = "FD_SKY" }}\n')
    feeds = {"dns": "https://blog.invalid/feed", "refused": urls["refused"] + "/feed",
             "silent": urls["silent"] + "/feed", "tls": urls["tls"] + "/feed", "nothing": urls["empty"] + "/feed",
             "broken": urls["broken"] + "/feed"}
    feed_config = "".join(f'[[feeds]]\nname = "{name}"\nurl = "{url}"\naccounts = []\n' for name, url in feeds.items())
    config = write_config(tmp_path, accounts, feed_config)
    config.write_text(config.read_text().replace(
        "[bridge]\n", "[bridge]\nconnect_timeout = 2\nread_timeout = 1\ntotal_timeout = 3\n", 1))
    result = bridge(config, "doctor", env={"FD_SKY": "abcd-efgh-ijkl-mnop"})
    assert result.returncode == 1, result.stderr
    failed = doctor_lines(result.stdout)
    expected = {
        "account dns (mastodon)": ("the name mastodon.invalid does not resolve", "check the spelling of https://mastodon.invalid (accounts.dns.instance)"),
        "account sky (bluesky)": ("the name pds.invalid does not resolve", "getent hosts pds.invalid"),
        "feed dns": ("the name blog.invalid does not resolve", "check the spelling of https://blog.invalid/feed"),
        "account refused (mastodon)": ("127.0.0.1 refused the connection on port", "that the server is running (curl -I"),
        "feed refused": ("127.0.0.1 refused the connection on port", "check the port in"),
        "account silent (mastodon)": ("127.0.0.1 did not answer in time", "raise [bridge] read_timeout or total_timeout"),
        "feed silent": ("127.0.0.1 did not answer in time", "raise [bridge] read_timeout or total_timeout"),
        "account tls (mastodon)": ("127.0.0.1's TLS certificate is not trusted: self-signed certificate", "Let's Encrypt"),
        "feed tls": ("127.0.0.1's TLS certificate is not trusted: self-signed certificate", "Let's Encrypt"),
        "account nothing (mastodon)": ("has no such page (HTTP 404)", "does it speak the Mastodon API?"),
        "feed nothing": ("has no such page (HTTP 404)", "the feed moved or the address is wrong"),
        "account broken (mastodon)": ("127.0.0.1 has trouble of its own (HTTP 502)", "bridge retries with backoff"),
        "feed broken": ("127.0.0.1 has trouble of its own (HTTP 502)", "bridge retries with backoff"),
        "account garbage (mastodon)": ("answered with a page that is not the JSON its API speaks", "open http://127.0.0.1"),
        "account revoked (mastodon)": ("127.0.0.1 refused the credential (HTTP 401)", "bridge login mastodon"),
    }
    for name, (detail, fix) in expected.items():
        assert name in failed, (name, result.stdout, result.stderr)
        assert detail in failed[name][0], (name, failed[name])
        assert fix in failed[name][1], (name, failed[name])
    for name, (detail, fix) in failed.items():
        assert fix, f"{name} has no fix: {result.stdout}"
        assert "…" not in detail and "Error(" not in detail and "Connection(" not in detail, (name, detail)
