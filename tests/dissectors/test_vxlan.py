"""VXLAN (RFC 7348) and its GBP extension: fields, I flag and reserved-bit anomalies, depth."""

from __future__ import annotations

import pytest
from scapy.layers.inet import IP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether
from scapy.layers.vxlan import VXLAN
from scapy.packet import Raw

from ipsotrace.dissectors.registry import DissectConfig, dissect_frame
from ipsotrace.records import Packet

OUTER = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / IP(src="192.0.2.1", dst="192.0.2.2")
INNER = Ether(src="02:00:00:00:01:01", dst="02:00:00:00:01:02") / IP(src="203.0.113.10", dst="203.0.113.20")


def _decode(vx: bytes, dport: int = 4789) -> Packet:
    raw = bytes(OUTER / UDP(sport=50123, dport=dport) / Raw(vx + bytes(INNER / UDP(sport=1, dport=2))))
    return dissect_frame(raw, 1, DissectConfig())


def test_plain_vxlan() -> None:
    pkt = _decode(bytes(VXLAN(flags=0x08, vni=0xABCDEF)))
    assert [(x.proto, x.depth, x.parent) for x in pkt.layers] == [
        ("eth", 0, None),
        ("ipv4", 0, 0),
        ("udp", 0, 1),
        ("vxlan", 0, 2),
        ("eth", 1, 3),
        ("ipv4", 1, 4),
        ("udp", 1, 5),
    ]
    vx = pkt.layers[3]
    assert (vx.offset, vx.length) == (42, 8)
    assert vx.fields == {"tunnel_id": 0xABCDEF, "vni": 0xABCDEF, "flags": 0x08, "i_flag": True}
    assert pkt.layers[5].fields["src"] == "203.0.113.10"
    assert pkt.anomalies == []


def test_port_8472_and_ipv6_underlay() -> None:
    assert _decode(bytes(VXLAN(flags=0x08, vni=5)), dport=8472).layers[3].fields["vni"] == 5
    raw = bytes(
        Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
        / IPv6(src="2001:db8::1", dst="2001:db8::2")
        / UDP(sport=1, dport=4789)
        / VXLAN(flags=0x08, vni=77)
        / INNER
    )
    pkt = dissect_frame(raw, 1, DissectConfig())
    assert [x.proto for x in pkt.layers] == ["eth", "ipv6", "udp", "vxlan", "eth", "ipv4"]
    assert pkt.layers[3].fields["vni"] == 77


def test_gbp_flags() -> None:
    raw = bytes(VXLAN(flags="G+Instance", gpflags="D+A", gpid=0x1234, vni=300))
    assert raw.hex() == "8848123400012c00"
    pkt = _decode(raw)
    assert pkt.layers[3].fields == {
        "tunnel_id": 300,
        "vni": 300,
        "flags": 0x88,
        "i_flag": True,
        "gbp": {"dont_learn": True, "policy_applied": True, "group_policy_id": 0x1234},
    }
    assert pkt.anomalies == []
    f = _decode(bytes(VXLAN(flags="G+Instance", gpflags=0, gpid=7, vni=1))).layers[3].fields
    assert f["gbp"] == {"dont_learn": False, "policy_applied": False, "group_policy_id": 7}


def test_gbp_reserved_flag_bits() -> None:
    pkt = _decode(bytes.fromhex("8801123400012c00"))
    assert [a.kind for a in pkt.anomalies] == ["vxlan.reserved-set"]
    assert pkt.layers[3].fields["reserved_nonzero"] is True


def test_i_flag_unset() -> None:
    pkt = _decode(bytes.fromhex("0000000000006400"))
    assert [a.kind for a in pkt.anomalies] == ["vxlan.i-flag-unset"]
    assert pkt.layers[3].fields["i_flag"] is False
    assert pkt.layers[3].fields["vni"] == 100
    assert pkt.layers[4].proto == "eth"  # like the kernel and tshark, still decoded


@pytest.mark.parametrize(
    "header", ["0c00000000006400", "0800000100006400", "0800000000006401", "0801000000006400", "0800ff0000006400"]
)
def test_reserved_bits_set(header: str) -> None:
    pkt = _decode(bytes.fromhex(header))
    assert [a.kind for a in pkt.anomalies] == ["vxlan.reserved-set"]
    assert pkt.layers[3].fields["reserved_nonzero"] is True
    assert pkt.layers[3].fields["vni"] == 100


def test_truncated_header() -> None:
    raw = bytes(OUTER / UDP(sport=1, dport=4789) / Raw(bytes.fromhex("08000000")))
    pkt = dissect_frame(raw, 1, DissectConfig())
    assert [x.proto for x in pkt.layers] == ["eth", "ipv4", "udp"]
    assert [a.kind for a in pkt.anomalies] == ["vxlan.truncated"]
