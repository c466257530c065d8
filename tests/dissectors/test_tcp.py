"""TCP: every field, flags, options (MSS, window scale, SACK, timestamps), bad and cut headers."""

from __future__ import annotations

import pytest
from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether
from scapy.packet import Raw

from ipsotrace.dissectors.registry import DissectConfig, dissect_frame
from ipsotrace.dissectors.tcp import flag_string
from ipsotrace.records import Packet

ETH = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
IP4 = IP(src="192.0.2.1", dst="192.0.2.2")


def _decode(data: bytes, wirelen: int | None = None) -> Packet:
    return dissect_frame(data, 1, DissectConfig(), wirelen=wirelen)


def test_syn_with_all_common_options() -> None:
    opts = [("MSS", 1460), ("SAckOK", b""), ("Timestamp", (123456, 654321)), ("NOP", None), ("WScale", 7)]
    tcp = TCP(sport=40000, dport=443, seq=1000, ack=0, flags="S", window=64240, urgptr=0, options=opts)
    raw = bytes(ETH / IP4 / tcp)
    pkt = _decode(raw)
    ly = pkt.layers[2]
    hlen = (raw[34 + 12] >> 4) * 4
    assert (ly.proto, ly.offset, ly.length, ly.parent) == ("tcp", 34, hlen, 1)
    assert ly.fields == {
        "sport": 40000,
        "dport": 443,
        "seq": 1000,
        "ack": 0,
        "flags": 0x02,
        "flag_names": "SYN",
        "window": 64240,
        "checksum": int.from_bytes(raw[34 + 16 : 34 + 18], "big"),
        "urgent": 0,
        "header_length": hlen,
        "mss": 1460,
        "sack_permitted": True,
        "tsval": 123456,
        "tsecr": 654321,
        "wscale": 7,
        "payload_length": 0,
    }
    assert pkt.anomalies == []


def test_sack_blocks_and_payload() -> None:
    tcp = TCP(sport=1, dport=2, flags="A", options=[("NOP", None), ("NOP", None), ("SAck", (100, 200, 300, 400))])
    pkt = _decode(bytes(ETH / IP4 / tcp / Raw(b"p" * 33)))
    f = pkt.layers[2].fields
    assert f["sack"] == [[100, 200], [300, 400]]
    assert f["payload_length"] == 33
    assert f["flag_names"] == "ACK"


@pytest.mark.parametrize(
    ("flags", "names"),
    [("FSRPAUEC", "FIN,SYN,RST,PSH,ACK,URG,ECE,CWR"), ("SA", "SYN,ACK"), ("RA", "RST,ACK"), ("", "")],
)
def test_flags(flags: str, names: str) -> None:
    raw = bytes(ETH / IP4 / TCP(sport=1, dport=2, flags=flags, urgptr=9))
    f = _decode(raw).layers[2].fields
    assert f["flag_names"] == names
    assert f["flags"] == raw[34 + 13]
    assert f["urgent"] == 9


def test_accurate_ecn_bit() -> None:
    raw = bytes(ETH / IP4 / TCP(sport=1, dport=2, flags=0x110))
    f = _decode(raw).layers[2].fields
    assert f["flags"] == 0x110
    assert f["flag_names"] == "ACK,AE"
    assert flag_string(0x1FF) == "FIN,SYN,RST,PSH,ACK,URG,ECE,CWR,AE"


def test_bad_option_length() -> None:
    raw = bytearray(bytes(ETH / IP4 / TCP(sport=1, dport=2, options=[("MSS", 1460)])))
    raw[34 + 21] = 40  # MSS option length runs past the header
    pkt = _decode(bytes(raw))
    assert [a.kind for a in pkt.anomalies] == ["tcp.bad-option"]
    assert "mss" not in pkt.layers[2].fields


def test_data_offset_below_20_keeps_ports() -> None:
    pkt = _decode(bytes(ETH / IP4 / TCP(sport=5, dport=6, dataofs=3) / Raw(b"x" * 20)))
    assert pkt.layers[2].fields["sport"] == 5
    assert pkt.layers[2].fields["header_length"] == 12
    assert [a.kind for a in pkt.anomalies] == ["tcp.malformed"]


def test_options_cut_by_snaplen() -> None:
    raw = bytes(ETH / IP4 / TCP(sport=5, dport=6, options=[("Timestamp", (1, 2))] * 3))
    pkt = _decode(raw[: 34 + 24], wirelen=len(raw))
    assert pkt.truncated
    assert pkt.layers[2].fields["dport"] == 6
    assert pkt.layers[2].length == 24
    assert [a.kind for a in pkt.anomalies] == ["tcp.truncated"]
    assert "capture snaplen" in pkt.anomalies[0].detail
