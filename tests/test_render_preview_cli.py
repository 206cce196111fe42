"""`bridge preview`: the exact payloads each account would get, as JSON or text, writing nothing.

Feeds come from the shared corpus (a file on disk, or served on loopback by tests/feedserver.py); article
pages and images are our own, on loopback.
"""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from bridge.cli import cli
from bridge.errors import ConfigError
from bridge.linkpreview import clear_cache
from tests.feedserver import png_bytes

from tests.render_corpus import CORPUS_DIR, requires_corpus

KEYS = {"feed", "entry", "link", "account", "platform", "payload"}


def run(*args: str, home: Path):
    runner = CliRunner()
    env = {"BRIDGE_CONFIG": None, "XDG_CONFIG_HOME": str(home / "config"), "XDG_DATA_HOME": str(home / "data"),
           "CONFIGURATION_DIRECTORY": None, "STATE_DIRECTORY": None}  # fmt: skip
    return runner.invoke(cli, list(args), env=env, catch_exceptions=True)


def check_payloads(items: list[dict]) -> None:
    for item in items:
        assert set(item) == KEYS, item
        payload = item["payload"]
        if item["platform"] == "mastodon":
            assert set(payload) == {"status", "spoiler_text", "visibility", "language", "media"}
            assert item["link"] in payload["status"]
        elif item["platform"] == "nostr":  # unsigned: no id, pubkey, created_at or sig until it is posted
            [note] = payload["events"]  # no article without long_form
            assert set(note) == {"kind", "content", "tags"} and note["kind"] == 1
            assert item["link"] in note["content"] and ["r", item["link"]] in note["tags"]
        elif item["platform"] == "threads":  # the container's parameters: the link preview is the permalink
            assert set(payload) == {"media_type", "text", "link_attachment", "image_url", "alt_text"}
            assert payload["media_type"] == "TEXT" and payload["link_attachment"] == item["link"]
            assert item["link"] in payload["text"] and payload["text"].count("#") <= 1
        else:
            assert item["platform"] == "bluesky" and list(payload) == ["record"]
            record = payload["record"]
            assert record["$type"] == "app.bsky.feed.post"
            assert {"text", "facets", "langs", "embed", "createdAt"} <= set(record)
            assert record["createdAt"].endswith("Z")
            assert record["embed"]["external"]["uri"] == item["link"]  # the card is the link


@requires_corpus
def test_preview_file_as_json_without_any_config(tmp_path):
    path = CORPUS_DIR / "django-simonwillison.atom"
    result = run("preview", "--file", str(path), "--json", "--no-fetch", "--limit", "3", home=tmp_path)
    assert result.exit_code == 0, result.output
    items = json.loads(result.output)
    assert len(items) == 12
    assert [item["account"] for item in items[:4]] == ["mastodon", "bluesky", "nostr", "threads"]
    assert {item["feed"] for item in items} == {str(path)}
    check_payloads(items)
    assert items[0]["entry"].startswith("http://simonwillison.net/2023/Jul/16/weeknotes/")
    assert not (tmp_path / "data").exists(), "preview wrote something"


@requires_corpus
def test_preview_file_as_text(tmp_path):
    path = CORPUS_DIR / "microblog-mjdescy.rss"
    result = run("preview", "--file", str(path), "--entry", "1", "--no-fetch", home=tmp_path)
    assert result.exit_code == 0, result.output
    assert "Boston is a great city to visit in the spring." in result.output
    assert "/500 characters" in result.output and "/300 graphemes" in result.output
    assert "mastodon (mastodon)" in result.output and "bluesky (bluesky)" in result.output


@requires_corpus
def test_preview_entry_by_key_and_unknown_entry(tmp_path):
    path = CORPUS_DIR / "lang-ur-bbcurdu-rtl.rss"
    result = run("preview", "--file", str(path), "--entry", "http://www.bbc.com/urdu/pakistan-42575603", "--json", "--no-fetch",
                 "--account", "bluesky", home=tmp_path)  # fmt: skip
    assert result.exit_code == 0, result.output
    items = json.loads(result.output)
    assert [(i["account"], i["platform"]) for i in items] == [("bluesky", "bluesky")]
    assert items[0]["payload"]["record"]["langs"] == ["ur"]
    result = run("preview", "--file", str(path), "--entry", "no-such-entry", "--no-fetch", home=tmp_path)
    assert result.exit_code == 2 and "no entry" in result.output


def test_preview_needs_exactly_one_source(tmp_path):
    assert run("preview", home=tmp_path).exit_code == 2
    assert run("preview", "--url", "http://127.0.0.1:9/feed", "--feed", "x", home=tmp_path).exit_code == 2


