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
PAGES = 5  # /posts/0 ... /posts/4 exist


@dataclass
class Blog:
    server: object  # tests.feedserver.FeedServer
    mastodon: MastodonFake
    config: Path
    state_path: Path
    token: str

    def bridge(self, *args: str) -> subprocess.CompletedProcess:
        env = {**os.environ, TOKEN_ENV: self.token, "HTTP_PROXY": self.server.base_url,
               "http_proxy": self.server.base_url, "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}
        env.pop("BRIDGE_CONFIG", None)
        return subprocess.run([sys.executable, "-m", "bridge", "--config", str(self.config), *args],
                              capture_output=True, text=True, timeout=120, env=env, cwd=ROOT)


@contextlib.contextmanager
def mastodon_blog(tmp_path: Path, feed_server, account_settings: str = ""):
    """The blog's feed is /feed.xml (route it); `account_settings`: TOML lines added to [accounts.masto]."""
    fake = MastodonFake(hosts={"blog.example.com": f"127.0.0.1:{feed_server.port}"})
    fake.start()
    for number in range(PAGES):
        feed_server.page(f"/posts/{number}", f"<!doctype html><title>Post {number}</title><p>Text.</p>")
    config = tmp_path / "config.toml"
    config.write_text(
        f'[bridge]\nstate = "{tmp_path}/state.sqlite3"\nallow_private_addresses = true\n\n'
        f'[accounts.masto]\ntype = "mastodon"\ninstance = "{fake.url}"\naccess_token = {{ env = "{TOKEN_ENV}" }}\n'
        f"{account_settings}\n\n"
        f'[[feeds]]\nname = "blog"\nurl = "{feed_server.url("/feed.xml")}"\naccounts = ["masto"]\n'
    )
    token = fake.add_account("alice", ["write:statuses", "write:media"])
    try:
        yield Blog(feed_server, fake, config, tmp_path / "state.sqlite3", token)
    finally:
        errors = fake.errors
        fake.stop()
    assert not errors, errors[0]["exception"]
