"""Plain data shared by the probe engine, its algorithms and its networks (no I/O here)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: JSON schema versions of the probe commands (docs/probes.md)
TRACE_SCHEMA = "ipsotrace.trace/1"
PMTU_SCHEMA = "ipsotrace.pmtu/1"
PING_SCHEMA = "ipsotrace.ping/1"


@dataclass(frozen=True, slots=True)
class Strategy:
    """Which header fields identify a probe and which stay fixed (Trippy's strategies, as data).

    Paris/Dublin style: the outer 5-tuple is fixed per flow, so every router hashes
    a flow's probes onto the same ECMP next hop; the flow is chosen by the outer UDP
    source port; probes are told apart by fields no router hashes on.
    """

    name: str = "dublin-vxlan"
    #: fields that carry the probe ID (matched in the ICMP quote or the inner reply)
    id_fields: tuple[str, ...] = ("outer.ipv4.id", "inner.icmp.seq")
    #: fields that select the ECMP path and stay constant for one flow
    flow_fields: tuple[str, ...] = ("outer.ipv4.src", "outer.ipv4.dst", "outer.udp.sport", "outer.udp.dport")
    #: the field varied to enumerate paths
    flow_selector: str = "outer.udp.sport"


DUBLIN_VXLAN = Strategy()


@dataclass(frozen=True, slots=True)
class OverlayTarget:
    """Where probes go: the far VTEP (outer) and the host behind it (inner)."""

    local: str  # outer source: our VTEP address
    vtep: str  # outer destination: the far VTEP
    vni: int
    inner_src: str
    inner_dst: str
    inner_src_mac: str
    inner_dst_mac: str = "ff:ff:ff:ff:ff:ff"
    dport: int = 4789
    #: ICMP echo identifier of the inner probes (constant for a run)
    ident: int = 0x1950
    #: largest outer packet the local interface can send
    local_mtu: int = 1500


@dataclass(frozen=True, slots=True)
class ProbeRequest:
    """One probe an algorithm wants sent.  ``size`` is the outer IPv4 total length (0: smallest)."""

    sport: int
    ttl: int = 64
    size: int = 0
    df: bool = True
    timeout: float = 1.0
    kind: str = "echo"  # echo: inner ICMP echo request; arp: inner ARP request for inner_dst
    tag: Any = None  # opaque to the engine: the algorithm's own bookkeeping


#: outcome kinds
TIME_EXCEEDED = "time-exceeded"
REPLY = "reply"  # the inner host answered: the probe crossed the overlay
FRAG_NEEDED = "frag-needed"
UNREACHABLE = "unreachable"
TIMEOUT = "timeout"
LOCAL_ERROR = "local-error"  # the kernel refused to send it (EMSGSIZE…)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of one probe."""

    request: ProbeRequest
    probe_id: int
    kind: str
    sent_at: float
    rtt_ms: float | None = None
    address: str | None = None  # who answered: the router (outer ICMP source) or the inner host
    mtu: int | None = None  # next-hop MTU of a fragmentation-needed
    code: int | None = None
    #: what in the reply proves it answers this probe (quoted IP id, UDP sport, VNI, inner seq…)
    evidence: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Event:
    """Something the engine did, for front ends that show progress (sent / outcome)."""

    what: str  # "sent" | "outcome" | "note"
    probe_id: int = 0
    request: ProbeRequest | None = None
    outcome: Outcome | None = None
    text: str = ""
