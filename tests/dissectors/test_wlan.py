"""802.11 data frames in Aruba GRE, A-MSDU subframes and LLC/SNAP."""

from __future__ import annotations

import struct

from scapy.layers.dot11 import Dot11, Dot11QoS
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import GRE, LLC, SNAP, Ether
from scapy.packet import Packet as ScapyPacket
from scapy.packet import Raw

from ipsotrace.dissectors import llc, wlan
from ipsotrace.dissectors.registry import DissectConfig, dissect_frame
from ipsotrace.records import Anomaly, Packet

ETH = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
OUTER = IP(src="192.0.2.1", dst="192.0.2.2")
INNER = IP(src="203.0.113.1", dst="203.0.113.2") / UDP(sport=1, dport=2)
A1, A2, A3, A4 = "02:00:00:00:00:a1", "02:00:00:00:00:a2", "02:00:00:00:00:a3", "02:00:00:00:00:a4"
RFC1042 = bytes(LLC(dsap=0xAA, ssap=0xAA, ctrl=3) / SNAP(OUI=0, code=0x0800))


class _Ctx:
    snaplen_cut = False
    partial = False


def _aruba(frame80211: ScapyPacket | bytes) -> Packet:
    return dissect_frame(bytes(ETH / OUTER / GRE(proto=0x8240) / Raw(bytes(frame80211))), 1, DissectConfig())


def _subframe(da: str, sa: str, msdu: bytes, pad: bool) -> bytes:
    raw = bytes.fromhex(da.replace(":", "")) + bytes.fromhex(sa.replace(":", "")) + struct.pack("!H", len(msdu)) + msdu
    return raw + b"\x00" * ((-len(raw)) % 4 if pad else 0)


def test_data_frame_from_ds_with_llc_snap() -> None:
    dot11 = Dot11(type=2, subtype=0, FCfield=0x02, addr1=A1, addr2=A2, addr3=A3, SC=0x1235, ID=0x002C)
    pkt = _aruba(dot11 / Raw(RFC1042 + bytes(INNER)))
    assert [(ly.proto, ly.depth) for ly in pkt.layers] == [
        ("eth", 0), ("ipv4", 0), ("gre", 0), ("wlan", 1), ("llc", 1), ("ipv4", 1), ("udp", 1),
    ]  # fmt: skip
    ly = pkt.layers[3]
    assert (ly.offset, ly.length) == (38, 24)
    assert ly.fields == {
        "type": 2,
        "subtype": 0,
        "flags": 0x02,
        "to_ds": False,
        "from_ds": True,
        "protected": False,
        "duration": 0x002C,
        "seq": 0x123,
        "frag": 5,
        "da": A1,
        "bssid": A2,
        "sa": A3,
    }
    assert pkt.layers[4].fields == {"dsap": 0xAA, "ssap": 0xAA, "control": 3, "oui": 0, "type": 0x0800}
    assert pkt.anomalies == []


def test_qos_amsdu_first_subframe_decoded_others_counted() -> None:
    first = _subframe(A1, A4, RFC1042 + bytes(INNER), pad=True)
    second = _subframe(A1, A4, RFC1042 + bytes(INNER), pad=False)
    dot11 = Dot11(type=2, subtype=8, FCfield=0x03, addr1=A1, addr2=A2, addr3=A3, addr4=A4)
    pkt = _aruba(dot11 / Dot11QoS(A_MSDU_Present=1, TID=5) / Raw(first + second))
    assert [ly.proto for ly in pkt.layers[3:]] == ["wlan", "amsdu", "llc", "ipv4", "udp"]
    w = pkt.layers[3]
    assert w.length == 32
    assert (w.fields["ra"], w.fields["ta"], w.fields["da"], w.fields["sa"]) == (A1, A2, A3, A4)
    assert (w.fields["tid"], w.fields["amsdu"]) == (5, True)
    sub = pkt.layers[4]
    assert sub.fields == {"da": A1, "sa": A4, "msdu_length": len(RFC1042) + len(INNER), "subframes": 2}
    assert pkt.anomalies == []


def test_protected_and_management_frames_stop() -> None:
    protected = _aruba(Dot11(type=2, subtype=0, FCfield=0x40, addr1=A1, addr2=A2, addr3=A3) / Raw(b"\x00" * 20))
    assert protected.layers[-1].proto == "wlan" and protected.layers[-1].fields["protected"] is True
    beacon = _aruba(Dot11(type=0, subtype=8, addr1=A1, addr2=A2, addr3=A3) / Raw(b"\x00" * 20))
    assert beacon.layers[-1].proto == "wlan" and beacon.layers[-1].fields["type"] == 0
    assert protected.anomalies == [] and beacon.anomalies == []


def test_llc_without_snap_and_non_ethertype_oui() -> None:
    res = llc.dissect(b"\x42\x42\x03\x00", 0, 4, _Ctx())
    assert not isinstance(res, Anomaly)
    assert (res.length, res.next, res.fields) == (3, None, {"dsap": 0x42, "ssap": 0x42, "control": 3})
    res = llc.dissect(b"\xaa\xaa\x03\x00\x00\x0c\x20\x00", 0, 8, _Ctx())  # Cisco OUI: CDP, not an Ethertype
    assert not isinstance(res, Anomaly) and res.next is None and res.fields["oui"] == 0x0C


def test_truncations() -> None:
    frame = bytes(Dot11(type=2, subtype=8, addr1=A1, addr2=A2, addr3=A3) / Dot11QoS())
    for cut in range(len(frame)):
        res = wlan.dissect(frame[:cut], 0, cut, _Ctx())
        assert isinstance(res, Anomaly) and res.kind == "wlan.truncated", cut
    res_sub = wlan.dissect_amsdu(b"\x00" * 13, 0, 13, _Ctx())
    assert isinstance(res_sub, Anomaly) and res_sub.kind == "amsdu.truncated"
    res_llc = llc.dissect(b"\xaa\xaa\x03\x00", 0, 4, _Ctx())
    assert isinstance(res_llc, Anomaly) and res_llc.kind == "llc.truncated"
    over = wlan.dissect_amsdu(b"\x00" * 12 + b"\x01\x00" + b"\x00" * 10, 0, 24, _Ctx())
    assert not isinstance(over, Anomaly)
    assert [a.kind for a in over.anomalies] == ["amsdu.length-exceeds-frame"]
