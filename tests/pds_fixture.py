"""A real atproto PDS (with its own PLC directory) on 127.0.0.1, as pytest fixtures.

The servers are the npm packages pinned in tests/pds/package.json, run by
tests/pds/server.mjs in one node process (install: ``bash tests/install-pds.sh``).

Fixtures (all session-scoped):

* ``pds``             -> PdsServer, rate limits OFF.
* ``pds_ratelimited`` -> PdsServer, rate limits ON (the PDS's real limits: 429 + ratelimit-* headers).
* ``pds_factory``     -> ``start(*, rate_limits=False, blob_upload_limit=None) -> PdsServer``: a new,
  separate server per call (e.g. a tiny blob limit), stopped at the end of the session.

Register them in tests/conftest.py with::

    from tests.pds_fixture import pds, pds_factory, pds_ratelimited  # noqa: F401

Importing them into several modules is harmless: every import shares the same server processes.

When node, npm or an up-to-date tests/pds/node_modules is missing, the fixtures skip with a message
saying what to run -- but fail instead when the environment variable CI is set (to anything but
"", "0", "false", "no"). A server that does not start always fails, with its stderr tail.
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import dataclasses
import hashlib
import json
import os
import queue
import re
import secrets
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import httpx
import pytest

__all__ = [
    "Account",
    "PdsError",
    "PdsRequest",
    "PdsServer",
    "install_problem",
    "pds",
    "pds_factory",
    "pds_ratelimited",
    "start_pds",
]

PDS_DIR = Path(__file__).resolve().parent / "pds"
SERVER_SCRIPT = PDS_DIR / "server.mjs"
INSTALL_COMMAND = "bash tests/install-pds.sh"
STAMP = PDS_DIR / "node_modules" / ".bridge-install-stamp"
HANDLE_DOMAIN = ".test"
CREATE_SESSION = "com.atproto.server.createSession"

START_TIMEOUT = float(os.environ.get("BRIDGE_PDS_START_TIMEOUT", "90"))
COMMAND_TIMEOUT = 30.0


class PdsError(RuntimeError):
    """The PDS process failed (to start, to answer a command, or it died)."""


@dataclasses.dataclass(frozen=True)
class Account:
    handle: str  # e.g. "alice-3f9a2c.test"
    did: str  # "did:plc:..."
    password: str  # the account's main password
    app_password: str  # "xxxx-xxxx-xxxx-xxxx", what bridge logs in with
    email: str


@dataclasses.dataclass
class PdsRequest:
    """One request as the PDS process saw it arrive (status/ms once the answer is sent)."""

    id: int
    ts: float  # arrival, epoch seconds
    method: str
    url: str  # path + query, e.g. "/xrpc/com.atproto.repo.getRecord?repo=..."
    status: int | None = None  # None until the response has been written
    ms: float | None = None
    aborted: bool = False  # the connection closed before the answer was sent

    @property
    def path(self) -> str:
        return self.url.split("?", 1)[0]

    @property
    def nsid(self) -> str | None:
        """"com.atproto.server.createSession" for /xrpc/com.atproto.server.createSession, else None."""
        p = self.path
        return p[len("/xrpc/") :] if p.startswith("/xrpc/") else None


# --------------------------------------------------------------------------- install checks

_node_version_cache: dict[str, str] = {}


def _truthy_env(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no", "off")


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def install_problem() -> str | None:
    """What is missing for the real PDS, or None when it is installed and up to date."""
    node = shutil.which("node")
    if not node:
        return "node is not on PATH"
    if not shutil.which("npm"):
        return "npm is not on PATH"
    if not (PDS_DIR / "node_modules").is_dir():
        return "tests/pds/node_modules is missing"
    if not STAMP.is_file():
        return "tests/pds/node_modules was not installed by tests/install-pds.sh (no install stamp)"
    if node not in _node_version_cache:
        try:
            out = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=30, check=True)
            _node_version_cache[node] = out.stdout.strip()
        except (OSError, subprocess.SubprocessError) as e:
            return f"`node --version` failed: {e}"
    want = (
        f"package.json {_sha256(PDS_DIR / 'package.json')}\n"
        f"package-lock.json {_sha256(PDS_DIR / 'package-lock.json')}\n"
        f"node {_node_version_cache[node]}\n"
    )
    if STAMP.read_text() != want:
        return (
            "tests/pds/node_modules is out of date "
            "(package.json, package-lock.json or the node version changed since the install)"
        )
    return None


def _require_installed() -> None:
    problem = install_problem()
    if problem is None:
        return
    msg = (
        f"real atproto PDS unavailable: {problem}. Install it with `{INSTALL_COMMAND}` "
        "(needs node >= 20 with its headers, npm >= 11, make, g++, python3; 100-260 s on 2 cores)"
    )
    if _truthy_env("CI"):
        pytest.fail(msg + " -- CI is set, so this fails instead of skipping", pytrace=False)
    pytest.skip(msg)


# --------------------------------------------------------------------------- the server


class PdsServer:
    """A running PLC + PDS pair (one node process). Use the fixtures or start_pds() to make one."""

    handle_domain = HANDLE_DOMAIN

    def __init__(self, *, rate_limits: bool = False, blob_upload_limit: int | None = None) -> None:
        self.rate_limits = rate_limits
        self.run_dir = Path(tempfile.mkdtemp(prefix="bridge-pds-run-"))
        self.data_dir = self.run_dir / "data"
        self.request_log_path = self.run_dir / "requests.jsonl"
        self._events: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._stderr: collections.deque[str] = collections.deque(maxlen=300)
        self._lock = threading.Lock()
        self._log_offset = 0
        self._log_partial = b""
        self._requests: dict[int, PdsRequest] = {}
        self._running = False
        self._closed = False

        cmd = [
            shutil.which("node") or "node",
            str(SERVER_SCRIPT),
            "--data-dir", str(self.data_dir),
            "--request-log", str(self.request_log_path),
            # If this Python process dies without cleaning up, node sees EOF on stdin and removes it.
            "--remove-on-exit", str(self.run_dir),
        ]  # fmt: skip
        if rate_limits:
            cmd.append("--rate-limits")
        if blob_upload_limit is not None:
            cmd += ["--blob-upload-limit", str(int(blob_upload_limit))]
        env = dict(os.environ)
        for k in ("BRIDGE_PDS_PORT", "BRIDGE_PDS_PLC_PORT", "BRIDGE_PDS_DATA_DIR", "BRIDGE_PDS_REQUEST_LOG"):
            env.pop(k, None)
        if os.environ.get("BRIDGE_PDS_PINO_LOG"):  # debugging: the PDS's own pino logs to this file
            env.update(LOG_ENABLED="true", LOG_DESTINATION=os.environ["BRIDGE_PDS_PINO_LOG"])
        else:
            env["LOG_ENABLED"] = "false"

        t0 = time.monotonic()
        try:
            self._proc = subprocess.Popen(
                cmd,
                cwd=PDS_DIR,
                env=env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,  # Ctrl-C goes to pytest, which then stops us in order
            )
        except OSError as e:
            shutil.rmtree(self.run_dir, ignore_errors=True)
            raise PdsError(f"cannot run {cmd[0]}: {e}") from e
        self._threads = [
            threading.Thread(target=self._read_stdout, name="pds-stdout", daemon=True),
            threading.Thread(target=self._read_stderr, name="pds-stderr", daemon=True),
        ]
        for t in self._threads:
            t.start()
        try:
            ready = self._wait_event({"ready"}, START_TIMEOUT, "start")
        except PdsError:
            self.close()
            raise
        self.startup_seconds = time.monotonic() - t0
        self._running = True
        self.info: dict[str, Any] = ready
        self.url: str = ready["pds_url"]  # http://127.0.0.1:PORT -- use this
        self.public_url: str = ready["pds_public_url"]  # http://localhost:PORT, as in DID documents
        self.port: int = ready["pds_port"]
        self.plc_url: str = ready["plc_url"]
        self.admin_password: str = ready["admin_password"]
        self.admin_auth = ("admin", self.admin_password)  # HTTP basic auth for com.atproto.admin.*
        self.blob_upload_limit: int = ready["blob_upload_limit"]
        self.pid: int = self._proc.pid

    def __repr__(self) -> str:
        state = "running" if self._running else ("closed" if self._closed else "stopped")
        return f"<PdsServer {getattr(self, 'url', '?')} {state} rate_limits={self.rate_limits}>"

    # ----------------------------------------------------------------- process plumbing

    def _read_stdout(self) -> None:
        assert self._proc.stdout is not None
        for raw in self._proc.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            try:
                obj = json.loads(line)
            except ValueError:
                obj = None
            if isinstance(obj, dict) and "event" in obj:
                self._events.put(obj)
            elif line:
                self._stderr.append("[stdout] " + line)
        self._events.put(None)

    def _read_stderr(self) -> None:
        assert self._proc.stderr is not None
        for raw in self._proc.stderr:
            self._stderr.append(raw.decode("utf-8", "replace").rstrip("\n"))

    def stderr_tail(self, lines: int = 40) -> str:
        return "\n".join(list(self._stderr)[-lines:])

    def _wait_event(self, names: set[str], timeout: float, what: str) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise PdsError(f"PDS {what}: no answer within {timeout:.0f} s\n{self.stderr_tail()}")
            try:
                ev = self._events.get(timeout=min(remaining, 0.25))
            except queue.Empty:
                continue
            if ev is None:
                self._proc.wait(timeout=10)
                time.sleep(0.05)  # let the stderr thread catch the last lines
                raise PdsError(
                    f"PDS {what}: the node process exited (code {self._proc.returncode}); stderr tail:\n"
                    f"{self.stderr_tail()}"
                )
            if ev["event"] in names:
                return ev
            if ev["event"] == "error":
                raise PdsError(f"PDS {what}: {ev.get('message')}\n{self.stderr_tail()}")

    def _command(self, cmd: str, answer: str) -> dict[str, Any]:
        if self._closed:
            raise PdsError("PDS is closed")
        with self._lock:
            try:
                assert self._proc.stdin is not None
                self._proc.stdin.write(cmd.encode() + b"\n")
                self._proc.stdin.flush()
            except (BrokenPipeError, OSError) as e:
                raise PdsError(f"PDS {cmd}: process is gone ({e})\n{self.stderr_tail()}") from e
            return self._wait_event({answer}, COMMAND_TIMEOUT, cmd)

    # ----------------------------------------------------------------- lifecycle

    @property
    def running(self) -> bool:
        return self._running and self._proc.poll() is None

    def stop(self) -> None:
        """Stop the PDS (connections to url are refused); PLC and all data stay. Idempotent."""
        self._command("stop", "stopped")
        self._running = False

    def start(self) -> None:
        """Start the PDS again on the same port, data dir and secrets (old tokens stay valid). Idempotent."""
        self._command("start", "started")
        self._running = True

    def ensure_running(self) -> None:
        if not self.running:
            self.start()

    @contextlib.contextmanager
    def stopped(self) -> Iterator[None]:
        """``with pds.stopped(): ...`` -- the PDS is down inside the block, up again after it."""
        self.stop()
        try:
            yield
        finally:
            self.start()

    def close(self) -> None:
        """Stop both servers, end the process, remove every file. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._running = False
        proc = self._proc if hasattr(self, "_proc") else None
        if proc is not None and proc.poll() is None:
            try:
                assert proc.stdin is not None
                proc.stdin.close()  # EOF: server.mjs stops PDS and PLC and removes run_dir
            except OSError:
                pass
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.terminate()
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=5)
        for t in getattr(self, "_threads", []):
            t.join(timeout=2)
        for stream in (proc.stdin, proc.stdout, proc.stderr) if proc is not None else ():
            with contextlib.suppress(Exception):
                stream.close()  # type: ignore[union-attr]
        shutil.rmtree(self.run_dir, ignore_errors=True)

    def rss_bytes(self) -> int:
        """Resident memory of the node process (PLC + PDS)."""
        for line in Path(f"/proc/{self._proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise PdsError("VmRSS not found")

    # ----------------------------------------------------------------- request log

    def _refresh_log(self) -> None:
        try:
            with open(self.request_log_path, "rb") as f:
                f.seek(self._log_offset)
                chunk = f.read()
        except FileNotFoundError:
            return
        self._log_offset += len(chunk)
        data = self._log_partial + chunk
        lines = data.split(b"\n")
        self._log_partial = lines.pop()  # an unfinished last line waits for the next read
        for line in lines:
            if not line.strip():
                continue
            rec = json.loads(line)
            if rec["ev"] == "req":
                self._requests[rec["id"]] = PdsRequest(rec["id"], rec["ts"], rec["method"], rec["url"])
            elif rec["ev"] == "res" and rec["id"] in self._requests:
                req = self._requests[rec["id"]]
                req.status, req.ms, req.aborted = rec["status"], rec["ms"], bool(rec.get("aborted"))

    def requests(self, nsid: str | None = None, *, since: int = 0) -> list[PdsRequest]:
        """Requests the PDS received (across stop/start), oldest first.

        Each is logged when it ARRIVES, before it is handled: once a client has its answer,
        its request is here (its status may still be None for a moment).
        ``nsid`` keeps only that XRPC method; ``since`` (from mark()) keeps only later requests.
        """
        with self._lock:
            self._refresh_log()
            return [
                r
                for r in self._requests.values()
                if r.id > since and (nsid is None or r.nsid == nsid)
            ]

    @property
    def request_log(self) -> list[PdsRequest]:
        return self.requests()

    def mark(self) -> int:
        """A position in the request log, for ``requests(since=...)`` / ``count(since=...)``."""
        with self._lock:
            self._refresh_log()
            return max(self._requests, default=0)

    def count(self, nsid: str, *, since: int = 0) -> int:
        return len(self.requests(nsid, since=since))

    def wait_idle(self, timeout: float = 5.0) -> list[PdsRequest]:
        """Wait until every logged request has its status (answers are logged just after sending)."""
        deadline = time.monotonic() + timeout
        while True:
            reqs = self.requests()
            pending = [r for r in reqs if r.status is None]
            if not pending:
                return reqs
            if time.monotonic() > deadline:
                raise PdsError(f"requests still unanswered after {timeout} s: {pending}")
            time.sleep(0.02)

    def create_session_count(self, *, since: int = 0) -> int:
        """How many com.atproto.server.createSession calls (logins) reached the PDS."""
        return self.count(CREATE_SESSION, since=since)

    # ----------------------------------------------------------------- accounts

    def create_account(
        self, handle_prefix: str = "user", *, password: str | None = None, app_password_name: str = "bridge"
    ) -> Account:
        """A new account "<prefix>-<6 hex>.test" with a password and an app password (see create_account)."""
        return create_account(self.url, handle_prefix, password=password, app_password_name=app_password_name)


def create_account(
    pds_url: str, handle_prefix: str = "user", *, password: str | None = None, app_password_name: str = "bridge"
) -> Account:
    """A new account "<prefix>-<6 hex>.test" with a password and an app password.

    Uses com.atproto.server.createAccount + com.atproto.server.createAppPassword; no
    createSession, so it does not count as a login.
    """
    prefix = re.sub(r"[^a-z0-9]+", "-", handle_prefix.lower()).strip("-")[:11].strip("-") or "user"
    handle = f"{prefix}-{secrets.token_hex(3)}{HANDLE_DOMAIN}"  # the part before .test: 3..18 chars
    email = f"{handle.removesuffix(HANDLE_DOMAIN)}@example.com"
    password = password or secrets.token_urlsafe(18)
    with httpx.Client(base_url=pds_url, timeout=30) as http:
        r = http.post(
            "/xrpc/com.atproto.server.createAccount",
            json={"handle": handle, "email": email, "password": password},
        )
        if r.status_code != 200:
            raise PdsError(f"createAccount {handle}: {r.status_code} {r.text}")
        body = r.json()
        r2 = http.post(
            "/xrpc/com.atproto.server.createAppPassword",
            json={"name": app_password_name},
            headers={"Authorization": f"Bearer {body['accessJwt']}"},
        )
        if r2.status_code != 200:
            raise PdsError(f"createAppPassword {handle}: {r2.status_code} {r2.text}")
    return Account(
        handle=body["handle"],
        did=body["did"],
        password=password,
        app_password=r2.json()["password"],
        email=email,
    )


# --------------------------------------------------------------------------- sharing + fixtures

_shared: dict[tuple[bool, int | None], PdsServer] = {}
_shared_refs: collections.Counter[tuple[bool, int | None]] = collections.Counter()
_all_servers: list[PdsServer] = []
_shared_lock = threading.Lock()


def start_pds(*, rate_limits: bool = False, blob_upload_limit: int | None = None) -> PdsServer:
    """Start a new server (skips/fails like the fixtures when not installed). Call .close() when done."""
    _require_installed()
    try:
        server = PdsServer(rate_limits=rate_limits, blob_upload_limit=blob_upload_limit)
    except PdsError as e:
        pytest.fail(str(e), pytrace=False)
    _all_servers.append(server)
    return server


@atexit.register
def _close_all() -> None:  # last resort; the fixtures close their servers themselves
    for server in _all_servers:
        with contextlib.suppress(Exception):
            server.close()


@contextlib.contextmanager
def _shared_server(rate_limits: bool) -> Iterator[PdsServer]:
    # One process per kind for the whole session, even when these fixtures are imported into
    # several modules/conftests (each import is a separate fixture definition to pytest).
    key = (rate_limits, None)
    with _shared_lock:
        server = _shared.get(key)
        if server is None or server._closed:
            server = _shared[key] = start_pds(rate_limits=rate_limits)
        _shared_refs[key] += 1
    try:
        yield server
    finally:
        with _shared_lock:
            _shared_refs[key] -= 1
            if _shared_refs[key] == 0:
                _shared.pop(key, None)
                server.close()


@pytest.fixture(scope="session")
def pds() -> Iterator[PdsServer]:
    """A real PDS (+PLC) on 127.0.0.1, rate limits off, shared by the whole session.

    A test that calls stop() must start() it again (``with pds.stopped():`` does).
    """
    with _shared_server(rate_limits=False) as server:
        server.ensure_running()
        yield server


@pytest.fixture(scope="session")
def pds_ratelimited() -> Iterator[PdsServer]:
    """Like ``pds``, a separate server with the PDS's real rate limits on (in-memory limiter)."""
    with _shared_server(rate_limits=True) as server:
        server.ensure_running()
        yield server


@pytest.fixture(scope="session")
def pds_factory() -> Iterator[Callable[..., PdsServer]]:
    """``pds_factory(rate_limits=False, blob_upload_limit=None)`` -> a new PdsServer of its own."""
    made: list[PdsServer] = []

    def make(*, rate_limits: bool = False, blob_upload_limit: int | None = None) -> PdsServer:
        server = start_pds(rate_limits=rate_limits, blob_upload_limit=blob_upload_limit)
        made.append(server)
        return server

    yield make
    for server in made:
        server.close()
