"""The Mastodon target against the fake Mastodon server (tests/mastodon_fake), on loopback; no mocks.

Covers what the target promises (bridge/platforms/mastodon/target.py): statuses as rendered, instance limits, images,
the error mapping, diagnose(); and, through the delivery engine, the unknown outcomes (lost answers, rows left
in `sending`, outcomes older than the Idempotency-Key window), 429 deferral and token revocation.
Run with -s to see the measured numbers (posts per second, the corpus length runs).
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace

import httpx
import pytest

from bridge.compose import Composer
from bridge.config import Config, FeedConfig, parse_config, resolve_secret
from bridge.delivery import Deliverer
from bridge.errors import AuthError, PermanentPublishError, RateLimited, TransientPublishError
from bridge.ids import idempotency_key
from bridge.model import Entry, ImageCandidate
from bridge.platforms.mastodon.limits import MastodonLimits
from bridge.platforms.mastodon.payload import mastodon_payload
from bridge.platforms.mastodon.target import IDEMPOTENCY_WINDOW, MastodonTarget
from bridge.render import render_post
from bridge.state import DeliveryRow, State
from bridge.status import collect_status, render_status_text
from bridge.wiring import make_target
from tests.feedserver import png_bytes
from tests.mastodon_fake import MastodonFake, status_length, tiny_png
from tests.render_corpus import corpus_files, load_feed, requires_corpus, settings

ACCOUNT = "masto"
TOKEN_ENV = "BRIDGE_TEST_MASTODON_TOKEN"
WRITE_ONLY = ["write:statuses", "write:media"]
WITH_READ = WRITE_ONLY + ["read:accounts", "read:statuses"]
GENEROUS = {"statuses": (100_000, 10800), "per_token": (100_000, 300), "per_user": (100_000, 300),
            "media": (10_000, 1800)}


# --------------------------------------------------------------------------- wiring


class Clock:
    """The engine's and the target's clock; tests move it together with the fake's. Every reading moves it
    on by a millisecond, so that flood control's spacing (posts_per_hour) sees time pass between posts."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        self.now += 0.001
        return self.now


@pytest.fixture
def fake():
    server = MastodonFake(rate_limits=GENEROUS)
    server.start()
    yield server
    errors = server.errors
    server.stop()
    assert not errors, errors[0]["exception"]


@pytest.fixture
def state(tmp_path):
    with State.open(tmp_path / "state.sqlite3") as opened:
        yield opened


def make_config(fake, monkeypatch, token: str, bridge: dict | None = None, **account) -> Config:
    monkeypatch.setenv(TOKEN_ENV, token)
    return parse_config({"bridge": bridge or {}, "accounts": {ACCOUNT: {"type": "mastodon", "instance": fake.url,
                                                "access_token": {"env": TOKEN_ENV}, "posts_per_hour": 10**12,
                                                "posts_per_day": 10**13, **account}}})


def new_target(config: Config, state: State, **kwargs) -> MastodonTarget:
    """As make_target builds it, with the test's clock, no sleeping and short timeouts."""
    kwargs.setdefault("sleep", lambda seconds: None)
    kwargs.setdefault("timeout", (2.0, 2.0))
    return MastodonTarget(ACCOUNT, config.accounts[ACCOUNT], resolve_secret(config, ACCOUNT), state, **kwargs)


def payload(text: str, **extra) -> dict:
    return {"status": text, "spoiler_text": "", "visibility": "public", "language": "en", "media": [], **extra}


def queue(state: State, number: int, *, link: str | None = None, payload: dict | None = None,
          now: float | None = None) -> DeliveryRow:
    """One queued delivery of a new entry, the way the poller queues it."""
    key = f"entry-{number}"
    link = link or f"https://blog.example.com/posts/{number}"
    now = time.time() if now is None else now
    entry_id = state.add_entry("blog", Entry(key=key, link=link, title=f"Post {number}"), "new", "h", [], now)
    row_id = state.add_delivery(entry_id, ACCOUNT, idempotency_key=idempotency_key(ACCOUNT, "blog", key), rkey=None,
                                now=now, payload=payload)
    return state.get_delivery(row_id)


def engine(config: Config, state: State, clock: Clock, **target_kwargs) -> Deliverer:
    return Deliverer(config, state, clock=clock,
                     target_factory=lambda name: new_target(config, state, clock=clock, **target_kwargs),
                     payload_builder=lambda row, target: pytest.fail("the payload was stored with the row"))


def creates(fake) -> list[dict]:
    return fake.requests("status_create")


