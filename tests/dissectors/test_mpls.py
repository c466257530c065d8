"""MPLS label stacks (Ethernet, MPLS-in-IP, MPLS-in-UDP, MPLS-in-GRE) and the pseudowire control word."""

from __future__ import annotations

import struct

from scapy.contrib.mpls import MPLS
from scapy.layers.inet import IP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import GRE, Ether
from scapy.packet import Packet as ScapyPacket
from scapy.packet import Raw

from ipsotrace.dissectors import mpls
from ipsotrace.dissectors.registry import DissectConfig, dissect_frame
from ipsotrace.records import Anomaly, Packet

ETH = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
OUTER = IP(src="192.0.2.1", dst="192.0.2.2")
INNER = IP(src="203.0.113.1", dst="203.0.113.2") / UDP(sport=1, dport=2)


class _Ctx:
    snaplen_cut = False
    partial = False


def _decode(p: ScapyPacket | bytes) -> Packet:
    return dissect_frame(bytes(p), 1, DissectConfig())


def _protos(pkt: Packet) -> list[tuple[str, int]]:
    return [(ly.proto, ly.depth) for ly in pkt.layers]


def test_two_label_stack_over_ethernet() -> None:
    frame = ETH / MPLS(label=16000, cos=5, s=0, ttl=64) / MPLS(label=1048575, cos=0, s=1, ttl=1) / INNER
    pkt = _decode(frame)
    assert _protos(pkt) == [("eth", 0), ("mpls", 0), ("mpls", 0), ("ipv4", 1), ("udp", 1)]
    top, bottom = pkt.layers[1], pkt.layers[2]
    assert (top.offset, top.length, bottom.offset, bottom.length) == (14, 4, 18, 4)
    assert top.fields == {"label": 16000, "tc": 5, "s": 0, "ttl": 64, "tunnel_id": 16000}
    assert bottom.fields == {"label": 1048575, "tc": 0, "s": 1, "ttl": 1, "tunnel_id": 1048575, "payload": "ipv4"}
    assert pkt.anomalies == []


def test_ipv6_payload_and_special_label() -> None:
    frame = ETH / MPLS(label=2, s=1, ttl=9) / IPv6(src="2001:db8::1", dst="2001:db8::2") / UDP()
    pkt = _decode(frame)
    assert [ly.proto for ly in pkt.layers] == ["eth", "mpls", "ipv6", "udp"]
    assert pkt.layers[1].fields == {
        "label": 2,
        "tc": 0,
        "s": 1,
        "ttl": 9,
        "tunnel_id": 2,
        "special": "ipv6-explicit-null",
        "payload": "ipv6",
    }


def test_pseudowire_control_word_then_ethernet() -> None:
    cw = struct.pack("!I", (0x3 << 24) | (0x1 << 22) | (0x2A << 16) | 0xBEEF)
    customer = Ether(src="02:00:00:00:00:0a", dst="02:00:00:00:00:0b") / INNER
    pkt = _decode(ETH / MPLS(label=100, s=1) / Raw(cw) / customer)
    assert _protos(pkt) == [("eth", 0), ("mpls", 0), ("pwcw", 1), ("eth", 1), ("ipv4", 1), ("udp", 1)]
    assert pkt.layers[1].fields["payload"] == "pwcw"
    assert pkt.layers[2].fields == {"flags": 3, "frg": 1, "cw_length": 0x2A, "seq": 0xBEEF}
    assert pkt.layers[3].fields["src"] == "02:00:00:00:00:0a"


def test_unknown_payload_stops() -> None:
    pkt = _decode(ETH / MPLS(label=100, s=1) / Raw(b"\x1f" + b"\x00" * 20))
    assert [ly.proto for ly in pkt.layers] == ["eth", "mpls"]
    assert pkt.layers[1].fields["payload"] == "unknown"
    assert pkt.anomalies == []


def test_mpls_in_ip_udp_and_gre() -> None:
    in_ip = _decode(ETH / IP(src="192.0.2.1", dst="192.0.2.2", proto=137) / MPLS(label=7, s=1) / INNER)
    assert _protos(in_ip) == [("eth", 0), ("ipv4", 0), ("mpls", 0), ("ipv4", 1), ("udp", 1)]
    in_udp = _decode(ETH / OUTER / UDP(sport=49152, dport=6635) / MPLS(label=21, s=1) / INNER)
    assert _protos(in_udp) == [("eth", 0), ("ipv4", 0), ("udp", 0), ("mpls", 0), ("ipv4", 1), ("udp", 1)]
    in_gre = _decode(ETH / OUTER / GRE(proto=0x8847) / MPLS(label=8, s=1) / INNER)
    assert [ly.proto for ly in in_gre.layers] == ["eth", "ipv4", "gre", "mpls", "ipv4", "udp"]
    assert in_gre.layers[3].fields["label"] == 8


def test_truncated_entry_and_control_word() -> None:
    res = mpls.dissect(b"\x00\x01\x41", 0, 3, _Ctx())
    assert isinstance(res, Anomaly) and res.kind == "mpls.truncated"
    res = mpls.dissect_control_word(b"\x00\x00", 0, 2, _Ctx())
    assert isinstance(res, Anomaly) and res.kind == "pwcw.truncated"
    res = mpls.dissect_control_word(b"\x10\x00\x00\x00", 0, 4, _Ctx())
    assert isinstance(res, Anomaly) and res.kind == "pwcw.malformed"


def test_bottom_label_at_end_of_frame() -> None:
    pkt = _decode(ETH / MPLS(label=5, s=1))
    assert [ly.proto for ly in pkt.layers] == ["eth", "mpls"]
    assert pkt.layers[1].fields["payload"] == "unknown"


def test_endless_stack_is_bounded() -> None:
    frame = bytes(ETH) [:12] + b"\x88\x47" + struct.pack("!I", 16 << 12 | 64) * 200  # fmt: skip
    pkt = _decode(frame)
    assert 0 < len(pkt.layers) <= 64
    for cut in range(len(frame[:40])):
        dissect_frame(frame[:cut], 1, DissectConfig())
