"""Issue 13, defect 1: one entry, feed or account that trips an unexpected error never stops the others.

The e2e test is the reported case through the real CLI, the Mastodon fake and the real PDS: an RSS entry of
600 unclosed <b> tags (RecursionError in HTML-to-text: `bridge poll` died and posted nothing, on any account).
The others give each step a failure nobody planned for and check that it lands, readable, on its own entry.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from bridge.pipeline import Poller
from bridge.state import State
from bridge.status import collect_status, render_status_text
from tests.mastodon_fake import MastodonFake
from tests.test_crash_matrix import list_posts
from tests.test_delivery import _config, drain, env  # noqa: F401  (env is a fixture)
from tests.test_pipeline import posts, rss, world  # noqa: F401  (world is a fixture)

ROOT = Path(__file__).resolve().parent.parent
NESTED = "<![CDATA[<p>Opening words.</p>" + "<b>" * 600 + "Deeply nested words.]]>"


def bridge(config: Path, *args: str, env: dict) -> subprocess.CompletedProcess:
    full_env = {**os.environ, **env}
    full_env.pop("BRIDGE_CONFIG", None)
    return subprocess.run([sys.executable, "-m", "bridge", "--config", str(config), *args], cwd=ROOT, env=full_env,
                          capture_output=True, text=True, timeout=180)


def test_nested_tags_entry_beside_a_normal_feed_posts_everything_on_both_accounts(tmp_path, feed_server, pds):
    sky = pds.create_account("nested")
    with MastodonFake() as fake:
        token = fake.add_account("writer")
        config = tmp_path / "config.toml"
        config.write_text(
            f'[bridge]\nstate = "{tmp_path}/s.sqlite3"\n'
            f'[accounts.masto]\ntype = "mastodon"\ninstance = "{fake.url}"\naccess_token = {{ env = "T_MASTO" }}\n'
            f'posts_per_hour = 3600\n'
            f'[accounts.sky]\ntype = "bluesky"\nhandle = "{sky.handle}"\nservice = "{pds.url}"\n'
            f'app_password = {{ env = "T_SKY" }}\nposts_per_hour = 3600\n'
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
        bluesky_texts = [record["value"]["text"] for record in list_posts(pds, sky.did)]
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

    def parse(self, result):
        if result.url.endswith("/broken"):
            raise RecursionError("maximum recursion depth exceeded while calling a Python object")
        return super().parse(result)


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
