"""`bridge doctor`: check everything bridge depends on and say what to fix.

Each check returns Check(ok, name, detail, fix). Nothing here posts or changes the queue; the only write is the
Bluesky session that a credentials check may refresh (which the next run would do anyway).
"""

from __future__ import annotations

import asyncio
import os
import stat
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from pathlib import Path

import httpx

from bridge.config import Config, world_readable_secret_files
from bridge.deadline import DeadlineTransport
from bridge.errors import BridgeError, ConfigError, FeedError, FeedNotAFeed, StateError
from bridge.redact import redact, register_config_secrets

CLOCK_SKEW_WARN_SECONDS = 60.0
CLOCK_PROBE_TIMEOUT = 10.0  # the whole HEAD asking a server's Date, connecting, headers and body
# integrity_check reads every page and checks every index; above this size the quicker quick_check (no index
# contents checked) keeps `doctor` within seconds.
INTEGRITY_CHECK_MAX_BYTES = 256 * 2**20
# A poll of thousands of feeds may write a few MB; below FAIL the next polls will likely fail.
FREE_SPACE_FAIL_BYTES = 16 * 2**20
FREE_SPACE_WARN_BYTES = 256 * 2**20
# What to do about a feed that cannot be read (doctor, and the alert about a failing feed).
FEED_ERROR_FIX = "check the URL in a browser; bridge keeps retrying with backoff"


@dataclass
class Check:
    ok: bool
    name: str
    detail: str = ""
    fix: str = ""
    warning: bool = False  # shown, but does not fail the run


def check_state(config: Config) -> list[Check]:
    from bridge.state import State, broken_state_fix

    path = config.state_path()
    checks = _free_space(path)
    if path.is_dir():
        return checks + [Check(False, "state", f"{path} is a directory, not a database file",
                               f"set [bridge] state to a file path such as {path / 'bridge.sqlite3'}")]
    if not path.exists():
        parent = next((p for p in [path.parent, *path.parents] if p.exists()), None)
        writable = parent is not None and os.access(parent, os.W_OK)
        checks.append(Check(writable, "state", f"{path} does not exist yet; it will be created on the first poll",
                            "" if writable else f"make {path.parent} writable for this user"))
        return checks
    mode = stat.S_IMODE(path.stat().st_mode)
    checks.append(Check(os.access(path, os.W_OK), "state writable", str(path), f"make {path} writable for this user"))
    checks.append(Check(mode & 0o077 == 0, "state private", f"mode {mode:o}", f"chmod 600 {path}"))
    try:
        with State.open_readonly(path) as state:
            pending = state.migrations_due
            applied = [name for name in state.applied_migrations() if name not in pending]
            problems, how = state.check_integrity(thorough=path.stat().st_size <= INTEGRITY_CHECK_MAX_BYTES)
    except StateError as exc:
        return checks + [Check(False, "state readable", str(exc))]
    checks.append(Check(True, "state migrations",
                        f"{len(applied)} applied" + (f", {len(pending)} to apply on next start" if pending else "")))
    checks.append(Check(not problems, "state integrity", f"{how}: " + ("; ".join(problems[:3]) if problems else "ok"),
                        broken_state_fix(path)))
    return checks


def _free_space(path: Path) -> list[Check]:
    """Room for the state to grow: a full disk fails every poll (each one rolled back, nothing lost)."""
    directory = next((p for p in [path.parent, *path.parents] if p.exists()), None)
    try:
        usage = os.statvfs(directory)
    except (OSError, TypeError):
        return []
    free = usage.f_bavail * usage.f_frsize
    detail = f"{free / 2**20:.0f} MB free on the disk holding {path.parent}"
    fix = f"free some space there (df -h {directory})"
    if free < FREE_SPACE_FAIL_BYTES:
        return [Check(False, "state disk space", detail + ": nearly full, polls will fail", fix)]
    if free < FREE_SPACE_WARN_BYTES:
        return [Check(False, "state disk space", detail, fix, warning=True)]
    return [Check(True, "state disk space", detail)]


