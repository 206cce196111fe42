"""A real Takahē (an independently written Mastodon-API server) on 127.0.0.1, as a pytest session fixture.

Takahē's source is ../shared/fixtures/takahe/takahe-*.tar.gz; ``bash tests/install-takahe.sh`` extracts it
into a cache directory with a venv of its own (tests/run and .ci/run do this). Per session this module
starts a throwaway PostgreSQL cluster in a temporary directory on a free loopback port, migrates Takahē's
database (the first session keeps a dump of the migrated schema beside the install, later ones restore it:
6 s to start instead of 15), serves Takahē with gunicorn on another free loopback port, and makes a user, an
identity and tokens through Takahē's own models (tests/takahe_admin.py, one long-lived process in Takahē's venv).

Fixture (session-scoped): ``takahe`` -> TakaheServer:

* ``takahe.url``                       "http://127.0.0.1:PORT"
* ``takahe.username/.password/.email`` the test identity's handle and its user's login
* ``takahe.token(scopes)``             a fresh token for the test identity
* ``takahe.statuses()``                the test identity's statuses as the API shows them, newest first
* ``takahe.new_identity(username)``    a separate user + identity (a TakaheAccount with the same methods),
                                       so that tests do not see each other's statuses
* ``takahe.set_post_length(n)``        the server's character limit (returns once the server reports it)
* ``takahe.requests()``                gunicorn's access log: (method, path, status) per request

Register it in tests/conftest.py with ``from tests.takahe_fixture import takahe  # noqa: F401``.

When Takahē is not installed or does not start, the fixture FAILS with the reason (never skips): these
tests are the project's proof against a server it did not write. Every process is stopped and the temporary
directory removed at the end of the session; if the test process dies instead, the servers get a signal
from the kernel (setpriv --pdeathsig) and the next session removes the directory it left.
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import dataclasses
import hashlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import IO, Iterator

import httpx
import pytest

from tests.feedserver import shared_dir

__all__ = ["ServerProcesses", "TakaheAccount", "TakaheError", "TakaheServer", "install_dir", "install_problem",
           "start_takahe", "takahe"]

REPO_ROOT = Path(__file__).resolve().parent.parent
ADMIN_SCRIPT = Path(__file__).resolve().parent / "takahe_admin.py"
INSTALL_COMMAND = "bash tests/install-takahe.sh"
DOMAIN = "takahe.local"  # the handle domain; nothing resolves it, the API is reached at url
RUN_PREFIX = "bridge-takahe-"
START_TIMEOUT = float(os.environ.get("BRIDGE_TAKAHE_START_TIMEOUT", "180"))
COMMAND_TIMEOUT = 60.0
# Takahē's ConfigLoadingMiddleware re-reads system settings at most every 5 s per worker.
CONFIG_REFRESH_SECONDS = 5.0


class TakaheError(RuntimeError):
    """Takahē or its PostgreSQL failed (to install, start, or answer)."""


# --------------------------------------------------------------------------- the install


def _archive() -> Path:
    folder = shared_dir() / "fixtures" / "takahe"
    archives = sorted(folder.glob("takahe-*.tar.gz"))
    if len(archives) != 1:
        raise TakaheError(f"expected exactly one takahe-*.tar.gz in {folder}, found {len(archives)}")
    return archives[0]


def install_dir() -> Path:
    """Where tests/install-takahe.sh puts Takahē: named by the archive's hash, as that script names it."""
    digest = hashlib.sha256(_archive().read_bytes()).hexdigest()
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "bridge-tests" / f"takahe-{digest[:16]}"


def install_problem() -> str | None:
    """What is missing for the real Takahē, or None when it is installed."""
    try:
        home = install_dir()
    except TakaheError as e:
        return str(e)
    if not (home / ".bridge-install-stamp").is_file():
        return f"{home} has no install stamp"
    for need in ("venv/bin/python", "venv/bin/gunicorn", "src/manage.py"):
        if not (home / need).exists():
            return f"{home / need} is missing"
    if not _postgres_bin():
        return "no /usr/lib/postgresql/*/bin/initdb (Debian package postgresql)"
    return None


def _postgres_bin() -> Path | None:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name))
    return found[-1].parent if found else None


