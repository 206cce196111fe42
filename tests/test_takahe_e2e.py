"""End to end against a real Takahē (tests/takahe_fixture.py): a Mastodon-API server nobody on this project wrote.

Everything goes through bridge's CLI as a subprocess (`bridge poll`, `backfill`, `run`, `doctor`, `login
mastodon`), the feeds and pages come from the local feed server, and what Takahē holds is read back through its
API. Each test posts as its own Takahē identity, so tests never see each other's statuses. Loopback only: the
bridge process reaches any other host through the feed server as its HTTP proxy (unknown pages are 404s).
"""

from __future__ import annotations

import html
import html.parser
import itertools
import json
import os
import re
import select
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest

from bridge.faults import POINTS
from bridge.state import State
from tests.feedserver import CORPUS_MISSING, corpus_available, png_bytes
from tests.takahe_fixture import TakaheAccount, TakaheServer

ROOT = Path(__file__).resolve().parent.parent
TOKEN_ENV = "BRIDGE_TEST_TAKAHE_TOKEN"
# What bridge needs on Takahē: posting, media, and (Takahē has no finer read scope for it) `read` to find its
# own statuses after an unknown outcome.
SCOPES = ["write:statuses", "write:media", "read"]
WRITE_ONLY = ["write:statuses", "write:media"]
CORPUS_FEEDS = ("hatena-lambdacocktail-ja.atom", "lang-zh-geekpark.rss", "lang-ur-bbcurdu-rtl.rss",
                "jsonfeed-3960-v1.1-de.json", "medium-hodlhodl-user.rss", "django-simonwillison.atom")
_names = itertools.count()


def json_feed(items: list[dict]) -> str:
    """A JSON Feed 1.1; each item: id, url, title (optional), content_html, newest first, an hour apart."""
    now = datetime.now(timezone.utc)
    entries = [{**item, "date_published": (now - timedelta(hours=n + 1)).isoformat()} for n, item in enumerate(items)]
    return json.dumps({"version": "https://jsonfeed.org/version/1.1", "title": "A blog",
                       "home_page_url": "http://blog.example.com/", "items": entries})


def status_text(takahe: TakaheServer, account: TakaheAccount, status_id: str) -> str:
    """The plain text a status was posted with (Takahē keeps it: /api/v1/statuses/:id/source)."""
    response = httpx.get(f"{takahe.url}/api/v1/statuses/{status_id}/source", timeout=30,
                         headers={"Authorization": f"Bearer {account.read_token}"})
    response.raise_for_status()
    return response.json()["text"]


class World:
    """One Takahē identity, one config, one state; `bridge(...)` runs the CLI on them."""

    def __init__(self, tmp_path: Path, feed_server, takahe: TakaheServer, scopes: list[str]) -> None:
        self.tmp_path, self.server, self.takahe = tmp_path, feed_server, takahe
        self.account = takahe.new_identity(f"t{os.getpid()}x{next(_names)}")
        self.token = self.account.token(scopes)
        self.config = tmp_path / "config.toml"
        self.state_path = tmp_path / "state.sqlite3"
        self.feeds: dict[str, str] = {}
        self.account_settings = "posts_per_hour = 1000000\nposts_per_day = 1000000\n"  # no pacing in tests
        self.bridge_settings = ""

    def write_config(self) -> None:
        feeds = "".join(f'[[feeds]]\nname = "{name}"\nurl = "{url}"\naccounts = ["takahe"]\n\n'
                        for name, url in self.feeds.items())
        self.config.write_text(
            f'[bridge]\nstate = "{self.state_path}"\nallow_private_addresses = true\n{self.bridge_settings}\n'
            f'[accounts.takahe]\ntype = "mastodon"\ninstance = "{self.takahe.url}"\n'
            f'access_token = {{ env = "{TOKEN_ENV}" }}\n{self.account_settings}\n{feeds}'
        )

    def feed(self, name: str, items: list[dict]) -> None:
        """Serve (or change) the JSON feed `name`."""
        self.server.route(f"/{name}.json", json_feed(items), content_type="application/feed+json")
        if name not in self.feeds:
            self.feeds[name] = self.server.url(f"/{name}.json")
            self.write_config()

    def env(self, **extra: str) -> dict[str, str]:
        proxy = self.server.base_url
        env = {**os.environ, TOKEN_ENV: self.token, "HTTP_PROXY": proxy, "http_proxy": proxy, "HTTPS_PROXY": proxy,
               "https_proxy": proxy, "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost", **extra}
        env.pop("BRIDGE_CONFIG", None)
        return env

    def command(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "bridge", "--config", str(self.config), *args]

    def bridge(self, *args: str, **env: str) -> subprocess.CompletedProcess:
        return subprocess.run(self.command(*args), capture_output=True, text=True, timeout=180, env=self.env(**env),
                              cwd=ROOT)

    def deliveries(self) -> list:
        with State.open_readonly(self.state_path) as state:
            return state.deliveries(account="takahe")

    def limits(self) -> dict:
        with State.open_readonly(self.state_path) as state:
            return state.account("takahe")["limits"]

    def statuses(self) -> list[dict]:
        return self.account.statuses()


