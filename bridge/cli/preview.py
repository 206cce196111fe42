"""`bridge preview`: exactly what each account would receive for a feed's entries. Writes nothing.

    bridge preview (--feed NAME | --url URL | --file PATH) [--entry KEY] [--account NAME] [--limit N]
                   [--json] [--no-fetch]

Accounts: the feed's accounts (--feed), or every configured account (--url/--file; a configured feed with
that URL uses its own accounts and overrides). Without accounts in the config, or without a config file for
--url/--file, it previews for a default account of each platform, named like the platform (a Mastodon one
counts 500 characters). A server's limits come from the state database's cache when the daemon has read them,
else the platform's defaults.

`--json` prints a JSON array, one object per (entry, account):

    {"feed": "blog", "entry": "<entry key>", "link": "https://...", "account": "<account name>",
     "platform": "<the account's type>", "payload": {...}}

where payload is what the platform's target is handed (Platform.payload: Mastodon's status parameters,
Bluesky's {"record": ...}; see bridge/platforms/<name>/payload.py); an entry that cannot be rendered has
"payload": null and an "error" sentence instead. When the article page could not be read, a "fallback" sentence
says why (the payload is then made of the feed's own data, as `poll` would make it), and a line on stderr says so.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote, urlsplit

import click

from bridge.permalinks import site_url_fix, unreachable_site
from bridge.unexpected import unexpected

log = logging.getLogger("bridge.preview")

DEFAULT_LIMIT = 10


@dataclass
class _Target:
    name: str
    platform: object  # bridge.platforms.base.Platform
    settings: object  # PostSettings
    limits: dict | None = None  # the server's limits the daemon cached (Platform.server_limits), else defaults
    account: object | None = None  # its config (Platform.account_model); None for a default account
    entry_filter: object | None = None  # its filters (bridge.filters.EntryFilter); None for a default account


@click.command("preview")
@click.option("--feed", "feed_name", metavar="NAME", help="A feed from the config, fetched now.")
@click.option("--url", metavar="URL", help="Any feed URL, fetched now (no config needed).")
@click.option(
    "--file", "file_path", metavar="PATH", type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A feed document on disk (no config needed). Its relative links resolve against the feed's own site link.",
)  # fmt: skip
@click.option("--base-url", metavar="URL", help="With --file: the URL the document is served at, for its relative links.")
@click.option("--entry", "entry_id", metavar="KEY", help="Only this entry: its key (guid/id), its link, or its position (0 = first).")
@click.option("--account", "account_name", metavar="NAME", help="Only this account.")
@click.option("--limit", type=click.IntRange(min=0), default=DEFAULT_LIMIT, show_default=True, help="At most N entries, in feed order (0 = all).")
@click.option("--json", "as_json", is_flag=True, help="Print the payloads as JSON for scripts.")
@click.option("--no-fetch", is_flag=True, help="Do not fetch article pages or card images; use only the feed.")
@click.pass_obj
def preview(obj, feed_name, url, file_path, base_url, entry_id, account_name, limit, as_json, no_fetch) -> int:
    """Show the exact post each account would get for a feed's entries, without posting or saving anything."""
    from bridge.platforms.base import PayloadInputs
    from bridge.render import RenderError, render_post

    if sum(1 for source in (feed_name, url, file_path) if source) != 1:
        raise click.UsageError("give exactly one of --feed NAME, --url URL or --file PATH")
    if base_url and (not file_path or not base_url.lower().startswith(("http://", "https://"))):
        raise click.UsageError("--base-url goes with --file and is an http(s) URL, like https://example.com/feed.xml")
    config = _load_config(obj, required=bool(feed_name))
    feed_config = config.feed(feed_name) if feed_name else _configured_feed(config, url)
    label = feed_name or url or str(file_path)
    parsed, source_url = _parse(config, feed_config.url if feed_config else url, file_path, base_url)
    entries = _select(parsed.entries, entry_id, limit)
    feed_url = feed_config.url if feed_config else url  # a --file's location is not known: nothing to judge by
    targets = _targets(config, feed_config, url or source_url, account_name)
    created_at = datetime.now(UTC)
    client = None if no_fetch else _client(config)
    allow_private = bool(config and config.bridge.allow_private_addresses)
    results: list[dict] = []
    try:
        for entry in entries:
            link_preview, thumbnail, notes, fallback = _fetch_extras(client, entry, allow_private)
            for target in targets:
                result = {"feed": label, "entry": entry.key, "link": entry.link, "account": target.name,
                          "platform": target.platform.name}  # fmt: skip
                left_out = target.entry_filter.rejects(entry) if target.entry_filter else None
                if left_out:  # as `poll` records it: not posted, and why
                    result.update(payload=None, filtered=left_out, _notes=[], _title=entry.title, _target=target)
                    results.append(result)
                    continue
                try:
                    site = unreachable_site(entry.link, feed_url) if feed_url else None
                    if site:  # as `poll` records it: not posted
                        raise RenderError(f"not posted: {site_url_fix(site)}")
                    post = render_post(entry, target.settings, feed_title=parsed.title, preview=link_preview)
                    inputs = PayloadInputs(server_limits=target.limits, created_at=created_at,
                                           thumbnail=thumbnail or (lambda url: None), account=target.account,
                                           entry=entry)
                    result["payload"] = target.platform.payload(post, target.settings, inputs)
                except RenderError as exc:
                    result["payload"] = None
                    result["error"] = str(exc)
                except Exception as exc:  # as `poll` would record it on this entry's delivery; the others go on
                    result["payload"] = None
                    result["error"] = f"cannot make a post of it: {unexpected(log, exc, f'previewing {entry.key}')}"
                if fallback:  # said on stderr too; in the JSON only when it happened, the documented keys stay
                    result["fallback"] = fallback
                result["_notes"] = list(notes)
                result["_title"] = entry.title
                result["_target"] = target
                results.append(result)
    finally:
        if client is not None:
            client.close()
    if as_json:
        clean = [{k: v for k, v in r.items() if not k.startswith("_")} for r in results]
        click.echo(json.dumps(clean, indent=2, ensure_ascii=False))
    else:
        _print_text(results, label, len(entries))
    return 0


