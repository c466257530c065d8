"""ARP over Ethernet, and a non-IPv4 protocol address kept raw."""

from __future__ import annotations

import struct

from scapy.layers.l2 import ARP, Ether

from ipsotrace.dissectors.registry import DissectConfig, dissect_frame

ETH = Ether(src="02:00:00:00:00:01", dst="ff:ff:ff:ff:ff:ff")


def test_request_and_reply() -> None:
    req = ARP(op=1, hwsrc="02:00:00:00:00:01", psrc="192.0.2.1", hwdst="00:00:00:00:00:00", pdst="192.0.2.2")
    pkt = dissect_frame(bytes(ETH / req), 1, DissectConfig())
    ly = pkt.layers[1]
    assert (ly.proto, ly.offset, ly.length, ly.parent) == ("arp", 14, 28, 0)
    assert ly.fields == {
        "htype": 1,
        "ptype": 0x0800,
        "op": 1,
        "sender_mac": "02:00:00:00:00:01",
        "sender_ip": "192.0.2.1",
        "target_mac": "00:00:00:00:00:00",
        "target_ip": "192.0.2.2",
    }
    rep = ARP(op=2, hwsrc="02:00:00:00:00:02", psrc="192.0.2.2", hwdst="02:00:00:00:00:01", pdst="192.0.2.1")
    f = dissect_frame(bytes(ETH / rep), 1, DissectConfig()).layers[1].fields
    assert (f["op"], f["sender_ip"], f["target_mac"]) == (2, "192.0.2.2", "02:00:00:00:00:01")
    assert dissect_frame(bytes(ETH / rep), 1, DissectConfig()).anomalies == []


def test_other_protocol_type_kept_raw() -> None:
    body = struct.pack("!HHBBH", 1, 0x86DD, 6, 16, 1) + b"\x02" * 6 + b"\x20" * 16 + b"\0" * 6 + b"\x21" * 16
    pkt = dissect_frame(
        bytes(Ether(src="02:00:00:00:00:01", dst="ff:ff:ff:ff:ff:ff", type=0x0806)) + body, 1, DissectConfig()
    )
    f = pkt.layers[1].fields
    assert f["sender_ip"] == "20" * 16
    assert f["target_ip"] == "21" * 16
    assert pkt.layers[1].length == 8 + 2 * (6 + 16)


def test_truncated() -> None:
    raw = bytes(ETH / ARP(psrc="192.0.2.1", pdst="192.0.2.2"))[: 14 + 20]
    pkt = dissect_frame(raw, 1, DissectConfig())
    assert [x.proto for x in pkt.layers] == ["eth"]
    assert [a.kind for a in pkt.anomalies] == ["arp.truncated"]
