"""Threads: the payload's rules, and the target against the Threads fake on 127.0.0.1 (tests/threads_fake):
one post per entry with its link preview, a lost answer settled by the stored container, the quota waited out,
the token refreshed for 59 simulated days, an expired token pausing the account with the steps."""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone

import httpx
import pytest
from click.testing import CliRunner

from bridge.errors import AuthError, PermanentPublishError, RateLimited, TransientPublishError
from bridge.model import Entry, ImageCandidate
from bridge.platforms.threads.account import ThreadsAccount
from bridge.platforms.threads.payload import MAX_CHARACTERS, MAX_LINKS, link_count, threads_length, threads_payload
from bridge.platforms.threads.target import ThreadsTarget
from bridge.platforms.threads.tokens import DAY
from bridge.redact import redact
from bridge.render import render_post
from bridge.state import State
from tests.render_corpus import settings
from tests.threads_fake import ThreadsFake

LINK = "https://blog.example.com/2026/12/on-bridges"


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def entry(n: int = 1, **fields) -> Entry:
    values = dict(key=f"tag:blog.example.com,2026:{n}", link=f"{LINK}-{n}", title=f"On bridges, part {n}",
                  summary_html="<p>Why a bridge should post each entry once, and only once, wherever it goes.</p>",
                  published=datetime(2026, 12, 1, tzinfo=timezone.utc), categories=["Engineering", "Python"])
    values.update(fields)
    return Entry(**values)


def payload_for(item: Entry, **overrides) -> dict:
    return threads_payload(render_post(item, settings("threads", **overrides)), settings("threads", **overrides))


# --- payload -------------------------------------------------------------------------------------------------


def test_a_text_post_has_teaser_permalink_link_preview_and_one_topic_tag():
    payload = payload_for(entry())
    assert payload["media_type"] == "TEXT"
    assert payload["text"].startswith("On bridges, part 1") and f"{LINK}-1" in payload["text"]
    assert payload["link_attachment"] == f"{LINK}-1"
    assert payload["text"].count("#") == 1 and "#Engineering" in payload["text"]  # one topic tag, the first


def test_a_long_summary_is_cut_to_500_characters_counting_emoji_as_their_bytes():
    long = "<p>" + " ".join(["Bridges carry 🚲 and people across rivers."] * 60) + "</p>"
    payload = payload_for(entry(summary_html=long))
    assert threads_length(payload["text"]) <= MAX_CHARACTERS
    assert len(payload["text"]) < MAX_CHARACTERS  # the emoji cost more than one each
    assert f"\n\n{LINK}-1\n\n#Engineering" in payload["text"]  # the permalink whole, the tag kept
    assert threads_length("👍") == 4 and threads_length("abc") == 3


def test_a_summary_full_of_links_is_cut_to_five_links():
    many = "<p>" + " ".join(f"See https://example.org/{n} for part {n}." for n in range(9)) + "</p>"
    payload = payload_for(entry(summary_html=many))
    assert link_count(payload["text"], payload["link_attachment"]) <= MAX_LINKS
    assert f"{LINK}-1" in payload["text"]


def test_an_attached_image_makes_an_image_post_with_its_public_url():
    item = entry(images=[ImageCandidate(url="https://cdn.example.com/cover.jpg", alt="A bridge", source="enclosure")])
    payload = payload_for(item, images="attach")
    assert payload["media_type"] == "IMAGE" and payload["image_url"] == "https://cdn.example.com/cover.jpg"
    assert payload["alt_text"] == "A bridge" and payload["link_attachment"] is None
    assert f"{LINK}-1" in payload["text"]


# --- the target against the fake ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fake():
    clock = Clock()
    with ThreadsFake(clock=clock) as server:
        server.test_clock = clock
        yield server


@pytest.fixture
def clock(fake):
    fake.test_clock.now += 400 * DAY  # every test's tokens and quota start afresh
    fake.clear_faults()
    return fake.test_clock


def account(fake) -> ThreadsAccount:
    return ThreadsAccount.model_validate({"type": "threads", "access_token": {"env": "T"}, "graph_url": fake.url})


def target_for(fake, state, token, clock) -> ThreadsTarget:
    return ThreadsTarget("threads", account(fake), token, state, clock=clock)


