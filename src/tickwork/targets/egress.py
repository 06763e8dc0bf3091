"""Where webhooks may connect: resolve a destination, check every address, name the
addresses a connection may use (SPEC §9 "Egress").

This module knows nothing about any HTTP client. A transport calls
:func:`checked_addresses` when it opens a TCP connection and connects only to the
addresses it returns: the check and the connection then use the same DNS answer, so a
name that resolves to a public address when checked and to a private one a moment later
(DNS rebinding) cannot reach the private one. The aiohttp transport
(:mod:`tickwork.targets.pinning`) calls it from its resolver and checks IP literals,
which aiohttp connects to without asking the resolver, with :meth:`EgressPolicy.refusal`.

The policy
----------
- Cloud metadata addresses (:data:`METADATA_ADDRESSES`) are always refused, whatever the
  settings say, also when embedded in IPv6 (IPv4-mapped, NAT64, 6to4).
- Publicly routable addresses are allowed.
- Any other address (private, loopback, link-local, shared, unspecified, multicast,
  reserved: see :func:`is_private_address`) is refused unless the operator allows it in
  ``TICKWORK_ALLOWED_TARGET_NETWORKS``: the address is inside a listed network, or the
  URL's host name is listed, or ``*`` is listed, which allows every private network
  except link-local ones (169.254.0.0/16, fe80::/10: where clouds put their metadata and
  agent services), which only a listed network or host name opens.
- A name is checked as a whole: if any address it resolves to is refused, the name is.

Refusals and resolution failures never say what a name resolves to: a tenant can learn
that its URL points somewhere private, not where. An IP literal the tenant wrote itself
is repeated in the message.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from tickwork.errors import PermanentError, TransientError

__all__ = [
    "ALLOWED_NETWORKS_ENV",
    "METADATA_ADDRESSES",
    "DestinationRefused",
    "EgressPolicy",
    "IPAddress",
    "checked_addresses",
    "is_private_address",
    "resolve",
]

ALLOWED_NETWORKS_ENV: Final = "TICKWORK_ALLOWED_TARGET_NETWORKS"

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# Instance metadata and credential endpoints: a request there hands out the host's cloud
# credentials. AWS (IMDS v4/v6, ECS task metadata, EKS pod identity v4/v6), GCP, Azure,
# Oracle, DigitalOcean and OpenStack (169.254.169.254), Alibaba (100.100.100.200), and
# Azure's WireServer (168.63.129.16, a public address that serves host configuration).
METADATA_ADDRESSES: Final[frozenset[IPAddress]] = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",
        "169.254.170.2",
        "169.254.170.23",
        "fd00:ec2::254",
        "fd00:ec2::23",
        "100.100.100.200",
        "168.63.129.16",
    )
)

# NAT64 (RFC 6052): a DNS64 resolver answers IPv4-only names with these, so they are
# judged by the IPv4 address they embed.
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


class DestinationRefused(PermanentError):
    """The policy refuses this destination; trying again cannot help."""


def is_private_address(ip: IPAddress) -> bool:
    """True when ``ip`` is not a publicly routable unicast address.

    Covers private, loopback, link-local, unspecified, multicast, reserved and other
    non-global ranges (such as 100.64.0.0/10), and IPv4 addresses embedded in IPv6:
    IPv4-mapped and NAT64 addresses are judged by the IPv4 address they carry, and a 6to4
    address is refused when the IPv4 address it embeds is.
    """
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return is_private_address(ip.ipv4_mapped)
        if ip in _NAT64:
            return is_private_address(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
        if ip.sixtofour is not None and is_private_address(ip.sixtofour):
            return True
    return (
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_unspecified
        or ip.is_multicast
        or ip.is_reserved
        or not ip.is_global
    )


def _forms(ip: IPAddress) -> list[IPAddress]:
    """``ip`` and the IPv4 address it embeds, if any: both must pass every check."""
    forms: list[IPAddress] = [ip]
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            forms.append(ip.ipv4_mapped)
        elif ip in _NAT64:
            forms.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
        elif ip.sixtofour is not None:
            forms.append(ip.sixtofour)
    return forms


def _host_key(host: str) -> str:
    return host.rstrip(".").lower()


@dataclass(frozen=True)
class EgressPolicy:
    """Which destinations webhooks may connect to (module docstring).

    ``allow_private`` is ``*``: every private network but link-local ones. ``networks``
    and ``hosts`` are the listed networks and (lower-case, IDNA) host names.
    """

    allow_private: bool = False
    networks: tuple[IPNetwork, ...] = ()
    hosts: frozenset[str] = frozenset()

    @classmethod
    def from_entries(cls, entries: Iterable[str], *, allow_private: bool = False) -> EgressPolicy:
        """A policy from the checked entries of ``TICKWORK_ALLOWED_TARGET_NETWORKS``
        (see :func:`tickwork.settings.parse_allowed_networks`): ``*``, CIDRs, names.
        ``allow_private`` is the older ``TICKWORK_ALLOW_PRIVATE_TARGETS=1``, the same
        as ``*``."""
        networks: list[IPNetwork] = []
        hosts: set[str] = set()
        for entry in entries:
            if entry == "*":
                allow_private = True
            elif "/" in entry:
                networks.append(ipaddress.ip_network(entry))
            else:
                hosts.add(_host_key(entry))
        return cls(allow_private, tuple(networks), frozenset(hosts))

    def refusal(self, host: str, ip: IPAddress) -> str | None:
        """Why a connection for ``host`` must not go to ``ip``, or None when it may.
        The reason is a phrase about ``ip`` that never spells it out."""
        forms = _forms(ip)
        if any(form in METADATA_ADDRESSES for form in forms):
            return "a cloud metadata address, which is always refused"
        if not is_private_address(ip):
            return None
        if _host_key(host) in self.hosts:
            return None
        if any(form in network for network in self.networks for form in forms):
            return None
        if self.allow_private and not any(form.is_link_local for form in forms):
            return None
        return (
            f"a private, loopback or link-local address; list its network or host name "
            f"in {ALLOWED_NETWORKS_ENV} to allow it"
        )


def parse_ip(host: str) -> IPAddress | None:
    """``host`` as an IP address, or None when it is a name."""
    try:
        return ipaddress.ip_address(host.removeprefix("[").removesuffix("]"))
    except ValueError:
        return None


async def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address ``host`` resolves to for a TCP connection, in resolver order.

    Raises :class:`TransientError` when it cannot be resolved. The one place webhooks
    resolve names: tests replace it (or ``socket.getaddrinfo``) to play a resolver.
    """
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        raise TransientError(f"webhook host {host} could not be resolved: {reason}") from None
    addresses: list[IPAddress] = []
    for info in infos:
        if info[0] not in (socket.AF_INET, socket.AF_INET6):
            continue
        ip = ipaddress.ip_address(info[4][0])
        if ip not in addresses:
            addresses.append(ip)
    if not addresses:
        raise TransientError(f"webhook host {host} resolved to no address")
    return addresses


async def checked_addresses(
    host: str, port: int, policy: EgressPolicy, label: str = "webhook"
) -> list[IPAddress]:
    """The addresses a connection to ``host``:``port`` may use, in the order to try them.

    ``host`` is the URL's host (a name, or an IP literal). Raises
    :class:`DestinationRefused` when the policy refuses it (for a name: when it refuses
    any address the name resolves to) and :class:`TransientError` when it cannot be
    resolved. The caller connects to the returned addresses and to nothing else.
    ``label`` names the kind of destination in messages ("webhook", "agent").
    """
    literal = parse_ip(host)
    if literal is not None:
        reason = policy.refusal(host, literal)
        if reason is not None:
            raise DestinationRefused(f"{label} destination {literal} is {reason}")
        return [literal]
    try:
        addresses = await resolve(host, port)
    except TransientError as exc:
        if label == "webhook":
            raise
        raise TransientError(str(exc).replace("webhook", label, 1)) from None
    for ip in addresses:
        reason = policy.refusal(host, ip)
        if reason is not None:
            raise DestinationRefused(f"{label} destination {host} resolves to {reason}")
    return addresses
