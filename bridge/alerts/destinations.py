"""The [alerts] URLs: credentials like the accounts' ({ env }, { file }, $CREDENTIALS_DIRECTORY), never logged."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Callable
from urllib.parse import urlsplit

from bridge.config import ALERT_DESTINATION_CREDENTIAL, PING_URL_CREDENTIAL, Config, Secret, resolve_url
from bridge.errors import ConfigError
from bridge.redact import redact

log = logging.getLogger("bridge.alerts")


@dataclass
class AlertUrls:
    destinations: list[Secret] = field(default_factory=list)
    ping: Secret | None = None

    @property
    def configured(self) -> bool:
        return bool(self.destinations or self.ping)


def alert_urls(config: Config, on_error: Callable[[ConfigError], None] | None = None) -> AlertUrls:
    """The destinations and the ping URL. A reference that cannot be read raises ConfigError (check-config,
    `bridge alerts test`), or with `on_error` is handed to it and left out, so that posting goes on without it."""
    settings = config.alerts
    urls = AlertUrls()
    refs = list(enumerate(settings.destinations)) or [(None, None)]  # none listed: a systemd credential may hold one
    for index, ref in refs:
        key = "alerts.destinations" + (f"[{index}]" if index is not None else "")
        found = _resolve(config, key, ref, ALERT_DESTINATION_CREDENTIAL, on_error)
        if found is not None:
            urls.destinations.append(found)
    urls.ping = _resolve(config, "alerts.ping_url", settings.ping_url, PING_URL_CREDENTIAL, on_error)
    return urls


def log_unreadable(exc: ConfigError) -> None:
    log.error("alerts: %s; going on without it", redact(str(exc)))


def _resolve(config: Config, key: str, ref, credential_name: str, on_error) -> Secret | None:
    try:
        return resolve_url(config, key, ref, credential_name)
    except ConfigError as exc:
        if on_error is None:
            raise
        on_error(exc)
        return None


def check_destinations(config: Config) -> AlertUrls:
    """alert_urls, and every destination is a URL Apprise understands (check-config)."""
    from bridge.alerts.send import describe, understood

    urls = alert_urls(config)
    for index, url in enumerate(urls.destinations):
        if not understood(url):
            raise ConfigError(f"alerts.destinations[{index}]", f"{describe(url)} is not a URL Apprise understands",
                              "check its scheme, host and parameters against https://github.com/caronc/apprise/wiki, "
                              "then try it with `bridge alerts test`")
    if urls.ping is not None:
        parts = urlsplit(urls.ping.reveal())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError("alerts.ping_url", "is not an http(s) URL",
                              "give the check's ping URL, like https://hc-ping.com/<uuid>")
    return urls