def writer(fake, clock, username: str, **token) -> tuple[str, State, ThreadsTarget]:
    """A new user of the fake (its long-lived token), an empty state, and the target bridge makes for it."""
    secret = fake.add_user(username, **token)
    state = State.open_memory()
    return secret, state, target_for(fake, state, secret, clock)


def queued(state: State, item: Entry, clock) -> object:
    state.ensure_feed("blog", "https://blog.example.com/feed")
    entry_id = state.add_entry("blog", item, "new", "hash", [], clock())
    delivery_id = state.add_delivery(entry_id, "threads", idempotency_key=item.key, rkey=None, now=clock())
    return state.get_delivery(delivery_id)


def test_an_entry_is_posted_once_with_its_link_preview_and_permalink(fake, clock):
    token, state, target = writer(fake, clock, "writer1")
    delivery = queued(state, entry(), clock)
    payload = payload_for(entry())
    published = target.publish(delivery, payload)
    [post] = fake.posts(token)
    assert post["id"] == published.remote_id and post["permalink"] == published.url
    assert post["link_attachment_url"] == f"{LINK}-1"
    assert fake.media[post["id"]]["_topic"] == "Engineering"
    assert state.threads_container(delivery.id) is not None  # stored before it was published


def test_a_lost_answer_after_publish_resolves_to_one_post(fake, clock):
    token, state, target = writer(fake, clock, "writer2")
    delivery = queued(state, entry(2), clock)
    payload = payload_for(entry(2))
    state.set_payload(delivery.id, payload)
    delivery = state.get_delivery(delivery.id)
    fake.inject("POST /v1.0/{user}/threads_publish", "lost")
    with pytest.raises(TransientPublishError):
        target.publish(delivery, payload)
    assert len(fake.posts(token)) == 1  # it was made; bridge did not hear
    found = target.find_existing(delivery)  # what the engine asks before trying again
    [post] = fake.posts(token)
    assert found is not None and found.remote_id == post["id"] and found.url == post["permalink"]
    # and publishing again (a forced retry) does not post twice either
    assert target.publish(delivery, payload).remote_id == post["id"]
    assert len(fake.posts(token)) == 1


def test_a_failed_create_then_retry_posts_once(fake, clock):
    token, state, target = writer(fake, clock, "writer3")
    delivery = queued(state, entry(3), clock)
    fake.inject("POST /v1.0/{user}/threads", 503)
    with pytest.raises(TransientPublishError):
        target.publish(delivery, payload_for(entry(3)))
    assert target.find_existing(delivery) is None
    target.publish(delivery, payload_for(entry(3)))
    assert len(fake.posts(token)) == 1


def test_an_expired_container_is_replaced_never_published_twice(fake, clock):
    token, state, target = writer(fake, clock, "writer4")
    delivery = queued(state, entry(4), clock)
    fake.inject("POST /v1.0/{user}/threads_publish", 503)
    with pytest.raises(TransientPublishError):
        target.publish(delivery, payload_for(entry(4)))
    first = state.threads_container(delivery.id)["container_id"]
    clock.now += 2 * DAY  # the container expired unpublished (and the token is refreshed on the way)
    target.publish(delivery, payload_for(entry(4)))
    assert state.threads_container(delivery.id)["container_id"] != first
    assert len(fake.posts(fake.users[fake.tokens[token].user_id].id)) == 1


def test_quota_exhausted_then_resumed_none_lost(fake, clock):
    token = fake.add_user("writer5")
    fake.quota_total = 3
    try:
        state = State.open_memory()
        target = target_for(fake, state, token, clock)
        rows = [queued(state, entry(10 + n), clock) for n in range(5)]
        posted = []
        for row in rows[:3]:
            published = target.publish(row, payload_for(entry(10 + rows.index(row))))
            state.mark_posted(row.id, published.remote_id, published.url, clock())
            posted.append(published)
            clock.now += 60
        with pytest.raises(RateLimited) as waiting:
            target.publish(rows[3], payload_for(entry(13)))
        first_posted = state.posted_times_since("threads", 0)[0]
        assert waiting.value.retry_at.timestamp() == pytest.approx(first_posted + DAY)
        assert "none is lost" in str(waiting.value)
        assert len(fake.posts(token)) == 3 and state.threads_container(rows[3].id) is None  # nothing sent
        clock.now = waiting.value.retry_at.timestamp() + 1  # the first post left the window: one slot
        published = target.publish(rows[3], payload_for(entry(13)))
        state.mark_posted(rows[3].id, published.remote_id, published.url, clock())
        with pytest.raises(RateLimited) as again:
            target.publish(rows[4], payload_for(entry(14)))
        assert again.value.retry_at.timestamp() == pytest.approx(first_posted + 60 + DAY)
        clock.now = again.value.retry_at.timestamp() + 1
        target.publish(rows[4], payload_for(entry(14)))
        assert [post["text"].split("\n")[0] for post in fake.posts(token)] == [f"On bridges, part {n}" for n in range(10, 15)]
    finally:
        fake.quota_total = 250


