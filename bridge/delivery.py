"""The delivery engine: sends the due rows of the outbox, exactly once, each account on its own.

    pending --(mark_sending, committed)--> sending --publish--> posted
       ^                                      |
       +------ transient error / rate limit --+--> failed (permanent error or max_attempts)
       |                                      |
       +-- (the target can look again) -- unknown <-- OutcomeUnknown (find_existing cannot tell)

- The payload and its retry identity (Idempotency-Key, rkey) are fixed and committed before the first call.
- A row found in `sending` (a crash), or sent before without a known outcome (first_sent_at: an answer may
  have been lost, also across `bridge retry`), has an unknown outcome: the target's find_existing() decides
  whether the post exists before any new attempt. When it cannot tell (OutcomeUnknown) the row waits as
  `unknown` -- looked at again hourly -- rather than risk a second post; `bridge retry --force` sends it.
- A long note may go out as a thread (bridge/notethreads.py): one row, its parts sent and saved one by one, a crash
  resuming from the first part not saved (each part's own retry identity; the part in doubt looked for first).
- A post the server refuses as too long (TooLong) is rendered once more with the server's limits read anew and
  the strictest counting (payload_builder(..., strict=True)) and sent; only then does it fail.
- Flood control: at most posts_per_hour and posts_per_day per account, and at least 3600/posts_per_hour
  seconds between two posts, so a burst trickles out oldest first.
- A paused account (credentials refused) keeps its queue; it is tried again when its credential changes,
  or an hour later.
- One account's trouble never stops another's deliveries. An unexpected error (a library's bug, hostile input)
  while making one entry's post fails that delivery with the reason; during a publish it counts as transient.
"""

from __future__ import annotations

import hashlib
import logging
import random
import time
from dataclasses import dataclass, field
from typing import Callable

from bridge import ids
from bridge.config import Config, ConfigError, resolve_secret
from bridge.errors import (
    AuthError,
    OutcomeUnknown,
    PermanentPublishError,
    PublishError,
    RateLimited,
    TooLong,
    TransientPublishError,
)
from bridge.faults import crash_point
from bridge.logs import log_event
from bridge.notethreads import edit_thread, outcome_uncertain, publish_thread, threaded
from bridge.state import DeliveryRow, State
from bridge.platforms.base import Published, Target
from bridge.unexpected import NOT_ISOLATED, unexpected

log = logging.getLogger("bridge.deliver")

RETRY_MAX_SECONDS = 6 * 3600.0
RATE_LIMITED_ERROR = "rate limited:"  # how a delivery's last_error begins when a rate limit held it
RETRY_JITTER = 0.2
PAUSED_RECHECK_SECONDS = 3600.0
UNKNOWN_RECHECK_SECONDS = 3600.0  # a held post is looked at again this often (a new token may allow it)
HOUR, DAY = 3600.0, 86400.0

PayloadBuilder = Callable[..., dict]  # (row, target, strict=False) -> payload
TargetFactory = Callable[[str], Target]


class AccountLockLost(Exception):
    """The account's lock went with its PostgreSQL connection (State.still_holds): nothing more is sent for it this
    pass; whichever worker holds it next goes on from the outbox (a `sending` row is looked for before any post)."""


@dataclass
class AccountReport:
    account: str
    posted: list[str] = field(default_factory=list)  # remote URLs
    retried: int = 0
    failed: int = 0
    unknown: int = 0  # held: an earlier attempt may have posted and the target cannot look
    paused: str | None = None
    deferred_until: float | None = None
    waiting: int = 0  # due but held back by flood control
    next_slot: float | None = None  # when flood control lets the waiting ones go (None: nothing waits)
    error: str | None = None  # an unexpected error stopped this account's pass (the others went on)


@dataclass
class DeliveryReport:
    accounts: list[AccountReport] = field(default_factory=list)

    @property
    def posted(self) -> int:
        return sum(len(report.posted) for report in self.accounts)

    @property
    def failed(self) -> int:
        return sum(report.failed for report in self.accounts)


def credential_fingerprint(config: Config, account: str) -> str | None:
    try:
        secret = resolve_secret(config, account)
    except ConfigError:
        return None
    return hashlib.sha256(secret.reveal().encode()).hexdigest()[:16]


