"""802.1Q and QinQ (802.1ad outer S-tag + 802.1Q inner C-tag)."""

from __future__ import annotations

from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Dot1AD, Dot1Q, Ether

from ipsotrace.dissectors.registry import DissectConfig, dissect_frame


def test_single_8021q_tag() -> None:
    frame = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / Dot1Q(vlan=100, prio=5, id=1)
    frame /= IP(src="192.0.2.1", dst="192.0.2.2") / UDP(sport=4000, dport=53)
    pkt = dissect_frame(bytes(frame), 1, DissectConfig())
    assert [x.proto for x in pkt.layers] == ["eth", "vlan", "ipv4", "udp"]
    assert pkt.layers[0].fields["type"] == 0x8100
    vlan = pkt.layers[1]
    assert (vlan.offset, vlan.length, vlan.parent, vlan.depth) == (14, 4, 0, 0)
    assert vlan.fields == {"vid": 100, "pcp": 5, "dei": 1, "type": 0x0800}
    assert pkt.layers[2].offset == 18
    assert pkt.anomalies == []


def test_qinq_8021ad_outer_8021q_inner() -> None:
    frame = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / Dot1AD(vlan=300, prio=3)
    frame /= Dot1Q(vlan=42, prio=0) / IP(src="192.0.2.1", dst="192.0.2.2") / UDP(sport=1, dport=2)
    pkt = dissect_frame(bytes(frame), 1, DissectConfig())
    assert [x.proto for x in pkt.layers] == ["eth", "vlan", "vlan", "ipv4", "udp"]
    assert pkt.layers[0].fields["type"] == 0x88A8
    assert pkt.layers[1].fields == {"vid": 300, "pcp": 3, "dei": 0, "type": 0x8100}
    assert pkt.layers[2].fields == {"vid": 42, "pcp": 0, "dei": 0, "type": 0x0800}
    assert [x.offset for x in pkt.layers] == [0, 14, 18, 22, 42]
    assert [x.parent for x in pkt.layers] == [None, 0, 1, 2, 3]


def test_vlan_with_length_field_stops() -> None:
    frame = bytes(Ether(dst="02:00:00:00:00:02", src="02:00:00:00:00:01", type=0x8100)) + bytes.fromhex("0064002e")
    pkt = dissect_frame(frame + b"\0" * 46, 1, DissectConfig())
    assert [x.proto for x in pkt.layers] == ["eth", "vlan"]
    assert pkt.layers[1].fields == {"vid": 100, "pcp": 0, "dei": 0, "type": 46}


def test_truncated_tag() -> None:
    frame = bytes(Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / Dot1Q(vlan=7))[:16]
    pkt = dissect_frame(frame, 1, DissectConfig())
    assert [x.proto for x in pkt.layers] == ["eth"]
    assert [a.kind for a in pkt.anomalies] == ["vlan.truncated"]
