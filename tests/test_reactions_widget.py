"""The comments widget in a real browser: Debian's Chromium driven by Playwright (executable_path; no download).

A local page server on 127.0.0.1 serves a blog post under a strict Content-Security-Policy (no inline script or
style, Trusted Types required, only its own origin for scripts and fetches) with the two lines a writer adds,
the no-JavaScript fragment inside the element as a site generator would include it, and the files bridge wrote
into comments_dir from a state holding replies -- some of them hostile. Screenshots are kept in
tests/artifacts/ (ignored by git); their paths are printed.
"""

from __future__ import annotations

import functools
import http.server
import json
import threading
import time
from pathlib import Path

import pytest

from bridge.config import load_config
from bridge.model import Entry
from bridge.reactions.files import document_name
from bridge.reactions.publish import publish_all
from bridge.state import State
from tests.feedserver import png_bytes

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
PERMALINK = "https://blog.example.com/posts/bridges/"
ROOT_URL = "https://social.example/@writer/1000"
AVATAR = "https://avatars.test/alice.png"
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' https:; connect-src 'self'; "
       "base-uri 'none'; form-action 'none'; frame-ancestors 'none'; require-trusted-types-for 'script'")
HOSTILE_TEXT = ('<script>window.__pwned = 1</script> <img src=x onerror="window.__pwned = 2"> '
                "click javascript:window.__pwned=3 \u202eevil\u202c")
HOSTILE_HTML = ('<p><script>window.__pwned = 4</script><img src="x" onerror="window.__pwned = 5">'
                '<a href="javascript:window.__pwned = 6">click</a><a href="data:text/html,x">data</a></p>')


def reply(remote_id: str, parent: str, handle: str, text: str, **extra) -> dict:
    author = {"handle": handle, "name": extra.pop("name", handle.split("@")[0].title()),
              "avatar_url": extra.pop("avatar", None), "profile_url": extra.pop("profile", f"https://social.example/@{handle.split('@')[0]}"),
              "id": remote_id + "-author", "noindex": False}
    return {"platform": "mastodon", "remote_id": remote_id, "url": extra.pop("url", f"https://social.example/@x/{remote_id}"),
            "author": author, "created_at": extra.pop("created_at", f"2026-12-01T10:{remote_id[-2:]}:00.000Z"),
            "parent_id": parent, "text": text, "content_html": extra.pop("html", ""), "language": "en",
            "visibility": "public"}