def failed_post_fix(account: str) -> str:
    """What to do about a post given up on (logged, and said by alerts)."""
    return f"fix the cause, then `bridge retry --account {account}`"


class Deliverer:
    def __init__(
        self,
        config: Config,
        state: State,
        *,
        target_factory: TargetFactory,
        payload_builder: PayloadBuilder,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        should_stop: Callable[[], bool] = lambda: False,
        on_progress: Callable[[], None] = lambda: None,
        worker: str = "",
    ) -> None:
        self.config = config
        self.state = state
        self.target_factory = target_factory
        self.payload_builder = payload_builder
        self.clock = clock
        self.rng = rng or random.Random()
        self.should_stop = should_stop
        self.on_progress = on_progress  # told after each account and each post handled (the daemon's watchdog)
        self.worker = worker  # this process, as other workers on a shared state know it (State.account_changed_hands)
        self._targets: dict[str, Target] = {}

    def close(self) -> None:
        for target in self._targets.values():
            try:
                target.close()
            except Exception:  # closing is best effort
                log.debug("closing target failed", exc_info=True)
        self._targets.clear()

    def deliver_due(self, accounts: list[str] | None = None) -> DeliveryReport:
        names = accounts or list(self.config.accounts)
        order = names
        if self.state.shared:  # workers start at different accounts, and each takes the ones nobody holds
            start = self.rng.randrange(len(names)) if names else 0
            order = names[start:] + names[:start]
        done: dict[str, AccountReport] = {}
        for account in order:
            if self.should_stop():
                break
            with self.state.try_lock(f"account:{account}") as mine:
                if not mine:  # another worker is delivering it now: its flood limits and session are that one's
                    continue
                if self.state.shared and self.state.account_changed_hands(account, self.worker):
                    self._forget_target(account)
                done[account] = self._deliver_account_isolated(account)
            self.on_progress()
        return DeliveryReport([done[account] for account in names if account in done])

    def _forget_target(self, account: str) -> None:
        """Another worker delivered this account meanwhile: its session may have been refreshed (and the one held
        here revoked), so the next target starts from the stored one."""
        target = self._targets.pop(account, None)
        if target is not None:
            try:
                target.close()
            except Exception:  # closing is best effort
                log.debug("closing target failed", exc_info=True)

    def _deliver_account_isolated(self, account: str) -> AccountReport:
        try:
            return self._deliver_account(account)
        except NOT_ISOLATED:
            raise
        except Exception as exc:  # a bug met by one account must not stop the others
            reason = unexpected(log, exc, f"delivering for account {account}")
            log_event(log, logging.ERROR, f"account {account}: delivery stopped by an unexpected error ({reason}); "
                      "its queue waits for the next pass", account=account)
            return AccountReport(account, error=reason)

    # --- flood control -----------------------------------------------------------------------------------

    def next_allowed_at(self, account: str, now: float | None = None) -> float:
        """The earliest time this account may post again under its hourly/daily limits and spacing."""
        return next_allowed_at(self.config, self.state, account, self.clock() if now is None else now)

    # --- one account ---------------------------------------------------------------------------------------

    def _deliver_account(self, account: str) -> AccountReport:
        report = AccountReport(account)
        now = self.clock()
        self.state.rewind_account_if_ahead(account, now)
        info = self.state.account(account)
        if info["paused_reason"]:
            fingerprint = credential_fingerprint(self.config, account)
            changed = fingerprint is not None and fingerprint != info["paused_fingerprint"]
            if not changed and now - (info["paused_at"] or 0) < PAUSED_RECHECK_SECONDS:
                report.paused = info["paused_reason"]
                return report
            log.info("account %s: trying again after its pause (%s)", account,
                     "the credential changed" if changed else "an hour passed")
            self.state.resume_account(account)
        if info["deferred_until"] and info["deferred_until"] > now:
            report.deferred_until = info["deferred_until"]
            return report
        rows = self.state.due_deliveries(account, now)
        if not rows:
            self._keep_credential_alive(account, report)
            return report
        try:
            target = self._target(account)
        except (ConfigError, AuthError) as exc:  # no credential, or a refused one
            self._pause(account, str(exc), report)
            return report
        except TransientPublishError as exc:
            log.warning("account %s: cannot reach the server now (%s); the queue waits", account, exc)
            return report
        for row in rows:
            if self.should_stop():
                break
            if row.state not in ("sending", "unknown"):
                if report.next_slot is None:  # once the account is held, the rest of this pass waits with it
                    slot = self.next_allowed_at(account)
                    report.next_slot = slot if slot > self.clock() else None
                if report.next_slot is not None:
                    report.waiting += 1
                    continue
            try:
                handled = self._deliver_one(target, row, report)
            except AccountLockLost:
                log.info("account %s: its lock went with the lost database connection; the next pass that holds "
                         "it goes on", account)
                break
            self.on_progress()
            if not handled:
                break  # the account cannot go on this pass (paused, rate limited, server down)
        return report

    def _still_mine(self, account: str) -> None:
        """Before the point of no return (the row marked `sending`, then the network call): the account's lock must
        still be this worker's, or another may be delivering it now."""
        if not self.state.still_holds(f"account:{account}"):
            raise AccountLockLost(account)

    def _target(self, account: str) -> Target:
        if account not in self._targets:
            self._targets[account] = self.target_factory(account)
        return self._targets[account]

    def _deliver_one(self, target: Target, row: DeliveryRow, report: AccountReport) -> bool:
        """Returns False when the rest of this account's queue should wait for a later pass."""
        account = row.account
        try:
            if row.kind == "update" and row.remote_id:
                return self._edit_one(target, row, report)
            uncertain = outcome_uncertain(row)
            if uncertain and not threaded(row.payload):  # a thread looks part by part (bridge/notethreads.py)
                # An earlier attempt may have posted without us hearing the answer: ask before posting.
                existing = target.find_existing(row)
                if existing is not None:
                    self._posted(row, existing, report, recovered=True)
                    return True
                uncertain = False
            payload = row.payload
            if payload is None:
                payload = self._build_payload(row, target)
                self.state.set_payload(row.id, payload)
                row.payload = payload
            self._still_mine(account)
            self.state.mark_sending(row.id, self.clock())
            crash_point("after-delivery-row")
            try:
                published = self._publish(target, row, payload, uncertain)
            except TooLong as refusal:
                published = self._send_strictly_rendered(target, row, refusal)
            crash_point("after-remote-post")
        except RateLimited as exc:
            until = exc.retry_at.timestamp() if exc.retry_at else self.clock() + self._rate_limit_wait(row, account)
            self.state.mark_unsent(row.id, f"{RATE_LIMITED_ERROR} {exc}", until, row.first_sent_at)
            self.state.defer_account(account, until, self.clock())
            report.deferred_until = until
            log_event(log, logging.WARNING, f"account {account}: rate limited until {_fmt(until)}; the queue waits",
                      account=account, until=until)
            return False
        except AuthError as exc:
            self.state.mark_unsent(row.id, str(exc), self.clock(), row.first_sent_at)
            self._pause(account, str(exc), report)
            return False
        except OutcomeUnknown as exc:
            self.state.mark_unknown(row.id, str(exc), self.clock() + UNKNOWN_RECHECK_SECONDS)
            report.unknown += 1
            log_event(log, logging.ERROR, f"account {account}: holding {row.link or row.entry_key}: {exc}",
                      account=account, entry=row.entry_key)
            return True
        except PermanentPublishError as exc:
            self.state.mark_failed(row.id, str(exc), next_key=_fresh_key(row) if exc.not_posted else None)
            report.failed += 1
            log_event(log, logging.ERROR, f"account {account}: gave up on {row.link or row.entry_key}: {exc} "
                      f"({failed_post_fix(account)})", account=account, entry=row.entry_key)
            return True
        except TransientPublishError as exc:
            self._retry_later(row, exc, report)
            return False
        except PublishError as exc:  # any other publish error is treated as transient
            self._retry_later(row, TransientPublishError(str(exc)), report)
            return False
        except (AccountLockLost, *NOT_ISOLATED):
            raise
        except Exception as exc:  # a target or its library failed in a way nobody planned: the outcome is unknown,
            # as after a lost answer, so it is retried (asking the server first) and given up after max_attempts
            reason = unexpected(log, exc, f"posting {row.link or row.entry_key} to {account}")
            self._retry_later(row, TransientPublishError(f"unexpected {reason}"), report)
            return False
        self._posted(row, published, report)
        return True

    def _send_strictly_rendered(self, target: Target, row: DeliveryRow, refusal: TooLong) -> Published:
        """The server refused the post as too long although it was rendered for its limits: render it once
        more -- limits read anew, the strictest counting -- and send that. A second refusal is final."""
        log.warning("account %s: the server refused %s as too long (%s); rendering it once more, counting strictly",
                    row.account, row.link or row.entry_key, refusal)
        try:
            payload = self._build_payload(row, target, strict=True)
        except PermanentPublishError as exc:  # cannot be made shorter: the refusal stands
            raise PermanentPublishError(f"{refusal}; rendering it again failed: {exc}", not_posted=True) from None
        # Under a new key: the refusal proves nothing was made, and Pleroma and Akkoma would replay it for the old one.
        row.idempotency_key = _fresh_key(row)
        self.state.set_payload(row.id, payload, row.idempotency_key)
        row.payload = payload
        try:
            return self._publish(target, row, payload, uncertain=False)
        except TooLong as again:
            raise TooLong(f"{again} (also after rendering it again with the strictest counting)") from None

    def _publish(self, target: Target, row: DeliveryRow, payload: dict, uncertain: bool) -> Published:
        """One post, or a long note's thread part by part (`uncertain`: an earlier attempt may have sent a part)."""
        if threaded(payload):
            return publish_thread(self.state, target, row, payload, uncertain=uncertain, clock=self.clock,
                                  on_progress=self.on_progress)
        return target.publish(row, payload)

    def _build_payload(self, row: DeliveryRow, target: Target, *, strict: bool = False) -> dict:
        """The row's payload. An unexpected error here belongs to this entry alone: it fails, the rest goes on."""
        try:
            return self.payload_builder(row, target, strict=True) if strict else self.payload_builder(row, target)
        except (PublishError, *NOT_ISOLATED):
            raise
        except Exception as exc:
            reason = unexpected(log, exc, f"making the post of {row.link or row.entry_key}")
            raise PermanentPublishError(f"cannot make a post of {row.link or row.entry_key}: {reason}") from None

    def _edit_one(self, target: Target, row: DeliveryRow, report: AccountReport) -> bool:
        """An edit of a posted status (edit_on_update). An edit is idempotent: replaying it is harmless."""
        payload = self._build_payload(row, target)
        if self.state.thread_parts(row.id):  # a long note posted as a thread: its parts are edited one by one
            return self._edit_thread(target, row, payload, report)
        self.state.set_payload(row.id, payload)
        self._still_mine(row.account)
        self.state.mark_sending(row.id, self.clock())
        published = target.edit(row, payload)
        self.state.mark_posted(row.id, published.remote_id, published.url or row.remote_url, self.clock())
        report.posted.append(published.url or published.remote_id)
        log_event(log, logging.INFO, f"account {row.account}: edited {row.link or row.entry_key} -> {published.url}",
                  account=row.account, entry=row.entry_key, url=published.url)
        return True

    def _edit_thread(self, target: Target, row: DeliveryRow, payload: dict, report: AccountReport) -> bool:
        self._still_mine(row.account)
        self.state.mark_sending(row.id, self.clock())
        published = edit_thread(self.state, target, row, payload, self.clock)
        if published is None:  # left as it was (said in the log): the stored payload stays the one sent
            self.state.mark_posted(row.id, row.remote_id, row.remote_url, self.clock())
            return True
        self.state.set_payload(row.id, payload)
        self.state.mark_posted(row.id, published.remote_id, published.url or row.remote_url, self.clock())
        report.posted.append(published.url or published.remote_id)
        log_event(log, logging.INFO, f"account {row.account}: edited the thread of {row.link or row.entry_key}",
                  account=row.account, entry=row.entry_key, url=published.url)
        return True

    def _posted(self, row: DeliveryRow, published: Published, report: AccountReport, recovered: bool = False) -> None:
        self.state.mark_posted(row.id, published.remote_id, published.url, self.clock())
        report.posted.append(published.url or published.remote_id)
        how = "found already posted" if recovered else "posted"
        log_event(log, logging.INFO, f"account {row.account}: {how} {row.link or row.entry_key} -> {published.url or published.remote_id}",
                  account=row.account, entry=row.entry_key, url=published.url)

    def _rate_limit_wait(self, row: DeliveryRow, account: str) -> float:
        """How long to wait after a rate limit that states no reset time (a Nostr relay's `rate-limited:`):
        retry_delay, and twice the last wait each time this post is rate limited again, up to RETRY_MAX_SECONDS,
        so that a relay that keeps refusing is asked less and less often."""
        wait = self.config.bridge.retry_delay
        last = self.state.account(account)
        if (row.last_error or "").startswith(RATE_LIMITED_ERROR) and last["deferred_until"] and last["deferred_at"]:
            wait = max(wait, 2 * (last["deferred_until"] - last["deferred_at"]))
        return min(wait, RETRY_MAX_SECONDS)

    def _retry_later(self, row: DeliveryRow, error: TransientPublishError, report: AccountReport) -> None:
        attempts = row.attempts + 1  # mark_sending counted this one (or it failed before: still count it)
        max_attempts = self.config.accounts[row.account].max_attempts
        if attempts >= max_attempts:
            self.state.mark_failed(row.id, f"gave up after {attempts} attempts: {error}")
            report.failed += 1
            log.error("account %s: gave up on %s after %d attempts: %s (`bridge retry --account %s` to try again)",
                      row.account, row.link or row.entry_key, attempts, error, row.account)
            return
        delay = min(self.config.bridge.retry_delay * 2 ** (attempts - 1), RETRY_MAX_SECONDS)
        delay *= 1 + self.rng.uniform(-RETRY_JITTER, RETRY_JITTER)
        when = self.clock() + delay
        if error.retry_at is not None:
            when = max(when, error.retry_at.timestamp())
        self.state.mark_retry(row.id, str(error), when)
        report.retried += 1
        log_event(log, logging.WARNING, f"account {row.account}: {row.link or row.entry_key} not posted ({error}); "
                  f"retrying at {_fmt(when)}", account=row.account, entry=row.entry_key)

    def _keep_credential_alive(self, account: str, report: AccountReport) -> None:
        """A credential that dies unless renewed (Threads' 60-day token) is renewed on passes with nothing to post
        too: a blog quiet for two months must not lose its account. Only platforms whose credential expires."""
        from bridge.platforms import platform  # imported here: the registry loads every platform's package

        if platform(self.config.accounts[account].type).credential_expires is None:
            return
        try:
            keep_alive = getattr(self._target(account), "keep_alive", None)
            if keep_alive is not None:
                keep_alive()
        except (ConfigError, AuthError) as exc:  # no credential, or an expired one: as a post would meet it
            self._pause(account, str(exc), report)
        except PublishError as exc:  # the server's trouble: the target logs it and asks again later
            log.debug("account %s: credential not renewed now (%s)", account, exc)

    def _pause(self, account: str, reason: str, report: AccountReport) -> None:
        self.state.pause_account(account, reason, self.clock(), credential_fingerprint(self.config, account))
        self._targets.pop(account, None)
        report.paused = reason
        log_event(log, logging.ERROR, f"account {account} paused, its posts stay queued: {reason}", account=account)


def next_allowed_at(config: Config, state: State, account: str, now: float) -> float:
    """Flood control: at most posts_per_hour in any hour, posts_per_day in any day, 3600/posts_per_hour apart."""
    settings = config.accounts[account]
    day = state.posted_times_since(account, now - DAY)
    hour = [t for t in day if t >= now - HOUR]
    candidates = [now]
    if day:
        candidates.append(day[-1] + HOUR / settings.posts_per_hour)
    if len(hour) >= settings.posts_per_hour:
        candidates.append(hour[len(hour) - settings.posts_per_hour] + HOUR)
    if len(day) >= settings.posts_per_day:
        candidates.append(day[len(day) - settings.posts_per_day] + DAY)
    return max(candidates)


def _fresh_key(row: DeliveryRow) -> str:
    return ids.idempotency_key(row.account, row.feed, row.entry_key)


def _fmt(timestamp: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(timestamp))
