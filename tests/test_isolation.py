"""Issue 13, defect 1: one entry, feed or account that trips an unexpected error never stops the others.

The e2e test is the reported case through the real CLI, the Mastodon fake and the real PDS: an RSS entry of
600 unclosed <b> tags (RecursionError in HTML-to-text: `bridge poll` died and posted nothing, on any account).
The others give each step a failure nobody planned for and check that it lands, readable, on its own entry.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import threading
import time
from datetime import timedelta
from pathlib import Path

from markdownify import markdownify

from bridge import ids
from bridge.daemon import Daemon
from bridge.delivery import Deliverer
from bridge.model import Entry
from bridge.pipeline import Poller
from bridge.state import State
from bridge.status import collect_status, render_status_text
from tests.bluesky_helpers import record_words
from tests.fake_target import FakeTarget
from tests.mastodon_fake import MastodonFake
from tests.test_crash_matrix import list_posts
from tests.test_daemon import feed_config, feed_polled, start_daemon, stop, wait_for
from tests.test_delivery import _config, drain, env  # noqa: F401  (env is a fixture)
from tests.test_pipeline import posts, rss, world  # noqa: F401  (world is a fixture)
from tests.test_secrets import _bridge as bridge

NESTED = "<![CDATA[<p>Opening words.</p>" + "<b>" * 600 + "Deeply nested words.]]>"


def test_nested_tags_entry_beside_a_normal_feed_posts_everything_on_both_accounts(tmp_path, feed_server, pds):
    sky = pds.create_account("nested")
    with MastodonFake() as fake:
        token = fake.add_account("writer")
        config = tmp_path / "config.toml"
        config.write_text(
            f'[bridge]\nstate = "{tmp_path}/s.sqlite3"\n'
            f'[accounts.masto]\ntype = "mastodon"\ninstance = "{fake.url}"\naccess_token = {{ env = "T_MASTO" }}\n'
            f'posts_per_hour = 1000000\n'
            f'[accounts.sky]\ntype = "bluesky"\nhandle = "{sky.handle}"\nservice = "{pds.url}"\n'
            f'app_password = {{ env = "T_SKY" }}\nposts_per_hour = 1000000\n'
            f'[[feeds]]\nname = "blog"\nurl = "{feed_server.url("/blog")}"\naccounts = ["masto", "sky"]\n'
            f'[[feeds]]\nname = "other"\nurl = "{feed_server.url("/other")}"\naccounts = ["masto", "sky"]\n'
        )
        secrets = {"T_MASTO": token, "T_SKY": sky.app_password}
        feed_server.route("/blog", rss(posts(1)))
        feed_server.route("/other", rss(posts(1, guid_prefix="o-", host="other.example")))
        assert bridge(config, "poll", env=secrets).returncode == 0  # baseline
        nested, after = posts(2, start=1)
        after["date"], nested["date"] = nested["date"], after["date"]  # the nested entry goes out first
        nested["description"] = NESTED
        feed_server.route("/blog", rss([after, nested] + posts(1)))
        feed_server.route("/other", rss(posts(2, guid_prefix="o-", host="other.example")))

        # Flood control spaces posts a second apart: one poll posts one entry per account; later polls the rest.
        results = [bridge(config, "poll", "--feed", "blog", "--feed", "other", env=secrets)]
        while len(results) < 8 and len(fake.statuses("writer")) + len(list_posts(pds, sky.did)) < 6:
            time.sleep(1.1)
            results.append(bridge(config, "poll", env=secrets))

        for result in results:
            assert result.returncode == 0, result.stderr
            assert "Traceback" not in result.stderr
        mastodon_texts = [status["text"] for status in fake.statuses("writer")]
        bluesky_texts = [record_words(record["value"]) for record in list_posts(pds, sky.did)]
    for texts in (mastodon_texts, bluesky_texts):
        assert len(texts) == 3
        assert any("Deeply nested words" in text for text in texts)
        assert any("Post number 2" in text for text in texts) and any("other.example" in text for text in texts)


def test_an_entry_whose_post_cannot_be_made_fails_alone_with_its_reason(env):  # noqa: F811
    config = _config()
    env.queue(3)
    deliverer = env.deliverer(config)
    make_payload = deliverer.payload_builder

    def payload(row, target):
        if row.entry_key == "entry-000":
            raise RecursionError("maximum recursion depth exceeded")
        return make_payload(row, target)

    deliverer.payload_builder = payload
    assert deliverer.deliver_due().failed == 2
    drain(env, deliverer)

    for account in ("a", "b"):
        rows = {row.entry_key: row for row in env.state.deliveries(account=account)}
        assert [rows[key].state for key in sorted(rows)] == ["failed", "posted", "posted"]
        assert rows["entry-000"].last_error == ("cannot make a post of https://b.example/0: "
                                                "RecursionError: maximum recursion depth exceeded")
    status = collect_status(config, env.state, now=env.clock.now)
    assert status["accounts"][0]["failures"][0]["reason"].endswith("RecursionError: maximum recursion depth exceeded")
    assert ("failed: https://b.example/0: cannot make a post of https://b.example/0: RecursionError"
            in render_status_text(status))


def test_an_unexpected_error_while_publishing_is_retried_and_the_queue_goes_on(env):  # noqa: F811
    config = _config()
    env.queue(2)
    deliverer = env.deliverer(config)
    for account in ("a", "b"):  # a library that met an answer it did not expect, on each account's first post
        deliverer._target(account).failures.append(KeyError("id"))
    first = deliverer.deliver_due()
    assert first.failed == 0 and [report.retried for report in first.accounts] == [1, 1]
    row = env.state.deliveries(account="a")[0]
    assert row.state == "pending" and row.last_error == "unexpected KeyError: 'id'"
    drain(env, deliverer)
    for account in ("a", "b"):
        assert [row.state for row in env.state.deliveries(account=account)] == ["posted", "posted"]
        assert len(env.targets[account].posts) == 2  # each once


def test_an_account_that_trips_an_unexpected_error_does_not_stop_the_next(env):  # noqa: F811
    config = _config()
    env.queue(1)
    deliverer = env.deliverer(config)
    make_target = deliverer.target_factory

    def target_factory(account):
        if account == "a":
            raise TypeError("'NoneType' object is not subscriptable")
        return make_target(account)

    deliverer.target_factory = target_factory
    report = deliverer.deliver_due()
    assert report.accounts[0].error == "TypeError: 'NoneType' object is not subscriptable"
    assert len(report.accounts[1].posted) == 1
    assert [row.state for row in env.state.deliveries(account="a")] == ["pending"]  # kept for the next pass


class _PollerWithABrokenParser(Poller):
    """A parser bug met by one feed's document (an injected one: real documents no longer trip any)."""

    async def read(self, result):
        if result.url.endswith("/broken"):
            raise RecursionError("maximum recursion depth exceeded while calling a Python object")
        return await super().read(result)


