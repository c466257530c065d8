"""Scenario captures with known tunnels and flows, built byte-exact with scapy.

Each builder returns scapy packets with fixed timestamps (deterministic files);
:func:`write` saves them as a pcap.  The expected tunnels and flows are stated
in the tests next to this file, from the way the packets are built here.

Addresses are documentation ranges only (RFC 5737 / RFC 3849).

Run ``python -m tests.correlate.scenarios DIR`` to write every scenario to DIR.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from scapy.layers.inet import GRE, ICMP, IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether
from scapy.layers.vxlan import VXLAN
from scapy.packet import Packet, Raw
from scapy.utils import wrpcap

T0 = 1_700_000_000.0
VTEP1, VTEP2 = "192.0.2.1", "192.0.2.2"
ROUTER = "198.51.100.1"
VTEP6_1, VTEP6_2 = "2001:db8::1", "2001:db8::2"
MAC_V1, MAC_R = "02:00:00:00:00:01", "02:00:00:00:00:fe"
MAC_A, MAC_B = "02:00:00:00:0a:01", "02:00:00:00:0a:02"
TENANT_A, TENANT_B = "10.0.0.1", "10.0.0.2"  # the same inner addresses in VNI 100 and VNI 200


def _underlay(src: str = VTEP1, dst: str = VTEP2, ttl: int = 64, tos: int = 0) -> Packet:
    return Ether(src=MAC_V1, dst=MAC_R) / IP(src=src, dst=dst, ttl=ttl, tos=tos, id=1, flags="DF")


def vxlan(
    vni: int,
    sport: int,
    inner: Packet,
    *,
    src: str = VTEP1,
    dst: str = VTEP2,
    ttl: int = 64,
    tos: int = 0,
    flags: int = 0x08,
) -> Packet:
    """A VXLAN packet on an IPv4 underlay: outer UDP source port ``sport`` is the ECMP entropy."""
    return (
        _underlay(src, dst, ttl, tos)
        / UDP(sport=sport, dport=4789)
        / VXLAN(flags=flags, vni=vni)
        / Ether(src=MAC_A, dst=MAC_B)
        / inner
    )


def tcp(
    seq: int, payload: int = 100, flags: str = "A", *, src: str = TENANT_A, dst: str = TENANT_B, dport: int = 80
) -> Packet:
    pkt = IP(src=src, dst=dst, ttl=63, tos=0x10, id=7, flags="DF") / TCP(
        sport=40000, dport=dport, seq=seq, ack=1, flags=flags, window=1000
    )
    return pkt / Raw(b"x" * payload) if payload else pkt


def _stamp(pkts: Sequence[Packet], t0: float = T0) -> list[Packet]:
    for i, p in enumerate(pkts):
        p.time = t0 + i * 0.001
    return list(pkts)


def overlapping_tenants() -> list[Packet]:
    """Two VNIs carry the same inner 5-tuple 10.0.0.1:40000 → 10.0.0.2:80: two flows, two tunnels.

    VNI 100: 3 packets (SYN, then 2 data segments); VNI 200: 2 packets (SYN with MSS 1360, 1 data).
    """
    syn_mss = IP(src=TENANT_A, dst=TENANT_B, ttl=63, tos=0x10, id=7, flags="DF") / TCP(
        sport=40000, dport=80, seq=5000, flags="S", options=[("MSS", 1360)]
    )
    return _stamp(
        [
            vxlan(100, 49152, tcp(999, 0, "S")),
            vxlan(200, 49153, syn_mss),
            vxlan(100, 49152, tcp(1000)),
            vxlan(200, 49153, tcp(5001, 200)),
            vxlan(100, 49152, tcp(1100)),
        ]
    )


def two_paths() -> list[Packet]:
    """One inner flow in VNI 100 moves from outer source port 49152 to 50000 after a retransmission.

    Path 49152: segments 1000, 1100, then 1100 again (a retransmission); path 50000 (the kernel
    re-drew the flow hash after the RTO): 1100 once more (retransmission), then 1200 (new data).
    """
    return _stamp(
        [
            vxlan(100, 49152, tcp(1000)),
            vxlan(100, 49152, tcp(1100)),
            vxlan(100, 49152, tcp(1100)),
            vxlan(100, 50000, tcp(1100)),
            vxlan(100, 50000, tcp(1200)),
        ]
    )


def frag_needed() -> list[Packet]:
    """A 1450-byte inner DF packet in VNI 100, and the router's frag-needed (MTU 1400) quoting it.

    Linux quotes up to 576 bytes, so the quote reaches the inner TCP header: the error ties to
    the tunnel (vxlan, VTEP1, VTEP2, 100) and to the inner flow 10.0.0.1:40000 → 10.0.0.2:80.
    """
    big = vxlan(100, 49152, tcp(1000, 1410))  # inner IP 20 + TCP 20 + 1410 = 1450 bytes
    quote = bytes(big[IP])[:548]
    err = (
        Ether(src=MAC_R, dst=MAC_V1)
        / IP(src=ROUTER, dst=VTEP1, ttl=255, id=2)
        / ICMP(type=3, code=4, nexthopmtu=1400)
        / Raw(quote)
    )
    return _stamp([big, err])


def nested() -> list[Packet]:
    """VXLAN VNI 300 inside an IP-in-IP tunnel 203.0.113.1 → 203.0.113.2 (two tunnel levels).

    The flow's tunnel is the innermost (VXLAN 300); its path is the VXLAN packet's own outer
    header, and the IP-in-IP tunnel is the path's ``via``.
    """
    inner = IP(src="10.1.0.1", dst="10.1.0.2", ttl=64, id=9) / UDP(sport=5000, dport=53) / Raw(b"q" * 20)
    pkts = []
    for sport in (49200, 49200, 49201):
        pkts.append(
            Ether(src=MAC_V1, dst=MAC_R)
            / IP(src="203.0.113.1", dst="203.0.113.2", ttl=60, id=3)
            / IP(src=VTEP1, dst=VTEP2, ttl=64, id=4)
            / UDP(sport=sport, dport=4789)
            / VXLAN(flags=0x08, vni=300)
            / Ether(src=MAC_A, dst=MAC_B)
            / inner
        )
    return _stamp(pkts)


def ipv6_underlay() -> list[Packet]:
    """VXLAN VNI 400 between 2001:db8::1 and ::2 with a flow label, carrying inner UDP (2 packets)."""
    inner = IP(src=TENANT_A, dst=TENANT_B, ttl=64, id=5, tos=0xB8) / UDP(sport=7000, dport=7001) / Raw(b"v" * 50)
    return _stamp(
        [
            Ether(src=MAC_V1, dst=MAC_R)
            / IPv6(src=VTEP6_1, dst=VTEP6_2, hlim=64, fl=0x12345, tc=0xB8)
            / UDP(sport=sp, dport=4789)
            / VXLAN(flags=0x08, vni=400)
            / Ether(src=MAC_A, dst=MAC_B)
            / inner
            for sp in (51000, 51000)
        ]
    )


def gre_keyed() -> list[Packet]:
    """GRE with key 7 carrying IPv4 straight (protocol 0x0800): an inner UDP flow (2 packets)."""
    inner = IP(src="10.2.0.1", dst="10.2.0.2", ttl=64, id=6) / UDP(sport=1111, dport=2222) / Raw(b"g" * 30)
    return _stamp([_underlay("192.0.2.10", "192.0.2.20") / GRE(key_present=1, key=7, proto=0x0800) / inner] * 2)


NVGRE_VSID = 0xABCD
NVGRE_FLOWS = (0x21, 0x42)  # FlowIDs of the two inner flows


def nvgre() -> list[Packet]:
    """NVGRE (RFC 7637) VSID 0xabcd: two inner UDP flows, FlowID 0x21 (2 packets) and 0x42 (1 packet).

    Then the router's frag-needed quoting the first flow's outer IP header and the 8 bytes after it
    (RFC 792's minimum): the GRE header with the key, so the quote names VSID and FlowID.
    """

    def pkt(flow_id: int, sport: int) -> Packet:
        inner = IP(src="10.3.0.1", dst="10.3.0.2", ttl=64, id=8, flags="DF") / UDP(sport=sport, dport=53)
        return (
            _underlay("192.0.2.10", "192.0.2.20")
            / GRE(key_present=1, key=NVGRE_VSID << 8 | flow_id, proto=0x6558)
            / Ether(src=MAC_A, dst=MAC_B)
            / inner
            / Raw(b"n" * 40)
        )

    first = pkt(NVGRE_FLOWS[0], 3000)
    err = (
        Ether(src=MAC_R, dst="02:00:00:00:00:10")
        / IP(src=ROUTER, dst="192.0.2.10", ttl=255, id=2)
        / ICMP(type=3, code=4, nexthopmtu=1400)
        / Raw(bytes(first[IP])[:28])
    )
    return _stamp([first, pkt(NVGRE_FLOWS[1], 3001), pkt(NVGRE_FLOWS[0], 3000), err])


def plain_and_odd() -> list[Packet]:
    """One untunnelled packet and a VXLAN packet with the I flag clear (anomaly vxlan.i-flag-unset)."""
    return _stamp(
        [
            _underlay() / UDP(sport=1234, dport=53) / Raw(b"d" * 10),
            vxlan(500, 49999, tcp(1, 10), flags=0x00),
        ]
    )


SCENARIOS: dict[str, Callable[[], list[Packet]]] = {
    "overlapping_tenants": overlapping_tenants,
    "two_paths": two_paths,
    "frag_needed": frag_needed,
    "nested": nested,
    "ipv6_underlay": ipv6_underlay,
    "gre_keyed": gre_keyed,
    "nvgre": nvgre,
    "plain_and_odd": plain_and_odd,
}


def write(name: str, directory: Path) -> Path:
    path = directory / f"{name}.pcap"
    wrpcap(str(path), SCENARIOS[name]())
    return path


def write_all(directory: Path) -> dict[str, Path]:
    return {name: write(name, directory) for name in SCENARIOS}


if __name__ == "__main__":
    out = Path(sys.argv[1] if len(sys.argv) > 1 else ".")
    out.mkdir(parents=True, exist_ok=True)
    for p in write_all(out).values():
        print(p)