def early_in_a_rate_limit_window(fake, period: int) -> None:
    """Move the fake's clock to just after a window starts, so that no window ends in the middle of a test."""
    fake.clock.set((int(fake.clock.now()) // period + 1) * period + 5)


def post_directly(fake, token: str, text: str) -> None:
    """A status made by another app of the same user (the web UI, a phone)."""
    response = httpx.post(f"{fake.url}/api/v1/statuses", data={"status": text},
                          headers={"Authorization": f"Bearer {token}"}, trust_env=False, timeout=10)
    assert response.status_code == 200, response.text


# --------------------------------------------------------------------------- the post itself


def test_status_goes_out_as_rendered_with_the_idempotency_key(fake, state, monkeypatch):
    config = make_config(fake, monkeypatch, fake.add_account("alice", WRITE_ONLY))
    target = new_target(config, state)
    text = "Ein Titel\n\nEtwas Text, mit Umlauten: äöü 🚀\n\nhttps://blog.example.com/2026/ein-titel?a=1&b=2\n\n#Tag"
    row = queue(state, 1)
    published = target.publish(row, payload(text, spoiler_text="Politik", visibility="unlisted", language="de"))
    [status] = fake.statuses("alice")
    assert status["text"] == text and status["spoiler_text"] == "Politik"
    assert status["visibility"] == "unlisted" and status["language"] == "de"
    assert status["sensitive"] is True  # 4.7.3 no longer implies it from the CW: bridge says it
    assert published.remote_id == status["id"] and isinstance(published.remote_id, str)
    assert published.url == status["url"]
    assert creates(fake)[0]["headers"]["idempotency-key"] == row.idempotency_key
    # the same delivery again (a retry): the original status, not a second one
    assert target.publish(row, payload(text)) == published
    assert len(fake.statuses("alice")) == 1


def test_limits_come_from_the_instance_cached_a_day_v1_as_fallback(state, monkeypatch):
    with MastodonFake(max_characters=11000, characters_reserved_per_url=30, description_limit=None,
                      version="4.5.1") as fake:
        config = make_config(fake, monkeypatch, fake.add_account("alice", WRITE_ONLY))
        clock = Clock()
        target = new_target(config, state, clock=clock)
        limits = target.render_limits()
        assert limits["max_characters"] == 11000 and limits["characters_reserved_per_url"] == 30
        assert limits["description_limit"] == 1500 and limits["version"] == "4.5.1"  # absent: Mastodon's 1500
        assert MastodonLimits.from_dict(limits) == MastodonLimits(11000, 30, 4, 1500)
        fake.set_limits(max_characters=640)
        assert new_target(config, state, clock=clock).render_limits()["max_characters"] == 11000  # cached
        assert len(fake.requests("instance")) == 1
        clock.now += 86400 + 1
        assert new_target(config, state, clock=clock).render_limits()["max_characters"] == 640
        # v2 broken (a fork, a proxy): v1 answers
        clock.now += 86400 + 1
        fake.set_limits(max_characters=700)
        fake.inject("instance_v2", 503)
        assert new_target(config, state, clock=clock).render_limits()["max_characters"] == 700
        # both down: the stale cache serves; without any cache the delivery waits (transient)
        clock.now += 86400 + 1
        fake.inject("instance", 503, times=2)
        assert new_target(config, state, clock=clock).render_limits()["max_characters"] == 700
        state.save_limits(ACCOUNT, {}, 0)
        fake.inject("instance", 503, times=2)
        with pytest.raises(TransientPublishError):
            new_target(config, state, clock=clock).render_limits()


def test_a_server_without_instance_endpoints_gets_mastodons_defaults_counted_carefully_said_once(
        fake, state, monkeypatch, caplog):
    config = make_config(fake, monkeypatch, fake.add_account("alice", WRITE_ONLY), instance=fake.url + "/not-mastodon")
    clock = Clock()
    with caplog.at_level(logging.INFO, logger="bridge.mastodon"):
        limits = new_target(config, state, clock=clock).render_limits()  # every path under /not-mastodon is a 404
        clock.now += 86400 + 1
        assert new_target(config, state, clock=clock).render_limits()["source"] == "defaults"  # read again a day on
    # Mastodon's numbers, but software nobody knows: code points, URLs in full
    assert MastodonLimits.from_dict(limits) == MastodonLimits(counting="codepoints", urls_in_full=True)
    assert limits["version"] is None and limits["profile"] == "unknown" and limits["source"] == "defaults"
    said = [r for r in caplog.records if "default limits" in r.getMessage()]
    assert [r.levelno for r in said] == [logging.WARNING, logging.INFO]  # a warning once, not every day
    assert "/api/v2/instance nor /api/v1/instance" in said[0].getMessage()
    shown = render_status_text(collect_status(config, state))  # and `bridge status` says it
    assert "limits: Mastodon's defaults -- the server answers neither /api/v2/instance nor /api/v1/instance" in shown
    assert "server: not known (profile unknown), max 500 characters counted in codepoints, URLs in full" in shown


def test_limits_cached_for_another_instance_are_not_used(fake, state, monkeypatch):
    config = make_config(fake, monkeypatch, fake.add_account("alice", WRITE_ONLY))
    state.save_limits(ACCOUNT, {"max_characters": 99999, "instance": "https://elsewhere.example"}, time.time())
    assert new_target(config, state).render_limits()["max_characters"] == 500


# --------------------------------------------------------------------------- errors


def test_422_is_permanent_with_the_servers_message(fake, state, monkeypatch):
    target = new_target(make_config(fake, monkeypatch, fake.add_account("alice", WRITE_ONLY)), state)
    with pytest.raises(PermanentPublishError, match="Text character limit of 500 exceeded"):
        target.publish(queue(state, 1), payload("x" * 501))
    with pytest.raises(PermanentPublishError, match="visibility"):
        target.publish(queue(state, 2), payload("hi", visibility="friends"))
    with pytest.raises(PermanentPublishError, match="HTTP 422.*blank"):
        target.publish(queue(state, 3), payload("   "))
    assert fake.statuses("alice") == []


@pytest.mark.parametrize("fault", ["500", "502", "503", "drop", "slow"])
def test_server_trouble_is_transient(fake, state, monkeypatch, fault):
    target = new_target(make_config(fake, monkeypatch, fake.add_account("alice", WRITE_ONLY)), state,
                        timeout=(1.0, 0.5))
    fake.inject("status_create", fault, seconds=2.0)
    started = time.monotonic()
    with pytest.raises(TransientPublishError) as info:
        target.publish(queue(state, 1), payload("hello"))
    assert not isinstance(info.value, RateLimited)
    assert time.monotonic() - started < 5  # the short timeout, not Mastodon.py's 300 s


def test_unreachable_instance_is_transient(state, monkeypatch):
    with MastodonFake() as gone:
        config = make_config(gone, monkeypatch, "some-token")
    with pytest.raises(TransientPublishError, match="unreachable"):
        new_target(config, state).publish(queue(state, 1), payload("hello"))


def test_revoked_and_unscoped_tokens_are_auth_errors_with_the_fix(fake, state, monkeypatch):
    token = fake.add_account("alice", WRITE_ONLY)
    fake.revoke(token)
    with pytest.raises(AuthError) as revoked:
        new_target(make_config(fake, monkeypatch, token), state).publish(queue(state, 1), payload("hello"))
    assert "401" in str(revoked.value) and "write:statuses write:media" in revoked.value.fix
    assert f"accounts.{ACCOUNT}.access_token" in revoked.value.fix
    read_only = fake.add_token("alice", ["read"])
    with pytest.raises(AuthError, match="403"):
        new_target(make_config(fake, monkeypatch, read_only), state).publish(queue(state, 2), payload("hello"))


def test_takahes_400_invalid_bearer_token_pauses_the_account_while_its_400_refusals_still_fail_the_post(
        state, monkeypatch):
    # Takahē answers an unknown or revoked token with 400 and the plain text "Invalid Bearer token" before any view
    # (jointakahe/takahe api/middleware.py ApiTokenMiddleware); its refusals of a post are 400 too, in JSON
    with MastodonFake(profile="takahe", rate_limits=GENEROUS) as takahe:
        token = takahe.add_account("alice", ["read", "write"])
        config = make_config(takahe, monkeypatch, token)
        clock = Clock()
        deliverer = engine(config, state, clock)
        refused = queue(state, 1, payload=payload(""), now=clock.now)
        assert deliverer.deliver_due().accounts[0].paused is None
        assert state.get_delivery(refused.id).state == "failed"
        assert "Status is empty" in state.get_delivery(refused.id).last_error
        takahe.revoke(token)
        row = queue(state, 2, payload=payload("after the new token"), now=clock.now)
        report = deliverer.deliver_due().accounts[0]
        assert report.paused and "write:statuses" in report.paused
        assert "Invalid Bearer token" in state.account(ACCOUNT)["paused_reason"]
        assert state.get_delivery(row.id).state == "pending"  # kept for after the fix
        monkeypatch.setenv(TOKEN_ENV, takahe.add_token("alice", ["read", "write"]))
        assert deliverer.deliver_due().posted == 1
        deliverer.close()
        # doctor with a revoked token on a server it has not read yet: the instance document is refused too, and
        # that is the token's fault, not a server without limits
        with State.open(state.path.parent / "fresh.sqlite3") as fresh:
            with pytest.raises(AuthError, match="Invalid Bearer token"):
                make_target(make_config(takahe, monkeypatch, token), fresh, ACCOUNT).diagnose()
            assert fresh.account(ACCOUNT)["limits"] is None


def test_a_400_that_only_mentions_a_token_is_not_a_refused_token():
    from bridge.platforms.mastodon.servers import refuses_token

    assert refuses_token(400, "Invalid Bearer token") and refuses_token(400, " invalid bearer token\n")
    assert refuses_token(401, "The access token is invalid")
    # a refusal that quotes a post's words, or a proxy's page, is the post's or the proxy's problem
    assert not refuses_token(400, "Status is too long: Invalid Bearer token")
    assert not refuses_token(400, "<html><body>400 Bad Request</body></html>")
    assert not refuses_token(422, "Invalid Bearer token") and not refuses_token(400, None)


def test_429_is_rate_limited_until_the_reset(fake, state, monkeypatch):
    target = new_target(make_config(fake, monkeypatch, fake.add_account("alice", WRITE_ONLY)), state)
    fake.set_limits(statuses=(1, 3600))
    early_in_a_rate_limit_window(fake, 3600)
    target.publish(queue(state, 1), payload("one"))
    before = time.time()
    with pytest.raises(RateLimited) as info:
        target.publish(queue(state, 2), payload("two"))
    window_end = (int(fake.clock.now()) // 3600 + 1) * 3600
    assert abs(info.value.retry_at.timestamp() - (before + window_end - fake.clock.now())) < 3


def test_lost_answer_then_retry_returns_the_same_status(fake, state, monkeypatch):
    target = new_target(make_config(fake, monkeypatch, fake.add_account("alice", WRITE_ONLY)), state)
    row = queue(state, 1)
    fake.inject("status_create", "lost")
    with pytest.raises(TransientPublishError):
        target.publish(row, payload("said once"))
    assert len(fake.statuses("alice")) == 1  # it was made; the answer never came
    state.mark_sending(row.id, time.time())
    row = state.get_delivery(row.id)
    assert target.find_existing(row) is None  # within the window: the key makes a retry safe
    published = target.publish(row, payload("said once"))
    assert [s["id"] for s in fake.statuses("alice")] == [published.remote_id]


def test_a_status_deleted_since_is_not_posted_again_by_a_retry(fake, state, monkeypatch):
    token = fake.add_account("alice", WRITE_ONLY)
    target = new_target(make_config(fake, monkeypatch, token), state)
    row = queue(state, 1)
    published = target.publish(row, payload("deleted by its author"))
    httpx.delete(f"{fake.url}/api/v1/statuses/{published.remote_id}", headers={"Authorization": f"Bearer {token}"},
                 trust_env=False, timeout=10)
    with pytest.raises(PermanentPublishError, match="was deleted"):
        target.publish(row, payload("deleted by its author"))
    assert fake.statuses("alice") == []


# --------------------------------------------------------------------------- through the delivery engine


def test_engine_lost_answer_posts_exactly_once(fake, state, monkeypatch):
    config = make_config(fake, monkeypatch, fake.add_account("alice", WRITE_ONLY))
    clock = Clock()
    row = queue(state, 1, payload=payload("exactly once https://blog.example.com/posts/1"), now=clock.now)
    deliverer = engine(config, state, clock)
    fake.inject("status_create", "lost")
    assert deliverer.deliver_due().accounts[0].retried == 1
    assert state.get_delivery(row.id).state == "pending"
    clock.now += 600
    report = deliverer.deliver_due()
    deliverer.close()
    done = state.get_delivery(row.id)
    [status] = fake.statuses("alice")
    assert report.posted == 1 and done.state == "posted" and done.remote_id == status["id"]
    assert done.remote_url == status["url"]
    assert len(creates(fake)) == 2  # the retry went out, with the same key, and got the original back


def test_engine_row_left_sending_is_recovered_once(fake, state, monkeypatch):
    config = make_config(fake, monkeypatch, fake.add_account("alice", WRITE_ONLY))
    clock = Clock()
    row = queue(state, 1, payload=payload("crash test"), now=clock.now)
    new_target(config, state, clock=clock).publish(row, row.payload)
    state.mark_sending(row.id, clock.now)  # ... and the process died before marking it posted
    deliverer = engine(config, state, clock)
    assert deliverer.deliver_due().posted == 1
    deliverer.close()
    assert len(fake.statuses("alice")) == 1
    assert state.get_delivery(row.id).remote_id == fake.statuses("alice")[0]["id"]


def test_engine_429_defers_the_account_then_posts_once_after_the_reset(fake, state, monkeypatch):
    config = make_config(fake, monkeypatch, fake.add_account("alice", WRITE_ONLY))
    clock = Clock()
    fake.set_limits(statuses=(1, 3600))
    early_in_a_rate_limit_window(fake, 3600)
    first = queue(state, 1, payload=payload("first"), now=clock.now)
    second = queue(state, 2, payload=payload("second"), now=clock.now)
    deliverer = engine(config, state, clock)
    report = deliverer.deliver_due().accounts[0]
    assert len(report.posted) == 1 and state.get_delivery(first.id).state == "posted"
    until = state.account(ACCOUNT)["deferred_until"]
    assert report.deferred_until == until and clock.now < until <= clock.now + 3600 + 2
    row = state.get_delivery(second.id)
    assert row.state == "pending" and row.attempts == 0 and "rate limited" in row.last_error
    clock.now += 60
    assert deliverer.deliver_due().accounts[0].deferred_until == until  # still deferred: nothing sent
    assert len(creates(fake)) == 2
    wait = until - clock.now + 1
    clock.now += wait
    fake.advance(wait + 60)
    assert deliverer.deliver_due().posted == 1
    deliverer.close()
    assert [s["text"] for s in fake.statuses("alice")] == ["first", "second"]
    assert len(creates(fake)) == 3


def test_engine_revoked_token_pauses_keeps_the_post_and_a_new_token_posts_once(fake, state, monkeypatch):
    old = fake.add_account("alice", WRITE_ONLY)
    config = make_config(fake, monkeypatch, old)
    clock = Clock()
    row = queue(state, 1, payload=payload("after the new token"), now=clock.now)
    fake.revoke(old)
    deliverer = engine(config, state, clock)
    report = deliverer.deliver_due().accounts[0]
    assert report.paused and "write:statuses" in report.paused
    paused = state.get_delivery(row.id)
    assert paused.state == "pending" and paused.attempts == 0  # nothing lost, no attempt spent
    assert state.account(ACCOUNT)["paused_reason"]
    clock.now += 60
    assert deliverer.deliver_due().accounts[0].paused  # same token: still paused, nothing sent
    assert len(creates(fake)) == 1
    monkeypatch.setenv(TOKEN_ENV, fake.add_token("alice", WRITE_ONLY))  # the user puts a new token in place
    assert deliverer.deliver_due().posted == 1
    deliverer.close()
    assert [s["text"] for s in fake.statuses("alice")] == ["after the new token"]
    assert state.account(ACCOUNT)["paused_reason"] is None


def lost_then_past_the_window(fake, state, config, clock) -> tuple[DeliveryRow, Deliverer]:
    """A status made, its answer lost; then more than the Idempotency-Key's hour passes before the retry."""
    row = queue(state, 1, link="https://blog.example.com/2026/a-post?lang=en&ref=feed",
                payload=payload("A post\n\nhttps://blog.example.com/2026/a-post?lang=en&ref=feed"), now=clock.now)
    deliverer = engine(config, state, clock)
    fake.inject("status_create", "lost")
    deliverer.deliver_due()
    assert len(fake.statuses("alice")) == 1
    other = fake.add_token("alice", ["write:statuses"])
    for number in range(45):  # later posts of the same account: the lookup pages past them
        post_directly(fake, other, f"Something else {number} https://elsewhere.example.org/{number}")
    clock.now += IDEMPOTENCY_WINDOW + 300
    fake.advance(IDEMPOTENCY_WINDOW + 300)
    return row, deliverer


def test_unknown_outcome_past_the_window_is_found_by_its_permalink(fake, state, monkeypatch):
    config = make_config(fake, monkeypatch, fake.add_account("alice", WITH_READ))
    clock = Clock()
    row, deliverer = lost_then_past_the_window(fake, state, config, clock)
    report = deliverer.deliver_due()
    deliverer.close()
    status = fake.statuses("alice")[0]
    done = state.get_delivery(row.id)
    assert report.posted == 1 and done.state == "posted" and done.remote_id == status["id"]
    assert len(fake.statuses("alice")) == 46
    assert len(creates(fake)) == 46  # found, not posted again
    assert fake.requests("account_statuses")


def test_unknown_outcome_past_the_window_with_a_write_only_token_is_held_not_posted_again(fake, state, monkeypatch,
                                                                                          caplog):
    config = make_config(fake, monkeypatch, fake.add_account("alice", WRITE_ONLY))
    clock = Clock()
    row, deliverer = lost_then_past_the_window(fake, state, config, clock)
    with caplog.at_level(logging.WARNING, logger="bridge.deliver"):
        report = deliverer.deliver_due().accounts[0]
    # The key has expired and the token may not look: bridge holds the post rather than post it twice.
    assert report.paused is None and state.account(ACCOUNT)["paused_reason"] is None
    assert report.unknown == 1 and report.posted == []
    held = state.get_delivery(row.id)
    assert held.state == "unknown" and "read:accounts read:statuses" in held.last_error
    assert "bridge retry --force" in held.last_error
    assert len(fake.statuses("alice")) == 46 and len(creates(fake)) == 46
    assert any("holding" in record.getMessage() for record in caplog.records)
    clock.now += 600
    assert deliverer.deliver_due().posted == 0  # held: not looked at again before the hour is out
    # a token that may read: the next look (an hour on) finds the post made by the lost attempt
    monkeypatch.setenv(TOKEN_ENV, fake.add_token("alice", WITH_READ))
    deliverer.close()
    clock.now += 3600
    assert deliverer.deliver_due().posted == 1
    deliverer.close()
    done = state.get_delivery(row.id)
    assert done.state == "posted" and done.remote_id == fake.statuses("alice")[0]["id"]
    assert len(fake.statuses("alice")) == 46 and len(creates(fake)) == 46


def test_find_existing_needs_a_send_and_matches_links_not_text(fake, state, monkeypatch):
    config = make_config(fake, monkeypatch, fake.add_account("alice", WITH_READ))
    clock = Clock()
    target = new_target(config, state, clock=clock)
    never_sent = queue(state, 1, now=clock.now - 2 * IDEMPOTENCY_WINDOW)
    assert target.find_existing(never_sent) is None
    assert fake.requests("accounts") == []
    target.publish(queue(state, 2), payload("About https://blog.example.com/posts/20 and more"))
    sent = replace(queue(state, 3, link="https://blog.example.com/posts/2", now=clock.now),
                   first_sent_at=clock.now - 2 * IDEMPOTENCY_WINDOW, state="sending")
    assert target.find_existing(sent) is None  # /posts/2 is not /posts/20
    target.publish(queue(state, 4), payload("Now: http://BLOG.example.com/posts/2/"))
    assert target.find_existing(sent).remote_id == fake.statuses("alice")[-1]["id"]


def test_edit_keeps_media_and_content_warning(fake, state, monkeypatch):
    target = new_target(make_config(fake, monkeypatch, fake.add_account("alice", WRITE_ONLY + ["read:statuses"])),
                        state, media_fetcher=lambda url: Image(tiny_png(), "image/png"))
    row = queue(state, 1)
    body = image_payload("https://blog.example.com/x.png", "a dot")
    published = target.publish(row, {**body, "spoiler_text": "spoilers", "language": "de"})
    row = replace(row, remote_id=published.remote_id)
    edited = target.edit(row, {**body, "status": "Corrected https://blog.example.com/posts/1",
                               "spoiler_text": "spoilers"})
    assert edited == published
    [status] = fake.statuses("alice")
    assert status["text"] == "Corrected https://blog.example.com/posts/1" and status["spoiler_text"] == "spoilers"
    assert status["sensitive"] is True and status["language"] == "de"
    assert [m["description"] for m in status["media_attachments"]] == ["a dot"]
    # without read:statuses the media cannot be known: refused, not paused, and the image is not dropped
    config = make_config(fake, monkeypatch, fake.add_token("alice", WRITE_ONLY))
    with pytest.raises(PermanentPublishError, match="read:statuses"):
        new_target(config, state).edit(row, {**body, "status": "Again https://blog.example.com/posts/1"})
    assert len(fake.statuses("alice")[0]["media_attachments"]) == 1
    new_target(config, state).edit(row, payload("Without media https://blog.example.com/posts/1"))
    assert fake.statuses("alice")[0]["spoiler_text"] == ""


# --------------------------------------------------------------------------- images


def image_payload(url: str, alt: str) -> dict:
    return payload("With a picture https://blog.example.com/posts/1", media=[{"url": url, "description": alt}])


class Image:
    def __init__(self, data: bytes, mime_type: str) -> None:
        self.data, self.mime_type = data, mime_type


def test_image_with_alt_text_from_an_entry_through_the_composer(fake, state, monkeypatch, feed_server):
    """attach_image (the older name of images = "attach"): the composer renders the media item, the target
    fetches, uploads, describes, attaches."""
    feed_server.image("/cover.png", png_bytes(64, 32))
    config = make_config(fake, monkeypatch, fake.add_account("alice", WRITE_ONLY),
                         bridge={"allow_private_addresses": True}, attach_image=True)
    assert config.accounts[ACCOUNT].images == "attach"
    composer = Composer(config, state, fetch_previews=False)
    target = new_target(config, state, media_fetcher=composer.fetch_image)
    entry = Entry(key="e", link="https://blog.example.com/posts/1", title="A picture",
                  images=[ImageCandidate(url=feed_server.url("/cover.png"), alt="A red rectangle, wider than tall")])
    post_settings = settings(images="attach")
    body = composer.compose(entry, post_settings, "mastodon", server_limits=target.render_limits())
    assert body["media"] == [{"url": feed_server.url("/cover.png"), "description": "A red rectangle, wider than tall"}]
    target.publish(queue(state, 1), body)
    composer.close()
    [status] = fake.statuses("alice")
    [media] = status["media_attachments"]
    assert media["type"] == "image" and media["description"] == "A red rectangle, wider than tall"
    assert media["meta"]["original"]["width"] == 64
    assert fake.requests("instance_v1") == []  # Mastodon.py's media_post asks no version question


def test_a_photo_post_uploads_its_pictures_with_alt_text_then_the_status(fake, state, monkeypatch, feed_server):
    """A Tumblr-style photo post ("Photo" title, pictures in its HTML) under the default images = "auto": the
    pictures go up first, each with its <img alt>, at most the instance's max_media_attachments, then the status
    that carries them; the placeholder title is not posted."""
    for number in range(1, 4):
        feed_server.image(f"/photo{number}.png", png_bytes(400, 300))
    fake.set_limits(max_media_attachments=2)
    config = make_config(fake, monkeypatch, fake.add_account("alice", WRITE_ONLY), bridge={"allow_private_addresses": True})
    composer = Composer(config, state, fetch_previews=False)
    target = new_target(config, state, media_fetcher=composer.fetch_image)
    html = "".join(f'<img src="{feed_server.url(f"/photo{n}.png")}" alt="Panel {n} of the comic"/><br/>' for n in (1, 2, 3))
    entry = Entry(key="photo", link="https://blog.example.com/post/1", title="Photo", summary_html=html)
    feed = FeedConfig(name="blog", url="https://blog.example.com/feed", accounts=[ACCOUNT])
    body = composer.compose(entry, config.post_settings(feed, ACCOUNT), "mastodon", server_limits=target.render_limits())
    assert [item["description"] for item in body["media"]] == ["Panel 1 of the comic", "Panel 2 of the comic"]
    target.publish(queue(state, 1), body)
    composer.close()
    [status] = fake.statuses("alice")
    assert [media["description"] for media in status["media_attachments"]] == ["Panel 1 of the comic", "Panel 2 of the comic"]
    assert status["media_attachments"][0]["meta"]["original"]["width"] == 400
    assert "Photo" not in status["text"] and "https://blog.example.com/post/1" in status["text"]
    routes = [e["route"] for e in fake.requests() if e["route"] in ("media_create", "status_create")]
    assert routes == ["media_create", "media_create", "status_create"]


def test_video_like_upload_is_polled_until_processed(state, monkeypatch):
    with MastodonFake(media_processing_polls=3) as fake:
        config = make_config(fake, monkeypatch, fake.add_account("alice", WRITE_ONLY))
        slept = []
        target = new_target(config, state, sleep=slept.append,
                            media_fetcher=lambda url: Image(b"\x00\x00\x00\x18ftypmp42" + bytes(64), "video/mp4"))
        target.publish(queue(state, 1), image_payload("https://blog.example.com/clip.mp4", "A short clip"))
        [status] = fake.statuses("alice")
        [media] = status["media_attachments"]
        assert media["type"] == "video" and media["description"] == "A short clip" and media["url"]
        assert [e["status"] for e in fake.requests("media")] == [202, 206, 206, 206, 200]
        assert len(slept) == 3 and sum(slept) < 10


def test_media_still_processing_is_kept_for_the_next_attempt(state, monkeypatch):
    with MastodonFake(media_processing_polls=None) as fake:
        config = make_config(fake, monkeypatch, fake.add_account("alice", WRITE_ONLY))
        target = new_target(config, state, media_fetcher=lambda url: Image(b"\x00\x00\x00\x18ftypmp42", "video/mp4"))
        row = queue(state, 1)
        with pytest.raises(TransientPublishError, match="still processing"):
            target.publish(row, image_payload("https://blog.example.com/clip.mp4", "clip"))
        assert fake.statuses("alice") == []
        fake.complete_media()
        target.publish(row, image_payload("https://blog.example.com/clip.mp4", "clip"))
        assert len(fake.requests("media_create")) == 1  # the same upload, not a second one
        assert len(fake.statuses("alice")[0]["media_attachments"]) == 1


def unreachable_image(url: str) -> Image:
    raise OSError("connection refused")


def not_an_image(url: str) -> Image:
    return Image(b"%PDF-1.4 not an image", "application/pdf")


@pytest.mark.parametrize("fetcher", [unreachable_image, not_an_image])  # cannot be fetched / refused (422)
def test_an_image_that_cannot_be_had_leaves_the_post_without_it(fake, state, monkeypatch, fetcher):
    target = new_target(make_config(fake, monkeypatch, fake.add_account("alice", WRITE_ONLY)), state,
                        media_fetcher=fetcher)
    target.publish(queue(state, 1), image_payload("https://blog.example.com/x.png", "alt"))
    [status] = fake.statuses("alice")
    assert status["media_attachments"] == [] and status["text"].startswith("With a picture")


def test_alt_text_is_cut_to_the_instances_limit_in_code_points(state, monkeypatch):
    with MastodonFake(description_limit=1500) as fake:
        target = new_target(make_config(fake, monkeypatch, fake.add_account("alice", WRITE_ONLY)), state,
                            media_fetcher=lambda url: Image(tiny_png(), "image/png"))
        family = "👨‍👩‍👧"  # one grapheme, five code points
        target.publish(queue(state, 1), image_payload("https://blog.example.com/x.png", family * 400))
        description = fake.statuses("alice")[0]["media_attachments"][0]["description"]
        assert len(description) <= 1500 and description == family * (1500 // len(family))


def test_missing_write_media_scope_pauses_with_the_fix(fake, state, monkeypatch):
    token = fake.add_account("alice", ["write:statuses"])
    target = new_target(make_config(fake, monkeypatch, token), state,
                        media_fetcher=lambda url: Image(tiny_png(), "image/png"))
    with pytest.raises(AuthError) as info:
        target.publish(queue(state, 1), image_payload("https://blog.example.com/x.png", "alt"))
    assert "write:media" in info.value.fix


# --------------------------------------------------------------------------- bridge doctor


def test_diagnose_with_a_full_token(fake, state, monkeypatch):
    config = make_config(fake, monkeypatch, fake.add_account("alice", WITH_READ))
    report = make_target(config, state, ACCOUNT).diagnose()
    assert report["account"] == "@alice" and report["account_url"].endswith("/@alice")
    assert report["can_post"] is True and report["can_read"] is True and report["can_upload"] is True
    assert report["notes"] == [] and report["problems"] == []
    assert report["version"] == "4.7.3" and report["instance"] == fake.url
    assert (report["software"], report["software_version"], report["profile"]) == ("mastodon", "4.7.3", "mastodon")
    assert report["limits"] == {"max_characters": 500, "characters_reserved_per_url": 23,
                                "max_media_attachments": 4, "description_limit": 10000,
                                "counting": "graphemes", "urls_in_full": False}
    assert fake.requests("media_create")[0]["status"] == 422  # the upload probe: no file, nothing made
    assert fake.statuses("alice") == []  # the posting probe creates nothing
    assert state.account(ACCOUNT)["limits"]["max_characters"] == 500


def test_diagnose_with_a_write_only_token_says_it_posts_but_cannot_read(fake, state, monkeypatch):
    config = make_config(fake, monkeypatch, fake.add_account("alice", WRITE_ONLY))
    report = make_target(config, state, ACCOUNT).diagnose()
    assert report["account"] is None and report["can_post"] is True and report["can_read"] is False
    assert any("works for posting but cannot read the profile" in note for note in report["notes"])
    [(problem, fix)] = report["problems"]
    assert "may not read the account's own statuses (scopes read:accounts read:statuses" in problem
    assert f"bridge login mastodon --instance {fake.url}" in fix
    assert fake.statuses("alice") == []


def test_diagnose_errors(fake, state, monkeypatch):
    with pytest.raises(AuthError, match="may not post"):
        make_target(make_config(fake, monkeypatch, fake.add_account("alice", ["read"])), state, ACCOUNT).diagnose()
    revoked = fake.add_token("alice", WITH_READ)
    fake.revoke(revoked)
    with pytest.raises(AuthError, match="401"):
        make_target(make_config(fake, monkeypatch, revoked), state, ACCOUNT).diagnose()
    fake.inject("*", 503, times=None)
    with pytest.raises(TransientPublishError):
        make_target(make_config(fake, monkeypatch, fake.add_token("alice", WITH_READ)), state, ACCOUNT).diagnose()
    fake.clear_faults()


# --------------------------------------------------------------------------- lengths: the renderer never makes a 422


CORPUS_SAMPLE = 100


def corpus_sample(count: int = CORPUS_SAMPLE) -> list[tuple[str, Entry, str]]:
    """(feed file, entry, feed title), round-robin across every corpus feed, entries that have a link."""
    feeds = [(name, feed) for name in corpus_files() if (feed := load_feed(name)) is not None]
    picked, index = [], 0
    while len(picked) < count and any(index < len(feed.entries) for _, feed in feeds):
        for name, feed in feeds:
            if index < len(feed.entries) and (feed.entries[index].link or "").startswith(("http://", "https://")):
                picked.append((name, feed.entries[index], feed.title))
        index += 1
    return picked[:count]


@requires_corpus
@pytest.mark.parametrize("max_characters, per_url, warning", [
    (500, 23, None),
    (1000, 23, None),
    (11000, 23, None),
    (500, 64, None),  # a fork that counts URLs heavier than upstream
    (500, 10, None),  # ... or lighter
    (500, 23, "Long read: politics, war, and a content warning that takes its share of the 500 characters"),
])
def test_rendered_corpus_entries_are_never_too_long(state, monkeypatch, max_characters, per_url, warning):
    with MastodonFake(max_characters=max_characters, characters_reserved_per_url=per_url, rate_limits=GENEROUS) as fake:
        target = new_target(make_config(fake, monkeypatch, fake.add_account("alice", WRITE_ONLY)), state)
        limits = MastodonLimits.from_dict(target.render_limits())
        assert (limits.max_characters, limits.characters_reserved_per_url) == (max_characters, per_url)
        post_settings = settings(content_warning=warning)
        rejected, longest, at_limit = [], 0, 0
        sample = corpus_sample()
        for number, (name, entry, feed_title) in enumerate(sample):
            body = mastodon_payload(render_post(entry, post_settings, feed_title=feed_title), post_settings, limits)
            length = status_length(body["status"], body["spoiler_text"], characters_reserved_per_url=per_url)
            longest, at_limit = max(longest, length), at_limit + (length >= max_characters - 5)
            try:
                target.publish(queue(state, number), body)
            except PermanentPublishError as exc:
                rejected.append(f"{name} {entry.key}: {exc}")
        posted = fake.statuses("alice")
    print(f"\n[mastodon] max_characters={max_characters} per_url={per_url} cw={bool(warning)}: "
          f"{len(posted)} corpus entries posted, {len(rejected)} rejected; longest {longest}, "
          f"{at_limit} within 5 of the limit")
    assert rejected == []
    assert len(posted) == len(sample) >= CORPUS_SAMPLE
    if warning:
        assert all(status["spoiler_text"] == warning for status in posted)
    assert longest <= max_characters


def test_a_link_on_an_unknown_top_level_domain_counts_in_full(state, monkeypatch):
    """Mastodon takes only the TLDs it knows for links: https://blog.example/... counts in full, not 23."""
    with MastodonFake() as fake:
        target = new_target(make_config(fake, monkeypatch, fake.add_account("alice", WRITE_ONLY)), state)
        limits = MastodonLimits.from_dict(target.render_limits())
        entry = Entry(key="k", link="https://blog.example/" + "a-long-slug-" * 10, title="Title",
                      content_html="<p>" + "word " * 400 + "</p>")
        body = mastodon_payload(render_post(entry, settings()), settings(), limits)
        assert status_length(body["status"], "", characters_reserved_per_url=23) <= 500
        target.publish(queue(state, 1), body)


@pytest.mark.parametrize("max_characters, per_url", [(500, 23), (1000, 23), (11000, 23), (500, 64)])
def test_an_entry_far_too_long_is_cut_to_the_exact_limit(state, monkeypatch, max_characters, per_url):
    with MastodonFake(max_characters=max_characters, characters_reserved_per_url=per_url) as fake:
        target = new_target(make_config(fake, monkeypatch, fake.add_account("alice", WRITE_ONLY)), state)
        limits = MastodonLimits.from_dict(target.render_limits())
        words = " ".join(["Grapheme-heavy 👩🏽‍💻 wörds and https://example.org/a/link"] * 2000)
        entry = Entry(key="long", link="https://blog.example.com/" + "very-long-slug-" * 20, title="T " * 400,
                      content_html=f"<p>{words}</p>", categories=["Long Reads", "Unicode"])
        for number, warning in enumerate((None, "CW " * 20)):
            post_settings = settings(content_warning=warning)
            body = mastodon_payload(render_post(entry, post_settings), post_settings, limits)
            length = status_length(body["status"], body["spoiler_text"], characters_reserved_per_url=per_url)
            assert length <= max_characters
            if max_characters <= 1000:  # the entry is far longer: the post fills the instance's limit
                assert length >= max_characters - 60, (length, body)
            target.publish(queue(state, number), body)
        assert len(fake.statuses("alice")) == 2


# --------------------------------------------------------------------------- numbers


def test_measure_posts_per_second_through_the_engine(fake, state, monkeypatch):
    config = make_config(fake, monkeypatch, fake.add_account("alice", WRITE_ONLY))
    clock = time.time
    count = 200
    for number in range(count):
        queue(state, number, payload=payload(f"Post {number} 🚀 https://blog.example.com/posts/{number}"))
    deliverer = engine(config, state, clock)
    deliverer.deliver_due()  # the first 100 due rows (one pass takes at most 100)
    started = time.perf_counter()
    posted = 0
    while posted < count - 100:
        posted += deliverer.deliver_due().posted
    rate = posted / (time.perf_counter() - started)
    deliverer.close()
    print(f"\n[mastodon] {rate:.0f} posts/s through the delivery engine against the fake "
          f"({posted} posts, state on disk, one row commit before and after each)")
    assert len(fake.statuses("alice")) == count
    assert len({s["text"] for s in fake.statuses("alice")}) == count
    assert rate > 10