def test_a_feed_that_trips_an_unexpected_error_is_recorded_and_the_others_polled(world):  # noqa: F811
    world.server.route("/good", rss(posts(2)))
    world.server.route("/broken", rss(posts(2, guid_prefix="b-")))
    config = world.config({"good": "/good", "broken": "/broken"})
    report = {o.feed: o for o in _PollerWithABrokenParser(config, world.state, clock=world.clock).poll().feeds}
    assert report["good"].baseline == 2
    assert report["broken"].outcome == "error"
    broken = world.state.get_feed("broken")
    assert broken.last_error == ("unexpected error reading the feed: RecursionError: maximum recursion depth "
                                 "exceeded while calling a Python object")
    assert broken.next_poll_at > world.clock.now  # backs off like any failing feed


# --- `bridge run`: a job that raised or wedged ------------------------------------------------------------------


class _TroubledDeliverer(Deliverer):
    """The real engine with an in-memory target, whose first pass meets `trouble` (raise or block)."""

    def __init__(self, config, state, trouble, **kwargs) -> None:
        self.target = FakeTarget("a")
        super().__init__(config, state, target_factory=lambda account: self.target,
                         payload_builder=lambda row, target: {"status": row.link}, **kwargs)
        self.trouble = trouble
        self.passes = 0

    def deliver_due(self, accounts=None):
        self.passes += 1
        if self.passes == 1:
            self.trouble()
        return super().deliver_due(accounts)


def _queued_daemon_world(tmp_path, feed_server, extra: str = "") -> Path:
    """A config with one feed (already polled: its entry is queued for account a) and a state holding that row."""
    feed_server.route("/feed", rss(posts(1)))
    config = tmp_path / "config.toml"
    config.write_text(
        f'[bridge]\nstate = "{tmp_path}/s.sqlite3"\ndelivery_interval = "1s"\n{extra}\n'
        f'[accounts.a]\ntype = "mastodon"\ninstance = "https://m.example"\naccess_token = {{ env = "T_A" }}\n'
        f'posts_per_hour = 1000000\n'
        f'[[feeds]]\nname = "blog"\nurl = "{feed_server.url("/feed")}"\naccounts = ["a"]\ninterval = "1h"\n'
    )
    with State.open(tmp_path / "s.sqlite3") as state:
        state.ensure_feed("blog", feed_server.url("/feed"))
        entry = Entry(key="entry-1", link="https://blog.example/1", title="One")
        entry_id = state.add_entry("blog", entry, "new", "h", ["blog.example/1"], time.time())
        state.add_delivery(entry_id, "a", idempotency_key=ids.idempotency_key("a", "blog", "entry-1"), rkey=None,
                           now=time.time())
    return config


