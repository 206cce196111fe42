"""`/metrics`: the daemon's work in Prometheus's text format (prometheus-client, which writes the format and its
escaping for us, and whose parser the tests read it back with).

Two kinds, by where the truth lives:
- Events, counted as they happen by the daemon from what each poll and delivery pass returns (FeedOutcome,
  DeliveryReport; no hook inside pipeline.py or delivery.py): polls by outcome, feed fetches by HTTP status, posts
  by platform and outcome, rate-limit waits, and the delivery latency histogram. These are counters of this
  process's life, reset by a restart as Prometheus expects (rate() and increase() handle resets).
- State, read from the database at scrape time through bridge/status.py (the same data as `bridge status --json`):
  queue length, deliveries by state, pauses, deferrals, feed errors. Always right, across restarts, and nothing
  to keep in step with the engine.
"""

from __future__ import annotations

import threading
from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, Histogram, ProcessCollector, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from bridge.config import Config
from bridge.state import State

CONTENT_TYPE = CONTENT_TYPE_LATEST
# From a minute (a feed polled every minute) to a day (a post that waited for flood control or a paused account).
LATENCY_BUCKETS = (5, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 2 * 3600, 6 * 3600, 24 * 3600)
# Latency is read from the posts made since the last look, at most this many per account and pass.
LATENCY_BATCH = 1000


class DaemonMetrics:
    """The daemon's metrics, in a registry of its own (not prometheus-client's global one: two daemons in one
    test process must not share counters)."""

    def __init__(self, now: float) -> None:
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        self.polls = Counter("bridge_polls", "Feed polls by outcome (new, unchanged, not-modified, error, gone).",
                             ["outcome"], registry=self.registry)
        self.fetches = Counter("bridge_feed_fetches", "Feed fetches by HTTP status; code=\"none\" when no HTTP answer "
                               "came (DNS, connection, timeout).", ["code"], registry=self.registry)
        self.posts = Counter("bridge_posts", "Delivery attempts by platform, account and outcome (posted, retry, "
                             "failed, held; paused: the credentials were refused).", ["platform", "account", "outcome"], registry=self.registry)
        self.rate_limit_waits = Counter("bridge_rate_limit_waits", "Times a server's rate limit made an account wait.",
                                        ["platform", "account"], registry=self.registry)
        self.rate_limit_wait_seconds = Counter("bridge_rate_limit_wait_seconds", "Seconds accounts were told to wait "
                                               "by servers' rate limits.", ["platform", "account"], registry=self.registry)
        self.latency = Histogram("bridge_delivery_latency_seconds", "From the poll that first saw an entry to its post, "
                                 "for new entries (not backfill or edits).", ["platform"], buckets=LATENCY_BUCKETS,
                                 registry=self.registry)
        self._lock = threading.Lock()
        self._latency_since = now  # posts after this are yet to be observed
        self._deferred: dict[str, float] = {}  # account -> the deferral already counted
        self._paused: set[str] = set()

    # --- events ------------------------------------------------------------------------------------------------

    def observe_poll(self, outcome) -> None:
        """One FeedOutcome of pipeline.Poller.poll_feed."""
        if outcome.outcome == "skipped":
            return
        self.polls.labels(outcome.outcome).inc()
        self.fetches.labels(str(outcome.status) if outcome.status else "none").inc()

    def observe_delivery(self, report, config: Config, state: State, now: float) -> None:
        """One DeliveryReport of Deliverer.deliver_due. A pause or deferral is reported on every pass while it lasts;
        it is counted when it starts."""
        with self._lock:
            for account in report.accounts:
                settings = config.accounts.get(account.account)
                platform = settings.type if settings else "unknown"
                for outcome, count in (("posted", len(account.posted)), ("retry", account.retried),
                                       ("failed", account.failed), ("held", account.unknown)):
                    if count:
                        self.posts.labels(platform, account.account, outcome).inc(count)
                if account.paused and account.account not in self._paused:
                    self.posts.labels(platform, account.account, "paused").inc()
                    self._paused.add(account.account)
                elif not account.paused:
                    self._paused.discard(account.account)
                until = account.deferred_until
                if until and self._deferred.get(account.account) != until:
                    self._deferred[account.account] = until
                    self.rate_limit_waits.labels(platform, account.account).inc()
                    self.rate_limit_wait_seconds.labels(platform, account.account).inc(max(until - now, 0.0))
            self._observe_latency(config, state)

    def _observe_latency(self, config: Config, state: State) -> None:
        newest = self._latency_since
        for name, account in config.accounts.items():
            for post in state.recent_posts(name, limit=LATENCY_BATCH, since=self._latency_since):
                posted_at = post.delivery.posted_at or 0.0
                newest = max(newest, posted_at)
                if post.delivery.kind == "new":
                    self.latency.labels(account.type).observe(max(posted_at - post.first_seen_at, 0.0))
        self._latency_since = newest

    # --- exposition ------------------------------------------------------------------------------------------

    def render(self, status: dict) -> bytes:
        """The text format: this process's counters, then the gauges of `status` (bridge.status.collect_status)."""
        return generate_latest(self.registry) + generate_latest(_StatusGauges(status))


