"""Tests of the real-PDS fixture (tests/pds_fixture.py) with the atproto Python SDK.

They also print the measured numbers (run with -s to see them): cold start, createRecord
latency, memory.
"""

from __future__ import annotations

import secrets
import statistics
import struct
import subprocess
import sys
import tempfile
import textwrap
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path

import httpx
import pytest
from atproto import Client, exceptions, models

import tests.pds_fixture as pds_fixture
from tests.pds_fixture import Account, PdsServer, pds, pds_factory, pds_ratelimited  # noqa: F401

POST = "app.bsky.feed.post"
_TID_ALPHABET = "234567abcdefghijklmnopqrstuvwxyz"
_last_tid_us = 0


def tid() -> str:
    """A fresh atproto TID (13 chars, base32-sortable: 53 bits of microseconds, 10 bits clock id)."""
    global _last_tid_us
    us = max(time.time_ns() // 1000, _last_tid_us + 1)
    _last_tid_us = us
    n = (us << 10) | secrets.randbelow(1024)
    return "".join(_TID_ALPHABET[(n >> (5 * i)) & 31] for i in reversed(range(13)))


def now_iso() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def post_record(text: str, **extra: object) -> dict:
    return {"$type": POST, "text": text, "createdAt": now_iso(), "langs": ["en"], **extra}


def tiny_png(width: int = 2, height: int = 2) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    raw = b"".join(b"\x00" + b"\xff\x00\x00" * width for _ in range(height))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def login(server: PdsServer, account: Account) -> Client:
    client = Client(base_url=server.url)
    # No AppView behind this PDS: app.bsky.actor.getProfile would answer 400.
    client.login(account.handle, account.app_password, fetch_bsky_profile=False)
    return client


def create_post(client: Client, did: str, text: str, rkey: str | None = None, **extra: object):
    return client.com.atproto.repo.create_record(
        models.ComAtprotoRepoCreateRecord.Data(
            repo=did, collection=POST, rkey=rkey or tid(), record=post_record(text, **extra)
        )
    )


def get_post(client: Client, did: str, rkey: str):
    return client.com.atproto.repo.get_record(
        models.ComAtprotoRepoGetRecord.Params(repo=did, collection=POST, rkey=rkey)
    )


def listening_addresses(port: int) -> set[str]:
    """Local addresses of LISTEN sockets on this port (from /proc/net/tcp{,6})."""
    found = set()
    for name in ("tcp", "tcp6"):
        path = Path("/proc/net") / name
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            fields = line.split()
            local, state = fields[1], fields[3]
            addr_hex, port_hex = local.split(":")
            if state != "0A" or int(port_hex, 16) != port:  # 0A = LISTEN
                continue
            if name == "tcp":
                found.add(".".join(str(b) for b in reversed(bytes.fromhex(addr_hex))))
            else:
                found.add("ipv6:" + addr_hex)
    return found


@pytest.fixture(scope="module")
def account(pds: PdsServer) -> Account:
    return pds.create_account("fixture")


@pytest.fixture(scope="module")
def client(pds: PdsServer, account: Account) -> Client:
    return login(pds, account)


# --------------------------------------------------------------------------- the server itself


def test_binds_loopback_only(pds: PdsServer) -> None:
    assert pds.url == f"http://127.0.0.1:{pds.port}"
    assert listening_addresses(pds.port) == {"127.0.0.1"}
    plc_port = int(pds.plc_url.rsplit(":", 1)[1])
    assert listening_addresses(plc_port) == {"127.0.0.1"}


def test_describe_server(pds: PdsServer) -> None:
    r = httpx.get(f"{pds.url}/xrpc/com.atproto.server.describeServer")
    assert r.status_code == 200
    body = r.json()
    assert body["availableUserDomains"] == [".test"]
    assert body["inviteCodeRequired"] is False
    assert body["did"] == "did:web:localhost"


def test_account_is_registered_in_plc(pds: PdsServer, account: Account) -> None:
    assert account.handle.endswith(".test") and account.did.startswith("did:plc:")
    assert len(account.app_password) == 19 and account.app_password.count("-") == 3
    doc = httpx.get(f"{pds.plc_url}/{account.did}").json()
    assert doc["alsoKnownAs"] == [f"at://{account.handle}"]
    assert doc["service"][0]["serviceEndpoint"] == pds.public_url
    r = httpx.get(f"{pds.url}/xrpc/com.atproto.identity.resolveHandle", params={"handle": account.handle})
    assert r.json() == {"did": account.did}


def test_handles_are_unique_and_valid(pds: PdsServer) -> None:
    a = pds.create_account("A Very Long Prefix, With Punctuation!")
    b = pds.create_account("A Very Long Prefix, With Punctuation!")
    assert a.handle != b.handle and a.did != b.did
    assert a.handle.startswith("a-very-long-") and len(a.handle.removesuffix(".test")) <= 18


# --------------------------------------------------------------------------- records and blobs


def test_create_record_with_tid_rkey_and_read_it_back(pds: PdsServer, client: Client, account: Account) -> None:
    assert client.me is None  # fetch_bsky_profile=False
    rkey = tid()
    created = create_post(client, account.did, "Hello from the fixture test 👋", rkey=rkey)
    assert created.uri == f"at://{account.did}/{POST}/{rkey}"
    got = get_post(client, account.did, rkey)
    assert got.uri == created.uri and got.cid == created.cid
    assert got.value.text == "Hello from the fixture test 👋"
    assert got.value.langs == ["en"]


def test_create_record_same_rkey_twice_is_a_500(pds: PdsServer, client: Client, account: Account) -> None:
    # Worth knowing for retry safety: a second create with the same rkey is NOT a 4xx but a
    # 500 InternalServerError ("There is already a value at key" only appears in the PDS log).
    rkey = tid()
    create_post(client, account.did, "once", rkey=rkey)
    with pytest.raises(exceptions.RequestException) as info:
        create_post(client, account.did, "twice", rkey=rkey)
    assert info.value.response.status_code == 500
    assert get_post(client, account.did, rkey).value.text == "once"


def test_upload_blob_and_get_it_back(pds: PdsServer, client: Client, account: Account) -> None:
    png = tiny_png()
    blob = client.upload_blob(png).blob
    assert blob.mime_type == "image/png" and blob.size == len(png)
    # A blob is only kept (and served) once a record references it.
    embed = {
        "$type": "app.bsky.embed.images",
        "images": [
            {"alt": "", "image": blob.model_dump(by_alias=True, exclude_none=True),
             "aspectRatio": {"width": 2, "height": 2}}
        ],
    }  # fmt: skip
    create_post(client, account.did, "with an image", embed=embed)
    r = httpx.get(
        f"{pds.url}/xrpc/com.atproto.sync.getBlob", params={"did": account.did, "cid": blob.cid.encode()}
    )
    assert r.status_code == 200
    assert r.content == png
    assert r.headers["content-type"] == "image/png"
    assert client.com.atproto.sync.get_blob(
        models.ComAtprotoSyncGetBlob.Params(did=account.did, cid=blob.cid.encode())
    ) == png


def test_blob_upload_limit_gives_413(pds_factory) -> None:
    server = pds_factory(blob_upload_limit=1000)
    assert server.blob_upload_limit == 1000
    acct = server.create_account("blobs")
    c = login(server, acct)
    c.upload_blob(b"\x89PNG" + b"x" * 900)
    with pytest.raises(exceptions.NetworkError) as info:  # the SDK reports a 413 as NetworkError
        c.upload_blob(b"x" * 2000)
    assert info.value.response.status_code == 413
    assert info.value.response.content.error == "PayloadTooLarge"
    # close() ends the process and leaves no file behind
    pid, run_dir = server.pid, server.run_dir
    server.close()
    assert not run_dir.exists()
    assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text()


# --------------------------------------------------------------------------- logins and the request log


def test_create_session_counting(pds: PdsServer) -> None:
    """Three 'bridge processes' in a row: the first logs in and saves its session, the others reuse it."""
    acct = pds.create_account("sessions")
    mark = pds.mark()
    first = login(pds, acct)
    saved = first.export_session_string()
    create_post(first, acct.did, "run 1")
    for run in (2, 3):
        later = Client(base_url=pds.url)
        later.login(session_string=saved, fetch_bsky_profile=False)
        create_post(later, acct.did, f"run {run}")
        saved = later.export_session_string()
    assert pds.create_session_count(since=mark) == 1
    assert pds.count("com.atproto.repo.createRecord", since=mark) == 3
    # and three password logins are three createSession calls
    for _ in range(2):
        login(pds, acct)
    assert pds.create_session_count(since=mark) == 3


def test_request_log_has_statuses(pds: PdsServer) -> None:
    mark = pds.mark()
    httpx.get(f"{pds.url}/xrpc/com.atproto.repo.getRecord", params={"repo": "did:plc:nobody", "collection": POST, "rkey": "x"})
    httpx.get(f"{pds.url}/xrpc/_health")
    reqs = [r for r in pds.wait_idle() if r.id > mark]
    assert [(r.method, r.path, r.status) for r in reqs] == [
        ("GET", "/xrpc/com.atproto.repo.getRecord", 400),
        ("GET", "/xrpc/_health", 200),
    ]
    assert reqs[0].nsid == "com.atproto.repo.getRecord" and reqs[1].nsid == "_health"
    assert all(r.ms is not None and not r.aborted for r in reqs)


# --------------------------------------------------------------------------- rate limits


def test_rate_limit_headers_and_429(pds_ratelimited: PdsServer) -> None:
    server = pds_ratelimited
    acct = server.create_account("limits")
    r = httpx.post(
        f"{server.url}/xrpc/com.atproto.server.createSession",
        json={"identifier": acct.handle, "password": acct.app_password},
    )
    assert r.status_code == 200
    assert r.headers["ratelimit-limit"] == "30"  # createSession: 30 per 5 minutes per identifier
    assert r.headers["ratelimit-remaining"] == "29"
    assert r.headers["ratelimit-policy"] == "30;w=300"
    assert int(r.headers["ratelimit-reset"]) > time.time()

    # Use up the other 29, in parallel (each login costs ~0.35 s of password hashing).
    def attempt(_: int) -> int:
        return httpx.post(
            f"{server.url}/xrpc/com.atproto.server.createSession",
            json={"identifier": acct.handle, "password": "wrong password"},
            timeout=30,
        ).status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        codes = list(pool.map(attempt, range(29)))
    assert codes == [401] * 29
    c = Client(base_url=server.url)
    with pytest.raises(exceptions.RateLimitExceededError) as info:
        c.login(acct.handle, acct.app_password, fetch_bsky_profile=False)
    assert info.value.response.status_code == 429
    assert info.value.response.content.error == "RateLimitExceeded"
    assert info.value.reset_at is not None
    # other routes have their own (global per-IP) budget
    r = httpx.get(f"{server.url}/xrpc/com.atproto.server.describeServer")
    assert r.status_code == 200 and r.headers["ratelimit-policy"] == "3000;w=300"


def test_default_pds_has_no_rate_limits(pds: PdsServer) -> None:
    r = httpx.get(f"{pds.url}/xrpc/com.atproto.server.describeServer")
    assert not any(k.lower().startswith("ratelimit") for k in r.headers)


# --------------------------------------------------------------------------- stop / start


def test_stop_start_keeps_accounts_records_and_sessions(pds: PdsServer) -> None:
    acct = pds.create_account("restart")
    c = login(pds, acct)
    rkey = tid()
    create_post(c, acct.did, "before the outage", rkey=rkey)
    mark = pds.mark()
    t0 = time.monotonic()
    with pds.stopped():
        stop_s = time.monotonic() - t0
        assert not pds.running
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{pds.url}/xrpc/_health")
        with pytest.raises(exceptions.NetworkError):  # what the SDK raises while the PDS is down
            get_post(c, acct.did, rkey)
        assert httpx.get(f"{pds.plc_url}/{acct.did}").status_code == 200  # PLC stays up
        t1 = time.monotonic()
    start_s = time.monotonic() - t1
    assert pds.running
    # same client, same access token: still valid after the restart
    assert get_post(c, acct.did, rkey).value.text == "before the outage"
    create_post(c, acct.did, "after the outage")
    # a fresh password login works too, and nothing was lost
    c2 = login(pds, acct)
    listed = c2.com.atproto.repo.list_records(
        models.ComAtprotoRepoListRecords.Params(repo=acct.did, collection=POST)
    )
    assert sorted(r.value.text for r in listed.records) == ["after the outage", "before the outage"]
    assert pds.count("com.atproto.repo.getRecord", since=mark) == 1  # the failed one never arrived
    print(f"\n[pds] stop {stop_s * 1000:.0f} ms, start {start_s * 1000:.0f} ms")


def test_stop_and_start_are_idempotent(pds: PdsServer) -> None:
    pds.stop()
    pds.stop()
    pds.start()
    pds.start()
    assert httpx.get(f"{pds.url}/xrpc/_health").status_code == 200


# --------------------------------------------------------------------------- process hygiene


def test_node_exits_and_cleans_up_when_the_test_process_dies(tmp_path: Path) -> None:
    """If pytest is killed, node sees EOF on stdin, stops and removes its run dir."""
    script = textwrap.dedent(
        """
        import os, sys
        sys.path.insert(0, sys.argv[1])
        from tests.pds_fixture import PdsServer
        s = PdsServer()
        print(s.pid, s.run_dir, flush=True)
        os._exit(9)  # no cleanup at all, like SIGKILL
        """
    )
    repo = Path(__file__).resolve().parent.parent
    out = subprocess.run(
        [sys.executable, "-c", script, str(repo)], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 9, out.stderr
    pid_s, run_dir_s = out.stdout.split()
    pid, run_dir = int(pid_s), Path(run_dir_s)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and (Path(f"/proc/{pid}").exists() or run_dir.exists()):
        time.sleep(0.1)
    assert not run_dir.exists()
    assert not Path(f"/proc/{pid}").exists()


def test_skip_or_fail_when_not_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pds_fixture.shutil, "which", lambda name: None)
    assert pds_fixture.install_problem() == "node is not on PATH"
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="bash tests/install-pds.sh"):
        pds_fixture._require_installed()
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI is set"):
        pds_fixture._require_installed()


