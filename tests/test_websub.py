"""WebSub end to end: `bridge run` subscribes at a real hub (flask-websub's), verifies, takes signed pushes and
posts them on the Mastodon fake at once, ignores forged and unsigned ones, renews its lease, unsubscribes a feed
removed from the config, and polls again when the hub goes away."""

from __future__ import annotations

import hashlib
import hmac
import signal
import socket
import subprocess
import sys
import time

from contextlib import contextmanager
from datetime import timedelta
from types import SimpleNamespace

import pytest
import requests

from bridge.state import State
from tests.mastodon_fake import MastodonFake
from tests.test_daemon import feed_config, start_daemon, stop, wait_for
from tests.test_pipeline import posts, rss
from tests.test_status_page import browser  # noqa: F401 -- the shared headless chromium fixture
from tests.websub_hub import NO_PROXY, WebSubHub

BRIDGE_UA = "bridge/"


@pytest.fixture
def hub(tmp_path):
    running = WebSubHub(tmp_path).start()  # raises (the test fails) when the hub cannot start
    yield running
    running.stop()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def serve_feed(feed_server, hub: WebSubHub, items: list[dict]) -> str:
    """The blog's feed with its hub in the Link header (as WordPress's WebSub plugin sends it); its URL."""
    topic = feed_server.url("/feed")
    feed_server.route("/feed", rss(items), headers={"Link": f'<{hub.url}>; rel="hub", <{topic}>; rel="self"'})
    return topic


def websub_row(tmp_path, feed: str = "blog"):
    path = tmp_path / "state.sqlite3"
    if not path.exists():
        return None
    with State.open_readonly(path) as state:
        if "0007_websub" in state.pending_migrations():
            return None
        return state.websub(feed)


def bridge_fetches(feed_server) -> int:
    return sum(1 for record in feed_server.requests_for("/feed") if record.headers.get("user-agent", "").startswith(BRIDGE_UA))


def start(tmp_path, feed_server, hub, fake, token, *, lease: str = "1h", poll: str = "1h"):
    port = free_port()
    accounts = (f'[accounts.masto]\ntype = "mastodon"\ninstance = "{fake.url}"\n'
                f'access_token = {{ env = "BRIDGE_TEST_TOKEN" }}\nposts_per_hour = 1000\n')
    extra = (f'http_listen = "127.0.0.1:{port}"\npublic_url = "http://127.0.0.1:{port}/"\n'
             f'websub_poll_interval = "{poll}"\nwebsub_lease = "{lease}"\n')
    config = feed_config(tmp_path, {"blog": feed_server.url("/feed")}, accounts=accounts, feed_accounts='["masto"]',
                         extra=extra)
    return config, start_daemon(config, {"BRIDGE_TEST_TOKEN": token, "NO_PROXY": "*"}), f"http://127.0.0.1:{port}"


@contextmanager
def running(tmp_path, feed_server, hub, **settings):
    """`bridge run` with the feed on `hub` and a Mastodon account; checks it exits cleanly with no secret logged."""
    with MastodonFake() as fake:
        token = fake.add_account("writer")
        topic = serve_feed(feed_server, hub, posts(2))
        config, process, base = start(tmp_path, feed_server, hub, fake, token, **settings)
        try:
            bridge = SimpleNamespace(fake=fake, token=token, topic=topic, config=config, process=process, base=base)
            yield bridge
        finally:
            code, log = stop(bridge.process)
            secrets = [row.secret for row in [websub_row(tmp_path)] if row and row.secret]
        assert code == 0, log
        assert not any(secret in log for secret in secrets)


def wait_active(tmp_path, hub, topic):
    """The subscription active on both sides: bridge marks it when it answers the hub's check, and the hub stores
    it only once that answer reaches it, so the hub is asked too (a publish before that pushes to nobody)."""
    row = wait_for(lambda: (row := websub_row(tmp_path)) and row.status == "active" and row, timeout=30,
                   what="the hub to verify the subscription")
    wait_for(lambda: any(secret == row.secret for _, secret in hub.subscriptions(topic)), timeout=30,
             what="the hub to store the subscription")
    return row