# --------------------------------------------------------------------------- processes


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_postgres_user() -> list[str]:
    """initdb and postgres refuse to run as root: as root, run them as the `postgres` system user."""
    return ["setpriv", "--reuid", "postgres", "--regid", "postgres", "--init-groups"] if os.geteuid() == 0 else []


def _dies_with_us(signame: str, *, as_postgres: bool = False) -> list[str]:
    # The kernel sends the signal when the test process dies (even by SIGKILL), so no server outlives it.
    # One setpriv both changes the user and sets the signal: a change of user clears a signal set before it.
    user = _as_postgres_user()[1:] if as_postgres else []
    return ["setpriv", *user, f"--pdeathsig={signame}", "--"]


def _tree_rss(pid: int) -> int:
    """Resident memory of a process and all its descendants, in bytes."""
    children: dict[int, list[int]] = collections.defaultdict(list)
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            children[int(fields[1])].append(int(stat.parent.name))
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        todo.extend(children.get(current, []))
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{current}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
    return total


class _LineQueue:
    """Lines of a process's output, for a reader that waits with a timeout."""

    def __init__(self) -> None:
        self._items: collections.deque[str | None] = collections.deque()
        self._ready = threading.Condition()

    def put(self, item: str | None) -> None:
        with self._ready:
            self._items.append(item)
            self._ready.notify_all()

    def get(self, timeout: float) -> str | None:
        with self._ready:
            if not self._ready.wait_for(lambda: self._items, timeout=timeout):
                raise TimeoutError
            return self._items.popleft()


class _Process:
    """A child process whose output is kept (the last lines) for error messages."""

    def __init__(self, name: str, cmd: list[str], *, cwd: Path, env: dict[str, str], stdin: bool = False) -> None:
        self.name = name
        self.tail: collections.deque[str] = collections.deque(maxlen=200)
        self.lines = _LineQueue()
        try:
            self.proc = subprocess.Popen(
                cmd, cwd=cwd, env=env, stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,  # Ctrl-C goes to pytest
            )  # fmt: skip
        except OSError as e:
            raise TakaheError(f"cannot run {name} ({cmd[0]}): {e}") from e
        self._reader = threading.Thread(target=self._read, name=f"takahe-{name}", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            self.tail.append(line)
            self.lines.put(line)
        self.lines.put(None)

    def output(self, lines: int = 40) -> str:
        return "\n".join(list(self.tail)[-lines:])

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20) -> None:
        if self.proc.stdin is not None:  # a process that reads commands ends at end of input
            with contextlib.suppress(OSError):
                self.proc.stdin.close()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=5)
        if self.proc.poll() is None:
            with contextlib.suppress(OSError):
                self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._reader.join(timeout=2)
        if self.proc.stdout is not None:
            with contextlib.suppress(OSError):
                self.proc.stdout.close()




def _run(cmd: list[str], *, what: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> None:
    try:
        done = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=START_TIMEOUT)
    except (OSError, subprocess.SubprocessError) as e:
        raise TakaheError(f"{what} failed: {e}") from e
    if done.returncode != 0:
        raise TakaheError(f"{what} failed (exit {done.returncode}):\n{(done.stdout + done.stderr)[-3000:]}")


def _remove_stale_run_dirs(prefix: str = RUN_PREFIX) -> None:
    """Remove what sessions that died left behind (their servers got SIGTERM/SIGINT from the kernel)."""
    for run_dir in Path(tempfile.gettempdir()).glob(prefix + "*"):
        with contextlib.suppress(OSError, ValueError):
            owner = int((run_dir / "owner.pid").read_text())
            if not Path(f"/proc/{owner}").exists():
                shutil.rmtree(run_dir, ignore_errors=True)


# --------------------------------------------------------------------------- accounts