def test_a_server_that_does_not_start_fails_with_its_stderr(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    broken = tmp_path / "broken.mjs"
    broken.write_text("console.error('boom: cannot start'); process.exit(3)\n")
    monkeypatch.setattr(pds_fixture, "SERVER_SCRIPT", broken)
    monkeypatch.delenv("CI", raising=False)  # even outside CI: a failure, not a skip
    before = set(Path(tempfile.gettempdir()).glob("bridge-pds-run-*"))
    with pytest.raises(pytest.fail.Exception, match=r"(?s)exited \(code 3\).*boom: cannot start"):
        pds_fixture.start_pds()
    assert set(Path(tempfile.gettempdir()).glob("bridge-pds-run-*")) <= before  # nothing left behind


def test_install_is_up_to_date() -> None:
    assert pds_fixture.install_problem() is None


# --------------------------------------------------------------------------- numbers


def test_measurements(pds: PdsServer, client: Client, account: Account) -> None:
    times = []
    for i in range(30):
        t0 = time.perf_counter()
        create_post(client, account.did, f"latency {i}")
        times.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    login(pds, account)
    login_s = time.perf_counter() - t0
    rss = pds.rss_bytes()
    median = statistics.median(times)
    p90 = sorted(times)[int(len(times) * 0.9)]
    print(
        f"\n[pds] cold start {pds.startup_seconds:.2f} s (node's own: {pds.info['startup_ms']} ms), "
        f"createRecord median {median * 1000:.1f} ms p90 {p90 * 1000:.1f} ms, "
        f"createSession {login_s * 1000:.0f} ms, RSS {rss / 2**20:.0f} MiB"
    )
    assert pds.startup_seconds < 60
    assert median < 1.0
    assert rss < 1024 * 2**20
