"""IPv6 with extension headers folded into the layer: HBH, routing/SRv6, fragment, dest options, jumbo."""

from __future__ import annotations

from scapy.layers.inet import UDP
from scapy.layers.inet6 import (
    IPv6,
    IPv6ExtHdrDestOpt,
    IPv6ExtHdrFragment,
    IPv6ExtHdrHopByHop,
    IPv6ExtHdrRouting,
    IPv6ExtHdrSegmentRouting,
    IPv6ExtHdrSegmentRoutingTLVPadN,
    Jumbo,
    RouterAlert,
    fragment6,
)
from scapy.layers.l2 import Ether
from scapy.layers.vxlan import VXLAN
from scapy.packet import Raw

from ipsotrace.dissectors.registry import DissectConfig, dissect_frame
from ipsotrace.records import Packet

ETH = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
SRC, DST = "2001:db8::1", "2001:db8:ffff::2"


def _decode(data: bytes, wirelen: int | None = None) -> Packet:
    return dissect_frame(data, 1, DissectConfig(), wirelen=wirelen)


def test_every_field() -> None:
    pkt = _decode(bytes(ETH / IPv6(src=SRC, dst=DST, tc=0xB9, fl=0xABCDE, hlim=3) / UDP(sport=9, dport=10)))
    ly = pkt.layers[1]
    assert (ly.proto, ly.offset, ly.length, ly.parent, ly.depth) == ("ipv6", 14, 40, 0, 0)
    assert ly.fields == {
        "src": SRC,
        "dst": DST,
        "hlim": 3,
        "ttl": 3,
        "dscp": 0xB9 >> 2,
        "ecn": 1,
        "flow_label": 0xABCDE,
        "payload_length": 8,
        "next_header": 17,
    }
    assert pkt.layers[2].fields["sport"] == 9
    assert pkt.anomalies == []


def test_hop_by_hop_routing_srv6_and_dest_options() -> None:
    segs = ["2001:db8:3::3", "2001:db8:2::2", "2001:db8:1::1"]
    ip = (
        IPv6(src=SRC, dst=segs[-1])
        / IPv6ExtHdrHopByHop(options=[RouterAlert()])
        / IPv6ExtHdrDestOpt()
        / IPv6ExtHdrSegmentRouting(addresses=segs, segleft=2)
        / IPv6ExtHdrDestOpt()
        / UDP(sport=1000, dport=2000)
    )
    raw = bytes(ETH / ip)
    pkt = _decode(raw)
    ly = pkt.layers[1]
    assert ly.fields["ext"] == ["hopopts", "dstopts", "routing", "dstopts"]
    assert ly.fields["routing_type"] == 4
    assert ly.fields["segments_left"] == 2
    assert ly.fields["segments"] == segs
    assert ly.fields["next_header"] == 17
    assert ly.length == len(raw) - 14 - 8
    assert [x.proto for x in pkt.layers] == ["eth", "ipv6", "udp"]
    assert pkt.layers[2].fields["dport"] == 2000
    assert pkt.anomalies == []


def test_srv6_tlvs_are_not_segments() -> None:
    segs = ["2001:db8:2::2", "2001:db8:1::1"]
    srh = IPv6ExtHdrSegmentRouting(addresses=segs, tlv_objects=[IPv6ExtHdrSegmentRoutingTLVPadN(len=14)])
    pkt = _decode(bytes(ETH / IPv6(src=SRC, dst=segs[-1]) / srh / UDP()))
    assert pkt.layers[1].fields["segments"] == segs


def test_type0_routing_header_has_no_segment_list() -> None:
    pkt = _decode(bytes(ETH / IPv6(src=SRC, dst=DST) / IPv6ExtHdrRouting(addresses=["2001:db8::9"]) / UDP()))
    assert pkt.layers[1].fields["routing_type"] == 0
    assert "segments" not in pkt.layers[1].fields
    assert pkt.layers[2].proto == "udp"


