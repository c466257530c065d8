"""NSH: MD type 1 and 2, next protocol, over VXLAN-GPE and Ethernet, malformed lengths."""

from __future__ import annotations

import struct

from scapy.contrib.nsh import NSH, NSHTLV
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether
from scapy.packet import Raw

from ipsotrace.dissectors import nsh
from ipsotrace.dissectors.registry import DissectConfig, dissect_frame
from ipsotrace.records import Anomaly, Packet

ETH = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
INNER4 = IP(src="203.0.113.1", dst="203.0.113.2") / UDP(sport=10000, dport=20000) / Raw(b"test")
CONTEXT = bytes(range(16))


class _Ctx:
    snaplen_cut = False
    partial = False


def _decode(data: bytes) -> Packet:
    return dissect_frame(data, 1, DissectConfig())


def test_md_type2_over_vxlan_gpe_every_field() -> None:
    # The exact NSH of tcpdump's nsh-over-vxlan-gpe.pcap: O and U bits, TTL 0, two 1-byte TLVs.
    nsh_hdr = bytes.fromhex("300602 01 ffffffff 00010201 12345678 00020301 12345678".replace(" ", ""))
    gpe = bytes.fromhex("0c000004ffffff00")
    outer = Ether() / IP(src="127.0.0.1", dst="127.0.0.1") / UDP(sport=4790, dport=4790)
    pkt = _decode(bytes(outer / Raw(gpe + nsh_hdr + bytes(INNER4))))
    assert [(x.proto, x.depth) for x in pkt.layers] == [
        ("eth", 0),
        ("ipv4", 0),
        ("udp", 0),
        ("vxlan-gpe", 0),
        ("nsh", 1),
        ("ipv4", 1),
        ("udp", 1),
    ]
    ly = pkt.layers[4]
    assert (ly.offset, ly.length) == (50, 24)
    assert ly.fields == {
        "version": 0,
        "oam": True,
        "ttl": 0,
        "nsh_length": 24,
        "md_type": 2,
        "next_protocol": 1,
        "spi": 0xFFFFFF,
        "si": 0xFF,
        "context_tlvs": [
            {"class": 1, "type": 2, "length": 1, "data": "12"},
            {"class": 2, "type": 3, "length": 1, "data": "12"},
        ],
    }
    assert [a.kind for a in pkt.anomalies] == ["nsh.ttl-zero"]


def test_md_type1_over_ethernet() -> None:
    hdr = NSH(ttl=63, mdtype=1, nextproto=3, spi=42, si=254, context_header=CONTEXT)
    inner_eth = Ether(src="02:00:00:00:01:01", dst="02:00:00:00:01:02") / INNER4
    raw = bytes(ETH / hdr / inner_eth)
    assert raw[12:14] == b"\x89\x4f"
    pkt = _decode(raw)
    assert [x.proto for x in pkt.layers] == ["eth", "nsh", "eth", "ipv4", "udp"]
    assert pkt.layers[1].fields == {
        "version": 0,
        "oam": False,
        "ttl": 63,
        "nsh_length": 24,
        "md_type": 1,
        "next_protocol": 3,
        "spi": 42,
        "si": 254,
        "context": CONTEXT.hex(),
    }
    assert pkt.anomalies == []


def test_md_type2_with_scapy_tlv_padding() -> None:
    hdr = NSH(ttl=5, mdtype=2, nextproto=1, spi=7, si=3, vlch=[NSHTLV(type=9, length=3, metadata=[0xAABBCC00])])
    raw = bytes(hdr / INNER4)
    got = nsh.dissect(raw, 0, len(raw), _Ctx())
    assert not isinstance(got, Anomaly)
    assert got.length == 16
    assert got.fields["context_tlvs"] == [{"class": 0, "type": 9, "length": 3, "data": "aabbcc"}]


def test_malformed_lengths() -> None:
    def base(length_words: int, md_type: int) -> bytes:
        return struct.pack("!HBBI", (10 << 6) | length_words, md_type, 1, (1 << 8) | 1)

    for cut in range(8):
        got = nsh.dissect(base(2, 2), 0, cut, _Ctx())
        assert isinstance(got, Anomaly) and got.kind == "nsh.truncated"
    got = nsh.dissect(base(1, 2), 0, 8, _Ctx())
    assert isinstance(got, Anomaly) and got.kind == "nsh.malformed"
    got = nsh.dissect(base(6, 1), 0, 12, _Ctx())
    assert isinstance(got, Anomaly) and got.kind == "nsh.truncated"
    md1_short = base(4, 1) + b"\0" * 8
    got = nsh.dissect(md1_short, 0, 16, _Ctx())
    assert not isinstance(got, Anomaly) and [a.kind for a in got.anomalies] == ["nsh.md1-length"]
    tlv_over = base(3, 2) + struct.pack("!HBB", 1, 1, 8)  # a TLV of 8 bytes in a 4-byte context
    got = nsh.dissect(tlv_over, 0, 12, _Ctx())
    assert not isinstance(got, Anomaly) and [a.kind for a in got.anomalies] == ["nsh.context-length"]
    v1 = struct.pack("!HBBI", (1 << 14) | 2, 2, 1, 0)
    got = nsh.dissect(v1, 0, 8, _Ctx())
    assert isinstance(got, Anomaly) and got.kind == "nsh.malformed"
