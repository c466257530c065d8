"""GRE, NVGRE, enhanced GRE (PPTP), GRE-in-UDP: built with scapy/struct, dissected back, every field compared."""

from __future__ import annotations

import random
import struct

from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import GRE, GRE_PPTP, Ether
from scapy.layers.ppp import PPP
from scapy.packet import Packet as ScapyPacket
from scapy.packet import Raw

from ipsotrace.dissectors import erspan, gre, llc, mpls, pbb, ppp, wccp, wlan
from ipsotrace.dissectors.base import Decoded
from ipsotrace.dissectors.registry import DissectConfig, dissect_frame
from ipsotrace.records import Anomaly, Packet

ETH = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
OUTER = IP(src="192.0.2.1", dst="192.0.2.2")
INNER = IP(src="203.0.113.1", dst="203.0.113.2") / UDP(sport=1000, dport=2000)
GRE_OFF = 34  # Ethernet 14 + IPv4 20


class _Ctx:
    snaplen_cut = False
    partial = False


def _decode(p: ScapyPacket | bytes) -> Packet:
    return dissect_frame(bytes(p), 1, DissectConfig())


def _over_ip(gre_and_payload: bytes) -> bytes:
    return bytes(ETH / IP(src="192.0.2.1", dst="192.0.2.2", proto=47) / Raw(gre_and_payload))


def _protos(pkt: Packet) -> list[tuple[str, int]]:
    return [(ly.proto, ly.depth) for ly in pkt.layers]


def test_plain_gre_carrying_ipv4() -> None:
    pkt = _decode(ETH / OUTER / GRE() / INNER)
    assert _protos(pkt) == [("eth", 0), ("ipv4", 0), ("gre", 0), ("ipv4", 1), ("udp", 1)]
    ly = pkt.layers[2]
    assert (ly.offset, ly.length, ly.parent) == (GRE_OFF, 4, 1)
    assert ly.fields == {"version": 0, "protocol": 0x0800, "flags": 0}
    assert "tunnel_id" not in ly.fields
    assert pkt.layers[3].fields["src"] == "203.0.113.1"
    assert pkt.anomalies == []


def test_checksum_key_and_sequence() -> None:
    frame = bytes(ETH / OUTER / GRE(chksum_present=1, key_present=1, seqnum_present=1, key=0x01020304,
                                    sequence_number=77) / INNER)  # fmt: skip
    pkt = _decode(frame)
    ly = pkt.layers[2]
    (checksum,) = struct.unpack_from("!H", frame, GRE_OFF + 4)
    assert ly.length == 16
    assert ly.fields == {
        "version": 0,
        "protocol": 0x0800,
        "flags": 0xB000,
        "checksum": checksum,
        "checksum_ok": True,
        "key": 0x01020304,
        "tunnel_id": 0x01020304,
        "seq": 77,
    }
    assert _protos(pkt)[3:] == [("ipv4", 1), ("udp", 1)]
    assert pkt.anomalies == []


def test_bad_checksum_is_a_soft_anomaly() -> None:
    frame = bytearray(bytes(ETH / OUTER / GRE(chksum_present=1) / INNER))
    frame[GRE_OFF + 4] ^= 0xFF
    pkt = _decode(bytes(frame))
    assert pkt.layers[2].fields["checksum_ok"] is False
    assert [a.kind for a in pkt.anomalies] == ["gre.bad-checksum"]
    assert pkt.layers[3].proto == "ipv4"  # still decoded


def test_nvgre_vsid_and_flow_id() -> None:
    inner_eth = Ether(src="02:00:00:00:00:0a", dst="02:00:00:00:00:0b")
    pkt = _decode(ETH / OUTER / GRE(key_present=1, key=0x12345601, proto=0x6558) / inner_eth / INNER)
    ly = pkt.layers[2]
    assert ly.fields == {
        "version": 0,
        "protocol": 0x6558,
        "flags": 0x2000,
        "key": 0x12345601,
        "tunnel_id": 0x12345601,
        "vsid": 0x123456,
        "flow_id": 0x01,
    }
    assert _protos(pkt)[3:] == [("eth", 1), ("ipv4", 1), ("udp", 1)]
    assert pkt.layers[3].fields["src"] == "02:00:00:00:00:0a"


def test_key_without_teb_has_no_nvgre_fields() -> None:
    pkt = _decode(ETH / OUTER / GRE(key_present=1, key=0xFFFFFFFF) / INNER)
    assert pkt.layers[2].fields == {
        "version": 0,
        "protocol": 0x0800,
        "flags": 0x2000,
        "key": 0xFFFFFFFF,
        "tunnel_id": 0xFFFFFFFF,
    }


def test_enhanced_gre_pptp_with_ack() -> None:
    g = GRE_PPTP(seqnum_present=1, acknum_present=1, call_id=0x1234, sequence_number=5, ack_number=4)
    frame = bytes(ETH / OUTER / g / PPP(proto=0x0021) / INNER)
    pkt = _decode(frame)
    ly = pkt.layers[2]
    payload_len = len(frame) - GRE_OFF - 16
    assert ly.length == 16
    assert ly.fields == {
        "version": 1,
        "protocol": 0x880B,
        "flags": 0x3081,
        "payload_length": payload_len,
        "call_id": 0x1234,
        "tunnel_id": 0x1234,
        "seq": 5,
        "ack": 4,
    }
    assert _protos(pkt)[3:] == [("ppp", 1), ("ipv4", 1), ("udp", 1)]
    assert pkt.anomalies == []


