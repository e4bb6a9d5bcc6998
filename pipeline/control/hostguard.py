"""No SSRF through tenant input: a tenant's SMTP/IMAP host must be public and on a mail port.

Checked at save, at verify and again at connect time (DNS can change between them). The deployment
may relax each rule alone: ``[serve] allow_hosts`` (address ranges that may be private, e.g. a local
relay) and ``[serve] allow_ports`` (extra ports).
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from pipeline.control.errors import Invalid

SMTP_PORTS = frozenset({25, 465, 587, 2525})
IMAP_PORTS = frozenset({143, 993})
_LABEL = r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
HOSTNAME = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(\.{_LABEL})*\.?$")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], list[str]]


class HostRefused(Invalid):
    """A 422 naming the field: the host or port is not one a tenant may use."""


def system_resolver(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def _kind_of(address: IPAddress) -> str | None:
    """Why an address is not a public unicast one, or None when it is."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour or (address.teredo[1] if address.teredo else None)
        if embedded is not None:
            return _kind_of(embedded)
        if address in ipaddress.ip_network("64:ff9b::/96"):  # NAT64: the IPv4 address sits in the last 32 bits
            return _kind_of(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    checks = (
        ("unspecified", address.is_unspecified),
        ("loopback", address.is_loopback),
        ("link-local (cloud metadata lives there)", address.is_link_local),
        ("multicast", address.is_multicast),
        ("private", address.is_private),
        ("reserved", address.is_reserved),
    )
    for kind, hit in checks:
        if hit:
            return kind
    if not address.is_global:
        return "non-public"
    return None


@dataclass(frozen=True)
class HostPolicy:
    allow_networks: tuple[IPNetwork, ...] = ()
    allow_ports: frozenset[int] = field(default_factory=frozenset)

    @classmethod
    def from_lists(cls, hosts: Iterable[str], ports: Iterable[int]) -> HostPolicy:
        return cls(tuple(ipaddress.ip_network(h, strict=False) for h in hosts), frozenset(ports))

    def check_port(self, port: int, *, kind: str = "smtp", field_name: str = "port") -> None:
        allowed = SMTP_PORTS if kind == "smtp" else IMAP_PORTS
        if port not in allowed and port not in self.allow_ports:
            names = ", ".join(str(p) for p in sorted(allowed))
            raise HostRefused(f"{field_name}: port {port} is not a {kind.upper()} port ({names})", field=field_name)

    def check_address(self, text: str, *, field_name: str = "host") -> None:
        address = ipaddress.ip_address(text.split("%", 1)[0])
        if any(address in network for network in self.allow_networks if network.version == address.version):
            return
        kind = _kind_of(address)
        if kind is not None:
            raise HostRefused(f"{field_name}: the host resolves to an address tenants may not use ({kind})", field=field_name)

    def check_host(
        self,
        host: str,
        port: int,
        *,
        kind: str = "smtp",
        field_name: str = "host",
        resolve: Resolver = system_resolver,
        must_resolve: bool = False,
    ) -> list[str]:
        """Port and every resolved address checked; returns the addresses (empty when the name does not resolve)."""
        self.check_port(port, kind=kind, field_name=field_name.replace("host", "port"))
        literal = _literal(host)
        if literal is None and not HOSTNAME.match(host):
            raise HostRefused(f"{field_name}: not a valid host name", field=field_name)
        if literal is not None:
            self.check_address(literal, field_name=field_name)
            return [literal]
        try:
            addresses = resolve(host, port)
        except (OSError, UnicodeError):
            if must_resolve:
                raise HostRefused(f"{field_name}: {host} does not resolve", field=field_name) from None
            return []
        for address in addresses:
            self.check_address(address, field_name=field_name)
        return addresses


def _literal(host: str) -> str | None:
    candidate = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return None
