"""Scapy-built encapsulation stacks with the fields each layer was built with, outermost first.

Shared by the property tests and the registry invariants: a stack is built from a list of
steps (link, network, tunnel, … , transport) and remembers what it put in every header, so
a decode can be checked against the intent rather than against our own output.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from scapy.contrib.erspan import ERSPAN_II
from scapy.contrib.geneve import GENEVE
from scapy.contrib.gtp import GTP_U_Header
from scapy.contrib.mpls import MPLS
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import GRE, Dot1AD, Dot1Q, Ether
from scapy.layers.vxlan import VXLAN
from scapy.packet import Packet as ScapyPacket
from scapy.packet import Raw

from ipsotrace.dissectors.registry import MAX_DEPTH, MAX_LAYERS
from ipsotrace.records import RESERVED_KEYS, Packet

#: protocols whose identifying fields the checks compare, and those fields
COMPARED: dict[str, tuple[str, ...]] = {
    "vlan": ("vid",),
    "ipv4": ("src", "dst"),
    "ipv6": ("src", "dst"),
    "udp": ("sport", "dport"),
    "tcp": ("sport", "dport"),
    "vxlan": ("vni",),
    "geneve": ("vni",),
    "gre": ("key",),
    "erspan": ("span_id",),
    "gtpu": ("teid",),
    "mpls": ("label",),
}

#: tunnels and what they carry: "l2" (Ethernet), "ip" (IPv4/IPv6), "mpls-ip"
TUNNELS: dict[str, str] = {
    "vxlan": "l2",
    "geneve": "l2",
    "gre": "ip",
    "nvgre": "l2",
    "erspan": "l2",
    "gtpu": "ip",
    "mpls-udp": "ip",
    "ipip": "ip",
}

#: registry protocols a tunnel step needs before the test can expect it to be decoded
NEEDS: dict[str, tuple[str, ...]] = {
    "vxlan": ("vxlan",),
    "geneve": ("geneve",),
    "gre": ("gre",),
    "nvgre": ("gre",),
    "erspan": ("gre", "erspan"),
    "gtpu": ("gtpu",),
    "mpls-udp": ("mpls",),
    "mpls-eth": ("mpls",),
    "ipip": (),
    "qinq": ("vlan",),
    "dot1q": ("vlan",),
}


@dataclass
class Built:
    """A scapy packet and the identifying fields of every header, outermost first."""

    pkt: ScapyPacket
    expect: list[tuple[str, dict[str, object]]] = field(default_factory=list)

    def raw(self) -> bytes:
        return bytes(self.pkt)


def projection(pkt: Packet, *, quoted: bool = False) -> list[tuple[str, dict[str, object]]]:
    """The decoded stack reduced to the compared protocols and fields."""
    out: list[tuple[str, dict[str, object]]] = []
    for ly in pkt.layers:
        if ly.proto in COMPARED and ly.quoted == quoted:
            out.append((ly.proto, {k: _canon(ly.fields.get(k)) for k in COMPARED[ly.proto]}))
    return out


def _canon(v: object) -> object:
    """Addresses compared as addresses: inet_ntop and ipaddress may spell one differently."""
    if isinstance(v, str) and (":" in v or "." in v):
        try:
            return str(ipaddress.ip_address(v))
        except ValueError:
            return v
    return v


def _stack(base: ScapyPacket | None, layer: ScapyPacket) -> ScapyPacket:
    return layer if base is None else base / layer


class Builder:
    """Append headers one by one, recording the fields a decoder must find."""

    def __init__(self) -> None:
        self.pkt: ScapyPacket | None = None
        self.expect: list[tuple[str, dict[str, object]]] = []

    def add(self, layer: ScapyPacket, proto: str | None = None, **fields: object) -> Builder:
        self.pkt = _stack(self.pkt, layer)
        if proto is not None:
            self.expect.append((proto, fields))
        return self

    def ether(self, ethertype: int | None = None) -> Builder:
        eth = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
        if ethertype is not None:
            eth.type = ethertype
        return self.add(eth)

    def vlan(self, vid: int, outer: bool = False) -> Builder:
        return self.add((Dot1AD if outer else Dot1Q)(vlan=vid), "vlan", vid=vid)

    def ip(self, src: str, dst: str) -> Builder:
        s, d = _canon(src), _canon(dst)
        if ":" in src:
            return self.add(IPv6(src=src, dst=dst), "ipv6", src=s, dst=d)
        return self.add(IP(src=src, dst=dst), "ipv4", src=s, dst=d)

    def udp(self, sport: int, dport: int) -> Builder:
        return self.add(UDP(sport=sport, dport=dport), "udp", sport=sport, dport=dport)

    def tcp(self, sport: int, dport: int) -> Builder:
        return self.add(TCP(sport=sport, dport=dport, flags="S"), "tcp", sport=sport, dport=dport)

    def vxlan(self, vni: int) -> Builder:
        return self.add(VXLAN(flags=0x08, vni=vni), "vxlan", vni=vni)

    def geneve(self, vni: int, proto: int = 0x6558) -> Builder:
        return self.add(GENEVE(vni=vni, proto=proto), "geneve", vni=vni)

    def gre(self, key: int, proto: int) -> Builder:
        return self.add(GRE(key_present=1, key=key, proto=proto), "gre", key=key)

    def erspan(self, span_id: int, seq: int = 1) -> Builder:
        self.add(GRE(seqnum_present=1, seqence_number=seq, proto=0x88BE), "gre", key=None)
        return self.add(ERSPAN_II(session_id=span_id), "erspan", span_id=span_id)

    def gtpu(self, teid: int) -> Builder:
        return self.add(GTP_U_Header(teid=teid, gtp_type=255), "gtpu", teid=teid)

    def mpls(self, labels: Sequence[int]) -> Builder:
        for i, label in enumerate(labels):
            self.add(MPLS(label=label, s=int(i == len(labels) - 1), ttl=64), "mpls", label=label)
        return self

    def payload(self, data: bytes = b"") -> Built:
        assert self.pkt is not None
        pkt = self.pkt / Raw(data) if data else self.pkt
        return Built(pkt, self.expect)


ANOMALY_KIND = re.compile(r"^[a-z0-9][a-z0-9-]*\.[a-z0-9][a-z0-9-]*$")


def check_invariants(pkt: Packet, max_depth: int = MAX_DEPTH) -> None:
    """What every decoded packet must satisfy, whatever the input bytes."""
    assert len(pkt.layers) <= MAX_LAYERS
    # layers of a reassembled datagram index the frame's headers followed by the reassembled payload
    limit = pkt.caplen + sum(int(ly.fields.get("reassembled_length", 0)) for ly in pkt.layers)
    prev_off, prev_depth, quoted = 0, 0, False
    for i, ly in enumerate(pkt.layers):
        assert ly.parent == (i - 1 if i else None), f"layer {i} {ly.proto}: parent {ly.parent}"
        assert ly.offset >= prev_off, f"layer {i} {ly.proto} goes backwards"
        assert ly.length >= 0 and ly.offset + ly.length <= (limit if ly.reassembled else pkt.caplen), (
            f"layer {i} {ly.proto} runs past the frame"
        )
        assert ly.reassembled or not any(x.reassembled for x in pkt.layers[:i]), "a layer after reassembly is not"
        assert prev_depth <= ly.depth <= prev_depth + 1 and ly.depth <= max_depth
        assert ly.quoted or not quoted, "a layer after a quote is not quoted"
        reserved = RESERVED_KEYS & ly.fields.keys()
        assert not reserved, f"{ly.proto} uses reserved field names {sorted(reserved)}"
        prev_off, prev_depth, quoted = ly.offset, ly.depth, ly.quoted
    for a in pkt.anomalies:
        assert ANOMALY_KIND.match(a.kind), a.kind
        assert 0 <= a.offset <= max(limit, 0), a
    json.dumps(pkt.to_json(), allow_nan=False)
