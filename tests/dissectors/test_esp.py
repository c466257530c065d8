"""ESP over IP and over UDP 4500, NAT-T demultiplexing (IKE marker, keepalive)."""

from __future__ import annotations

import struct

from scapy.layers.inet import IP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.ipsec import ESP
from scapy.layers.l2 import Ether
from scapy.packet import Raw

from ipsotrace.dissectors import esp
from ipsotrace.dissectors.registry import DissectConfig, dissect_frame
from ipsotrace.records import Anomaly, Packet

ETH = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
OUTER = IP(src="192.0.2.1", dst="192.0.2.2")
CIPHER = bytes(range(48))


class _Ctx:
    snaplen_cut = False
    partial = False


def _decode(p: object) -> Packet:
    return dissect_frame(bytes(p), 1, DissectConfig())  # type: ignore[call-overload]


def test_esp_over_ipv4_every_field() -> None:
    pkt = _decode(ETH / OUTER / ESP(spi=0x1000, seq=77) / Raw(CIPHER))
    assert [x.proto for x in pkt.layers] == ["eth", "ipv4", "esp"]
    ly = pkt.layers[2]
    assert (ly.offset, ly.length) == (34, 8 + len(CIPHER))
    assert ly.fields == {"spi": 0x1000, "seq": 77, "encrypted": True, "ciphertext_length": len(CIPHER)}
    assert pkt.anomalies == []


def test_esp_over_ipv6() -> None:
    pkt = _decode(ETH / IPv6(src="2001:db8::1", dst="2001:db8::2") / ESP(spi=0xABCDEF01, seq=1) / Raw(CIPHER))
    assert [x.proto for x in pkt.layers] == ["eth", "ipv6", "esp"]
    assert pkt.layers[2].fields["spi"] == 0xABCDEF01


def test_udp_encapsulated_esp() -> None:
    pkt = _decode(ETH / OUTER / UDP(sport=4500, dport=4500) / Raw(struct.pack("!II", 0x2000, 5) + CIPHER))
    assert [x.proto for x in pkt.layers] == ["eth", "ipv4", "udp", "nat-t", "esp"]
    nat_t, layer = pkt.layers[3], pkt.layers[4]
    assert (nat_t.length, nat_t.fields) == (0, {"kind": "esp"})
    assert (layer.offset, layer.fields["spi"], layer.fields["seq"]) == (42, 0x2000, 5)


def test_non_esp_marker_leads_to_ike_and_keepalive() -> None:
    ike_hdr = bytes(8 * [1]) + bytes(8) + bytes([33, 0x20, 34, 0x08]) + struct.pack("!II", 0, 28)
    pkt = _decode(ETH / OUTER / UDP(sport=4500, dport=4500) / Raw(b"\0\0\0\0" + ike_hdr))
    assert [x.proto for x in pkt.layers] == ["eth", "ipv4", "udp", "nat-t", "ike"]
    assert (pkt.layers[3].length, pkt.layers[3].fields) == (4, {"kind": "ike"})
    assert pkt.layers[4].offset == 46
    pkt = _decode(ETH / OUTER / UDP(sport=4500, dport=4500) / Raw(b"\xff"))
    assert [x.proto for x in pkt.layers] == ["eth", "ipv4", "udp", "nat-t"]
    assert pkt.layers[3].fields == {"kind": "keepalive"}


def test_reserved_spi_and_truncation() -> None:
    got = esp.dissect(struct.pack("!II", 0, 1), 0, 8, _Ctx())
    assert isinstance(got, Anomaly) and got.kind == "esp.malformed"
    got = esp.dissect(struct.pack("!II", 200, 1), 0, 8, _Ctx())
    assert not isinstance(got, Anomaly) and [a.kind for a in got.anomalies] == ["esp.reserved-spi"]
    for cut in range(8):
        got = esp.dissect(struct.pack("!II", 0x1000, 1), 0, cut, _Ctx())
        assert isinstance(got, Anomaly) and got.kind == "esp.truncated"