def _run_daemon_until(config: Path, deliverers: list, trouble, done, timeout: float = 60.0) -> None:
    """`bridge run` in this process (its signal handlers need the main thread) until done() or timeout, then
    SIGTERM, the way systemd stops it."""
    def factory(config, state, **kwargs):
        deliverers.append(_TroubledDeliverer(config, state, trouble, **kwargs))
        return deliverers[-1]

    returned = threading.Event()  # the daemon ended on its own (a failure): no SIGTERM for pytest itself

    def stop_when_done() -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not done() and not returned.is_set():
            time.sleep(0.05)
        if not returned.is_set():
            os.kill(os.getpid(), signal.SIGTERM)

    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}
    stopper = threading.Thread(target=stop_when_done, daemon=True)
    stopper.start()
    try:
        assert Daemon(config, deliverer_factory=factory).run() == 0
    finally:
        returned.set()
        stopper.join()
        for sig, handler in saved.items():
            signal.signal(sig, handler)


def test_a_delivery_job_that_raised_delivers_on_its_next_run(tmp_path, feed_server, monkeypatch, caplog):
    monkeypatch.setenv("T_A", "token-a")
    config = _queued_daemon_world(tmp_path, feed_server)
    deliverers: list[_TroubledDeliverer] = []

    def trouble():  # what the nested-tags entry did before HTML-to-text flattened it: markdownify recursing
        try:
            raise LookupError("no link preview")  # the real pass was handling a failed page fetch
        except LookupError:
            markdownify("<b>" * 600 + "deep")

    _run_daemon_until(config, deliverers, trouble, done=lambda: deliverers and deliverers[0].target.posts)

    assert len(deliverers[0].target.posts) == 1  # the next run posted it
    assert deliverers[0].passes >= 2
    assert "the deliver job failed: RecursionError: maximum recursion depth exceeded" in caplog.text
    assert "maximum number of running instances" not in caplog.text
    assert "Traceback" not in caplog.text  # one line: the 1,000-frame traceback that filled stderr is debug only
    with State.open_readonly(tmp_path / "s.sqlite3") as state:
        assert [row.state for row in state.deliveries()] == ["posted"]


def test_a_wedged_delivery_job_stops_the_watchdog_until_it_moves_again(tmp_path, feed_server, monkeypatch):
    monkeypatch.setenv("T_A", "token-a")
    monkeypatch.setattr("bridge.daemon.UPLOADS_ALLOWANCE", 0.0)  # this post has no upload to wait for
    config = _queued_daemon_world(tmp_path, feed_server, extra='total_timeout = "1s"')  # stuck after 5 s
    address = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(address)
    sock.settimeout(0.2)
    monkeypatch.setenv("NOTIFY_SOCKET", address)
    monkeypatch.setenv("WATCHDOG_USEC", "1000000")  # a ping every 0.5 s while all is well
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    release = threading.Event()
    wedged_for = 9.0  # well past the 5 s limit
    pings: list[float] = []  # when each WATCHDOG=1 arrived (monotonic)
    wedged_at: list[float] = []

    def trouble():  # the delivery job hangs, as on a server that never answers
        wedged_at.append(time.monotonic())
        release.wait(60)

    def done() -> bool:
        """Collect the pings; let the job go after wedged_for s; done once it has posted and a ping followed."""
        try:
            if "WATCHDOG=1" in sock.recv(4096).decode().splitlines():
                pings.append(time.monotonic())
        except socket.timeout:
            pass
        if not wedged_at:
            return False
        released_at = wedged_at[0] + wedged_for
        if time.monotonic() > released_at:
            release.set()
        return bool(deliverers[0].target.posts) and bool(pings) and pings[-1] > released_at

    deliverers: list[_TroubledDeliverer] = []
    try:
        _run_daemon_until(config, deliverers, trouble, done)
    finally:
        release.set()
        sock.close()
    start = wedged_at[0]
    assert any(start + 1 < t < start + 5 for t in pings)  # fed while the job was young
    assert not any(start + 6.5 < t < start + wedged_for for t in pings)  # silent once it had not moved for 5 s
    assert any(t > start + wedged_for for t in pings)  # fed again once it moved
    assert len(deliverers[0].target.posts) == 1