@dataclasses.dataclass
class TakaheAccount:
    """A Takahē user with one identity (the account bridge posts to)."""

    server: "TakaheServer"
    username: str
    email: str
    password: str
    account_id: str
    read_token: str

    @property
    def acct(self) -> str:
        return f"{self.username}@{DOMAIN}"

    def token(self, scopes: list[str]) -> str:
        """A fresh access token for this identity with exactly these scopes."""
        token = secrets.token_urlsafe(32)
        self.server.admin("create_token", username=self.username, scopes=list(scopes), token=token)
        return token

    def statuses(self) -> list[dict]:
        """This identity's statuses as the API shows them, newest first, all pages."""
        found: list[dict] = []
        url: str | None = f"{self.server.url}/api/v1/accounts/{self.account_id}/statuses?limit=40"
        with httpx.Client(timeout=30, headers={"Authorization": f"Bearer {self.read_token}"}) as http:
            while url:
                response = http.get(url)
                if response.status_code != 200:
                    raise TakaheError(f"GET {url}: {response.status_code} {response.text[:300]}")
                page = response.json()
                found.extend(page)
                url = response.links.get("next", {}).get("url") if page else None
        return found


# --------------------------------------------------------------------------- the server


class ServerProcesses:
    """Child processes started for one test server (PostgreSQL among them), stopped in reverse order at close.
    Shared by TakaheServer and tests/appview_fixture.py's AppViewServer: the subclass sets `error` and
    `default_cwd`, calls _open_run_dir, then _start_or_close (which runs its _start)."""

    error: type[Exception] = RuntimeError
    run_dir: Path
    default_cwd: Path
    _processes: list[_Process]
    timings: dict[str, float]
    _closed: bool

    def rss_bytes(self) -> dict[str, int]:
        """Resident memory of each live process (with its children), by name: PostgreSQL, the servers."""
        return {p.name: _tree_rss(p.proc.pid) for p in self._processes if p.alive()}

    def _open_run_dir(self, prefix: str) -> None:
        """A new temporary run directory (and no processes yet), after removing those of sessions that died."""
        _remove_stale_run_dirs(prefix)
        self.run_dir = Path(tempfile.mkdtemp(prefix=prefix))
        (self.run_dir / "owner.pid").write_text(str(os.getpid()))
        self._processes = []
        self.timings = {}
        self._closed = False

    def _start_or_close(self) -> None:
        try:
            self._start()
        except BaseException:
            self.close()
            raise

    def _timed(self, name: str, t0: float) -> None:
        self.timings[name] = round(time.monotonic() - t0, 2)

    def _spawn(self, name: str, cmd: list[str], *, env: dict[str, str] | None = None, cwd: Path | None = None,
               stdin: bool = False, signame: str = "TERM", as_postgres: bool = False) -> _Process:  # fmt: skip
        command = _dies_with_us(signame, as_postgres=as_postgres) + cmd
        process = _Process(name, command, cwd=cwd or self.default_cwd, env=env or self._env, stdin=stdin)
        self._processes.append(process)
        return process

    def _expect_line(self, process: _Process, matches, what: str) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                line = process.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except TimeoutError:
                raise self.error(f"{what}: not ready within {START_TIMEOUT:.0f} s\n{process.output()}") from None
            if line is None:
                process.proc.wait(timeout=10)
                raise self.error(f"{what} exited (code {process.proc.returncode}):\n{process.output()}")
            if matches(line):
                return

    def _stop_processes(self) -> None:
        """Every process, last started first, with SIGINT (PostgreSQL's fast shutdown); then the run directory."""
        for process in reversed(self._processes):
            process.stop(signal.SIGINT)
        shutil.rmtree(self.run_dir, ignore_errors=True)

    def _start_postgres(self, user: str, *, durable: bool = False) -> None:
        """A throwaway PostgreSQL cluster in run_dir/pg owned by `user` (password db_password), with a database named
        `user`, on a free loopback port (db_port). A test's is not `durable` (it is thrown away); the benchmark's
        keeps PostgreSQL's defaults, so that a commit costs what it does in production."""
        t0 = time.monotonic()
        bin_dir = self._pg_bin = _postgres_bin()
        assert bin_dir is not None
        pg_dir = self.run_dir / "pg"
        pg_dir.mkdir(mode=0o700)
        self.db_password = secrets.token_urlsafe(24)
        (pg_dir / "pwfile").write_text(self.db_password + "\n")
        if os.geteuid() == 0:
            self.run_dir.chmod(0o711)  # the postgres user passes through to its own directory, sees nothing else
            shutil.chown(pg_dir, "postgres", "postgres")
            shutil.chown(pg_dir / "pwfile", "postgres", "postgres")
        path = os.environ.get("PATH", "/usr/bin:/bin")
        pg_env = self._pg_env = {"PATH": path, "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}
        _run(_as_postgres_user() + [str(bin_dir / "initdb"), "-D", str(pg_dir / "data"), "-U", user,
              "--pwfile", str(pg_dir / "pwfile"), "--auth=scram-sha-256", "-E", "UTF8", "--no-sync"],
             what="initdb", env=pg_env, cwd=pg_dir)  # fmt: skip
        self._timed("initdb", t0)
        t0 = time.monotonic()
        self.db_port = _free_port()
        # Loopback only, its socket in its own directory; a test's without durability (it is thrown away).
        fast = [] if durable else ["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"]
        self._postgres_cmd = [str(bin_dir / "postgres"), "-D", str(pg_dir / "data"), "-p", str(self.db_port),
                              "-k", str(pg_dir), "-c", "listen_addresses=127.0.0.1", *fast]
        self._run_postgres()
        _run([str(bin_dir / "createdb"), "-h", "127.0.0.1", "-p", str(self.db_port), "-U", user, user],
             what="createdb", env={**pg_env, "PGPASSWORD": self.db_password})  # fmt: skip
        self._timed("postgres", t0)


    def _run_postgres(self) -> None:
        """The server of the cluster _start_postgres made (again, after _stop_postgres), ready for connections."""
        pg_dir = self.run_dir / "pg"
        self._postgres = self._spawn("postgres", self._postgres_cmd, env=self._pg_env, cwd=pg_dir, signame="INT",
                                     as_postgres=True)  # SIGINT: PostgreSQL's fast shutdown
        self._expect_line(self._postgres, lambda line: "ready to accept connections" in line, "PostgreSQL")

    def _stop_postgres(self) -> None:
        """PostgreSQL's fast shutdown: every session ends (its transaction rolled back), nothing is lost."""
        self._postgres.stop(signal.SIGINT)
        self._processes.remove(self._postgres)


class TakaheServer(ServerProcesses):
    """PostgreSQL + Takahē (gunicorn) + the admin process, all on loopback. Use the fixture."""

    error = TakaheError

    def __init__(self) -> None:
        problem = install_problem()
        if problem is not None:
            raise TakaheError(f"Takahē is not installed: {problem}. Install it with `{INSTALL_COMMAND}`")
        self.home = install_dir()
        self.src = self.default_cwd = self.home / "src"
        self.python = str(self.home / "venv" / "bin" / "python")
        self._admin_lock = threading.Lock()
        self._open_run_dir(RUN_PREFIX)
        self._start_or_close()

    def __repr__(self) -> str:
        return f"<TakaheServer {getattr(self, 'url', '?')} {'closed' if self._closed else 'running'}>"

    # ----------------------------------------------------------------- start-up

    def _start(self) -> None:
        started = time.monotonic()
        self._start_postgres("takahe")
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._env = self._takahe_env()
        t0 = time.monotonic()
        self._migrate()
        self._timed("migrate", t0)
        t0 = time.monotonic()
        self._admin = self._spawn("admin", [self.python, str(ADMIN_SCRIPT)], stdin=True)
        self._expect_line(self._admin, lambda line: line.startswith('{"ready"'), "the admin process")
        self.admin("setup", domain=DOMAIN)
        self.account = self._make_account("bridge")
        self._timed("accounts", t0)
        t0 = time.monotonic()
        self._start_gunicorn()
        self._timed("gunicorn", t0)
        self.startup_seconds = round(time.monotonic() - started, 2)

    def _migrate(self) -> None:
        """Takahē's schema: restored from the dump an earlier session made (1 s), else its ~150 migrations (13 s).
        `migrate` runs either way, so a dump that lags the source is brought up to date, never trusted blindly."""
        dump = self.home / "migrated.sql"
        psql = [str(self._pg_bin / "psql"), "-h", "127.0.0.1", "-p", str(self.db_port), "-U", "takahe", "-q",
                "-v", "ON_ERROR_STOP=1", "takahe"]  # fmt: skip
        pg_env = {**self._pg_env, "PGPASSWORD": self.db_password}
        if dump.is_file():
            _run(psql + ["-f", str(dump)], what=f"restoring {dump}", env=pg_env)
        _run([self.python, "manage.py", "migrate", "--noinput", "-v", "0"], what="Takahē's migrate", env=self._env,
             cwd=self.src)  # fmt: skip
        if not dump.is_file():  # written aside and renamed: a session that reads it never sees half a file
            partial = dump.with_name(f"{dump.name}.{os.getpid()}")
            _run([str(self._pg_bin / "pg_dump"), "-h", "127.0.0.1", "-p", str(self.db_port), "-U", "takahe",
                  "--no-owner", "-f", str(partial), "takahe"], what="pg_dump", env=pg_env)  # fmt: skip
            partial.replace(dump)

    def _takahe_env(self) -> dict[str, str]:
        (self.run_dir / "media").mkdir()
        return {
            "PATH": f"{self.home / 'venv' / 'bin'}:{os.environ.get('PATH', '/usr/bin:/bin')}",
            "HOME": str(self.run_dir),
            "LANG": "C.UTF-8",
            "PYTHONDONTWRITEBYTECODE": "1",
            "TAKAHE_ENV_FILE": "/dev/null",  # settings come from these variables only, never a stray .env
            "TAKAHE_DATABASE_SERVER": f"postgres://takahe:{self.db_password}@127.0.0.1:{self.db_port}/takahe",
            "TAKAHE_DEBUG": "true",
            "TAKAHE_SECRET_KEY": secrets.token_hex(32),
            "TAKAHE_CSRF_HOSTS": json.dumps([self.url]),
            "TAKAHE_EMAIL_SERVER": "console://console",
            "TAKAHE_MAIN_DOMAIN": DOMAIN,
            "TAKAHE_ENVIRONMENT": "development",
            "TAKAHE_MEDIA_URL": f"{self.url}/media/",
            "TAKAHE_MEDIA_ROOT": str(self.run_dir / "media"),
            # Takahē fetches remote actors and cards with httpx; a dead loopback proxy keeps it off the network.
            "HTTP_PROXY": "http://127.0.0.1:9",
            "HTTPS_PROXY": "http://127.0.0.1:9",
            "ALL_PROXY": "http://127.0.0.1:9",
        }

    def _start_gunicorn(self) -> None:
        self.access_log = self.run_dir / "access.log"
        # One worker with threads: one copy of Takahē's cached settings, so set_post_length is seen at once
        # by every request once it is seen by one.
        self._gunicorn = self._spawn(
            "gunicorn",
            [str(self.home / "venv" / "bin" / "gunicorn"), "takahe.wsgi:application", "-b", f"127.0.0.1:{self.port}",
             "--workers", "1", "--threads", "4", "--worker-class", "gthread", "--timeout", "120",
             "--access-logfile", str(self.access_log), "--access-logformat", "%(m)s %(U)s %(s)s"],
        )  # fmt: skip
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            output = self._gunicorn.output
            if not self._gunicorn.alive():
                raise TakaheError(f"gunicorn exited (code {self._gunicorn.proc.returncode}):\n{output()}")
            with contextlib.suppress(httpx.TransportError):
                response = httpx.get(f"{self.url}/api/v2/instance", timeout=30)
                if response.status_code == 200:
                    return
                raise TakaheError(f"Takahē answers {response.status_code} for /api/v2/instance:\n{output()}")
            if time.monotonic() > deadline:
                raise TakaheError(f"Takahē did not answer within {START_TIMEOUT:.0f} s:\n{output()}")
            time.sleep(0.1)

    # ----------------------------------------------------------------- commands

    def admin(self, op: str, **args) -> dict:
        """One command to tests/takahe_admin.py (Takahē's models), its answer."""
        if self._closed:
            raise TakaheError("Takahē is closed")
        with self._admin_lock:
            stdin: IO[bytes] | None = self._admin.proc.stdin
            try:
                assert stdin is not None
                stdin.write((json.dumps({"op": op, **args}) + "\n").encode())
                stdin.flush()
            except OSError as e:
                raise TakaheError(f"admin {op}: the process is gone ({e})\n{self._admin.output()}") from e
            answer = self._admin_answer(op)
        if not answer["ok"]:
            raise TakaheError(f"admin {op}: {answer['error']}\n{answer['traceback']}")
        return answer

    def _admin_answer(self, op: str) -> dict:
        deadline = time.monotonic() + COMMAND_TIMEOUT
        while True:  # its stderr shares the pipe: a warning line is not the answer
            try:
                line = self._admin.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except TimeoutError:
                raise TakaheError(f"admin {op}: no answer in {COMMAND_TIMEOUT:.0f} s\n{self._admin.output()}") from None
            if line is None:
                raise TakaheError(f"admin {op}: the process exited\n{self._admin.output()}")
            if line.startswith('{"ok"'):
                return json.loads(line)

    def _make_account(self, username: str) -> TakaheAccount:
        email, password = f"{username}@example.com", secrets.token_urlsafe(18)
        made = self.admin("create_account", domain=DOMAIN, username=username, email=email, password=password)
        read_token = secrets.token_urlsafe(32)
        self.admin("create_token", username=username, scopes=["read"], token=read_token)
        return TakaheAccount(self, username, email, password, made["account_id"], read_token)

    def new_identity(self, username: str) -> TakaheAccount:
        """A new user with its own identity `username` (letters, digits, _), e.g. one per test."""
        return self._make_account(username)

    # The default test identity, for tests that need only one.
    @property
    def username(self) -> str:
        return self.account.username

    @property
    def password(self) -> str:
        return self.account.password

    @property
    def email(self) -> str:
        return self.account.email

    def token(self, scopes: list[str]) -> str:
        return self.account.token(scopes)

    def statuses(self) -> list[dict]:
        return self.account.statuses()

    def instance(self) -> dict:
        response = httpx.get(f"{self.url}/api/v2/instance", timeout=30)
        response.raise_for_status()
        return response.json()

    def set_post_length(self, n: int) -> None:
        """Set the character limit; returns once /api/v2/instance reports it (the server caches it 5 s)."""
        self.admin("set_system", key="post_length", value=int(n))
        deadline = time.monotonic() + CONFIG_REFRESH_SECONDS * 3
        while self.instance()["configuration"]["statuses"]["max_characters"] != n:
            if time.monotonic() > deadline:
                raise TakaheError(f"Takahē still reports the old post_length after setting {n}")
            time.sleep(0.25)

    def requests(self) -> list[tuple[str, str, int]]:
        """(method, path, status) of every request gunicorn answered so far, oldest first."""
        rows = []
        for line in self.access_log.read_text().splitlines():
            method, path, status = line.split(" ")
            rows.append((method, path, int(status)))
        return rows

    # ----------------------------------------------------------------- shutdown

    def close(self) -> None:
        """Stop every process and remove every file. Idempotent."""
        if self._closed:
            return
        self._closed = True
        # gunicorn, the admin process, then PostgreSQL; SIGINT is a quick shutdown to both servers (gunicorn's
        # SIGTERM waits for idle keep-alive connections).
        self._stop_processes()


# --------------------------------------------------------------------------- the fixture

_servers: list = []  # every server started here or by tests/appview_fixture.py


@atexit.register
def _close_all() -> None:  # last resort; the fixtures close their servers themselves
    for server in _servers:
        with contextlib.suppress(Exception):
            server.close()


def close_at_exit(server):
    """Registers a started server (anything with close()) to be closed when the test process exits."""
    _servers.append(server)
    return server


def start_takahe() -> TakaheServer:
    """Start a server, or fail the test with the reason (never skip). Call .close() when done."""
    try:
        server = TakaheServer()
    except TakaheError as e:
        pytest.fail(f"real Takahē unavailable: {e}", pytrace=False)
    return close_at_exit(server)


@pytest.fixture(scope="session")
def takahe() -> Iterator[TakaheServer]:
    """A real Takahē on 127.0.0.1 with a test identity, shared by the whole session. Fails if it cannot start."""
    server = start_takahe()
    try:
        yield server
    finally:
        server.close()


if __name__ == "__main__":  # `python -m tests.takahe_fixture`: start it, print the figures, stop it
    t0 = time.monotonic()
    with contextlib.closing(TakaheServer()) as running:
        print(f"Takahē at {running.url} in {time.monotonic() - t0:.1f} s: {running.timings}", file=sys.stderr)
        print({name: f"{rss / 2**20:.0f} MiB" for name, rss in running.rss_bytes().items()}, file=sys.stderr)
