"""Sending an alert to every destination, through Apprise.

Apprise is well kept and speaks to ntfy, email, Matrix, Signal, Telegram, Discord, Slack, Gotify, generic JSON
webhooks and about a hundred more services, each as one URL: bridge writes no sender of its own. Its own timeouts
bound each request (a few seconds); its log lines pass through bridge's redacting handler, and every destination
is named here by Apprise's privacy form of its URL, redacted again (passwords, tokens and topics registered by
bridge.config.resolve_url).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from bridge.config import Secret
from bridge.redact import redact

log = logging.getLogger("bridge.alerts")


@dataclass
class Delivery:
    destination: str  # the URL as it may be shown: secrets masked
    error: str | None = None  # None: sent

    @property
    def ok(self) -> bool:
        return self.error is None


def _plugin(url: Secret):
    """Apprise's plugin for a destination, or None when Apprise does not understand the URL. Apprise (a hundred
    plugins, a tenth of a second to load) is loaded here, when a destination is looked at or sent to, not by every
    pass that finds nothing to tell."""
    import apprise

    return apprise.Apprise.instantiate(url.reveal(), suppress_exceptions=True)


def understood(url: Secret) -> bool:
    return _plugin(url) is not None


def describe(url: Secret) -> str:
    """A destination as it may be shown or logged."""
    plugin = _plugin(url)
    if plugin is None:
        return url.reveal().split("://")[0] + "://..."
    # The whole URL is a registered secret: redact after the scheme, so that the destination stays recognisable
    # while its password, token or topic (registered on their own) are cut.
    scheme, _, rest = plugin.url(privacy=True).split("?")[0].partition("://")
    return f"{scheme}://{redact(rest)}"


def send(destinations: list[Secret], title: str, body: str) -> list[Delivery]:
    """Send to each destination; say for each whether it took the message, and why not. Never raises."""
    return [_send_one(url, redact(title), redact(body)) for url in destinations]


def _send_one(url: Secret, title: str, body: str) -> Delivery:
    from apprise import LogCapture  # loaded by _plugin already

    shown = describe(url)
    plugin = _plugin(url)
    if plugin is None:
        return Delivery(shown, "Apprise does not understand this URL: check it against "
                               "https://github.com/caronc/apprise/wiki (the scheme, the host, the parameters)")
    with LogCapture(level=logging.WARNING, fmt="%(message)s") as captured:
        try:
            sent = plugin.notify(body=body, title=title)
        except Exception as exc:  # a plugin's bug must not stop the other destinations, nor the service
            sent, reason = False, f"{type(exc).__name__}: {exc}"
        else:
            reason = None
    if sent:
        return Delivery(shown)
    said = " ".join(line.strip() for line in captured.getvalue().splitlines() if line.strip())
    return Delivery(shown, redact(reason or said or "the service refused it (no reason given)"))
