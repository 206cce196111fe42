"""The long-lived token: used, refreshed, kept.

Meta: a long-lived token lives 60 days; it "can be refreshed as long as [it is] at least 24 hours old but [has]
not expired", and a refreshed one lives 60 days from the refresh; one not refreshed in 60 days is dead
(https://developers.facebook.com/docs/threads/get-started/long-lived-tokens/). bridge refreshes the token once
it is a day old -- at most one refresh a day, each giving 60 days again, on delivery passes with nothing to post
too (Target.keep_alive), so a daemon that runs at all never gets near the end -- and keeps the new one in the
state database (0600, the accounts' `session`, where Bluesky keeps its session), with its expiry for `status`,
`doctor` and the credential_expiring alert. The configured token is the seed: when it
changes (a new `bridge login threads`), the kept one is dropped for it. A token is never logged: every one is
registered with bridge.redact.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time

from bridge.config import ConfigError, Secret, resolve_secret
from bridge.errors import AuthError, PublishError
from bridge.platforms.base import CredentialExpiry
from bridge.platforms.threads.graph import Graph, login_fix
from bridge.redact import register_secret

log = logging.getLogger("bridge.threads")

DAY = 86400.0
LIFETIME = 60 * DAY  # a long-lived token's life (Meta)
REFRESH_AFTER = DAY  # Meta refreshes only tokens at least 24 hours old
REFRESH_RETRY = 3600.0  # after Meta failed a refresh: the old token still lives for weeks; ask again in an hour


def fingerprint(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()[:16]


class TokenKeeper:
    def __init__(self, graph: Graph, state, account: str, configured: str, clock=time.time) -> None:
        self.graph, self.state, self.account, self.clock = graph, state, account, clock
        self.configured = configured
        self.retry_at = 0.0  # no refresh before this (one failed)
        register_secret(configured)

    def record(self) -> dict:
        """{"token", "obtained_at", "expires_at", "refreshed_at", "seed"}: the token in use."""
        kept = kept_record(self.state.load_session(self.account))
        seed = fingerprint(self.configured)
        if kept.get("seed") != seed or not kept.get("token"):
            # A token bridge has not seen: take it as just made by `bridge login threads` (Meta tells no age)
            now = self.clock()
            kept = {"token": self.configured, "obtained_at": now, "expires_at": now + LIFETIME,
                    "refreshed_at": None, "seed": seed}
            self._save(kept)
        register_secret(kept["token"])
        return kept

    def token(self) -> str:
        """The token to call with, refreshed first when it is a day old; AuthError once it has expired."""
        kept = self.record()
        now = self.clock()
        if now >= kept["expires_at"]:
            raise AuthError(f"the Threads access token expired {_day(kept['expires_at'])} (not refreshed within 60 days)",
                            login_fix(self.account))
        if now - kept["obtained_at"] >= REFRESH_AFTER and now >= self.retry_at:
            try:
                kept = self.refresh(kept)
            except AuthError:
                raise
            except PublishError as exc:  # Meta's trouble: the old token still lives; try again in an hour
                self.retry_at = now + REFRESH_RETRY
                log.warning("account %s: could not refresh the Threads token (%s); it is valid until %s",
                            self.account, exc, _day(kept["expires_at"]))
        return kept["token"]

    def refresh(self, kept: dict) -> dict:
        answer = self.graph.call("GET", "refresh_access_token",
                                 {"grant_type": "th_refresh_token", "access_token": kept["token"]}, versioned=False)
        token = str(answer.get("access_token") or "")
        if not token:
            raise PublishError("Threads answered the refresh without a token")
        register_secret(token)
        now = self.clock()
        fresh = {**kept, "token": token, "obtained_at": now, "refreshed_at": now,
                 "expires_at": now + float(answer.get("expires_in") or LIFETIME)}
        self._save(fresh)
        log.info("account %s: Threads token refreshed; valid until %s", self.account, _day(fresh["expires_at"]))
        return fresh

    def _save(self, kept: dict) -> None:
        self.state.save_session(self.account, json.dumps(kept), self.clock())


def kept_token(state, account: str, configured: Secret) -> Secret:
    """The token bridge keeps refreshed for this account (what posting uses), when it grew from the configured
    one; else the configured token. For the way back, whose reads would otherwise fail once the configured token's
    60 days are over."""
    kept = kept_record(state.load_session(account))
    if kept.get("seed") == fingerprint(configured.reveal()) and kept.get("token"):
        register_secret(kept["token"])
        return Secret(kept["token"])
    return configured
def kept_record(session: str | None) -> dict:
    """The record TokenKeeper keeps in the accounts' `session`; {} when there is none (or it is unreadable)."""
    try:
        kept = json.loads(session or "null")
    except ValueError:
        return {}
    return kept if isinstance(kept, dict) else {}


def credential_expires(config, state, account: str) -> CredentialExpiry | None:
    """Platform.credential_expires: the kept token's expiry. Healthy, the daily refresh keeps it 59-60 days away;
    only a refresh failing for weeks (or a daemon not run) brings it near. None before bridge has used a token,
    and when the configured token is not the kept one's seed: a new `bridge login threads` that bridge has not
    used yet, which TokenKeeper takes as fresh (60 days) at its first use."""
    kept = kept_record(state.load_session(account))
    if not kept.get("expires_at"):
        return None
    try:
        configured = resolve_secret(config, account).reveal()
    except ConfigError:
        configured = None  # check-config tells of a missing credential; the kept token is still the one in use
    if configured is not None and fingerprint(configured) != kept.get("seed"):
        return None
    return CredentialExpiry(float(kept["expires_at"]), login_fix(account))


def _day(epoch: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(epoch))