@pytest.fixture
def world(tmp_path, feed_server, takahe):
    return World(tmp_path, feed_server, takahe, SCOPES)


def new_entries(world: World, items: list[dict], name: str = "blog") -> subprocess.CompletedProcess:
    """A feed polled once with nothing (its baseline), then with `items` as its new entries: `bridge poll`."""
    world.feed(name, [])
    baseline = world.bridge("poll")
    assert baseline.returncode == 0, baseline.stderr
    world.feed(name, items)
    run = world.bridge("poll", "--feed", name)
    # Flood control spaces posts 3600/posts_per_hour seconds apart: a post that fell a few microseconds short of
    # its turn waits for the next poll, as it would in service.
    for _ in range(5):
        if run.returncode != 0 or not any(row.state == "pending" for row in world.deliveries()):
            break
        time.sleep(0.1)
        run = world.bridge("poll", "--feed", name)
    return run


def assert_each_posted_once(world: World, links: list[str]) -> list[dict]:
    """Every link in exactly one status, no other status, and the state says posted with Takahē's ids."""
    statuses = world.statuses()
    found = {link: [s for s in statuses if html.escape(link) in s["content"]] for link in links}
    assert {link: len(hits) for link, hits in found.items()} == {link: 1 for link in links}, \
        [(d.link, d.state, d.last_error) for d in world.deliveries()]
    assert len(statuses) == len(links)
    rows = world.deliveries()
    assert sorted(row.state for row in rows) == ["posted"] * len(links), [(r.state, r.last_error) for r in rows]
    assert {row.remote_id for row in rows} == {s["id"] for s in statuses}
    return statuses


# --------------------------------------------------------------------------- posting what feeds hold


def test_corpus_entries_are_posted_and_read_back(world):
    assert corpus_available(), CORPUS_MISSING  # an integration test fails, never skips
    for name in CORPUS_FEEDS:
        world.feeds[name.split(".")[0]] = world.server.corpus_url(name)
    world.write_config()
    assert world.bridge("poll").returncode == 0
    runs = [world.bridge("backfill", "--feed", feed, "--limit", "2", "--pace", "1s") for feed in world.feeds]
    assert [run.returncode for run in runs] == [0] * len(runs), "".join(run.stderr for run in runs)
    rows = world.deliveries()
    assert len(rows) == 2 * len(CORPUS_FEEDS)
    statuses = assert_each_posted_once(world, [row.link for row in rows])
    for status in statuses:  # read back as posted: Takahē keeps the text bridge sent
        text = status_text(world.takahe, world.account, status["id"])
        [row] = [r for r in rows if r.remote_id == status["id"]]
        assert row.link in text
        assert len(text) <= 500


