"""Where a request comes from: its client's address, that address's network, and the source stamp.

One derivation serves both uses of a client's network: the per-source rate
bucket and the ``source`` stamped on every report of the request (what the
worker counts distinct error clients per, so one script cannot pass for a
thousand clients). It is worked out once per request, never per report.

- The client address is the TCP peer's, unless the peer is a configured
  trusted proxy: then it is the right-most address of ``client_address_header``
  (``X-Forwarded-For``) that is not itself a trusted proxy. A header from any
  other peer is ignored: a client can write whatever it likes there.
- Its network is the IPv4 /24 or IPv6 /48 holding it (configurable): one
  household, office or small provider block, so a script cannot become many
  sources by changing its address inside the block it has.
- The stamp is a keyed hash of that network and the key's name (12 hex digits):
  stable for as long as the secret is, and not reversible to an address in
  Kafka or ClickHouse without the secret.

>>> sources = Sources(SourcePolicy(trusted_proxies=("10.0.0.0/8",)), secret=b"k")
>>> sources.client_address("203.0.113.9", None), sources.client_address("203.0.113.9", "198.51.100.7")
('203.0.113.9', '203.0.113.9')
>>> sources.client_address("10.1.2.3", "198.51.100.7, 10.9.9.9")  # a trusted proxy names its client
'198.51.100.7'
>>> network_of("203.0.113.9", 24, 48), network_of("2001:db8:abcd:12::1", 24, 48), network_of("::ffff:192.0.2.1", 24, 48)
('203.0.113.0/24', '2001:db8:abcd::/48', '192.0.2.0/24')
>>> sources.stamp("203.0.113.0/24", "app") == sources.stamp("203.0.113.0/24", "app") != sources.stamp("203.0.113.0/24", "web")
True
"""

from __future__ import annotations

import hashlib
import ipaddress
import secrets
from collections import OrderedDict
from dataclasses import dataclass

from core.config import CollectorSettings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
UNKNOWN_NETWORK = "unknown"
# Distinct peer addresses whose network is remembered; a miss costs a few microseconds.
NETWORK_CACHE = 4096


class SourceConfigError(ValueError):
    """A trusted proxy or prefix length that cannot be used; the message names the setting."""


def _address(text: str) -> IPAddress | None:
    try:
        address = ipaddress.ip_address(text.strip().strip("[]"))
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def network_of(address: str, ipv4_prefix: int, ipv6_prefix: int) -> str:
    """The network (CIDR) holding ``address``; ``unknown`` for what is not an IP address (a unix socket)."""
    parsed = _address(address)
    if parsed is None:
        return UNKNOWN_NETWORK
    bits = ipv4_prefix if parsed.version == 4 else ipv6_prefix
    return str(ipaddress.ip_network(f"{parsed}/{bits}", strict=False))


@dataclass(frozen=True)
class SourcePolicy:
    ipv4_prefix: int = 24
    ipv6_prefix: int = 48
    trusted_proxies: tuple[str, ...] = ()
    client_address_header: str = "X-Forwarded-For"

    def __post_init__(self) -> None:
        if not 8 <= self.ipv4_prefix <= 32:
            raise SourceConfigError(f"collector.source_ipv4_prefix must be 8..32, got {self.ipv4_prefix}")
        if not 16 <= self.ipv6_prefix <= 128:
            raise SourceConfigError(f"collector.source_ipv6_prefix must be 16..128, got {self.ipv6_prefix}")

    @classmethod
    def from_settings(cls, c: CollectorSettings) -> SourcePolicy:
        return cls(c.source_ipv4_prefix, c.source_ipv6_prefix, c.trusted_proxies, c.client_address_header)

    def proxies(self) -> tuple[IPNetwork, ...]:
        out = []
        for entry in self.trusted_proxies:
            try:
                out.append(ipaddress.ip_network(entry.strip(), strict=False))
            except ValueError:
                raise SourceConfigError(f"collector.trusted_proxies entry {entry!r} is not an address or CIDR "
                                        "(e.g. 10.0.0.0/8 or 2001:db8::1)") from None
        return tuple(out)


class Sources:
    """Client address -> network -> stamp, for one collector (its secret, its proxies)."""

    def __init__(self, policy: SourcePolicy, secret: bytes | None = None) -> None:
        self.policy = policy
        self._proxies = policy.proxies()
        # Without a configured secret the stamps are this process's own: fine for one collector; several
        # behind one load balancer must share collector.source_secret, or one client is one source per collector.
        self.secret = secret or secrets.token_bytes(16)
        self._networks: OrderedDict[str, str] = OrderedDict()

    def _trusted(self, address: IPAddress | None) -> bool:
        return address is not None and any(address in proxy for proxy in self._proxies)

    def client_address(self, peer: str | None, forwarded: str | None) -> str:
        """The client's address: the peer's, or what a trusted proxy peer says in the header."""
        peer = peer or ""
        if not forwarded or not self._proxies or not self._trusted(_address(peer)):
            return peer
        hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
        for hop in reversed(hops):
            address = _address(hop)
            if address is None:
                return peer  # a header we cannot read names nobody: the proxy itself is the client
            if not self._trusted(address):
                return str(address)
        return str(_address(hops[0])) if hops else peer

    def network(self, address: str) -> str:
        """``network_of`` with this policy's prefixes, memoised per address (bounded)."""
        cached = self._networks.get(address)
        if cached is None:
            cached = network_of(address, self.policy.ipv4_prefix, self.policy.ipv6_prefix)
            self._networks[address] = cached
            if len(self._networks) > NETWORK_CACHE:
                self._networks.popitem(last=False)
        return cached

    def stamp(self, network: str, key_name: str) -> str:
        """The ``source`` of reports from ``network`` under key ``key_name``: 12 hex digits."""
        material = f"{network}\x00{key_name}".encode()
        return hashlib.blake2b(material, key=self.secret, digest_size=6).hexdigest()
