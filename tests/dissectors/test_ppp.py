"""PPP in GRE: with and without address/control, one- and two-byte protocol fields."""

from __future__ import annotations

from scapy.layers.inet import IP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import GRE, Ether
from scapy.packet import Raw

from ipsotrace.dissectors import ppp
from ipsotrace.dissectors.registry import DissectConfig, dissect_frame
from ipsotrace.records import Anomaly, Packet

ETH = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
OUTER = IP(src="192.0.2.1", dst="192.0.2.2")
INNER = IP(src="203.0.113.1", dst="203.0.113.2") / UDP(sport=1, dport=2)


class _Ctx:
    snaplen_cut = False
    partial = False


def _in_gre(ppp_header: bytes, inner: bytes) -> Packet:
    return dissect_frame(bytes(ETH / OUTER / GRE(proto=0x880B) / Raw(ppp_header + inner)), 1, DissectConfig())


def test_two_byte_protocol_without_address_control() -> None:
    pkt = _in_gre(b"\x00\x21", bytes(INNER))
    assert [(ly.proto, ly.depth) for ly in pkt.layers] == [
        ("eth", 0), ("ipv4", 0), ("gre", 0), ("ppp", 1), ("ipv4", 1), ("udp", 1),
    ]  # fmt: skip
    ly = pkt.layers[3]
    assert (ly.offset, ly.length) == (38, 2)
    assert ly.fields == {"protocol": 0x0021, "address_control": False}
    assert pkt.anomalies == []


def test_address_control_and_ipv6() -> None:
    pkt = _in_gre(b"\xff\x03\x00\x57", bytes(IPv6(src="2001:db8::1", dst="2001:db8::2") / UDP()))
    ly = pkt.layers[3]
    assert (ly.length, ly.fields) == (4, {"protocol": 0x0057, "address_control": True})
    assert [x.proto for x in pkt.layers[4:]] == ["ipv6", "udp"]


def test_compressed_protocol_field() -> None:
    pkt = _in_gre(b"\x21", bytes(INNER))
    ly = pkt.layers[3]
    assert (ly.length, ly.fields) == (1, {"protocol": 0x21, "address_control": False})
    # 0x21 compressed is the same protocol number as 0x0021
    assert pkt.layers[4].proto == "ipv4"


def test_mpls_over_ppp() -> None:
    pkt = _in_gre(b"\x02\x81", bytes.fromhex("0000a1ff") + bytes(INNER))
    assert [ly.proto for ly in pkt.layers[3:]] == ["ppp", "mpls", "ipv4", "udp"]
    assert pkt.layers[4].fields["label"] == 10


def test_unknown_and_even_protocol() -> None:
    pkt = _in_gre(b"\xc0\x21", b"\x01\x01\x00\x04")  # LCP: not decoded further
    assert pkt.layers[-1].proto == "ppp" and pkt.anomalies == []
    res = ppp.dissect(b"\x00\x20\x00", 0, 3, _Ctx())
    assert not isinstance(res, Anomaly)
    assert [a.kind for a in res.anomalies] == ["ppp.bad-protocol"]


def test_truncated() -> None:
    for data in (b"", b"\xff\x03", b"\xff\x03\x00", b"\x00"):
        res = ppp.dissect(data, 0, len(data), _Ctx())
        assert isinstance(res, Anomaly) and res.kind == "ppp.truncated", data
