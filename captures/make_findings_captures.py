"""Write the findings captures: one per finding that reproduces it, and a clean one.

Run ``python captures/make_findings_captures.py [DIR]`` (default: captures/findings/).
Every capture is deterministic (fixed timestamps, IP IDs and payloads) and uses
documentation addresses only: VTEPs in 192.0.2.0/24, underlay routers in
198.51.100.0/24, tenant hosts in 203.0.113.0/24 (as in the lab of DESIGN.md).

Each scenario marks the packets that are the evidence of its finding; tests
(tests/findings/) check that the finding fires with exactly those frames, and that
the clean capture ``clean.pcap`` (similar traffic, every setting right) stays
silent.  ``SCENARIOS[name].options`` names the inventory / untrusted networks the
scenario is analysed with (``inventory.yaml`` is written next to the captures).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from scapy.layers.inet import ICMP, IP, TCP, UDP, fragment
from scapy.layers.ipsec import ESP
from scapy.layers.l2 import Ether
from scapy.layers.vxlan import VXLAN
from scapy.packet import Packet, Raw
from scapy.utils import wrpcap

T0 = 1_700_000_000.0
VTEP1, VTEP2, VTEP3 = "192.0.2.1", "192.0.2.2", "192.0.2.3"
ROGUE_VTEP = "192.0.2.99"
REMOTE_VTEP = "203.0.113.250"  # a VTEP across the untrusted segment of the cleartext scenario
ROUTER_B = "198.51.100.6"  # the underlay router in front of the 1400-byte link
HOST_A, HOST_B, HOST_C = "203.0.113.10", "203.0.113.20", "203.0.113.30"
TENANT_GW = "203.0.113.1"
VNI = 100
MAC_VTEP1, MAC_VTEP2, MAC_ROUTER = "02:00:00:00:00:01", "02:00:00:00:00:02", "02:00:00:00:00:fe"
MAC_A, MAC_B = "02:00:00:00:0a:01", "02:00:00:00:0a:02"

INVENTORY_YAML = """\
# Inventory for the findings captures (ipsotrace analyze --inventory captures/findings/inventory.yaml)
underlay_mtu: 1500
overlay_mtu: 1450
vteps: [192.0.2.1, 192.0.2.2, 192.0.2.3]
vnis: [100, 200]
"""


@dataclass
class Builder:
    """Packets in capture order, with the evidence frames (1-based) marked as they are added."""

    packets: list[Packet] = field(default_factory=list)
    evidence: list[int] = field(default_factory=list)
    t: float = T0
    ip_id: int = 1000

    def add(self, pkt: Packet, *, mark: bool = False, gap: float = 0.001) -> int:
        self.t += gap
        pkt.time = round(self.t, 6)
        self.packets.append(pkt)
        if mark:
            self.evidence.append(len(self.packets))
        return len(self.packets)

    def next_id(self) -> int:
        self.ip_id += 1
        return self.ip_id


def tcp(
    b: Builder,
    src: str,
    dst: str,
    sport: int,
    dport: int,
    seq: int,
    payload: int = 0,
    flags: str = "A",
    *,
    tos: int = 0,
    ttl: int = 64,
    mss: int | None = None,
    ack: int = 1,
) -> Packet:
    opts = [("MSS", mss)] if mss else []
    pkt = IP(src=src, dst=dst, ttl=ttl, tos=tos, id=b.next_id(), flags="DF") / TCP(
        sport=sport, dport=dport, seq=seq, ack=ack, flags=flags, window=64000, options=opts
    )
    return pkt / Raw(bytes(payload)) if payload else pkt


def udp(b: Builder, src: str, dst: str, sport: int, dport: int, payload: int, *, tos: int = 0, ttl: int = 64) -> Packet:
    return (
        IP(src=src, dst=dst, ttl=ttl, tos=tos, id=b.next_id(), flags="DF")
        / UDP(sport=sport, dport=dport)
        / Raw(bytes(payload))
    )


def vx(
    inner: Packet,
    sport: int,
    *,
    src: str = VTEP1,
    dst: str = VTEP2,
    vni: int = VNI,
    ttl: int | None = None,
    tos: int | None = None,
    flags: int = 0x08,
    inherit: bool = True,
) -> Packet:
    """VXLAN on an IPv4 underlay; by default the outer TTL and TOS follow the inner ones (Linux
    ``ttl inherit tos inherit``), so the clean capture has nothing to report."""
    if ttl is None:
        ttl = inner[IP].ttl if inherit else 64
    if tos is None:
        tos = inner[IP].tos if inherit else 0
    macs = (MAC_A, MAC_B) if inner[IP].src < inner[IP].dst else (MAC_B, MAC_A)
    return (
        Ether(src=MAC_VTEP1, dst=MAC_ROUTER)
        / IP(src=src, dst=dst, ttl=ttl, tos=tos, id=0, flags=0)
        / UDP(sport=sport, dport=4789)
        / VXLAN(flags=flags, vni=vni)
        / Ether(src=macs[0], dst=macs[1])
        / inner
    )


def back(src: str, dst: str) -> dict[str, str]:
    return {"src": src, "dst": dst}


FWD = back(VTEP1, VTEP2)
REV = back(VTEP2, VTEP1)


def conversation(
    b: Builder,
    n: int,
    port: int,
    rport: int,
    *,
    segs: int = 3,
    size: int = 1410,
    mss: int = 1410,
    tos: int = 0,
    vni: int = VNI,
    fwd: dict[str, str] = FWD,
    rev: dict[str, str] = REV,
) -> None:
    """A healthy TCP exchange between HOST_A (client port 40000+n) and HOST_B:80 over the overlay."""
    cport = 40000 + n
    b.add(vx(tcp(b, HOST_A, HOST_B, cport, 80, 100, flags="S", mss=mss, tos=tos, ack=0), port, vni=vni, **fwd))
    b.add(vx(tcp(b, HOST_B, HOST_A, 80, cport, 500, flags="SA", mss=mss, tos=tos, ack=101), rport, vni=vni, **rev))
    b.add(vx(tcp(b, HOST_A, HOST_B, cport, 80, 101, 120, "PA", tos=tos, ack=501), port, vni=vni, **fwd))
    seq = 501
    for _ in range(segs):
        b.add(vx(tcp(b, HOST_B, HOST_A, 80, cport, seq, size, tos=tos, ack=221), rport, vni=vni, **rev))
        seq += size
    b.add(vx(tcp(b, HOST_A, HOST_B, cport, 80, 221, tos=tos, ack=seq), port, vni=vni, **fwd))


def clean(b: Builder) -> None:
    """Eight healthy conversations, each on its own entropy ports; marked DSCP AF21 and ECT(0)
    inherited by the outer header; MSS clamped to 1410 so the largest inner packet is 1450."""
    for n in range(8):
        conversation(b, n, 49152 + 7 * n, 51000 + 11 * n, tos=(18 << 2) | 2)


def inner_df_exceeds(b: Builder) -> None:
    """MSS 1460 and 1500-byte DF inner packets; the inventory says the underlay MTU is 1500."""
    cport = 40001
    b.add(vx(tcp(b, HOST_A, HOST_B, cport, 80, 100, flags="S", mss=1460, ack=0), 49152))
    b.add(vx(tcp(b, HOST_B, HOST_A, 80, cport, 500, flags="SA", mss=1460, ack=101), 51000, **REV))
    b.add(vx(tcp(b, HOST_A, HOST_B, cport, 80, 101, 120, "PA", ack=501), 49152))
    seq = 501
    for _ in range(3):
        b.add(vx(tcp(b, HOST_B, HOST_A, 80, cport, seq, 1460, ack=221), 51000, **REV), mark=True)
        seq += 1460
    b.add(vx(tcp(b, HOST_A, HOST_B, cport, 80, 221, ack=seq), 49152))


def ptb(b: Builder) -> None:
    """A 1550-byte VXLAN packet meets the 1400-byte link behind ROUTER_B, which answers
    fragmentation-needed (MTU 1400) to VTEP1 quoting the outer headers and the inner flow."""
    cport = 40002
    b.add(vx(tcp(b, HOST_A, HOST_B, cport, 80, 100, flags="S", mss=1460, ack=0), 49160))
    b.add(vx(tcp(b, HOST_B, HOST_A, 80, cport, 500, flags="SA", mss=1460, ack=101), 51010, **REV))
    big = vx(tcp(b, HOST_A, HOST_B, cport, 80, 101, 1460, "PA", ack=501), 49160)
    big[IP].flags = "DF"  # Linux `df set`: the router may not fragment it
    b.add(big, mark=True)
    quote = bytes(big[IP])[:548]
    err = (
        Ether(src=MAC_ROUTER, dst=MAC_VTEP1)
        / IP(src=ROUTER_B, dst=VTEP1, ttl=254, id=7)
        / ICMP(type=3, code=4, nexthopmtu=1400)
        / Raw(quote)
    )
    b.add(err, mark=True)
    b.add(vx(tcp(b, HOST_B, HOST_A, 80, cport, 501, ack=101), 51010, **REV))


def black_hole(b: Builder) -> None:
    """Server HOST_B sends full-size segments on outer source port 50001 (the ECMP member with the
    1400-byte link, whose router sends no ICMP): a small header segment passes, the three large
    ones are lost; after the retransmission timeout Linux re-draws the entropy port (50002) and
    the resent and new segments pass there.  Two other flows use ports 50010/50011 without loss."""
    cport = 40003
    b.add(vx(tcp(b, HOST_A, HOST_B, cport, 80, 100, flags="S", mss=1460, ack=0), 49170))
    b.add(vx(tcp(b, HOST_B, HOST_A, 80, cport, 500, flags="SA", mss=1460, ack=101), 50001, **REV))
    b.add(vx(tcp(b, HOST_A, HOST_B, cport, 80, 101, 120, "PA", ack=501), 49170))
    b.add(vx(tcp(b, HOST_B, HOST_A, 80, cport, 501, 300, "PA", ack=221), 50001, **REV))
    b.add(vx(tcp(b, HOST_A, HOST_B, cport, 80, 221, ack=801), 49170))
    seq = 801
    for _ in range(3):
        b.add(vx(tcp(b, HOST_B, HOST_A, 80, cport, seq, 1460, ack=221), 50001, **REV))
        seq += 1460
    # dup ACKs would need received data: the client saw nothing, so it stays silent; RTO, re-draw
    seq = 801
    for i in range(3):
        b.add(vx(tcp(b, HOST_B, HOST_A, 80, cport, seq, 1460, ack=221), 50002, **REV), mark=True, gap=0.2 * (i + 1))
        seq += 1460
    b.add(vx(tcp(b, HOST_A, HOST_B, cport, 80, 221, ack=seq), 49170))
    for _ in range(2):
        b.add(vx(tcp(b, HOST_B, HOST_A, 80, cport, seq, 1460, ack=221), 50002, **REV))
        seq += 1460
    b.add(vx(tcp(b, HOST_A, HOST_B, cport, 80, 221, ack=seq), 49170))
    for n, port in ((4, 50010), (5, 50011)):
        conversation(b, n, 49180 + n, port, size=1460, mss=1460)


def mss(b: Builder) -> None:
    """SYNs announce MSS 1460 in VXLAN on a standard underlay: nothing clamps it to 1410."""
    for n in range(2):
        cport = 40010 + n
        b.add(vx(tcp(b, HOST_A, HOST_B, cport, 443, 100, flags="S", mss=1460, ack=0), 49200 + n), mark=True)
        b.add(vx(tcp(b, HOST_B, HOST_A, 443, cport, 500, flags="SA", mss=1460, ack=101), 51200 + n, **REV), mark=True)
        b.add(vx(tcp(b, HOST_A, HOST_B, cport, 443, 101, 200, "PA", ack=501), 49200 + n))
        b.add(vx(tcp(b, HOST_B, HOST_A, 443, cport, 501, 300, "PA", ack=301), 51200 + n, **REV))


def outer_fragmentation(b: Builder) -> None:
    """VTEP1 sends 1550-byte VXLAN packets without DF into a 1500-byte underlay: each is split in two."""
    cport = 40020
    b.add(vx(tcp(b, HOST_A, HOST_B, cport, 80, 100, flags="S", mss=1410, ack=0), 49300))
    b.add(vx(tcp(b, HOST_B, HOST_A, 80, cport, 500, flags="SA", mss=1410, ack=101), 51300, **REV))
    seq = 101
    for i in range(3):
        inner = (
            IP(src=HOST_A, dst=HOST_B, ttl=64, id=b.next_id(), flags=0)
            / UDP(sport=5001, dport=5001)
            / Raw(bytes([i]) * 1472)
        )
        pkt = vx(inner, 49301)
        pkt[IP].id = 3000 + i
        for frag in fragment(pkt[IP], fragsize=1480):
            b.add(Ether(src=MAC_VTEP1, dst=MAC_ROUTER) / frag, mark=True)
    b.add(vx(tcp(b, HOST_A, HOST_B, cport, 80, seq, ack=501), 49300))


def ecmp_constant(b: Builder) -> None:
    """Ten inner flows, one outer source port: the VTEP does not hash the inner flow."""
    for n in range(10):
        b.add(vx(udp(b, HOST_A, HOST_B, 20000 + n, 5000, 200), 4789), mark=n < 8)
        b.add(vx(udp(b, HOST_A, HOST_B, 20000 + n, 5000, 200), 4789))


def ecmp_polarization(b: Builder) -> None:
    """Twelve inner flows on two ports (9 on 50500, 3 on 50501): a hash over a few bits only."""
    for n in range(12):
        port = 50500 if n % 4 else 50501
        b.add(vx(udp(b, HOST_A, HOST_B, 21000 + n, 5000, 200), port), mark=port == 50500 and n < 11)
        b.add(vx(udp(b, HOST_A, HOST_B, 21000 + n, 5000, 200), port))


def dscp(b: Builder) -> None:
    """Voice (EF, DSCP 46) inside, best effort outside: the VTEP writes TOS 0."""
    for i in range(12):
        b.add(vx(udp(b, HOST_A, HOST_B, 16384, 16384, 172, tos=46 << 2), 49400, tos=0), mark=i < 4)


def ecn(b: Builder) -> None:
    """ECT(0) inside, Not-ECT outside."""
    for i in range(12):
        b.add(vx(udp(b, HOST_A, HOST_B, 4433, 4433, 1000, tos=2), 49410, tos=0), mark=i < 4)


def ce_lost(b: Builder) -> None:
    """The underlay marks CE on outer packets of an ECN-capable flow; the receiver's ACKs never
    echo ECE: VTEP2 did not copy CE into the inner header."""
    cport = 40030
    b.add(vx(tcp(b, HOST_A, HOST_B, cport, 80, 100, flags="SEC", mss=1410, ack=0), 49420))
    b.add(vx(tcp(b, HOST_B, HOST_A, 80, cport, 500, flags="SAE", mss=1410, ack=101), 51420, **REV))
    seq = 101
    for i in range(6):
        ce = i >= 2
        b.add(vx(tcp(b, HOST_A, HOST_B, cport, 80, seq, 1000, tos=2, ack=501), 49420, tos=3 if ce else 2), mark=ce)
        seq += 1000
        b.add(vx(tcp(b, HOST_B, HOST_A, 80, cport, 501, ack=seq), 51420, **REV))


def ttl(b: Builder) -> None:
    """The VTEP writes outer TTL 255 whatever the inner TTL (pipe model)."""
    for i in range(12):
        b.add(vx(udp(b, HOST_A, HOST_B, 7000, 7000, 100, ttl=63), 49430, ttl=255), mark=i < 4)


def vni_mismatch(b: Builder) -> None:
    """HOST_A → HOST_B in VNI 100, the replies come back from VTEP2 in VNI 200 (same /24)."""
    cport = 40040
    b.add(vx(tcp(b, HOST_A, HOST_B, cport, 80, 100, flags="S", mss=1410, ack=0), 49440), mark=True)
    b.add(vx(tcp(b, HOST_B, HOST_A, 80, cport, 500, flags="SA", mss=1410, ack=101), 51440, vni=200, **REV), mark=True)
    b.add(vx(tcp(b, HOST_A, HOST_B, cport, 80, 100, flags="S", mss=1410, ack=0), 49440), gap=1.0)


def vtep_mismatch(b: Builder) -> None:
    """HOST_A → HOST_C goes VTEP1 → VTEP2, the replies come from VTEP3 (a stale MAC entry)."""
    cport = 40050
    b.add(vx(tcp(b, HOST_A, HOST_C, cport, 80, 100, flags="S", mss=1410, ack=0), 49450), mark=True)
    b.add(
        vx(tcp(b, HOST_C, HOST_A, 80, cport, 500, flags="SA", mss=1410, ack=101), 51450, src=VTEP3, dst=VTEP1),
        mark=True,
    )
    b.add(vx(tcp(b, HOST_A, HOST_C, cport, 80, 101, 100, "PA", ack=501), 49450))


def return_missing(b: Builder) -> None:
    """HOST_A's SYNs to HOST_C:22 are retried and never answered, while VTEP2 → VTEP1 carries replies
    of another conversation."""
    conversation(b, 60, 49460, 51460)
    for i in range(4):
        b.add(vx(tcp(b, HOST_A, HOST_C, 40061, 22, 100, flags="S", mss=1410, ack=0), 49461), mark=i == 0, gap=1.0)


def unexpected_vtep(b: Builder) -> None:
    """A host that is not in the inventory (192.0.2.99) sends VXLAN to VTEP2."""
    conversation(b, 70, 49470, 51470)
    b.add(vx(udp(b, HOST_C, HOST_B, 6000, 6000, 100), 49471, src=ROGUE_VTEP), mark=True)
    b.add(vx(udp(b, HOST_C, HOST_B, 6000, 6000, 100), 49471, src=ROGUE_VTEP))


def unexpected_vni(b: Builder) -> None:
    """VTEP1 sends VNI 999, which the inventory does not list."""
    conversation(b, 80, 49480, 51480)
    b.add(vx(udp(b, HOST_A, HOST_B, 6001, 6001, 100), 49481, vni=999), mark=True)
    b.add(vx(udp(b, HOST_A, HOST_B, 6001, 6001, 100), 49481, vni=999))


def single_packet(b: Builder) -> None:
    """Busy VNI 100 and one stray packet in VNI 300."""
    for n in range(3):
        conversation(b, 90 + n, 49490 + n, 51490 + n)
    b.add(vx(udp(b, HOST_A, HOST_B, 6002, 6002, 100), 49499, vni=300), mark=True)
    conversation(b, 95, 49495, 51495)


def vxlan_flags(b: Builder) -> None:
    """A sender with the I flag unset on two packets and a reserved bit set on two others."""
    conversation(b, 100, 49500, 51500)
    for flags in (0x00, 0x00, 0x0C, 0x0C):
        b.add(vx(udp(b, HOST_A, HOST_B, 6003, 6003, 100), 49501, flags=flags), mark=True)


def cleartext(b: Builder) -> None:
    """VXLAN to a VTEP across the untrusted 203.0.113.0/24 with inner HTTP (and one TLS flow)."""
    fwd, rev = back(VTEP1, REMOTE_VTEP), back(REMOTE_VTEP, VTEP1)
    b.add(vx(tcp(b, HOST_A, HOST_B, 40110, 80, 100, flags="S", mss=1410, ack=0), 49510, **fwd), mark=True)
    b.add(vx(tcp(b, HOST_B, HOST_A, 80, 40110, 500, flags="SA", mss=1410, ack=101), 51510, **rev), mark=True)
    b.add(vx(tcp(b, HOST_A, HOST_B, 40111, 443, 100, flags="S", mss=1410, ack=0), 49511, **fwd))
    b.add(vx(tcp(b, HOST_B, HOST_A, 443, 40111, 500, flags="SA", mss=1410, ack=101), 51511, **rev))


def encrypted(b: Builder) -> None:
    """The same two sites, now with the overlay inside IPsec ESP."""
    for i in range(4):
        pkt = (
            Ether(src=MAC_VTEP1, dst=MAC_ROUTER)
            / IP(src=VTEP1, dst=REMOTE_VTEP, id=b.next_id())
            / ESP(spi=0x1000, seq=i + 1)
            / Raw(bytes(range(96)))
        )
        b.add(pkt, mark=True)


def retransmissions(b: Builder) -> None:
    """Random-looking loss on a tunnel: small and large segments alike are resent (not an MTU issue)."""
    cport = 40120
    b.add(vx(tcp(b, HOST_A, HOST_B, cport, 80, 100, flags="S", mss=1410, ack=0), 49520))
    b.add(vx(tcp(b, HOST_B, HOST_A, 80, cport, 500, flags="SA", mss=1410, ack=101), 51520, **REV))
    seq = 501
    sizes = [1410, 200, 1410, 600, 1410, 100, 1410, 900] * 5
    lost = {3, 7, 11, 14, 18, 22, 25, 29, 33, 37}
    for i, size in enumerate(sizes):
        b.add(vx(tcp(b, HOST_B, HOST_A, 80, cport, seq, size, ack=101), 51520, **REV))
        if i in lost:
            b.add(vx(tcp(b, HOST_B, HOST_A, 80, cport, seq, size, ack=101), 51520, **REV), mark=i in sorted(lost)[:8])
        seq += size


def duplicates(b: Builder) -> None:
    """A routing loop through the overlay: inner packets come back with TTL one lower."""
    for i in range(20):
        inner = udp(b, HOST_A, HOST_B, 9000, 9000, 300, ttl=64)
        b.add(vx(inner, 49530))
        if i % 4 == 0:
            looped = inner.copy()
            looped[IP].ttl = 62
            del looped[IP].chksum
            b.add(vx(looped, 49530), mark=True)


def ttl_expired(b: Builder) -> None:
    """The tenant router 203.0.113.1 returns time-exceeded for HTTP packets (a loop), through VXLAN."""
    conversation(b, 130, 49540, 51540)
    for i in range(4):
        quoted = bytes(tcp(b, HOST_A, HOST_C, 40131 + i, 80, 100, flags="S", ttl=1, ack=0))[:28]
        err = IP(src=TENANT_GW, dst=HOST_A, ttl=64, id=b.next_id()) / ICMP(type=11, code=0) / Raw(quoted)
        b.add(vx(err, 51541, **REV), mark=True)


@dataclass(frozen=True)
class Scenario:
    build: Callable[[Builder], None]
    inventory: bool = False  # analyse with inventory.yaml
    untrusted: tuple[str, ...] = ()


SCENARIOS: dict[str, Scenario] = {
    "clean": Scenario(clean),
    "mtu.inner-df-exceeds-overlay": Scenario(inner_df_exceeds, inventory=True),
    "mtu.ptb-for-tunnel": Scenario(ptb),
    "mtu.pmtu-black-hole": Scenario(black_hole),
    "mtu.mss-exceeds-overlay": Scenario(mss),
    "mtu.outer-fragmentation": Scenario(outer_fragmentation),
    "ecmp.constant-entropy-port": Scenario(ecmp_constant),
    "ecmp.polarization": Scenario(ecmp_polarization),
    "qos.dscp-not-inherited": Scenario(dscp),
    "qos.ecn-not-propagated": Scenario(ecn),
    "qos.ecn-ce-lost": Scenario(ce_lost),
    "ttl.not-inherited": Scenario(ttl),
    "overlay.return-vni-mismatch": Scenario(vni_mismatch),
    "overlay.return-vtep-mismatch": Scenario(vtep_mismatch),
    "overlay.return-missing": Scenario(return_missing),
    "inventory.unexpected-vtep": Scenario(unexpected_vtep, inventory=True),
    "inventory.unexpected-vni": Scenario(unexpected_vni, inventory=True),
    "tunnel.single-packet": Scenario(single_packet),
    "vxlan.invalid-flags": Scenario(vxlan_flags),
    "security.cleartext-overlay": Scenario(cleartext, untrusted=("203.0.113.0/24",)),
    "security.encrypted-transport": Scenario(encrypted, untrusted=("203.0.113.0/24",)),
    "health.retransmissions": Scenario(retransmissions),
    "health.duplicate-packets": Scenario(duplicates),
    "health.ttl-expired": Scenario(ttl_expired),
}


def build(name: str) -> Builder:
    b = Builder()
    SCENARIOS[name].build(b)
    return b


def write(name: str, directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.pcap"
    wrpcap(str(path), build(name).packets)
    return path


def main(argv: list[str]) -> None:
    out = Path(argv[1]) if len(argv) > 1 else Path(__file__).resolve().parent / "findings"
    for name in SCENARIOS:
        p = write(name, out)
        print(f"{p} ({p.stat().st_size} bytes)")
    (out / "inventory.yaml").write_text(INVENTORY_YAML)


if __name__ == "__main__":
    main(sys.argv)
