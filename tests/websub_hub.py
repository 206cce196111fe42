"""A real WebSub hub for tests: flask-websub's hub (tests/websub_hub_server.py) in a process of its own on
127.0.0.1. It fails, never skips, when it cannot start."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import requests

SERVER = Path(__file__).with_name("websub_hub_server.py")
NO_PROXY = {"http": None, "https": None}


class WebSubHub:
    def __init__(self, directory: Path) -> None:
        self.database = directory / "hub.sqlite3"
        self.process: subprocess.Popen | None = None
        self.url = ""

    def start(self) -> "WebSubHub":
        self.process = subprocess.Popen([sys.executable, str(SERVER), "0", str(self.database)], stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, text=True, env={"NO_PROXY": "*", "PATH": "/usr/bin:/bin"})
        line = self.process.stdout.readline()
        if not line.startswith("READY "):
            self.process.kill()
            raise RuntimeError(f"the WebSub hub did not start: {line}{self.process.stderr.read()}")
        self.url = f"http://127.0.0.1:{line.split()[1]}/hub"
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)

    def publish(self, topic: str) -> None:
        """The blog engine's ping: the hub fetches the topic and pushes it, signed, to every subscriber."""
        answer = requests.post(self.url, data={"hub.mode": "publish", "hub.topic": topic}, timeout=30, proxies=NO_PROXY)
        assert answer.status_code == 202, answer.text

    def subscriptions(self, topic: str) -> list[tuple[str, str]]:
        """(callback, secret) of the hub's live subscriptions to `topic`."""
        if not self.database.exists():
            return []
        with sqlite3.connect(self.database) as db:
            return db.execute("SELECT callback_url, secret FROM hub WHERE topic_url = ? AND expiration_time > ?",
                              [topic, int(time.time())]).fetchall()
