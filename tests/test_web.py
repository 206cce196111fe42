"""The daemon's HTTP server: who may read it (address checks, the token), its config errors, its router, and
/healthz of a real `bridge run` whose workers are all stuck. Tests only ever contact 127.0.0.1."""

from __future__ import annotations

import base64
import subprocess
import sys
from email.message import Message

import pytest

from bridge.config import Secret, parse_config
from bridge.errors import ConfigError
from bridge.web.access import Access, is_loopback, parse_listen, presented_token, resolve_access
from bridge.web.metrics import DaemonMetrics
from bridge.web.pages import DaemonView, Health, ago, problems, safe_url, status_page
from bridge.web.server import Request, Response, Router, WebServer
from tests.test_daemon import ROOT, wait_for
from tests.test_pipeline import posts, rss
from tests.web_helpers import fetch, metric_samples, start_daemon

TOKEN = "a-long-random-token-for-the-page-1234"


@pytest.mark.parametrize("host, loopback", [
    ("127.0.0.1", True), ("127.8.9.10", True), ("::1", True), ("::ffff:127.0.0.1", True), ("localhost", True),
    ("0.0.0.0", False), ("::", False), ("192.168.1.20", False), ("10.0.0.1", False), ("::ffff:10.0.0.1", False),
    ("fe80::1%eth0", False), ("2001:db8::1", False), ("example.org", False), ("", False),
])
def test_is_loopback(host, loopback):
    assert is_loopback(host) is loopback


@pytest.mark.parametrize("value, parsed", [
    ("127.0.0.1:8787", ("127.0.0.1", 8787)), ("[::1]:8787", ("::1", 8787)), ("localhost:0", ("localhost", 0)),
    ("0.0.0.0:80", ("0.0.0.0", 80)),
])
def test_parse_listen(value, parsed):
    assert parse_listen(value) == parsed


@pytest.mark.parametrize("value, complaint", [
    ("8787", "not HOST:PORT"), ("status.example.org:8787", "not an IP address"), ("127.0.0.1:http", "port number"),
    ("127.0.0.1:70000", "port number"), (":8787", "not HOST:PORT"),
])
def test_a_bad_listen_address_is_a_config_error_with_the_fix(value, complaint):
    with pytest.raises(ConfigError) as info:
        parse_config({"bridge": {"http_listen": value}})
    assert info.value.key == "bridge.http_listen" and complaint in info.value.problem
    assert "127.0.0.1:8787" in info.value.fix


def _basic(password: str, user: str = "me") -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_presented_token_reads_bearer_and_basic_and_nothing_else():
    assert presented_token(f"Bearer {TOKEN}") == TOKEN
    assert presented_token(_basic(TOKEN)) == TOKEN
    assert presented_token(_basic(TOKEN, user="")) == TOKEN
    for header in (None, "", "Bearer", "Basic !!!", _basic(""), f"Token {TOKEN}", "Basic " + base64.b64encode(b"nocolon").decode()):
        assert presented_token(header) is None


def test_without_a_token_only_loopback_listening_serves_loopback_peers():
    access = Access("127.0.0.1", 8787, None)
    assert access.allows("127.0.0.1", None) and access.allows("::1", None)
    assert not access.allows("192.168.1.5", None)  # a peer from elsewhere: refused, whatever the route
    assert not Access("0.0.0.0", 8787, None).allows("127.0.0.1", None)  # never served unguarded beyond loopback


def test_with_a_token_every_request_needs_it_even_from_loopback():
    access = Access("0.0.0.0", 8787, Secret(TOKEN))
    assert access.allows("203.0.113.9", f"Bearer {TOKEN}") and access.allows("10.1.1.1", _basic(TOKEN))
    assert not access.allows("203.0.113.9", None)
    assert not access.allows("127.0.0.1", None)  # behind a reverse proxy every request comes from loopback
    assert not access.allows("203.0.113.9", f"Bearer {TOKEN}x")
    assert not access.allows("203.0.113.9", _basic(TOKEN[:-1]))


def test_listening_beyond_loopback_without_a_token_is_refused_and_says_how(monkeypatch):
    config = parse_config({"bridge": {"http_listen": "0.0.0.0:8787"}})
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    with pytest.raises(ConfigError) as info:
        resolve_access(config)
    assert info.value.key == "bridge.http_listen" and "http_token" in info.value.fix
    assert resolve_access(parse_config({"bridge": {"http_listen": "127.0.0.1:8787"}})).token is None
    assert resolve_access(parse_config({})) is None


