"""The real-Takahē fixture itself (tests/takahe_fixture.py): it is Takahē, on loopback, its accounts and tokens work,
its helpers show what the server holds, and it leaves nothing behind."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx
import pytest

from tests import takahe_fixture
from tests.takahe_fixture import TakaheServer

ROOT = Path(__file__).resolve().parent.parent


def post(server: TakaheServer, token: str, text: str) -> httpx.Response:
    return httpx.post(f"{server.url}/api/v1/statuses", data={"status": text},
                      headers={"Authorization": f"Bearer {token}"}, timeout=30)


def test_it_is_takahe_on_loopback(takahe: TakaheServer) -> None:
    assert takahe.url.startswith("http://127.0.0.1:")
    instance = takahe.instance()
    assert instance["version"].startswith("takahe/")
    assert instance["configuration"]["statuses"]["max_characters"] == 500


def test_a_token_has_exactly_its_scopes(takahe: TakaheServer) -> None:
    account = takahe.new_identity("scopes")
    writer = account.token(["write:statuses"])
    made = post(takahe, writer, "scoped")
    assert made.status_code == 200, made.text
    assert made.json()["account"]["username"] == "scopes"
    mine = httpx.get(f"{takahe.url}/api/v1/accounts/verify_credentials",
                     headers={"Authorization": f"Bearer {writer}"}, timeout=30)
    assert mine.status_code == 403  # no read scope
    assert [s["id"] for s in account.statuses()] == [made.json()["id"]]


def test_statuses_are_the_identitys_own_newest_first_across_pages(takahe: TakaheServer) -> None:
    account, other = takahe.new_identity("pages"), takahe.new_identity("neighbour")
    token = account.token(["write:statuses"])
    made = [post(takahe, token, f"status {n}").json()["id"] for n in range(45)]  # the API pages by 40
    assert post(takahe, other.token(["write"]), "not yours").status_code == 200
    assert [s["id"] for s in account.statuses()] == made[::-1]
    assert [s["account"]["username"] for s in other.statuses()] == ["neighbour"]


def test_set_post_length_is_what_the_server_enforces(takahe: TakaheServer) -> None:
    token = takahe.new_identity("limits").token(["write:statuses"])
    try:
        takahe.set_post_length(300)
        assert takahe.instance()["configuration"]["statuses"]["max_characters"] == 300
        assert post(takahe, token, "x" * 301).status_code == 400
        assert post(takahe, token, "x" * 300).status_code == 200
    finally:
        takahe.set_post_length(500)


def test_the_access_log_shows_each_request(takahe: TakaheServer) -> None:
    before = len(takahe.requests())
    httpx.get(f"{takahe.url}/api/v1/instance/", timeout=30)
    deadline = time.monotonic() + 5
    while len(takahe.requests()) == before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert takahe.requests()[before:] == [("GET", "/api/v1/instance/", 404)]


def test_not_installed_fails_with_what_to_run(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(takahe_fixture, "install_dir", lambda: tmp_path / "nowhere")
    monkeypatch.delenv("CI", raising=False)  # outside CI too: a failure, never a skip
    assert "no install stamp" in takahe_fixture.install_problem()
    with pytest.raises(pytest.fail.Exception, match="bash tests/install-takahe.sh"):
        takahe_fixture.start_takahe()


def running(pid: str) -> bool:
    """Alive, not a zombie (an exited child of an init that does not reap stays in /proc)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_every_process_stops_when_the_test_process_dies() -> None:
    script = textwrap.dedent(
        """
        import os, sys
        sys.path.insert(0, sys.argv[1])
        from tests.takahe_fixture import TakaheServer
        s = TakaheServer()
        print(s.run_dir, *[p.proc.pid for p in s._processes], flush=True)
        os._exit(9)  # no cleanup at all, like SIGKILL
        """
    )
    out = subprocess.run([sys.executable, "-c", script, str(ROOT)], capture_output=True, text=True, timeout=300)
    assert out.returncode == 9, out.stderr
    run_dir, *pids = out.stdout.split()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and any(running(pid) for pid in pids):
        time.sleep(0.1)
    assert not [pid for pid in pids if running(pid)]
    takahe_fixture._remove_stale_run_dirs()  # what the next session does first
    assert not Path(run_dir).exists()
