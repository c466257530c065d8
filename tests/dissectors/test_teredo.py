"""Teredo: plain, origin indication, authentication, bubbles, Teredo addresses, heuristic."""

from __future__ import annotations

import struct

from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether
from scapy.packet import Raw

from ipsotrace.dissectors import teredo
from ipsotrace.dissectors.registry import DissectConfig, dissect_frame
from ipsotrace.records import Anomaly, Packet

ETH = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
OUTER = IP(src="192.0.2.1", dst="192.0.2.2")
# Teredo address: server 65.54.227.120, flags 0x8000 (cone), then port 40000 (0x9c40) and client
# 192.0.2.45 (0xc000022d) XORed with all ones
CLIENT = "2001:0:4136:e378:8000:63bf:3fff:fdd2"
INNER = IPv6(src=CLIENT, dst="2001:db8::68") / TCP(sport=1000, dport=80, flags="S")


class _Ctx:
    snaplen_cut = False
    partial = False


def _decode(payload: bytes, sport: int = 50000, dport: int = 3544, cfg: DissectConfig | None = None) -> Packet:
    return dissect_frame(bytes(ETH / OUTER / UDP(sport=sport, dport=dport) / Raw(payload)), 1, cfg or DissectConfig())


CLIENT_INFO = {
    "server": "65.54.227.120",
    "flags": 0x8000,
    "cone": True,
    "mapped_port": 40000,
    "mapped_addr": "192.0.2.45",
}


def test_plain_ipv6_every_field() -> None:
    pkt = _decode(bytes(INNER))
    assert [(x.proto, x.depth) for x in pkt.layers] == [
        ("eth", 0),
        ("ipv4", 0),
        ("udp", 0),
        ("teredo", 0),
        ("ipv6", 1),
        ("tcp", 1),
    ]
    ly = pkt.layers[3]
    assert (ly.offset, ly.length) == (42, 0)
    assert ly.fields == {"src_teredo": CLIENT_INFO, "bubble": False}
    assert pkt.layers[4].fields["src"] == CLIENT
    assert pkt.anomalies == []


def test_origin_indication_deobfuscated() -> None:
    origin = struct.pack("!HHI", 0, 3797 ^ 0xFFFF, 0xCB007105 ^ 0xFFFFFFFF)  # 203.0.113.5:3797
    bubble = IPv6(src="fe80::8000:f227:bec8:61af", dst=CLIENT, nh=59, plen=0)
    pkt = _decode(origin + bytes(bubble), sport=3544, dport=50000)
    assert [x.proto for x in pkt.layers][3:] == ["teredo", "ipv6"]
    ly = pkt.layers[3]
    assert ly.length == 8
    assert ly.fields == {
        "origin_port": 3797,
        "origin_addr": "203.0.113.5",
        "dst_teredo": CLIENT_INFO,
        "bubble": True,
    }


def test_authentication_then_origin() -> None:
    auth = struct.pack("!HBB", 1, 3, 2) + b"abc" + b"\x01\x02" + bytes(range(8)) + b"\x07"
    origin = struct.pack("!HHI", 0, 1 ^ 0xFFFF, 0x7F000001 ^ 0xFFFFFFFF)
    got = teredo.dissect(auth + origin + bytes(INNER), 0, len(auth) + 8 + len(INNER), _Ctx())
    assert not isinstance(got, Anomaly)
    assert got.length == len(auth) + 8 == 26
    assert got.fields["auth"] == {
        "client_id": "616263",
        "auth_value": "0102",
        "nonce": "0001020304050607",
        "confirmation": 7,
    }
    assert (got.fields["origin_port"], got.fields["origin_addr"]) == (1, "127.0.0.1")


def test_truncated_and_malformed() -> None:
    auth = struct.pack("!HBB", 1, 3, 2) + b"abc"
    for data in (b"\x00\x01\x00", auth, b"\x00\x00\x00\x01", struct.pack("!HHI", 0, 1, 2)):
        got = teredo.dissect(data, 0, len(data), _Ctx())
        assert isinstance(got, Anomaly) and got.kind == "teredo.truncated", data
    got = teredo.dissect(bytes(OUTER), 0, 20, _Ctx())
    assert isinstance(got, Anomaly) and got.kind == "teredo.malformed"


def test_heuristic_finds_teredo_on_other_ports_like_tshark() -> None:
    raw = bytes(INNER)
    assert teredo.heuristic(raw, 0, len(raw)) == 1.0
    pkt = _decode(raw, sport=3797, dport=32900)
    assert [x.proto for x in pkt.layers][3:] == ["teredo", "ipv6", "tcp"]
    assert pkt.layers[2].fields["heuristic"] == {"proto": "teredo", "confidence": 1.0}
    native = bytes(IPv6(src="2001:db8::1", dst="2001:db8::2") / TCP())
    assert teredo.heuristic(native, 0, len(native)) == 0.75
    padded = raw + b"\0\0"
    assert teredo.heuristic(padded, 0, len(padded)) == 0.75
    assert teredo.heuristic(bytes(OUTER / UDP()), 0, 28) == 0.0
    # without heuristics and off 3544 it stays plain UDP
    pkt = _decode(raw, sport=3797, dport=32900, cfg=DissectConfig(heuristics=False))
    assert [x.proto for x in pkt.layers] == ["eth", "ipv4", "udp"]
