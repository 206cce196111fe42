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

from bridge.config import AccountConfig, Config, world_readable_secret_files
from bridge.deadline import DeadlineTransport
from bridge.errors import FEED_ERROR_FIX, BridgeError, ConfigError, FeedError, FeedNotAFeed, StateError
from bridge.platforms import PLATFORMS
from bridge.redact import redact, register_config_secrets

CLOCK_SKEW_WARN_SECONDS = 60.0
CLOCK_PROBE_TIMEOUT = 10.0  # the whole HEAD asking a server's Date, connecting, headers and body
# integrity_check reads every page and checks every index; above this size the quicker quick_check (no index
# contents checked) keeps `doctor` within seconds.
INTEGRITY_CHECK_MAX_BYTES = 256 * 2**20
# A poll of thousands of feeds may write a few MB; below FAIL the next polls will likely fail.
FREE_SPACE_FAIL_BYTES = 16 * 2**20
FREE_SPACE_WARN_BYTES = 256 * 2**20


@dataclass
class Check:
    ok: bool
    name: str
    detail: str = ""
    fix: str = ""
    warning: bool = False  # shown, but does not fail the run


def check_state(config: Config) -> list[Check]:
    from bridge.state import State, broken_state_fix

    if config.database_url() is not None:
        return _check_postgres(config)
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


def _check_postgres(config: Config) -> list[Check]:
    """The state in PostgreSQL: it answers, and its migrations are applied (its server keeps its pages whole)."""
    from bridge.state import describe_store, open_state

    where = describe_store(config)
    try:
        with open_state(config, "readonly") as state:
            pending = state.migrations_due
            applied = [name for name in state.applied_migrations() if name not in pending]
            problems, how = state.check_integrity()
    except StateError as exc:
        return [Check(False, "state (PostgreSQL)", str(exc))]
    return [Check(True, "state (PostgreSQL)", where),
            Check(True, "state migrations",
                  f"{len(applied)} applied" + (f", {len(pending)} to apply on next start" if pending else "")),
            Check(not problems, "state database", how + (": " + "; ".join(problems) if problems else ""))]


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


def check_credentials(config: Config) -> list[Check]:
    """Every account's credential, without the network: there, readable, one line, the right shape."""
    from bridge.config import resolve_secret
    from bridge.platforms import platform

    checks = []
    for name, account in config.accounts.items():
        label = f"credential of account {name}"
        try:
            value = resolve_secret(config, name).reveal()
        except ConfigError as exc:
            checks.append(Check(False, label, exc.problem, exc.fix))
            continue
        shape = platform(account.type).credential_check
        checks.append(shape(label, value) if shape else Check(True, label, "found"))
    return checks


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
            return Check(False, f"feed {feed.name}", *_feed_failure(exc, feed))
        moved = f" (moved permanently to {result.permanent_url}: update the config)" if result.permanent_url else ""
        return Check(True, f"feed {feed.name}", f"{parsed.format}, {len(parsed.entries)} entries{moved}")

    async def all_feeds() -> list[Check]:
        fetcher = Fetcher(config.bridge)
        try:
            return await asyncio.gather(*(one(fetcher, feed) for feed in config.feeds if feed.enabled))
        finally:
            await fetcher.aclose()

    return list(asyncio.run(all_feeds())) if config.feeds else []


def _feed_failure(exc: FeedError, feed) -> tuple[str, str]:
    """A failed feed check as (sentence, fix); bridge's own feed messages already read as sentences."""
    from bridge.explain import explain

    said = explain(exc, feed.url, key=f"the url of feed {feed.name}", not_found_fix=(
        "the feed moved or the address is wrong: open the blog and copy the address of its RSS/Atom/JSON feed"))
    if said.kind == "other":
        return str(exc), FEED_ERROR_FIX
    return said.sentence, said.fix


def check_accounts(config: Config, skip: set[str] = frozenset()) -> list[Check]:
    from bridge.platforms import platform
    from bridge.state import State, open_state
    from bridge.wiring import make_target

    checks = []
    path = config.state_path()
    # Sessions live in the state; when a service holds the lock, check beside it. A broken state is reported by
    # check_state; the accounts are still checked, on an empty one.
    try:
        if config.database_url() is not None:
            state = open_state(config, "shared")
        else:
            state = State.open(path, exclusive=False) if path.is_file() else State.open_memory()
    except StateError:
        state = State.open_memory()
    with state:
        for name, account in config.accounts.items():
            if name in skip:  # its credential is missing or malformed: check_credentials said so
                continue
            label = f"account {name} ({account.type})"
            url = account.server_url
            try:
                target = make_target(config, state, name)
                info = target.diagnose()
                target.close()
            except ConfigError as exc:
                checks.append(Check(False, label, exc.problem, exc.fix))
                continue
            except BridgeError as exc:
                checks.append(Check(False, label, *_account_failure(exc, name, account, url)))
                continue
            checks.append(Check(True, label, _describe(platform(account.type), info)))
            checks.extend(Check(False, f"{label} token", problem, fix, warning=True)
                          for problem, fix in info.get("problems") or [])
            doctor_checks = platform(account.type).doctor_checks
            checks.extend(doctor_checks(config, name, label, info) if doctor_checks else [])
            checks.extend(_held_posts(config, state, name, label))
            checks.extend(_clock_skew(label, url))
    return checks


def _account_failure(exc: BridgeError, account: str, settings: AccountConfig, url: str) -> tuple[str, str]:
    """A failed account check as (sentence, fix)."""
    from bridge.explain import explain
    from bridge.platforms import platform

    key = f"accounts.{account}.{settings.server_key}" if settings.server_key else f"accounts.{account}"
    said = explain(exc, url, key=key, not_found_fix=(
        f"check {key}: is {url} the server's address (https://host, no path) and does it speak the "
        f"{platform(settings.type).title} API?"))
    return said.sentence, said.fix


def _held_posts(config: Config, state, account: str, label: str) -> list[Check]:
    """Posts held because their outcome is unknown (an earlier attempt may have made them)."""
    from bridge.status import held_posts_fix

    held = state.deliveries(account=account, state="unknown")
    if not held:
        return []
    return [Check(False, f"{label} held posts", f"{len(held)} post(s) wait with an unknown outcome (an earlier "
                  f"attempt may have made them and bridge cannot look), e.g. {held[0].link or held[0].entry_key}",
                  held_posts_fix(account, config.accounts[account], state.account(account)))]


def _describe(platform, info: dict) -> str:
    parts = []
    for key in ("account", "handle", "did", "pds", "session", "software", "software_version", "version", "profile"):
        if info.get(key):
            parts.append(f"{key.replace('_', ' ')} {info[key]}")
    details = platform.doctor_details
    parts.extend(details(info) if details else [])
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
    credentials = check_credentials(config)
    checks += check_state(config) + credentials + check_secret_files(config) + check_systemd()
    if network:
        unusable = {check.name.split()[-1] for check in credentials if not check.ok and not check.warning}
        checks += check_feeds(config) + check_accounts(config, skip=unusable)
        for entry in PLATFORMS:
            checks += entry.doctor_config_checks(config, unusable) if entry.doctor_config_checks else []
    # Details quote servers (an error body may echo the credential sent): redact them all, in one place.
    register_config_secrets(config)
    for check in checks:
        check.detail, check.fix = redact(check.detail), redact(check.fix)
    return checks
