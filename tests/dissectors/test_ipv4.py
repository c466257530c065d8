"""IPv4: every header field, options, fragments, GSO super-frames, trailers, length anomalies."""

from __future__ import annotations

from scapy.layers.inet import IP, TCP, UDP, IPOption_Router_Alert, IPOption_RR, fragment
from scapy.layers.l2 import Ether
from scapy.layers.vxlan import VXLAN
from scapy.packet import Raw

from ipsotrace.dissectors.registry import DissectConfig, dissect_frame
from ipsotrace.records import Packet

ETH = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")


def _decode(data: bytes, linktype: int = 1, wirelen: int | None = None) -> Packet:
    return dissect_frame(data, linktype, DissectConfig(), wirelen=wirelen)


def test_every_field() -> None:
    ip = IP(src="192.0.2.1", dst="198.51.100.7", ttl=17, tos=0xB9, id=0xBEEF, flags="DF") / UDP(sport=5, dport=6)
    raw = bytes(ETH / ip)
    pkt = _decode(raw)
    ly = pkt.layers[1]
    csum = int.from_bytes(raw[24:26], "big")
    assert (ly.proto, ly.offset, ly.length, ly.parent, ly.depth) == ("ipv4", 14, 20, 0, 0)
    assert ly.fields == {
        "src": "192.0.2.1",
        "dst": "198.51.100.7",
        "ttl": 17,
        "protocol": 17,
        "dscp": 0xB9 >> 2,
        "ecn": 1,
        "id": 0xBEEF,
        "df": True,
        "mf": False,
        "frag_offset": 0,
        "total_length": 28,
        "ihl": 20,
        "checksum": csum,
    }
    assert pkt.anomalies == []


def test_options_are_kept_and_skipped() -> None:
    ip = IP(src="192.0.2.1", dst="192.0.2.2", options=[IPOption_Router_Alert(), IPOption_RR(routers=["192.0.2.9"])])
    raw = bytes(ETH / ip / UDP(sport=7, dport=8))
    pkt = _decode(raw)
    ly = pkt.layers[1]
    ihl = (raw[14] & 0xF) * 4
    assert ihl > 20
    assert ly.fields["ihl"] == ihl == ly.length
    assert ly.fields["options"] == raw[14 + 20 : 14 + ihl].hex()
    assert ly.fields["options"].startswith("94040000")  # router alert first
    assert pkt.layers[2].offset == 14 + ihl
    assert pkt.layers[2].fields["sport"] == 7


def test_ethernet_trailer_is_trimmed_by_total_length() -> None:
    raw = bytes(ETH / IP(src="192.0.2.1", dst="192.0.2.2") / UDP(sport=1, dport=2)) + b"\xaa" * 18
    pkt = _decode(raw)
    assert pkt.layers[2].fields["udp_length"] == 8
    assert pkt.anomalies == []


def _vxlan_inner_tcp(payload: int) -> IP:
    inner = Ether(src="02:00:00:00:01:01", dst="02:00:00:00:01:02") / IP(src="203.0.113.10", dst="203.0.113.20")
    inner /= TCP(sport=40000, dport=80, flags="A") / Raw(b"x" * payload)
    outer = (
        IP(src="192.0.2.1", dst="192.0.2.2", id=77) / UDP(sport=50000, dport=4789) / VXLAN(flags=0x08, vni=100) / inner
    )
    return outer


def test_first_fragment_decoded_as_far_as_it_goes_without_anomalies() -> None:
    frags = fragment(_vxlan_inner_tcp(1000), fragsize=48)
    first = _decode(bytes(ETH / frags[0]))
    assert [x.proto for x in first.layers] == ["eth", "ipv4", "udp", "vxlan", "eth"]
    ip = first.layers[1].fields
    assert (ip["mf"], ip["frag_offset"], ip["id"]) == (True, 0, 77)
    assert first.layers[3].fields["vni"] == 100
    # the inner IPv4 header is cut by the fragment boundary: expected, not an anomaly
    assert first.anomalies == []


def test_first_fragment_that_covers_inner_headers() -> None:
    frags = fragment(_vxlan_inner_tcp(3000), fragsize=1480)
    first = _decode(bytes(ETH / frags[0]))
    assert [x.proto for x in first.layers] == ["eth", "ipv4", "udp", "vxlan", "eth", "ipv4", "tcp"]
    assert [x.depth for x in first.layers] == [0, 0, 0, 0, 1, 1, 1]
    assert first.layers[5].fields["src"] == "203.0.113.10"
    assert first.anomalies == []


