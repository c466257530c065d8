"""WCCP redirection in GRE: v2 redirect header, v1 (no header), truncation."""

from __future__ import annotations

from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import GRE, Ether
from scapy.packet import Raw

from ipsotrace.dissectors import wccp
from ipsotrace.dissectors.registry import DissectConfig, dissect_frame
from ipsotrace.records import Anomaly, Packet

ETH = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
OUTER = IP(src="192.0.2.1", dst="192.0.2.2")
INNER = IP(src="203.0.113.1", dst="203.0.113.2") / TCP(sport=1025, dport=80)


class _Ctx:
    snaplen_cut = False
    partial = False


def _decode(payload: bytes) -> Packet:
    return dissect_frame(bytes(ETH / OUTER / GRE(proto=0x883E) / Raw(payload)), 1, DissectConfig())


def test_v2_redirect_header() -> None:
    pkt = _decode(bytes([0x05, 89, 3, 72]) + bytes(INNER))
    assert [(ly.proto, ly.depth) for ly in pkt.layers] == [
        ("eth", 0), ("ipv4", 0), ("gre", 0), ("wccp", 0), ("ipv4", 1), ("tcp", 1),
    ]  # fmt: skip
    ly = pkt.layers[3]
    assert (ly.offset, ly.length) == (38, 4)
    assert ly.fields == {
        "version": 2,
        "dynamic": True,
        "alt_bucket_used": False,
        "ignore_contents": True,
        "service_id": 89,
        "alt_bucket": 3,
        "pri_bucket": 72,
    }
    assert pkt.layers[4].fields["src"] == "203.0.113.1"
    assert pkt.anomalies == []


def test_v1_no_header() -> None:
    pkt = _decode(bytes(INNER))
    ly = pkt.layers[3]
    assert (ly.proto, ly.length, ly.fields) == ("wccp", 0, {"version": 1})
    assert [x.proto for x in pkt.layers[4:]] == ["ipv4", "tcp"]


def test_truncated() -> None:
    for data in (b"", b"\x02", b"\x02\x00\x00"):
        res = wccp.dissect(data, 0, len(data), _Ctx())
        assert isinstance(res, Anomaly) and res.kind == "wccp.truncated", data
