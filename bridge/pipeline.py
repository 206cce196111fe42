"""Polling: fetch the due feeds, record what they hold, and queue new entries for their accounts.

For each feed, everything one poll learns is written in one transaction: the entries, their aliases, the
deliveries they create and the feed's own row. A crash mid-poll therefore records nothing, and the next poll
sees the same document again.

First sight of a feed records every entry as baseline and queues nothing. After that an unseen entry is:
- a re-keyed old one, when its canonical link matches an entry no longer in the document under its old key
  (GUID changes, http->https, `www.`, tracking parameters): the stored key moves, nothing is queued;
- too old, when published more than max_post_age ago: recorded, not queued;
- unreachable, when its permalink is on a local host readers cannot open (permalinks.py: a site built with
  url = http://localhost:4000): recorded, not queued, and the feed's outcome carries the fix;
- new: one pending delivery per account, unless that account already had the same link from any feed.
"""

from __future__ import annotations

import hashlib
import logging
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Awaitable, Callable

from bridge import ids
from bridge.config import Config, FeedConfig
from bridge.errors import FeedError, FeedGone, FeedHTTPError
from bridge.faults import crash_point
from bridge.feeds import MAX_TTL_MINUTES, READ_POOL_MIN_FEEDS
from bridge.feeds.identity import other_key_forms
from bridge.logs import log_event
from bridge.model import Entry, ParsedFeed
from bridge.permalinks import hostless_alias, link_host, site_url_fix, unreachable_site
from bridge.platforms import platform
from bridge.state import FeedRow, State
from bridge.unexpected import NOT_ISOLATED, unexpected
from bridge.websub.discovery import hub_and_topic

if TYPE_CHECKING:
    from bridge.feeds import FetchResult, Fetcher
    from bridge.feeds.pool import ReadPool
    from bridge.feeds.prepare import PreparedEntry, PreparedFeed

log = logging.getLogger("bridge.poll")
# A server may ask us to wait (Cache-Control max-age, Retry-After, RSS ttl), for at most a week at a time: a
# larger hint (a 400-digit number is float inf) would put the next poll past any date, and the feed is lost.
MAX_SERVER_WAIT = MAX_TTL_MINUTES * 60.0

# A poll that fires a little early still counts as due, so a timer every N minutes and an interval of N
# minutes do not skip every other run.
DUE_TOLERANCE_SECONDS = 60.0
# Polling jitter: +-10% of the interval, so feeds added together do not poll in lockstep.
JITTER_FRACTION = 0.1
# `bridge poll` commits finished feeds in groups (see State.group_commit): at most this many, this long apart.
GROUP_FEEDS = 500
GROUP_SECONDS = 1.0
# Fetched bodies wait for the parser (CPU) while the network is quicker: at most this many feeds per request
# slot are between fetch and record at once, so a cold poll of 10,000 feeds holds a few MB of bodies rather
# than hundreds.
IN_FLIGHT_PER_REQUEST_SLOT = 2
# Documents up to this size are parsed on the event loop (a few ms each). Handing them to a thread costs more
# than it saves: with the GIL, the loop then waits up to a switch interval after every socket call, and a
# 1,000-feed change cycle took a fifth longer. Bigger documents (up to a second of parsing) go to a thread so
# the other fetches go on meanwhile.
INLINE_PARSE_MAX_BYTES = 256 * 1024


