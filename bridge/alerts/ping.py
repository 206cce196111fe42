"""The dead-man's switch: an outside monitor (healthchecks.io, or anything that speaks its convention) is pinged
at `<url>/start` when a cycle starts, `<url>` when it ends well and `<url>/fail`, the reason in the body, when it
does not; it notices bridge is gone when the pings stop. A ping has one deadline and never breaks a cycle."""

from __future__ import annotations

import logging
import threading
from urllib.parse import urlsplit, urlunsplit

from bridge.config import Secret
from bridge.redact import redact

log = logging.getLogger("bridge.alerts")

PING_SECONDS = 10.0  # the whole request: connecting, sending, the answer
MAX_REASON_BYTES = 10_000  # healthchecks.io keeps the first 100 kB of a body; a reason is a few lines


class Pinger:
    def __init__(self, url: Secret | None) -> None:
        self.url = url
        self._starting: threading.Thread | None = None

    def start(self) -> None:
        """Ping /start beside the cycle, so that a slow monitor does not delay it; the end ping waits for it."""
        if self.url is None:
            return
        self._starting = threading.Thread(target=self._ping, args=("/start",), name="bridge-ping", daemon=True)
        self._starting.start()

    def success(self) -> None:
        self._after_start()
        self._ping("")

    def fail(self, reason: str) -> None:
        self._after_start()
        self._ping("/fail", redact(reason))

    def _after_start(self) -> None:
        if self._starting is not None:
            self._starting.join(PING_SECONDS + 1)  # bounded by the /start ping's own deadline
            self._starting = None

    def _ping(self, suffix: str, body: str = "") -> None:
        if self.url is None:
            return
        import httpx  # here: a run without a ping_url never loads the HTTP client

        from bridge.deadline import DeadlineTransport

        parts = urlsplit(self.url.reveal())
        target = urlunsplit(parts._replace(path=parts.path.rstrip("/") + suffix))
        try:
            with httpx.Client(transport=DeadlineTransport(PING_SECONDS), timeout=PING_SECONDS) as client:
                response = client.post(target, content=body.encode()[:MAX_REASON_BYTES])
            if response.status_code >= 400:
                log.warning("the ping_url%s answered HTTP %d; the cycle goes on", suffix, response.status_code)
        except Exception as exc:  # a monitor that cannot be reached must not break a cycle
            log.warning("the ping_url%s could not be reached (%s); the cycle goes on", suffix,
                        redact(f"{type(exc).__name__}: {exc}"))