class _StatusGauges:
    """Gauges from one status report, as a one-off registry for generate_latest."""

    def __init__(self, status: dict) -> None:
        self.status = status

    def collect(self):
        accounts = [account for account in self.status["accounts"] if "type" in account]  # not the failed reports
        feeds = [feed for feed in self.status["feeds"] if "polling_url" in feed]
        queue = GaugeMetricFamily("bridge_queue_length", "Posts waiting to be sent (pending or sending).",
                                  labels=["platform", "account"])
        deliveries = GaugeMetricFamily("bridge_deliveries", "Deliveries in the state database by state "
                                       "(posted, queued, failed, unknown: held).", labels=["platform", "account", "state"])
        paused = GaugeMetricFamily("bridge_account_paused", "1 while the account is paused (its credentials were "
                                   "refused; `bridge status` says how to fix it).", labels=["platform", "account"])
        deferred = GaugeMetricFamily("bridge_account_rate_limited", "1 while a server's rate limit holds the account.",
                                     labels=["platform", "account"])
        for account in accounts:
            labels = [account["type"], account["name"]]
            queue.add_metric(labels, account["queued"])
            for state in ("posted", "queued", "failed", "unknown"):
                deliveries.add_metric(labels + [state], account[state])
            paused.add_metric(labels, 1 if account["paused"] else 0)
            deferred.add_metric(labels, 1 if account["deferred_until"] else 0)
        errors = GaugeMetricFamily("bridge_feed_consecutive_errors", "Failed polls in a row (0 when the last one worked).",
                                   labels=["feed"])
        gone = GaugeMetricFamily("bridge_feed_gone", "1 when the feed answered 410 Gone and is no longer polled.",
                                 labels=["feed"])
        success = GaugeMetricFamily("bridge_feed_last_success_timestamp_seconds",
                                    "When the feed was last read successfully (Unix time).", labels=["feed"])
        pending = GaugeMetricFamily("bridge_feed_pending_deliveries", "The feed's posts waiting to be sent.",
                                    labels=["feed"])
        for feed in feeds:
            errors.add_metric([feed["name"]], feed["consecutive_errors"])
            gone.add_metric([feed["name"]], 1 if feed["gone"] else 0)
            pending.add_metric([feed["name"]], feed["pending_deliveries"])
            when = _timestamp(feed["last_success"])
            if when is not None:
                success.add_metric([feed["name"]], when)
        yield from (queue, deliveries, paused, deferred, errors, gone, success, pending)


def _timestamp(iso: str | None) -> float | None:
    try:
        return datetime.fromisoformat(iso).timestamp() if iso else None
    except ValueError:  # status's "invalid time ..." for a time no calendar holds
        return None