def _status_page_websub(browser, base: str) -> str:
    """The feed's WebSub line on the status page, read in a real browser; nothing on the page may run."""
    page = browser.new_page()
    try:
        page.goto(base + "/")
        text = page.locator("#feed-blog dd.websub").inner_text()
        assert page.locator("script, img").count() == 0 and page.evaluate("() => window.__pwned === undefined")
        return text
    finally:
        page.close()


def test_a_push_from_the_hub_posts_at_once_and_forged_or_unsigned_pushes_are_ignored(tmp_path, feed_server, hub, browser):
    with running(tmp_path, feed_server, hub) as bridge:
        fake, topic, base = bridge.fake, bridge.topic, bridge.base
        row = wait_active(tmp_path, hub, topic)
        assert row.sub_hub == hub.url and row.sub_topic == topic
        assert hub.subscriptions(topic) == [(f"{base}/websub/{row.token}", row.secret)]
        # healthy: the next poll is websub_poll_interval away (the first polls ran every second)
        wait_for(lambda: _next_poll(tmp_path) > time.time() + 1800, what="polling to slow down")
        fetches = bridge_fetches(feed_server)

        serve_feed(feed_server, hub, posts(1, start=2, age=timedelta(0)) + posts(2))
        hub.publish(topic)
        wait_for(lambda: len(fake.statuses("writer")) == 1, timeout=15, what="the pushed entry to be posted")
        assert "Post number 2" in fake.statuses("writer")[0]["content"]
        assert bridge_fetches(feed_server) == fetches  # the hub's push carried the whole feed: no fetch
        assert wait_for(lambda: websub_row(tmp_path).last_push_at, what="the push to be recorded")

        # a forged push (signed with another secret) and an unsigned one: acknowledged, ignored
        forged = rss(posts(1, start=3, age=timedelta(0)) + posts(3)).encode()
        callback = f"{base}/websub/{row.token}"
        signature = hmac.new(b"not the secret", forged, hashlib.sha256).hexdigest()
        for headers in ({"X-Hub-Signature": f"sha256={signature}"}, {}):
            answer = requests.post(callback, data=forged, headers={"Content-Type": "application/rss+xml", **headers},
                                   timeout=10, proxies=NO_PROXY)
            assert answer.status_code == 202
        wait_for(lambda: websub_row(tmp_path).rejected_pushes == 2, what="the ignored pushes to be counted")
        time.sleep(2)
        assert len(fake.statuses("writer")) == 1  # nothing of the forged feed was posted
        assert bridge_fetches(feed_server) == fetches  # nor did it make bridge fetch
        # a verification bridge did not ask for is refused: nobody can subscribe bridge to anything
        stranger = requests.get(callback, params={"hub.mode": "subscribe", "hub.topic": "https://elsewhere.example/",
                                                  "hub.challenge": "xyz"}, timeout=10, proxies=NO_PROXY)
        assert stranger.status_code == 404 and "xyz" not in stranger.text
        guessed = requests.get(f"{base}/websub/guessed", params={"hub.mode": "subscribe", "hub.topic": topic,
                                                                 "hub.challenge": "xyz"}, timeout=10, proxies=NO_PROXY)
        assert guessed.status_code == 404

        # the status page shows the subscription; then a denial carrying hostile text: shown as text
        shown = _status_page_websub(browser, base)
        assert shown.startswith(f"active at {hub.url}") and "last push" in shown and "2 unsigned or forged" in shown
        hostile = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=1</script>'
        requests.get(callback, params={"hub.mode": "denied", "hub.topic": topic, "hub.reason": hostile}, timeout=10,
                     proxies=NO_PROXY)
        wait_for(lambda: websub_row(tmp_path).status == "failed", what="the denial to be recorded")
        shown = _status_page_websub(browser, base)
        assert shown.startswith("failed at") and hostile in shown