def test_the_token_is_refreshed_across_59_days_and_stored_not_logged(fake, clock, caplog):
    token, state, target = writer(fake, clock, "writer6", issued_at=clock())
    seen = {token}
    for day in range(59):
        target.publish(queued(state, entry(100 + day), clock), payload_for(entry(100 + day)))
        kept = json.loads(state.load_session("threads"))
        seen.add(kept["token"])
        assert kept["expires_at"] > clock() + 58 * DAY  # never near the end
        clock.now += DAY
    assert len(fake.posts(token)) == 59
    assert len(seen) >= 58  # a new token nearly every day (refreshed once each is a day old)
    clock.now += 2 * DAY
    assert fake.tokens[token].expires_at < clock()  # the first token is dead by now; bridge still posts
    target.publish(queued(state, entry(999), clock), payload_for(entry(999)))
    for secret in seen:
        assert secret not in caplog.text and redact(f"token {secret}") == "token [redacted]"


def test_an_expired_token_pauses_the_account_with_the_steps(fake, clock):
    token, state, target = writer(fake, clock, "writer7", issued_at=clock())
    target.user()
    clock.now += 61 * DAY  # nobody ran bridge for two months
    with pytest.raises(AuthError) as paused:
        target.publish(queued(state, entry(7), clock), payload_for(entry(7)))
    assert "bridge login threads" in paused.value.fix and "bridge resume threads" in paused.value.fix
    assert token not in str(paused.value)


def test_a_revoked_token_is_an_auth_error_and_an_invalid_post_keeps_metas_words(fake, clock):
    token, state, target = writer(fake, clock, "writer8")
    with pytest.raises(PermanentPublishError) as refused:
        target.publish(queued(state, entry(8), clock), {"media_type": "TEXT", "text": "", "link_attachment": None})
    assert "Param text is required" in str(refused.value) and refused.value.not_posted
    fake.revoke(token)
    other = target_for(fake, State.open_memory(), token, clock)
    with pytest.raises(AuthError):
        other.publish(queued(other.state, entry(9), clock), payload_for(entry(9)))


def test_an_image_meta_cannot_fetch_fails_with_its_reason(fake, clock):
    token, state, target = writer(fake, clock, "writer9")
    payload = {"media_type": "IMAGE", "text": f"Photo {LINK}", "image_url": "http://127.0.0.1/private.jpg",
               "alt_text": None, "link_attachment": None}
    delivery = queued(state, entry(20), clock)
    with pytest.raises(PermanentPublishError, match="FAILED_DOWNLOADING_IMAGE"):
        target.publish(delivery, payload)
    assert fake.posts(token) == []


def test_status_shows_the_token_expiry_and_quota(fake, clock):
    from bridge.platforms.threads.status import account_status, status_text

    token, state, target = writer(fake, clock, "writer10")
    diagnosis = target.diagnose()
    assert diagnosis["account"] == "@writer10" and diagnosis["token_expires_at"] > clock() + 59 * DAY
    lines = status_text(account_status("threads", None, state.account("threads")))
    assert any("token valid until" in line for line in lines) and any("0/250" in line for line in lines)
    assert not any(token in line for line in lines)


