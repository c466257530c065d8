"""UDP: fields, length bounding, port bindings, bad lengths."""

from __future__ import annotations

from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether
from scapy.packet import Raw

from ipsotrace.dissectors.registry import DissectConfig, dissect_frame
from ipsotrace.records import Packet

ETH = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
IP4 = IP(src="192.0.2.1", dst="192.0.2.2")


def _decode(data: bytes, cfg: DissectConfig | None = None) -> Packet:
    return dissect_frame(data, 1, cfg or DissectConfig())


def test_every_field() -> None:
    raw = bytes(ETH / IP4 / UDP(sport=33333, dport=53) / Raw(b"abcd"))
    pkt = _decode(raw)
    ly = pkt.layers[2]
    assert (ly.proto, ly.offset, ly.length, ly.parent, ly.depth) == ("udp", 34, 8, 1, 0)
    assert ly.fields == {
        "sport": 33333,
        "dport": 53,
        "udp_length": 12,
        "checksum": int.from_bytes(raw[40:42], "big"),
    }
    assert pkt.anomalies == []


def test_length_below_8_keeps_ports() -> None:
    pkt = _decode(bytes(ETH / IP4 / UDP(sport=1, dport=4789, len=4) / Raw(b"\x08" + b"\0" * 20)))
    assert [x.proto for x in pkt.layers] == ["eth", "ipv4", "udp"]
    assert pkt.layers[2].fields["sport"] == 1
    assert [a.kind for a in pkt.anomalies] == ["udp.malformed"]
    assert pkt.anomalies[0].detail == "length 4 < 8"


def test_length_exceeds_ip() -> None:
    pkt = _decode(bytes(ETH / IP4 / UDP(sport=1, dport=2, len=100) / Raw(b"x" * 10)))
    assert [a.kind for a in pkt.anomalies] == ["udp.length-exceeds-ip"]


def test_lower_port_wins_and_overrides_apply() -> None:
    vx = bytes.fromhex("0800000000006400") + bytes(Ether(src="02:00:00:00:01:01", dst="02:00:00:00:01:02"))
    raw = bytes(ETH / IP4 / UDP(sport=4789, dport=50000) / Raw(vx))
    assert [x.proto for x in _decode(raw).layers][-2:] == ["vxlan", "eth"]
    raw = bytes(ETH / IP4 / UDP(sport=50000, dport=9999) / Raw(vx))
    assert [x.proto for x in _decode(raw, DissectConfig(heuristics=False)).layers] == ["eth", "ipv4", "udp"]
    cfg = DissectConfig.from_overrides({9999: "vxlan"})
    assert [x.proto for x in _decode(raw, cfg).layers][-2:] == ["vxlan", "eth"]
    off = DissectConfig.from_overrides({4789: "none"}, heuristics=False)
    raw = bytes(ETH / IP4 / UDP(sport=50000, dport=4789) / Raw(vx))
    assert [x.proto for x in _decode(raw, off).layers] == ["eth", "ipv4", "udp"]


def test_truncated_header() -> None:
    raw = bytes(ETH / IP4 / UDP(sport=1, dport=2))[:-3]
    pkt = _decode(raw, DissectConfig())
    assert [x.proto for x in pkt.layers] == ["eth", "ipv4"]
    kinds = [a.kind for a in pkt.anomalies]
    assert kinds == ["ipv4.length-exceeds-frame", "udp.truncated"]