# --- wiring ---------------------------------------------------------------------------------------------------


def _load_config(obj, *, required: bool):
    from bridge.config import default_config_path, load_config

    path = getattr(obj, "config_path", None)
    if path is None and not required and not default_config_path().exists():
        return None  # --url/--file work without any config
    return load_config(path)


def _configured_feed(config, url: str | None):
    if config is None or not url:
        return None
    for feed in config.feeds:
        if feed.url == url:
            return feed
    return None


def _parse(config, url: str | None, file_path: Path | None, base_url: str | None = None):
    """(The feed, the URL its relative links resolved against); an unexpected error becomes a FeedParseError (one
    line, exit 1), never a traceback."""
    from bridge.errors import FeedError, FeedParseError

    try:
        if file_path is not None:
            return _parse_file(config, file_path, base_url)
        return _fetch_and_parse(config, url), url
    except FeedError:
        raise
    except Exception as exc:
        reason = unexpected(log, exc, f"reading the feed {url or file_path}")
        raise FeedParseError(f"{url or file_path}: cannot read the feed: {reason}") from None


_STAND_IN_HOST = "preview.invalid"  # RFC 2606: never a real host


def _parse_file(config, file_path: Path, base_url: str | None):
    """A document on disk. Its relative links resolve against --base-url, else against the site link the feed
    gives (a file:// location would make them links nobody can open), else they are left out with a hint."""
    from bridge.feeds import parse_feed

    body = file_path.read_bytes()
    if base_url:
        return parse_feed(body, base_url), base_url
    # A stand-in http location first: a file:// one would hide even a site link written without scheme
    # (<link>coghlan.me/</link>). A site link on the stand-in's host was relative: no use as a base.
    site_link = parse_feed(body, f"https://{_STAND_IN_HOST}/{quote(file_path.name)}").link
    if site_link and urlsplit(site_link).hostname != _STAND_IN_HOST:
        return parse_feed(body, site_link), site_link
    parsed = parse_feed(body, file_path.resolve().as_uri())
    if any(entry.link is None for entry in parsed.entries):
        click.echo(f"{file_path} gives no site link to resolve its relative links against: "
                   "give --base-url (the URL the feed is served at)", err=True)
    return parsed, file_path.resolve().as_uri()


def _fetch_and_parse(config, url: str | None):
    import asyncio  # here: every command loads this module (bridge --help lists it), few of them fetch

    from bridge.feeds import parse_feed

    from bridge.config import BridgeSettings
    from bridge.errors import FeedParseError
    from bridge.feeds import Fetcher

    async def fetch():
        async with Fetcher(config.bridge if config else BridgeSettings()) as fetcher:
            return await fetcher.fetch(url)

    result = asyncio.run(fetch())
    if not result.body:
        raise FeedParseError(f"{url}: the server sent no body")
    return parse_feed(result.body, result.url, content_type=result.content_type)


def _select(entries: list, entry_id: str | None, limit: int) -> list:
    if entry_id is None:
        return entries[:limit] if limit else list(entries)
    for entry in entries:
        if entry_id in (entry.key, entry.link):
            return [entry]
    if entry_id.isdigit() and int(entry_id) < len(entries):
        return [entries[int(entry_id)]]
    known = ", ".join(repr(e.key) for e in entries[:5]) + (" ..." if len(entries) > 5 else "")
    raise click.BadParameter(f"no entry {entry_id!r} in the feed; entries: {known or 'none'}", param_hint="--entry")