def test_login_walks_the_code_flow_and_writes_a_0600_long_lived_token(fake, clock, tmp_path, monkeypatch):
    from bridge.platforms.threads.login import threads

    fake.add_user("writer11")
    user_id = next(user.id for user in fake.users.values() if user.username == "writer11")
    code = fake.authorization_code(user_id)
    monkeypatch.setenv("THREADS_APP_SECRET", fake.APP_SECRET)
    path = tmp_path / "threads-token"
    result = CliRunner().invoke(threads, ["--app-id", fake.APP_ID, "--write-token", str(path), "--graph-url", fake.url],
                                input=f"{code}#_\n")
    assert result.exit_code == 0, result.output
    token = path.read_text().strip()
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert fake.tokens[token].kind == "long" and token not in result.output
    assert "threads.net/oauth/authorize?client_id=990602627938098" in result.output


def test_edit_on_update_is_refused_with_the_reason():
    from bridge.config import ConfigError, parse_config

    with pytest.raises(ConfigError) as refused:
        parse_config({"accounts": {"th": {"type": "threads", "edit_on_update": True}}})
    assert "cannot edit" in str(refused.value)


@pytest.mark.parametrize("code, status, raised", [
    (190, 400, AuthError), (10, 400, AuthError), (4, 400, RateLimited), (17, 400, RateLimited),
    (32, 400, RateLimited), (613, 400, RateLimited), (2, 500, TransientPublishError), (100, 400, PermanentPublishError),
])
def test_metas_error_codes_map_into_bridges_error_tree(fake, clock, code, status, raised):
    token, state, target = writer(fake, clock, f"codes{code}")
    body = {"error": {"message": f"Meta says no ({code})", "type": "OAuthException", "code": code, "fbtrace_id": "A1"}}
    fake.inject("POST /v1.0/{user}/threads", ("answer", status, body))
    with pytest.raises(raised) as error:
        target.publish(queued(state, entry(code), clock), payload_for(entry(code)))
    assert type(error.value) is raised
    assert f"Meta says no ({code})" in str(error.value)
    assert fake.posts(token) == []


def test_a_text_refused_as_too_long_is_rendered_again_shorter(fake, clock):
    from bridge.errors import TooLong
    from bridge.platforms.threads.payload import payload as platform_payload
    from bridge.platforms.base import PayloadInputs

    token, state, target = writer(fake, clock, "toolong")
    fake.inject("POST /v1.0/{user}/threads", ("answer", 400, {"error": {
        "message": "The text is too long: it exceeds the maximum of 500 characters.", "type": "THApiException",
        "code": 100, "fbtrace_id": "A2"}}))
    long = entry(31, summary_html="<p>" + "A sentence about bridges and rivers. " * 40 + "</p>")
    with pytest.raises(TooLong):
        target.publish(queued(state, long, clock), payload_for(long))
    post = render_post(long, settings("threads"))
    strict = platform_payload(post, settings("threads"), PayloadInputs(target.render_limits(strict=True), None,
                                                                       lambda url: None))
    assert threads_length(strict["text"]) <= MAX_CHARACTERS - 25 < threads_length(payload_for(long)["text"])


def test_login_takes_the_app_id_and_secret_from_the_accounts_config(fake, clock, tmp_path, monkeypatch):
    from bridge.cli import cli

    fake.add_user("writer12")
    user_id = next(user.id for user in fake.users.values() if user.username == "writer12")
    secret_file = tmp_path / "app-secret"
    secret_file.write_text(fake.APP_SECRET + "\n")
    config = tmp_path / "config.toml"
    config.write_text(f'[bridge]\nstate = "{tmp_path}/state.sqlite3"\n[accounts.th]\ntype = "threads"\n'
                      f'app_id = "{fake.APP_ID}"\napp_secret = {{ file = "{secret_file}" }}\ngraph_url = "{fake.url}"\n')
    monkeypatch.delenv("THREADS_APP_SECRET", raising=False)
    result = CliRunner().invoke(cli, ["--config", str(config), "login", "threads", "--account", "th", "--print"],
                                input=f"{fake.authorization_code(user_id)}\n", env={"BRIDGE_CONFIG": None})
    assert result.exit_code == 0, result.output
    assert f"client_id={fake.APP_ID}" in result.output and "app secret" not in result.output.lower()
    token = next(line for line in result.output.splitlines() if line.startswith("TH"))
    assert fake.tokens[token].kind == "long" and fake.APP_SECRET not in result.output


