"""Heuristic tunnel detection: VXLAN scoring, precedence of configured ports, no false positives."""

from __future__ import annotations

import random

from scapy.contrib.geneve import GENEVE
from scapy.contrib.gtp import GTP_U_Header
from scapy.layers.dhcp import BOOTP, DHCP
from scapy.layers.dns import DNS, DNSQR
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.l2 import Ether
from scapy.layers.ntp import NTP
from scapy.packet import Raw

from ipsotrace.dissectors import vxlan
from ipsotrace.dissectors.registry import HEURISTIC_THRESHOLD, HEURISTICS, DissectConfig, dissect_frame
from ipsotrace.records import Packet

ETH = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
OUTER = IP(src="192.0.2.1", dst="192.0.2.2")
INNER_ETH = (
    Ether(src="02:00:00:00:01:01", dst="02:00:00:00:01:02")
    / IP(src="203.0.113.1", dst="203.0.113.2")
    / TCP(sport=1000, dport=80)
)


def _vxlan(vni: int, flags: int = 0x08, gbp: int = 0) -> bytes:
    return bytes([flags]) + gbp.to_bytes(3, "big") + (vni << 8).to_bytes(4, "big")


def _decode(payload: bytes, sport: int, dport: int, cfg: DissectConfig | None = None) -> Packet:
    return dissect_frame(bytes(ETH / OUTER / UDP(sport=sport, dport=dport) / Raw(payload)), 1, cfg or DissectConfig())


def test_vxlan_heuristic_scores_each_check() -> None:
    good = _vxlan(100) + bytes(INNER_ETH)
    assert vxlan.heuristic(good, 0, len(good)) == 1.0
    gbp = _vxlan(100, 0x88, 0x480007) + bytes(INNER_ETH)
    assert vxlan.heuristic(gbp, 0, len(gbp)) == 1.0
    bad_checksum = bytearray(good)
    bad_checksum[8 + 14 + 10] ^= 0x55
    assert vxlan.heuristic(bytes(bad_checksum), 0, len(good)) == 0.75
    reserved = good[:7] + b"\x01" + good[8:]
    assert vxlan.heuristic(reserved, 0, len(good)) == 0.75
    unknown_type = good[: 8 + 12] + b"\x12\x34" + good[8 + 14 :]
    assert vxlan.heuristic(unknown_type, 0, len(good)) == 0.5
    assert vxlan.heuristic(b"\x0c" + good[1:], 0, len(good)) == 0.0  # GPE flags: not VXLAN
    assert vxlan.heuristic(good, 0, 8 + 13) == 0.0


def test_heuristic_decodes_unconfigured_port_with_confidence() -> None:
    pkt = _decode(_vxlan(42) + bytes(INNER_ETH), 50000, 9999)
    assert [x.proto for x in pkt.layers] == ["eth", "ipv4", "udp", "vxlan", "eth", "ipv4", "tcp"]
    assert pkt.layers[2].fields["heuristic"] == {"proto": "vxlan", "confidence": 1.0}
    assert pkt.layers[3].fields["vni"] == 42


def test_heuristic_never_overrides_a_configured_port() -> None:
    vx = _vxlan(42) + bytes(INNER_ETH)
    # 2152 is GTP-U by default: a VXLAN-looking payload there is a broken GTP-U packet, not VXLAN.
    pkt = _decode(vx, 50000, 2152)
    assert [x.proto for x in pkt.layers] == ["eth", "ipv4", "udp"]
    assert [a.kind for a in pkt.anomalies] == ["gtpu.malformed"]
    assert "heuristic" not in pkt.layers[2].fields
    # a user binding wins as well
    cfg = DissectConfig.from_overrides({9999: "geneve"})
    pkt = _decode(vx, 50000, 9999, cfg)
    assert "heuristic" not in pkt.layers[2].fields
    assert "vxlan" not in [x.proto for x in pkt.layers]
    # unbinding a port hands it to the heuristics; switching them off leaves plain UDP
    gtp = bytes(GTP_U_Header(teid=1) / IP(src="203.0.113.1", dst="203.0.113.2") / UDP(sport=1, dport=2))
    pkt = _decode(gtp, 2152, 2152, DissectConfig.from_overrides({2152: "none"}))
    assert pkt.layers[2].fields["heuristic"] == {"proto": "gtpu", "confidence": 1.0}
    pkt = _decode(gtp, 2152, 2152, DissectConfig.from_overrides({2152: "none"}, heuristics=False))
    assert [x.proto for x in pkt.layers] == ["eth", "ipv4", "udp"]


def test_below_threshold_stays_udp() -> None:
    weak = _vxlan(1) + bytes(Ether(type=0x1234)) + bytes(30)
    assert vxlan.heuristic(weak, 0, len(weak)) == 0.5
    pkt = _decode(weak, 50000, 9999)
    assert [x.proto for x in pkt.layers] == ["eth", "ipv4", "udp"]


def test_every_heuristic_recognises_only_its_own_protocol() -> None:
    samples = {
        "vxlan": _vxlan(1) + bytes(INNER_ETH),
        "geneve": bytes(GENEVE(vni=1, proto=0x6558) / INNER_ETH),
        "gtpu": bytes(GTP_U_Header(teid=1) / IP(src="203.0.113.1", dst="203.0.113.2") / UDP(sport=1, dport=2)),
    }
    for name, data in samples.items():
        scores = {h: round(probe(data, 0, len(data)), 2) for h, probe in HEURISTICS.items()}
        assert scores[name] == 1.0
        assert all(s < HEURISTIC_THRESHOLD for h, s in scores.items() if h != name), (name, scores)


def test_no_false_positives_on_common_udp_payloads() -> None:
    rng = random.Random(20240607)
    payloads = [
        bytes(DNS(id=0x0100, rd=1, qd=DNSQR(qname="example.com"))),
        bytes(DNS(id=0x0800, qr=1, rd=1, qd=DNSQR(qname="vxlan.example"))),
        bytes(NTP()),
        bytes(BOOTP(op=1, chaddr=b"\x02" * 6) / DHCP(options=[("message-type", "discover"), "end"])),
        b"<13>Jun  7 12:00:00 host app: hello",
        b"\x00" * 64,
        b"\xff" * 64,
    ]
    payloads += [rng.randbytes(rng.randrange(1, 1500)) for _ in range(3000)]
    # Random bytes behind a plausible start stress the later checks.  (Not "04 00 00 00": followed
    # by 16n bytes that *is* a WireGuard transport message, which no check can refute.)
    for first in (b"\x08", b"\x88", b"\x00", b"\x30", b"\x60", b"\x16\xfe\xfd", b"\x01\x00\x00\x00"):
        payloads += [first + rng.randbytes(rng.randrange(8, 600)) for _ in range(500)]
    for data in payloads:
        for name, probe in HEURISTICS.items():
            assert probe(data, 0, len(data)) < HEURISTIC_THRESHOLD, (name, data[:16].hex())


def test_heuristics_never_raise_on_short_or_offset_input() -> None:
    rng = random.Random(7)
    for _ in range(2000):
        data = rng.randbytes(rng.randrange(0, 80))
        off = rng.randrange(0, len(data) + 1)
        end = rng.randrange(off, len(data) + 1)
        for probe in HEURISTICS.values():
            conf = probe(data, off, end)
            assert 0.0 <= conf <= 1.0
