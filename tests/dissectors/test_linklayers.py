"""Capture pseudo-headers: Linux SLL and SLL2, BSD null/loopback (both byte orders), raw IP link types."""

from __future__ import annotations

import struct

import pytest
from scapy.layers.inet import IP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import CookedLinux, CookedLinuxV2, Ether

from ipsotrace.dissectors.registry import DISSECTORS, DissectConfig, dissect_frame
from ipsotrace.records import Packet

IP4 = IP(src="192.0.2.1", dst="192.0.2.2") / UDP(sport=1234, dport=53)
IP6 = IPv6(src="2001:db8::1", dst="2001:db8::2") / UDP(sport=1234, dport=53)


def _decode(data: bytes, linktype: int) -> Packet:
    return dissect_frame(data, linktype, DissectConfig())


def test_sll() -> None:
    sll = CookedLinux(pkttype=4, lladdrtype=1, lladdrlen=6, src=bytes.fromhex("020000000001") + b"\0\0", proto=0x0800)
    pkt = _decode(bytes(sll / IP4), 113)
    assert [x.proto for x in pkt.layers] == ["sll", "ipv4", "udp"]
    ly = pkt.layers[0]
    assert (ly.offset, ly.length) == (0, 16)
    assert ly.fields == {"pkttype": 4, "hatype": 1, "src_addr": "02:00:00:00:00:01", "protocol": 0x0800}
    assert pkt.layers[1].fields["src"] == "192.0.2.1"
    assert pkt.anomalies == []


def test_sll2() -> None:
    sll2 = CookedLinuxV2(
        proto=0x86DD, ifindex=7, lladdrtype=1, pkttype=0, lladdrlen=6, src=bytes.fromhex("0200000000aa") + b"\0\0"
    )
    pkt = _decode(bytes(sll2 / IP6), 276)
    assert [x.proto for x in pkt.layers] == ["sll2", "ipv6", "udp"]
    ly = pkt.layers[0]
    assert (ly.offset, ly.length) == (0, 20)
    assert ly.fields == {"protocol": 0x86DD, "ifindex": 7, "hatype": 1, "pkttype": 0, "src_addr": "02:00:00:00:00:aa"}
    assert pkt.layers[1].fields["dst"] == "2001:db8::2"


def test_sll_non_ethertype_protocol_stops() -> None:
    sll = struct.pack("!HHH8sH", 0, 280, 0, b"\0" * 8, 0x000C)
    pkt = _decode(sll + b"\0" * 16, 113)
    assert [x.proto for x in pkt.layers] == ["sll"]
    assert pkt.layers[0].fields["payload"] == "can"


def test_sll_llc() -> None:
    sll = struct.pack("!HHH8sH", 0, 1, 6, b"\x02" * 8, 0x0004)
    pkt = _decode(sll + b"\x42\x42\x03" + b"\0" * 30, 113)
    assert pkt.layers[0].fields["protocol"] == 4
    if "llc" in DISSECTORS:  # LLC is another engineer's module; without it the stack stops at SLL
        assert [x.proto for x in pkt.layers] == ["sll", "llc"]
    else:
        assert [x.proto for x in pkt.layers] == ["sll"]


def test_sll_protocol_3_carries_ethernet() -> None:
    frame = bytes(Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / IP4)
    pkt = _decode(struct.pack("!HHH8sH", 0, 1, 6, b"\x02" * 8, 0x0003) + frame, 113)
    assert [x.proto for x in pkt.layers] == ["sll", "eth", "ipv4", "udp"]


def test_sll_netlink_is_not_an_ethertype() -> None:
    # nlmon captures: hatype ARPHRD_NETLINK, protocol = netlink family (0 = route), not Ethertype 0.
    pkt = _decode(struct.pack("!HHH8sH", 4, 824, 0, b"\0" * 8, 0x0800) + b"\0" * 20, 113)
    assert [x.proto for x in pkt.layers] == ["sll"]
    assert pkt.layers[0].fields["payload"] == "netlink"


@pytest.mark.parametrize("order", ["<", ">"])
@pytest.mark.parametrize(("family", "payload", "proto"), [(2, IP4, "ipv4"), (24, IP6, "ipv6"), (30, IP6, "ipv6")])
def test_null_loopback_both_byte_orders(order: str, family: int, payload: object, proto: str) -> None:
    pkt = _decode(struct.pack(order + "I", family) + bytes(payload), 0)  # type: ignore[call-overload]
    assert [x.proto for x in pkt.layers] == ["null", proto, "udp"]
    assert pkt.layers[0].fields == {"family": family}
    assert pkt.layers[0].length == 4


def test_openbsd_loop_network_order() -> None:
    pkt = _decode(struct.pack(">I", 2) + bytes(IP4), 108)
    assert [x.proto for x in pkt.layers] == ["null", "ipv4", "udp"]


def test_null_unknown_family_is_malformed() -> None:
    pkt = _decode(struct.pack("<I", 99) + bytes(IP4), 0)
    assert pkt.layers == []
    assert [a.kind for a in pkt.anomalies] == ["null.malformed"]
    assert "99" in pkt.anomalies[0].detail


@pytest.mark.parametrize("linktype", [101, 12, 14])
def test_raw_ip_chooses_by_version(linktype: int) -> None:
    assert [x.proto for x in _decode(bytes(IP4), linktype).layers] == ["ipv4", "udp"]
    assert [x.proto for x in _decode(bytes(IP6), linktype).layers] == ["ipv6", "udp"]
    assert _decode(b"\x50" + b"\0" * 30, linktype).layers == []


def test_raw_ipv4_and_ipv6_link_types() -> None:
    p4 = _decode(bytes(IP4), 228)
    assert [x.proto for x in p4.layers] == ["ipv4", "udp"]
    assert (p4.layers[0].offset, p4.layers[0].parent) == (0, None)
    p6 = _decode(bytes(IP6), 229)
    assert [x.proto for x in p6.layers] == ["ipv6", "udp"]


def test_unsupported_linktype_is_an_anomaly() -> None:
    pkt = _decode(b"\0" * 40, 147)
    assert pkt.layers == []
    assert [a.kind for a in pkt.anomalies] == ["frame.unsupported-linktype"]
