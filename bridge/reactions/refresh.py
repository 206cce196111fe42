"""Reading reactions back, post by post, account by account: the due ones (bridge.reactions.schedule) or those
of one entry. Each account is read by its own platform's gatherer, one post at a time, at most BATCH posts a
pass: at two requests a post, a pass stays far below any platform's rate limit (Mastodon: 300 requests in 5
minutes per account) and leaves the account's budget to publishing.

A failure is the post's (recorded on it, tried again later) or the account's (rate limited: the rest of its
posts wait for the next pass); it never reaches publishing, which shares nothing with this but the state.
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass, field
from typing import Callable

from bridge.config import Config, resolve_secret
from bridge.errors import ConfigError, ReactionsError, ReactionsRateLimited, RemotePostGone
from bridge.notethreads import without_own_parts
from bridge.reactions import schedule
from bridge.reactions.gatherer import HttpOptions, gatherer_for
from bridge.state import DeliveryRow, State
from bridge.unexpected import NOT_ISOLATED, unexpected

log = logging.getLogger("bridge.reactions")

BATCH = 30  # posts read per account per pass


@dataclass
class RefreshReport:
    read: int = 0
    gone: int = 0
    failed: list[str] = field(default_factory=list)  # one line each: "account: what went wrong"

    @property
    def changed(self) -> bool:
        return bool(self.read or self.gone)


class Refresher:
    def __init__(self, config: Config, state: State, *, clock: Callable[[], float] = time.time,
                 find_gatherer: Callable = gatherer_for, rng: random.Random | None = None,
                 should_stop: Callable[[], bool] = lambda: False,
                 on_progress: Callable[[], None] = lambda: None) -> None:
        self.config = config
        self.state = state
        self.clock = clock
        self.find_gatherer = find_gatherer
        self.rng = rng or random.Random()
        self.should_stop = should_stop
        self.on_progress = on_progress  # after each post: the daemon's watchdog sees the job move

    def refresh(self, *, entry_link: str | None = None, batch: int = BATCH) -> RefreshReport:
        """Read the due posts of every account (or every post of `entry_link`, due or not)."""
        report = RefreshReport()
        now = self.clock()
        if entry_link is not None:
            chosen = [row for row in self.state.syndicated_deliveries() if row.link == entry_link]
        for account, settings in self.config.accounts.items():
            if self.should_stop():
                break
            gather = self.find_gatherer(settings.type)
            if gather is None:
                continue  # a platform that cannot read reactions back (yet)
            if entry_link is not None:
                rows = [row for row in chosen if row.account == account]
            else:
                rows = self.state.due_reaction_deliveries(
                    account, now, posted_since=now - self.config.bridge.reactions_max_age,
                    first_before=now - schedule.FIRST_READ_AFTER, limit=batch)
            if rows:
                self._refresh_account(account, settings, gather, rows, report)
        return report

    def _current(self, settings, account: str, secret):
        """The credential as the platform keeps it now (Threads' refreshed token), else the configured one."""
        from bridge.platforms import platform

        try:
            current = platform(settings.type).reactions_credential
        except KeyError:
            return secret
        return current(self.state, account, secret) if current is not None and secret is not None else secret

    def _refresh_account(self, account: str, settings, gather, rows: list[DeliveryRow], report: RefreshReport) -> None:
        try:
            secret = resolve_secret(self.config, account)
        except ConfigError:
            secret = None  # public reactions are readable without a credential
        secret = self._current(settings, account, secret)
        from bridge import __version__

        http = HttpOptions(user_agent=self.config.bridge.user_agent.replace("{version}", __version__),
                           connect_timeout=self.config.bridge.connect_timeout,
                           read_timeout=self.config.bridge.read_timeout)
        for row in rows:
            if self.should_stop():
                return
            self.on_progress()
            deadline = time.monotonic() + self.config.bridge.total_timeout
            try:
                thread = gather(settings, secret, row, deadline=deadline, http=http)
            except RemotePostGone as exc:
                self.state.reactions_gone(row.id, str(exc), self.clock())
                report.gone += 1
                continue
            except ReactionsRateLimited as exc:
                now = self.clock()
                retry_at = exc.retry_at if exc.retry_at and exc.retry_at > now else now + schedule.RETRY_AFTER
                self.state.reactions_failed(row.id, str(exc), retry_at, now)
                report.failed.append(f"{account}: {exc}; reading again after {time.strftime('%H:%M', time.gmtime(retry_at))} UTC")
                return  # the account's other posts wait for the next pass
            except ReactionsError as exc:
                self._failed(row, str(exc), report)
                continue
            except NOT_ISOLATED:
                raise
            except Exception as exc:
                self._failed(row, unexpected(log, exc, f"reading the reactions to {row.remote_url or row.remote_id}"), report)
                continue
            thread = without_own_parts(thread, {part["remote_id"] for part in self.state.thread_parts(row.id)[1:]})
            now = self.clock()
            self.state.save_reactions(
                row.id, root_url=thread.root_url, counts=thread.counts.to_dict(), hidden_ids=sorted(thread.hidden_ids),
                replies=[reply.to_dict() for reply in thread.replies], now=now,
                next_refresh_at=schedule.next_read(row.posted_at or now, now, rng=self.rng))
            report.read += 1

    def _failed(self, row: DeliveryRow, error: str, report: RefreshReport) -> None:
        now = self.clock()
        failures = self.state.reaction_error_count(row.id) + 1
        self.state.reactions_failed(row.id, error, schedule.next_retry(row.posted_at or now, now, failures), now)
        report.failed.append(f"{row.account}: {row.remote_url or row.remote_id}: {error}")
        log.warning("account %s: cannot read the reactions to %s: %s", row.account, row.remote_url or row.remote_id, error)
