"""The address fence for a URL a feed names (a page, an image, a hub): resolve its host once and check every
address (bridge.addresses) before anything connects, so the caller connects to exactly what was checked.

Only the standard library and bridge.addresses: a pass that posts nothing imports this (the WebSub hub does).
Each caller words its errors its own way (a Wording); a FenceError says whether the URL was refused (it may
never be fetched) or only could not be resolved (a later try may do).
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import NamedTuple
from urllib.parse import urlsplit

from bridge.addresses import AllowPrivate, first_refused, parse, refusal_reason

Resolver = Callable[[str, int], list[str]]


class Wording(NamedTuple):
    """A caller's sentences, as str.format templates over {url}, {host} and {reason}."""

    invalid: str
    not_http: str
    unresolvable: str
    no_address: str


class FenceError(Exception):
    """A sentence in the caller's wording; `refused`: the URL itself may not be fetched."""

    def __init__(self, message: str, *, refused: bool) -> None:
        super().__init__(message)
        self.refused = refused


class Unresolvable(Exception):
    """The system resolver found nothing for `host` (`reason` says why)."""

    def __init__(self, host: str, reason: Exception) -> None:
        super().__init__(f"{host}: {reason}")
        self.host, self.reason = host, reason


def system_resolver(host: str, port: int) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise Unresolvable(host, exc) from None
    return sorted({info[4][0] for info in infos})


def checked_addresses(url: str, allow_private: AllowPrivate, resolver: Resolver, wording: Wording, *,
                      resolve_when_all_allowed: bool = True) -> list[str] | None:
    """The addresses of `url`'s host, every one of which may be contacted; FenceError otherwise. With
    `allow_private` True and `resolve_when_all_allowed` False, None: nothing to check, nothing resolved."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise FenceError(wording.invalid.format(url=url), refused=True) from None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise FenceError(wording.not_http.format(url=url), refused=True)
    if allow_private is True and not resolve_when_all_allowed:
        return None
    port = port or (443 if parts.scheme.lower() == "https" else 80)
    literal = parse(parts.hostname)
    try:
        addresses = [str(literal)] if literal is not None else resolver(parts.hostname, port)
    except Unresolvable as exc:
        raise FenceError(wording.unresolvable.format(host=exc.host, reason=exc.reason), refused=False) from None
    if not addresses:
        raise FenceError(wording.no_address.format(host=parts.hostname), refused=False)
    refused = first_refused(addresses, allow_private)
    if refused is not None:
        raise FenceError(refusal_reason(url, refused), refused=True)
    return addresses
