"""The way back on Threads, on the Threads fake (tests/threads_fake, its /conversation and /insights proven against
Meta's reference examples in tests/test_threads_conformance.py): bridge posts an entry through `bridge poll`,
other people reply (and reply to a reply), like, repost and quote, and `bridge reactions refresh` writes what the
writer's site shows.
"""

from __future__ import annotations

import logging
import time

import pytest

from bridge.config import Secret
from bridge.errors import ReactionsRateLimited, RemotePostGone
from bridge.platforms.threads.account import ThreadsAccount
from bridge.platforms.threads.reactions import gather
from bridge.reactions.gatherer import HttpOptions
from bridge.state import State
from tests.reactions_helpers import TOKEN_ENV, Blog, flatten
from tests.threads_fake import ALL_SCOPES, INSIGHTS, ThreadsFake


class ThreadsBlog(Blog):
    """tests/reactions_helpers.py's Blog, posting to the writer's Threads account on the fake."""

    account = "th"

    def __init__(self, tmp_path, feed_server, fake: ThreadsFake, token: str) -> None:
        super().__init__(tmp_path, feed_server, "https://unused.example", token)
        self.config.write_text(
            f'[bridge]\nstate = "{self.state_path}"\nallow_private_addresses = true\n'
            f'comments_dir = "{self.comments_dir}"\nsyndication_file = "{self.syndication_file}"\n\n'
            f'[accounts.{self.account}]\ntype = "threads"\naccess_token = {{ env = "{TOKEN_ENV}" }}\n'
            f'graph_url = "{fake.url}"\nposts_per_hour = 1000000\nposts_per_day = 1000000\n\n'
            f'[[feeds]]\nname = "blog"\nurl = "{feed_server.url("/blog.json")}"\naccounts = ["{self.account}"]\n'
        )


@pytest.fixture
def fake():
    with ThreadsFake() as server:  # real time: bridge runs as a writer runs it
        yield server


def writer_blog(tmp_path, feed_server, fake, scopes=ALL_SCOPES) -> ThreadsBlog:
    return ThreadsBlog(tmp_path, feed_server, fake, fake.add_user("writer", scopes=scopes))


def test_bridge_poll_then_refresh_brings_threads_replies_to_the_site_threaded_with_counts(fake, feed_server, tmp_path):
    blog = writer_blog(tmp_path, feed_server, fake)
    link, media = blog.post("/posts/threads", "Replies from Threads")
    first = fake.reply("ada", media, "Welcome to Threads, blog")
    fake.reply("bob", first, "A nested answer with <script>alert(1)</script>")
    later = fake.reply("cy", media, "Another view")
    fake.like(media, 3)
    fake.repost(media, 2)
    fake.quote(media, 1)

    blog.refresh(link)
    document = blog.document(link)
    assert document["counts"] == {"likes": 3, "reposts": 2, "quotes": 1, "replies": 3}
    [post] = document["posts"]
    assert post["platform"] == "threads" and post["platform_name"] == "Threads"
    assert post["url"].startswith("https://www.threads.net/@writer/post/")
    assert flatten(document["replies"]) == [
        (0, "ada", "Welcome to Threads, blog"),
        (1, "bob", "A nested answer with <script>alert(1)</script>"),
        (0, "cy", "Another view"),
    ]
    ada = document["replies"][0]
    assert ada["url"] == fake.media[first]["permalink"]
    assert ada["author"]["url"] == "https://www.threads.net/@ada"
    assert ada["author"]["avatar"] is None  # Threads gives a picture only of the token's own user
    fragment = blog.fragment(link)
    assert "Reply on Threads" in fragment and f'href="{post["url"]}"' in fragment
    assert "<script>" not in fragment and "3 likes · 2 reposts · 1 quote · 3 replies" in fragment

    # a reply deleted on Threads disappears at the next refresh
    fake.delete(later)
    blog.refresh(link)
    assert [text for _depth, _who, text in flatten(blog.document(link)["replies"])] == [
        "Welcome to Threads, blog", "A nested answer with <script>alert(1)</script>"]
    assert "Another view" not in blog.fragment(link)


def test_a_reply_the_writer_hid_on_threads_stays_hidden_with_its_answers(fake, feed_server, tmp_path):
    blog = writer_blog(tmp_path, feed_server, fake)
    link, media = blog.post("/posts/hidden", "Hidden replies")
    kept = fake.reply("ada", media, "A kind reply")
    rude = fake.reply("troll", media, "A rude reply")
    fake.reply("echo", rude, "Agreeing with the rude one")
    fake.hide(rude)  # Meta: hiding a top-level reply hides the replies below it

    blog.refresh(link)
    document = blog.document(link)
    assert flatten(document["replies"]) == [(0, "ada", "A kind reply")]
    assert "rude" not in blog.fragment(link)
    for status in ("COVERED", "BLOCKED", "RESTRICTED"):  # every state but NOT_HUSHED / UNHUSHED keeps it out
        fake.hide(kept, status)
        blog.refresh(link)
        assert blog.document(link)["replies"] == [], status
    fake.hide(kept, "UNHUSHED")  # shown again once the writer unhides it
    blog.refresh(link)
    assert flatten(blog.document(link)["replies"]) == [(0, "ada", "A kind reply")]


