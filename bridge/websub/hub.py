"""bridge's requests to a WebSub hub (spec section 5.1): subscribe and unsubscribe, as a form POST.

The hub's address comes from a feed, so it is fenced like anything a feed names (bridge.addresses): it must
resolve to public addresses unless `allow_private_addresses` is set. The deadlines and the user agent are the
feed fetcher's. requests (already a dependency for Mastodon.py) because this runs in a job's thread, not on the
fetch loop, and one short POST needs no connection pool.
"""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

import requests

from bridge.addresses import first_refused, refusal_reason
from bridge.config import BridgeSettings
from bridge.redact import redact


class HubError(Exception):
    """The hub could not be asked, or refused: a sentence for status and the log."""


def fence(url: str, allow_private: bool) -> None:
    """HubError unless every address of the hub's host may be contacted."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise HubError(f"the hub {url} is not an http(s) URL")
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or (443 if parts.scheme == "https" else 80),
                                   type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise HubError(f"cannot find the hub's host {parts.hostname}: {exc}") from None
    refused = first_refused([info[4][0] for info in infos], allow_private)
    if refused is not None:
        raise HubError(refusal_reason(url, refused))


def ask_hub(settings: BridgeSettings, hub: str, form: dict[str, str]) -> None:
    """POST a (un)subscription request. The hub answers 202 (it verifies later, at the callback) or 2xx;
    anything else is a HubError carrying its reason, with the secret never in it."""
    fence(hub, settings.allow_private_addresses)
    try:
        response = requests.post(hub, data=form, timeout=(settings.connect_timeout, settings.read_timeout),
                                 headers={"User-Agent": settings.user_agent}, allow_redirects=False)
    except requests.RequestException as exc:
        raise HubError(f"cannot reach the hub {hub}: {type(exc).__name__}") from None
    if not 200 <= response.status_code < 300:
        reason = redact(response.text.strip().splitlines()[0][:200] if response.text.strip() else "")
        raise HubError(f"the hub {hub} answered HTTP {response.status_code}" + (f": {reason}" if reason else ""))
