"""DTLS record layer: several records per datagram, encryption, heuristic (no fixed port)."""

from __future__ import annotations

import struct

from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether
from scapy.packet import Raw

from ipsotrace.dissectors import dtls
from ipsotrace.dissectors.registry import DissectConfig, dissect_frame
from ipsotrace.records import Anomaly, Packet

ETH = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
OUTER = IP(src="192.0.2.1", dst="192.0.2.2")


class _Ctx:
    snaplen_cut = False
    partial = False


def _record(ctype: int, version: int, epoch: int, seq: int, body: bytes) -> bytes:
    return struct.pack("!BHH", ctype, version, epoch) + seq.to_bytes(6, "big") + struct.pack("!H", len(body)) + body


def _decode(payload: bytes) -> Packet:
    return dissect_frame(bytes(ETH / OUTER / UDP(sport=40000, dport=4433) / Raw(payload)), 1, DissectConfig())


def test_handshake_flight_found_by_heuristic_every_field() -> None:
    flight = (
        _record(22, 0xFEFD, 0, 5, b"\x10" + bytes(11))  # client key exchange
        + _record(20, 0xFEFD, 0, 6, b"\x01")
        + _record(22, 0xFEFD, 1, 0, bytes(40))  # Finished, already under the new keys
    )
    pkt = _decode(flight)
    assert [x.proto for x in pkt.layers] == ["eth", "ipv4", "udp", "dtls"]
    assert pkt.layers[2].fields["heuristic"] == {"proto": "dtls", "confidence": 1.0}
    ly = pkt.layers[3]
    assert (ly.offset, ly.length) == (42, len(flight))
    assert ly.fields == {
        "content_type": 22,
        "version": "1.2",
        "epoch": 0,
        "seq": 5,
        "record_length": 12,
        "records": [
            {
                "content_type": 22,
                "type": "handshake",
                "version": "1.2",
                "epoch": 0,
                "seq": 5,
                "length": 12,
                "encrypted": False,
                "handshake_type": 16,
            },
            {
                "content_type": 20,
                "type": "change-cipher-spec",
                "version": "1.2",
                "epoch": 0,
                "seq": 6,
                "length": 1,
                "encrypted": False,
            },
            {
                "content_type": 22,
                "type": "handshake",
                "version": "1.2",
                "epoch": 1,
                "seq": 0,
                "length": 40,
                "encrypted": True,
            },
        ],
        "encrypted": True,
    }
    assert pkt.anomalies == []


def test_application_data_dtls10_and_trailing_bytes() -> None:
    rec = _record(23, 0xFEFF, 1, 2**40, bytes(32))
    got = dtls.dissect(rec + b"\x99\x99", 0, len(rec) + 2, _Ctx())
    assert not isinstance(got, Anomaly)
    assert (got.fields["version"], got.fields["seq"], got.fields["encrypted"]) == ("1.0", 2**40, True)
    assert got.length == len(rec)
    assert [a.kind for a in got.anomalies] == ["dtls.trailing-bytes"]


def test_not_dtls_and_truncated() -> None:
    got = dtls.dissect(_record(99, 0xFEFD, 0, 0, b"x"), 0, 14, _Ctx())
    assert isinstance(got, Anomaly) and got.kind == "dtls.malformed"
    got = dtls.dissect(_record(22, 0x0303, 0, 0, b"x"), 0, 14, _Ctx())  # TLS, not DTLS
    assert isinstance(got, Anomaly) and got.kind == "dtls.malformed"
    got = dtls.dissect(b"\x16\xfe\xfd", 0, 3, _Ctx())
    assert isinstance(got, Anomaly) and got.kind == "dtls.truncated"
    overlong = _record(22, 0xFEFD, 0, 0, bytes(10))[:-4]
    got = dtls.dissect(overlong, 0, len(overlong), _Ctx())
    assert isinstance(got, Anomaly) and got.kind == "dtls.malformed"


def test_heuristic_scores() -> None:
    rec = _record(23, 0xFEFD, 1, 9, bytes(20))
    assert dtls.heuristic(rec, 0, len(rec)) == 1.0
    assert dtls.heuristic(rec + b"\x01", 0, len(rec) + 1) == 0.5
    huge_epoch = _record(23, 0xFEFD, 0x1234, 9, bytes(20))
    assert dtls.heuristic(huge_epoch, 0, len(huge_epoch)) == 0.75
    assert dtls.heuristic(rec[:-4], 0, len(rec) - 4) == 0.25  # first record does not fit
    assert dtls.heuristic(b"\x17\x03\x03" + rec[3:], 0, len(rec)) == 0.0
