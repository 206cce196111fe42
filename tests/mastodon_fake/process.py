"""Start the fake as a separate process and drive it through its control API.

``MastodonFakeProcess`` offers the same methods as ``MastodonFake`` (add_account, revoke,
statuses, request_log, set_limits, inject, clear_faults, advance, map_host, ...), sent over
HTTP to ``/_fake/...``. Use it when the code under test runs in another process.

By default the child exits when this process goes away (it watches its stdin). With
``detach=True`` it runs in its own session and outlives us (soak tests): end it with
``stop()``, ``POST /_fake/shutdown`` or by its pid.
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
import threading
from typing import Any

import httpx

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]


class MastodonFakeProcess:
    def __init__(self, *, python: str | None = None, detach: bool = False, startup_timeout: float = 20.0,
                 accounts: list[str] | None = None, **options: Any):
        """``options`` become command-line flags: max_characters=1000 -> --max-characters 1000,
        profile="takahe" -> --profile takahe.

        rate_limits={"statuses": (5, 60)} and hosts={"blog.example.com": "127.0.0.1"} are
        translated too. With ``detach`` the child does not watch our stdin and survives us.
        """
        self.python = python or sys.executable
        self.detach = detach
        self.startup_timeout = startup_timeout
        self.accounts_wanted = list(accounts or [])
        self.options = options
        self.proc: subprocess.Popen | None = None
        self.url: str = ""
        self.pid: int | None = None
        self.tokens: dict[str, str] = {}
        self._client: httpx.Client | None = None

    def _argv(self) -> list[str]:
        argv = [self.python, "-m", "tests.mastodon_fake", "--port", str(self.options.get("port", 0))]
        for key, value in self.options.items():
            if key == "port":
                continue
            if key == "rate_limits":
                for family, (limit, period) in (value or {}).items():
                    argv += ["--rate", f"{family}={limit}/{period}"]
            elif key == "hosts":
                for name, target in (value or {}).items():
                    argv += ["--map-host", f"{name}={target}"]
            elif key == "version":
                argv += ["--version", str(value)]
            elif key == "card_fetch":
                if not value:
                    argv.append("--no-cards")
            elif key == "oauth_auto_approve":
                if value:
                    argv += ["--oauth-user", str(value)]
            else:
                argv += ["--" + key.replace("_", "-"), "none" if value is None else str(value)]
        for account in self.accounts_wanted:
            argv += ["--account", account]
        if not self.detach:
            argv.append("--exit-with-stdin")
        return argv

    def start(self) -> "MastodonFakeProcess":
        env = dict(os.environ)
        env["PYTHONPATH"] = str(REPO_ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        self.proc = subprocess.Popen(
            self._argv(),
            cwd=str(REPO_ROOT),
            env=env,
            stdin=subprocess.PIPE if not self.detach else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=None,
            start_new_session=self.detach,
        )
        line: list[bytes] = []

        def _read() -> None:
            assert self.proc is not None and self.proc.stdout is not None
            line.append(self.proc.stdout.readline())

        reader = threading.Thread(target=_read, daemon=True)
        reader.start()
        reader.join(self.startup_timeout)
        if not line or not line[0]:
            self.kill()
            raise RuntimeError("the fake Mastodon process did not report its URL")
        info = json.loads(line[0])
        self.url = info["url"]
        self.pid = info["pid"]
        self.tokens = info.get("accounts", {})
        self._client = httpx.Client(base_url=self.url + "/_fake", timeout=30.0, trust_env=False)
        return self

    def __enter__(self) -> "MastodonFakeProcess":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def _call(self, method: str, path: str, payload: Any = None, params: dict | None = None) -> Any:
        assert self._client is not None, "not started"
        response = self._client.request(method, path, json=payload, params=params)
        if response.status_code >= 400:
            raise RuntimeError(f"control API {method} {path}: {response.status_code} {response.text}")
        return response.json()

    # --- same surface as MastodonFake -------------------------------------------------
    def add_account(self, username: str, scopes: list[str] | str | None = None, **kwargs: Any) -> str:
        return self._call("POST", "/accounts", {"username": username, "scopes": scopes, **kwargs})["token"]

    def revoke(self, token: str) -> None:
        self._call("POST", "/revoke", {"token": token})

    def statuses(self, account: str | None = None, include_deleted: bool = False) -> list[dict]:
        params = {"include_deleted": "1" if include_deleted else "0"}
        if account is not None:
            params["account"] = account
        return self._call("GET", "/statuses", params=params)

    def media(self, media_id: str) -> dict:
        return self._call("GET", f"/media/{media_id}")

    @property
    def request_log(self) -> list[dict]:
        return self._call("GET", "/requests")

    def requests(self, route: str | None = None, method: str | None = None) -> list[dict]:
        params = {k: v for k, v in (("route", route), ("method", method)) if v}
        return self._call("GET", "/requests", params=params)

    def clear_log(self) -> None:
        self._call("DELETE", "/requests")

    def set_limits(self, **values: Any) -> None:
        self._call("POST", "/limits", values)

    def reset_rate_limits(self) -> None:
        self._call("POST", "/limits/reset", {})

    def inject(self, path_or_family: str, fault: int | str, times: int | None = 1, *, seconds: float | None = None) -> int:
        return self._call("POST", "/faults", {"target": path_or_family, "fault": fault, "times": times, "seconds": seconds})["id"]

    def clear_faults(self) -> None:
        self._call("DELETE", "/faults")

    @property
    def faults(self) -> list[dict]:
        return self._call("GET", "/faults")

    def advance(self, seconds: float) -> None:
        self._call("POST", "/clock", {"advance": seconds})

    def map_host(self, hostname: str, target: str = "127.0.0.1") -> None:
        self._call("POST", "/hosts", {"hostname": hostname, "target": target})

    def complete_media(self, media_id: str | None = None) -> None:
        self._call("POST", "/media/complete", {"id": media_id})

    def wait_for_cards(self, timeout: float = 10.0) -> bool:
        return self._call("POST", "/cards/wait", {"timeout": timeout})["idle"]

    def set_oauth_user(self, username: str | None) -> None:
        self._call("POST", "/oauth/user", {"username": username})

    def authorize(self, client_id: str, username: str, scopes: Any = None, redirect_uri: str | None = None) -> str:
        return self._call("POST", "/oauth/authorize", {"client_id": client_id, "username": username,
                                                       "scopes": scopes, "redirect_uri": redirect_uri})["code"]

    @property
    def oauth_codes(self) -> list[dict]:
        return self._call("GET", "/oauth/codes")

    def stop(self) -> None:
        if self._client is not None:
            try:
                self._client.post("/shutdown", json={})
            except httpx.HTTPError:
                pass
            self._client.close()
            self._client = None
        if self.proc is not None:
            try:
                if self.proc.stdin:
                    self.proc.stdin.close()
            except OSError:
                pass
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()
            self.proc = None

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