def test_the_lease_is_renewed_and_polling_resumes_when_the_hub_is_down(tmp_path, feed_server, hub):
    with running(tmp_path, feed_server, hub, lease="10s") as bridge:
        first = wait_active(tmp_path, hub, bridge.topic)
        renewed = wait_for(lambda: (row := websub_row(tmp_path)).lease_expires_at > first.lease_expires_at + 3 and row,
                           timeout=30, what="the lease to be renewed")
        assert renewed.status == "active" and renewed.token == first.token
        assert hub.subscriptions(bridge.topic)

        hub.stop()
        failed = wait_for(lambda: (row := websub_row(tmp_path)).status == "failed" and row, timeout=30,
                          what="the subscription to fail with the hub down")
        assert "hub" in failed.last_error
        serve_feed(feed_server, hub, posts(1, start=2, age=timedelta(0)) + posts(2))
        wait_for(lambda: len(bridge.fake.statuses("writer")) == 1, timeout=30, what="polling to post the new entry")
        status = _status(bridge.config)
        assert "WebSub" in status and "failed" in status and "polling at the normal interval" in status


def test_a_feed_removed_from_the_config_is_unsubscribed(tmp_path, feed_server, hub):
    with running(tmp_path, feed_server, hub) as bridge:
        wait_active(tmp_path, hub, bridge.topic)
        assert hub.subscriptions(bridge.topic)
        text = bridge.config.read_text()
        bridge.config.write_text(text[:text.index("[[feeds]]")])
        bridge.process.send_signal(signal.SIGHUP)
        wait_for(lambda: not hub.subscriptions(bridge.topic), timeout=30, what="the hub to drop the subscription")
        assert websub_row(tmp_path) is None


def test_a_new_hub_means_a_new_subscription_there_and_none_at_the_old(tmp_path, feed_server, hub):
    (tmp_path / "other").mkdir()
    other = WebSubHub(tmp_path / "other").start()
    try:
        with running(tmp_path, feed_server, hub, poll="1s") as bridge:
            first = wait_active(tmp_path, hub, bridge.topic)
            serve_feed(feed_server, other, posts(2))  # the blog moved to another hub
            moved = wait_for(lambda: (row := websub_row(tmp_path)).sub_hub == other.url and row.status == "active"
                             and row, timeout=30, what="a subscription at the new hub")
            wait_for(lambda: other.subscriptions(bridge.topic), timeout=30, what="the new hub to store the subscription")
            assert moved.token != first.token and moved.secret != first.secret
            assert other.subscriptions(bridge.topic) == [(f"{bridge.base}/websub/{moved.token}", moved.secret)]
            wait_for(lambda: not hub.subscriptions(bridge.topic), timeout=30, what="the old hub to drop the subscription")
    finally:
        other.stop()


def _next_poll(tmp_path) -> float:
    with State.open_readonly(tmp_path / "state.sqlite3") as state:
        return state.get_feed("blog").next_poll_at or 0


def _status(config) -> str:
    result = subprocess.run([sys.executable, "-m", "bridge", "--config", str(config), "status"], capture_output=True,
                            text=True, timeout=60)
    return result.stdout + result.stderr


def test_after_a_restart_the_subscription_still_takes_pushes(tmp_path, feed_server, hub):
    with running(tmp_path, feed_server, hub) as bridge:
        first = wait_active(tmp_path, hub, bridge.topic)
        code, log = stop(bridge.process)
        assert code == 0, log
        bridge.process = start_daemon(bridge.config, {"BRIDGE_TEST_TOKEN": bridge.token, "NO_PROXY": "*"})
        wait_for(lambda: _answers(bridge.base), what="the restarted server")
        serve_feed(feed_server, hub, posts(1, start=2, age=timedelta(0)) + posts(2))
        hub.publish(bridge.topic)
        wait_for(lambda: len(bridge.fake.statuses("writer")) == 1, timeout=15, what="the pushed entry to be posted")
        assert websub_row(tmp_path).token == first.token  # the same subscription, not a new one


def _answers(base: str) -> bool:
    try:
        return requests.get(base + "/healthz", timeout=2, proxies=NO_PROXY).status_code == 200
    except requests.ConnectionError:
        return False
