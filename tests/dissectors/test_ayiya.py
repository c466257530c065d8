"""AYIYA: header, identity, signature, forward vs. other opcodes, truncation."""

from __future__ import annotations

import socket
import struct

from scapy.layers.inet import IP, UDP
from scapy.layers.inet6 import ICMPv6EchoRequest, IPv6
from scapy.layers.l2 import Ether
from scapy.packet import Raw

from ipsotrace.dissectors import ayiya
from ipsotrace.dissectors.registry import DissectConfig, dissect_frame
from ipsotrace.records import Anomaly, Packet

ETH = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
OUTER = IP(src="192.0.2.1", dst="192.0.2.2")
IDENTITY = "2001:db8:f:4c::2"
SIG = bytes(range(20))
INNER = IPv6(src="2001:db8:f:4c::1", dst="2001:db8:f:4c::2") / ICMPv6EchoRequest()


class _Ctx:
    snaplen_cut = False
    partial = False


def _header(opcode: int, next_header: int = 41, id_byte: int = 0x41, epoch: int = 0x4AF64BFD) -> bytes:
    # 0x41: identity 2^4 = 16 bytes, type 1; 0x52: signature 5 × 4 = 20 bytes, SHA-1; 0x1?: shared secret
    return struct.pack("!BBBBI", id_byte, 0x52, 0x10 | opcode, next_header, epoch)


def _decode(payload: bytes) -> Packet:
    return dissect_frame(bytes(ETH / OUTER / UDP(sport=53859, dport=5072) / Raw(payload)), 1, DissectConfig())


def test_forward_every_field() -> None:
    ayi = _header(1) + socket.inet_pton(socket.AF_INET6, IDENTITY) + SIG
    pkt = _decode(ayi + bytes(INNER))
    assert [(x.proto, x.depth) for x in pkt.layers] == [
        ("eth", 0),
        ("ipv4", 0),
        ("udp", 0),
        ("ayiya", 0),
        ("ipv6", 1),
        ("icmpv6", 1),
    ]
    ly = pkt.layers[3]
    assert (ly.offset, ly.length) == (42, 44)
    assert ly.fields == {
        "identity_type": "integer",
        "identity": IDENTITY,
        "hash_method": "sha1",
        "signature": SIG.hex(),
        "auth_method": "shared-secret",
        "opcode": 1,
        "operation": "forward",
        "next_header": 41,
        "epoch": 0x4AF64BFD,
    }
    assert pkt.anomalies == []


def test_heartbeat_carries_no_packet() -> None:
    ayi = _header(0, next_header=59) + socket.inet_pton(socket.AF_INET6, IDENTITY) + SIG
    pkt = _decode(ayi)
    assert [x.proto for x in pkt.layers][-1] == "ayiya"
    assert pkt.layers[-1].fields["operation"] == "noop"
    echo = _header(2) + socket.inet_pton(socket.AF_INET6, IDENTITY) + SIG + bytes(INNER)
    got = ayiya.dissect(echo, 0, len(echo), _Ctx())
    assert not isinstance(got, Anomaly) and got.next is None and got.encap is False


def test_string_identity_and_short_forms() -> None:
    ayi = struct.pack("!BBBBI", 0x22, 0x00, 0x01, 4, 1) + b"tun1"
    inner4 = bytes(IP(src="203.0.113.1", dst="203.0.113.2") / UDP(sport=1, dport=2))
    got = ayiya.dissect(ayi + inner4, 0, len(ayi) + len(inner4), _Ctx())
    assert not isinstance(got, Anomaly)
    assert (got.length, got.fields["identity"], got.fields["signature"]) == (12, "tun1", "")
    assert (got.fields["hash_method"], got.fields["auth_method"]) == ("none", "none")
    assert got.next is not None and got.next.key == 4


def test_truncated() -> None:
    full = _header(1) + socket.inet_pton(socket.AF_INET6, IDENTITY) + SIG
    for cut in (0, 4, 7, 8, 23, 43):
        got = ayiya.dissect(full, 0, cut, _Ctx())
        assert isinstance(got, Anomaly) and got.kind == "ayiya.truncated", cut
