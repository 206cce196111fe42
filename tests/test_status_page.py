"""The status page, /metrics and /healthz of a real `bridge run`: feeds on the local feed server, posts on the
Mastodon fake, one account paused by a revoked token, a failing feed, a refused post, and hostile titles. The page
is loaded in headless Chromium (Debian's, driven by Playwright) and checked with axe-core."""

from __future__ import annotations

import html
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

from tests.feedserver import FeedServer
from tests.mastodon_fake import MastodonFake
from tests.test_daemon import ROOT, wait_for
from tests.test_pipeline import posts, rss
from tests.web_helpers import RunningDaemon, fetch, metric_samples, start_daemon

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = ROOT / "tests" / "artifacts"
AXE_VERSION = "4.14.1"  # tests/install-axe.sh
HOSTILE_FEED = "<script>window.__pwned = 'feed'</script><img src=x onerror=\"window.__pwned = 'img'\"> Notes & co"
HOSTILE_ENTRY = "<img src=x onerror=\"window.__pwned = 'entry'\"><b>bold?</b> post"
PAUSE_FIX = "create a new access token"


@dataclass
class Site:
    daemon: RunningDaemon
    fake: MastodonFake
    tokens: list[str]
    status: dict


def _entries(feeds: FeedServer, count: int, start: int = 0) -> list[dict]:
    items = posts(count, start=start, scheme="http", host=f"127.0.0.1:{feeds.port}")
    for item in items:
        # Escaped twice: an entry's title is HTML inside XML, and bridge keeps its text ("&lt;img" is "<img").
        item["title"] = html.escape(html.escape(f"{HOSTILE_ENTRY} {item['title']}"))
    return items


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Site:
    tmp = tmp_path_factory.mktemp("site")
    with FeedServer() as feeds, MastodonFake() as fake:
        token = fake.add_account("writer")
        revoked = fake.add_account("former")
        fake.revoke(revoked)
        feeds.route("/feed", rss(_entries(feeds, 2), title=html.escape(HOSTILE_FEED)))
        feeds.error("/broken", 500)
        account = ('[accounts.{name}]\ntype = "mastodon"\ninstance = "{url}"\naccess_token = {{ env = "{env}" }}\n'
                   'posts_per_hour = 1000000\nmax_attempts = 1\n')
        config = tmp / "config.toml"
        config.write_text(
            f'[bridge]\nstate = "{tmp}/state.sqlite3"\ninterval = "1s"\ndelivery_interval = "1s"\nretry_delay = "1h"\n'
            f'allow_private_addresses = true\nhttp_listen = "127.0.0.1:0"\n'
            + account.format(name="masto", url=fake.url, env="BRIDGE_TEST_TOKEN")
            + account.format(name="former", url=fake.url, env="BRIDGE_TEST_REVOKED")
            + f'[[feeds]]\nname = "blog"\nurl = "{feeds.url("/feed")}"\naccounts = ["masto", "former"]\n'
            + f'[[feeds]]\nname = "broken"\nurl = "{feeds.url("/broken")}"\naccounts = ["masto"]\n')
        daemon = start_daemon(config, tmp / "daemon.log", {"BRIDGE_TEST_TOKEN": token, "BRIDGE_TEST_REVOKED": revoked})
        try:
            wait_for(lambda: _feed(daemon.status(), "blog")["last_success"], what="the baseline poll")
            fake.inject("status_create", 500, times=1)  # with max_attempts = 1, one post fails: a failure and its fix
            feeds.route("/feed", rss(_entries(feeds, 3, start=10) + _entries(feeds, 2), title=html.escape(HOSTILE_FEED)))

            def settled() -> dict | None:
                status = daemon.status()
                masto, former = (_account(status, name) for name in ("masto", "former"))
                done = masto["posted"] == 2 and masto["failed"] == 1 and former["paused"]
                return status if done and _feed(status, "broken")["consecutive_errors"] else None

            status = wait_for(settled, timeout=60, step=0.5, what="two posts, one failure and a paused account")
            yield Site(daemon, fake, [token, revoked], status)
        finally:
            code, log = daemon.stop()
        assert code == 0, log