def _targets(config, feed_config, url: str, account_name: str | None) -> list[_Target]:
    from bridge.config import FeedConfig, HashtagSettings, PostSettings
    from bridge.errors import ConfigError
    from bridge.platforms import PLATFORMS, platform

    targets: list[_Target] = []
    if config is not None and config.accounts:
        feed = feed_config
        if feed is None:
            names = list(config.accounts)
            feed = FeedConfig(name="preview", url=url if url.startswith("http") else f"https://{_STAND_IN_HOST}/", accounts=names)
        names = [name for name in feed.accounts if account_name in (None, name)]
        if account_name is not None and not names:
            known = ", ".join(feed.accounts) or "none"
            raise ConfigError("--account", f"no account {account_name!r} for this feed", f"accounts here: {known}")
        cached = _cached_limits(config, [n for n in names if platform(config.accounts[n].type).server_limits])
        for name in names:
            account = config.accounts[name]
            targets.append(_Target(name, platform(account.type), config.post_settings(feed, name), cached.get(name),
                                   account, config.entry_filter(feed, name)))
        return targets
    settings = PostSettings(
        template="",  # each platform's own defaults, below
        template_untitled="",
        language=config.bridge.language if config else None,
        visibility="public",
        content_warning=None,
        hashtags=HashtagSettings(),
    )
    if feed_config is not None:
        settings = replace(settings, hashtags=feed_config.hashtags, rules=tuple(feed_config.rules))
    for default in PLATFORMS:  # a default account of each platform, named like it
        if account_name in (None, default.name):
            titled, untitled = default.default_templates
            targets.append(_Target(default.name, default, replace(settings, template=titled, template_untitled=untitled)))
    if not targets:
        names = " or ".join(default.name for default in PLATFORMS)
        raise ConfigError("--account", f"no account {account_name!r}", f"without accounts in the config, use {names}")
    return targets


def _cached_limits(config, names: list[str]) -> dict:
    """The server limits the daemon cached, read-only; nothing when there is no state yet."""
    if not names:
        return {}
    try:
        from bridge.state import open_state

        with open_state(config, "readonly") as state:
            return {name: state.account(name).get("limits") for name in names}
    except Exception:  # preview must work without a usable state database
        return {}


def _client(config):
    import httpx

    from bridge import __version__
    from bridge.config import DEFAULT_USER_AGENT

    user_agent = (config.bridge.user_agent if config else DEFAULT_USER_AGENT).replace("{version}", __version__)
    return httpx.Client(headers={"User-Agent": user_agent}, follow_redirects=False, timeout=httpx.Timeout(10.0, connect=5.0))


def _fetch_extras(client, entry, allow_private: bool):
    """The article's preview (with the feed's data as fallback) and a lazy, memoised thumbnail getter."""
    from bridge.linkpreview import LinkPreview, LinkPreviewError, fetch_link_preview, fetch_thumbnail, merge_preview
    from bridge.redact import redact

    notes: list[str] = []
    page = entry.target or entry.link  # a link post's card shows the article it points at
    if client is None or not page:
        return None, None, notes, None
    fallback = None
    try:
        # Without the fallback, so that a page that cannot be had is said, not silently replaced by the feed's data
        link_preview = merge_preview(fetch_link_preview(page, client=client, allow_private=allow_private), entry)
    except LinkPreviewError as exc:  # as `poll` does: the post is made of the feed's own data
        link_preview = merge_preview(LinkPreview(url=page), entry)
        fallback = redact(f"the article page could not be read ({exc}): the preview uses the feed's own data")
    except Exception as exc:  # the post is made of the feed's own data, as `poll` would
        link_preview = None
        fallback = f"no link preview: {unexpected(log, exc, f'reading the page {page}')}"
    if fallback:
        click.echo(f"preview: {page}: {fallback}", err=True)
    memo: dict = {}

    def thumbnail(url: str):
        if url not in memo:
            try:
                memo[url] = fetch_thumbnail(url, client=client, allow_private=allow_private)
            except LinkPreviewError as exc:
                memo[url] = None
                notes.append(redact(f"no card image: {exc}"))  # a server's words, quoting a URL
            except Exception as exc:
                memo[url] = None
                notes.append(redact(f"no card image: {unexpected(log, exc, f'making a thumbnail of {url}')}"))
        return memo[url]

    return link_preview, thumbnail, notes, fallback


# --- text output ------------------------------------------------------------------------------------------------


def _print_text(results: list[dict], label: str, entry_count: int) -> None:
    from rich.console import Console
    from rich.panel import Panel
    from rich.text import Text

    console = Console(highlight=False)
    console.print(Text(f"{label}: {entry_count} entr{'y' if entry_count == 1 else 'ies'} — nothing is posted or saved", style="bold"))
    current = None
    for result in results:
        if result["entry"] != current:
            current = result["entry"]
            console.rule(Text(result["_title"] or "(untitled)"))
            console.print(Text(result["link"] or result["entry"], style="dim"))
        heading = f"{result['account']} ({result['platform']})"
        payload = result.get("payload")
        if result.get("filtered"):
            console.print(Panel(Text(f"left out by a filter: {result['filtered']}", style="yellow"), title=heading,
                                title_align="left"))
            continue
        if payload is None:
            console.print(Panel(Text(f"cannot be posted: {result.get('error')}", style="red"), title=heading, title_align="left"))
            continue
        target = result["_target"]
        text, details = target.platform.describe(payload, target.limits)
        details.extend(result["_notes"])
        console.print(Panel(Text(text), title=heading, title_align="left", subtitle=" · ".join(details), subtitle_align="left"))
