"""ERSPAN types I, II and III (with and without the platform subheader): every field compared."""

from __future__ import annotations

import struct

from scapy.contrib.erspan import ERSPAN_II, ERSPAN_III, ERSPAN_PlatformSpecific
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import GRE, Dot1Q, Ether
from scapy.packet import Packet as ScapyPacket
from scapy.packet import Raw

from ipsotrace.dissectors import erspan
from ipsotrace.dissectors.registry import DissectConfig, dissect_frame
from ipsotrace.records import Anomaly, Packet

ETH = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
OUTER = IP(src="192.0.2.1", dst="192.0.2.2")
MIRRORED = Ether(src="02:00:00:00:00:0a", dst="02:00:00:00:00:0b") / IP(src="203.0.113.1", dst="203.0.113.2") / UDP()
ERSPAN_OFF = 14 + 20 + 8  # GRE with sequence number


class _Ctx:
    snaplen_cut = False
    partial = False


def _decode(p: ScapyPacket | bytes) -> Packet:
    return dissect_frame(bytes(p), 1, DissectConfig())


def _protos(pkt: Packet) -> list[tuple[str, int]]:
    return [(ly.proto, ly.depth) for ly in pkt.layers]


def test_type_ii() -> None:
    hdr = ERSPAN_II(vlan=100, cos=5, en=2, t=1, session_id=0x3FF, index=0xABCDE)
    pkt = _decode(ETH / OUTER / GRE(seqnum_present=1, sequence_number=9, proto=0x88BE) / hdr / MIRRORED)
    assert _protos(pkt) == [("eth", 0), ("ipv4", 0), ("gre", 0), ("erspan", 0), ("eth", 1), ("ipv4", 1), ("udp", 1)]
    ly = pkt.layers[3]
    assert (ly.offset, ly.length) == (ERSPAN_OFF, 8)
    assert ly.fields == {
        "erspan_type": 2,
        "version": 1,
        "vlan": 100,
        "cos": 5,
        "truncated": True,
        "span_id": 0x3FF,
        "tunnel_id": 0x3FF,
        "encap_type": 2,
        "encap_name": "802.1q",
        "index": 0xABCDE,
    }
    assert pkt.layers[2].fields["seq"] == 9
    assert pkt.anomalies == []


def test_type_ii_reserved_bits() -> None:
    hdr = ERSPAN_II(session_id=7, reserved=1)
    pkt = _decode(ETH / OUTER / GRE(seqnum_present=1, proto=0x88BE) / hdr / MIRRORED)
    assert [a.kind for a in pkt.anomalies] == ["erspan.reserved-set"]
    assert pkt.layers[4].proto == "eth"


def test_type_iii_without_subheader() -> None:
    hdr = ERSPAN_III(vlan=20, cos=1, bso=3, t=0, session_id=101, timestamp=0xA3595BFF, sgt_other=0x1234,
                     p=1, ft=0, hw=33, d=1, gra=3, o=0)  # fmt: skip
    pkt = _decode(ETH / OUTER / GRE(proto=0x22EB) / hdr / MIRRORED)
    assert _protos(pkt)[2:5] == [("gre", 0), ("erspan", 0), ("eth", 1)]
    ly = pkt.layers[3]
    assert (ly.offset, ly.length) == (14 + 20 + 4, 12)
    assert ly.fields == {
        "erspan_type": 3,
        "version": 2,
        "vlan": 20,
        "cos": 1,
        "truncated": False,
        "span_id": 101,
        "tunnel_id": 101,
        "bso": 3,
        "timestamp": 0xA3595BFF,
        "sgt": 0x1234,
        "p": True,
        "frame_type": 0,
        "hw_id": 33,
        "direction": "egress",
        "granularity": 3,
        "granularity_name": "custom",
        "o": False,
    }
    assert pkt.anomalies == []


def test_type_iii_with_platform_subheader() -> None:
    hdr = ERSPAN_III(session_id=5, o=1) / ERSPAN_PlatformSpecific(platf_id=3, info1=0x2ABCDEF, info2=0x11223344)
    pkt = _decode(ETH / OUTER / GRE(seqnum_present=1, proto=0x22EB) / hdr / MIRRORED)
    ly = pkt.layers[3]
    assert ly.length == 20
    assert (ly.fields["o"], ly.fields["platform_id"]) == (True, 3)
    assert ly.fields["platform_info"] == (0x2ABCDEF << 32) | 0x11223344
    assert _protos(pkt)[4:] == [("eth", 1), ("ipv4", 1), ("udp", 1)]


def test_type_iii_frame_type_ip_and_unknown() -> None:
    ip_payload = IP(src="203.0.113.5", dst="203.0.113.6") / UDP()
    pkt = _decode(ETH / OUTER / GRE(proto=0x22EB) / ERSPAN_III(session_id=1, ft=2) / ip_payload)
    assert _protos(pkt)[3:] == [("erspan", 0), ("ipv4", 1), ("udp", 1)]
    pkt = _decode(ETH / OUTER / GRE(proto=0x22EB) / ERSPAN_III(session_id=1, ft=7) / Raw(b"\x00" * 40))
    assert [ly.proto for ly in pkt.layers][-1] == "erspan"
    assert pkt.layers[-1].fields["frame_type"] == 7
    assert pkt.anomalies == []


def test_type_i_layer_is_empty_and_carries_ethernet() -> None:
    frame = bytes(ETH / OUTER / GRE(proto=0x88BE) / Dot1Q(vlan=101) / IP() / UDP())
    res = erspan.dissect_type_i(frame, 38, len(frame), _Ctx())
    assert not isinstance(res, Anomaly)
    assert (res.fields, res.length, res.encap) == ({"erspan_type": 1}, 0, True)
    pkt = _decode(ETH / OUTER / GRE(proto=0x88BE) / MIRRORED)
    assert _protos(pkt)[3:5] == [("erspan", 0), ("eth", 1)]


def test_unknown_version_is_malformed() -> None:
    data = struct.pack("!HHI", 0x3000, 0, 0)
    res = erspan.dissect(data, 0, len(data), _Ctx())
    assert isinstance(res, Anomaly) and res.kind == "erspan.malformed"


def test_truncated_headers() -> None:
    full_ii = bytes(ERSPAN_II(session_id=1))
    full_iii = bytes(ERSPAN_III(session_id=1, o=1) / ERSPAN_PlatformSpecific())
    for data, size in ((full_ii, 8), (full_iii, 20)):
        for cut in range(size):
            res = erspan.dissect(data[:cut], 0, cut, _Ctx())
            assert isinstance(res, Anomaly) and res.kind == "erspan.truncated", (data, cut)
        assert not isinstance(erspan.dissect(data, 0, size, _Ctx()), Anomaly)


def test_cut_frame_never_raises() -> None:
    frame = bytes(ETH / OUTER / GRE(seqnum_present=1, proto=0x22EB) / ERSPAN_III(o=1) / ERSPAN_PlatformSpecific()
                  / MIRRORED)  # fmt: skip
    for cut in range(len(frame)):
        pkt = dissect_frame(frame[:cut], 1, DissectConfig())
        if cut > ERSPAN_OFF and cut < ERSPAN_OFF + 20:
            assert pkt.anomalies[-1].kind == "erspan.truncated"
