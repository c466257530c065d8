"""GTP-U: G-PDU with IPv4/IPv6, optional fields, extension chain (PDU session container), signalling, heuristic."""

from __future__ import annotations

import struct

from scapy.contrib.gtp import GTP_U_Header, GTPEchoRequest, GTPPDUSessionContainer
from scapy.layers.inet import IP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether
from scapy.packet import Raw

from ipsotrace.dissectors import gtpu
from ipsotrace.dissectors.registry import DissectConfig, dissect_frame
from ipsotrace.records import Anomaly, Packet

ETH = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
OUTER = IP(src="192.0.2.1", dst="192.0.2.2")
INNER4 = IP(src="203.0.113.1", dst="203.0.113.2") / UDP(sport=1000, dport=2000) / Raw(b"data")
INNER6 = IPv6(src="2001:db8::1", dst="2001:db8::2") / UDP(sport=1000, dport=2000)
GTP_OFF = 14 + 20 + 8


class _Ctx:
    snaplen_cut = False
    partial = False


def _decode(data: bytes, cfg: DissectConfig | None = None) -> Packet:
    return dissect_frame(data, 1, cfg or DissectConfig())


def _frame(gtp: bytes, sport: int = 2152, dport: int = 2152) -> bytes:
    return bytes(ETH / OUTER / UDP(sport=sport, dport=dport) / Raw(gtp))


def test_gpdu_ipv4_every_field() -> None:
    gtp = GTP_U_Header(teid=0x8C61BE36) / INNER4
    pkt = _decode(_frame(bytes(gtp)))
    assert [(x.proto, x.depth) for x in pkt.layers] == [
        ("eth", 0),
        ("ipv4", 0),
        ("udp", 0),
        ("gtpu", 0),
        ("ipv4", 1),
        ("udp", 1),
    ]
    ly = pkt.layers[3]
    assert (ly.offset, ly.length) == (GTP_OFF, 8)
    assert ly.fields == {
        "tunnel_id": 0x8C61BE36,
        "teid": 0x8C61BE36,
        "version": 1,
        "pt": 1,
        "e_flag": False,
        "s_flag": False,
        "pn_flag": False,
        "message_type": 255,
        "message": "g-pdu",
        "gtp_length": len(INNER4),
    }
    assert pkt.anomalies == []


def test_sequence_number_and_ipv6_payload() -> None:
    gtp = GTP_U_Header(teid=7, S=1, seq=0x1234, npdu=0x56) / INNER6
    pkt = _decode(_frame(bytes(gtp)))
    assert [x.proto for x in pkt.layers][3:] == ["gtpu", "ipv6", "udp"]
    f = pkt.layers[3].fields
    assert pkt.layers[3].length == 12
    assert (f["s_flag"], f["seq"], f["next_ext"], f["gtp_length"]) == (True, 0x1234, 0, 4 + len(INNER6))
    assert "npdu" not in f  # PN flag clear: the N-PDU byte is not meaningful


def test_pdu_session_container_qfi() -> None:
    gtp = GTP_U_Header(teid=0x100657, E=1, next_ex=0x85) / GTPPDUSessionContainer(type=1, QFI=9) / INNER4
    raw = bytes(gtp)
    pkt = _decode(_frame(raw, sport=9000))
    assert [x.proto for x in pkt.layers][3:] == ["gtpu", "ipv4", "udp"]
    ly = pkt.layers[3]
    assert ly.length == 16
    assert ly.fields["next_ext"] == 0x85
    assert ly.fields["qfi"] == 9
    assert ly.fields["extensions"] == [
        {
            "type": 0x85,
            "length": 4,
            "content": raw[13:15].hex(),
            "name": "pdu-session-container",
            "pdu_type": "ul",
            "qfi": 9,
        }
    ]


def test_downlink_container_and_chained_extension() -> None:
    # DL PDU session container (PPP + RQI set, QFI 5) followed by a PDCP PDU number extension.
    ext = bytes([1, 0x00, 0x80 | 0x40 | 5, 0xC0]) + bytes([1, 0x12, 0x34, 0x00])
    body = struct.pack("!HBB", 0, 0, 0x85) + ext + bytes(INNER4)
    gtp = struct.pack("!BBHI", 0x34, 255, len(body), 1) + body
    got = gtpu.dissect(gtp, 0, len(gtp), _Ctx())
    assert not isinstance(got, Anomaly)
    assert got.length == 20
    assert got.fields["extensions"] == [
        {
            "type": 0x85,
            "length": 4,
            "content": "00c5",
            "name": "pdu-session-container",
            "pdu_type": "dl",
            "qfi": 5,
            "ppp": True,
            "rqi": True,
        },
        {"type": 0xC0, "length": 4, "content": "1234", "name": "pdcp-pdu-number"},
    ]
    assert got.encap is True