def test_fragments() -> None:
    inner = Ether(src="02:00:00:00:01:01", dst="02:00:00:00:01:02") / IPv6(src="2001:db8:a::1", dst="2001:db8:a::2")
    big = IPv6(src=SRC, dst=DST) / IPv6ExtHdrFragment(id=0xCAFE) / UDP(sport=7, dport=4789)
    big /= VXLAN(flags=0x08, vni=7) / inner / UDP(sport=5, dport=6) / Raw(b"q" * 2000)
    frags = fragment6(big, 1280)
    assert len(frags) == 2
    first, second = (_decode(bytes(ETH / f)) for f in frags)
    f1 = first.layers[1].fields
    assert (f1["frag_offset"], f1["mf"], f1["frag_id"], f1["ext"]) == (0, True, 0xCAFE, ["fragment"])
    assert [x.proto for x in first.layers] == ["eth", "ipv6", "udp", "vxlan", "eth", "ipv6", "udp"]
    # both UDP lengths and the inner IPv6 length exceed this fragment: expected in a first fragment
    assert first.anomalies == []
    f2 = second.layers[1].fields
    assert f2["frag_offset"] > 0 and f2["mf"] is False and f2["frag_id"] == 0xCAFE
    assert [x.proto for x in second.layers] == ["eth", "ipv6"]
    assert second.anomalies == []


def test_atomic_fragment_decodes_payload() -> None:
    pkt = _decode(bytes(ETH / IPv6(src=SRC, dst=DST) / IPv6ExtHdrFragment(id=5, m=0, offset=0) / UDP(dport=53)))
    assert [x.proto for x in pkt.layers] == ["eth", "ipv6", "udp"]


def test_jumbogram_hop_by_hop() -> None:
    payload = UDP(sport=1, dport=2, len=0) / Raw(b"j" * 70000)
    hbh = IPv6ExtHdrHopByHop(options=[Jumbo(jumboplen=8 + 8 + 70000)])
    raw = bytes(ETH / IPv6(src=SRC, dst=DST, plen=0) / hbh / payload) + b"\xee" * 4  # trailer
    pkt = _decode(raw)
    ly = pkt.layers[1]
    assert ly.fields["jumbo"] is True
    assert ly.fields["jumbo_length"] == 70016
    assert ly.fields["ext"] == ["hopopts"]
    assert pkt.layers[2].fields == {
        "sport": 1,
        "dport": 2,
        "udp_length": 0,
        "checksum": pkt.layers[2].fields["checksum"],
    }
    assert pkt.anomalies == []


def test_zero_payload_length_without_hbh_is_gso() -> None:
    raw = bytes(ETH / IPv6(src=SRC, dst=DST, plen=0) / UDP(sport=1, dport=2, len=0) / Raw(b"g" * 100))
    pkt = _decode(raw)
    assert pkt.layers[1].fields["jumbo"] is True
    assert "jumbo_length" not in pkt.layers[1].fields
    assert [x.proto for x in pkt.layers] == ["eth", "ipv6", "udp"]


def test_no_next_header() -> None:
    pkt = _decode(bytes(ETH / IPv6(src=SRC, dst=DST, nh=59, plen=0)))
    assert [x.proto for x in pkt.layers] == ["eth", "ipv6"]
    assert "jumbo" not in pkt.layers[1].fields
    assert pkt.anomalies == []


def test_extension_header_cut_by_snaplen_keeps_addresses() -> None:
    raw = bytes(ETH / IPv6(src=SRC, dst=DST) / IPv6ExtHdrDestOpt(options=[RouterAlert()] * 5) / UDP())
    pkt = _decode(raw[: 14 + 40 + 12], wirelen=len(raw))
    assert [x.proto for x in pkt.layers] == ["eth", "ipv6"]
    assert pkt.layers[1].fields["dst"] == DST
    assert [a.kind for a in pkt.anomalies] == ["ipv6.truncated"]
    assert pkt.anomalies[0].detail.endswith("(capture snaplen)")


def test_payload_length_exceeds_frame() -> None:
    raw = bytes(ETH / IPv6(src=SRC, dst=DST, plen=500) / UDP(sport=1, dport=2))
    pkt = _decode(raw)
    assert [a.kind for a in pkt.anomalies] == ["ipv6.length-exceeds-frame"]


def test_bad_version() -> None:
    raw = bytearray(bytes(ETH / IPv6(src=SRC, dst=DST) / UDP()))
    raw[14] = 0x40
    pkt = _decode(bytes(raw))
    assert [a.kind for a in pkt.anomalies] == ["ipv6.malformed"]


def test_6in6_and_4in6_are_tunnels() -> None:
    from scapy.layers.inet import IP

    pkt = _decode(bytes(ETH / IPv6(src=SRC, dst=DST) / IPv6(src="2001:db8::a", dst="2001:db8::b") / IP() / UDP()))
    assert [(x.proto, x.depth) for x in pkt.layers] == [
        ("eth", 0),
        ("ipv6", 0),
        ("ipv6", 1),
        ("ipv4", 2),
        ("udp", 2),
    ]
