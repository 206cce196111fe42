"""A blog on the local feed server and the Mastodon fake as its account, driven through the real CLI
(`python -m bridge` subprocesses): for tests of what `bridge poll` posts. Loopback only.

The blog's pages are on http://blog.example.com/... (a host Mastodon takes for a link); nobody resolves that name:
the fake reaches it through its host map, the bridge process through the feed server acting as its HTTP proxy.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from tests.mastodon_fake import MastodonFake

ROOT = Path(__file__).resolve().parent.parent
TOKEN_ENV = "BRIDGE_TEST_MASTODON_TOKEN"
BLOG = "http://blog.example.com"
PAGES = 10  # /posts/0 ... /posts/9 exist


def write_blog_config(tmp_path: Path, feed_server, account: str, account_table: str, bridge_settings: str = "") -> Path:
    """A config with one feed, the blog's /feed.xml, going to one account (its TOML lines given); the blog's pages
    /posts/N served."""
    for number in range(PAGES):
        feed_server.page(f"/posts/{number}", f"<!doctype html><title>Post {number}</title><p>Text.</p>")
    config = tmp_path / "config.toml"
    config.write_text(
        f'[bridge]\nstate = "{tmp_path}/state.sqlite3"\nallow_private_addresses = true\n{bridge_settings}\n\n'
        f"[accounts.{account}]\n{account_table}\n\n"
        f'[[feeds]]\nname = "blog"\nurl = "{feed_server.url("/feed.xml")}"\naccounts = ["{account}"]\n'
    )
    return config


def run_bridge(config: Path, feed_server, *args: str, **env_vars: str) -> subprocess.CompletedProcess:
    """`python -m bridge --config CONFIG ARGS` with the feed server as its HTTP proxy (for blog.example.com)."""
    env = {**os.environ, **env_vars, "HTTP_PROXY": feed_server.base_url, "http_proxy": feed_server.base_url,
           "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}
    env.pop("BRIDGE_CONFIG", None)
    return subprocess.run([sys.executable, "-m", "bridge", "--config", str(config), *args],
                          capture_output=True, text=True, timeout=180, env=env, cwd=ROOT)


@dataclass
class Blog:
    server: object  # tests.feedserver.FeedServer
    mastodon: MastodonFake
    config: Path
    state_path: Path
    token: str

    def bridge(self, *args: str, **extra_env: str) -> subprocess.CompletedProcess:
        return run_bridge(self.config, self.server, *args, **extra_env, **{TOKEN_ENV: self.token})


@contextlib.contextmanager
def mastodon_blog(tmp_path: Path, feed_server, account_settings: str = "", bridge_settings: str = ""):
    """The blog's feed is /feed.xml (route it); `account_settings`, `bridge_settings`: TOML lines added to
    [accounts.masto] and [bridge]."""
    fake = MastodonFake(hosts={"blog.example.com": f"127.0.0.1:{feed_server.port}"})
    fake.start()
    config = write_blog_config(tmp_path, feed_server, "masto", f'type = "mastodon"\ninstance = "{fake.url}"\n'
                               f'access_token = {{ env = "{TOKEN_ENV}" }}\n{account_settings}', bridge_settings)
    token = fake.add_account("alice", ["write:statuses", "write:media"])
    try:
        yield Blog(feed_server, fake, config, tmp_path / "state.sqlite3", token)
    finally:
        errors = fake.errors
        fake.stop()
    assert not errors, errors[0]["exception"]
