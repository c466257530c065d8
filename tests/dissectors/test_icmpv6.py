"""ICMPv6: packet too big with the quoted outer VXLAN packet, echo, NDP, MLD, RFC 4884 length."""

from __future__ import annotations

from scapy.layers.inet import IP, UDP
from scapy.layers.inet6 import (
    ICMPv6DestUnreach,
    ICMPv6EchoReply,
    ICMPv6EchoRequest,
    ICMPv6MLQuery,
    ICMPv6ND_NA,
    ICMPv6ND_NS,
    ICMPv6ND_Redirect,
    ICMPv6ND_RS,
    ICMPv6NDOptSrcLLAddr,
    ICMPv6PacketTooBig,
    ICMPv6ParamProblem,
    ICMPv6TimeExceeded,
    IPv6,
)
from scapy.layers.l2 import Ether
from scapy.layers.vxlan import VXLAN
from scapy.packet import Raw

from ipsotrace.dissectors.registry import DissectConfig, dissect_frame
from ipsotrace.records import Packet

ETH = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
ROUTER = IPv6(src="2001:db8:ff::1", dst="2001:db8::1")


def _decode(data: bytes) -> Packet:
    return dissect_frame(data, 1, DissectConfig())


def _csum(raw: bytes, off: int) -> int:
    return int.from_bytes(raw[off + 2 : off + 4], "big")


def _vxlan6() -> IPv6:
    inner = Ether(src="02:00:00:00:01:01", dst="02:00:00:00:01:02") / IP(src="203.0.113.10", dst="203.0.113.20")
    inner /= UDP(sport=1111, dport=2222) / Raw(b"v" * 1400)
    return IPv6(src="2001:db8::1", dst="2001:db8::2") / UDP(sport=52000, dport=4789) / VXLAN(flags=8, vni=200) / inner


def test_packet_too_big_with_quote() -> None:
    quote = bytes(_vxlan6())[:1232]
    raw = bytes(ETH / ROUTER / ICMPv6PacketTooBig(mtu=1280) / Raw(quote))
    pkt = _decode(raw)
    assert [(x.proto, x.quoted) for x in pkt.layers] == [
        ("eth", False),
        ("ipv6", False),
        ("icmpv6", False),
        ("ipv6", True),
        ("udp", True),
        ("vxlan", True),
        ("eth", True),
        ("ipv4", True),
        ("udp", True),
    ]
    assert pkt.layers[2].fields == {
        "type": 2,
        "code": 0,
        "checksum": _csum(raw, 54),
        "kind": "packet-too-big",
        "mtu": 1280,
    }
    assert pkt.layers[3].fields["src"] == "2001:db8::1"
    assert pkt.layers[4].fields["sport"] == 52000
    assert pkt.layers[5].fields["vni"] == 200
    assert pkt.layers[7].fields["dst"] == "203.0.113.20"
    assert pkt.anomalies == []


def test_time_exceeded_and_rfc4884_length() -> None:
    quote = bytes(_vxlan6())[:128]
    raw = bytes(ETH / ROUTER / ICMPv6TimeExceeded(code=0, length=16) / Raw(quote + b"\x20\0\0\0" + b"\0" * 8))
    pkt = _decode(raw)
    f = pkt.layers[2].fields
    assert (f["kind"], f["quote_length"]) == ("time-exceeded", 128)
    assert [x.proto for x in pkt.layers][3:] == ["ipv6", "udp", "vxlan", "eth", "ipv4", "udp"]
    assert all(x.offset + x.length <= 14 + 40 + 8 + 128 for x in pkt.layers)


def test_dest_unreachable_parameter_problem() -> None:
    quote = bytes(_vxlan6())[:100]
    f = _decode(bytes(ETH / ROUTER / ICMPv6DestUnreach(code=4) / Raw(quote))).layers[2].fields
    assert (f["kind"], f["code"]) == ("dest-unreachable", 4)
    pkt = _decode(bytes(ETH / ROUTER / ICMPv6ParamProblem(code=0, ptr=40) / Raw(quote)))
    assert (pkt.layers[2].fields["kind"], pkt.layers[2].fields["pointer"]) == ("parameter-problem", 40)
    assert pkt.layers[3].quoted


def test_echo() -> None:
    raw = bytes(ETH / ROUTER / ICMPv6EchoRequest(id=0xABCD, seq=3, data=b"hi"))
    pkt = _decode(raw)
    assert pkt.layers[2].fields == {
        "type": 128,
        "code": 0,
        "checksum": _csum(raw, 54),
        "kind": "echo-request",
        "id": 0xABCD,
        "seq": 3,
    }
    assert _decode(bytes(ETH / ROUTER / ICMPv6EchoReply(id=1, seq=2))).layers[2].fields["kind"] == "echo-reply"


def test_neighbor_discovery() -> None:
    ns = ICMPv6ND_NS(tgt="2001:db8::2") / ICMPv6NDOptSrcLLAddr(lladdr="02:00:00:00:00:01")
    raw = bytes(ETH / IPv6(src="2001:db8::1", dst="ff02::1:ff00:2") / ns)
    assert _decode(raw).layers[2].fields == {
        "type": 135,
        "code": 0,
        "checksum": _csum(raw, 54),
        "kind": "neighbor-solicitation",
        "target": "2001:db8::2",
    }
    raw = bytes(ETH / IPv6(src="2001:db8::2", dst="2001:db8::1") / ICMPv6ND_NA(tgt="2001:db8::2", R=0, S=1, O=1))
    f = _decode(raw).layers[2].fields
    assert (f["kind"], f["target"], f["router"], f["solicited"], f["override"]) == (
        "neighbor-advertisement",
        "2001:db8::2",
        False,
        True,
        True,
    )
    raw = bytes(ETH / ROUTER / ICMPv6ND_Redirect(tgt="fe80::1", dst="2001:db8:9::9"))
    f = _decode(raw).layers[2].fields
    assert (f["kind"], f["target"], f["destination"]) == ("redirect", "fe80::1", "2001:db8:9::9")
    f = _decode(bytes(ETH / IPv6(src="fe80::2", dst="ff02::2") / ICMPv6ND_RS())).layers[2].fields
    assert f["kind"] == "router-solicitation"
    f = _decode(bytes(ETH / IPv6(src="fe80::2", dst="ff02::1") / ICMPv6MLQuery())).layers[2].fields
    assert f["kind"] == "mld-query"


def test_truncated() -> None:
    pkt = _decode(bytes(ETH / IPv6(src="2001:db8::1", dst="2001:db8::2", nh=58) / Raw(b"\x80\x00")))
    assert [a.kind for a in pkt.anomalies] == ["icmpv6.truncated"]