def test_a_pasted_address_from_another_login_or_a_refusal_is_refused():
    import click

    from bridge.platforms.threads.login import read_code

    assert read_code("https://localhost/?code=AQBx-hBsH3&state=s1#_", "s1") == "AQBx-hBsH3"
    assert read_code("AQBx-hBsH3#_", "s1") == "AQBx-hBsH3"
    with pytest.raises(click.ClickException, match="another login attempt"):
        read_code("https://localhost/?code=AQBx&state=other", "s1")
    with pytest.raises(click.ClickException, match="Threads refused: Permissions error"):
        read_code("https://localhost/?error=access_denied&error_description=Permissions+error&state=s1", "s1")


def test_a_refresh_meta_fails_keeps_the_old_token_and_tries_again(fake, clock, caplog):
    token, state, target = writer(fake, clock, "writer13", issued_at=clock())
    target.user()
    clock.now += 2 * DAY
    fake.inject("GET /refresh_access_token", 503)
    target.publish(queued(state, entry(40), clock), payload_for(entry(40)))  # posted with the old token
    assert json.loads(state.load_session("threads"))["token"] == token
    assert "could not refresh the Threads token" in caplog.text and token not in caplog.text
    target.publish(queued(state, entry(41), clock), payload_for(entry(41)))  # not asked again at once
    assert json.loads(state.load_session("threads"))["token"] == token
    clock.now += 3601  # an hour later it is
    target.publish(queued(state, entry(42), clock), payload_for(entry(42)))
    assert json.loads(state.load_session("threads"))["token"] != token
    assert len(fake.posts(token)) == 3


def test_through_the_cli_the_quota_holds_the_rest_of_the_queue_and_status_shows_it(tmp_path, feed_server):
    from bridge.cli import cli
    from tests.contract.test_contract import logging_as_it_was
    from tests.test_pipeline import posts, rss

    with ThreadsFake() as server:  # real time: bridge runs as a writer runs it
        server.quota_total = 2
        token = server.add_user("busywriter")
        config = tmp_path / "config.toml"
        config.write_text(f'[bridge]\nstate = "{tmp_path}/state.sqlite3"\nallow_private_addresses = true\n'
                          f'[accounts.th]\ntype = "threads"\naccess_token = {{ env = "TH_TOKEN" }}\n'
                          f'graph_url = "{server.url}"\nposts_per_hour = 1000000\nposts_per_day = 1000000\n'
                          f'[[feeds]]\nname = "blog"\nurl = "{feed_server.url("/threads-feed")}"\naccounts = ["th"]\n')
        items = posts(4)

        def run(*args):
            with logging_as_it_was():
                return CliRunner().invoke(cli, ["--config", str(config), *args], env={"TH_TOKEN": token,
                                                                                      "BRIDGE_CONFIG": None})
        feed_server.route("/threads-feed", rss(items[-1:]))
        assert run("poll", "--feed", "blog").exit_code == 0  # the baseline
        feed_server.route("/threads-feed", rss(items))
        started = time.time()
        for _ in range(10):  # as a timer polls: each pass sends what its pacing allows (a post every few ms here)
            done = run("poll", "--feed", "blog")
            if len(server.posts(token)) == 2:
                break
            time.sleep(0.1)
        assert len(server.posts(token)) == 2, done.output
        run("poll", "--feed", "blog")  # the third meets the used-up quota
        creates = len([line for _at, line in server.seen if line.endswith("/threads") and line.startswith("POST")])
        run("poll", "--feed", "blog")  # nothing is sent while the quota is used up
        assert len([line for _at, line in server.seen if line.endswith("/threads") and line.startswith("POST")]) == creates
        status = json.loads(run("status", "--json").output)["accounts"][0]
        assert (status["posted"], status["queued"], status["failed"]) == (2, 1, 0)
        deferred = datetime.fromisoformat(status["deferred_until"].replace("Z", "+00:00")).timestamp()
        assert started + DAY - 5 < deferred <= time.time() + DAY  # when the first post leaves the 24 hours
        assert status["quota"]["quota_usage"] == 2 and status["quota"]["quota_total"] == 2
        assert token not in json.dumps(status)


