"""ICMP: echo, time exceeded, fragmentation needed with the quoted outer VXLAN packet, RFC 4884/4950."""

from __future__ import annotations

import struct

from scapy.layers.inet import ICMP, IP, TCP, UDP, IPerror, UDPerror
from scapy.layers.l2 import Ether
from scapy.layers.vxlan import VXLAN
from scapy.packet import Raw

from ipsotrace.dissectors.registry import DissectConfig, dissect_frame
from ipsotrace.records import Packet

ETH = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
ROUTER = IP(src="198.51.100.1", dst="192.0.2.1")


def _decode(data: bytes) -> Packet:
    return dissect_frame(data, 1, DissectConfig())


def _vxlan_packet() -> IP:
    inner = Ether(src="02:00:00:00:01:01", dst="02:00:00:00:01:02")
    inner /= IP(src="203.0.113.10", dst="203.0.113.20") / TCP(sport=40000, dport=80, flags="PA") / Raw(b"d" * 1400)
    return (
        IP(src="192.0.2.1", dst="192.0.2.2", flags="DF")
        / UDP(sport=51000, dport=4789)
        / VXLAN(flags=8, vni=100)
        / inner
    )


def test_echo_request_and_reply() -> None:
    for itype, kind in ((8, "echo-request"), (0, "echo-reply")):
        raw = bytes(ETH / IP(src="192.0.2.1", dst="192.0.2.2") / ICMP(type=itype, id=0x1234, seq=7) / Raw(b"ping"))
        pkt = _decode(raw)
        ly = pkt.layers[2]
        assert (ly.proto, ly.offset, ly.length) == ("icmp", 34, 8)
        assert ly.fields == {
            "type": itype,
            "code": 0,
            "checksum": int.from_bytes(raw[36:38], "big"),
            "kind": kind,
            "id": 0x1234,
            "seq": 7,
        }
        assert len(pkt.layers) == 3 and pkt.anomalies == []


def test_frag_needed_quotes_outer_vxlan_headers() -> None:
    # A router quotes the first 576 bytes of the outer packet it could not forward.
    quote = bytes(_vxlan_packet())[:548]
    raw = bytes(ETH / ROUTER / ICMP(type=3, code=4, nexthopmtu=1400) / Raw(quote))
    pkt = _decode(raw)
    assert [(x.proto, x.quoted) for x in pkt.layers] == [
        ("eth", False),
        ("ipv4", False),
        ("icmp", False),
        ("ipv4", True),
        ("udp", True),
        ("vxlan", True),
        ("eth", True),
        ("ipv4", True),
        ("tcp", True),
    ]
    icmp = pkt.layers[2].fields
    assert icmp == {
        "type": 3,
        "code": 4,
        "checksum": int.from_bytes(raw[36:38], "big"),
        "kind": "frag-needed",
        "mtu": 1400,
    }
    q_ip, q_udp, q_vx = (pkt.layers[i].fields for i in (3, 4, 5))
    assert (q_ip["src"], q_ip["dst"], q_ip["df"], q_ip["total_length"]) == ("192.0.2.1", "192.0.2.2", True, 1490)
    assert (q_udp["sport"], q_udp["dport"]) == (51000, 4789)
    assert q_vx["vni"] == 100 and q_vx["tunnel_id"] == 100
    assert pkt.layers[7].fields["src"] == "203.0.113.10"
    # quoted tunnels do not deepen the stack: a quote describes another packet
    assert {x.depth for x in pkt.layers} == {0}
    # the quoted lengths exceed the quote: normal for an ICMP error, not an anomaly
    assert pkt.anomalies == []


def test_rfc792_eight_byte_quote() -> None:
    quote = bytes(_vxlan_packet())[:28]
    pkt = _decode(bytes(ETH / ROUTER / ICMP(type=3, code=4, nexthopmtu=1400) / Raw(quote)))
    assert [x.proto for x in pkt.layers] == ["eth", "ipv4", "icmp", "ipv4", "udp"]
    assert pkt.layers[4].fields["dport"] == 4789
    assert pkt.anomalies == []