def test_preview_feed_needs_a_config(tmp_path):
    result = run("preview", "--feed", "blog", home=tmp_path)
    assert isinstance(result.exception, ConfigError)  # main() turns it into exit code 2


@requires_corpus
def test_preview_configured_feed_uses_its_accounts_and_overrides(tmp_path, feed_server):
    config = tmp_path / "config.toml"
    config.write_text(
        f"""
[bridge]
state = "{tmp_path}/state.sqlite3"

[accounts.masto]
type = "mastodon"
instance = "https://mastodon.example"

[accounts.sky]
type = "bluesky"
handle = "me.bsky.social"

[[feeds]]
name = "blog"
url = "{feed_server.corpus_url('microblog-mjdescy.rss')}"
accounts = ["masto", "sky"]
template_untitled = "{{summary}} {{url}}"

[feeds.overrides.sky]
language = "en-GB"
""",
        encoding="utf-8",
    )
    result = run("--config", str(config), "preview", "--feed", "blog", "--entry", "1", "--json", "--no-fetch", home=tmp_path)
    assert result.exit_code == 0, result.output
    items = json.loads(result.output)
    assert [(i["feed"], i["account"], i["platform"]) for i in items] == [("blog", "masto", "mastodon"), ("blog", "sky", "bluesky")]
    check_payloads(items)
    assert items[0]["payload"]["status"] == "Boston is a great city to visit in the spring. https://micro.mjdescy.me/2023/05/29/boston-is-a.html"
    result = run("--config", str(config), "preview", "--feed", "blog", "--account", "nobody", "--no-fetch", home=tmp_path)
    assert isinstance(result.exception, ConfigError)
    assert not (tmp_path / "state.sqlite3").exists(), "preview wrote state"


def test_preview_url_fetches_page_data_and_thumbnail(tmp_path, feed_server):
    clear_cache()
    post_url = feed_server.url("/2024/05/post")
    feed_server.page(
        "/2024/05/post",
        '<html><head><meta property="og:title" content="The page title"><meta property="og:description" '
        'content="The page description."><meta property="og:image" content="/cover.png">'
        '<meta property="og:image:alt" content="A red square"></head><body></body></html>',
    )
    feed_server.image("/cover.png", png_bytes(1200, 630))
    feed_server.route(
        "/feed.xml",
        f"""<?xml version="1.0"?><rss version="2.0"><channel><title>Local blog</title><link>{feed_server.base_url}/</link>
<item><title>A local post</title><link>{post_url}</link><guid>{post_url}</guid>
<description>&lt;p&gt;What the feed says.&lt;/p&gt;</description><category>Testing</category></item></channel></rss>""",
        content_type="application/rss+xml",
    )
    config = tmp_path / "config.toml"
    config.write_text(
        f"""
[bridge]
state = "{tmp_path}/state.sqlite3"
allow_private_addresses = true

[accounts.masto]
type = "mastodon"
instance = "https://mastodon.example"
attach_image = true

[accounts.sky]
type = "bluesky"
handle = "me.bsky.social"
""",
        encoding="utf-8",
    )
    result = run("--config", str(config), "preview", "--url", feed_server.url("/feed.xml"), "--json", home=tmp_path)
    assert result.exit_code == 0, result.output
    items = json.loads(result.output)
    check_payloads(items)
    mastodon, bluesky = items[0]["payload"], items[1]["payload"]
    assert mastodon["status"] == f"A local post\n\nWhat the feed says.\n\n{post_url}\n\n#Testing"
    assert mastodon["media"] == [{"url": feed_server.url("/cover.png"), "description": "A red square"}]
    external = bluesky["record"]["embed"]["external"]
    assert (external["title"], external["description"]) == ("The page title", "The page description.")
    assert external["thumb"] == {"source_url": feed_server.url("/cover.png"), "size": len(png_bytes(1200, 630)),
                                 "width": 1200, "height": 630, "mime_type": "image/png"}  # fmt: skip


def test_preview_does_not_fetch_private_pages_unless_allowed(tmp_path, feed_server):
    clear_cache()
    post_url = feed_server.url("/p")
    feed_server.page("/p", '<html><head><meta property="og:title" content="Page"></head></html>')
    feed_server.route(
        "/f.xml",
        f"""<rss version="2.0"><channel><title>T</title><item><title>Feed title</title><link>{post_url}</link></item></channel></rss>""",
        content_type="application/rss+xml",
    )
    result = run("preview", "--url", feed_server.url("/f.xml"), "--json", "--account", "bluesky", home=tmp_path)
    assert result.exit_code == 0, result.output
    [item] = json.loads(result.stdout)
    assert item["payload"]["record"]["embed"]["external"]["title"] == "Feed title"
    assert feed_server.requests_for("/p") == []
    assert result.stderr.startswith(f"preview: {post_url}: the article page could not be read (")  # and why
    assert item["fallback"] in result.stderr


