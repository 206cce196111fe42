"""Shared by the reactions tests: a writer's blog posted by the real CLI to a Mastodon-API server (the fake or a
real Takahē), other accounts reacting through the same server's API, and what bridge then writes for the site.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx

from bridge.reactions.files import document_name
from bridge.state import State

ROOT = Path(__file__).resolve().parent.parent
TOKEN_ENV = "BRIDGE_TEST_REACTIONS_TOKEN"
BLOG = "http://blog.example.com"


class Api:
    """Mastodon's client API as another person uses it: one token per account."""

    def __init__(self, url: str) -> None:
        self.http = httpx.Client(base_url=url, timeout=30, trust_env=False)

    def _call(self, method: str, path: str, token: str, **data) -> dict:
        response = self.http.request(method, path, headers={"Authorization": f"Bearer {token}"}, data=data or None)
        assert response.status_code == 200, f"{method} {path}: {response.status_code} {response.text[:300]}"
        return response.json()

    def reply(self, token: str, to: str, text: str, visibility: str = "public") -> dict:
        return self._call("POST", "/api/v1/statuses", token, status=text, in_reply_to_id=to, visibility=visibility)

    def delete(self, token: str, status_id: str) -> None:
        self._call("DELETE", f"/api/v1/statuses/{status_id}", token)

    def favourite(self, token: str, status_id: str) -> None:
        self._call("POST", f"/api/v1/statuses/{status_id}/favourite", token)

    def reblog(self, token: str, status_id: str) -> None:
        self._call("POST", f"/api/v1/statuses/{status_id}/reblog", token)

    def close(self) -> None:
        self.http.close()


def json_feed(items: list[dict]) -> str:
    now = datetime.now(timezone.utc)
    entries = [{**item, "date_published": (now - timedelta(hours=n + 1)).isoformat()} for n, item in enumerate(items)]
    return json.dumps({"version": "https://jsonfeed.org/version/1.1", "title": "A blog",
                       "home_page_url": f"{BLOG}/", "items": entries})


class Blog:
    """One config and state: a JSON feed on the feed server, posted to one Mastodon-API account by `bridge`."""

    account = "masto"  # the account the config names (a subclass may write another: test_bluesky_reactions.py)

    def __init__(self, tmp_path: Path, feed_server, instance: str, token: str, settings: str = "") -> None:
        self.tmp_path, self.server, self.token = tmp_path, feed_server, token
        self.state_path = tmp_path / "state.sqlite3"
        self.comments_dir = tmp_path / "site" / "comments"
        self.syndication_file = tmp_path / "site" / "data" / "bridge.json"
        self.config = tmp_path / "config.toml"
        self.config.write_text(
            f'[bridge]\nstate = "{self.state_path}"\nallow_private_addresses = true\n'
            f'comments_dir = "{self.comments_dir}"\nsyndication_file = "{self.syndication_file}"\n{settings}\n'
            f'[accounts.masto]\ntype = "mastodon"\ninstance = "{instance}"\naccess_token = {{ env = "{TOKEN_ENV}" }}\n'
            "posts_per_hour = 1000000\nposts_per_day = 1000000\n\n"
            f'[[feeds]]\nname = "blog"\nurl = "{feed_server.url("/blog.json")}"\naccounts = ["masto"]\n'
        )

    def env(self) -> dict[str, str]:
        """The token, and the feed server as the proxy for every other host: only loopback is ever contacted."""
        proxy = self.server.base_url
        env = {**os.environ, TOKEN_ENV: self.token, "HTTP_PROXY": proxy, "http_proxy": proxy, "HTTPS_PROXY": proxy,
               "https_proxy": proxy, "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}
        env.pop("BRIDGE_CONFIG", None)
        return env

    def bridge(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "bridge", "--config", str(self.config), *args],
                              capture_output=True, text=True, timeout=180, env=self.env(), cwd=ROOT)

    def serve(self, *entries: tuple[str, str]) -> None:
        """The feed with these (path, title) entries, newest first."""
        self.server.route("/blog.json", json_feed([{"id": path, "url": f"{BLOG}{path}", "title": title,
                                                     "content_html": f"<p>About {title}.</p>"} for path, title in entries]),
                          content_type="application/feed+json")

    def post(self, path: str, title: str) -> tuple[str, str]:
        """Publish one new entry through `bridge poll` (after a baseline); (its permalink, the status id)."""
        self.serve()
        assert self.bridge("poll").returncode == 0
        link = f"{BLOG}{path}"
        self.serve((path, title))
        run = self.bridge("poll", "--feed", "blog")
        assert run.returncode == 0, run.stderr
        with State.open_readonly(self.state_path) as state:
            [row] = state.deliveries(account=self.account)
        assert row.state == "posted", (row.state, row.last_error)
        return link, row.remote_id

    def refresh(self, link: str) -> subprocess.CompletedProcess:
        run = self.bridge("reactions", "refresh", "--entry", link)
        assert run.returncode == 0, run.stdout + run.stderr
        return run

    def document(self, link: str) -> dict:
        return json.loads((self.comments_dir / f"{document_name(link)}.json").read_text())

    def fragment(self, link: str) -> str:
        return (self.comments_dir / f"{document_name(link)}.html").read_text()


def flatten(replies: list[dict], depth: int = 0) -> list[tuple[int, str, str]]:
    """(depth, author handle, text) of every reply in a comments document, in order."""
    out = []
    for reply in replies:
        out.append((depth, reply["author"]["handle"], reply["text"]))
        out += flatten(reply["replies"], depth + 1)
    return out