def test_the_token_comes_from_the_environment_a_file_or_a_systemd_credential(tmp_path, monkeypatch):
    monkeypatch.setenv("BRIDGE_TEST_HTTP_TOKEN", TOKEN)
    listen = {"http_listen": "0.0.0.0:8787"}
    access = resolve_access(parse_config({"bridge": {**listen, "http_token": {"env": "BRIDGE_TEST_HTTP_TOKEN"}}}))
    assert access.token.reveal() == TOKEN and TOKEN not in repr(access)
    (tmp_path / "token").write_text(TOKEN + "\n")
    access = resolve_access(parse_config({"bridge": {**listen, "http_token": {"file": str(tmp_path / "token")}}}))
    assert access.token.reveal() == TOKEN
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    (credentials / "http_token").write_text(TOKEN)
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(credentials))
    assert resolve_access(parse_config({"bridge": listen})).token.reveal() == TOKEN
    monkeypatch.delenv("BRIDGE_TEST_HTTP_TOKEN")
    with pytest.raises(ConfigError, match="BRIDGE_TEST_HTTP_TOKEN"):
        resolve_access(parse_config({"bridge": {**listen, "http_token": {"env": "BRIDGE_TEST_HTTP_TOKEN"}}}))


def test_check_config_and_run_refuse_an_unguarded_server_beyond_loopback(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text(f'[bridge]\nstate = "{tmp_path}/state.sqlite3"\nhttp_listen = "0.0.0.0:0"\n')
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    for command in ("check-config", "run"):
        result = subprocess.run([sys.executable, "-m", "bridge", "--config", str(config), command], cwd=ROOT,
                                capture_output=True, text=True, timeout=60, env=env)
        assert result.returncode == 2, result.stderr
        assert "bridge.http_listen" in result.stderr and "http_token" in result.stderr
        assert "Traceback" not in result.stderr
    assert not (tmp_path / "state.sqlite3").exists()  # refused before anything ran


def test_a_daemon_on_every_interface_serves_only_with_the_token(tmp_path, feed_server):
    feed_server.route("/feed", rss(posts(1)))
    config = tmp_path / "config.toml"
    config.write_text(f'[bridge]\nstate = "{tmp_path}/state.sqlite3"\ninterval = "1s"\nallow_private_addresses = true\n'
                      f'http_listen = "0.0.0.0:0"\nhttp_token = {{ env = "BRIDGE_TEST_HTTP_TOKEN" }}\n'
                      f'[[feeds]]\nname = "blog"\nurl = "{feed_server.url("/feed")}"\n')
    daemon = start_daemon(config, tmp_path / "daemon.log", {"BRIDGE_TEST_HTTP_TOKEN": TOKEN})
    try:
        url = daemon.url.replace("0.0.0.0", "127.0.0.1")  # only loopback is ever contacted
        for path in ("", "metrics", "healthz", "static/status.css", "nowhere"):
            refused = fetch(url + path)
            assert refused.status == 401, path
            assert refused.headers["WWW-Authenticate"] == 'Basic realm="bridge", charset="UTF-8"'
            assert fetch(url + path, {"Authorization": "Bearer wrong-token"}).status == 401
        page = fetch(url, {"Authorization": f"Bearer {TOKEN}"})
        assert page.status == 200 and "blog" in page.body and TOKEN not in page.body
        assert fetch(url + "metrics", {"Authorization": _basic(TOKEN)}).status == 200
        assert fetch(url + "healthz?token=" + TOKEN).status == 401  # never in the URL
    finally:
        code, log = daemon.stop()
    assert code == 0, log
    assert TOKEN not in log


def test_healthz_turns_503_with_the_reason_when_every_worker_is_stuck_and_200_again_after(tmp_path, feed_server):
    # Four feeds whose server stays silent: the daemon's four workers wait on them, and the heartbeat job, which
    # goes through the same workers, cannot run. WATCHDOG_USEC=2 s makes the stall show after 7 s.
    for name in "abcd":
        feed_server.route(f"/{name}", rss(posts(1)))
    lines = [f'[bridge]\nstate = "{tmp_path}/state.sqlite3"\ninterval = "1s"\nallow_private_addresses = true\n'
             f'read_timeout = "60s"\ntotal_timeout = "60s"\nhttp_listen = "127.0.0.1:0"\n']
    lines += [f'[[feeds]]\nname = "{name}"\nurl = "{feed_server.url("/" + name)}"\n' for name in "abcd"]
    config = tmp_path / "config.toml"
    config.write_text("".join(lines))
    daemon = start_daemon(config, tmp_path / "daemon.log", {"WATCHDOG_USEC": "2000000"})
    try:
        assert wait_for(lambda: fetch(daemon.url + "healthz").status == 200, what="a healthy start")
        for name in "abcd":
            feed_server.route(f"/{name}", rss(posts(1)), delay=25)
        stalled = wait_for(lambda: (answer := fetch(daemon.url + "healthz")).status == 503 and answer, timeout=40,
                           what="/healthz to see the stall")
        assert stalled.body.startswith("stalled: no job has run for ")
        for name in "abcd":
            feed_server.route(f"/{name}", rss(posts(1)))
        assert wait_for(lambda: fetch(daemon.url + "healthz").status == 200, timeout=60, what="recovery")
    finally:
        code, log = daemon.stop()
    assert code == 0, log


def _serve(router: Router) -> WebServer:
    return WebServer(Access("127.0.0.1", 0, None), router).start()


def test_other_features_add_routes_and_a_failing_handler_fails_alone():
    router = Router()
    router.add("/hello", lambda request: Response.text(f"hello {request.query.get('name', ['?'])[0]}\n"))
    router.add("/websub/", lambda request: Response.text(f"{request.method} {request.path} {len(request.body)}\n"),
               methods=("GET", "POST"), prefix=True, public=True)
    router.add("/boom", lambda request: 1 / 0)
    server = _serve(router)
    try:
        assert fetch(server.url + "hello?name=you").body == "hello you\n"
        assert fetch(server.url + "websub/abc").body == "GET /websub/abc 0\n"
        assert fetch(server.url + "hello", method="POST").status == 405
        broken = fetch(server.url + "boom")
        assert broken.status == 500 and "ZeroDivisionError" not in broken.body
        assert fetch(server.url + "hello").status == 200  # the server goes on
    finally:
        server.close()


def test_routes_need_the_token_unless_public():
    server = WebServer(Access("127.0.0.1", 0, Secret(TOKEN)), Router())
    server.router.add("/private", lambda request: Response.text("private\n"))
    server.router.add("/callback", lambda request: Response.text("public\n"), public=True)
    request = Request("GET", "/private", {}, Message(), "127.0.0.1")
    assert server.answer(request).status == 401
    assert server.answer(Request("GET", "/callback", {}, Message(), "127.0.0.1")).status == 200
    request.headers["Authorization"] = f"Bearer {TOKEN}"
    assert server.answer(request).status == 200
    server.close()


def test_only_http_links_and_readable_times():
    assert safe_url("https://example.org/a") == "https://example.org/a"
    for url in ("javascript:alert(1)", "JAVASCRIPT:alert(1)", "data:text/html,x", "//example.org", None, "", "http://[::1"):
        assert safe_url(url) is None
    assert ago("2026-01-01T00:00:00Z", 1767225600 + 180) == "3 min ago"
    assert ago("2026-01-01T02:00:00Z", 1767225600) == "in 2 h"
    assert ago("now", 0) == "now" and ago(None, 0) == "never"


def test_problems_put_what_needs_the_writer_first_with_fixes():
    report = {"feeds": [{"name": "f", "polling_url": "u", "gone": True, "error": "HTTP 410", "fix": "set its url",
                         "consecutive_errors": 1, "warning": None},
                        {"name": "g", "error": "cannot report on it: KeyError"}],
              "accounts": [{"name": "a", "type": "mastodon", "paused": None, "unknown": 0, "unknown_fix": None,
                            "failures": [{"link": "https://b.example/1", "entry": "k", "reason": "HTTP 422"}],
                            "failures_fix": "fix the cause given, then `bridge retry --account a`"},
                           {"name": "b", "type": "mastodon", "paused": "refused — create a new access token",
                            "unknown": 0, "unknown_fix": None, "failures": [], "failures_fix": None}]}
    found = problems(report)
    assert [problem.title for problem in found] == ["Account b is paused; its posts wait", "Feed f is gone",
                                                     "Feed g: cannot report on it", "Account a: a post failed"]
    assert "create a new access token" in found[0].detail and found[1].fix == "set its url"
    assert found[3].detail == "https://b.example/1: HTTP 422" and "bridge retry --account a" in found[3].fix


class _ReportView(DaemonView):
    def __init__(self, report: dict) -> None:
        super().__init__(config=lambda: parse_config({}), health=lambda: Health(False, "no job has run for 99 s"),
                         metrics=DaemonMetrics(0.0), clock=lambda: 1767225600.0)
        self.report = report

    def status(self) -> dict:
        return self.report


def test_the_page_shows_a_report_that_failed_and_a_stall():
    report = {"state": "/s", "recent_posts": [],
              "feeds": [{"name": "f", "error": "cannot report on it: KeyError: '<b>x</b>'"}],
              "accounts": [{"name": "a", "error": "cannot report on it: ValueError: boom"}]}
    page = status_page(_ReportView(report)).body.decode()
    assert "Stalled" in page and "no job has run for 99 s" in page
    assert "cannot report on it: KeyError: &#39;&lt;b&gt;x&lt;/b&gt;&#39;" in page and "<b>x</b>" not in page
    assert page.count("cannot report on it: ValueError: boom") == 2  # in "needs you" and on the card


def test_an_unreadable_state_is_a_503_page_with_the_fix(tmp_path):
    (tmp_path / "state").mkdir()  # a directory where the database should be
    view = DaemonView(config=lambda: parse_config({"bridge": {"state": str(tmp_path / "state")}}),
                      health=lambda: Health(True, "polling on schedule"), metrics=DaemonMetrics(0.0))
    answer = status_page(view)
    assert answer.status == 503 and "is a directory" in answer.body.decode()


def test_metrics_count_a_pause_or_a_rate_limit_once_and_latency_from_first_sight():
    from bridge import ids
    from bridge.delivery import AccountReport, DeliveryReport
    from bridge.model import Entry
    from bridge.state import State

    config = parse_config({"accounts": {"m": {"type": "mastodon", "instance": "https://m.example"},
                                        "b": {"type": "bluesky", "handle": "me.example"}}})
    metrics = DaemonMetrics(now=1000.0)
    with State.open_memory() as state:
        state.ensure_feed("blog", "https://b.example/feed")
        for number, (seen, posted) in enumerate([(1000.0, 1030.0), (1001.0, 1400.0)]):
            entry_id = state.add_entry("blog", Entry(key=f"k{number}", link=f"https://b.example/{number}", title="t"),
                                       "new", "h", [], seen)
            delivery = state.add_delivery(entry_id, "m", idempotency_key=ids.idempotency_key("m", "blog", f"k{number}"),
                                          rkey=None, now=seen)
            state.mark_posted(delivery, f"id{number}", f"https://m.example/@me/{number}", posted)
        waiting = DeliveryReport([AccountReport("m", posted=["u0", "u1"]), AccountReport("b", deferred_until=1600.0)])
        metrics.observe_delivery(waiting, config, state, now=1500.0)
        still = DeliveryReport([AccountReport("b", deferred_until=1600.0, paused="refused")])
        metrics.observe_delivery(still, config, state, now=1510.0)
        metrics.observe_delivery(still, config, state, now=1520.0)
        samples = metric_samples(metrics.render({"feeds": [], "accounts": []}).decode())
    assert samples[("bridge_posts_total", (("account", "m"), ("outcome", "posted"), ("platform", "mastodon")))] == 2
    assert samples[("bridge_posts_total", (("account", "b"), ("outcome", "paused"), ("platform", "bluesky")))] == 1
    assert samples[("bridge_rate_limit_waits_total", (("account", "b"), ("platform", "bluesky")))] == 1
    assert samples[("bridge_rate_limit_wait_seconds_total", (("account", "b"), ("platform", "bluesky")))] == 100
    # 30 s and 399 s from first sight, each observed once although three passes looked
    assert samples[("bridge_delivery_latency_seconds_count", (("platform", "mastodon"),))] == 2
    assert samples[("bridge_delivery_latency_seconds_sum", (("platform", "mastodon"),))] == 429
    assert samples[("bridge_delivery_latency_seconds_bucket", (("le", "60.0"), ("platform", "mastodon")))] == 1
