"""`bridge run`: the long-running service.

APScheduler 3 (in-memory job store, rebuilt from the config; never shared between processes) runs one polling
job per feed and one delivery job, each with max_instances=1, coalescing and a misfire grace time. Fetches go
through one asyncio loop in its own thread, so every feed shares one HTTP connection pool and the same
per-host limits. The main thread owns the signals:

- SIGTERM / SIGINT: stop scheduling, let the in-flight publish finish, commit, exit 0.
- SIGHUP: reload the config (feeds and accounts added or removed); queued work is in the database, untouched.

Under systemd (NOTIFY_SOCKET set): READY=1 after start-up, STATUS= lines, WATCHDOG=1 only while jobs are
really running (a heartbeat job goes through the same worker pool as the polls) and none is stuck (a poll or
delivery job that has not moved for STUCK_AFTER_TIMEOUTS network deadlines), STOPPING=1 on shutdown. A job
that raises is logged and runs again at its next time: one bad entry or feed never silences the service.

Alerts ([alerts]) are evaluated and sent by a thread of their own (bridge/alerts/watch.py), never by a job: it
also notices a stall -- no poll finished for a while, or a job stuck by the watchdog's own test below.

With `[bridge] http_listen`, threads of their own serve the status page, /metrics and /healthz (bridge/web);
/healthz answers from the same judgement as the watchdog (health()).

Several workers (a state several processes share: PostgreSQL, docs/workers.md): instead of a job per feed, one
claim job leases the due feeds no other worker holds (State.claim_due_feeds), polls them, and each poll's record
releases its lease; a dead worker's leases run out after LEASE_TIMEOUTS network deadlines. Each account is delivered
under its lock (Deliverer.deliver_due), and the jobs meant to run once (deletes, reactions, WebSub upkeep,
alerts) run on whichever worker holds their lock. On SQLite the one process holds every lease.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import signal
import socket
import threading
import time
from typing import Callable

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler

from bridge.alerts.watch import AlertWatcher
from bridge.config import Config, FeedConfig, load_config
from bridge.deadline import upload_budget
from bridge.errors import StateConnectionLost
from bridge.feeds import Fetcher
from bridge.linkpreview.fetch import MAX_IMAGE_BYTES
from bridge.notify import Notifier, watchdog_interval
from bridge.pipeline import Poller
from bridge.platforms import PLATFORMS
from bridge.state import describe_store, open_state
from bridge.unexpected import unexpected
from bridge.web.access import resolve_access
from bridge.web.metrics import DaemonMetrics
from bridge.web.pages import DaemonView, Health, serve_daemon
from bridge.websub.callback import Callbacks, Event
from bridge.websub.subscriber import RENEW_BEFORE, Subscriber

log = logging.getLogger("bridge.run")

STATUS_INTERVAL_SECONDS = 30.0
MISFIRE_GRACE_SECONDS = 300
START_SPREAD_SECONDS = 30.0
# The wall clock moving this much more (or less) than the monotonic clock means it was set: APScheduler plans
# by the wall clock, and would otherwise sleep through a clock set back until it caught up.
CLOCK_JUMP_SECONDS = 30.0
WORKERS = 4
# Vanished entries' permalinks are checked (bridge/deletes.py) this often; does nothing unless an account has
# follow_deletes.
DELETES_INTERVAL = 300.0
# Reactions are read (the due ones: bridge.reactions.schedule) and the site's files rewritten this often.
REACTIONS_INTERVAL = 300.0
# The WebSub job (subscribe, renew, record what hubs said) runs this often, and more often for short leases.
WEBSUB_INTERVAL = 15.0
REACTIONS_FIRST_RUN = 5.0  # soon after start: reads that fell due while bridge was stopped
# Every step of a job — one feed's fetch and parse, one post's page, card image, upload and publish — is bounded
# by a few network deadlines (total_timeout): a job that has not moved for this many of them is stuck, and the
# watchdog is no longer fed, so systemd restarts the service.
STUCK_AFTER_TIMEOUTS = 5
# A post is one step, and its uploads get more time than a request by their size (bridge.deadline): a post with
# four of the largest images bridge fetches must not look stuck while it is being sent.
UPLOADS_ALLOWANCE = max(entry.max_images for entry in PLATFORMS) * upload_budget(0.0, MAX_IMAGE_BYTES)
# Workers on a shared state: a feed is leased for this many network deadlines (a poll that has not moved for as
# long is stuck, and the watchdog restarts its worker); a dead worker's feeds are polled by another after that.
LEASE_TIMEOUTS = STUCK_AFTER_TIMEOUTS
# The claim job looks for due feeds this often at most, and at least four times per shortest feed interval.
CLAIM_MAX_SECONDS = 15.0


class FetchLoop:
    """An asyncio event loop in a thread of its own, holding the shared Fetcher."""

    def __init__(self, config: Config) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="bridge-fetch", daemon=True)
        self.thread.start()
        self.fetcher: Fetcher = self.run(self._make(config))

    @staticmethod
    async def _make(config: Config) -> Fetcher:
        return Fetcher(config.bridge)

    def run(self, coroutine, timeout: float | None = None):
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def close(self) -> None:
        try:
            self.run(self.fetcher.aclose(), timeout=10)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(timeout=10)


class Daemon:
    def __init__(
        self,
        config_path,
        *,
        deliverer_factory: Callable,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config_path = config_path
        self.deliverer_factory = deliverer_factory
        self.clock = clock
        self.notifier = Notifier()
        self._stop = threading.Event()
        self._reload = threading.Event()
        self._last_progress = time.monotonic()  # not the wall clock: setting it must not starve or fool the watchdog
        self._rng = random.Random()
        self._next_deliverer = None
        self._jobs_lock = threading.Lock()
        self._job_moved: dict[str, float] = {}  # running job -> when it last moved (monotonic)
        self._stuck_reported: set[str] = set()
        self._heartbeat_seconds = 30.0
        self.metrics = DaemonMetrics(clock())
        self.web = None
        self.subscriber: Subscriber | None = None
        self._websub_events: list[Event] = []
        self._pushed: dict[str, Event] = {}  # feed -> its latest verified push, not yet processed
        self._draining: set[str] = set()  # WebSub jobs started and not yet out of work
        # A claim job that starts while one runs returns at once: the running one goes on until nothing is due.
        self._claiming = threading.Lock()
        self._unreleased: set[str] = set()  # feeds whose failed poll could not give its lease back (database away)
        # account -> when flood control next lets one of its waiting posts go: a poll that queues for it does not
        # start a delivery pass before then (a changed round's thousands of polls, each starting a pass, ran the
        # delivery job without pause).
        self._flood_held: dict[str, float] = {}
        self._delivering = threading.Lock()
        self._deliver_again = threading.Event()
        # This process as the other workers on a shared state know it (leases, State.account_changed_hands).
        self.worker = f"{socket.gethostname()}:{os.getpid()}:{random.SystemRandom().getrandbits(32):08x}"

    # --- lifecycle -----------------------------------------------------------------------------------------

    def run(self) -> int:
        self.config: Config = load_config(self.config_path)
        access = resolve_access(self.config)  # a server beyond loopback without a token: refused before anything runs
        self._install_signal_handlers()
        self.state = self._open_state()  # SQLite: refuses a second daemon on the same file
        if self.state is None:  # stopped while waiting for the database
            self.notifier.close()
            return 0
        self.state.keep_reconnecting()  # PostgreSQL: a restart of the database is waited out, not the end
        self.fetch_loop = FetchLoop(self.config)
        self.poller = Poller(self.config, self.state, clock=self.clock,
                             lease_owner=self.worker if self.state.shared else None)
        self.deliverer = self._make_deliverer(self.config)
        self.alerts = AlertWatcher(self.config, self.state, self._stuck_jobs, clock=self.clock)
        self.scheduler = BackgroundScheduler(
            executors={"default": ThreadPoolExecutor(WORKERS)},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": MISFIRE_GRACE_SECONDS},
            timezone="UTC",
        )
        try:
            callbacks = self._websub_callbacks(access)
            self._schedule_all()
            self.scheduler.start()
            self.alerts.start()
            if access is not None:
                self.web = serve_daemon(access, DaemonView(config=lambda: self.config, health=self.health,
                                                           metrics=self.metrics, clock=self.clock),
                                        routes=callbacks.add_routes if callbacks else None)
            log.info("bridge running: %d feed(s), %d account(s), state %s",
                     len(self.config.feeds), len(self.config.accounts), describe_store(self.config))
            self.notifier.ready(self._status_line())
            self._main_loop()
        finally:
            self._shutdown()
        return 0

    def _open_state(self):
        """The state. PostgreSQL out of reach at start (a host up before its database server, a worker restarted
        during an outage) is waited for, as a restart of it is later: exiting would leave it to systemd, which
        gives up after a few restarts. A refused login or a missing database still stops here, with the fix."""
        from bridge.state.reconnect import FIRST_RETRY_SECONDS, MAX_RETRY_SECONDS

        wait = FIRST_RETRY_SECONDS
        while True:
            try:
                return open_state(self.config)
            except StateConnectionLost as exc:
                if wait == FIRST_RETRY_SECONDS:
                    log.warning("%s; waiting for it, trying again every %.0f-%.0f s", exc, FIRST_RETRY_SECONDS,
                                MAX_RETRY_SECONDS)
                    self.notifier.ready("waiting for the state database (PostgreSQL) to answer")
                self.notifier.watchdog()  # alive, and doing what it should: waiting
                if self._stop.wait(wait):
                    log.info("stopped before the state database answered")
                    return None
                wait = min(wait * 2, MAX_RETRY_SECONDS)

    def _main_loop(self) -> None:
        ping_every = watchdog_interval()
        next_status = 0.0
        wall_minus_monotonic = self.clock() - time.monotonic()
        while not self._stop.is_set():
            self._stop.wait(min(ping_every or 1.0, 1.0))
            if self._reload.is_set():
                self._reload.clear()
                self._reload_config()
            now = time.monotonic()
            jump = self.clock() - now - wall_minus_monotonic
            if abs(jump) > CLOCK_JUMP_SECONDS:
                self._reschedule_after_clock_jump(jump)
                wall_minus_monotonic += jump
            if ping_every and self.health().ok:
                self.notifier.watchdog()
            if now >= next_status:
                self.notifier.status(self._status_line())
                next_status = now + STATUS_INTERVAL_SECONDS

    def _shutdown(self) -> None:
        self.notifier.stopping()
        log.info("stopping: finishing the post in flight, then exiting")
        self._stop.set()
        try:
            if self.web is not None:
                self.web.close()
            if getattr(self, "scheduler", None) is not None and self.scheduler.running:
                self.scheduler.shutdown(wait=True)
        finally:
            if getattr(self, "alerts", None) is not None:
                self.alerts.stop()
            self.deliverer.close()
            if self._next_deliverer is not None:
                self._next_deliverer.close()
            self.fetch_loop.close()
            self.state.close()
            self.notifier.close()
        log.info("stopped")

    def _install_signal_handlers(self) -> None:
        def stop(signum, frame) -> None:
            log.info("received %s", signal.Signals(signum).name)
            self._stop.set()

        def reload(signum, frame) -> None:
            log.info("received SIGHUP: reloading the config")
            self._reload.set()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGHUP, reload)

    # --- jobs ------------------------------------------------------------------------------------------------

    def _schedule_all(self) -> None:
        for feed in self.config.feeds:
            if feed.enabled:
                self._schedule_feed(feed)
        if self.state.shared:
            self._schedule_claims()
        self.scheduler.add_job(self._deliver_job, "interval", seconds=self.config.bridge.delivery_interval, id="deliver",
                               next_run_time=_utc(self.clock() + 1), max_instances=2)
        self._schedule_reactions()
        # Deletes that follow the blog: permalinks of vanished entries checked, confirmed deletions carried out.
        self.scheduler.add_job(self._deletes_job, "interval", seconds=DELETES_INTERVAL, id="deletes",
                               replace_existing=True, next_run_time=_utc(self.clock() + DELETES_INTERVAL / 10))
        self._schedule_websub()
        self._heartbeat_seconds = max(min((watchdog_interval() or 30.0) / 2, 30.0), 0.5)
        self.scheduler.add_job(self._heartbeat_job, "interval", seconds=self._heartbeat_seconds, id="heartbeat",
                               next_run_time=_utc(self.clock()))

    def _schedule_feed(self, feed: FeedConfig) -> None:
        if self.state.shared:
            return  # the claim job polls whichever due feeds no other worker holds
        interval = self.config.feed_interval(feed)
        # Jobs fire at the feed's interval with jitter; a run whose feed is not due (backoff, ttl) does nothing.
        first = self.clock() + self._rng.uniform(0, min(interval, START_SPREAD_SECONDS))
        self.scheduler.add_job(
            self._poll_job, "interval", args=[feed.name], seconds=max(interval / 4, 1.0), jitter=max(interval * 0.05, 0),
            id=f"poll:{feed.name}", replace_existing=True, next_run_time=_utc(first),
        )

    def _schedule_reactions(self) -> None:
        """The way back (bridge.reactions) is a job of its own: reading reactions never holds a post back."""
        if self.config.gathers_reactions() or self.config.syndication_path() is not None:
            self.scheduler.add_job(self._reactions_job, "interval", seconds=REACTIONS_INTERVAL, id="reactions",
                                   replace_existing=True, next_run_time=_utc(self.clock() + REACTIONS_FIRST_RUN))
        elif self.scheduler.get_job("reactions") is not None:
            self.scheduler.remove_job("reactions")

    def _deletes_job(self) -> None:
        from bridge.wiring import follow_deletes

        self._run_job("deletes", self._once_across_workers(
            "deletes", lambda: follow_deletes(self.config, self.state, clock=self.clock)))

    def _once_across_workers(self, name: str, work: Callable[[], None]) -> Callable[[], None]:
        """The work, done only by the worker holding its lock now (of workers sharing a state, one does it)."""
        def guarded() -> None:
            with self.state.try_lock(f"job:{name}") as mine:
                if mine:
                    work()

        return guarded

    # --- workers sharing a state: the claim job ----------------------------------------------------------

    def _schedule_claims(self) -> None:
        """Ensure every configured feed has its row (other workers' claims see it), then claim on a timer."""
        self._feed_rows_made = False
        with contextlib.suppress(StateConnectionLost):  # a reload while the database is away: the claim job makes them
            self._make_feed_rows()
        intervals = [self.config.feed_interval(feed) for feed in self.config.feeds if feed.enabled]
        every = max(min([CLAIM_MAX_SECONDS] + [interval / 4 for interval in intervals]), 1.0)
        # max_instances=2: a run due while a long claim goes on returns quietly (_claim_job) instead of APScheduler
        # warning that it skipped it, every time the timer fires
        self.scheduler.add_job(self._claim_job, "interval", seconds=every, id="claim", replace_existing=True,
                               jitter=every / 4, next_run_time=_utc(self.clock() + self._rng.uniform(0, 1)),
                               max_instances=2)

    def _make_feed_rows(self) -> None:
        if not self._feed_rows_made:
            self.state.ensure_feeds([(feed.name, feed.url) for feed in self.config.feeds if feed.enabled])
            self._feed_rows_made = True

    def _lease_seconds(self) -> float:
        return LEASE_TIMEOUTS * self.config.bridge.total_timeout

    def _claim_job(self) -> None:
        if not self._claiming.acquire(blocking=False):
            return
        try:
            self._run_job("claim", self._poll_claimed)
        finally:
            self._claiming.release()
        self.alerts.poll_done()

    def _poll_claimed(self) -> None:
        """Claim due feeds a batch at a time, poll each batch together; each poll's record releases its feed."""
        batch = self.config.bridge.max_concurrency
        self._make_feed_rows()
        with self._jobs_lock:
            unreleased, self._unreleased = self._unreleased, set()
        if unreleased:
            try:
                self.state.release_feeds(sorted(unreleased), self.worker)
            except BaseException:
                with self._jobs_lock:
                    self._unreleased |= unreleased
                raise
        while not self._stop.is_set():
            now = self.clock()
            names = self.state.claim_due_feeds(self.worker, now, limit=batch, lease_seconds=self._lease_seconds())
            feeds = []
            for name in names:
                feed = self.config.find_feed(name)
                if feed is None or not feed.enabled:  # not in this worker's config (removed, or a config rolling out)
                    self.state.update_feed(name, next_poll_at=now + self.config.bridge.interval,
                                           release_lease_of=self.worker)
                else:
                    feeds.append(feed)
            if feeds:
                for outcome in self.fetch_loop.run(self._poll_batch(feeds)):
                    self._after_poll(outcome)
            if len(names) < batch:
                return

    async def _poll_batch(self, feeds: list[FeedConfig]) -> list:
        async def one(feed: FeedConfig):
            try:
                return await self.poller.poll_feed(self.fetch_loop.fetcher, feed)
            except BaseException:
                # not recorded (the state failed, or bridge is stopping): let the next worker take it now
                try:
                    self.state.release_feeds([feed.name], self.worker)
                except Exception:  # the database is away: released when it is back, not when the lease runs out
                    with self._jobs_lock:
                        self._unreleased.add(feed.name)
                raise
            finally:
                self._job_progress("claim")

        return await asyncio.gather(*(one(feed) for feed in feeds))

    # --- WebSub (bridge/websub) ----------------------------------------------------------------------------

    def _websub_callbacks(self, access) -> Callbacks | None:
        if not self.config.bridge.public_url:
            return None
        if access is None:
            log.error("[bridge] public_url is set but http_listen is not: hubs would have nowhere to call back, so "
                      "bridge does not subscribe; set http_listen to the address your reverse proxy forwards to")
            return None
        callbacks = Callbacks(self._websub_event, clock=self.clock)
        self.subscriber = Subscriber(self.config, self.state, callbacks, clock=self.clock, on_lapse=self._poll_now)
        return callbacks

    def _schedule_websub(self) -> None:
        if self.subscriber is None:
            return
        every = max(min(WEBSUB_INTERVAL, self.config.bridge.websub_lease * RENEW_BEFORE / 2), 1.0)
        self.scheduler.add_job(self._websub_job, "interval", seconds=every, id="websub", replace_existing=True,
                               next_run_time=_utc(self.clock() + 1))

    def _websub_job(self) -> None:
        self._run_job("websub", self._once_across_workers("websub", self.subscriber.maintain))

    def _websub_event(self, event: Event) -> None:
        """From the web server's thread: hand the event to jobs (the database is theirs), a push to its feed's.
        A burst coalesces: one job per feed drains what came, and a push job reads only the newest body."""
        start = []
        with self._jobs_lock:
            self._websub_events.append(event)
            if event.kind == "push":
                self._pushed[event.feed] = event
            for job_id in ["websub-events"] + ([f"push:{event.feed}"] if event.kind == "push" else []):
                if job_id not in self._draining:  # else the running job takes it before it ends
                    self._draining.add(job_id)
                    start.append(job_id)
        for job_id in start:
            work, args = (self._websub_events_job, []) if job_id == "websub-events" else (self._push_job, [event.feed])
            try:
                # max_instances=2: the job that just emptied its queue may not have returned yet
                self.scheduler.add_job(work, args=args, id=job_id, replace_existing=True, max_instances=2,
                                       next_run_time=_utc(self.clock()))
            except Exception as exc:  # stopping: the scheduler is shut; the next poll catches the change
                log.debug("WebSub event not scheduled: %s", exc)

    def _drain(self, job_id: str, take: Callable, handle: Callable) -> None:
        """Handle what take() returns (under the lock) until it returns None; then the next event starts a job."""
        try:
            while True:
                with self._jobs_lock:
                    item = take()
                    if item is None:
                        self._draining.discard(job_id)
                        return
                handle(item)
        except BaseException:
            with self._jobs_lock:
                self._draining.discard(job_id)
            raise

    def _websub_events_job(self) -> None:
        def take() -> list[Event] | None:
            events, self._websub_events = self._websub_events, []
            return events or None

        def record(events: list[Event]) -> None:
            for event in events:
                self.subscriber.record(event)

        self._run_job("websub-events", lambda: self._drain("websub-events", take, record))

    def _push_job(self, name: str) -> None:
        self._run_job(f"push:{name}", lambda: self._drain(f"push:{name}", lambda: self._pushed.pop(name, None),
                                                          lambda event: self._take_push(name, event)))

    def _take_push(self, name: str, event: Event) -> None:
        feed = self.config.find_feed(name)
        if feed is None or not feed.enabled:
            return
        if not self.state.claim_feed(name, self.worker, self.clock(), lease_seconds=self._lease_seconds()):
            # a poll of it is under way (here or on another worker): that poll, or the next, reads what was pushed
            self.state.update_feed(name, next_poll_at=self.clock())
            return
        try:
            outcome = self.fetch_loop.run(self.poller.poll_pushed(self.fetch_loop.fetcher, feed, event.body,
                                                                  event.content_type, event.link_header))
        finally:
            self.state.release_feeds([name], self.worker)
        self._after_poll(outcome)

    def _poll_now(self, name: str) -> None:
        """The feed's pushes stopped (a failed or lapsed subscription): normal polling resumes at once."""
        self.state.update_feed(name, next_poll_at=self.clock())
        try:
            self.scheduler.modify_job("claim" if self.state.shared else f"poll:{name}", next_run_time=_utc(self.clock()))
        except Exception:  # no such job (the feed was just removed)
            pass

    def _reactions_job(self) -> None:
        self._run_job("reactions", self._once_across_workers("reactions", self._reactions))

    def _publish_job(self) -> None:
        from bridge.reactions.publish import publish_all

        self._run_job("publish", self._once_across_workers("publish", lambda: publish_all(self.config, self.state)))

    def _reactions(self) -> None:
        from bridge.reactions.publish import publish_all
        from bridge.reactions.refresh import Refresher

        config = self.config
        if config.gathers_reactions():
            Refresher(config, self.state, clock=self.clock, should_stop=self._stop.is_set,
                      on_progress=lambda: self._job_progress("reactions")).refresh()
        publish_all(config, self.state)

    def _poll_job(self, name: str) -> None:
        self._run_job(f"poll:{name}", lambda: self._poll(name))
        self.alerts.poll_done()

    def _deliver_job(self) -> None:
        """max_instances=2: a pass asked for while one runs (a poll queued posts) is run by the running job when
        it ends, quietly, rather than skipped by APScheduler with a warning."""
        if not self._delivering.acquire(blocking=False):
            self._deliver_again.set()
            return
        try:
            while not self._stop.is_set():
                self._deliver_again.clear()
                self._run_job("deliver", self._deliver)
                if not self._deliver_again.is_set():
                    break
        finally:
            self._delivering.release()

    def _run_job(self, name: str, work: Callable[[], None]) -> None:
        """One run of a job. An unexpected error is logged and the job runs again at its next time."""
        if self._stop.is_set():
            return
        self._job_progress(name)
        try:
            work()
        except StateConnectionLost as exc:  # logged once for the whole outage (bridge/state/reconnect.py)
            log.debug("the %s job stopped: %s", name, exc)
        except Exception as exc:
            log.error("the %s job failed: %s; it runs again at its next time", name,
                      unexpected(log, exc, f"running the {name} job"))
        finally:
            with self._jobs_lock:
                self._job_moved.pop(name, None)
                self._stuck_reported.discard(name)

    def _job_progress(self, name: str) -> None:
        with self._jobs_lock:
            self._job_moved[name] = time.monotonic()

    def _stuck_after(self) -> float:
        return STUCK_AFTER_TIMEOUTS * self.config.bridge.total_timeout + UPLOADS_ALLOWANCE

    def _stuck_jobs(self) -> list[str]:
        """Running jobs that have not moved for STUCK_AFTER_TIMEOUTS network deadlines; each logged once."""
        limit = self._stuck_after()
        now = time.monotonic()
        with self._jobs_lock:
            stuck = [name for name, moved in self._job_moved.items() if now - moved > limit]
            new = [name for name in stuck if name not in self._stuck_reported]
            self._stuck_reported.update(new)
        for name in new:  # also asked by the alert thread, which runs without systemd's watchdog too
            log.error("the %s job has not moved for %.0f s%s", name, limit,
                      "; no longer telling systemd's watchdog all is well, so it restarts bridge" if watchdog_interval() else "")
        return stuck

    def health(self) -> Health:
        """Is the service polling on schedule? The watchdog's judgement: jobs run (the heartbeat, which goes through
        the same workers as the polls, moved lately) and none is stuck. Asked by the main loop and by /healthz."""
        if self._stop.is_set():
            return Health(False, "stopping")
        idle = time.monotonic() - self._last_progress
        stall_after = 2 * (watchdog_interval() or self._heartbeat_seconds) + 5
        if idle > stall_after:
            return Health(False, f"no job has run for {idle:.0f} s: every worker is busy or the scheduler stopped")
        stuck = self._stuck_jobs()
        if stuck:
            return Health(False, f"the job {', '.join(sorted(stuck))} has not moved for over {self._stuck_after():.0f} s")
        return Health(True, "polling on schedule")

    def _poll(self, name: str) -> None:
        feed = self.config.find_feed(name)
        if feed is None or not feed.enabled or not self.poller.is_due(feed):
            return
        outcome = self.fetch_loop.run(self.poller.poll_feed(self.fetch_loop.fetcher, feed))
        self._after_poll(outcome)

    def _after_poll(self, outcome) -> None:
        self._last_progress = time.monotonic()
        self.metrics.observe_poll(outcome)
        if outcome.queued:
            self._deliver_soon(outcome.feed)

    def _deliver_soon(self, feed_name: str) -> None:
        """A poll queued posts: deliver them now, or when flood control next lets one of its accounts post."""
        feed = self.config.find_feed(feed_name)
        accounts = feed.accounts if feed is not None else list(self.config.accounts)
        now = self.clock()
        at = max(now, min((self._flood_held.get(account, 0.0) for account in accounts), default=now))
        job = self.scheduler.get_job("deliver")
        if job is not None and job.next_run_time is not None and job.next_run_time <= _utc(at):
            return  # a pass comes soon enough; asking again while one runs only made APScheduler warn
        self.scheduler.modify_job("deliver", next_run_time=_utc(at))

    def _deliver(self) -> None:
        if self._next_deliverer is not None:
            self.deliverer.close()
            self.deliverer, self._next_deliverer = self._next_deliverer, None
        report = self.deliverer.deliver_due()
        for account in report.accounts:
            if account.next_slot is not None:
                self._flood_held[account.account] = account.next_slot
            else:
                self._flood_held.pop(account.account, None)
        self.metrics.observe_delivery(report, self.config, self.state, self.clock())
        if report.posted and (self.config.syndication_path() is not None or self.config.comments_path() is not None):
            # The new posts' links go into the site's files at once, in a job of their own (not this one's work).
            self.scheduler.add_job(self._publish_job, id="publish", replace_existing=True,
                                   next_run_time=_utc(self.clock()))

    def _make_deliverer(self, config: Config):
        shared = {"worker": self.worker} if self.state.shared else {}
        return self.deliverer_factory(config, self.state, should_stop=self._stop.is_set,
                                      on_progress=lambda: self._job_progress("deliver"), **shared)

    def _heartbeat_job(self) -> None:
        self._last_progress = time.monotonic()

    def _reschedule_after_clock_jump(self, jump: float) -> None:
        """Plan every job again from the new time: polls keep their intervals (each feed's stored schedule moves
        with the clock in Poller.due_feeds_among), delivery and heartbeat run now."""
        log.warning("the clock was set %s by %.0f s; rescheduling every job from the new time",
                    "back" if jump < 0 else "forward", abs(jump))
        for feed in self.config.feeds:
            if feed.enabled:
                self._schedule_feed(feed)
        for job in ("deliver", "heartbeat") + (("claim",) if self.state.shared else ()):
            self.scheduler.modify_job(job, next_run_time=_utc(self.clock()))

    # --- reload ----------------------------------------------------------------------------------------------

    def _reload_config(self) -> None:
        self.notifier.reloading()
        try:
            config = load_config(self.config_path)
        except Exception as exc:  # a broken edit must not stop a running service
            log.error("config reload failed, keeping the running config: %s", exc)
            self.notifier.ready(self._status_line())
            return
        old = {feed.name for feed in self.config.feeds}
        new = {feed.name for feed in config.feeds if feed.enabled}
        served = ("http_listen", "http_token")
        if any(getattr(config.bridge, key) != getattr(self.config.bridge, key) for key in served):
            log.warning("http_listen or http_token changed: the status page keeps its address and token until bridge "
                        "restarts")
        self.config = config
        self.poller.config = config
        self.alerts.reload(config)
        self.alerts.start()
        if self.subscriber is not None:
            self.subscriber.config = config  # a removed feed is unsubscribed by the job, now
            self._schedule_websub()
        # The delivery job swaps in the new deliverer when it next starts, never in the middle of a publish.
        self._next_deliverer = self._make_deliverer(config)
        for name in old - new:
            try:
                self.scheduler.remove_job(f"poll:{name}")
            except Exception:
                pass
        for feed in config.feeds:
            if feed.enabled:
                self._schedule_feed(feed)
        if self.state.shared:
            self._schedule_claims()
        self._schedule_reactions()
        log.info("config reloaded: %d feed(s) (%d added, %d removed), %d account(s)",
                 len(new), len(new - old), len(old - new), len(config.accounts))
        self.notifier.ready(self._status_line())

    def _status_line(self) -> str:
        try:
            counts = self.state.delivery_counts()
            rows = self.state.list_feeds()
        except StateConnectionLost as exc:  # the main thread lives on: the jobs resume when the database is back
            return f"{len(self.config.feeds)} feeds; waiting for the state database: {exc}"
        queued = sum(count for (account, state), count in counts.items() if state in ("pending", "sending"))
        held = sum(count for (account, state), count in counts.items() if state == "unknown")
        failing = sum(1 for row in rows if row.error_count)
        return (f"{len(self.config.feeds)} feeds, {queued} queued, {failing} failing"
                + (f", {held} held (outcome unknown: bridge status)" if held else ""))


def _utc(timestamp: float):
    from datetime import datetime, timezone

    return datetime.fromtimestamp(timestamp, timezone.utc)
