"""Which addresses an outgoing webhook may go to. Pure: the name lookup is the caller's.

Only http and https URLs of the host the owner entered. Every address that host resolves to
must be a public one: loopback, private, link-local (the cloud metadata service at
169.254.169.254), multicast, reserved and unspecified addresses are refused, IPv4-mapped IPv6
ones as their IPv4 address, so that a webhook cannot reach into the server's own network.
`WEBHOOKS_ALLOW_PRIVATE` (networks and host names) lets an operator allow some on purpose.
"""

from __future__ import annotations

import enum
import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

URL_MAX: Final = 2000
_LABEL: Final = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?")


class AddressKind(enum.StrEnum):
    """Why an address is refused; the value is the words of the stored reason."""

    LOOPBACK = "a loopback address"
    PRIVATE = "a private address"
    LINK_LOCAL = "a link-local address"
    MULTICAST = "a multicast address"
    RESERVED = "a reserved address"
    UNSPECIFIED = "an unspecified address"
    NOT_GLOBAL = "not a public address"


@dataclass(frozen=True)
class Refusal:
    address: str
    kind: AddressKind

    def __str__(self) -> str:
        return f"address refused: {self.address} is {self.kind.value}"


class UrlProblem(enum.StrEnum):
    """Why a URL the owner entered cannot be a webhook's."""

    SCHEME = "scheme"  # not http or https
    HOST = "host"  # no host
    CREDENTIALS = "credentials"  # user:password@ in it
    LENGTH = "length"
    FORM = "form"  # not a URL at all (a bad port, brackets …)


@dataclass(frozen=True)
class Allowed:
    """What `WEBHOOKS_ALLOW_PRIVATE` allows: networks, and host names as the owner types them."""

    networks: tuple[IPNetwork, ...] = ()
    hosts: frozenset[str] = frozenset()

    def allows(self, address: IPAddress, host: str | None = None) -> bool:
        if host is not None and host.lower().rstrip(".") in self.hosts:
            return True
        return any(address.version == n.version and address in n for n in self.networks)


NOTHING_ALLOWED: Final = Allowed()


def parse_allowed(text: str | None) -> Allowed:
    """`10.0.0.0/8,127.0.0.1,hooks.internal` → an Allowed; ValueError names a bad entry."""
    networks: list[IPNetwork] = []
    hosts: set[str] = set()
    for item in (text or "").split(","):
        entry = item.strip()
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
            continue
        except ValueError:
            pass
        name = entry.lower().rstrip(".")
        if not all(_LABEL.fullmatch(part) for part in name.split(".")):
            raise ValueError(f"{entry!r} is neither a network (CIDR), an address nor a host name")
        hosts.add(name)
    return Allowed(tuple(networks), frozenset(hosts))


def kind_of(address: IPAddress) -> AddressKind | None:
    """Why `address` is no public one; None when it is."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address.is_unspecified:
        return AddressKind.UNSPECIFIED
    if address.is_loopback:
        return AddressKind.LOOPBACK
    if address.is_link_local:
        return AddressKind.LINK_LOCAL
    if address.is_multicast:
        return AddressKind.MULTICAST
    if address.is_private:
        return AddressKind.PRIVATE
    if address.is_reserved:
        return AddressKind.RESERVED
    if not address.is_global:
        return AddressKind.NOT_GLOBAL
    return None


def refusal(address: str, allowed: Allowed, host: str | None = None) -> Refusal | None:
    """Why a connection to `address` (resolved from `host`) is refused; None when it may go."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # an IPv6 zone is no part of it
    kind = kind_of(ip)
    if kind is None:
        return None
    mapped = ip.ipv4_mapped if isinstance(ip, ipaddress.IPv6Address) else None
    if allowed.allows(ip, host) or (mapped is not None and allowed.allows(mapped, host)):
        return None
    return Refusal(str(mapped or ip), kind)


def first_refusal(
    addresses: Iterable[str], allowed: Allowed, host: str | None = None
) -> Refusal | None:
    """The first refused of the addresses a host resolved to: one refused refuses the host,
    as the connection might go to any of them."""
    for address in addresses:
        refused = refusal(address, allowed, host)
        if refused is not None:
            return refused
    return None


def url_problem(url: str) -> UrlProblem | None:
    """What is wrong with a URL the owner entered, before any name is looked up."""
    if len(url) > URL_MAX:
        return UrlProblem.LENGTH
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises for a port that is no number or out of range)
    except ValueError:
        return UrlProblem.FORM
    if parts.scheme not in ("http", "https"):
        return UrlProblem.SCHEME
    if parts.username is not None or parts.password is not None:
        return UrlProblem.CREDENTIALS
    if not parts.hostname:
        return UrlProblem.HOST
    return None


def host_of(url: str) -> tuple[str, int]:
    """The host name (or address) and port a checked URL connects to."""
    parts = urlsplit(url)
    assert parts.hostname
    return parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)


def literal(host: str) -> IPAddress | None:
    """The address a host given as an address stands for."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None
