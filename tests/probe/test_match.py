"""Matching replies to probes: ICMP errors by their quote, inner echo replies, ARP (bytes built with scapy)."""

from __future__ import annotations

import subprocess
import sys

from scapy.layers.inet import ICMP, IP, UDP
from scapy.layers.l2 import ARP, Ether
from scapy.layers.vxlan import VXLAN

from ipsotrace.dissectors.registry import DissectConfig, dissect_frame
from ipsotrace.probe.craft import build_probe
from ipsotrace.probe.match import match
from ipsotrace.probe.model import ProbeRequest
from tests.probe.simlab import TARGET

CFG = DissectConfig()


def decode(raw: bytes, linktype: int = 228):  # type: ignore[no-untyped-def]
    return dissect_frame(raw, linktype, CFG)


def probe(pid: int = 4242, sport: int = 51000, ttl: int = 2) -> bytes:
    return build_probe(TARGET, ProbeRequest(sport=sport, ttl=ttl, size=200), pid)


def test_probe_bytes() -> None:
    raw = probe()
    pkt = IP(raw)
    assert len(raw) == 200 and pkt[IP].ttl == 2 and pkt[IP].id == 4242 and pkt[IP].flags == "DF"
    assert (pkt[UDP].sport, pkt[UDP].dport, pkt[VXLAN].vni) == (51000, 4789, 100)
    inner = pkt[VXLAN].payload
    assert inner[Ether].dst == "02:00:c0:00:02:02"
    assert (inner[IP].src, inner[IP].dst, inner[ICMP].type, inner[ICMP].id, inner[ICMP].seq) == (
        "203.0.113.1",
        "203.0.113.2",
        8,
        0x1234,
        4242,
    )


def test_time_exceeded_full_quote() -> None:
    err = IP(src="198.51.100.6", dst="192.0.2.1") / ICMP(type=11, code=0) / probe()[:548]
    m = match(decode(bytes(err)), TARGET)
    assert m is not None
    assert (m.kind, m.probe_id, m.address, m.sport, m.mtu) == ("time-exceeded", 4242, "198.51.100.6", 51000, None)
    assert m.evidence == {
        "quoted_ip_id": 4242,
        "quoted_sport": 51000,
        "quoted_ttl": 2,
        "quoted_vni": 100,
        "quoted_inner_seq": 4242,
    }


def test_rfc792_short_quote_still_matches() -> None:
    # IP header + 8 bytes: only the outer UDP header survives, which is enough
    err = IP(src="198.51.100.2", dst="192.0.2.1") / ICMP(type=11) / probe()[:28]
    m = match(decode(bytes(err)), TARGET)
    assert m is not None and m.probe_id == 4242 and m.sport == 51000 and "quoted_vni" not in m.evidence


def test_frag_needed() -> None:
    err = IP(src="198.51.100.2", dst="192.0.2.1") / ICMP(type=3, code=4, nexthopmtu=1400) / probe()[:548]
    m = match(decode(bytes(err)), TARGET)
    assert m is not None and (m.kind, m.mtu, m.code) == ("frag-needed", 1400, 4)


def test_quotes_of_other_packets_do_not_match() -> None:
    other_vni = bytes(
        IP(src="192.0.2.1", dst="192.0.2.2", id=4242) / UDP(sport=51000, dport=4789) / VXLAN(vni=200) / Ether()
    )
    other_dst = bytes(IP(src="192.0.2.1", dst="192.0.2.9", id=4242) / UDP(sport=51000, dport=4789))
    other_port = bytes(IP(src="192.0.2.1", dst="192.0.2.2", id=4242) / UDP(sport=51000, dport=53))
    for quote in (other_vni, other_dst, other_port):
        err = IP(src="198.51.100.6", dst="192.0.2.1") / ICMP(type=11) / quote
        assert match(decode(bytes(err)), TARGET) is None
    not_for_us = IP(src="198.51.100.6", dst="192.0.2.7") / ICMP(type=11) / probe()[:548]
    assert match(decode(bytes(not_for_us)), TARGET) is None


def test_inner_echo_reply_encapsulated_and_decapsulated() -> None:
    inner = (
        Ether(src="02:00:c0:00:02:02", dst="02:00:c0:00:02:01")
        / IP(src="203.0.113.2", dst="203.0.113.1")
        / ICMP(type=0, id=0x1234, seq=4242)
    )
    outer = Ether() / IP(src="192.0.2.2", dst="192.0.2.1") / UDP(sport=40000, dport=4789) / VXLAN(vni=100) / inner
    m = match(decode(bytes(outer), 1), TARGET)
    assert m is not None and (m.kind, m.probe_id, m.address) == ("reply", 4242, "203.0.113.2")
    assert m.evidence["return_sport"] == 40000 and m.evidence["vni"] == 100
    m2 = match(decode(bytes(inner), 1), TARGET)  # as seen on the local VXLAN device
    assert m2 is not None and m2.probe_id == 4242
    wrong_ident = inner.copy()
    wrong_ident[ICMP].id = 1
    assert match(decode(bytes(wrong_ident), 1), TARGET) is None


def test_arp_reply() -> None:
    arp = (
        Ether()
        / IP(src="192.0.2.2", dst="192.0.2.1")
        / UDP(sport=40000, dport=4789)
        / VXLAN(vni=100)
        / Ether(src="02:00:c0:00:02:02", dst="02:00:c0:00:02:01")
        / ARP(op=2, hwsrc="02:00:c0:00:02:02", psrc="203.0.113.2", hwdst="02:00:c0:00:02:01", pdst="203.0.113.1")
    )
    m = match(decode(bytes(arp), 1), TARGET)
    assert m is not None and (m.kind, m.mac) == ("arp", "02:00:c0:00:02:02")


def test_engine_imports_no_front_end() -> None:
    code = (
        "import sys, ipsotrace.probe, ipsotrace.probe.sim, ipsotrace.probe.replay;"
        "bad = [m for m in sys.modules if m.startswith(('ipsotrace.commands', 'ipsotrace.cli', 'ipsotrace.tui',"
        " 'ipsotrace.sinks', 'typer', 'rich', 'textual'))];"
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == ""