def _feed(status: dict, name: str) -> dict:
    return next(feed for feed in status["feeds"] if feed["name"] == name)


def _account(status: dict, name: str) -> dict:
    return next(account for account in status["accounts"] if account["name"] == name)


@pytest.fixture(scope="module")
def axe_source() -> str:
    subprocess.run(["bash", str(ROOT / "tests" / "install-axe.sh")], check=True, timeout=300)
    return (Path.home() / ".cache" / "bridge-tests" / f"axe-core-{AXE_VERSION}" / "axe.min.js").read_text()


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM)
        yield browser
        browser.close()


class Watched:
    """A page with everything it says and asks for recorded."""

    def __init__(self, page, origin: str) -> None:
        self.page = page
        self.errors: list[str] = []
        self.dialogs: list[str] = []
        self.foreign: list[str] = []
        page.on("console", lambda message: message.type == "error" and self.errors.append(message.text))
        page.on("pageerror", lambda error: self.errors.append(str(error)))
        page.on("dialog", lambda dialog: (self.dialogs.append(dialog.message), dialog.dismiss()))
        page.on("request", lambda request: request.url.startswith(origin) or self.foreign.append(request.url))


def test_the_page_shows_the_paused_account_with_its_fix_and_hostile_text_as_text(site, browser):
    context = browser.new_context()
    page = context.new_page()
    watched = Watched(page, site.daemon.url)
    page.goto(site.daemon.url)
    page.wait_for_load_state("networkidle")

    attention = page.locator("#attention")
    paused = attention.locator(".problem", has_text="Account former is paused")
    assert paused.is_visible()
    assert PAUSE_FIX in paused.inner_text()
    assert attention.locator(".problem", has_text="Feed broken fails").is_visible()
    refused = attention.locator(".problem", has_text="Account masto: a post failed")
    assert "bridge retry --account masto" in refused.inner_text()
    assert "need" in page.title()

    # Hostile titles are text: shown as written, no element made of them, nothing run.
    assert page.locator("#feed-blog .feed-title").inner_text() == HOSTILE_FEED
    titles = [post["title"] for post in site.daemon.status()["recent_posts"]]
    assert len(titles) == 2 and all(title.startswith(HOSTILE_ENTRY) for title in titles)
    assert page.locator("#recent tbody th").all_inner_texts() == titles
    assert page.locator("script, img, b").count() == 0
    assert page.evaluate("() => window.__pwned === undefined")

    # Recent posts link to the posts on the fake, by their own URLs.
    hrefs = page.locator("#recent a").evaluate_all("links => links.map(link => link.href)")
    for status in site.fake.statuses("writer"):
        assert status["url"] in hrefs
    assert page.locator("link[rel=stylesheet]").count() == 1
    assert page.locator(".cards").first.evaluate("node => getComputedStyle(node).display") == "grid"  # the CSS loaded
    assert watched.errors == [] and watched.dialogs == [] and watched.foreign == []
    context.close()


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_the_page_passes_axe_without_serious_violations(site, browser, axe_source, scheme):
    context = browser.new_context(color_scheme=scheme)  # colour contrast is checked in both palettes
    page = context.new_page()
    page.goto(site.daemon.url)
    # Evaluated through the DevTools protocol: the page's CSP (no script at all) does not apply to it.
    page.evaluate(f"() => {{ {axe_source}\n }}")
    results = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    assert results["testEngine"] == {"name": "axe-core", "version": AXE_VERSION}
    serious = [(violation["id"], violation["help"], [node["target"] for node in violation["nodes"]])
               for violation in results["violations"] if violation["impact"] in ("serious", "critical")]
    assert serious == []
    assert page.locator("main").count() == 1 and page.locator("h1").count() == 1
    assert page.locator("table th[scope=col]").count() >= 7
    context.close()


