"""`bridge backfill`: post a feed's older entries on purpose, paced, through the same outbox as everything else.

Because backfilled posts are ordinary deliveries, a backfill is resumable (run it again), never duplicates
what the daemon posted (one delivery per entry and account, and the canonical-link guard across feeds), and
obeys each account's flood limits on top of its own pace.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from bridge import ids
from bridge.config import Config, FeedConfig
from bridge.model import Entry
from bridge.platforms import platform
from bridge.state import State
from bridge.unexpected import unexpected

log = logging.getLogger("bridge.backfill")


@dataclass
class Planned:
    entry_id: int
    entry: Entry
    account: str
    not_before: float


def plan_backfill(
    config: Config, state: State, feed: FeedConfig, *, now: float, since: datetime | None = None,
    limit: int | None = None, pace: float = 600.0, oldest_first: bool = False,
) -> list[Planned]:
    """Which (entry, account) pairs a backfill would queue, and when each may go out."""
    from bridge.feeds import link_aliases

    rows = state.entries_of_feed(feed.name, since=since.timestamp() if since else None, oldest_first=oldest_first)
    planned: list[Planned] = []
    slot = 0
    chosen_entries = 0
    for entry_id, entry, _status in rows:
        if limit is not None and chosen_entries >= limit:
            break
        try:
            aliases = link_aliases(entry.link) if entry.link else []
        except Exception as exc:  # a link nobody planned for: this entry is left out, the others are planned
            log.warning("backfill of %s: leaving out %s (%s)", feed.name, entry.link or entry.key,
                        unexpected(log, exc, f"reading the link of {entry.key}"))
            continue
        accounts = [account for account in feed.accounts if not state.has_delivery(entry_id, account)
                    and not state.account_has_alias(account, aliases) and _passes(config, feed, account, entry)]
        if not accounts or not entry.link:
            continue
        chosen_entries += 1
        for account in accounts:
            planned.append(Planned(entry_id, entry, account, now + slot * pace))
        slot += 1
    return planned


def _passes(config: Config, feed: FeedConfig, account: str, entry) -> bool:
    """Today's filters apply as they do to new entries (a pair a filter kept back earlier has its row: left out)."""
    reason = config.entry_filter(feed, account).rejects(entry)
    if reason is not None:
        log.info("backfill of %s: %s is not for %s: %s", feed.name, entry.link or entry.key, account, reason)
    return reason is None


def queue_backfill(config: Config, state: State, feed: FeedConfig, planned: list[Planned], *, now: float) -> int:
    queued = 0
    with state.transaction():
        for item in planned:
            record_key = platform(config.accounts[item.account].type).new_record_key
            delivery = state.add_delivery(
                item.entry_id, item.account,
                idempotency_key=ids.idempotency_key(item.account, feed.name, item.entry.key),
                rkey=record_key(now) if record_key else None,
                now=now, kind="backfill", not_before=item.not_before,
            )
            queued += delivery is not None
    return queued
