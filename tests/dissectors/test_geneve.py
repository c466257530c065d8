"""Geneve: header, options (AWS GWLB, GCP, OVN, unknown), bad option lengths, heuristic."""

from __future__ import annotations

import struct

from scapy.contrib.geneve import GENEVE, GeneveOptions
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether
from scapy.packet import Raw

from ipsotrace.dissectors import geneve
from ipsotrace.dissectors.registry import DissectConfig, dissect_frame
from ipsotrace.records import Anomaly, Packet

ETH = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
OUTER = IP(src="192.0.2.1", dst="192.0.2.2")
INNER = IP(src="203.0.113.1", dst="203.0.113.2") / TCP(sport=1000, dport=80, flags="S")
GEN_OFF = 14 + 20 + 8


class _Ctx:
    snaplen_cut = False
    partial = False


def _decode(data: bytes, cfg: DissectConfig | None = None) -> Packet:
    return dissect_frame(data, 1, cfg or DissectConfig())


def _frame(gen: bytes, sport: int = 40000, dport: int = 6081) -> bytes:
    return bytes(ETH / OUTER / UDP(sport=sport, dport=dport) / Raw(gen))


def _opt(cls: int, otype: int, data: bytes) -> bytes:
    assert len(data) % 4 == 0
    return struct.pack("!HBB", cls, otype, len(data) // 4) + data


def test_ethernet_payload_every_field() -> None:
    inner_eth = Ether(src="02:00:00:00:01:01", dst="02:00:00:00:01:02") / INNER
    gen = GENEVE(vni=0x123456, proto=0x6558) / inner_eth
    pkt = _decode(_frame(bytes(gen)))
    assert [(x.proto, x.depth) for x in pkt.layers] == [
        ("eth", 0),
        ("ipv4", 0),
        ("udp", 0),
        ("geneve", 0),
        ("eth", 1),
        ("ipv4", 1),
        ("tcp", 1),
    ]
    ly = pkt.layers[3]
    assert (ly.offset, ly.length) == (GEN_OFF, 8)
    assert ly.fields == {
        "tunnel_id": 0x123456,
        "vni": 0x123456,
        "version": 0,
        "opt_len": 0,
        "oam": False,
        "critical": False,
        "protocol_type": 0x6558,
        "options": [],
    }
    assert pkt.anomalies == []


def test_aws_gwlb_options_ipv4_payload() -> None:
    opts = (
        _opt(0x0108, 1, struct.pack("!Q", 0x0123456789ABCDEF))
        + _opt(0x0108, 2, struct.pack("!Q", 0x1122334455667788))
        + _opt(0x0108, 3, struct.pack("!I", 0xDEADBEEF))
    )
    gen = struct.pack("!BBHI", len(opts) // 4, 0, 0x0800, 77 << 8) + opts + bytes(INNER)
    pkt = _decode(_frame(gen))
    assert [x.proto for x in pkt.layers] == ["eth", "ipv4", "udp", "geneve", "ipv4", "tcp"]
    ly = pkt.layers[3]
    assert ly.length == 40  # GWLB's 40-byte Geneve header: 68 bytes with outer IPv4 + UDP
    assert ly.fields["opt_len"] == 32
    assert ly.fields["options"] == [
        {
            "class": 0x0108,
            "type": 1,
            "critical": False,
            "length": 12,
            "data": "0123456789abcdef",
            "name": "aws-gwlb-endpoint",
            "vpce_id": "vpce-00123456789abcdef",
        },
        {
            "class": 0x0108,
            "type": 2,
            "critical": False,
            "length": 12,
            "data": "1122334455667788",
            "name": "aws-gwlb-attachment",
            "attachment_id": 0x1122334455667788,
        },
        {
            "class": 0x0108,
            "type": 3,
            "critical": False,
            "length": 8,
            "data": "deadbeef",
            "name": "aws-gwlb-flow-cookie",
            "flow_cookie": 0xDEADBEEF,
        },
    ]
    assert pkt.layers[4].fields["src"] == "203.0.113.1"


def test_gcp_options_match_wireshark_reading() -> None:
    # Bytes of tcpdump's geneve-gcp.pcap; Wireshark reads VNID 134217741, egress, profile 4660.
    opts = bytes.fromhex("01320101800000d1013202040800000dc0a864020000000000000000013203020000000000001234")
    gen = struct.pack("!BBHI", len(opts) // 4, 0, 0x0800, 0) + opts + bytes(INNER)
    got = geneve.dissect(gen, 0, len(gen), _Ctx())
    assert not isinstance(got, Anomaly)
    assert got.fields["options"] == [
        {
            "class": 0x0132,
            "type": 1,
            "critical": False,
            "length": 8,
            "data": "800000d1",
            "name": "gcp-vnid",
            "gcp_vnid": 134217741,
            "direction": "egress",
            "reserved": 0,
        },
        {
            "class": 0x0132,
            "type": 2,
            "critical": False,
            "length": 20,
            "data": "0800000dc0a864020000000000000000",
            "name": "gcp-endpoint",
            "endpoint_id": "0800000dc0a864020000000000000000",
        },
        {
            "class": 0x0132,
            "type": 3,
            "critical": False,
            "length": 12,
            "data": "0000000000001234",
            "name": "gcp-profile",
            "profile_id": 4660,
        },
    ]


def test_ovn_critical_option_and_unknown_option_kept_raw() -> None:
    gen = (
        GENEVE(
            vni=5,
            proto=0x86DD,
            critical=1,
            options=[
                GeneveOptions(classid=0x0102, type=0x80, data=struct.pack("!I", (3 << 16) | 7)),
                GeneveOptions(classid=0xFFF0, type=0x01, data=b"\x01\x02\x03\x04\x05\x06\x07\x08"),
            ],
        )
        / IPv6(src="2001:db8::1", dst="2001:db8::2")
        / UDP(sport=1, dport=2)
    )
    pkt = _decode(_frame(bytes(gen)))
    assert [x.proto for x in pkt.layers] == ["eth", "ipv4", "udp", "geneve", "ipv6", "udp"]
    f = pkt.layers[3].fields
    assert (f["critical"], f["opt_len"], f["protocol_type"]) == (True, 20, 0x86DD)
    assert f["options"] == [
        {
            "class": 0x0102,
            "type": 0x80,
            "critical": True,
            "length": 8,
            "data": "00030007",
            "name": "ovn-ports",
            "logical_ingress_port": 3,
            "logical_egress_port": 7,
        },
        {"class": 0xFFF0, "type": 1, "critical": False, "length": 12, "data": "0102030405060708"},
    ]
    assert pkt.anomalies == []


def test_critical_option_without_c_flag_is_flagged() -> None:
    gen = struct.pack("!BBHI", 1, 0, 0x0800, 0) + _opt(0x0102, 0x80, b"") + bytes(INNER)
    got = geneve.dissect(gen, 0, len(gen), _Ctx())
    assert not isinstance(got, Anomaly)
    assert [a.kind for a in got.anomalies] == ["geneve.c-flag-unset"]


def test_option_running_past_options_area() -> None:
    # opt_len says 4 bytes, the option header claims 8 more bytes of data.
    gen = struct.pack("!BBHI", 1, 0, 0x0800, 0) + struct.pack("!HBB", 0x0108, 3, 2) + bytes(INNER)
    got = geneve.dissect(gen, 0, len(gen), _Ctx())
    assert not isinstance(got, Anomaly)
    assert got.fields["options"] == []
    assert got.length == 12
    assert [a.kind for a in got.anomalies] == ["geneve.option-length"]


def test_opt_len_beyond_payload_is_malformed() -> None:
    gen = struct.pack("!BBHI", 0x3F, 0, 0x6558, 0) + b"\0" * 12
    pkt = _decode(_frame(gen))
    assert [x.proto for x in pkt.layers] == ["eth", "ipv4", "udp"]
    assert [a.kind for a in pkt.anomalies] == ["geneve.malformed"]


def test_truncated_version_and_reserved() -> None:
    for cut in range(8):
        got = geneve.dissect(b"\0" * cut, 0, cut, _Ctx())
        assert isinstance(got, Anomaly) and got.kind == "geneve.truncated"
    bad = struct.pack("!BBHI", 0x40, 0, 0x0800, 0)
    got = geneve.dissect(bad, 0, 8, _Ctx())
    assert isinstance(got, Anomaly) and got.kind == "geneve.malformed"
    odd = struct.pack("!BBHI", 0, 0x01, 0x0800, 0x01)
    got = geneve.dissect(odd, 0, 8, _Ctx())
    assert not isinstance(got, Anomaly)
    assert got.fields["reserved_nonzero"] is True
    assert [a.kind for a in got.anomalies] == ["geneve.reserved-set"]


def test_heuristic_finds_geneve_on_unconfigured_port() -> None:
    inner_eth = Ether(src="02:00:00:00:01:01", dst="02:00:00:00:01:02") / INNER
    gen = bytes(GENEVE(vni=9, proto=0x6558) / inner_eth)
    assert geneve.heuristic(gen, 0, len(gen)) == 1.0
    pkt = _decode(_frame(gen, sport=40000, dport=7000))
    assert [x.proto for x in pkt.layers][3:5] == ["geneve", "eth"]
    assert pkt.layers[2].fields["heuristic"] == {"proto": "geneve", "confidence": 1.0}
    # a broken inner IPv4 checksum costs one check out of five
    broken = bytearray(gen)
    broken[8 + 14 + 10] ^= 0xFF
    assert geneve.heuristic(bytes(broken), 0, len(broken)) == 0.8
    # unknown protocol type or version 1: not Geneve at all
    assert geneve.heuristic(gen[:2] + b"\x12\x34" + gen[4:], 0, len(gen)) == 0.0
    assert geneve.heuristic(b"\x40" + gen[1:], 0, len(gen)) == 0.0
