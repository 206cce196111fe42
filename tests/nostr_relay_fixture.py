"""Real Nostr relays on 127.0.0.1 for the tests: nostr-relay 1.14 from PyPI (an independent Python relay on
SQLite), each in its own process, started by tests/nostr_relay_server.py.

Fixtures (session-scoped, shared):

* ``nostr_relay``             an open relay: any key, content up to 64 KiB, NIP-11 says so
* ``nostr_relay_restricted``  content up to RESTRICTED_MAX_CONTENT characters and a write allow-list of one key
                              (``relay.allowed_keys``); its NIP-11 document does NOT state the limits, so its own
                              refusals (``invalid:``, ``rejected:``) are what bridge meets
* ``nostr_relay_factory``     starts more relays (``factory(max_event_size=..., advertise_limits=...,
                              verify_signatures=False)`` -- the last one stores forged events too); each
                              NostrRelay can be ``stop()``-ped and ``start()``-ed again on the same port and
                              database (a relay down during a post, back later)

``relay.events(filter)`` reads events back with a plain websocket REQ (not bridge's own client). A relay that
cannot start FAILS the test with its log (never skips): these tests are the proof against a relay bridge did not
write.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator

import httpx
import pytest

SERVER_SCRIPT = Path(__file__).resolve().parent / "nostr_relay_server.py"
START_TIMEOUT = float(os.environ.get("BRIDGE_NOSTR_RELAY_START_TIMEOUT", "60"))
OPEN_MAX_CONTENT = 65536
RESTRICTED_MAX_CONTENT = 300


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class NostrRelay:
    def __init__(self, folder: Path, *, max_event_size: int = OPEN_MAX_CONTENT, allow: list[str] | None = None,
                 advertise_limits: bool = True, verify_signatures: bool = True) -> None:
        self.folder = folder
        self.port = free_port()
        self.url = f"ws://127.0.0.1:{self.port}"
        self.max_event_size = max_event_size
        self.allow = allow
        validators = ["nostr_relay.validators.is_not_too_large", "nostr_relay.validators.is_recent"]
        if verify_signatures:  # off: a relay that stores forgeries, for the readers that must not trust it
            validators.insert(1, "nostr_relay.validators.is_signed")
        if allow:
            validators.append("nostr_relay.validators.is_author_whitelisted")
        config = {
            "storage": {"sqlalchemy.url": f"sqlite+aiosqlite:///{folder}/relay.sqlite3", "validators": validators},
            "gunicorn": {"bind": f"127.0.0.1:{self.port}"},
            "max_event_size": max_event_size,
            "pubkey_whitelist": allow or [],
            "advertise_limits": advertise_limits,
            "relay_name": "bridge test relay",
            "logging": None,
        }
        self.config_path = folder / "config.yaml"
        self.config_path.write_text(json.dumps(config))  # JSON is YAML
        self.process: subprocess.Popen | None = None

    def start(self) -> "NostrRelay":
        log = (self.folder / "relay.log").open("ab")
        self.process = subprocess.Popen([sys.executable, str(SERVER_SCRIPT), str(self.config_path)], cwd=self.folder,
                                        stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            try:
                httpx.get(self.url.replace("ws", "http", 1), headers={"Accept": "application/nostr+json"}, timeout=2)
                return self
            except httpx.HTTPError:
                time.sleep(0.2)
        self.stop()
        pytest.fail(f"nostr-relay did not start on {self.url} (install it: pip install -e '.[test]'):\n"
                    + (self.folder / "relay.log").read_text(errors="replace")[-3000:], pytrace=False)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
        self.process = None

    def events(self, **filters) -> list[dict]:
        """The events this relay holds matching one NIP-01 filter, read with a plain websocket REQ."""
        from websockets.sync.client import connect

        found = []
        with connect(self.url, open_timeout=10) as ws:
            ws.send(json.dumps(["REQ", "test", filters]))
            while True:
                message = json.loads(ws.recv(timeout=10))
                if message[0] == "EVENT":
                    found.append(message[2])
                elif message[0] in ("EOSE", "CLOSED"):
                    return found


@pytest.fixture(scope="session")
def nostr_relay_factory() -> Iterator:
    folder = Path(tempfile.mkdtemp(prefix="bridge-nostr-relays-"))
    started: list[NostrRelay] = []

    def factory(**options) -> NostrRelay:
        relay_folder = folder / str(len(started))
        relay_folder.mkdir()
        relay = NostrRelay(relay_folder, **options)
        started.append(relay)
        return relay.start()

    try:
        yield factory
    finally:
        for relay in started:
            relay.stop()
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def nostr_relay(nostr_relay_factory) -> NostrRelay:
    return nostr_relay_factory()


@pytest.fixture(scope="session")
def nostr_relay_restricted(nostr_relay_factory) -> NostrRelay:
    import nostr_sdk

    allowed = nostr_sdk.Keys.generate()
    relay = nostr_relay_factory(max_event_size=RESTRICTED_MAX_CONTENT, allow=[allowed.public_key().to_hex()],
                                advertise_limits=False)
    relay.allowed_keys = allowed  # the only key it takes events from
    return relay
