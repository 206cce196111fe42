"""Author attribution on Mastodon link cards: is the writer named on the cards of their own articles?

Mastodon 4.4+ shows "More from @writer@server" on a link preview when two things agree (Mastodon 4.3 showed it for
the page alone; 4.4 added the check against the account):
- the article page says who wrote it: `<meta name="fediverse:creator" content="@writer@server">` in its <head>;
- that account lists the page's domain (or a parent domain) among its attribution domains: Preferences > Public
  profile > Verification, "Allow these websites to credit you". The API shows the list as
  `source.attribution_domains` of GET /api/v1/accounts/verify_credentials (a CredentialAccount) and sets it with
  `attribution_domains[]` on PATCH /api/v1/accounts/update_credentials (needs write:accounts; Mastodon 4.4.0,
  API version 3: docs.joinmastodon.org/methods/accounts/#update_credentials and entities/Account#source; the
  server normalises the list as app/models/concerns/account/attribution_domains.rb does: scheme and "*." dropped,
  at most 100). The PATCH replaces the whole list, so bridge always sends the old entries with the new.

`bridge doctor` reads both (check_attribution) and says what to add; `bridge attribution --account NAME` adds the
missing domains through the API (add_attribution_domains), which only a token with write:accounts may do.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

from bridge.config import Config, resolve_secret
from bridge.deadline import DeadlineTransport
from bridge.errors import BridgeError, FeedError
from bridge.explain import explain

CREATOR_META = "fediverse:creator"
SETTING = "Preferences > Public profile > Verification (\"Allow these websites to credit you\")"


class AttributionError(BridgeError):
    """Reading or setting the attribution domains failed; `fix` says what to do instead."""

    def __init__(self, message: str, fix: str, status: int | None = None) -> None:
        self.fix = fix
        self.status = status  # the HTTP status the server answered, if it answered
        super().__init__(f"{message} — {fix}")


@dataclass(frozen=True)
class Settings:
    handle: str  # @writer@server, as the meta tag must name it
    domains: list[str] | None  # None: the server has no attribution domains (before Mastodon 4.4)


@dataclass(frozen=True)
class Page:
    feed: str
    url: str
    creator: str | None = None  # the fediverse:creator the page names
    problem: str = ""  # why the page could not be read

    @property
    def domain(self) -> str:
        return (urlsplit(self.url).hostname or "").lower()


def creator_of(html: bytes, content_type: str = "") -> str | None:
    """The `fediverse:creator` a page's <head> names, if any (the first, as Mastodon reads it)."""
    from bs4 import BeautifulSoup

    charset = content_type.lower().split("charset=", 1)[1].split(";")[0].strip("\"' ") if "charset=" in content_type.lower() else None
    for tag in BeautifulSoup(html, "html.parser", from_encoding=charset).find_all("meta"):
        if (tag.get("name") or tag.get("property") or "").strip().lower() == CREATOR_META and tag.get("content"):
            return str(tag["content"]).strip()
    return None


def is_credited(domain: str, domains: list[str]) -> bool:
    """Mastodon credits a page whose host is a listed domain or below one (blog.example.com under example.com)."""
    listed = {entry.lower().rstrip(".") for entry in domains}
    parts = domain.lower().rstrip(".").split(".")
    return any(".".join(parts[index:]) in listed for index in range(len(parts)))


def same_handle(named: str, handle: str) -> bool:
    return named.strip().lstrip("@").lower() == handle.lstrip("@").lower()


def meta_tag(handle: str) -> str:
    return f'<meta name="{CREATOR_META}" content="{handle}">'


# --- the Mastodon API ------------------------------------------------------------------------------------------


def _client(config: Config, account: str) -> httpx.Client:
    from bridge import __version__

    settings = config.bridge
    token = resolve_secret(config, account).reveal()
    return httpx.Client(
        base_url=config.accounts[account].instance_url,
        headers={"Authorization": f"Bearer {token}", "User-Agent": settings.user_agent.replace("{version}", __version__)},
        timeout=httpx.Timeout(settings.read_timeout, connect=settings.connect_timeout),
        transport=DeadlineTransport(settings.total_timeout),
        trust_env=True,
    )


def _call(config: Config, account: str, method: str, path: str, **kwargs) -> dict:
    url = config.accounts[account].instance_url
    try:
        with _client(config, account) as client:
            response = client.request(method, path, **kwargs)
            response.raise_for_status()
            body = response.json()
    except (httpx.HTTPError, ValueError) as exc:
        said = explain(exc, url + path, key=f"accounts.{account}.instance")
        status = exc.response.status_code if isinstance(exc, httpx.HTTPStatusError) else None
        raise AttributionError(said.sentence, said.fix, status) from exc
    if not isinstance(body, dict):
        raise AttributionError(f"{url}{path} did not answer with an account", f"check accounts.{account}.instance")
    return body


def read_settings(config: Config, account: str) -> Settings:
    """The account's handle and its attribution domains (GET verify_credentials)."""
    body = _call(config, account, "GET", "/api/v1/accounts/verify_credentials")
    return _settings(config, account, body)


def _settings(config: Config, account: str, body: dict) -> Settings:
    host = urlsplit(config.accounts[account].instance_url).hostname or ""
    acct = str(body.get("acct") or body.get("username") or "")
    # A local account's acct is its bare username; the handle adds the server, as people write it.
    handle = "@" + (acct if "@" in acct else f"{acct}@{host}")
    source = body.get("source") if isinstance(body.get("source"), dict) else {}
    domains = source.get("attribution_domains")
    return Settings(handle, [str(d) for d in domains] if isinstance(domains, list) else None)