def test_pptp_without_key_is_flagged() -> None:
    frame = ETH / OUTER / GRE(version=1, proto=0x880B) / PPP(proto=0x0021) / INNER
    pkt = _decode(frame)
    assert "gre.malformed-pptp" in [a.kind for a in pkt.anomalies]


def test_gre_in_udp_port_4754() -> None:
    pkt = _decode(ETH / OUTER / UDP(sport=50000, dport=4754) / GRE(key_present=1, key=9) / INNER)
    assert _protos(pkt) == [("eth", 0), ("ipv4", 0), ("udp", 0), ("gre", 0), ("ipv4", 1), ("udp", 1)]
    assert pkt.layers[3].fields["key"] == 9


def test_erspan_type_i_is_chosen_by_missing_sequence_number() -> None:
    mirrored = Ether(src="02:00:00:00:00:0a", dst="02:00:00:00:00:0b") / INNER
    pkt = _decode(ETH / OUTER / GRE(proto=0x88BE) / mirrored)
    assert _protos(pkt)[2:] == [("gre", 0), ("erspan", 0), ("eth", 1), ("ipv4", 1), ("udp", 1)]
    er = pkt.layers[3]
    assert (er.offset, er.length, er.fields) == (GRE_OFF + 4, 0, {"erspan_type": 1})


def test_rfc1701_routing_entries() -> None:
    sre = struct.pack("!HBB", 0x0800, 0, 4) + bytes([192, 0, 2, 9])
    header = struct.pack("!HHHH", 0x4000, 0x0800, 0, 0, ) + sre + struct.pack("!HBB", 0, 0, 0)  # fmt: skip
    pkt = _decode(_over_ip(header + bytes(INNER)))
    ly = pkt.layers[2]
    assert ly.length == len(header)
    assert ly.fields == {
        "version": 0,
        "protocol": 0x0800,
        "flags": 0x4000,
        "routing_offset": 0,
        "routing": [{"family": 0x0800, "sre_offset": 0, "info": "c0000209"}],
    }
    assert pkt.layers[3].proto == "ipv4"


def test_reserved_flags_and_recursion() -> None:
    header = struct.pack("!HH", 0x0340, 0x0800)  # recursion 3, reserved flag bit 0x40
    pkt = _decode(_over_ip(header + bytes(INNER)))
    assert pkt.layers[2].fields["recursion"] == 3
    assert [a.kind for a in pkt.anomalies] == ["gre.reserved-set"]


def test_unknown_version_stops_with_anomaly() -> None:
    pkt = _decode(_over_ip(struct.pack("!HH", 0x0002, 0x0800) + bytes(INNER)))
    assert [ly.proto for ly in pkt.layers] == ["eth", "ipv4", "gre"]
    assert [a.kind for a in pkt.anomalies] == ["gre.unknown-version"]


def test_truncated_optional_fields() -> None:
    header = struct.pack("!HHI", 0xB000, 0x0800, 0)  # C, K, S announce 12 bytes, 4 present
    res = gre.dissect(header, 0, len(header), _Ctx())
    assert isinstance(res, Anomaly)
    assert (res.kind, res.offset) == ("gre.truncated", 0)


def test_truncated_routing_list() -> None:
    header = struct.pack("!HHHH", 0x4000, 0x0800, 0, 0) + struct.pack("!HBB", 0x0800, 0, 8) + b"\x01"
    res = gre.dissect(header, 0, len(header), _Ctx())
    assert isinstance(res, Anomaly) and res.kind == "gre.truncated"


def test_every_prefix_never_raises() -> None:
    g = GRE(chksum_present=1, key_present=1, seqnum_present=1, key=1, proto=0x6558)
    frame = bytes(ETH / OUTER / g / Ether() / INNER / Raw(b"x" * 8))
    for cut in range(GRE_OFF, len(frame)):
        data = frame[:cut]
        res = gre.dissect(data, GRE_OFF, cut, _Ctx())
        if cut - GRE_OFF < 16:
            assert isinstance(res, Anomaly) and res.kind == "gre.truncated"
        else:
            assert not isinstance(res, Anomaly)
        dissect_frame(data, 1, DissectConfig())


def test_gre_family_never_raises_on_random_bytes() -> None:
    funcs = (gre.dissect, erspan.dissect, erspan.dissect_type_i, mpls.dissect, mpls.dissect_control_word,
             ppp.dissect, pbb.dissect, wccp.dissect, wlan.dissect, wlan.dissect_amsdu, llc.dissect)  # fmt: skip
    rng = random.Random(4754)
    for _ in range(3000):
        data = rng.randbytes(rng.randrange(0, 48))
        off = rng.randrange(0, len(data) + 1)
        for fn in funcs:
            res = fn(data, off, len(data), _Ctx())
            assert isinstance(res, Anomaly | Decoded)
            if isinstance(res, Decoded):
                assert off + res.length <= len(data)
        frame = bytes(ETH / OUTER / GRE(proto=rng.choice((0x88BE, 0x22EB, 0x880B, 0x883E, 0x8847, 0x8240))))
        dissect_frame(frame + data, 1, DissectConfig())