def test_echo_request_has_no_payload_layer() -> None:
    gtp = GTP_U_Header(teid=0, S=1, seq=3) / GTPEchoRequest()
    pkt = _decode(_frame(bytes(gtp)))
    assert [x.proto for x in pkt.layers][-1] == "gtpu"
    f = pkt.layers[3].fields
    assert (f["message_type"], f["message"], f["seq"]) == (1, "echo-request", 3)
    got = gtpu.dissect(bytes(gtp), 0, len(gtp), _Ctx())
    assert not isinstance(got, Anomaly) and got.encap is False and got.next is None


def test_end_marker_and_error_indication_ies_kept_raw() -> None:
    ies = bytes.fromhex("100000abcd")
    gtp = struct.pack("!BBHI", 0x30, 26, len(ies), 9) + ies
    got = gtpu.dissect(gtp, 0, len(gtp), _Ctx())
    assert not isinstance(got, Anomaly)
    assert (got.fields["message"], got.fields["ies"], got.next) == ("error-indication", "100000abcd", None)
    end_marker = struct.pack("!BBHI", 0x30, 254, 0, 9)
    got = gtpu.dissect(end_marker, 0, 8, _Ctx())
    assert not isinstance(got, Anomaly) and got.fields["message"] == "end-marker" and "ies" not in got.fields


def test_malformed_and_truncated() -> None:
    for cut in range(8):
        got = gtpu.dissect(b"\x30\xff" + b"\0" * 6, 0, cut, _Ctx())
        assert isinstance(got, Anomaly) and got.kind == "gtpu.truncated"
    v2 = struct.pack("!BBHI", 0x48, 255, 0, 1)  # GTPv2-C on the user plane port
    got = gtpu.dissect(v2, 0, 8, _Ctx())
    assert isinstance(got, Anomaly) and got.kind == "gtpu.malformed"
    prime = struct.pack("!BBHI", 0x20, 255, 0, 1)  # PT = 0: GTP'
    got = gtpu.dissect(prime, 0, 8, _Ctx())
    assert isinstance(got, Anomaly) and got.kind == "gtpu.malformed"
    small = struct.pack("!BBHI", 0x32, 255, 2, 1) + b"\0" * 8  # S set but length 2 < 4
    got = gtpu.dissect(small, 0, len(small), _Ctx())
    assert isinstance(got, Anomaly) and got.kind == "gtpu.malformed"
    zero_ext = struct.pack("!BBHI", 0x34, 255, 8, 1) + struct.pack("!HBB", 0, 0, 0x85) + b"\x00\x00\x00\x00"
    got = gtpu.dissect(zero_ext, 0, len(zero_ext), _Ctx())
    assert not isinstance(got, Anomaly)
    assert [a.kind for a in got.anomalies] == ["gtpu.malformed"]
    long_ = struct.pack("!BBHI", 0x30, 255, 100, 1) + bytes(INNER4)
    pkt = _decode(_frame(long_))
    assert "gtpu.length-exceeds-udp" in [a.kind for a in pkt.anomalies]


def test_heuristic_on_other_port() -> None:
    gtp = bytes(GTP_U_Header(teid=5) / INNER4)
    assert gtpu.heuristic(gtp, 0, len(gtp)) == 1.0
    pkt = _decode(_frame(gtp, sport=40000, dport=40001))
    assert [x.proto for x in pkt.layers][3:] == ["gtpu", "ipv4", "udp"]
    assert pkt.layers[2].fields["heuristic"] == {"proto": "gtpu", "confidence": 1.0}
    with_ext = bytes(GTP_U_Header(teid=5, E=1, next_ex=0x85) / GTPPDUSessionContainer(type=1, QFI=1) / INNER4)
    assert gtpu.heuristic(with_ext, 0, len(with_ext)) == 1.0
    wrong_len = gtp[:2] + struct.pack("!H", 3) + gtp[4:]
    assert gtpu.heuristic(wrong_len, 0, len(wrong_len)) == 0.75
    echo = bytes(GTP_U_Header(teid=0) / GTPEchoRequest())
    assert gtpu.heuristic(echo, 0, len(echo)) == 0.0
    garbage = gtp[:8] + b"\x99" * 20
    assert gtpu.heuristic(garbage, 0, len(garbage)) < 0.6