@dataclass(slots=True)  # one per feed polled: 100,000 of them in a big cycle
class FeedOutcome:
    feed: str
    outcome: str  # new / unchanged / not-modified / error / gone / skipped
    status: int | None = None
    new_entries: int = 0
    baseline: int = 0
    too_old: int = 0
    rekeyed: int = 0
    updated: int = 0
    queued: int = 0
    unreachable: int = 0
    filtered: int = 0
    # What the filters kept back in this poll: (account, entry title or link, reason), for `poll --dry-run`
    filtered_out: list[tuple[str, str, str]] = field(default_factory=list)
    error: str | None = None
    warning: str | None = None  # the feed reads, but something in it needs the writer's fix
    deletes_warning: str | None = None  # posted entries vanished at once: nothing deleted (bridge/deletes.py)
    entries_in_document: int | None = None  # of a changed document: the next poll's measure of a sudden loss
    url: str = ""

    @property
    def notice(self) -> str | None:
        """The warning as one line for logs and `bridge poll`."""
        if not self.warning:
            return None
        return f"feed {self.feed}: {self.unreachable} entr{'y' if self.unreachable == 1 else 'ies'} not posted: {self.warning}"


@dataclass
class PollReport:
    feeds: list[FeedOutcome] = field(default_factory=list)

    @property
    def failed(self) -> list[FeedOutcome]:
        return [outcome for outcome in self.feeds if outcome.outcome in ("error", "gone")]


def reads_differently(old: Entry, new: Entry) -> bool:
    """Would a post made of `new` read differently from one made of `old`? Markup-only changes (attribute order,
    a tracking parameter in an <img>, or an upgrade of bridge that stores the feed's HTML as given rather than
    as feedparser rewrote it) change the content hash but not the post: they must not cause edits."""
    from bridge.render.text import html_to_text

    if (old.title, old.link, sorted(old.categories)) != (new.title, new.link, sorted(new.categories)):
        return True
    try:
        return any(html_to_text(a).text != html_to_text(b).text
                   for a, b in ((old.summary_html, new.summary_html), (old.content_html, new.content_html)))
    except Exception as exc:  # text that cannot be read: its content hash changed, so count it as changed
        log.warning("entry %s: cannot compare its old and new text (%s); treating it as changed",
                    new.link or new.key, unexpected(log, exc, f"comparing two versions of {new.link or new.key}"))
        return True


