"""The pure parts of the way back: sanitizing, file names, which replies show, the schedule and its documented
budget, and how a pass of reads isolates one post's or one account's failure."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from bridge.config import load_config
from bridge.errors import ReactionsError, ReactionsRateLimited, RemotePostGone, StateError
from bridge.model import Entry
from bridge.reactions import sanitize, schedule
from bridge.reactions.conversation import MAX_DEPTH, shown_tree
from bridge.reactions.document import build_document, PostReactions, render_fragment
from bridge.reactions.files import document_name, write_if_changed
from bridge.reactions.model import Author, Counts, Reply, Thread
from bridge.reactions.refresh import Refresher

ROOT = Path(__file__).resolve().parent.parent


def make_reply(remote_id: str, parent: str, handle: str = "a@x.example", **fields) -> Reply:
    author = Author(handle=handle, name=fields.pop("name", "A"), noindex=fields.pop("noindex", False),
                    profile_url=fields.pop("profile_url", None), avatar_url=fields.pop("avatar_url", None))
    return Reply(platform="mastodon", remote_id=remote_id, url=fields.pop("url", f"https://x.example/{remote_id}"),
                 author=author, created_at=fields.pop("created_at", f"2026-01-01T00:00:{remote_id[-2:]}Z"),
                 parent_id=parent, **fields)


def texts(nodes, depth=0):
    for node in nodes:
        yield depth, node.reply.remote_id
        yield from texts(node.children, depth + 1)


# --- sanitizing -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("html, kept, gone", [
    ('<p>hi<script>alert(1)</script></p>', "<p>hi</p>", "script"),
    ('<img src=x onerror=alert(1)>ok', "ok", "onerror"),
    ('<a href="javascript:alert(1)">x</a>', '<a rel="nofollow noopener noreferrer ugc">x</a>', "javascript"),
    ('<a href="data:text/html,<b>x</b>">x</a>', '<a rel="nofollow noopener noreferrer ugc">x</a>', "data:"),
    ('<a href="https://e.example/" onclick="x()" style="color:red" class="mention evil">@e</a>',
     '<a href="https://e.example/" class="mention" rel="nofollow noopener noreferrer ugc">@e</a>', "onclick"),
    ('<p>\u202eevil\u2066x\u2069</p>', "<p>evilx</p>", "\u202e"),
    ('<iframe src="https://e.example"></iframe><style>p{}</style><form><input></form>t', "t", "iframe"),
])
def test_html_keeps_the_allow_list_only(html, kept, gone):
    cleaned = sanitize.clean_html(html)
    assert cleaned == kept and gone not in cleaned


def test_oversized_fields_are_cut_and_unsafe_characters_removed():
    assert sanitize.clean_html("<p>" + "x" * (sanitize.MAX_HTML + 1) + "</p>") == ""
    assert sanitize.clean_text("👍🏽" * 10, 3) == "👍🏽" * 3  # at grapheme boundaries
    assert sanitize.clean_text("a\u202eb\x00c\u2067d\r\ne") == "abcd\ne"
    assert sanitize.clean_text(None) == "" and sanitize.clean_text(5) == ""


@pytest.mark.parametrize("url, https_only, expected", [
    ("https://x.example/a.png", True, "https://x.example/a.png"),
    ("http://x.example/a.png", True, None),
    ("http://x.example/a", False, "http://x.example/a"),
    ("javascript:alert(1)", False, None),
    ("JaVaScRiPt:alert(1)", False, None),
    ("data:image/png;base64,AAAA", True, None),
    ("https://user:pw@x.example/", False, None),
    ("https://x.example/\u202etxt", False, None),
    ("https://x.example/a b", False, None),
    ('https://x.example/"><script>', False, None),
    ("//x.example/a", False, None),
    ("https://" + "a" * 3000 + ".example/", False, None),
    (None, False, None),
])
def test_only_plain_http_urls_survive(url, https_only, expected):
    assert sanitize.safe_url(url, https_only=https_only) == expected


def test_the_fragment_escapes_everything_by_construction():
    hostile = make_reply("1001", "root", name='<b onmouseover="x()">Eve</b>', text="</li><script>x()</script>",
                         url='https://x.example/"><script>x()</script>', language='en" onload="x()')
    document = build_document("https://blog.example/p", [PostReactions("mastodon", "https://x.example/root", "root",
                                                                         Counts(1, 2), [hostile])],
                              hidden_urls=set(), blocked=set())
    fragment = render_fragment(document)
    assert "<script>" not in fragment and "<b " not in fragment and "onload" not in fragment
    assert "&lt;/li&gt;&lt;script&gt;x()&lt;/script&gt;" in fragment
    assert document["replies"][0]["url"] is None and document["replies"][0]["language"] is None
    assert fragment.count("<a ") == 1  # "Reply on Mastodon" only: the reply's URL was no URL


# --- file names -------------------------------------------------------------------------------------------------


def test_file_names_are_safe_distinct_and_stable():
    names = [document_name(link) for link in (
        "https://blog.example.com/posts/bridges/", "https://blog.example.com/posts/bridges", "http://blog.example.com/posts/bridges/",
        "https://blog.example.com/../../etc/passwd", "https://blog.example.com/p?id=1;rm -rf /",
        "https://blog.example.com/ünïcödé/日本語", "https://blog.example.com/" + "long-" * 100, "not a url at all",
    )]
    assert len(set(names)) == len(names)
    assert all(re.fullmatch(r"[a-z0-9-]{1,73}", name) for name in names), names
    assert names[0] == document_name("https://blog.example.com/posts/bridges/")
    assert names[0].startswith("blog-example-com-posts-bridges-")


def test_files_are_replaced_whole_and_only_when_changed(tmp_path):
    path = tmp_path / "deep" / "doc.json"
    assert write_if_changed(path, b"one") is True
    before = path.stat().st_mtime_ns
    time.sleep(0.01)
    assert write_if_changed(path, b"one") is False and path.stat().st_mtime_ns == before
    assert write_if_changed(path, b"two") is True and path.read_bytes() == b"two"
    assert [p.name for p in path.parent.iterdir()] == ["doc.json"]  # no temporary file left


# --- which replies show --------------------------------------------------------------------------------------------


def test_withheld_replies_take_their_answers_along():
    replies = [
        make_reply("1001", "root"), make_reply("1002", "1001"),
        make_reply("1003", "root", visibility="private"), make_reply("1004", "1003"),
        make_reply("1005", "root", noindex=True), make_reply("1006", "1005"),
        make_reply("1007", "root", handle="Troll@Bad.Example"), make_reply("1008", "1007"),
        make_reply("1009", "root"), make_reply("1010", "1009"),
        make_reply("1011", "gone-parent"),  # answers a reply that was not read (deleted, not public)
        make_reply("1012", "root"), make_reply("1013", "root"),
    ]
    tree = shown_tree("root", replies, platform_hidden=frozenset({"1012"}), hidden_urls={"https://x.example/1009"},
                      blocked={"@troll@bad.example"})
    assert list(texts(tree)) == [(0, "1001"), (1, "1002"), (0, "1013")]


def test_cycles_end_and_deep_chains_stop_nesting():
    cycle = [make_reply("1001", "root"), make_reply("1002", "1003"), make_reply("1003", "1002")]
    assert list(texts(shown_tree("root", cycle))) == [(0, "1001")]
    chain = [make_reply(f"{n:04d}", f"{n - 1:04d}" if n > 1000 else "root") for n in range(1000, 1030)]
    depths = [depth for depth, _ in texts(shown_tree("root", chain))]
    assert max(depths) == MAX_DEPTH - 1 and len(depths) == 30


# --- the schedule and its documented budget ------------------------------------------------------------------------


def test_reads_grow_rarer_and_stop_at_max_age_as_documented():
    intervals = [schedule.interval(age) for age in (0, 2 * 3600, 12 * 3600, 2 * 86400, 5 * 86400, 20 * 86400)]
    assert intervals == sorted(intervals) and len(set(intervals)) == len(intervals)
    assert schedule.reads_over(30 * 86400) == 30 and schedule.reads_over(7 * 86400) == 23
    doc = (ROOT / "docs" / "reactions.md").read_text()
    assert "**30 reads per post over its 30 days**" in doc and "**60 requests per\nMastodon post" in doc
    assert "(7 days: 23 reads a post)" in doc
    readme = (ROOT / "README.md").read_text()
    assert "30 reads per post, 60 requests on Mastodon" in readme
    now = 1_000_000.0
    assert schedule.next_retry(now - 60, now, 1) == now + schedule.RETRY_AFTER
    assert schedule.next_retry(now - 60, now, 30) == now + 4 * schedule.interval(60)


# --- a pass of reads -----------------------------------------------------------------------------------------------


@pytest.fixture
def world(tmp_path, monkeypatch, store):
    """Three posted entries on two accounts, with the state on SQLite, then on PostgreSQL."""
    monkeypatch.setenv("TOKEN_A", "token-a")
    monkeypatch.setenv("TOKEN_B", "token-b")
    config_path = tmp_path / "config.toml"
    config_path.write_text(
        f'[bridge]\n{store.config_line()}\n\n'
        '[accounts.a]\ntype = "mastodon"\ninstance = "https://a.example"\naccess_token = { env = "TOKEN_A" }\n\n'
        '[accounts.b]\ntype = "mastodon"\ninstance = "https://b.example"\naccess_token = { env = "TOKEN_B" }\n')
    config = load_config(config_path)
    state = store.open()
    now = time.time()
    state.ensure_feed("blog", "https://blog.example/feed")
    for number in range(3):
        entry = state.add_entry("blog", Entry(key=f"e{number}", link=f"https://blog.example/{number}"), "new", "h", [], now)
        for account in ("a", "b"):
            delivery = state.add_delivery(entry, account, idempotency_key=f"{account}{number}", rkey=None, now=now)
            state.mark_posted(delivery, f"{account}{number}", f"https://{account}.example/{number}", now - 3600)
    yield config, state
    state.close()


def run_pass(config, state, behaviour):
    calls = []

    def gather(settings, secret, delivery, *, deadline, http):
        calls.append(delivery.remote_id)
        assert secret.reveal() == f"token-{delivery.account}" and deadline > time.monotonic()
        return behaviour(delivery)

    report = Refresher(config, state, find_gatherer=lambda platform: gather).refresh()
    return calls, report


def test_one_posts_failure_is_its_own_and_the_others_are_read(world):
    config, state = world

    def behaviour(delivery):
        if delivery.remote_id == "a1":
            raise RuntimeError("a library's bug")
        if delivery.remote_id == "b0":
            raise RemotePostGone("deleted")
        return Thread(root_id=delivery.remote_id, root_url=delivery.remote_url, counts=Counts(likes=1),
                      replies=[make_reply("9" + delivery.remote_id, delivery.remote_id)])

    calls, report = run_pass(config, state, behaviour)
    assert sorted(calls) == ["a0", "a1", "a2", "b0", "b1", "b2"]
    assert report.read == 4 and report.gone == 1 and len(report.failed) == 1
    assert "RuntimeError: a library's bug" in report.failed[0]
    threads = {row["remote_id"]: row for row in state.reaction_threads()}
    assert threads["a1"]["error_count"] == 1 and threads["a1"]["next_refresh_at"] > time.time()
    assert threads["b0"]["gone"] == 1 and threads["b0"]["replies"] == []
    assert state.reaction_totals() == {"a": {"posts": 2, "likes": 2, "reposts": 0, "quotes": 0, "replies": 2},
                                       "b": {"posts": 2, "likes": 2, "reposts": 0, "quotes": 0, "replies": 2}}
    again, _ = run_pass(config, state, behaviour)
    assert again == []  # nothing is due right after a pass: read ones are scheduled, the gone one never again


def test_a_rate_limit_stops_that_account_only_and_the_state_failing_stops_the_pass(world):
    config, state = world
    reset = time.time() + 600

    def behaviour(delivery):
        if delivery.account == "a":
            raise ReactionsRateLimited("HTTP 429", reset)
        return Thread(root_id=delivery.remote_id, root_url=None)

    calls, report = run_pass(config, state, behaviour)
    assert [c for c in calls if c.startswith("a")] == ["a0"] and sorted(c for c in calls if c.startswith("b")) == ["b0", "b1", "b2"]
    assert len(report.failed) == 1 and "HTTP 429" in report.failed[0]
    [limited] = [row for row in state.reaction_threads() if row["remote_id"] == "a0"]
    assert limited["next_refresh_at"] == pytest.approx(reset)

    def broken_state(delivery):
        raise StateError("disk full")

    with pytest.raises(StateError):
        run_pass(config, state, broken_state)

    def plain_error(delivery):
        raise ReactionsError("HTTP 502 from a.example")

    state.db.execute("UPDATE reaction_threads SET next_refresh_at = 0")
    _, report = run_pass(config, state, plain_error)
    assert len(report.failed) == 6 and all("HTTP 502" in line for line in report.failed)
