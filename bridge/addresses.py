"""Which addresses bridge may connect to for what a feed names: article pages, images, redirect targets.

Public addresses are allowed. Private, loopback, link-local, shared, reserved, site-local and multicast ones
are refused unless allowed: `allow_private` is True (anything goes: `[bridge] allow_private_addresses`), False,
or a collection of networks to allow (LOOPBACK lets tests serve pages on 127.0.0.1 and still see 10.0.0.1
refused).

An IPv6 address that carries an IPv4 address reaches that IPv4 host through a translator or a tunnel, so it is
judged by the IPv4 address it carries: IPv4-mapped ::ffff:a.b.c.d, IPv4-compatible ::a.b.c.d, NAT64
64:ff9b::/96, 6to4 2002::/16 and Teredo 2001::/32 (server and un-XORed client). The local-use NAT64 prefix
64:ff9b:1::/48 (RFC 8215) puts the IPv4 address where its operator chooses, so it is never public.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Collection, Iterable
from typing import Union

IPAddress = Union[ipaddress.IPv4Address, ipaddress.IPv6Address]
Network = Union[ipaddress.IPv4Network, ipaddress.IPv6Network]
AllowPrivate = Union[bool, Collection[Union[str, Network]]]

LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")
# The stdlib (3.11) calls these global; they are not reachable as public hosts.
_NEVER_PUBLIC = (_NAT64_LOCAL, ipaddress.ip_network("fec0::/10"))


def networks(allow_private: AllowPrivate) -> list[Network]:
    if isinstance(allow_private, bool):
        return []
    return [ipaddress.ip_network(n, strict=False) if isinstance(n, str) else n for n in allow_private]


def parse(address: str) -> IPAddress | None:
    """An IP address from a literal or a resolver's answer ('[::1]', 'fe80::1%eth0'); None for a name."""
    try:
        return ipaddress.ip_address(address.strip("[]").split("%", 1)[0])
    except ValueError:
        return None


def carried_ipv4(ip: IPAddress) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address leads to (empty for IPv4 and plain IPv6)."""
    if not isinstance(ip, ipaddress.IPv6Address):
        return []
    if ip.ipv4_mapped is not None:
        return [ip.ipv4_mapped]
    if ip.sixtofour is not None:
        return [ip.sixtofour]
    if ip.teredo is not None:
        return list(ip.teredo)
    low32 = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip in _NAT64:
        return [low32]
    if ip in _IPV4_COMPATIBLE and int(ip) > 1:  # :: and ::1 are themselves, not IPv4-compatible forms
        return [low32]
    return []


def _public(ip: IPAddress) -> bool:
    return ip.is_global and not ip.is_multicast and not any(ip in n for n in _NEVER_PUBLIC if n.version == ip.version)


def permitted(ip: IPAddress, allow_private: AllowPrivate) -> bool:
    if allow_private is True:
        return True
    allowed = networks(allow_private)
    judged = carried_ipv4(ip) or [ip]
    return all(_public(a) or any(a in n for n in allowed) for a in judged)


def first_refused(addresses: Iterable[str], allow_private: AllowPrivate) -> IPAddress | None:
    """The first of a host's addresses that may not be contacted; an unparsable answer counts as refused."""
    for address in addresses:
        ip = parse(address)
        if ip is None:
            return ipaddress.ip_address("0.0.0.0")
        if not permitted(ip, allow_private):
            return ip
    return None


def refusal_reason(url: str, ip: IPAddress) -> str:
    shown = f"{ip}" + (f" (which carries {', '.join(map(str, carried_ipv4(ip)))})" if carried_ipv4(ip) else "")
    return (
        f"{url} leads to {shown}, a private, loopback or link-local address; "
        "set [bridge] allow_private_addresses = true if bridge should fetch from your own network"
    )


# Names that only ever mean "this machine" or "this network" (RFC 6761 localhost, RFC 6762 .local, RFC 8375
# home.arpa, and .internal/.lan by convention): a reader elsewhere cannot open them.
_LOCAL_NAMES = ("localhost",)
_LOCAL_SUFFIXES = (".localhost", ".local", ".internal", ".lan", ".home.arpa")


def is_local_host(host: str | None) -> bool:
    """Whether `host` (a name or an address literal) is one only its own machine or network can reach."""
    if not host:
        return False
    host = host.strip().rstrip(".").lower()
    ip = parse(host)
    if ip is not None:
        return not permitted(ip, False)
    return host in _LOCAL_NAMES or host.endswith(_LOCAL_SUFFIXES) or "." not in host


LOCALHOST = "localhost"


def is_loopback(host: str) -> bool:
    """Is this address (a listen host, a request's peer, a redirect URI's host) loopback? An IPv4-mapped IPv6 address counts as its
    IPv4 address; the wildcards 0.0.0.0 and :: are not loopback (they listen on every interface)."""
    if host == LOCALHOST:
        return True
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])  # a scope id (fe80::1%eth0) is not part of it
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return (mapped or address).is_loopback
