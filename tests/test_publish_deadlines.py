"""Every call to a Mastodon or Bluesky server has one hard deadline: connecting, headers and body (issue 13, defect 3).

A server that takes the post and then sends its answer a byte a second would otherwise hold the delivery -- of
every account, since they go one after another -- as long as it liked: each byte comes well within the read
timeout. Real servers on loopback: the Mastodon fake behind a proxy that drips its answer (tests/dripproxy.py), a
small stand-in PDS for Bluesky (the point is the transport), and the tests' feed server for `bridge login`
and the session's kept-alive connections.
Deadlines are made short here (bridge.total_timeout); no test asserts how long anything took beyond "well before
the drip would have ended".
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from click.testing import CliRunner

from bridge.cli.login import login
from bridge.config import parse_config
from bridge.deadline import UPLOAD_BYTES_PER_SECOND
from bridge.delivery import Deliverer
from bridge.doctor import check_accounts
from bridge.errors import TransientPublishError
from bridge.ids import idempotency_key, new_tid
from bridge.model import Entry
from bridge.platforms.mastodon import login as login_module
from bridge.platforms.mastodon.deadline_session import DeadlineExceeded, deadline_session
from bridge.state import State
from bridge.wiring import make_target
from tests.bluesky_helpers import jpeg, media_of
from tests.dripproxy import DripProxy
from tests.feedserver import FeedServer
from tests.mastodon_fake import MastodonFake
from tests.test_bluesky_target import fake_jwt
from tests.test_pipeline import Clock

DEADLINE = 2.0  # seconds, for every request in these tests
DRIP_ENDS_AFTER = 60.0  # DripProxy's give_up_after: the answers it drips, a byte a second, are longer than that
SCOPES = ["write:statuses", "write:media", "read:accounts", "read:statuses"]


@pytest.fixture
def state(tmp_path):
    with State.open(tmp_path / "state.sqlite3") as opened:
        yield opened


def queue(state: State, accounts: dict[str, dict], *, now: float) -> dict[str, int]:
    """One new entry, queued for each account with its stored payload; {account: delivery id}."""
    link = "https://blog.example.com/posts/slow-servers"
    entry_id = state.add_entry("blog", Entry(key=link, link=link, title="Slow servers"), "new", "h", [], now)
    return {account: state.add_delivery(entry_id, account, idempotency_key=idempotency_key(account, "blog", link),
                                        rkey=new_tid(), now=now, payload=payload)
            for account, payload in accounts.items()}


def engine(config, state: State, clock: Clock) -> Deliverer:
    return Deliverer(config, state, clock=clock, target_factory=lambda name: make_target(config, state, name),
                     payload_builder=lambda row, target: pytest.fail("the payload was stored with the row"))


def timed(call):
    started = time.monotonic()
    result = call()
    return result, time.monotonic() - started


# --------------------------------------------------------------------------- Mastodon


def test_a_mastodon_server_dripping_its_answer_is_left_by_the_deadline_and_looked_at_first_next_time(
        state, monkeypatch):
    slow_server, other_server = MastodonFake(), MastodonFake()
    with slow_server, other_server, DripProxy(slow_server.url, drip_on="POST /api/v1/statuses") as proxy:
        monkeypatch.setenv("TOKEN_SLOW", slow_server.add_account("alice", SCOPES))
        monkeypatch.setenv("TOKEN_OTHER", other_server.add_account("bob", SCOPES))
        config = parse_config({
            "bridge": {"total_timeout": DEADLINE},
            "accounts": {
                "slow": {"type": "mastodon", "instance": proxy.url, "access_token": {"env": "TOKEN_SLOW"}},
                "other": {"type": "mastodon", "instance": other_server.url, "access_token": {"env": "TOKEN_OTHER"}},
            },
        })
        clock = Clock()
        text = "Slow servers\n\nhttps://blog.example.com/posts/slow-servers"
        payload = {"status": text, "spoiler_text": "", "visibility": "public", "language": "en", "media": []}
        rows = queue(state, {"slow": payload, "other": payload}, now=clock.now)
        deliverer = engine(config, state, clock)

        report, took = timed(deliverer.deliver_due)

        assert proxy.dripped == ["POST /api/v1/statuses HTTP/1.1"]
        assert took < DRIP_ENDS_AFTER  # the deadline ended the wait, not the drip
        slow = state.get_delivery(rows["slow"])
        assert slow.state == "pending" and slow.attempts == 1 and slow.first_sent_at is not None
        assert f"{proxy.url} did not answer in time while posting" in slow.last_error
        assert f"no complete answer within {DEADLINE:.0f} s (connecting, headers and body)" in slow.last_error
        # the server did make the status before its answer dripped; the other account posted in the same pass
        assert len(slow_server.statuses("alice")) == 1
        assert state.get_delivery(rows["other"]).state == "posted" and len(other_server.statuses("bob")) == 1
        assert [account.retried for account in report.accounts] == [1, 0]

        proxy.drip_on = None
        clock.now = slow.next_attempt_at + 1
        deliverer.deliver_due()  # the outcome was unknown: bridge looks before posting again, and finds it
        deliverer.close()

        slow = state.get_delivery(rows["slow"])
        [status] = slow_server.statuses("alice")
        assert slow.state == "posted" and slow.remote_id == status["id"]
        assert len(slow_server.requests("status_create")) == 1


def test_an_image_upload_gets_more_time_than_a_post_by_its_size(state, monkeypatch):
    """total_timeout plus a second for every 64 kB sent: a server taking a while over an image is waited for, the
    same wait over a post is not."""
    with MastodonFake() as server:
        monkeypatch.setenv("TOKEN_M", server.add_account("alice", SCOPES))
        config = parse_config({"bridge": {"total_timeout": 1.0}, "accounts": {
            "m": {"type": "mastodon", "instance": server.url, "access_token": {"env": "TOKEN_M"}}}})
        picture = media_of(jpeg(800, 600, noise=True, quality=95))
        assert len(picture.data) > 5 * UPLOAD_BYTES_PER_SECOND  # its upload may take 1 + 5 s and more
        target = make_target(config, state, "m", media_fetcher=lambda url: picture)
        text = "Slow servers\n\nhttps://blog.example.com/posts/slow-servers"
        post = {"status": text, "spoiler_text": "", "visibility": "public", "language": "en",
                "media": [{"url": "https://blog.example.com/picture.jpg", "description": "noise"}]}
        rows = queue(state, {"m": post}, now=time.time())
        target.render_limits()  # read before the server slows down

        server.inject("POST /api/v2/media", "slow", seconds=2.5)
        target.publish(state.get_delivery(rows["m"]), post)
        [status] = server.statuses("alice")
        assert [media["description"] for media in status["media_attachments"]] == ["noise"]

        server.inject("POST /api/v1/statuses", "slow", seconds=2.5)
        with pytest.raises(TransientPublishError, match="did not answer in time while posting"):
            target.publish(state.get_delivery(rows["m"]), {**post, "media": []})
        target.close()


def test_a_kept_alive_connection_is_under_the_deadline_too():
    """Mastodon.py keeps its connection open between calls: a request on it is bounded like one that connects."""
    with FeedServer() as server, DripProxy(server.base_url, drip_on="/slow") as proxy:
        server.route("/fast", "fine")
        server.route("/slow", "never seen")
        session = deadline_session(DEADLINE)
        assert session.get(proxy.url + "/fast", timeout=(10, 10)).text == "fine"
        with pytest.raises(DeadlineExceeded, match=r"/slow: no complete answer within 2 s"):
            timed(lambda: session.get(proxy.url + "/slow", timeout=(10, 10)))
        assert proxy.connections == 1 and proxy.dripped == ["GET /slow HTTP/1.1"]
        assert session.get(proxy.url + "/fast", timeout=(10, 10)).text == "fine"  # a new connection, and on


# --------------------------------------------------------------------------- Bluesky


class StandInPds:
    """Just enough of a PDS for one post: createSession, createRecord (kept by rkey), getRecord. No didDoc in the
    session, so the SDK stays on this server."""

    DID = "did:plc:standin"

    def __init__(self) -> None:
        self.records: dict[str, dict] = {}
        self.creates = 0
        pds = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                rkey = self.path.split("rkey=")[-1]
                if "getRecord" in self.path and rkey in pds.records:
                    self._answer(200, {"uri": pds.uri(rkey), "cid": "bafy", "value": pds.records[rkey]})
                else:
                    self._answer(400, {"error": "RecordNotFound", "message": "Could not locate record"})

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["content-length"])) or b"{}")
                if "createSession" in self.path:
                    exp = int(time.time()) + 3600
                    self._answer(200, {"accessJwt": fake_jwt(exp), "refreshJwt": fake_jwt(exp + 3600),
                                       "handle": "slow.test", "did": pds.DID, "active": True})
                elif "createRecord" in self.path:
                    pds.creates += 1
                    pds.records[body["rkey"]] = body["record"]
                    self._answer(200, {"uri": pds.uri(body["rkey"]), "cid": "bafy"})
                else:
                    self._answer(404, {"error": "MethodNotImplemented"})

            def _answer(self, status: int, data: dict) -> None:
                payload = json.dumps(data).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def uri(self, rkey: str) -> str:
        return f"at://{self.DID}/app.bsky.feed.post/{rkey}"

    def __enter__(self) -> "StandInPds":
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_a_pds_dripping_its_answer_to_create_record_is_left_by_the_deadline_and_looked_at_first(state, monkeypatch):
    other_server = MastodonFake()
    # createRecord's answer drips, and so does getRecord's, which the target asks at once when an answer is lost
    with StandInPds() as pds, other_server, DripProxy(pds.url, drip_on="/xrpc/com.atproto.repo.") as proxy:
        monkeypatch.setenv("PASSWORD_SLOW", "abcd-efgh-ijkl-mnop")
        monkeypatch.setenv("TOKEN_OTHER", other_server.add_account("bob", SCOPES))
        config = parse_config({
            "bridge": {"total_timeout": DEADLINE},
            "accounts": {
                "slow": {"type": "bluesky", "handle": "slow.test", "service": proxy.url,
                         "app_password": {"env": "PASSWORD_SLOW"}},
                "other": {"type": "mastodon", "instance": other_server.url, "access_token": {"env": "TOKEN_OTHER"}},
            },
        })
        clock = Clock()
        record = {"$type": "app.bsky.feed.post", "text": "Slow servers", "langs": ["en"],
                  "createdAt": "2026-12-05T00:00:00.000Z"}
        masto = {"status": "Slow servers\n\nhttps://blog.example.com/posts/slow-servers", "spoiler_text": "",
                 "visibility": "public", "language": "en", "media": []}
        rows = queue(state, {"slow": {"record": record}, "other": masto}, now=clock.now)
        deliverer = engine(config, state, clock)

        _, took = timed(deliverer.deliver_due)

        assert [line.split("?")[0] for line in proxy.dripped] == ["POST /xrpc/com.atproto.repo.createRecord HTTP/1.1",
                                                                  "GET /xrpc/com.atproto.repo.getRecord"]
        assert took < DRIP_ENDS_AFTER
        slow = state.get_delivery(rows["slow"])
        assert slow.state == "pending" and slow.attempts == 1
        assert f"{proxy.url} did not answer in time while posting" in slow.last_error
        assert f"no complete answer within {DEADLINE:.0f} s" in slow.last_error
        assert pds.creates == 1
        assert state.get_delivery(rows["other"]).state == "posted" and len(other_server.statuses("bob")) == 1

        proxy.drip_on = None
        clock.now = slow.next_attempt_at + 1
        deliverer.deliver_due()  # getRecord on the delivery's rkey first: the post is there
        deliverer.close()

        slow = state.get_delivery(rows["slow"])
        assert slow.state == "posted" and slow.remote_id == pds.uri(slow.rkey)
        assert pds.creates == 1


# --------------------------------------------------------------------------- bridge doctor


def test_doctor_reports_a_server_dripping_its_answer_and_checks_the_next_account(monkeypatch, tmp_path):
    slow_server, other_server = MastodonFake(), MastodonFake()
    with slow_server, other_server, DripProxy(slow_server.url, drip_on="/api/v2/instance") as proxy:
        monkeypatch.setenv("TOKEN_SLOW", slow_server.add_account("alice", SCOPES))
        monkeypatch.setenv("TOKEN_OTHER", other_server.add_account("bob", SCOPES))
        config = parse_config({
            "bridge": {"total_timeout": DEADLINE, "state": str(tmp_path / "state.sqlite3")},
            "accounts": {
                "slow": {"type": "mastodon", "instance": proxy.url, "access_token": {"env": "TOKEN_SLOW"}},
                "other": {"type": "mastodon", "instance": other_server.url, "access_token": {"env": "TOKEN_OTHER"}},
            },
        })
        checks, took = timed(lambda: check_accounts(config))
    assert proxy.dripped == ["GET /api/v2/instance HTTP/1.1"]
    assert took < DRIP_ENDS_AFTER
    slow = next(check for check in checks if check.name == "account slow (mastodon)")
    # doctor's own words (bridge/explain.py): which kind of failure, and the settings that bound the wait
    assert not slow.ok and slow.detail.startswith("127.0.0.1 did not answer in time")
    assert slow.fix.startswith(f"open {proxy.url} in a browser") and "read_timeout or total_timeout" in slow.fix
    assert next(check for check in checks if check.name == "account other (mastodon)").ok


# --------------------------------------------------------------------------- bridge login


@pytest.mark.parametrize("through_proxy", [False, True], ids=["direct", "through the environment's HTTP_PROXY"])
def test_login_gives_up_on_a_server_dripping_its_answer_with_a_readable_error(monkeypatch, tmp_path, through_proxy):
    monkeypatch.setattr(login_module, "TOTAL_TIMEOUT", DEADLINE)
    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    with FeedServer() as server, DripProxy(server.base_url, drip_on="/api/v2/instance") as proxy:
        server.route("/api/v2/instance", json.dumps({"version": "4.5.1"}), content_type="application/json")
        direct = server.base_url
        instance = proxy.url
        if through_proxy:  # the proxy passes the request on as it came, and the server answers it all the same
            monkeypatch.setenv("HTTP_PROXY", proxy.url)
            instance = direct
        result, took = timed(lambda: CliRunner().invoke(
            login, ["mastodon", "--instance", instance, "--write-token", str(tmp_path / "token")],
            input="never read\n"))
    assert proxy.dripped == [f"GET {direct if through_proxy else ''}/api/v2/instance HTTP/1.1"]
    assert took < DRIP_ENDS_AFTER
    assert result.exit_code == 1
    assert ("while asking which server it is: no complete answer within 2 s (connecting, headers and body)"
            in result.output)
    assert not (tmp_path / "token").exists()
