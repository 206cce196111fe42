"""A `bridge run` with its HTTP server on 127.0.0.1, and plain HTTP requests to it (tests/test_web*.py)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from tests.test_daemon import ROOT, stop, wait_for

SERVING = re.compile(r"status page, /metrics and /healthz on (http://\S+/)")


@dataclass
class RunningDaemon:
    process: subprocess.Popen
    config: Path
    log: Path
    url: str = ""

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> tuple[int, str]:
        code, _ = stop(self.process)
        return code, self.log_text()

    def status(self) -> dict:
        """`bridge status --json`, beside the running daemon (it reads without the writer's lock)."""
        result = subprocess.run([sys.executable, "-m", "bridge", "--config", str(self.config), "status", "--json"],
                                cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)


def start_daemon(config: Path, log: Path, env: dict | None = None, *, serving: bool = True) -> RunningDaemon:
    """`bridge run`, its log in a file; when `serving`, waits until it says where its server listens."""
    full_env = {**os.environ, **(env or {})}
    full_env.pop("BRIDGE_CONFIG", None)
    with log.open("w") as handle:
        process = subprocess.Popen([sys.executable, "-m", "bridge", "--config", str(config), "run"], cwd=ROOT,
                                   env=full_env, stdout=subprocess.DEVNULL, stderr=handle, text=True)
    daemon = RunningDaemon(process, config, log)
    if serving:
        def served() -> str | None:
            assert process.poll() is None, f"bridge run exited {process.returncode}:\n{daemon.log_text()}"
            found = SERVING.search(daemon.log_text())
            return found.group(1) if found else None

        daemon.url = wait_for(served, what="the daemon's HTTP server")
    return daemon


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: str


def fetch(url: str, headers: dict[str, str] | None = None, method: str = "GET") -> Answer:
    request = urllib.request.Request(url, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return Answer(response.status, dict(response.headers), response.read().decode("utf-8"))
    except urllib.error.HTTPError as error:
        return Answer(error.code, dict(error.headers), error.read().decode("utf-8"))


def metric_samples(text: str) -> dict[tuple[str, tuple], float]:
    """/metrics read with Prometheus' own text parser: (name, sorted labels) -> value."""
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}