@requires_corpus
def test_preview_file_resolves_relative_links_against_the_feeds_site_link(tmp_path):
    # every entry link is root-relative (/livewire/...); the feed's own <link> names the site
    path = CORPUS_DIR / "relative-tpm-entry-links.atom"
    result = run("preview", "--file", str(path), "--json", "--no-fetch", "--limit", "0", home=tmp_path)
    assert result.exit_code == 0, result.output
    items = json.loads(result.output)
    # 20 entries x the three default accounts (mastodon, bluesky, nostr)
    assert len(items) == 80 and all(item["payload"] for item in items)
    assert all(item["link"].startswith("http://talkingpointsmemo.com/") for item in items)
    assert items[0]["link"] == ("http://talkingpointsmemo.com/livewire/"
                                "hannity-announces-fox-hired-sebastian-gorka-national-security-strategist")
    check_payloads(items)


@requires_corpus
def test_preview_file_with_only_relative_links_takes_a_base_url(tmp_path):
    path = CORPUS_DIR / "hugo-relative-links.rss"  # Hugo built without baseURL: even the site link is relative
    without = run("preview", "--file", str(path), "--json", "--no-fetch", "--limit", "1", home=tmp_path)
    assert "give --base-url" in without.stderr
    result = run("preview", "--file", str(path), "--base-url", "https://kopiascsaba.hu/blog/index.xml", "--json",
                 "--no-fetch", "--limit", "1", home=tmp_path)
    assert result.exit_code == 0, result.output
    items = json.loads(result.stdout)
    assert {item["link"] for item in items} == {"https://kopiascsaba.hu/blog/teaching-elderly-people-to-use-android/"}
    check_payloads(items)


def test_base_url_goes_with_file(tmp_path):
    result = run("preview", "--url", "https://blog.example/feed", "--base-url", "https://blog.example/", home=tmp_path)
    assert result.exit_code == 2 and "--base-url goes with --file" in result.output


@requires_corpus
def test_preview_of_a_public_feed_with_localhost_permalinks_shows_they_are_not_posted(tmp_path, monkeypatch):
    from bridge.cli import preview as preview_module
    from bridge.feeds import parse_feed

    # The feed is on a public host, which tests cannot reach: its fetch is replaced by the corpus document.
    body = (CORPUS_DIR / "jekyll-localhost-selflink.atom").read_bytes()
    monkeypatch.setattr(preview_module, "_fetch_and_parse", lambda config, url: parse_feed(body, url))
    result = run("preview", "--url", "https://science.example/atom.xml", "--json", "--no-fetch", "--limit", "1",
                 home=tmp_path)
    assert result.exit_code == 0, result.output
    items = json.loads(result.output)
    assert len(items) == 4 and all(item["payload"] is None for item in items)
    assert all("your site's base URL is set to http://localhost:4000" in item["error"] for item in items)


def test_preview_says_when_article_pages_cannot_be_read_and_the_feed_alone_made_the_post(tmp_path, feed_server):
    from tests.test_pipeline import posts, rss

    clear_cache()
    host = f"127.0.0.1:{feed_server.port}"
    feed_server.route("/feed", rss(posts(2, scheme="http", host=host)), content_type="application/rss+xml")
    feed_server.page("/posts/0/", '<html><head><meta property="og:title" content="From the page"></head></html>')
    # /posts/1/ is not there: 404
    config = tmp_path / "config.toml"
    config.write_text(f'[bridge]\nstate = "{tmp_path}/s.sqlite3"\nallow_private_addresses = true\n'
                      f'[accounts.masto]\ntype = "mastodon"\ninstance = "https://mastodon.example"\n'
                      f'[[feeds]]\nname = "blog"\nurl = "{feed_server.url("/feed")}"\naccounts = ["masto"]\n')
    result = run("--config", str(config), "preview", "--feed", "blog", "--json", home=tmp_path)
    assert result.exit_code == 0, result.output
    missing = f"http://{host}/posts/1/"
    assert result.stderr.splitlines() == [
        f"preview: {missing}: the article page could not be read ({missing}: HTTP 404): the preview uses the "
        "feed's own data"]
    read, unread = json.loads(result.stdout)
    assert set(read) == KEYS  # the documented keys, and only those, when the page was read
    assert set(unread) == KEYS | {"fallback"}
    assert unread["fallback"] == (f"the article page could not be read ({missing}: HTTP 404): the preview uses the "
                                  "feed's own data")
    feed_only = json.loads(run("--config", str(config), "preview", "--feed", "blog", "--json", "--no-fetch",
                               home=tmp_path).stdout)
    assert unread["payload"] == feed_only[1]["payload"]  # what `poll` would post: the feed's own data