def test_preview_shows_the_nested_tags_entry_and_the_one_after_it(tmp_path):
    from click.testing import CliRunner

    from bridge.cli import cli

    nested, after = posts(2, start=1)
    nested["description"] = NESTED
    feed = tmp_path / "feed.xml"
    feed.write_text(rss([after, nested]))
    env = {"BRIDGE_CONFIG": None, "XDG_CONFIG_HOME": str(tmp_path / "config"), "XDG_DATA_HOME": str(tmp_path / "data"),
           "CONFIGURATION_DIRECTORY": None, "STATE_DIRECTORY": None}
    result = CliRunner().invoke(cli, ["preview", "--file", str(feed), "--json", "--no-fetch"], env=env)
    assert result.exit_code == 0, result.output
    items = json.loads(result.output)
    from bridge.platforms import names

    assert [(item["entry"], item["platform"]) for item in items] == [
        (guid, platform) for guid in ("guid-2", "guid-1") for platform in names()]  # one per default account
    nested_items = {item["platform"]: item["payload"] for item in items if item["entry"] == "guid-1"}
    assert "Deeply nested words." in nested_items["mastodon"]["status"]
    assert "Deeply nested words." in record_words(nested_items["bluesky"]["record"])
    assert "Deeply nested words." in nested_items["threads"]["text"]


def test_status_survives_a_stored_time_no_calendar_holds(world):  # noqa: F811
    world.server.route("/a", rss(posts(1)))
    world.server.route("/b", rss(posts(1, guid_prefix="b-")))
    config = world.config({"a": "/a", "b": "/b"})
    world.poll(config)
    world.state.update_feed("a", next_poll_at=1e20)  # e.g. written by a clock far in the future
    report = collect_status(config, world.state, now=world.clock.now)
    feeds = {feed["name"]: feed for feed in report["feeds"]}
    assert feeds["a"]["next_poll"] == "invalid time 1e+20"
    assert feeds["b"]["outcome"] == "new" and feeds["b"]["entries_known"] == 1
    assert "next poll invalid time 1e+20" in render_status_text(report)


def test_bridge_run_posts_the_nested_tags_entry_and_every_entry_after_it(tmp_path, feed_server):
    # As reported: the delivery pass raised RecursionError on every run, each with a 1,000-frame traceback on
    # stderr; entries queued behind the bad one never went out, and once the pipe filled the job wedged
    # ("maximum number of running instances reached") while the watchdog stayed fed.
    with MastodonFake() as fake:
        token = fake.add_account("writer")
        feed_server.route("/feed", rss(posts(1)))
        accounts = (f'[accounts.masto]\ntype = "mastodon"\ninstance = "{fake.url}"\n'
                    f'access_token = {{ env = "T_MASTO" }}\nposts_per_hour = 1000000\n')
        config = feed_config(tmp_path, {"blog": feed_server.url("/feed")}, accounts=accounts, feed_accounts='["masto"]')
        process = start_daemon(config, {"T_MASTO": token})
        try:
            wait_for(lambda: feed_polled(tmp_path, "blog"), what="baseline poll")
            nested, *behind = posts(4, start=1)
            nested["description"] = NESTED
            nested["date"] = min(item["date"] for item in behind) - timedelta(minutes=1)  # first in the queue
            feed_server.route("/feed", rss(behind + [nested] + posts(1)))
            wait_for(lambda: len(fake.statuses("writer")) == 4, timeout=60, what="all four new entries posted")
            code, err = stop(process)
        finally:
            if process.poll() is None:
                process.kill()
    assert code == 0, err
    assert "Traceback" not in err
    assert any("Deeply nested words." in status["text"] for status in fake.statuses("writer"))


def test_a_json_feed_with_lone_surrogates_and_odd_types_is_read_entry_by_entry(world):  # noqa: F811
    # JSON's "\ud800" escapes decode to lone surrogates, which no UTF-8 text holds: hashing the entry raised
    # UnicodeEncodeError and the whole poll died. Tags or attachments that are not lists raised TypeError.
    items = [{"id": "bad\\ud800", "url": "https://blog.example/1", "title": "Broken \\udc00 title",
              "content_html": "<p>x\\udfff</p>", "tags": 5, "attachments": 7},
             {"id": "good", "url": "https://blog.example/2", "title": "Fine", "content_html": "<p>ok</p>"}]
    document = ('{"version": "https://jsonfeed.org/version/1.1", "title": "J", "items": '
                + json.dumps(items).replace("\\\\u", "\\u") + "}")
    world.server.route("/feed.json", document, content_type="application/feed+json")
    world.server.route("/other", rss(posts(1)))
    config = world.config({"json": "/feed.json", "other": "/other"})
    report = {outcome.feed: outcome for outcome in world.poll(config).feeds}
    assert report["json"].outcome == "new" and report["json"].baseline == 2
    assert report["other"].baseline == 1
    titles = sorted(entry.title for _, entry, _ in world.state.entries_of_feed("json"))
    assert titles == ["Broken \ufffd title", "Fine"]