def test_a_token_without_insights_permission_still_shows_the_replies_and_says_why_once(fake, feed_server, tmp_path):
    blog = writer_blog(tmp_path, feed_server, fake, scopes=ALL_SCOPES - {INSIGHTS})
    link, media = blog.post("/posts/scoped", "No insights")
    fake.reply("ada", media, "Still seen")
    fake.like(media, 5)

    first = blog.refresh(link)
    document = blog.document(link)
    assert flatten(document["replies"]) == [(0, "ada", "Still seen")]
    assert document["counts"]["likes"] == 0 and document["counts"]["quotes"] is None  # the 5 likes cannot be read
    assert "threads_manage_insights" in first.stderr
    with State.open_readonly(blog.state_path) as state:
        [row] = state.deliveries(account="th")
    assert row.remote_id == media


def _delivery(fake: ThreadsFake, token: str, text: str = "A post"):
    """A posted delivery row for a post the writer made on the fake (the gatherer needs only its ids)."""
    user = fake.user_of(token)
    state = State.open_memory()
    state.ensure_feed("blog", "https://blog.example.com/feed")
    from tests.test_threads import entry

    entry_id = state.add_entry("blog", entry(1), "new", "hash", [], time.time())
    delivery_id = state.add_delivery(entry_id, "th", idempotency_key="k", rkey=None, now=time.time())
    container = fake._create(user, {"media_type": "TEXT", "text": text}, time.time())[1]["id"]
    media = fake._publish(user, {"creation_id": container}, time.time())[1]["id"]
    state.mark_posted(delivery_id, media, fake.media[media]["permalink"], time.time())
    return state.get_delivery(delivery_id)


def _gather(fake: ThreadsFake, token: str, delivery):
    settings = ThreadsAccount.model_validate({"type": "threads", "access_token": {"env": "T"}, "graph_url": fake.url})
    return gather(settings, Secret(token), delivery, deadline=time.monotonic() + 30, http=HttpOptions("bridge-test"))


def test_a_private_profiles_reply_is_not_kept_and_a_deleted_post_is_gone(fake):
    token = fake.add_user("writer")
    delivery = _delivery(fake, token)
    fake.reply("public", delivery.remote_id, "Seen by all")
    fake.reply("private", delivery.remote_id, "Only for my followers", private=True)
    thread = _gather(fake, token, delivery)
    assert [(reply.author.handle, reply.text) for reply in thread.replies] == [("public", "Seen by all")]
    fake.delete(delivery.remote_id)
    with pytest.raises(RemotePostGone):
        _gather(fake, token, delivery)


def test_metas_throttling_is_a_rate_limit_with_its_retry_time(fake, caplog):
    token = fake.add_user("writer")
    delivery = _delivery(fake, token)
    fake.inject("GET /v1.0/{id}/conversation", "rate")  # code 4 with Retry-After: 2
    before = time.time()
    with pytest.raises(ReactionsRateLimited) as raised:
        _gather(fake, token, delivery)
    assert raised.value.retry_at is not None and before + 1 <= raised.value.retry_at <= time.time() + 3
    assert token not in str(raised.value)


def test_replies_are_read_with_the_token_posting_keeps_refreshed_once_the_configured_one_is_dead(
        fake, feed_server, tmp_path):
    import json

    from bridge.platforms.threads.tokens import fingerprint

    blog = writer_blog(tmp_path, feed_server, fake)
    link, media = blog.post("/posts/refreshed", "A refreshed token")
    fake.reply("ada", media, "Read with the kept token")
    # as bridge run leaves it 60 days on: the kept token refreshed from the configured one, which is dead now
    kept = fake.issue(fake.tokens[blog.token].user_id, "long")
    with State.open(blog.state_path) as state:
        record = json.loads(state.load_session("th"))
        assert record["seed"] == fingerprint(blog.token)
        state.save_session("th", json.dumps({**record, "token": kept}), time.time())
    fake.revoke(blog.token)

    run = blog.refresh(link)
    assert flatten(blog.document(link)["replies"]) == [(0, "ada", "Read with the kept token")]
    assert kept not in run.stdout + run.stderr


def test_a_long_conversation_is_read_page_after_page(fake):
    token = fake.add_user("writer")
    delivery = _delivery(fake, token)
    for n in range(60):
        fake.reply(f"reader{n}", delivery.remote_id, f"Reply {n}")
    thread = _gather(fake, token, delivery)
    assert sorted(reply.text for reply in thread.replies) == sorted(f"Reply {n}" for n in range(60))
    assert len([line for _at, line in fake.seen if line.endswith("/conversation")]) == 3  # pages of 25