def test_an_answer_that_drips_is_cut_at_the_deadline_and_settled_by_the_container(fake, clock):
    from tests.dripproxy import DripProxy

    token = fake.add_user("writer14")
    state = State.open_memory()
    with DripProxy(fake.url, drip_on="/threads_publish HTTP", interval=0.5) as proxy:
        settings = ThreadsAccount.model_validate({"type": "threads", "access_token": {"env": "T"}, "graph_url": proxy.url})
        target = ThreadsTarget("threads", settings, token, state, total_timeout=2, clock=clock)
        delivery = queued(state, entry(50), clock)
        with pytest.raises(TransientPublishError, match="did not answer"):
            target.publish(delivery, payload_for(entry(50)))  # the post was made; its answer never finished
        proxy.drip_on = None
        assert target.find_existing(delivery).remote_id == fake.posts(token)[0]["id"]
    assert len(fake.posts(token)) == 1


def test_a_quota_used_up_by_other_apps_is_looked_at_again_in_an_hour(fake, clock):
    token, state, target = writer(fake, clock, "writer15")
    user_id = fake.tokens[token].user_id
    fake.quota_total = 1
    try:
        with httpx.Client(base_url=fake.url) as http:  # a post made elsewhere (the app, another tool)
            container = http.post(f"/v1.0/{user_id}/threads", data={"media_type": "TEXT", "text": "by hand",
                                                                      "access_token": token}).json()["id"]
            http.post(f"/v1.0/{user_id}/threads_publish", data={"creation_id": container, "access_token": token})
        with pytest.raises(RateLimited) as waiting:
            target.publish(queued(state, entry(60), clock), payload_for(entry(60)))
        assert waiting.value.retry_at.timestamp() == pytest.approx(clock() + 3600)
    finally:
        fake.quota_total = 250


def test_login_can_catch_the_code_on_a_loopback_port(fake, clock, tmp_path):
    import os
    import re
    import socket
    import subprocess
    import sys

    fake.add_user("writer16")
    user_id = next(user.id for user in fake.users.values() if user.username == "writer16")
    with socket.socket() as probe:  # a free port for the listener
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "THREADS_APP_SECRET": fake.APP_SECRET}
    env.pop("BRIDGE_CONFIG", None)
    login = subprocess.Popen([sys.executable, "-m", "bridge", "--config", str(tmp_path / "none.toml"), "login", "threads",
                              "--app-id", fake.APP_ID, "--print", "--listen", str(port), "--graph-url", fake.url],
                             env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        address = ""
        while "state=" not in address:
            address = login.stderr.readline()
            assert address, "bridge login ended before printing the address"
        assert f"redirect_uri=http%3A%2F%2Flocalhost%3A{port}%2F" in address
        state = re.search(r"state=([\w-]+)", address).group(1)
        for _ in range(50):  # the browser, sent back by Threads
            try:
                answer = httpx.get(f"http://127.0.0.1:{port}/?code={fake.authorization_code(user_id)}&state={state}#_")
                break
            except httpx.ConnectError:
                time.sleep(0.1)
        assert "you can close this tab" in answer.text
        out, err = login.communicate(timeout=60)
    finally:
        login.kill()
    assert login.returncode == 0, err
    assert fake.tokens[out.strip().splitlines()[0]].kind == "long"


def test_a_quiet_blog_keeps_its_token_alive_and_an_expired_one_pauses_the_account(fake, clock, tmp_path):
    from bridge.config import load_config
    from bridge.delivery import Deliverer

    token, state, target = writer(fake, clock, "quietwriter", issued_at=clock())
    path = tmp_path / "config.toml"
    path.write_text(f'[bridge]\nstate = "{tmp_path}/state.sqlite3"\n[accounts.threads]\ntype = "threads"\n'
                    f'access_token = {{ env = "T" }}\ngraph_url = "{fake.url}"\n')
    deliverer = Deliverer(load_config(path), state, target_factory=lambda account: target, payload_builder=None,
                          clock=clock)
    for _ in range(70):  # nothing to post for ten weeks; the delivery passes go on
        clock.now += DAY
        deliverer.deliver_due()
        assert json.loads(state.load_session("threads"))["expires_at"] > clock() + 58 * DAY
    assert fake.tokens[token].expires_at < clock() and not state.account("threads")["paused_reason"]

    clock.now += 61 * DAY  # bridge was not run for two months: the kept token died
    report = deliverer.deliver_due()
    assert "the Threads access token expired" in state.account("threads")["paused_reason"]
    assert report.accounts[0].paused
