"""The daemon's WebSub job: keep one subscription per feed whose document names a hub, as long as the feed is
configured; record what the callback learned. Runs in a job of its own: a slow or broken hub never holds up a
poll or a post.

Per feed (state: the `websub` table):
- a hub and topic named, no subscription (or a different hub or topic: it moved, a 301, a new hub; or a new
  public_url) ->
  unsubscribe from the old one (best effort), subscribe with a new callback token and a new secret;
- active, lease ending within RENEW_BEFORE of its length -> subscribe again (the same callback and secret);
- requested and not verified within VERIFY_WITHIN, denied, refused, or the lease lapsed -> failed: the feed
  polls at its normal interval at once, status says why, and the job tries again with exponential backoff;
- the feed gone from the config -> unsubscribe, and forget the row.
"""

from __future__ import annotations

import logging
import secrets
import time
from typing import Callable

from bridge.config import Config
from bridge.redact import register_secret
from bridge.state import State, WebSubRow

from .callback import PATH_PREFIX, Callbacks, Event
from .hub import HubError, ask_hub

log = logging.getLogger("bridge.websub")

VERIFY_WITHIN = 300.0  # a hub verifies within seconds; one silent this long is not going to
RENEW_BEFORE = 0.2  # renew with a fifth of the lease left: room for a few failed tries before it lapses
RETRY_FIRST = 60.0
RETRY_MAX = 6 * 3600.0


