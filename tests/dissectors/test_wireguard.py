"""WireGuard: the four message types, sizes, little-endian indices, heuristic."""

from __future__ import annotations

import struct

from scapy.contrib.wireguard import (
    Wireguard,
    WireguardCookieReply,
    WireguardInitiation,
    WireguardResponse,
    WireguardTransport,
)
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether
from scapy.packet import Raw

from ipsotrace.dissectors import wireguard
from ipsotrace.dissectors.registry import DissectConfig, dissect_frame
from ipsotrace.records import Anomaly, Packet

ETH = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
OUTER = IP(src="192.0.2.1", dst="192.0.2.2")


class _Ctx:
    snaplen_cut = False
    partial = False


def _decode(payload: bytes, dport: int = 51820) -> Packet:
    return dissect_frame(bytes(ETH / OUTER / UDP(sport=40000, dport=dport) / Raw(payload)), 1, DissectConfig())


def test_initiation_every_field() -> None:
    msg = bytes(Wireguard() / WireguardInitiation(sender_index=0x11223344))
    assert len(msg) == 148
    pkt = _decode(msg)
    assert [x.proto for x in pkt.layers] == ["eth", "ipv4", "udp", "wireguard"]
    ly = pkt.layers[3]
    assert (ly.offset, ly.length) == (42, 148)
    assert ly.fields == {
        "message_type": 1,
        "message": "handshake-initiation",
        "encrypted": True,
        "sender_index": 0x11223344,
        "mac2_set": False,
    }
    assert pkt.anomalies == []


def test_response_cookie_transport() -> None:
    resp = bytes(Wireguard() / WireguardResponse(sender_index=5, receiver_index=0x11223344, mac2=b"\x01" * 16))
    got = wireguard.dissect(resp, 0, len(resp), _Ctx())
    assert not isinstance(got, Anomaly) and len(resp) == 92
    assert (got.fields["sender_index"], got.fields["receiver_index"], got.fields["mac2_set"]) == (5, 0x11223344, True)
    cookie = bytes(Wireguard() / WireguardCookieReply(receiver_index=9))
    got = wireguard.dissect(cookie, 0, len(cookie), _Ctx())
    assert not isinstance(got, Anomaly) and len(cookie) == 64
    assert (got.fields["message"], got.fields["receiver_index"]) == ("cookie-reply", 9)
    data = bytes(
        Wireguard() / WireguardTransport(receiver_index=9, counter=2**40 + 3, encrypted_encapsulated_packet=bytes(48))
    )
    got = wireguard.dissect(data, 0, len(data), _Ctx())
    assert not isinstance(got, Anomaly)
    assert got.fields == {
        "message_type": 4,
        "message": "transport-data",
        "encrypted": True,
        "receiver_index": 9,
        "counter": 2**40 + 3,
        "ciphertext_length": 48,
        "keepalive": False,
    }
    # little-endian on the wire
    assert data[4:8] == struct.pack("<I", 9)


def test_bad_sizes_and_types() -> None:
    init = bytes(Wireguard() / WireguardInitiation())
    got = wireguard.dissect(init + b"\0", 0, 149, _Ctx())
    assert not isinstance(got, Anomaly) and [a.kind for a in got.anomalies] == ["wireguard.bad-size"]
    got = wireguard.dissect(init, 0, 100, _Ctx())
    assert isinstance(got, Anomaly) and got.kind == "wireguard.truncated"
    got = wireguard.dissect(b"\x05\0\0\0" + bytes(28), 0, 32, _Ctx())
    assert isinstance(got, Anomaly) and got.kind == "wireguard.malformed"
    got = wireguard.dissect(b"\x04\0\1\0" + bytes(28), 0, 32, _Ctx())
    assert isinstance(got, Anomaly) and got.kind == "wireguard.malformed"
    got = wireguard.dissect(b"\x04\0\0", 0, 3, _Ctx())
    assert isinstance(got, Anomaly) and got.kind == "wireguard.truncated"


def test_heuristic() -> None:
    init = bytes(Wireguard() / WireguardInitiation())
    assert wireguard.heuristic(init, 0, len(init)) == 0.8
    pkt = _decode(init, dport=12345)
    assert [x.proto for x in pkt.layers][-1] == "wireguard"
    assert pkt.layers[2].fields["heuristic"] == {"proto": "wireguard", "confidence": 0.8}
    keepalive = b"\x04\0\0\0" + bytes(28)
    assert wireguard.heuristic(keepalive, 0, 32) == 0.6
    assert wireguard.heuristic(init + b"\0", 0, 149) == 0.0
    assert wireguard.heuristic(b"\x04\0\0\0" + bytes(29), 0, 33) == 0.0