def test_time_exceeded() -> None:
    probe = IPerror(src="192.0.2.1", dst="192.0.2.2", ttl=1) / UDPerror(sport=49152, dport=4789)
    raw = bytes(ETH / ROUTER / ICMP(type=11, code=0) / probe)
    pkt = _decode(raw)
    icmp = pkt.layers[2].fields
    assert icmp == {"type": 11, "code": 0, "checksum": int.from_bytes(raw[36:38], "big"), "kind": "time-exceeded"}
    assert pkt.layers[3].quoted and pkt.layers[3].fields["ttl"] == 1
    assert pkt.layers[4].fields["sport"] == 49152


def test_redirect_and_parameter_problem() -> None:
    quote = bytes(IPerror(src="192.0.2.1", dst="192.0.2.2") / UDPerror(sport=1, dport=2))
    f = _decode(bytes(ETH / ROUTER / ICMP(type=5, code=1, gw="198.51.100.254") / quote)).layers[2].fields
    assert (f["kind"], f["gateway"]) == ("redirect", "198.51.100.254")
    f = _decode(bytes(ETH / ROUTER / ICMP(type=12, code=0, ptr=9) / quote)).layers[2].fields
    assert (f["kind"], f["pointer"]) == ("parameter-problem", 9)


def test_no_recursion_into_a_quoted_error() -> None:
    inner_err = IPerror(src="192.0.2.2", dst="192.0.2.1") / ICMP(type=3, code=3) / IPerror(src="192.0.2.9")
    pkt = _decode(bytes(ETH / ROUTER / ICMP(type=3, code=1) / inner_err))
    assert [x.proto for x in pkt.layers] == ["eth", "ipv4", "icmp", "ipv4", "icmp"]


def _checksum(data: bytes) -> int:
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _mpls_extension(labels: list[tuple[int, int, int, int]]) -> bytes:
    obj = b"".join(struct.pack("!I", lbl << 12 | tc << 9 | s << 8 | ttl) for lbl, tc, s, ttl in labels)
    obj = struct.pack("!HBB", 4 + len(obj), 1, 1) + obj
    head = bytearray(b"\x20\x00\x00\x00" + obj)
    head[2:4] = struct.pack("!H", _checksum(bytes(head)))
    return bytes(head)


def test_rfc4884_length_and_mpls_label_stack() -> None:
    quote = bytes(_vxlan_packet())[:128]
    ext = _mpls_extension([(16001, 0, 0, 1), (24005, 5, 1, 1)])
    icmp = ICMP(type=11, code=0, length=len(quote) // 4) / Raw(quote + ext)
    pkt = _decode(bytes(ETH / ROUTER / icmp))
    f = pkt.layers[2].fields
    assert f["quote_length"] == 128
    assert f["mpls_labels"] == [
        {"label": 16001, "tc": 0, "s": 0, "ttl": 1},
        {"label": 24005, "tc": 5, "s": 1, "ttl": 1},
    ]
    # the quote ends where the extension starts: the quoted inner TCP is not fed extension bytes
    assert [x.proto for x in pkt.layers][3:] == ["ipv4", "udp", "vxlan", "eth", "ipv4", "tcp"]
    tcp = pkt.layers[-1]
    assert tcp.offset + tcp.length <= 14 + 20 + 8 + 128


def test_pre_rfc4884_extension_at_offset_128() -> None:
    quote = bytes(_vxlan_packet())[:128]
    ext = _mpls_extension([(3, 0, 1, 255)])
    pkt = _decode(bytes(ETH / ROUTER / ICMP(type=11, code=0) / Raw(quote + ext)))
    f = pkt.layers[2].fields
    assert f["mpls_labels"] == [{"label": 3, "tc": 0, "s": 1, "ttl": 255}]
    assert "quote_length" not in f


def test_long_quote_without_extension_is_not_misread() -> None:
    quote = bytes(_vxlan_packet())[:400]
    f = _decode(bytes(ETH / ROUTER / ICMP(type=11, code=0) / Raw(quote))).layers[2].fields
    assert "mpls_labels" not in f


def test_truncated_icmp() -> None:
    pkt = _decode(bytes(ETH / IP(src="192.0.2.1", dst="192.0.2.2", proto=1) / Raw(b"\x08\x00\x00")))
    assert [a.kind for a in pkt.anomalies] == ["icmp.truncated"]
