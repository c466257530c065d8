"""Ethernet II and 802.3: scapy-built frames dissected back, every field compared."""

from __future__ import annotations

from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import LLC, Dot3, Ether
from scapy.packet import Raw

from ipsotrace.dissectors import eth
from ipsotrace.dissectors.base import Next
from ipsotrace.dissectors.registry import DISSECTORS, DissectConfig, dissect_frame
from ipsotrace.records import Anomaly, Packet

SRC, DST = "02:00:00:00:00:01", "02:00:00:00:00:02"


def _decode(data: bytes, linktype: int = 1) -> Packet:
    return dissect_frame(data, linktype, DissectConfig())


def test_ethernet_ii() -> None:
    pkt = _decode(bytes(Ether(src=SRC, dst=DST) / IP(src="192.0.2.1", dst="192.0.2.2") / UDP(sport=1, dport=2)))
    ly = pkt.layers[0]
    assert (ly.proto, ly.offset, ly.length, ly.parent, ly.depth, ly.quoted) == ("eth", 0, 14, None, 0, False)
    assert ly.fields == {"src": SRC, "dst": DST, "type": 0x0800}
    assert [x.proto for x in pkt.layers] == ["eth", "ipv4", "udp"]
    assert pkt.anomalies == []


def test_unknown_ethertype_stops_after_ethernet() -> None:
    pkt = _decode(bytes(Ether(src=SRC, dst=DST, type=0x88B5) / Raw(b"\x01" * 40)))
    assert [x.proto for x in pkt.layers] == ["eth"]
    assert pkt.layers[0].fields["type"] == 0x88B5
    assert pkt.anomalies == []


def test_ieee_802_3_length_field_means_llc() -> None:
    frame = bytes(Dot3(src=SRC, dst=DST) / LLC(dsap=0x42, ssap=0x42, ctrl=3) / Raw(b"x" * 40)) + b"\0" * 6
    pkt = _decode(frame)
    assert pkt.layers[0].fields == {"src": SRC, "dst": DST, "type": 43, "llc": True}
    assert pkt.layers[0].length == 14
    res = eth.dissect(frame, 0, len(frame), _Ctx())
    assert not isinstance(res, Anomaly)
    assert res.next == Next("proto", "llc")
    assert res.end == 14 + 43  # the 802.3 length drops the padding
    if "llc" in DISSECTORS:
        assert [x.proto for x in pkt.layers] == ["eth", "llc"]
        assert pkt.layers[1].fields["dsap"] == 0x42


def test_novell_raw_802_3_has_no_llc() -> None:
    frame = bytes(Dot3(src=SRC, dst=DST, len=30)) + b"\xff\xff" + b"\0" * 28
    pkt = _decode(frame)
    assert [x.proto for x in pkt.layers] == ["eth"]
    assert pkt.layers[0].fields["llc"] is False


def test_module_function_direct() -> None:
    frame = bytes(Ether(src=SRC, dst=DST, type=0x86DD))
    res = eth.dissect(frame, 0, len(frame), _Ctx())
    assert not isinstance(res, Anomaly)
    assert res.length == 14 and res.next is not None and res.next.key == 0x86DD


def test_short_frame_is_truncated_not_an_error() -> None:
    pkt = _decode(bytes(Ether(src=SRC, dst=DST))[:10])
    assert pkt.layers == []
    assert [a.kind for a in pkt.anomalies] == ["eth.truncated"]
    assert pkt.anomalies[0].detail == "header needs 14 bytes, 10 captured"


class _Ctx:
    snaplen_cut = False
    partial = False