def test_on_a_phone_the_page_fits_without_javascript_and_is_kept_as_a_screenshot(site, browser):
    context = browser.new_context(viewport={"width": 375, "height": 812}, device_scale_factor=2, is_mobile=True,
                                  has_touch=True, java_script_enabled=False)
    page = context.new_page()
    page.goto(site.daemon.url)
    page.wait_for_load_state("networkidle")
    assert page.locator("#attention .problem", has_text=PAUSE_FIX).is_visible()
    # Nothing wider than the screen: no sideways scrolling on a phone.
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 375
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "status-page-375px.png"
    page.screenshot(path=str(shot), full_page=True)
    print(f"\nstatus page screenshot (375 px wide): {shot}")
    assert shot.stat().st_size > 10_000
    context.close()


def test_metrics_agree_with_status_json(site):
    status = site.daemon.status()
    answer = fetch(site.daemon.url + "metrics")
    later = site.daemon.status()
    assert answer.status == 200 and answer.headers["Content-Type"].startswith("text/plain; version=")
    samples = metric_samples(answer.body)
    for account in status["accounts"]:
        labels = (("account", account["name"]), ("platform", "mastodon"))
        assert samples[("bridge_queue_length", labels)] == account["queued"]
        assert samples[("bridge_account_paused", labels)] == (1 if account["paused"] else 0)
        for state in ("posted", "queued", "failed", "unknown"):
            assert samples[("bridge_deliveries", tuple(sorted(labels + (("state", state),))))] == account[state]
    masto = (("account", "masto"), ("outcome", "posted"), ("platform", "mastodon"))
    assert samples[("bridge_posts_total", masto)] == _account(status, "masto")["posted"] == 2
    assert samples[("bridge_posts_total", (("account", "masto"), ("outcome", "failed"), ("platform", "mastodon")))] == 1
    assert samples[("bridge_posts_total", (("account", "former"), ("outcome", "paused"), ("platform", "mastodon")))] == 1
    # Latency from first sight to post: one observation per post of a new entry, each within the test's life.
    assert samples[("bridge_delivery_latency_seconds_count", (("platform", "mastodon"),))] == 2
    assert samples[("bridge_delivery_latency_seconds_bucket", (("le", "+Inf"), ("platform", "mastodon")))] == 2
    assert samples[("bridge_delivery_latency_seconds_sum", (("platform", "mastodon"),))] < 120
    # The failing feed fails on while the test reads: its count is between the one before and the one after.
    before = {feed["name"]: feed for feed in status["feeds"]}
    after = {feed["name"]: feed for feed in later["feeds"]}
    for name in before:
        errors = samples[("bridge_feed_consecutive_errors", (("feed", name),))]
        assert before[name]["consecutive_errors"] <= errors <= after[name]["consecutive_errors"]
        assert samples[("bridge_feed_pending_deliveries", (("feed", name),))] == before[name]["pending_deliveries"]
    assert before["broken"]["consecutive_errors"] >= 1 and before["blog"]["consecutive_errors"] == 0
    assert samples[("bridge_feed_fetches_total", (("code", "500"),))] >= 1
    assert samples[("bridge_feed_fetches_total", (("code", "200"),))] >= 2
    assert samples[("bridge_polls_total", (("outcome", "error"),))] >= 1
    assert samples[("bridge_polls_total", (("outcome", "new"),))] >= 2


def test_healthz_says_the_daemon_polls_and_nothing_shows_a_secret(site):
    health = fetch(site.daemon.url + "healthz")
    assert (health.status, health.body) == (200, "ok: polling on schedule\n")
    page = fetch(site.daemon.url)
    assert page.headers["Content-Security-Policy"].startswith("default-src 'none'")
    for body in (page.body, fetch(site.daemon.url + "metrics").body, health.body):
        for token in site.tokens:
            assert token not in body


def test_the_server_is_read_only(site):
    for method in ("POST", "PUT", "DELETE"):
        answer = fetch(site.daemon.url, method=method)
        assert answer.status == 405 and answer.headers["Allow"] == "GET, HEAD"
    head = fetch(site.daemon.url + "healthz", method="HEAD")
    assert head.status == 200 and head.body == ""
    assert fetch(site.daemon.url + "nowhere").status == 404