class Poller:
    def __init__(
        self,
        config: Config,
        state: State,
        *,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        lease_owner: str | None = None,
    ) -> None:
        self.config = config
        self.state = state
        # Workers sharing a state: this worker's leases on the feeds it polls end with each poll's record.
        self.lease_owner = lease_owner
        self.clock = clock
        self.rng = rng or random.Random()
        self.reader: ReadPool | None = None  # worker processes reading documents, during a big cycle

    # --- which feeds -------------------------------------------------------------------------------------

    def due_feeds(self, names: list[str] | None = None) -> list[FeedConfig]:
        """Feeds to poll now: the named ones (always), else every enabled feed whose time has come."""
        if names:
            return [self.config.feed(name) for name in names]
        return self.due_feeds_among(self.config.feeds)

    def due_feeds_among(self, feeds: list[FeedConfig]) -> list[FeedConfig]:
        now = self.clock()
        # A whole cycle reads every row in one query; the daemon asks about one feed per job.
        if len(feeds) == 1:
            rows = {feeds[0].name: self.state.get_feed(feeds[0].name)}
        else:
            rows = {row.name: row for row in self.state.list_feeds()}
        due = []
        for feed in feeds:
            if not feed.enabled:
                continue
            row = rows.get(feed.name)
            if row is not None:
                row = self.state.rewind_feed_if_ahead(row, now)
            if row is not None and row.configured_url == feed.url:
                if row.gone:
                    continue
                tolerance = min(DUE_TOLERANCE_SECONDS, self.config.feed_interval(feed) * JITTER_FRACTION)
                if row.next_poll_at is not None and row.next_poll_at > now + tolerance:
                    continue
            due.append(feed)
        return due

    # --- polling -----------------------------------------------------------------------------------------

    def poll(self, names: list[str] | None = None) -> PollReport:
        feeds = self.due_feeds(names)
        if not feeds:
            return PollReport()
        import asyncio  # here: a timer's pass with no feed due starts no event loop, so needs none loaded

        return asyncio.run(self.poll_feeds(feeds))

    async def poll_feeds(self, feeds: list[FeedConfig]) -> PollReport:
        """One cycle over `feeds`, concurrently within the Fetcher's limits, committing in groups."""
        import asyncio

        from bridge.feeds import Fetcher  # here: aiohttp loads when a feed is due, not on every pass of a timer

        rows = self.state.ensure_feeds([(feed.name, feed.url) for feed in feeds])
        fetcher = Fetcher(self.config.bridge)
        group = _CommitGroup(self.state)
        if len(feeds) > READ_POOL_MIN_FEEDS:
            from bridge.feeds.pool import START_AFTER, ReadPool  # worker processes: only for a cycle big enough

            # Feeds never fetched before will all be read: with that many, the workers start at once instead of
            # after START_AFTER documents read here (a steady cycle of 304s still never starts them).
            unread = sum(1 for feed in feeds if rows[feed.name].last_checked_at is None)
            self.reader = ReadPool(start_at_once=unread >= START_AFTER)
        outcomes: list[FeedOutcome] = []
        waiting = iter(feeds)  # shared: each feed is taken by one of the lanes below

        async def lane() -> None:
            for feed in waiting:
                outcomes.append(await self.poll_feed(fetcher, feed, rows[feed.name]))
                group.done()

        try:
            with self.state.group_commit():
                # A fixed number of lanes rather than a task per feed: 100,000 feeds must not mean 100,000 tasks.
                await asyncio.gather(*(lane() for _ in range(min(len(feeds), IN_FLIGHT_PER_REQUEST_SLOT
                                                                  * self.config.bridge.max_concurrency))))
        finally:
            await fetcher.aclose()
            if self.reader is not None:
                self.reader.close()
                self.reader = None
        return PollReport(sorted(outcomes, key=lambda outcome: outcome.feed))

    async def poll_feed(self, fetcher: Fetcher, feed: FeedConfig, row: FeedRow | None = None) -> FeedOutcome:
        """Fetch one feed and record what it holds; a feed problem is recorded, never raised."""
        row = row or self.state.ensure_feed(feed.name, feed.url)
        return await self._isolated(feed, row, self._poll_feed(fetcher, feed, row))

    async def _isolated(self, feed: FeedConfig, row: FeedRow, work: Awaitable[FeedOutcome]) -> FeedOutcome:
        try:
            return await work
        except NOT_ISOLATED:
            raise
        except Exception as exc:  # a bug met by this feed's document: recorded on the feed, the others go on
            reason = unexpected(log, exc, f"polling feed {feed.name}")
            return self._record_error(feed, row, FeedError(f"unexpected error reading the feed: {reason}"), self.clock())

    async def _poll_feed(self, fetcher: Fetcher, feed: FeedConfig, row: FeedRow) -> FeedOutcome:
        try:
            result: FetchResult | FeedError = await fetcher.fetch(row.url, etag=row.etag, last_modified=row.last_modified)
        except FeedError as exc:
            result = exc
        crash_point("mid-fetch")
        parsed: PreparedFeed | FeedError | None = None
        if not isinstance(result, FeedError) and self._needs_parse(row, result):
            try:
                parsed = await self.read(result)
            except FeedError as exc:
                parsed = exc
        return self.record(feed, row, result, parsed)

    async def read(self, result: FetchResult) -> PreparedFeed:
        """The document parsed, and each entry's hash, aliases and stored form worked out (feeds/prepare.py), for
        a poll and a push alike: by the read pool during a big cycle, else on the event loop when small and in
        a thread when not. Raises FeedError."""
        body = result.body or b""
        if self.reader is not None:
            return await self.reader.read(body, result.url, result.content_type)
        from bridge.feeds.prepare import read_document  # here: the parser loads with the first document that changed

        if len(body) <= INLINE_PARSE_MAX_BYTES:
            return read_document(body, result.url, result.content_type)
        import asyncio

        return await asyncio.to_thread(read_document, body, result.url, result.content_type)

    @staticmethod
    def _needs_parse(row: FeedRow, result: FetchResult) -> bool:
        return result.status != 304 and not (result.body_hash and result.body_hash == row.body_hash)

    def is_due(self, feed: FeedConfig) -> bool:
        return bool(self.due_feeds_among([feed]))

    def record(self, feed: FeedConfig, row: FeedRow, result: FetchResult | FeedError,
               prepared: PreparedFeed | FeedError | None = None) -> FeedOutcome:
        """Write what one fetch learned, in one transaction; never raises for a feed problem.

        `prepared` is the reading of a changed body (Poller.read), None when unchanged.
        """
        now = self.clock()
        if isinstance(result, FeedError):
            return self._record_error(feed, row, result, now)
        if isinstance(prepared, FeedError):
            return self._record_error(feed, row, prepared, now)
        parsed = prepared.parsed if prepared is not None else None
        if parsed is None:
            kind = "not-modified" if result.status == 304 else "unchanged"
            outcome = FeedOutcome(feed.name, kind, status=result.status, url=row.url)
            # one UPDATE, atomic without a transaction; not waiting for the disk (State.update_feed: durable)
            self._record_success(feed, row, result, now, outcome, durable=False)
        else:
            outcome = FeedOutcome(feed.name, "new", status=result.status, url=row.url)
            with self.state.transaction():
                self._record_entries(feed, row, prepared.entries, now, outcome)
                self._record_success(feed, row, result, now, outcome, title=parsed.title, ttl=parsed.ttl_seconds)
                crash_point("mid-commit")
        self._note_hub(feed, result, parsed)
        self._log_outcome(outcome)
        return outcome

    async def poll_pushed(self, fetcher: Fetcher, feed: FeedConfig, body: bytes, content_type: str | None,
                          link_header: str | None = None) -> FeedOutcome:
        """A verified WebSub push: recorded exactly like a poll. The pushed body stands for the document when it
        is the whole feed -- it parses and holds an entry bridge already knows (a diff of only the new entries
        holds none, and could look like every other entry was removed); otherwise the feed is fetched."""
        from bridge.feeds import FetchResult

        row = self.state.ensure_feed(feed.name, feed.url)
        result = FetchResult(status=200, url=row.url, permanent_url=None, body=body,
                             body_hash=hashlib.sha256(body).hexdigest(), etag=None, last_modified=None,
                             content_type=content_type, max_age=None, link_header=link_header)
        return await self._isolated(feed, row, self._poll_pushed(fetcher, feed, row, result))

    async def _poll_pushed(self, fetcher: Fetcher, feed: FeedConfig, row: FeedRow, result: FetchResult) -> FeedOutcome:
        try:
            prepared = await self.read(result) if row.baseline_done else None
        except FeedError as exc:  # not a whole feed (a fragment, a diff in another format): the fetch reads it
            log.debug("feed %s: the pushed body is not read as the feed (%s); fetching the feed", feed.name, exc)
            prepared = None
        if prepared is None or not self.state.known_entries(feed.name, [item.entry.key for item in prepared.entries]):
            return await self.poll_feed(fetcher, feed, row)
        return self.record(feed, row, result, prepared if self._needs_parse(row, result) else None)

    def _note_hub(self, feed: FeedConfig, result: FetchResult, parsed: ParsedFeed | None) -> None:
        """Remember the WebSub hub and topic the feed names (bridge.websub.subscriber acts on them)."""
        hub, topic = hub_and_topic(result, parsed)
        if hub is None and parsed is None:
            return  # unchanged and no Link header: what the document named still holds
        row = self.state.websub(feed.name)
        if (row.hub, row.topic) != (hub, topic) if row else hub is not None:
            self.state.update_websub(feed.name, hub=hub, topic=topic)

    def interval(self, feed: FeedConfig, now: float) -> float:
        """The feed's polling interval: long while its hub pushes (polls only catch a missed push)."""
        interval = self.config.feed_interval(feed)
        if self.config.bridge.public_url:
            row = self.state.websub(feed.name)
            if row is not None and row.pushing(now):
                return max(interval, self.config.bridge.websub_poll_interval)
        return interval

    def _record_entries(self, feed: FeedConfig, row: FeedRow, entries: list[PreparedEntry], now: float,
                        outcome: FeedOutcome) -> None:
        keys_in_document = {item.key for item in entries}
        baseline = not row.baseline_done
        feed_host = link_host(feed.url)
        if baseline and not self.state.feed_has_entries(feed.name):
            self._record_first_sight(feed, entries, feed_host, now, outcome)
            outcome.entries_in_document = len(keys_in_document)
            return
        known = self.state.known_entries(feed.name, list(keys_in_document))
        alias_counts = Counter(alias for item in entries for alias in set(item.aliases))
        max_age = self.config.bridge.max_post_age
        seen_now: set[str] = set()
        for item in entries:
            # item.entry is made from the stored JSON when first asked for: a first sight never asks
            aliases, content_hash = item.aliases, item.content_hash
            if item.key in seen_now:
                continue  # a feed that repeats an item within one document
            seen_now.add(item.key)
            if item.key in known:
                entry_id, old_hash = known[item.key]
                if old_hash != content_hash:
                    entry = item.entry
                    _, stored, _ = self.state.get_entry(entry_id)
                    self.state.update_entry(entry_id, entry, content_hash, now, data=item.data)
                    self.state.add_aliases(feed.name, entry_id, aliases)
                    if reads_differently(stored, entry):
                        outcome.updated += 1
                        self._refilter_unsent(feed, entry_id, entry, outcome)
                        self._queue_edits(feed, entry_id, entry, now)
                continue
            site = unreachable_site(item.link, feed.url, host=item.host, feed_host=feed_host)
            # A link shared by several items of this document (a podcast's home page...) identifies none of them.
            unique_aliases = [alias for alias in aliases if alias_counts[alias] == 1]
            if site is None and unique_aliases:
                unique_aliases.append(hostless_alias(unique_aliases))  # recorded under a local base URL before
            previous = (None if baseline else self._under_shared_key(feed.name, item.entry)) or \
                self.state.entry_id_by_aliases(feed.name, unique_aliases)
            if previous is not None:
                _, previous_entry, _ = self.state.get_entry(previous)
                if previous_entry.key not in keys_in_document:
                    self._rekey(previous, item.entry, content_hash, aliases, now)
                    outcome.rekeyed += 1
                    continue
            if site is not None:
                self._add_entry(feed, item, "baseline" if baseline else "unreachable",
                                _unreachable_aliases(site, aliases, outcome), now)
                outcome.baseline += baseline
            elif baseline:
                self._add_entry(feed, item, "baseline", aliases, now)
                outcome.baseline += 1
            elif item.appeared_at is not None and item.appeared_at < now - max_age:
                self._add_entry(feed, item, "too_old", aliases, now)
                outcome.too_old += 1
            else:
                entry = item.entry
                entry_id = self.state.add_entry(feed.name, entry, "new", content_hash, aliases, now, data=item.data)
                outcome.new_entries += 1
                outcome.queued += self._queue(feed, entry_id, entry, aliases, now, outcome=outcome)
        if not baseline:
            self._note_vanished(feed, row, [item.appeared_at for item in entries], keys_in_document, now, outcome)
        outcome.entries_in_document = len(keys_in_document)
        if outcome.new_entries > self.config.bridge.flood_threshold:
            log_event(
                log, logging.WARNING,
                f"feed {feed.name}: {outcome.new_entries} new entries at once; they are queued and will trickle out "
                "within each account's posts_per_hour/posts_per_day limits",
                feed=feed.name, new_entries=outcome.new_entries,
            )

    def _record_first_sight(self, feed: FeedConfig, entries: list[PreparedEntry], feed_host: str, now: float,
                            outcome: FeedOutcome) -> None:
        """A feed's first sight with nothing stored under its name (the common case: every feed of a cold poll): no
        stored entry can match, so nothing is looked up, and its entries are written in one go, as baseline."""
        rows: list[tuple[PreparedEntry, str, list[str]]] = []
        seen_now: set[str] = set()
        for item in entries:
            # item.entry is made from the stored JSON when first asked for: a first sight never asks
            if item.key in seen_now:
                continue  # a feed that repeats an item within one document
            seen_now.add(item.key)
            site = unreachable_site(item.link, feed.url, host=item.host, feed_host=feed_host)
            aliases = item.aliases if site is None else _unreachable_aliases(site, item.aliases, outcome)
            rows.append((item, "baseline", aliases))
        outcome.baseline += len(rows)
        if rows:
            self.state.add_entries(feed.name, rows, now)

    def _add_entry(self, feed: FeedConfig, item: PreparedEntry, status: str, aliases: list[str], now: float) -> None:
        """Record an entry that queues nothing."""
        self.state.add_entry(feed.name, item.entry, status, item.content_hash, aliases, now, data=item.data)

    def _note_vanished(self, feed: FeedConfig, row: FeedRow, appeared: list[float | None], keys_in_document: set[str],
                       now: float, outcome: FeedOutcome) -> None:
        """Posted entries gone from the document are watched (bridge/deletes.py checks their permalinks), for the
        accounts that follow deletes. Only entries as new as the document's oldest count: older ones merely fell off
        its end. A document that lost most of its entries at once (truncated, broken, another feed at the URL)
        starts nothing, and says so."""
        accounts = [name for name in feed.accounts if self.config.accounts[name].follow_deletes]
        if not accounts:
            return
        self.state.forget_reappeared(feed.name, list(keys_in_document))
        dates = [date for date in appeared if date is not None]
        if not dates:  # undated entries: whether one fell off the end cannot be told
            return
        missing = {key: entry_id for key, entry_id in self.state.posted_entries_since(feed.name, min(dates), accounts).items()
                   if key not in keys_in_document}
        before = row.entry_count or 0
        if before and (len(keys_in_document) < before / 2 or len(missing) > max(1, before // 2)):
            warning = (f"the feed went from {before} entries to {len(keys_in_document)} at once; nothing is deleted "
                       "(a truncated or broken feed, or another feed at its URL?)")
            log_event(log, logging.WARNING, f"feed {feed.name}: {warning}", feed=feed.name, vanished=len(missing))
            self.state.update_feed(feed.name, deletes_warning=warning)
            outcome.deletes_warning = warning
            return
        if missing:
            self.state.watch_vanished(list(missing.values()), now)
            log.info("feed %s: %d posted entr%s gone from the feed; their permalinks will be checked", feed.name,
                     len(missing), "y" if len(missing) == 1 else "ies")
        if row.deletes_warning:
            self.state.update_feed(feed.name, deletes_warning=None)

    def _under_shared_key(self, feed_name: str, entry: Entry) -> int | None:
        """The entry recorded for this post under the other form of a shared id (identity.separate_shared_keys):
        the post that shared its id came or went. Same publication time, or it is another post."""
        for key in other_key_forms(entry.key, entry.published):
            entry_id = self.state.entry_id_by_key(feed_name, key)
            if entry_id is not None and self.state.get_entry(entry_id)[1].published == entry.published:
                return entry_id
        return None

    def _refilter_unsent(self, feed: FeedConfig, entry_id: int, entry: Entry, outcome: FeedOutcome) -> None:
        """A changed entry not sent yet (waiting out its hold): the writer may have added the opt-out category, or
        changed what the filters read. A post that went out is never taken back by a filter."""
        for account in feed.accounts:
            reason = self.config.entry_filter(feed, account).rejects(entry)
            if reason is not None and self.state.filter_unsent(entry_id, account, reason):
                outcome.filtered += 1
                outcome.filtered_out.append((account, entry.title or entry.link or entry.key, reason))
                log.info("entry %s changed before it was sent and is no longer posted to %s: %s",
                         entry.link or entry.key, account, reason)

    def _queue_edits(self, feed: FeedConfig, entry_id: int, entry: Entry, now: float) -> None:
        """A changed entry: by default its posts stay as they are; accounts with edit_on_update get an edit."""
        for account in feed.accounts:
            settings = self.config.accounts[account]
            if settings.edit_on_update:
                if self.state.queue_edit(entry_id, account, now) == "edit":
                    log.info("entry %s changed: its post on %s will be edited", entry.link or entry.key, account)

    def _rekey(self, entry_id: int, entry: Entry, content_hash: str, aliases: list[str], now: float) -> None:
        feed_name, stored, _ = self.state.get_entry(entry_id)
        self.state.rekey_entry(entry_id, entry.key)
        self.state.update_entry(entry_id, entry, content_hash, now)
        self.state.add_aliases(feed_name, entry_id, aliases)
        log.info("entry %s is %s under a new key; not posting it again", entry.link or entry.key, stored.link)

    def _queue(self, feed: FeedConfig, entry_id: int, entry: Entry, aliases: list[str], now: float, kind: str = "new",
               *, outcome: FeedOutcome) -> int:
        queued = 0
        for account in feed.accounts:
            if self.state.account_has_alias(account, aliases):
                log.info("account %s already has %s (from another feed or key); not queued", account, entry.link)
                continue
            reason = self.config.entry_filter(feed, account).rejects(entry)
            if reason is not None:  # recorded, so that it is said where and why, and never queued later
                if self.state.add_filtered(entry_id, account, reason, idempotency_key=ids.idempotency_key(
                        account, feed.name, entry.key), now=now) is not None:
                    outcome.filtered += 1
                    outcome.filtered_out.append((account, entry.title or entry.link or entry.key, reason))
                    log.info("entry %s not posted to %s: %s", entry.link or entry.key, account, reason)
                continue
            record_key = platform(self.config.accounts[account].type).new_record_key
            # A grace period: queued now, sent once it has passed. The payload is made at the first attempt from
            # the entry as the latest poll read it, so a typo fixed during the hold is fixed in the post.
            hold = self.config.hold(feed, account)
            delivery = self.state.add_delivery(
                entry_id,
                account,
                idempotency_key=ids.idempotency_key(account, feed.name, entry.key),
                rkey=record_key(now) if record_key else None,
                now=now,
                kind=kind,
                not_before=now + hold if hold else None,
            )
            if delivery is not None:
                queued += 1
        return queued

    def _record_success(
        self, feed: FeedConfig, row: FeedRow, result: FetchResult, now: float, outcome: FeedOutcome,
        *, title: str | None = None, ttl: float | None = None, durable: bool = True,
    ) -> None:
        fields: dict = {
            "last_checked_at": now,
            "last_success_at": now,
            "last_status": result.status,
            "last_outcome": outcome.outcome,
            "last_error": None,
            "error_count": 0,
            "baseline_done": 1,
        }
        if result.status != 304:
            fields.update(etag=result.etag, last_modified=result.last_modified, body_hash=result.body_hash)
        else:
            if result.etag:
                fields["etag"] = result.etag
            if result.last_modified:
                fields["last_modified"] = result.last_modified
        if title is not None:
            fields["title"] = title
        if outcome.entries_in_document is not None:
            fields["entry_count"] = outcome.entries_in_document
        if ttl is not None:
            fields["ttl_seconds"] = ttl
        if result.permanent_url and result.permanent_url != row.url:
            log.warning("feed %s moved permanently: %s -> %s (polling the new URL from now on)", feed.name, row.url, result.permanent_url)
            fields["url"] = result.permanent_url
            outcome.url = result.permanent_url
        interval = self.interval(feed, now)
        # The server may ask for less frequent polls (Cache-Control max-age, RSS ttl); never more frequent.
        hints = [min(value, MAX_SERVER_WAIT) for value in (result.max_age, ttl if ttl is not None else row.ttl_seconds) if value]
        interval = max([interval, *hints])
        fields["next_poll_at"] = now + self._jitter(interval)
        self.state.update_feed(feed.name, release_lease_of=self.lease_owner, durable=durable, **fields)

    def _record_error(self, feed: FeedConfig, row: FeedRow, error: FeedError, now: float) -> FeedOutcome:
        status = error.status if isinstance(error, FeedHTTPError) else None
        outcome = FeedOutcome(feed.name, "error", status=status, error=str(error), url=row.url)
        fields: dict = {
            "last_checked_at": now,
            "last_status": status,
            "last_outcome": "error",
            "last_error": str(error),
            "error_count": row.error_count + 1,
        }
        if isinstance(error, FeedGone):
            outcome.outcome = "gone"
            outcome.status = 410
            fields.update(gone=1, last_status=410, last_outcome="gone", next_poll_at=None)
        else:
            fields["next_poll_at"] = now + self.backoff(feed, row.error_count + 1, error.retry_after)
        self.state.update_feed(feed.name, release_lease_of=self.lease_owner, **fields)
        self._log_outcome(outcome)
        return outcome

    def backoff(self, feed: FeedConfig, failures: int, retry_after: float | None = None) -> float:
        """Exponential, capped, jittered; never sooner than the server's Retry-After."""
        interval = self.config.feed_interval(feed)
        # The exponent is capped: after a year of failures 2**failures would not fit in a float (OverflowError).
        delay = min(interval * (2 ** min(max(failures - 1, 0), 64)), max(self.config.bridge.max_backoff, interval))
        delay = self._jitter(delay)
        if retry_after is not None:
            delay = max(delay, min(retry_after, MAX_SERVER_WAIT))
        return delay

    def _jitter(self, seconds: float) -> float:
        return seconds * (1 + self.rng.uniform(-JITTER_FRACTION, JITTER_FRACTION))

    def _log_outcome(self, outcome: FeedOutcome) -> None:
        if outcome.outcome in ("error", "gone"):
            log_event(log, logging.WARNING, f"feed {outcome.feed}: {outcome.error}",
                      feed=outcome.feed, outcome=outcome.outcome, status=outcome.status)
            return
        if outcome.notice:
            log_event(log, logging.WARNING, outcome.notice, feed=outcome.feed, unreachable=outcome.unreachable)
        parts = [f"feed {outcome.feed}: {outcome.outcome}"]
        if outcome.status:
            parts.append(f"HTTP {outcome.status}")
        for label in ("baseline", "new_entries", "too_old", "rekeyed", "updated", "queued", "filtered", "unreachable"):
            value = getattr(outcome, label)
            if value:
                parts.append(f"{label.replace('_entries', '')} {value}")
        log_event(log, logging.INFO, ", ".join(parts), feed=outcome.feed, outcome=outcome.outcome,
                  status=outcome.status, new=outcome.new_entries, queued=outcome.queued)


def _unreachable_aliases(site: str, aliases: list[str], outcome: FeedOutcome) -> list[str]:
    """The aliases to record for an entry whose link readers cannot open (at `site`, a local address): its own and
    its host-less one, which is all the link shares with a later fixed one. The outcome counts it and says how to
    fix the site URL."""
    outcome.unreachable += 1
    outcome.warning = site_url_fix(site)
    hostless = hostless_alias(aliases)
    return aliases + ([hostless] if hostless else [])


class _CommitGroup:
    """Commits a poll's finished feeds every GROUP_FEEDS feeds or GROUP_SECONDS seconds, whichever comes first."""

    def __init__(self, state: State) -> None:
        self.state = state
        self.pending = 0
        self.since = time.monotonic()

    def done(self) -> None:
        self.pending += 1
        if self.pending >= GROUP_FEEDS or time.monotonic() - self.since >= GROUP_SECONDS:
            self.state.commit_group()
            self.pending = 0
            self.since = time.monotonic()

