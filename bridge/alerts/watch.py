"""The daemon's alert thread: evaluates the problems after cycles, notices a stall, sends, pings.

It runs beside the scheduler's workers and never in them, so a slow or unreachable destination never delays a
poll or a post. A stall is the service alive but not polling: no poll job finished for stall_after_intervals
times the shortest feed interval, or a job that has not moved for the watchdog's limit (Daemon._stuck_jobs, the
same test that stops feeding systemd's watchdog). The pings follow the healthchecks.io convention: success after
cycles (at most once per the shortest feed interval), /fail with the reason while stalled.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Callable

from bridge.alerts.destinations import alert_urls, log_unreadable
from bridge.alerts.engine import Alerter
from bridge.alerts.ping import Pinger
from bridge.alerts.problems import Problem, current_problems
from bridge.config import Config, format_duration
from bridge.errors import StateConnectionLost
from bridge.state import State
from bridge.unexpected import unexpected

log = logging.getLogger("bridge.alerts")

# How often the problems are evaluated: a quarter of the shortest feed interval, within these bounds.
EVALUATE_MIN_SECONDS = 1.0
EVALUATE_MAX_SECONDS = 60.0
STALL_FIX = ("look at the service's log (journalctl -u bridge) for the job that hangs, then restart it "
             "(systemctl restart bridge); with WatchdogSec= in its unit, systemd restarts it by itself")


class AlertWatcher:
    def __init__(self, config: Config, state: State, stuck_jobs: Callable[[], list[str]],
                 clock: Callable[[], float] = time.time) -> None:
        self.state = state
        self.stuck_jobs = stuck_jobs
        self.clock = clock
        self._stop = threading.Event()
        self._last_poll = time.monotonic()  # start-up counts as a cycle: the first polls are spread over 30 s
        self._polls_since_ping = 0
        self._last_ping = 0.0
        self._thread = threading.Thread(target=self._run, name="bridge-alerts", daemon=True)
        self.reload(config)

    def reload(self, config: Config) -> None:
        urls = alert_urls(config, on_error=log_unreadable)
        self.config = config
        self.pinger = Pinger(urls.ping)
        self.alerter = Alerter(config, self.state, urls.destinations, clock=self.clock)
        intervals = [config.feed_interval(feed) for feed in config.feeds if feed.enabled]
        self.shortest_interval = min(intervals) if intervals else None

    def poll_done(self) -> None:
        """A poll job finished (whatever it found): the service is polling."""
        self._last_poll = time.monotonic()
        self._polls_since_ping += 1

    def start(self) -> None:
        """Start the thread when there is something to do (again after a reload that added [alerts])."""
        if (self.alerter.destinations or self.pinger.url) and not self._thread.is_alive() and not self._stop.is_set():
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.wait(self._period()):
            try:
                self._tick()
            except StateConnectionLost as exc:  # said once for the whole outage (bridge/state/reconnect.py)
                log.debug("alerts: not evaluated: %s", exc)
            except Exception as exc:  # the alert thread outlives any one bad evaluation
                log.error("alerts: could not be evaluated: %s", unexpected(log, exc, "evaluating alerts"))

    def _period(self) -> float:
        if self.shortest_interval is None:
            return EVALUATE_MAX_SECONDS
        return min(max(self.shortest_interval / 4, EVALUATE_MIN_SECONDS), EVALUATE_MAX_SECONDS)

    def _tick(self) -> None:
        stall = self.stall()
        if self.alerter.destinations:
            with self.state.try_lock("job:alerts") as mine:  # of several workers on one state, one tells
                if mine:
                    self.alerter.observe(current_problems(self.config, self.state) + ([stall] if stall else []))
                    self.alerter.flush()
        self._ping(stall)

    def stall(self) -> Problem | None:
        if self.shortest_interval is None:
            return None
        limit = self.config.alerts.stall_after_intervals * self.shortest_interval
        idle = time.monotonic() - self._last_poll
        stuck = self.stuck_jobs()
        if idle <= limit and not stuck:
            return None
        what = (f"no poll has finished for {format_duration(round(idle))}" if idle > limit
                else "polls go on, but some jobs hang")
        text = (f"bridge run is alive but {what} (the limit: {self.config.alerts.stall_after_intervals} times the "
                f"shortest feed interval, {format_duration(self.shortest_interval)})"
                + (f"; not moving: {', '.join(stuck)}" if stuck else "") + f". What to do: {STALL_FIX}")
        return Problem("stalled", "bridge run", text)

    def _ping(self, stall: Problem | None) -> None:
        now = time.monotonic()
        if now - self._last_ping < (self.shortest_interval or EVALUATE_MAX_SECONDS):
            return
        if stall is not None:
            self.pinger.fail(stall.text)
        elif self._polls_since_ping:
            self.pinger.success()
        else:
            return
        self._last_ping, self._polls_since_ping = now, 0
