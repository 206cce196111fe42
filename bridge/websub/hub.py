"""bridge's requests to a WebSub hub (spec section 5.1): subscribe and unsubscribe, as a form POST.

The hub's address comes from a feed, so it is fenced like anything a feed names (bridge.fence): it must
resolve to public addresses unless `allow_private_addresses` is set, and the POST connects to an address that
was checked, never to a second DNS answer (which could differ: DNS rebinding), with the hub's own name in the
Host header and for TLS. The deadlines and the user agent are the feed fetcher's. httpx (already bridge's client
for pages) because it can send a request to one address under another name (its `sni_hostname` extension).
"""

from __future__ import annotations

import httpx

from bridge.config import BridgeSettings
from bridge.fence import FenceError, Resolver, Wording, checked_addresses, system_resolver
from bridge.redact import redact


class HubError(Exception):
    """The hub could not be asked, or refused: a sentence for status and the log."""


_WORDING = Wording(
    invalid="the hub {url} is not a valid URL",
    not_http="the hub {url} is not an http(s) URL",
    unresolvable="cannot find the hub's host {host}: {reason}",
    no_address="the hub's host {host} has no address",
)


def fence(url: str, allow_private: bool, resolver: Resolver = system_resolver) -> list[str]:
    """The addresses of the hub's host, all of which may be contacted; HubError otherwise."""
    try:
        return checked_addresses(url, allow_private, resolver, _WORDING)
    except FenceError as exc:
        raise HubError(str(exc)) from None


def ask_hub(settings: BridgeSettings, hub: str, form: dict[str, str], *, resolver: Resolver = system_resolver,
            transport: httpx.BaseTransport | None = None) -> None:
    """POST a (un)subscription request. The hub answers 202 (it verifies later, at the callback) or 2xx;
    anything else is a HubError carrying its reason, with the secret never in it."""
    addresses = fence(hub, settings.allow_private_addresses, resolver)
    timeout = httpx.Timeout(settings.read_timeout, connect=settings.connect_timeout)
    last_error: httpx.HTTPError | None = None
    with httpx.Client(timeout=timeout, trust_env=True, transport=transport) as client:
        for address in addresses:
            request = client.build_request("POST", hub, data=form, headers={"User-Agent": settings.user_agent})
            request.extensions["sni_hostname"] = request.url.raw_host.decode("ascii")
            request.url = request.url.copy_with(host=address)  # the checked address; Host stays the hub's name
            try:
                response = client.send(request, follow_redirects=False)
                break
            except httpx.ConnectError as exc:  # the host's next address may answer
                last_error = exc
            except httpx.HTTPError as exc:
                raise HubError(f"cannot reach the hub {hub}: {type(exc).__name__}") from None
        else:
            raise HubError(f"cannot reach the hub {hub}: {type(last_error).__name__}")
    if not 200 <= response.status_code < 300:
        text = response.text.strip()
        reason = redact(text.splitlines()[0][:200] if text else "")
        raise HubError(f"the hub {hub} answered HTTP {response.status_code}" + (f": {reason}" if reason else ""))
