"""Alerts and the dead-man's switch, delivered to real local receivers (tests/alert_receivers.py): an SMTP server
that wants a password and an HTTP endpoint, through real `bridge poll` processes and the in-process daemon."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from bridge.daemon import Daemon
from bridge.state import State
from bridge.wiring import build_deliverer
from tests.alert_receivers import HttpReceiver, SmtpReceiver, http_receiver, smtp_receiver  # noqa: F401 (fixtures)
from tests.mastodon_fake import MastodonFake
from tests.test_daemon import feed_polled, start_daemon, stop, wait_for
from tests.test_pipeline import posts, rss
from tests.test_secrets import _bridge as bridge

MAIL_PASSWORD = "mail-Pa55word-for-alerts"  # the smtp_receiver fixture's
# The SMTP receiver asks for a password without TLS on purpose: it listens on loopback only.
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")


def write_config(tmp_path: Path, feeds: dict[str, str], *, alerts: str, accounts: str = "", feed_accounts: str = "[]",
                 interval: str = "1s") -> Path:
    lines = [f'[bridge]\nstate = "{tmp_path}/state.sqlite3"\ninterval = "{interval}"\ndelivery_interval = "1s"\n'
             f'allow_private_addresses = true\nretry_delay = "1s"\n', f"[alerts]\n{alerts}\n", accounts]
    for name, url in feeds.items():
        lines.append(f'[[feeds]]\nname = "{name}"\nurl = "{url}"\naccounts = {feed_accounts}\n')
    path = tmp_path / "config.toml"
    path.write_text("\n".join(lines))
    return path


def poll_now(config: Path, *feeds: str, env: dict | None = None):
    """`bridge poll` of these feeds, due or not (a feed polled a second ago is not due yet)."""
    return bridge(config, "poll", *(arg for feed in feeds for arg in ("--feed", feed)), env=env or {})


def alert_bodies(web: HttpReceiver, path: str = "/hook") -> list[str]:
    return [f"{item.json()['title']}\n{item.json()['message']}" for item in web.posts(path)]


def assert_no_secret(secrets: list[str], *texts: str) -> None:
    for text in texts:
        for secret in secrets:
            assert secret not in text


def test_a_revoked_token_is_told_once_by_mail_and_webhook_then_its_recovery_once(tmp_path, feed_server, http_receiver,
                                                                                    smtp_receiver):
    web, mail = http_receiver, smtp_receiver
    with MastodonFake() as fake:
        token = fake.add_account("writer")
        feed_server.route("/feed", rss(posts(1)))
        accounts = (f'[accounts.masto]\ntype = "mastodon"\ninstance = "{fake.url}"\n'
                    f'access_token = {{ env = "T_MASTO" }}\nposts_per_hour = 1000000\n')
        config = write_config(tmp_path, {"blog": feed_server.url("/feed")}, accounts=accounts, feed_accounts='["masto"]',
                              alerts=f'destinations = ["{web.url("/hook", "json")}", {{ env = "ALERT_MAIL" }}]')
        env = {"T_MASTO": token, "ALERT_MAIL": mail.mailto_url()}
        outputs = [bridge(config, "poll", env=env)]  # the baseline: nothing to tell
        assert outputs[0].returncode == 0, outputs[0].stderr
        assert not web.posts() and not mail.messages

        fake.revoke(token)
        feed_server.route("/feed", rss(posts(2)))
        for _ in range(3):  # refused on every pass; told once
            outputs.append(bridge(config, "poll", "--feed", "blog", env=env))
        assert "paused" in outputs[1].stderr
        told = alert_bodies(web)
        assert len(told) == 1 and len(mail.messages) == 1
        assert "account masto is paused" in told[0] and "1 problem needs you" in told[0]
        assert "access token" in told[0]  # the pause reason carries the fix bridge status shows
        assert "account masto is paused" in mail.bodies()[0]

        new_token = fake.add_token("writer")
        env["T_MASTO"] = new_token  # a new credential: bridge tries the account again at once
        for _ in range(2):
            outputs.append(bridge(config, "poll", env=env))
        assert len(fake.statuses("writer")) == 1
        told = alert_bodies(web)
        assert len(told) == 2 and len(mail.messages) == 2
        assert "1 cleared" in told[1] and "cleared: account masto is paused" in told[1]
        status = bridge(config, "status", "--json", env=env)
    secrets = [token, new_token, MAIL_PASSWORD]
    assert_no_secret(secrets, *told, *mail.bodies(), status.stdout, status.stderr,
                     *(output.stderr + output.stdout for output in outputs))
    assert all(mail.logins)  # the password from the environment was used, and is in no text above


def test_a_feed_failing_past_the_threshold_is_told_once_and_a_gone_feed_at_once(tmp_path, feed_server, http_receiver):
    feed_server.route("/retired", rss(posts(1)))
    config = write_config(tmp_path, {"blog": feed_server.url("/feed"), "old": feed_server.url("/retired")},
                          alerts=f'destinations = ["{http_receiver.url("/hook", "json")}"]\nfeed_failing_after = "3s"')
    # Only `old` is read first: `blog` fails from its first poll on, so its failure is dated by that poll and not by
    # a baseline read whose distance from it would depend on how busy the machine is.
    assert bridge(config, "poll", "--feed", "old", env={}).returncode == 0
    feed_server.error("/feed", 500)
    feed_server.gone("/retired")
    first = poll_now(config, "blog", "old")
    assert first.returncode == 1
    told = alert_bodies(http_receiver)
    assert len(told) == 1 and "feed old is gone" in told[0] and "HTTP 410" in told[0]
    assert "feed blog" not in told[0]  # failing for less than feed_failing_after: not yet a problem
    time.sleep(3.2)
    for _ in range(3):
        bridge(config, "poll", "--feed", "blog", env={})
    told = alert_bodies(http_receiver)
    assert len(told) == 2, told
    assert "feed blog has not been read for more than 3s" in told[1] and "HTTP 500" in told[1]
    assert "check the URL in a browser" in told[1]  # the fix doctor gives
    feed_server.route("/feed", rss(posts(1)))
    poll_now(config, "blog")
    assert len(alert_bodies(http_receiver)) == 2  # a recovery is told once the next check confirms it
    poll_now(config, "blog")
    told = alert_bodies(http_receiver)
    assert len(told) == 3 and "cleared: feed blog" in told[2] and "feed old" not in told[2]


def test_the_dead_mans_switch_sees_start_and_success_then_fail_with_the_reason(tmp_path, feed_server, http_receiver):
    ping = "/ping/5f0a3c6e-1b7d-4b8e-9d1a-2c3e4f5a6b7c"
    feed_server.route("/feed", rss(posts(1)))
    config = write_config(tmp_path, {"blog": feed_server.url("/feed")}, alerts="ping_url = { env = \"PING\" }")
    env = {"PING": http_receiver.url(ping)}
    assert bridge(config, "poll", env=env).returncode == 0
    assert [item.path for item in http_receiver.posts()] == [f"{ping}/start", ping]
    feed_server.error("/feed", 500)
    failed = bridge(config, "poll", "--feed", "blog", env=env)
    assert failed.returncode == 1
    pings = http_receiver.posts()
    assert [item.path for item in pings[2:]] == [f"{ping}/start", f"{ping}/fail"]
    assert "no feed could be read" in pings[3].body and "feed blog" in pings[3].body and "500" in pings[3].body
    assert "5f0a3c6e-1b7d-4b8e-9d1a-2c3e4f5a6b7c" not in failed.stderr + failed.stdout


def test_an_unreachable_ping_url_or_destination_never_breaks_a_poll(tmp_path, feed_server):
    with HttpReceiver() as gone:
        dead = gone.url("/ping-abcdef123456")
        hook = gone.url("/hook", "json")
    feed_server.route("/feed", rss(posts(1)))
    config = write_config(tmp_path, {"blog": feed_server.url("/feed")}, alerts=f'ping_url = "{dead}"\n'
                          f'destinations = ["{hook}"]\nqueue_above = 1')
    assert bridge(config, "poll", env={}).returncode == 0
    feed_server.gone("/feed")
    result = poll_now(config, "blog")  # a problem to tell, and nowhere to tell it
    assert "did not take the alert" in result.stderr and "trying again" in result.stderr
    assert "ping-abcdef123456" not in result.stderr
    with State.open_readonly(tmp_path / "state.sqlite3") as state:
        rows = state.alert_rows()
    assert [(row.kind, row.alerted_at) for row in rows] == [("feed_gone", None)]  # kept, to be told next time


def test_daily_digest_sends_one_message_for_the_day(tmp_path, feed_server, http_receiver):
    for path in ("/a", "/b", "/c"):
        feed_server.route(path, rss(posts(1)))
    passed = (datetime.now() - timedelta(hours=1)).strftime("%H:%M")
    config = write_config(tmp_path, {name: feed_server.url(f"/{name}") for name in "abc"},
                          alerts=f'destinations = ["{http_receiver.url("/hook", "json")}"]\n'
                                 f'digest = "daily"\ndigest_time = "{passed}"\nfeed_failing_after = "1s"')
    bridge(config, "poll", env={})
    assert not http_receiver.posts()  # nothing to say: no message
    feed_server.gone("/a")
    feed_server.gone("/b")
    poll_now(config, "a", "b", "c")
    feed_server.gone("/c")
    for _ in range(2):
        poll_now(config, "c")
    told = alert_bodies(http_receiver)
    assert len(told) == 1, told
    assert told[0].startswith("bridge daily digest: 2 problems need you")
    assert "feed a is gone" in told[0] and "feed b is gone" in told[0]


def test_alerts_test_says_which_destination_failed_and_why(tmp_path, http_receiver, smtp_receiver):
    with HttpReceiver() as gone:
        dead = gone.url("/hook-secret-path-123", "json")
    config = write_config(tmp_path, {}, alerts=f'destinations = [{{ env = "MAIL" }}, "{http_receiver.url("/hook", "json")}", '
                                               f'{{ env = "DEAD" }}, {{ env = "WRONG" }}]')
    env = {"MAIL": smtp_receiver.mailto_url(), "DEAD": dead, "WRONG": smtp_receiver.mailto_url("not-the-Password-9")}
    result = bridge(config, "alerts", "test", env=env)
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert lines[0].startswith("ok   mailto://alerts:****@127.0.0.1")  # Apprise's privacy form
    assert lines[1].startswith("ok   json://127.0.0.1")
    assert lines[2].startswith("FAIL json://127.0.0.1") and "error" in lines[2].lower()
    assert lines[3].startswith("FAIL mailto://") and "email" in lines[3]
    assert lines[4] == "2 of 4 destination(s) took the test alert"
    assert len(smtp_receiver.messages) == 1 and "test alert" in smtp_receiver.bodies()[0]
    assert len(http_receiver.posts("/hook")) == 1
    assert_no_secret([MAIL_PASSWORD, "not-the-Password-9", "hook-secret-path-123"], result.stdout + result.stderr)


def test_check_config_names_a_destination_whose_secret_is_missing(tmp_path):
    config = write_config(tmp_path, {}, alerts='destinations = [{ env = "NOT_SET_ANYWHERE" }]')
    result = bridge(config, "check-config", env={})
    assert result.returncode == 2
    assert "alerts.destinations[0]" in result.stderr and "NOT_SET_ANYWHERE" in result.stderr


def test_a_stalled_daemon_is_told_with_a_fail_ping_then_its_recovery(tmp_path, feed_server, http_receiver, monkeypatch):
    """`bridge run` in this process: its fetch loop is wedged (a poll job that never returns), the alert thread
    notices no poll finished for stall_after_intervals x interval, tells it and pings /fail; unwedged, it recovers."""
    feed_server.route("/feed", rss(posts(1)))
    monkeypatch.setenv("ALERT_HOOK", http_receiver.url("/hook", "json"))
    config = write_config(tmp_path, {"blog": feed_server.url("/feed")},
                          alerts='destinations = [{ env = "ALERT_HOOK" }]\nping_url = "' + http_receiver.url("/ping/abcdefgh-1234")
                                 + '"\nstall_after_intervals = 3', interval="2s")  # 6 s without a poll: stalled
    daemon = Daemon(config, deliverer_factory=build_deliverer)
    release = threading.Event()
    failure: list[BaseException] = []

    def scenario() -> None:
        try:
            wait_for(lambda: feed_polled(tmp_path, "blog"), what="a first poll")
            daemon.fetch_loop.loop.call_soon_threadsafe(release.wait)  # the loop every fetch goes through hangs
            wait_for(lambda: any("stalled" in body or "no poll has finished" in body for body in alert_bodies(http_receiver)),
                     timeout=30, what="the stall alert")
            wait_for(lambda: http_receiver.posts("/ping/abcdefgh-1234/fail"), timeout=10, what="the /fail ping")
            release.set()
            wait_for(lambda: any("cleared: bridge run is alive" in body for body in alert_bodies(http_receiver)),
                     timeout=30, what="the recovery")
        except BaseException as exc:
            failure.append(exc)
        finally:
            release.set()
            os.kill(os.getpid(), signal.SIGTERM)

    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}
    thread = threading.Thread(target=scenario, daemon=True)
    thread.start()
    try:
        assert daemon.run() == 0
    finally:
        thread.join(timeout=60)
        for sig, handler in saved.items():
            signal.signal(sig, handler)
    if failure:
        raise failure[0]
    told = alert_bodies(http_receiver)
    stalls = [body for body in told if "bridge run is alive but no poll has finished" in body and "cleared" not in body]
    assert len(stalls) == 1 and "journalctl" in stalls[0]
    fail_ping = http_receiver.posts("/ping/abcdefgh-1234/fail")[0]
    assert "no poll has finished" in fail_ping.body


def test_check_config_refuses_a_destination_apprise_does_not_understand(tmp_path):
    config = write_config(tmp_path, {}, alerts='destinations = ["nosuchservice://secret-token-abc123"]')
    result = bridge(config, "check-config", env={})
    assert result.returncode == 2
    assert "alerts.destinations[0]" in result.stderr and "Apprise" in result.stderr
    assert "secret-token-abc123" not in result.stderr


def test_bridge_run_tells_a_growing_queue_once_and_pings_after_its_cycles(tmp_path, feed_server, http_receiver):
    """A real `bridge run`: its account's server does not answer, so the queue grows past queue_above."""
    with HttpReceiver() as closed:
        nowhere = closed.url("")
    feed_server.route("/feed", rss(posts(1)))
    accounts = (f'[accounts.masto]\ntype = "mastodon"\ninstance = "{nowhere}"\naccess_token = {{ env = "T_MASTO" }}\n'
                f'posts_per_hour = 1000000\n')
    ping = "/ping/0c9e2b7a-hc"
    config = write_config(tmp_path, {"blog": feed_server.url("/feed")}, accounts=accounts, feed_accounts='["masto"]',
                          alerts=f'destinations = ["{http_receiver.url("/hook", "json")}"]\nqueue_above = 2\n'
                                 f'ping_url = "{http_receiver.url(ping)}"')
    env = {"T_MASTO": "token-never-shown-123456"}
    assert bridge(config, "poll", env=env).returncode == 0  # the baseline
    assert [item.path for item in http_receiver.posts()] == [f"{ping}/start", ping]
    http_receiver.received.clear()
    feed_server.route("/feed", rss(posts(4)))
    process = start_daemon(config, env)
    try:
        wait_for(lambda: alert_bodies(http_receiver), timeout=60, what="the queue alert")
        wait_for(lambda: len(http_receiver.posts(ping)) >= 2, timeout=30, what="two success pings")
        time.sleep(3)  # more cycles: nothing more to tell
        code, err = stop(process)
    finally:
        if process.poll() is None:
            process.kill()
    assert code == 0, err
    told = alert_bodies(http_receiver)
    assert len(told) == 1, told
    assert "account masto has 3 posts queued (more than 2)" in told[0] and "posts_per_hour" in told[0]
    assert {item.path for item in http_receiver.posts("/ping")} == {ping}  # success pings: not stalled, no /start
    assert "token-never-shown-123456" not in err + "".join(told)


