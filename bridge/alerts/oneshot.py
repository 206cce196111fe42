"""Alerts and the dead-man's switch for one `bridge poll` run: timer-driven installs are told like the service."""

from __future__ import annotations

import logging

from bridge.alerts.destinations import alert_urls, log_unreadable
from bridge.alerts.ping import Pinger
from bridge.config import Config
from bridge.state import State
from bridge.unexpected import unexpected

log = logging.getLogger("bridge.alerts")


class RunAlerts:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.urls = alert_urls(config, on_error=log_unreadable)
        self.pinger = Pinger(self.urls.ping)

    def started(self) -> None:
        self.pinger.start()

    def finished(self, state: State, failure: str | None) -> None:
        """After the run posted what it could: ping the outcome, then tell what opened or cleared."""
        if failure:
            self.pinger.fail(failure)
        else:
            self.pinger.success()
        if not self.urls.destinations:
            return
        # Here, not at the top: apprise and the problem checks load only for a config that has destinations.
        from bridge.alerts.engine import Alerter
        from bridge.alerts.problems import current_problems

        try:
            alerter = Alerter(self.config, state, self.urls.destinations)
            alerter.observe(current_problems(self.config, state))
            alerter.flush()
        except Exception as exc:  # alerting must never turn a run that posted into a failure
            log.error("alerts: could not be evaluated: %s", unexpected(log, exc, "evaluating alerts"))