REPLIES = [
    reply("1001", "1000", "alice@social.example", "Lovely bridges! See https://example.org/bridges", avatar=AVATAR),
    reply("1002", "1001", "bob@other.example", "Agreed, Alice.", avatar="http://insecure.example/bob.png"),
    reply("1003", "1002", "alice@social.example", "Thanks, Bob.", avatar=AVATAR),
    reply("1004", "1000", "carol@social.example", "A different view."),
    reply("1005", "1000", "mallory@evil.example", HOSTILE_TEXT, html=HOSTILE_HTML,
          name="<img src=x onerror=\"window.__pwned = 7\">\u202egnp.exe", url="javascript:window.__pwned = 8",
          profile="javascript:window.__pwned = 9", avatar="data:image/svg+xml,<svg onload='window.__pwned=10'/>"),
]


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The writer's site: the comments files written by bridge's own code, and a post page under a strict CSP."""
    root = tmp_path_factory.mktemp("site")
    config_path = root / "config.toml"
    config_path.write_text(f'[bridge]\nstate = "{root}/state.sqlite3"\ncomments_dir = "{root}/comments"\n\n'
                           '[accounts.masto]\ntype = "mastodon"\ninstance = "https://social.example"\n'
                           'access_token = { env = "UNUSED_TOKEN" }\n')
    config = load_config(config_path)
    now = time.time()
    with State.open(config.state_path()) as state:
        state.ensure_feed("blog", "https://blog.example.com/feed.xml")
        entry_id = state.add_entry("blog", Entry(key="bridges", link=PERMALINK, title="On bridges"), "new", "h", [], now)
        delivery_id = state.add_delivery(entry_id, "masto", idempotency_key="k", rkey=None, now=now)
        state.mark_posted(delivery_id, "1000", ROOT_URL, now)
        state.save_reactions(delivery_id, root_url=ROOT_URL, counts={"likes": 3, "reposts": 2, "quotes": None, "replies": 5},
                             hidden_ids=[], replies=REPLIES, now=now, next_refresh_at=now + 900)
        publish_all(config, state)
    name = document_name(PERMALINK)
    fragment = (root / "comments" / f"{name}.html").read_text()
    page = (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>On bridges</title>'
            f'<link rel="stylesheet" href="/comments/bridge-comments.css"></head><body>'
            f"<article><h1>On bridges</h1><p>Text of the post.</p></article>"
            f"<script>window.__inline = 1</script>"  # the CSP must stop this, or the test proves nothing
            f'<div id="bridge-comments" data-src="/comments/{name}.json">{fragment}</div>'
            f'<script src="/comments/bridge-comments.js" defer></script></body></html>')
    (root / "post.html").write_text(page)
    (root / "dark.css").write_text("body { background: #111; color: #eee } a { color: #8cf }")
    handler = functools.partial(_Handler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", root / "comments" / f"{name}.json"
    server.shutdown()
    server.server_close()


class _Handler(http.server.SimpleHTTPRequestHandler):
    def end_headers(self) -> None:
        self.send_header("Content-Security-Policy", CSP)
        self.send_header("Cache-Control", "no-store")
        super().end_headers()

    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield chromium
        chromium.close()


def _shot(page, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    page.screenshot(path=str(path), full_page=True)
    print(f"\nscreenshot: {path}")
    return path


def _watch(page, origin: str) -> dict:
    seen = {"dialogs": [], "errors": [], "outside": [], "requests": []}
    page.on("dialog", lambda dialog: (seen["dialogs"].append(dialog.message), dialog.dismiss()))
    page.on("pageerror", lambda error: seen["errors"].append(str(error)))
    page.on("console", lambda message: message.type == "error" and seen["errors"].append(message.text))

    def request(req) -> None:
        seen["requests"].append(req.url)
        if not req.url.startswith(origin + "/"):
            seen["outside"].append(req.url)

    page.on("request", request)
    # Avatars come from the platforms' servers: answered here, so that nothing leaves this machine.
    page.route("https://avatars.test/**", lambda route: route.fulfill(status=200, content_type="image/png",
                                                                       body=png_bytes(40, 40)))
    page.add_init_script("window.__violations = [];"
                         "document.addEventListener('securitypolicyviolation', e => window.__violations.push("
                         "e.violatedDirective + ' ' + e.blockedURI));")
    return seen


def test_widget_shows_replies_threaded_and_hostile_text_as_text(site, browser):
    origin, _ = site
    context = browser.new_context()
    page = context.new_page()
    seen = _watch(page, origin)
    page.goto(origin + "/post.html")
    page.wait_for_selector("#bridge-comments[data-state=loaded]")
    section = page.locator("#bridge-comments section.bridge-comments")
    assert section.get_attribute("aria-label")
    assert section.locator(".bridge-comments-counts").inner_text() == "3 likes · 2 reposts · 5 replies"
    reply_on = section.get_by_role("link", name="Reply on Mastodon")
    assert reply_on.get_attribute("href") == ROOT_URL
    # threaded: three top-level replies, Bob under Alice, Alice's answer under Bob
    top = section.locator(":scope > ol > li")
    assert top.count() == 3
    assert "Lovely bridges!" in top.nth(0).inner_text()
    assert top.nth(0).locator(":scope > ol > li").count() == 1
    assert "Agreed, Alice." in top.nth(0).locator(":scope > ol > li").inner_text()
    assert "Thanks, Bob." in top.nth(0).locator(":scope > ol > li > ol > li").inner_text()
    # a link in a reply's text is a link; the avatar over https is shown, without a referrer; http ones are not
    assert section.get_by_role("link", name="https://example.org/bridges").count() == 1
    avatars = section.locator("img.bridge-comments-avatar")
    assert [avatars.nth(i).get_attribute("src") for i in range(avatars.count())] == [AVATAR, AVATAR]
    assert avatars.first.evaluate("img => img.referrerPolicy") == "no-referrer"
    # the hostile reply: every piece of it is text, nothing ran, nothing was fetched for it
    hostile = top.nth(2)
    text = hostile.inner_text()
    assert "<script>window.__pwned = 1</script>" in text and '<img src=x onerror="window.__pwned = 2">' in text
    assert '<img src=x onerror="window.__pwned = 7">' in text  # the author's name, as text
    assert "\u202e" not in page.locator("body").inner_text()  # bidi overrides neutralized
    assert page.evaluate("window.__pwned") is None
    assert page.evaluate("window.__inline") is None  # the CSP is in force
    assert page.evaluate("document.scripts.length") == 2  # the page's own two; none came from a reply
    assert page.evaluate("[...document.querySelectorAll('[onerror], [onload], [style]')].length") == 0
    hrefs = page.evaluate("[...document.querySelectorAll('a')].map(a => a.getAttribute('href'))")
    assert hrefs and all(href.startswith(("https://", "http://")) for href in hrefs), hrefs
    assert hostile.locator("a").count() == 0  # its reply URL and profile were javascript: -- not links
    assert page.evaluate("[...document.images].map(i => i.src)") == [AVATAR, AVATAR]
    # keyboard: Tab reaches the widget's links in order
    page.locator("body").focus()
    focused = []
    for _ in range(4):
        page.keyboard.press("Tab")
        focused.append(page.evaluate("document.activeElement.closest('#bridge-comments') !== null && document.activeElement.tagName"))
    assert focused[0] == "A" and all(focused)
    # contrast: every text in the widget, light page or dark, in light or dark colour scheme, is above WCAG AA
    assert min(_contrasts(page)) >= 4.5
    page.emulate_media(color_scheme="dark")
    assert min(_contrasts(page)) >= 4.5
    page.add_style_tag(url=origin + "/dark.css")  # a dark site
    assert min(_contrasts(page)) >= 4.5
    page.emulate_media(color_scheme="light")
    assert seen["dialogs"] == [] and page.evaluate("window.__pwned") is None
    assert seen["outside"] == [AVATAR], seen["outside"]  # one avatar, once (cached), and nothing else
    violations = page.evaluate("window.__violations")
    assert [v for v in violations if not v.startswith("script-src")] == [], violations  # only the planted inline script
    assert all("inline" in v for v in violations), violations
    assert [e for e in seen["errors"] if "Content Security Policy" not in e] == [], seen["errors"]
    _shot(page, "reactions-widget.png")
    context.close()


# The contrast of each text node's colour (with its opacity) against the page's background, per WCAG 2.
_CONTRASTS = """() => {
  const rgb = value => (value.match(/[\\d.]+/g) || []).map(Number);
  const lum = ([r, g, b]) => [r, g, b].map(c => { c /= 255; return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4; })
                                  .reduce((sum, c, i) => sum + c * [0.2126, 0.7152, 0.0722][i], 0);
  const background = rgb(getComputedStyle(document.body).backgroundColor);
  const base = background.length === 4 && background[3] === 0 ? [255, 255, 255] : background.slice(0, 3);
  const out = [];
  for (const el of document.querySelectorAll('#bridge-comments *')) {
    if (![...el.childNodes].some(n => n.nodeType === 3 && n.textContent.trim())) continue;
    let alpha = 1;
    for (let node = el; node && node.nodeType === 1; node = node.parentElement) alpha *= Number(getComputedStyle(node).opacity);
    const color = rgb(getComputedStyle(el).color).slice(0, 3).map((c, i) => c * alpha + base[i] * (1 - alpha));
    const [hi, lo] = [lum(color), lum(base)].sort((a, b) => b - a);
    out.push((hi + 0.05) / (lo + 0.05));
  }
  return out;
}"""


def _contrasts(page) -> list[float]:
    values = page.evaluate(_CONTRASTS)
    assert values, "no text found in the widget"
    return values


def test_without_javascript_the_fragment_lists_the_same_replies(site, browser):
    origin, document_path = site
    document = json.loads(document_path.read_text())
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    seen = _watch(page, origin)
    page.goto(origin + "/post.html")
    fragment = page.locator("#bridge-comments section.bridge-comments")
    assert fragment.get_attribute("aria-label")
    items = fragment.locator("li:has(> p)")
    texts = [items.nth(i).locator(":scope > p").inner_text() for i in range(items.count())]

    def walk(replies):
        for item in replies:
            yield item["text"]
            yield from walk(item["replies"])

    assert texts == list(walk(document["replies"])) and len(texts) == 5
    assert fragment.get_by_role("link", name="Reply on Mastodon").get_attribute("href") == ROOT_URL
    assert fragment.locator("a", has_text="Alice (@alice@social.example)").first.get_attribute("href") == \
        "https://social.example/@x/1001"
    assert "<script>window.__pwned = 1</script>" in fragment.inner_text()
    assert page.locator("#bridge-comments").get_attribute("data-state") is None  # the widget did not run
    assert [url for url in seen["outside"]] == [] and seen["dialogs"] == []
    _shot(page, "reactions-fragment-nojs.png")
    context.close()