def test_the_service_posts_a_new_entry_once(world):
    world.bridge_settings += 'interval = "1s"\ndelivery_interval = "1s"\n'
    world.feed("blog", [])
    service = subprocess.Popen(world.command("run"), env=world.env(), cwd=ROOT, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        while not world.server.requests_for("/blog.json") and time.monotonic() < deadline:
            time.sleep(0.2)  # its first poll is the feed's baseline
        time.sleep(1)
        world.feed("blog", [{"id": "run-1", "url": "http://blog.example.com/run/1", "title": "Served",
                             "content_html": "<p>From the service.</p>"}])
        while time.monotonic() < deadline and not world.statuses():
            time.sleep(0.5)
        time.sleep(3)  # a few more polls: nothing more may be posted
    finally:
        service.send_signal(signal.SIGTERM)
        output = service.communicate(timeout=60)[0]
    assert service.returncode == 0, output
    assert_each_posted_once(world, ["http://blog.example.com/run/1"])


# --------------------------------------------------------------------------- limits


def refusals(takahe: TakaheServer, since: int) -> int:
    """How many statuses Takahē refused (400: too long) after request number `since`."""
    return sum(1 for method, path, status in takahe.requests()[since:]
               if (method, path, status) == ("POST", "/api/v1/statuses", 400))


def test_the_servers_limit_is_read_and_rendered_for(world):
    words = " ".join(f"word{n}" for n in range(120))  # far more than 300 characters
    try:
        world.takahe.set_post_length(300)
        mark = len(world.takahe.requests())
        run = new_entries(world, [{"id": "long-1", "url": "http://blog.example.com/long/1", "title": "A long one",
                                   "content_html": f"<p>{words}</p>"}])
        assert run.returncode == 0, run.stderr
        assert world.limits()["max_characters"] == 300
        [status] = assert_each_posted_once(world, ["http://blog.example.com/long/1"])
        text = status_text(world.takahe, world.account, status["id"])
        assert 250 < len(text) <= 300  # rendered for 300: cut to fit, not to Mastodon's 500
        assert refusals(world.takahe, mark) == 0  # rendered for 300 the first time, not refused and re-rendered
    finally:
        world.takahe.set_post_length(500)


def test_a_limit_lowered_under_the_cached_one_is_met_by_one_rerender(world):
    first = new_entries(world, [{"id": "short-1", "url": "http://blog.example.com/short/1", "title": "Short",
                                 "content_html": "<p>Brief.</p>"}])
    assert first.returncode == 0, first.stderr
    assert world.limits()["max_characters"] == 500  # read and cached (for a day)
    words = " ".join(f"word{n}" for n in range(120))
    try:
        world.takahe.set_post_length(300)  # the admin lowers it under bridge's cached value
        mark = len(world.takahe.requests())
        world.feed("blog", [{"id": "long-2", "url": "http://blog.example.com/long/2", "title": "Longer",
                             "content_html": f"<p>{words}</p>"},
                            {"id": "short-1", "url": "http://blog.example.com/short/1", "title": "Short",
                             "content_html": "<p>Brief.</p>"}])
        run = world.bridge("poll", "--feed", "blog")
        assert run.returncode == 0, run.stderr
        statuses = assert_each_posted_once(world, ["http://blog.example.com/short/1", "http://blog.example.com/long/2"])
        assert len(status_text(world.takahe, world.account, statuses[0]["id"])) <= 300
        assert refusals(world.takahe, mark) == 1  # refused once as too long, then re-rendered and accepted
        assert world.limits()["max_characters"] == 300  # and the limits were read anew
    finally:
        world.takahe.set_post_length(500)


NEAR_LIMIT = {
    # One grapheme, seven code points: Mastodon counts 1, Takahē 7. (Words among them: a paragraph of emoji alone
    # is no teaser, and the post would be its title and link.)
    "zwj": "A family 👩‍👩‍👧‍👦 " * 60,
    # Waving hands with skin tones and a subdivision flag: graphemes of 2 and 7 code points.
    "flags": "Hello 👋🏽 from 🏴󠁧󠁢󠁳󠁣󠁴󠁿 and 🇯🇵 " * 40,
    "cjk": "橋の上から川を眺める。" * 60,
}
_PREFIX = "http://blog.example.com/2026/12/04/"
LONG_URL = _PREFIX + ("how-a-bridge-carries-its-load-" * 6)[: 155 - len(_PREFIX) - 1] + "s"  # 155 characters, .com


def test_entries_at_the_limit_are_accepted_first_time_or_after_a_rerender(world):
    assert len(LONG_URL) == 155
    mark = len(world.takahe.requests())
    items = [{"id": f"near-{kind}", "url": f"http://blog.example.com/near/{kind}", "title": f"Near the limit: {kind}",
              "content_html": f"<p>{text}</p>"} for kind, text in NEAR_LIMIT.items()]
    items.append({"id": "near-url", "url": LONG_URL, "title": "A long address",
                  "content_html": "<p>" + "Words about a long address. " * 30 + "</p>"})
    run = new_entries(world, items)
    assert run.returncode == 0, run.stderr
    statuses = assert_each_posted_once(world, [item["url"] for item in items])
    lengths = [len(status_text(world.takahe, world.account, status["id"])) for status in statuses]
    assert all(400 < length <= 500 for length in lengths), lengths  # near Takahē's limit, in its count: code points
    rerendered = refusals(world.takahe, mark)
    print(f"\n[takahe] near-limit entries: {len(items)} posted, {len(items) - rerendered} first time, "
          f"{rerendered} after a re-render; lengths {sorted(lengths)}")


# --------------------------------------------------------------------------- exactly once


@pytest.mark.parametrize("scopes", [SCOPES, WRITE_ONLY], ids=["with-read", "write-only"])
def test_a_crash_after_the_remote_post_leaves_exactly_one_status(scopes, tmp_path, feed_server, takahe):
    assert "after-remote-post" in POINTS
    world = World(tmp_path, feed_server, takahe, scopes)
    link = "http://blog.example.com/crash/1"
    world.feed("blog", [])
    assert world.bridge("poll").returncode == 0
    world.feed("blog", [{"id": "crash-1", "url": link, "title": "Crash", "content_html": "<p>Once only.</p>"}])
    crashed = world.bridge("poll", "--feed", "blog", BRIDGE_TEST_CRASH_AT="after-remote-post")
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr
    assert len(world.statuses()) == 1  # the post reached Takahē; bridge never heard the answer
    for _ in range(2):
        again = world.bridge("poll", "--feed", "blog")
        assert again.returncode == 0 or "read" not in scopes, again.stderr  # a held post is a problem: exit 1
        assert "Traceback" not in again.stderr
    statuses = world.statuses()
    assert len(statuses) == 1, [s["content"] for s in statuses]
    [row] = world.deliveries()
    if "read" in scopes:  # bridge found its own post and recorded it
        assert row.state == "posted" and row.remote_id == statuses[0]["id"]
    else:  # it may not look: it waits for the writer rather than post blindly again, and says what to do
        assert row.state == "unknown", (row.state, row.last_error)
        report = world.bridge("status")
        assert "--force" in report.stdout and "read" in report.stdout, report.stdout


# --------------------------------------------------------------------------- media


def test_an_image_is_attached_with_its_alt_text(world):
    world.account_settings += "attach_image = true\n"
    world.server.image("/images/red.png", png_bytes(640, 480))
    alt = "A red rectangle, the colour of the bridge at dusk"
    image = world.server.url("/images/red.png")
    run = new_entries(world, [{"id": "img-1", "url": "http://blog.example.com/img/1", "title": "With a picture",
                               "content_html": f'<p>Look.</p><img src="{image}" alt="{alt}">'}])
    assert run.returncode == 0, run.stderr
    [status] = assert_each_posted_once(world, ["http://blog.example.com/img/1"])
    [media] = status["media_attachments"]
    assert media["type"] == "image" and media["description"] == alt
    fetched = httpx.get(media["url"], timeout=30)  # Takahē serves what it stored (as webp)
    assert fetched.status_code == 200 and fetched.content


# --------------------------------------------------------------------------- login and doctor


class _Forms(html.parser.HTMLParser):
    """The fields of each <form> on a page, as a browser would submit them (a <select> sends its first option)."""

    def __init__(self, page: str) -> None:
        super().__init__()
        self.forms: list[dict[str, str]] = []
        self._select: str | None = None
        self.feed(page)

    def handle_starttag(self, tag: str, attrs) -> None:
        attrs = dict(attrs)
        if tag == "form":
            self.forms.append({})
        elif self.forms and tag == "input" and attrs.get("name"):
            self.forms[-1][attrs["name"]] = attrs.get("value") or ""
        elif self.forms and tag == "select":
            self._select = attrs.get("name")
        elif self.forms and tag == "option" and self._select:
            self.forms[-1].setdefault(self._select, attrs.get("value") or "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "select":
            self._select = None

    def having(self, field: str) -> dict[str, str]:
        return next(form for form in self.forms if field in form)


def authorize_in_browser(takahe: TakaheServer, account: TakaheAccount, authorize_url: str) -> str:
    """What a user does in a browser: log in with email and password, approve, read the code off the page."""
    with httpx.Client(base_url=takahe.url, timeout=30, follow_redirects=True) as browser:
        fields = _Forms(browser.get("/auth/login/").text).having("csrfmiddlewaretoken")
        credentials = {"username": account.email, "password": account.password}
        logged_in = browser.post("/auth/login/", data={**fields, **credentials})
        assert logged_in.status_code == 200 and "sessionid" in browser.cookies, logged_in.text[:2000]
        approve_page = browser.get(authorize_url)
        assert approve_page.status_code == 200, approve_page.text[:2000]
        code_page = browser.post(authorize_url, data=_Forms(approve_page.text).having("identity"))
        assert code_page.status_code == 200, code_page.text[:2000]
    match = re.search(r'class="authorization-code">\s*([^<\s]+)\s*<', code_page.text)
    assert match, code_page.text[:2000]
    return match.group(1)


def test_login_mastodon_through_takahes_oauth_pages(world):
    login = subprocess.Popen(world.command("login", "mastodon", "--instance", world.takahe.url, "--print"),
                             env=world.env(), cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        prompt = ""
        deadline = time.monotonic() + 60
        while "/oauth/authorize?" not in prompt or "code here" not in prompt:
            assert time.monotonic() < deadline and login.poll() is None, prompt
            if select.select([login.stderr], [], [], 1)[0]:
                prompt += os.read(login.stderr.fileno(), 4096).decode()
        authorize_url = re.search(r"(http://127\.0\.0\.1:\d+/oauth/authorize\?\S+)", prompt).group(1)
        code = authorize_in_browser(world.takahe, world.account, authorize_url)
        out, err = login.communicate(code + "\n", timeout=60)
    finally:
        if login.poll() is None:
            login.kill()
    assert login.returncode == 0, prompt + err
    token = out.strip()
    assert token and token not in err
    me = httpx.get(f"{world.takahe.url}/api/v1/accounts/verify_credentials", timeout=30,
                   headers={"Authorization": f"Bearer {token}"})
    # The token is this identity's, and may read its own statuses: what bridge needs on Takahē after a crash.
    assert me.status_code == 200, me.text
    assert me.json()["username"] == world.account.username
    world.token = token
    run = new_entries(world, [{"id": "login-1", "url": "http://blog.example.com/login/1", "title": "Logged in",
                               "content_html": "<p>Posted with the new token.</p>"}])
    assert run.returncode == 0, run.stderr
    assert_each_posted_once(world, ["http://blog.example.com/login/1"])


def test_doctor_passes_and_names_the_server(world):
    world.feed("blog", [])
    doctor = world.bridge("doctor")
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr
    report = doctor.stdout + doctor.stderr
    assert re.search(r"takah[eē]", report, re.I) and "0.11" in report
    assert "500" in report  # the limits it read
    assert world.token not in report
    assert world.statuses() == []  # its probe posted nothing