def check_secret_files(config: Config) -> list[Check]:
    return [Check(False, "secret file permissions", f"{path} is readable by other users", f"chmod 600 {path}", warning=True)
            for path in world_readable_secret_files(config)]


def check_feeds(config: Config) -> list[Check]:
    from bridge.feeds import Fetcher, parse_feed

    async def one(fetcher, feed) -> Check:
        try:
            result = await fetcher.fetch(feed.url)
            parsed = parse_feed(result.body or b"", result.url, content_type=result.content_type)
        except FeedNotAFeed as exc:
            fix = f"set url = {exc.candidates[0]!r}" if exc.candidates else "find the blog's feed URL"
            return Check(False, f"feed {feed.name}", str(exc), fix)
        except FeedError as exc:
            return Check(False, f"feed {feed.name}", str(exc), FEED_ERROR_FIX)
        moved = f" (moved permanently to {result.permanent_url}: update the config)" if result.permanent_url else ""
        return Check(True, f"feed {feed.name}", f"{parsed.format}, {len(parsed.entries)} entries{moved}")

    async def all_feeds() -> list[Check]:
        fetcher = Fetcher(config.bridge)
        try:
            return await asyncio.gather(*(one(fetcher, feed) for feed in config.feeds if feed.enabled))
        finally:
            await fetcher.aclose()

    return list(asyncio.run(all_feeds())) if config.feeds else []


def check_accounts(config: Config) -> list[Check]:
    from bridge.state import State
    from bridge.targets import make_target

    checks = []
    path = config.state_path()
    # Sessions live in the state; when a service holds the lock, check beside it. A broken state is reported by
    # check_state; the accounts are still checked, on an empty one.
    try:
        state = State.open(path, exclusive=False) if path.is_file() else State.open_memory()
    except StateError:
        state = State.open_memory()
    with state:
        for name, account in config.accounts.items():
            label = f"account {name} ({account.type})"
            url = account.instance_url if account.type == "mastodon" else account.service_url
            try:
                target = make_target(config, state, name)
                info = target.diagnose()
                target.close()
            except ConfigError as exc:
                checks.append(Check(False, label, exc.problem, exc.fix))
                continue
            except BridgeError as exc:
                checks.append(Check(False, label, str(exc), _fix_for(exc, name, url)))
                continue
            checks.append(Check(True, label, _describe(info)))
            checks.extend(Check(False, f"{label} token", problem, fix, warning=True)
                          for problem, fix in info.get("problems") or [])
            checks.extend(_upload_check(config, name, label, info))
            checks.extend(_held_posts(config, state, name, label))
            checks.extend(_clock_skew(label, url))
    return checks


def _fix_for(exc: BridgeError, account: str, url: str) -> str:
    """A concrete fix for an account check that failed (AuthError brings its own)."""
    from bridge.errors import PermanentPublishError, TransientPublishError

    if getattr(exc, "fix", ""):
        return exc.fix
    if isinstance(exc, TransientPublishError):
        return (f"check that {url} is up and reachable from this machine (open it in a browser, check DNS, "
                "proxy and firewall); posts stay queued and bridge retries on its own")
    if isinstance(exc, PermanentPublishError):
        return (f"check accounts.{account} in the config: is {url} the server's address (https://host, no path) "
                "and does it speak the Mastodon or Bluesky API?")
    return f"run `bridge -v doctor` for details and check accounts.{account} in the config"


def _upload_check(config: Config, account: str, label: str, info: dict) -> list[Check]:
    """Images are uploaded only where a feed attaches them; without write:media that pauses the account."""
    if info.get("can_upload") is not False:
        return []
    attaching = [feed.name for feed in config.feeds if account in feed.accounts
                 and config.post_settings(feed, account).images in ("auto", "attach")]
    if not attaching:
        return []
    return [Check(False, f"{label} token", f"the token may not upload images (no write:media), and feed(s) "
                  f"{', '.join(attaching)} attach them (photo posts, with images = \"auto\"): the account would be paused at the first image",
                  f"create a token with write:statuses write:media (`bridge login mastodon --instance URL`) and put it "
                  f"where accounts.{account}.access_token points, or set images = \"card\"")]


