"""The lab topology, declared as data; routes are derived from it, not written by hand.

::

    v1 ── r1 ──┬── ra ──┬── r3 ── v2        links via rb: MTU 1400, the rest 1500
               └── rb ──┘

Every node is a network namespace.  Links are /30s in 198.51.100.0/24, VTEP
loopbacks 192.0.2.1 (v1) and 192.0.2.2 (v2), the overlay 203.0.113.0/24 rides a
kernel VXLAN device (VNI 100, UDP 4789).  Routes are shortest paths with every
equal-cost next hop kept, so r1 and r3 hold the two-way ECMP routes.
"""

from __future__ import annotations

import ipaddress
from collections import deque
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Link:
    a: str
    b: str
    subnet: str  # a /30: .1 goes to ``a``, .2 to ``b``
    mtu: int = 1500

    def address(self, node: str) -> str:
        net = ipaddress.ip_network(self.subnet)
        return str(net.network_address + (1 if node == self.a else 2))

    def peer(self, node: str) -> str:
        return self.b if node == self.a else self.a

    def ifname(self, node: str) -> str:
        """The interface in ``node`` is named after the node at the other end (``to-r1``)."""
        return f"to-{self.peer(node)}"


@dataclass(frozen=True, slots=True)
class Vtep:
    node: str
    loopback: str
    overlay: str  # address on the VXLAN device, /24
    mac: str


@dataclass(frozen=True, slots=True)
class Topology:
    nodes: tuple[str, ...]
    links: tuple[Link, ...]
    vteps: tuple[Vtep, ...]
    vni: int = 100
    vxlan_port: int = 4789
    overlay_prefixlen: int = 24
    vxlan_ifname: str = "vxlan100"
    #: the nodes that forward (everything but the VTEP hosts)
    routers: tuple[str, ...] = field(default=())

    def links_of(self, node: str) -> list[Link]:
        return [ln for ln in self.links if node in (ln.a, ln.b)]

    def vtep(self, node: str) -> Vtep | None:
        return next((v for v in self.vteps if v.node == node), None)

    def prefixes(self) -> dict[str, str]:
        """Every routed prefix and the node that owns it (links are owned by both ends)."""
        out: dict[str, str] = {v.loopback + "/32": v.node for v in self.vteps}
        for ln in self.links:
            out[ln.subnet] = ln.a
        return out

    def routes(self, node: str) -> dict[str, list[str]]:
        """prefix → next-hop gateways (several = ECMP), for prefixes not directly connected."""
        dist = self._distances()
        routes: dict[str, list[str]] = {}
        connected = {ln.subnet for ln in self.links_of(node)}
        for prefix, owner in self.prefixes().items():
            if prefix in connected or owner == node:
                continue
            owners = [owner]
            ln_owner = next((ln for ln in self.links if ln.subnet == prefix), None)
            if ln_owner is not None:
                owners = [ln_owner.a, ln_owner.b]
            best = min(dist[node][o] for o in owners)
            gws = []
            for ln in self.links_of(node):
                nb = ln.peer(node)
                if min(dist[nb][o] for o in owners) == best - 1:
                    gws.append(ln.address(nb))
            routes[prefix] = sorted(gws, key=lambda a: ipaddress.ip_address(a))
        return routes

    def _distances(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for src in self.nodes:
            seen = {src: 0}
            todo = deque([src])
            while todo:
                n = todo.popleft()
                for ln in self.links_of(n):
                    p = ln.peer(n)
                    if p not in seen:
                        seen[p] = seen[n] + 1
                        todo.append(p)
            out[src] = seen
        return out


DEFAULT = Topology(
    nodes=("v1", "r1", "ra", "rb", "r3", "v2"),
    links=(
        Link("v1", "r1", "198.51.100.0/30"),
        Link("r1", "ra", "198.51.100.4/30"),
        Link("r1", "rb", "198.51.100.8/30", mtu=1400),
        Link("ra", "r3", "198.51.100.12/30"),
        Link("rb", "r3", "198.51.100.16/30", mtu=1400),
        Link("r3", "v2", "198.51.100.20/30"),
    ),
    vteps=(
        Vtep("v1", "192.0.2.1", "203.0.113.1", "02:00:c0:00:02:01"),
        Vtep("v2", "192.0.2.2", "203.0.113.2", "02:00:c0:00:02:02"),
    ),
    routers=("r1", "ra", "rb", "r3"),
)

#: the router whose forward (v1 → v2) links lose packets with ``--loss``
LOSSY_ROUTER = "rb"