class Subscriber:
    def __init__(self, config: Config, state: State, callbacks: Callbacks, *,
                 clock: Callable[[], float] = time.time, on_lapse: Callable[[str], None] = lambda feed: None,
                 ask: Callable = ask_hub) -> None:
        self.config = config
        self.state = state
        self.callbacks = callbacks
        self.clock = clock
        self.on_lapse = on_lapse  # the feed no longer gets pushes: the daemon polls it now
        self.ask = ask
        for row in state.websub_rows():  # after a restart: the callbacks of live subscriptions answer again
            register_secret(row.secret)
            register_secret(row.token)  # the callback path is not to be guessed: kept out of (debug) logs too
            if row.token and row.secret and row.status == "active":
                callbacks.keep(row.token, row.feed, row.sub_topic or "", row.secret)
            elif row.token and row.secret and row.status == "requested":  # the hub may verify after the restart
                callbacks.expect(row.token, row.feed, row.sub_topic or "", row.secret, "subscribe")

    def callback_url(self, token: str) -> str:
        return f"{self.config.bridge.public_url}{PATH_PREFIX}{token}"

    # --- the periodic job ------------------------------------------------------------------------------------

    def maintain(self) -> None:
        now = self.clock()
        configured = {feed.name for feed in self.config.feeds if feed.enabled}
        for row in self.state.websub_rows():
            try:
                if row.feed not in configured:
                    self._leave(row)
                else:
                    self._tend(row, now)
            except HubError as exc:
                self._failed(row, str(exc))

    def _tend(self, row: WebSubRow, now: float) -> None:
        if not row.hub or not self.config.bridge.public_url:
            return
        moved = row.sub_hub is not None and ((row.sub_hub, row.sub_topic) != (row.hub, row.topic)
                                             or row.callback != self.callback_url(row.token or ""))
        if moved and row.status in ("active", "requested"):
            log.info("feed %s: its hub, topic or callback changed (hub %s -> %s); subscribing anew", row.feed, row.sub_hub,
                     row.hub)
            self._unsubscribe(row)
        if row.status == "active" and not moved:
            lease_end = row.lease_expires_at or 0
            if lease_end <= now:
                self._failed(row, "the lease lapsed without a renewal")
            elif lease_end - now <= RENEW_BEFORE * self.config.bridge.websub_lease:
                self._subscribe(row, renew=True)
            return
        if row.status == "requested" and not moved:
            if now - (row.requested_at or now) > VERIFY_WITHIN:
                self._failed(row, f"the hub did not verify the subscription within {VERIFY_WITHIN:.0f} s")
            return
        if row.status == "failed" and (row.next_attempt_at or 0) > now:
            return
        self._subscribe(row, renew=False)

    def _subscribe(self, row: WebSubRow, *, renew: bool) -> None:
        token, secret = (row.token, row.secret) if renew and row.token and row.secret else (
            secrets.token_urlsafe(32), secrets.token_urlsafe(32))
        register_secret(secret)
        register_secret(token)
        topic = row.topic or ""
        self.callbacks.expect(token, row.feed, topic, secret, "subscribe")
        fields = dict(token=token, secret=secret, callback=self.callback_url(token), sub_hub=row.hub, sub_topic=topic,
                      requested_at=self.clock())
        if not renew:
            fields.update(status="requested", lease_expires_at=None)
        self.state.update_websub(row.feed, **fields)
        if row.token and row.token != token and row.status not in ("active", "requested"):
            self.callbacks.forget(row.token)  # a live old one stays until its unsubscribe is verified
        self.ask(self.config.bridge, row.hub, {
            "hub.mode": "subscribe", "hub.topic": topic, "hub.callback": self.callback_url(token),
            "hub.lease_seconds": str(int(self.config.bridge.websub_lease)), "hub.secret": secret,
        })
        log.info("feed %s: %s WebSub subscription at %s", row.feed, "renewing the" if renew else "asked for a", row.hub)

    def _unsubscribe(self, row: WebSubRow) -> None:
        """Best effort: a hub that cannot be told stops pushing when the lease ends."""
        if not (row.sub_hub and row.token and row.secret):
            return
        self.callbacks.expect(row.token, row.feed, row.sub_topic or "", row.secret, "unsubscribe")
        try:
            self.ask(self.config.bridge, row.sub_hub, {
                "hub.mode": "unsubscribe", "hub.topic": row.sub_topic or "", "hub.callback": row.callback or ""})
        except HubError as exc:
            log.warning("feed %s: could not unsubscribe from %s: %s; it lapses with its lease", row.feed, row.sub_hub, exc)

    def _leave(self, row: WebSubRow) -> None:
        if row.status in ("active", "requested") and self.config.bridge.public_url:
            self._unsubscribe(row)
            log.info("feed %s left the config: unsubscribed from %s", row.feed, row.sub_hub)
        self.state.delete_websub(row.feed)
        # The token stays known until the hub's unsubscribe verification arrives (settled in record()).

    def _failed(self, row: WebSubRow, reason: str) -> None:
        failures = row.failures + 1
        delay = min(RETRY_FIRST * 2 ** min(failures - 1, 20), RETRY_MAX)
        self.state.update_websub(row.feed, status="failed", last_error=reason, failures=failures,
                                 next_attempt_at=self.clock() + delay)
        log.warning("feed %s: WebSub subscription at %s failed: %s; polling at its normal interval, trying again "
                    "in %.0f s", row.feed, row.hub, reason, delay)
        self.on_lapse(row.feed)

    # --- what the callback learned ---------------------------------------------------------------------------

    def record(self, event: Event) -> None:
        row = self.state.websub(event.feed)
        if row is None or row.token != event.token:
            if event.kind == "verified" and event.mode == "unsubscribe":
                self.callbacks.forget(event.token)
            return
        if event.kind == "verified" and event.mode == "subscribe":
            lease = event.lease_seconds or self.config.bridge.websub_lease
            self.state.update_websub(row.feed, status="active", lease_expires_at=event.at + lease, failures=0,
                                     last_error=None, next_attempt_at=None)
            log.info("feed %s: WebSub subscription verified by %s, lease %.0f s", row.feed, row.sub_hub, lease)
        elif event.kind == "verified" and event.mode == "unsubscribe":
            self.callbacks.forget(event.token)
        elif event.kind == "denied":
            self._failed(row, f"the hub denied the subscription: {event.reason}")
        elif event.kind == "push":
            self.state.update_websub(row.feed, last_push_at=event.at)
        elif event.kind == "rejected":
            self.state.update_websub(row.feed, rejected_pushes=row.rejected_pushes + 1,
                                     last_error=f"ignored a push at {time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime(event.at))} UTC: {event.reason}")
