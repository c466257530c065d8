"""LWAPP: data (802.11 follows), control, AP identity prefix, fragments, malformed."""

from __future__ import annotations

import struct

from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether
from scapy.packet import Raw

from ipsotrace.dissectors import lwapp
from ipsotrace.dissectors.registry import DissectConfig, dissect_frame
from ipsotrace.records import Anomaly, Packet

ETH = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
OUTER = IP(src="192.0.2.1", dst="192.0.2.2")
# 802.11 association request (management: the decode stops at the wlan layer)
WLAN = bytes.fromhex("00400000000b8524e890") + bytes(14)


class _Ctx:
    snaplen_cut = False
    partial = False


def _decode(payload: bytes, sport: int, dport: int) -> Packet:
    return dissect_frame(bytes(ETH / OUTER / UDP(sport=sport, dport=dport) / Raw(payload)), 1, DissectConfig())


def test_data_every_field() -> None:
    hdr = struct.pack("!BBHbB", 0x08, 0x1D, len(WLAN), -29, 66)  # radio 1, RSSI -29 dBm, SNR 66
    pkt = _decode(hdr + WLAN, 20105, 12222)
    assert [(x.proto, x.depth) for x in pkt.layers] == [
        ("eth", 0),
        ("ipv4", 0),
        ("udp", 0),
        ("lwapp", 0),
        ("wlan", 1),
    ]
    ly = pkt.layers[3]
    assert (ly.offset, ly.length) == (42, 6)
    assert ly.fields == {
        "version": 0,
        "radio_id": 1,
        "control": False,
        "fragment": False,
        "not_last": False,
        "frag_id": 0x1D,
        "lwapp_length": len(WLAN),
        "rssi": -29,
        "snr": 66,
    }


def test_control_with_and_without_ap_identity() -> None:
    ctl = struct.pack("!BBHI", 12, 150, 4, 0x52CC5AE6) + b"\x01\x02\x03\x04"
    got = lwapp.dissect(struct.pack("!BBHH", 0x04, 0xC0, len(ctl), 0) + ctl, 0, 6 + len(ctl), _Ctx())
    assert not isinstance(got, Anomaly)
    assert (got.length, got.next) == (6, None)
    f = got.fields
    assert (f["control"], f["msg_type"], f["seq"], f["msg_length"], f["session_id"]) == (True, 12, 150, 4, 0x52CC5AE6)
    assert "ap_identity" not in f and "rssi" not in f
    ap = bytes.fromhex("000b8524e890")
    data = ap + struct.pack("!BBHH", 0x04, 0, len(ctl), 0) + ctl
    pkt = _decode(data, 20105, 12223)
    ly = pkt.layers[3]
    assert (ly.proto, ly.length, ly.fields["ap_identity"], ly.fields["msg_type"]) == (
        "lwapp",
        12,
        "00:0b:85:24:e8:90",
        12,
    )
    assert pkt.anomalies == []


def test_fragment_is_not_decoded_further_and_errors() -> None:
    frag = struct.pack("!BBHH", 0x0A, 1, len(WLAN), 0) + WLAN
    got = lwapp.dissect(frag, 0, len(frag), _Ctx())
    assert not isinstance(got, Anomaly) and got.fields["fragment"] is True and got.next is None
    long_ = struct.pack("!BBHH", 0x08, 1, 500, 0) + WLAN
    got = lwapp.dissect(long_, 0, len(long_), _Ctx())
    assert not isinstance(got, Anomaly) and [a.kind for a in got.anomalies] == ["lwapp.length-exceeds-udp"]
    got = lwapp.dissect(struct.pack("!BBHH", 0x48, 1, 0, 0), 0, 6, _Ctx())
    assert isinstance(got, Anomaly) and got.kind == "lwapp.malformed"
    for cut in range(6):
        got = lwapp.dissect(frag, 0, cut, _Ctx())
        assert isinstance(got, Anomaly) and got.kind == "lwapp.truncated"