class _Recorder:
    """Stands for the destinations in the engine's own tests: records each message, takes it or not."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, str]] = []
        self.working = True

    def __call__(self, destinations, title, body):
        from bridge.alerts.send import Delivery

        self.messages.append((title, body))
        return [Delivery("json://127.0.0.1/hook", None if self.working else "connection refused")]


def _engine(tmp_path, alerts: str = ""):
    from bridge.alerts.engine import Alerter
    from bridge.config import Secret, load_config

    config = write_config(tmp_path, {}, alerts=alerts)
    clock = [1_000_000.0]
    recorder = _Recorder()
    state = State.open_memory()
    alerter = Alerter(load_config(config), state, [Secret("json://127.0.0.1/hook")], clock=lambda: clock[0],
                      sender=recorder)
    return alerter, recorder, clock


def test_an_unsent_alert_is_tried_again_after_a_pause_and_dropped_if_it_clears_first(tmp_path):
    from bridge.alerts.problems import Problem

    alerter, recorder, clock = _engine(tmp_path)
    paused = Problem("account_paused", "masto", "account masto is paused")
    recorder.working = False
    alerter.observe([paused])
    alerter.flush()
    clock[0] += 30
    alerter.flush()  # within the pause after a failure: not tried
    assert len(recorder.messages) == 1
    clock[0] += 31
    alerter.flush()
    assert len(recorder.messages) == 2  # tried again
    alerter.observe([])  # cleared before anyone heard of it
    recorder.working = True
    clock[0] += 3600
    alerter.flush()
    assert len(recorder.messages) == 2 and not alerter.state.alert_rows()


def test_a_problem_within_its_grace_is_not_told_and_the_digest_lists_what_is_still_open(tmp_path):
    from bridge.alerts.problems import Problem

    passed = (datetime.now() - timedelta(hours=1)).strftime("%H:%M")
    alerter, recorder, clock = _engine(tmp_path, f'digest = "daily"\ndigest_time = "{passed}"')
    clock[0] = time.time()
    failing = Problem("feed_failing", "blog", "feed blog fails", since=clock[0] - 10, grace=60)
    gone = Problem("feed_gone", "old", "feed old is gone")
    alerter.observe([failing, gone])
    alerter.flush()
    assert recorder.messages == [("bridge daily digest: 1 problem needs you", "NEW\n- feed old is gone")]
    clock[0] += 86400  # the next day: the failing feed passed its grace, the gone one is still open
    alerter.observe([failing, gone])
    alerter.flush()
    title, body = recorder.messages[1]
    assert title == "bridge daily digest: 1 problem needs you"
    assert body == "NEW\n- feed blog fails\n\nSTILL OPEN\n- feed old is gone"


def test_check_config_refuses_a_ping_url_that_is_not_http(tmp_path):
    config = write_config(tmp_path, {}, alerts='ping_url = "hc-ping.com/5f0a3c6e-secret-uuid"')
    result = bridge(config, "check-config", env={})
    assert result.returncode == 2 and "alerts.ping_url" in result.stderr and "https://hc-ping.com/<uuid>" in result.stderr
    assert "5f0a3c6e-secret-uuid" not in result.stderr


def test_a_problem_absent_for_one_check_only_is_neither_recovered_nor_told_again(tmp_path):
    from bridge.alerts.problems import Problem

    alerter, recorder, clock = _engine(tmp_path)
    paused = Problem("account_paused", "masto", "account masto is paused")
    for seen in ([paused], [], [paused], [paused]):  # let out of its pause for one attempt, paused again
        clock[0] += 60
        alerter.observe(seen)
        alerter.flush()
    assert [title for title, _ in recorder.messages] == ["bridge: 1 problem needs you"]
    for _ in range(2):
        clock[0] += 60
        alerter.observe([])
        alerter.flush()
    assert [title for title, _ in recorder.messages] == ["bridge: 1 problem needs you", "bridge: 1 cleared"]
    assert recorder.messages[1][1] == "CLEARED\n- cleared: account masto is paused"


def test_a_destination_loaded_as_a_systemd_credential_is_found_without_a_reference(tmp_path, http_receiver):
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    (credentials / "alert_destination").write_text(http_receiver.url("/topic-from-credential", "ntfy") + "\n")
    config = write_config(tmp_path, {}, alerts='feed_failing_after = "1h"')  # no destinations listed
    result = bridge(config, "alerts", "test", env={"CREDENTIALS_DIRECTORY": str(credentials)})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 of 1 destination(s) took the test alert" in result.stdout
    assert "topic-from-credential" not in result.stdout  # an ntfy topic is a secret: anyone knowing it can read
    assert http_receiver.posts()[0].json()["topic"] == "topic-from-credential"


def test_a_threads_token_whose_refresh_keeps_failing_is_told_once_before_it_expires_then_cleared(tmp_path, monkeypatch):
    from bridge.alerts.engine import Alerter
    from bridge.alerts.problems import EXPIRY_WARNING_SECONDS, current_problems
    from bridge.config import Secret, load_config
    from bridge.platforms.threads.graph import login_fix
    from bridge.platforms.threads.target import ThreadsTarget
    from bridge.platforms.threads.tokens import DAY
    from tests.test_threads import Clock
    from tests.threads_fake import ThreadsFake

    clock, recorder, state = Clock(), _Recorder(), State.open_memory()
    with ThreadsFake(clock=clock) as fake:
        token = fake.add_user("writer", issued_at=clock())
        accounts = f'[accounts.th]\ntype = "threads"\naccess_token = {{ env = "T_THREADS" }}\ngraph_url = "{fake.url}"\n'
        config = load_config(write_config(tmp_path, {}, alerts="", accounts=accounts))
        monkeypatch.setenv("T_THREADS", token)
        alerter = Alerter(config, state, [Secret("json://127.0.0.1/hook")], clock=clock, sender=recorder)

        def daily_poll(target: ThreadsTarget, refresh_fails: bool = False) -> float:
            """A day later, the daemon uses the token (refreshing it as it does) then checks: the expiry kept."""
            clock.now += DAY
            if refresh_fails:
                fake.inject("GET /refresh_access_token", 503)
            target.quota()  # every call takes the token from the keeper, which refreshes it once a day old
            fake.clear_faults()
            alerter.observe(current_problems(config, state, clock()))
            alerter.flush()
            return json.loads(state.load_session("th"))["expires_at"] - clock()

        target = ThreadsTarget("th", config.accounts["th"], token, state, clock=clock)
        for _ in range(59):  # the refresh works: the end stays ~60 days away, nothing to tell
            assert daily_poll(target) > 58 * DAY
        assert recorder.messages == []

        told_with_left = []
        for _ in range(58):  # Meta refuses every refresh: the token runs out
            left = daily_poll(target, refresh_fails=True)
            if len(recorder.messages) > len(told_with_left):
                told_with_left.append(left)
        assert len(recorder.messages) == 1  # once, over the week of polls within the window
        assert EXPIRY_WARNING_SECONDS - DAY <= told_with_left[0] < EXPIRY_WARNING_SECONDS  # at the first such poll
        title, body = recorder.messages[0]
        assert title == "bridge: 1 problem needs you"
        assert "the Threads credential of account th expires in" in body and login_fix("th") in body
        assert "bridge login threads --account th" in body and token not in body

        new_token = fake.issue(fake.tokens[token].user_id, "long")  # `bridge login threads` again
        monkeypatch.setenv("T_THREADS", new_token)
        target = ThreadsTarget("th", config.accounts["th"], new_token, state, clock=clock)
        for _ in range(3):
            assert daily_poll(target) > 58 * DAY
    assert len(recorder.messages) == 2
    title, body = recorder.messages[1]
    assert title == "bridge: 1 cleared" and "cleared: the Threads credential of account th expires in" in body
    assert new_token not in body
