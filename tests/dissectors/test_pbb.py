"""IEEE 802.1ah PBB I-tag: I-SID, PCP, DEI, UCA, then the customer Ethernet frame."""

from __future__ import annotations

import struct

from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Dot1Q, Ether
from scapy.packet import Raw

from ipsotrace.dissectors import pbb
from ipsotrace.dissectors.registry import DissectConfig, dissect_frame
from ipsotrace.records import Anomaly

BACKBONE = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
CUSTOMER = Ether(src="02:00:00:00:00:0a", dst="02:00:00:00:00:0b") / IP(src="203.0.113.1", dst="203.0.113.2") / UDP()


class _Ctx:
    snaplen_cut = False
    partial = False


def _itag(pcp: int, dei: int, uca: int, isid: int, res: int = 0) -> bytes:
    return struct.pack("!I", pcp << 29 | dei << 28 | uca << 27 | res << 24 | isid)


def test_b_tag_i_tag_customer_frame() -> None:
    frame = bytes(BACKBONE / Dot1Q(vlan=10, type=0x88E7) / Raw(_itag(5, 1, 1, 0xABCDEF) + bytes(CUSTOMER)))
    pkt = dissect_frame(frame, 1, DissectConfig())
    assert [(ly.proto, ly.depth) for ly in pkt.layers] == [
        ("eth", 0), ("vlan", 0), ("pbb", 0), ("eth", 1), ("ipv4", 1), ("udp", 1),
    ]  # fmt: skip
    ly = pkt.layers[2]
    assert (ly.offset, ly.length) == (18, 4)
    assert ly.fields == {"isid": 0xABCDEF, "tunnel_id": 0xABCDEF, "pcp": 5, "dei": 1, "uca": 1}
    assert pkt.layers[3].fields == {"src": "02:00:00:00:00:0a", "dst": "02:00:00:00:00:0b", "type": 0x0800}
    assert pkt.anomalies == []


def test_reserved_bits_and_truncation() -> None:
    data = _itag(0, 0, 0, 1, res=5)
    res = pbb.dissect(data, 0, 4, _Ctx())
    assert not isinstance(res, Anomaly)
    assert [a.kind for a in res.anomalies] == ["pbb.reserved-set"]
    short = pbb.dissect(data, 0, 3, _Ctx())
    assert isinstance(short, Anomaly) and short.kind == "pbb.truncated"