def _held_posts(config: Config, state, account: str, label: str) -> list[Check]:
    """Posts held because their outcome is unknown (an earlier attempt may have made them)."""
    from bridge.status import held_posts_fix

    held = state.deliveries(account=account, state="unknown")
    if not held:
        return []
    return [Check(False, f"{label} held posts", f"{len(held)} post(s) wait with an unknown outcome (an earlier "
                  f"attempt may have made them and bridge cannot look), e.g. {held[0].link or held[0].entry_key}",
                  held_posts_fix(account, config.accounts[account], state.account(account)))]


def _describe(info: dict) -> str:
    parts = []
    for key in ("account", "handle", "did", "pds", "session", "software", "software_version", "version", "profile"):
        if info.get(key):
            parts.append(f"{key.replace('_', ' ')} {info[key]}")
    limits = info.get("limits")
    if isinstance(limits, dict) and limits.get("max_characters"):
        parts.append(f"max {limits['max_characters']} characters"
                     + (f" counted in {limits['counting']}" if limits.get("counting") else "")
                     + (", URLs in full" if limits.get("urls_in_full") else
                        f", URLs as {limits['characters_reserved_per_url']}" if limits.get("characters_reserved_per_url") else "")
                     + (f", {limits['max_media_attachments']} images" if limits.get("max_media_attachments") else "")
                     + (" (Mastodon's defaults: the server gives none)" if info.get("limits_source") == "defaults" else ""))
    if "can_post" in info:
        # Probed: Mastodon's API cannot list a token's scopes.
        may = {"post": info.get("can_post"), "upload images": info.get("can_upload"),
               "read its own statuses": info.get("can_read")}
        parts.append("token may " + ", ".join(f"{what} {'yes' if ok else 'no' if ok is False else 'unknown'}"
                                              for what, ok in may.items()) + " (probed)")
    rate = info.get("rate_limit")
    if isinstance(rate, dict) and rate.get("remaining") is not None:
        parts.append(f"rate limit {rate['remaining']}/{rate.get('limit')} left")
    parts.extend(info.get("notes") or [])
    return ", ".join(str(part) for part in parts)


def _clock_skew(label: str, url: str) -> list[Check]:
    try:
        with httpx.Client(timeout=CLOCK_PROBE_TIMEOUT, transport=DeadlineTransport(CLOCK_PROBE_TIMEOUT)) as client:
            response = client.head(url)
        server = parsedate_to_datetime(response.headers["date"]).timestamp()
    except Exception:
        return []
    skew = time.time() - server
    ok = abs(skew) < CLOCK_SKEW_WARN_SECONDS
    return [Check(ok, f"{label} clock", f"this machine is {skew:+.0f} s from the server",
                  "" if ok else "enable time sync (timedatectl set-ntp true)", warning=not ok)]


def check_systemd() -> list[Check]:
    if not (os.environ.get("INVOCATION_ID") or os.environ.get("NOTIFY_SOCKET")):
        return []
    checks = [Check(True, "systemd", "running under systemd" + (" with a watchdog" if os.environ.get("WATCHDOG_USEC") else ""))]
    credentials = os.environ.get("CREDENTIALS_DIRECTORY")
    if credentials:
        names = sorted(p.name for p in Path(credentials).iterdir())
        checks.append(Check(True, "systemd credentials", f"{credentials}: {', '.join(names) or 'none'}"))
    return checks


def run_checks(config: Config, *, network: bool = True) -> list[Check]:
    checks = [Check(True, "config", f"{config.path}: {len(config.feeds)} feed(s), {len(config.accounts)} account(s)")]
    checks += check_state(config) + check_secret_files(config) + check_systemd()
    if network:
        checks += check_feeds(config) + check_accounts(config)
    # Details quote servers (an error body may echo the credential sent): redact them all, in one place.
    register_config_secrets(config)
    for check in checks:
        check.detail, check.fix = redact(check.detail), redact(check.fix)
    return checks
