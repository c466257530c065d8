"""VXLAN-GPE: flags, next protocols (IPv4, IPv6, Ethernet, NSH), VNI, reserved bits."""

from __future__ import annotations

import struct

from scapy.layers.inet import IP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether
from scapy.packet import Raw

from ipsotrace.dissectors import vxlan_gpe
from ipsotrace.dissectors.base import Next
from ipsotrace.dissectors.registry import DissectConfig, dissect_frame
from ipsotrace.records import Anomaly, Packet

ETH = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
OUTER = IP(src="192.0.2.1", dst="192.0.2.2")
INNER4 = IP(src="203.0.113.1", dst="203.0.113.2") / UDP(sport=1, dport=2)


class _Ctx:
    snaplen_cut = False
    partial = False


def _decode(gpe: bytes) -> Packet:
    return dissect_frame(bytes(ETH / OUTER / UDP(sport=50000, dport=4790) / Raw(gpe)), 1, DissectConfig())


def _gpe(flags: int, next_proto: int, vni: int, reserved: int = 0, last: int = 0) -> bytes:
    return struct.pack("!BHBI", flags, reserved, next_proto, vni << 8 | last)


def test_ipv4_payload_every_field() -> None:
    pkt = _decode(_gpe(0x0C, 1, 0xABCDEF) + bytes(INNER4))
    assert [(x.proto, x.depth) for x in pkt.layers] == [
        ("eth", 0),
        ("ipv4", 0),
        ("udp", 0),
        ("vxlan-gpe", 0),
        ("ipv4", 1),
        ("udp", 1),
    ]
    ly = pkt.layers[3]
    assert (ly.offset, ly.length) == (42, 8)
    assert ly.fields == {
        "tunnel_id": 0xABCDEF,
        "vni": 0xABCDEF,
        "flags": 0x0C,
        "version": 0,
        "i_flag": True,
        "p_flag": True,
        "bum": False,
        "oam": False,
        "next_protocol": 1,
    }
    assert pkt.anomalies == []


def test_next_protocols() -> None:
    six = bytes(IPv6(src="2001:db8::1", dst="2001:db8::2") / UDP(sport=1, dport=2))
    eth = bytes(Ether(src="02:00:00:00:01:01", dst="02:00:00:00:01:02") / INNER4)
    assert [x.proto for x in _decode(_gpe(0x0C, 2, 1) + six).layers][3:] == ["vxlan-gpe", "ipv6", "udp"]
    assert [x.proto for x in _decode(_gpe(0x0C, 3, 1) + eth).layers][3:] == ["vxlan-gpe", "eth", "ipv4", "udp"]
    # P bit clear: plain VXLAN semantics, Ethernet follows whatever the next protocol byte says
    assert [x.proto for x in _decode(_gpe(0x08, 0, 1) + eth).layers][3:] == ["vxlan-gpe", "eth", "ipv4", "udp"]
    # the next protocol is looked up in the registry's NSH table: an unknown one ends the stack
    got = vxlan_gpe.dissect(_gpe(0x0C, 0x7E, 1), 0, 8, _Ctx())
    assert not isinstance(got, Anomaly) and got.next == Next("nsh", 0x7E)
    assert [x.proto for x in _decode(_gpe(0x0C, 0x7E, 1) + eth).layers][3:] == ["vxlan-gpe"]


def test_flags_reserved_and_truncation() -> None:
    got = vxlan_gpe.dissect(_gpe(0xC7 & ~0x08, 1, 3, reserved=1, last=2), 0, 8, _Ctx())
    assert not isinstance(got, Anomaly)
    assert (got.fields["bum"], got.fields["oam"], got.fields["i_flag"]) == (True, True, False)
    assert got.fields["reserved_nonzero"] is True
    assert [a.kind for a in got.anomalies] == ["vxlan-gpe.i-flag-unset", "vxlan-gpe.reserved-set"]
    for cut in range(8):
        bad = vxlan_gpe.dissect(_gpe(0x0C, 1, 3), 0, cut, _Ctx())
        assert isinstance(bad, Anomaly) and bad.kind == "vxlan-gpe.truncated"