def add_attribution_domains(config: Config, account: str, wanted: list[str]) -> tuple[Settings, list[str]]:
    """Add `wanted` to the account's attribution domains, keeping the ones it has. Returns (settings now, added)."""
    before = read_settings(config, account)
    if before.domains is None:
        raise AttributionError(f"{config.accounts[account].instance_url} does not know attribution domains "
                               f"(they came with Mastodon 4.4)", "nothing to set on this server")
    missing = [domain for domain in wanted if not is_credited(domain, before.domains)]
    if not missing:
        return before, []
    try:
        body = _call(config, account, "PATCH", "/api/v1/accounts/update_credentials",
                     data={"attribution_domains[]": before.domains + missing})
    except AttributionError as exc:
        if exc.status != 403:  # Mastodon's answer to a token without the scope
            raise
        raise AttributionError(
            f"the token of account {account!r} may not change the profile (it lacks the scope write:accounts)",
            f"add {', '.join(missing)} yourself in {SETTING}, or give bridge a token with write:accounts "
            f"(Preferences > Development > New application) and run this again") from None
    return _settings(config, account, body), missing


# --- the pages --------------------------------------------------------------------------------------------------


def latest_pages(config: Config, account: str) -> list[Page]:
    """The newest entry's page of each enabled feed posting to `account`, with the creator it names."""
    from bridge.feeds import Fetcher, parse_feed
    from bridge.linkpreview import LinkPreviewError, fetch_page_head

    feeds = [feed for feed in config.feeds if feed.enabled and account in feed.accounts]

    async def newest_links() -> list[tuple[str, str | None, str]]:
        fetcher = Fetcher(config.bridge)

        async def one(feed) -> tuple[str, str | None, str]:
            try:
                result = await fetcher.fetch(feed.url)
                parsed = parse_feed(result.body or b"", result.url, content_type=result.content_type)
            except FeedError as exc:
                return feed.name, None, str(exc)
            linked = [entry for entry in parsed.entries if entry.link]
            dated = [entry for entry in linked if entry.published]
            newest = max(dated, key=lambda entry: entry.published) if dated else (linked[0] if linked else None)
            return feed.name, newest.link if newest else None, "" if newest else "the feed has no entry with a link"

        try:
            return await asyncio.gather(*(one(feed) for feed in feeds))
        finally:
            await fetcher.aclose()

    pages = []
    from bridge import __version__

    user_agent = config.bridge.user_agent.replace("{version}", __version__)
    with httpx.Client(headers={"User-Agent": user_agent}, follow_redirects=False,
                      timeout=httpx.Timeout(config.bridge.read_timeout, connect=config.bridge.connect_timeout)) as client:
        for feed, link, problem in (asyncio.run(newest_links()) if feeds else []):
            if link is None:
                pages.append(Page(feed, "", problem=problem))
                continue
            try:
                body, content_type, _ = fetch_page_head(link, client=client,
                                                        allow_private=config.bridge.allow_private_addresses)
            except LinkPreviewError as exc:
                pages.append(Page(feed, link, problem=str(exc)))
                continue
            pages.append(Page(feed, link, creator=creator_of(body, content_type)))
    return pages


# --- doctor -----------------------------------------------------------------------------------------------------


def check_attribution(config: Config, skip: set[str] = frozenset()) -> list:
    """For each Mastodon account: are its feeds' articles credited to it on link cards, and if not, what to add.
    `skip`: accounts whose credential is unusable (doctor said so already)."""
    checks = []
    for name, account in config.accounts.items():
        if account.type != "mastodon" or name in skip or not any(name in feed.accounts for feed in config.feeds if feed.enabled):
            continue
        try:
            settings = read_settings(config, name)
        except BridgeError:  # the account check above says why the account cannot be reached
            continue
        checks.extend(_account_checks(name, settings, latest_pages(config, name)))
    return checks


def _account_checks(account: str, settings: Settings, pages: list[Page]) -> list:
    from bridge.doctor import Check

    label = f"account {account} (mastodon) attribution"
    if settings.domains is None:
        return [Check(True, label, "the server does not show writers on link cards (that came with Mastodon 4.4)")]
    checks, uncredited = [], []
    for page in pages:
        where = f"{label}, feed {page.feed}"
        if page.problem:
            checks.append(Check(False, where, f"could not read its newest article: {page.problem}",
                                "run `bridge doctor` again once the page loads", warning=True))
            continue
        if page.creator is None:
            checks.append(Check(False, where, f"{page.url} does not say who wrote it (no <meta name=\"{CREATOR_META}\">): "
                                f"Mastodon shows no writer on its link card",
                                f"add {meta_tag(settings.handle)} to the <head> of your site's article template",
                                warning=True))
        elif not same_handle(page.creator, settings.handle):
            checks.append(Check(False, where, f"{page.url} names {page.creator} as its writer, not {settings.handle}",
                                f"if you are {settings.handle}, put {meta_tag(settings.handle)} in the template instead",
                                warning=True))
        elif not is_credited(page.domain, settings.domains):
            uncredited.append(page.domain)
        else:
            checks.append(Check(True, where, f"{page.url} credits {settings.handle}, and the account allows {page.domain}"))
    if uncredited:
        domains = ", ".join(dict.fromkeys(uncredited))
        checks.append(Check(False, label, f"the pages name {settings.handle}, but the account does not allow {domains} "
                            f"to credit it: Mastodon shows no writer on their link cards",
                            f"add {domains} in {SETTING}, or run `bridge attribution --account {account}` (needs a "
                            f"token with write:accounts)", warning=True))
    return checks