def test_later_fragments_have_no_next_layer() -> None:
    frags = fragment(_vxlan_inner_tcp(3000), fragsize=1480)
    assert len(frags) == 3
    for frag in frags[1:]:
        pkt = _decode(bytes(ETH / frag))
        assert [x.proto for x in pkt.layers] == ["eth", "ipv4"]
        assert pkt.layers[1].fields["frag_offset"] > 0
        assert pkt.anomalies == []
    assert _decode(bytes(ETH / frags[1])).layers[1].fields["mf"] is True
    assert _decode(bytes(ETH / frags[2])).layers[1].fields["mf"] is False


def test_gso_zero_total_length() -> None:
    raw = bytearray(bytes(ETH / IP(src="192.0.2.1", dst="192.0.2.2") / TCP(sport=1, dport=2) / Raw(b"y" * 3000)))
    raw[16:18] = b"\0\0"
    pkt = _decode(bytes(raw))
    assert pkt.layers[1].fields["gso"] is True
    assert pkt.layers[2].fields["payload_length"] == 3000
    assert pkt.anomalies == []


def test_length_exceeds_frame_is_an_anomaly_but_not_under_snaplen() -> None:
    raw = bytes(ETH / IP(src="192.0.2.1", dst="192.0.2.2") / UDP(sport=1, dport=2) / Raw(b"z" * 100))[:60]
    pkt = _decode(raw)
    assert [a.kind for a in pkt.anomalies] == ["ipv4.length-exceeds-frame", "udp.length-exceeds-ip"]
    cut = _decode(raw, wirelen=142)
    assert cut.truncated and cut.anomalies == []
    assert [x.proto for x in cut.layers] == ["eth", "ipv4", "udp"]


def test_bad_version_and_header_length() -> None:
    raw = bytearray(bytes(ETH / IP(src="192.0.2.1", dst="192.0.2.2") / UDP()))
    raw[14] = 0x55
    pkt = _decode(bytes(raw))
    assert [a.kind for a in pkt.anomalies] == ["ipv4.malformed"]
    assert "version 5" in pkt.anomalies[0].detail
    raw[14] = 0x44
    pkt = _decode(bytes(raw))
    assert pkt.anomalies[0].detail == "header length 16 < 20"
    assert [x.proto for x in pkt.layers] == ["eth"]


def test_total_length_below_header_length() -> None:
    pkt = _decode(bytes(ETH / IP(src="192.0.2.1", dst="192.0.2.2", len=10) / UDP()))
    assert [x.proto for x in pkt.layers] == ["eth"]
    assert [a.kind for a in pkt.anomalies] == ["ipv4.malformed"]


def test_options_cut_by_snaplen_keep_addresses() -> None:
    ip = IP(src="192.0.2.1", dst="192.0.2.2", options=[IPOption_RR(routers=["192.0.2.9"] * 4)]) / UDP()
    raw = bytes(ETH / ip)
    pkt = _decode(raw[: 14 + 24], wirelen=len(raw))
    assert [x.proto for x in pkt.layers] == ["eth", "ipv4"]
    assert pkt.layers[1].fields["src"] == "192.0.2.1"
    assert [a.kind for a in pkt.anomalies] == ["ipv4.truncated"]
    assert "capture snaplen" in pkt.anomalies[0].detail


def test_reserved_flag() -> None:
    pkt = _decode(bytes(ETH / IP(src="192.0.2.1", dst="192.0.2.2", flags="evil") / UDP()))
    assert [a.kind for a in pkt.anomalies] == ["ipv4.evil-bit"]


def test_ip_in_ip_counts_as_a_tunnel() -> None:
    pkt = _decode(bytes(ETH / IP(src="192.0.2.1", dst="192.0.2.2") / IP(src="203.0.113.1", dst="203.0.113.2") / UDP()))
    assert [(x.proto, x.depth, x.parent) for x in pkt.layers] == [
        ("eth", 0, None),
        ("ipv4", 0, 0),
        ("ipv4", 1, 1),
        ("udp", 1, 2),
    ]
