#!/usr/bin/env python3
"""Write the sample captures shipped in ``captures/`` (run: ``python3 captures/make_captures.py``).

Every byte is determined here: fixed timestamps, fixed IDs, sequence numbers and payloads,
and file headers written by hand (not by scapy's writers, whose options may change), so
running the script again reproduces the shipped files exactly; a test checks that.  All
addresses come from the documentation ranges (192.0.2.0/24, 198.51.100.0/24,
203.0.113.0/24, 2001:db8::/32) and the MAC addresses are locally administered.

Captures:

* ``mixed-overlays.pcap``: the README's demo; see ``captures/README.md`` for its story.
* ``vxlan-basic.pcapng``: a few VXLAN frames in pcapng with nanosecond timestamps.
* ``truncated.pcap``: a VXLAN flow whose file is cut inside the last record.
"""

from __future__ import annotations

import random
import struct
import sys
from collections.abc import Callable
from pathlib import Path

from scapy.contrib.erspan import ERSPAN_II
from scapy.contrib.geneve import GENEVE, GeneveOptions
from scapy.contrib.gtp import GTP_U_Header
from scapy.contrib.mpls import MPLS
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import ARP, GRE, Dot1Q, Ether
from scapy.layers.vxlan import VXLAN
from scapy.packet import Packet, Raw

HERE = Path(__file__).resolve().parent
T0 = 1_700_000_000  # 2023-11-14 22:13:20 UTC

# --- the underlay -------------------------------------------------------------------------
# A capture taken on VTEP 1's uplink: MAC addresses of VTEP 1 and of its next-hop router.
VTEP1_MAC, ROUTER_MAC = "02:00:00:00:01:01", "02:00:00:00:fe:01"
VTEP1, VTEP2 = "192.0.2.1", "192.0.2.2"  # VNI 100 pair
VTEP3, VTEP4 = "192.0.2.3", "192.0.2.4"  # VNI 200 pair
ROUTER_RB = "198.51.100.6"  # the router in front of the MTU-1400 link (the "rb" path)
# --- the overlapping tenants: same inner addresses, ports and MACs behind both VNIs ---------
CLIENT, SERVER = "203.0.113.10", "203.0.113.20"
CLIENT_MAC, SERVER_MAC = "02:00:00:aa:00:10", "02:00:00:aa:00:20"
CPORT, SPORT = 40000, 80


def _payload(seed: int, n: int) -> bytes:
    return random.Random(seed).randbytes(n)


def _outer(src: str, dst: str, sport: int, ident: int, *, to_router: bool = True) -> Packet:
    macs = (VTEP1_MAC, ROUTER_MAC) if to_router else (ROUTER_MAC, VTEP1_MAC)
    return (
        Ether(src=macs[0], dst=macs[1])
        / IP(src=src, dst=dst, id=ident, flags="DF", ttl=64)
        / UDP(sport=sport, dport=4789)
    )


def _tenant_tcp(
    vni: int, outer: Packet, forward: bool, flags: str, seq: int, ack: int, data: bytes = b"", opts: list | None = None
) -> Packet:
    inner_src, inner_dst = (CLIENT, SERVER) if forward else (SERVER, CLIENT)
    macs = (CLIENT_MAC, SERVER_MAC) if forward else (SERVER_MAC, CLIENT_MAC)
    ports = (CPORT, SPORT) if forward else (SPORT, CPORT)
    tcp = TCP(sport=ports[0], dport=ports[1], flags=flags, seq=seq, ack=ack, window=64240, options=opts or [])
    inner = Ether(src=macs[0], dst=macs[1]) / IP(src=inner_src, dst=inner_dst, id=seq & 0xFFFF, flags="DF") / tcp
    return outer / VXLAN(flags=0x08, vni=vni) / (inner / Raw(data) if data else inner)


def mixed_overlays() -> list[tuple[int, Packet]]:
    """(timestamp in microseconds since T0, packet) for the demo capture."""
    pkts: list[tuple[int, Packet]] = []
    t = 0

    def add(p: Packet, dt_us: int) -> None:
        nonlocal t
        t += dt_us
        pkts.append((t, p))

    syn_opts = [("MSS", 1410), ("SAckOK", b""), ("WScale", 7)]
    # Tenant A, VNI 100, first on outer source port 49200 (the ECMP path through the 1400-MTU link).
    a1, a2, a_back = 49200, 51515, 60001
    out = _outer(VTEP1, VTEP2, a1, 1)
    back = _outer(VTEP2, VTEP1, a_back, 1, to_router=False)
    add(_tenant_tcp(100, out, True, "S", 1000, 0, opts=syn_opts), 0)
    add(_tenant_tcp(100, back, False, "SA", 5000, 1001, opts=syn_opts), 300)
    add(_tenant_tcp(100, _outer(VTEP1, VTEP2, a1, 2), True, "A", 1001, 5001), 200)
    add(_tenant_tcp(100, _outer(VTEP1, VTEP2, a1, 3), True, "PA", 1001, 5001, b"GET / HTTP/1.1\r\n\r\n"), 100)
    add(_tenant_tcp(100, _outer(VTEP2, VTEP1, a_back, 2, to_router=False), False, "A", 5001, 1019), 400)
    # Tenant B, VNI 200, same inner 5-tuple between its own VTEPs: must stay a separate flow.
    b_out, b_back = 50300, 60300
    add(_tenant_tcp(200, _outer(VTEP3, VTEP4, b_out, 1), True, "S", 7000, 0, opts=syn_opts), 500)
    add(_tenant_tcp(200, _outer(VTEP4, VTEP3, b_back, 1, to_router=False), False, "SA", 9000, 7001, opts=syn_opts), 300)
    add(_tenant_tcp(200, _outer(VTEP3, VTEP4, b_out, 2), True, "A", 7001, 9001), 200)
    add(_tenant_tcp(200, _outer(VTEP3, VTEP4, b_out, 3), True, "PA", 7001, 9001, b"GET /b HTTP/1.1\r\n\r\n"), 100)
    # Tenant A's client goes on with a full-size segment: inner IP 1450 bytes, outer IP 1500 with DF.
    big = _payload(1, 1410)
    big_out = _tenant_tcp(100, _outer(VTEP1, VTEP2, a1, 4), True, "PA", 1019, 5001, big)
    add(big_out, 1000)
    # The router in front of the 1400-byte link cannot forward it: fragmentation needed, quoting
    # the first 548 bytes of the outer packet (the Linux default: the error is at most 576 bytes).
    quote = bytes(big_out[IP])[:548]
    icmp = IP(src=ROUTER_RB, dst=VTEP1, id=4242, ttl=254) / ICMP(type=3, code=4, nexthopmtu=1400) / Raw(quote)
    add(Ether(src=ROUTER_MAC, dst=VTEP1_MAC) / icmp, 150)
    # The retransmission on the same path meets the same fate (the kernel has not re-hashed yet)...
    add(_tenant_tcp(100, _outer(VTEP1, VTEP2, a1, 5), True, "PA", 1019, 5001, big), 200_000)
    # ...then after the retransmission timeout the flow hash is re-drawn: new outer source port,
    # another ECMP path with a 1500-byte MTU, and the segment gets through.
    add(_tenant_tcp(100, _outer(VTEP1, VTEP2, a2, 6), True, "PA", 1019, 5001, big), 400_000)
    add(_tenant_tcp(100, _outer(VTEP2, VTEP1, a_back, 3, to_router=False), False, "A", 5001, 2429), 600)

    # --- the other encapsulations, one or two frames each ---------------------------------
    eth_out = Ether(src=VTEP1_MAC, dst=ROUTER_MAC)
    inner_eth = Ether(src=CLIENT_MAC, dst=SERVER_MAC)
    inner_udp = IP(src=CLIENT, dst=SERVER, id=77) / UDP(sport=5353, dport=53) / Raw(b"\x12\x34" + bytes(10))
    # 802.1Q-tagged outer frame carrying VXLAN VNI 300
    tagged = Ether(src=VTEP1_MAC, dst=ROUTER_MAC) / Dot1Q(vlan=30, prio=5) / IP(src=VTEP1, dst=VTEP2, id=10)
    add(tagged / UDP(sport=49999, dport=4789) / VXLAN(flags=0x08, vni=300) / inner_eth / inner_udp, 1000)
    # IPv6 underlay VXLAN, VNI 400
    v6 = eth_out / IPv6(src="2001:db8:0:1::1", dst="2001:db8:0:2::2", hlim=64, fl=0x12345)
    add(v6 / UDP(sport=52001, dport=4789) / VXLAN(flags=0x08, vni=400) / inner_eth / inner_udp, 1000)
    # Geneve VNI 500 with an OVN option (logical ingress port 3, egress port 5); OVN's option type
    # has the critical bit, so the header's C flag is set as RFC 8926 requires
    opt = GeneveOptions(classid=0x0102, type=0x80, data=struct.pack("!HH", 3, 5))
    gen = GENEVE(vni=500, proto=0x6558, critical=1, options=[opt])
    add(eth_out / IP(src=VTEP1, dst=VTEP2, id=11) / UDP(sport=53002, dport=6081) / gen / inner_eth / inner_udp, 1000)
    # GRE with key 0x00012345 carrying IPv4
    gre = GRE(key_present=1, key=0x00012345, proto=0x0800)
    add(eth_out / IP(src=VTEP1, dst="198.51.100.20", id=12) / gre / inner_udp, 1000)
    # NVGRE: VSID 0x000abc, flow ID 0x11 in the GRE key, inner Ethernet
    nvgre = GRE(key_present=1, key=(0x000ABC << 8) | 0x11, proto=0x6558)
    add(eth_out / IP(src=VTEP1, dst=VTEP2, id=13) / nvgre / inner_eth / inner_udp, 1000)
    # IP-in-IP (protocol 4)
    add(eth_out / IP(src=VTEP1, dst="198.51.100.30", id=14) / inner_udp, 1000)
    # GTP-U G-PDU, TEID 0x1a2b3c4d
    gtp = GTP_U_Header(teid=0x1A2B3C4D, gtp_type=255)
    add(eth_out / IP(src=VTEP1, dst="198.51.100.40", id=15) / UDP(sport=2152, dport=2152) / gtp / inner_udp, 1000)
    # MPLS-in-UDP (RFC 7510), label 1000
    mpls = MPLS(label=1000, s=1, ttl=63)
    add(eth_out / IP(src=VTEP1, dst="198.51.100.50", id=16) / UDP(sport=54003, dport=6635) / mpls / inner_udp, 1000)
    # ERSPAN type II, session 42, mirroring one of tenant A's frames
    span = GRE(seqnum_present=1, seqence_number=1, proto=0x88BE) / ERSPAN_II(session_id=42, index=7)
    mirrored = inner_eth / IP(src=CLIENT, dst=SERVER, id=1, flags="DF") / TCP(sport=CPORT, dport=SPORT, flags="S")
    add(eth_out / IP(src=VTEP1, dst="198.51.100.60", id=17) / span / mirrored, 1000)
    return pkts


def vxlan_basic() -> list[tuple[int, Packet]]:
    """ARP and ICMP echo between two hosts of VNI 100 (timestamps in nanoseconds since T0)."""
    out = _outer(VTEP1, VTEP2, 49200, 100)
    back = _outer(VTEP2, VTEP1, 60001, 100, to_router=False)
    arp_req = Ether(src=CLIENT_MAC, dst="ff:ff:ff:ff:ff:ff") / ARP(
        op=1, hwsrc=CLIENT_MAC, psrc=CLIENT, hwdst="00:00:00:00:00:00", pdst=SERVER
    )
    arp_rep = Ether(src=SERVER_MAC, dst=CLIENT_MAC) / ARP(
        op=2, hwsrc=SERVER_MAC, psrc=SERVER, hwdst=CLIENT_MAC, pdst=CLIENT
    )
    ping = Ether(src=CLIENT_MAC, dst=SERVER_MAC) / IP(src=CLIENT, dst=SERVER, id=1) / ICMP(type=8, id=7, seq=1)
    pong = Ether(src=SERVER_MAC, dst=CLIENT_MAC) / IP(src=SERVER, dst=CLIENT, id=2) / ICMP(type=0, id=7, seq=1)
    vx = VXLAN(flags=0x08, vni=100)
    frames = [out / vx / arp_req, back / vx / arp_rep, out / vx / ping / Raw(b"ping"), back / vx / pong / Raw(b"ping")]
    return [(i * 123_456_789, p) for i, p in enumerate(frames)]


# --- writers --------------------------------------------------------------------------------


def pcap_bytes(pkts: list[tuple[int, Packet]], linktype: int = 1) -> bytes:
    """Classic little-endian microsecond pcap."""
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, linktype)]
    for t_us, p in pkts:
        data = bytes(p)
        sec, usec = divmod(t_us, 1_000_000)
        out.append(struct.pack("<IIII", T0 + sec, usec, len(data), len(data)) + data)
    return b"".join(out)


def _block(btype: int, body: bytes) -> bytes:
    body += b"\0" * (-len(body) % 4)
    return struct.pack("<II", btype, 12 + len(body)) + body + struct.pack("<I", 12 + len(body))


def _option(code: int, value: bytes) -> bytes:
    return struct.pack("<HH", code, len(value)) + value + b"\0" * (-len(value) % 4)


def pcapng_bytes(pkts: list[tuple[int, Packet]], linktype: int = 1) -> bytes:
    """pcapng, one section and one interface with nanosecond timestamps (if_tsresol = 9)."""
    shb_opts = _option(4, b"ipsotrace captures/make_captures.py") + _option(0, b"")
    shb = _block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1) + shb_opts)
    idb_opts = _option(2, b"vtep1-uplink") + _option(9, b"\x09") + _option(0, b"")
    idb = _block(1, struct.pack("<HHI", linktype, 0, 262144) + idb_opts)
    epbs = []
    for t_ns, p in pkts:
        data = bytes(p)
        ts = T0 * 1_000_000_000 + t_ns
        epbs.append(_block(6, struct.pack("<IIIII", 0, ts >> 32, ts & 0xFFFFFFFF, len(data), len(data)) + data))
    return shb + idb + b"".join(epbs)


def truncated_bytes() -> bytes:
    """The first five frames of the demo's tenant A flow, the file cut in the middle of the fifth."""
    whole = pcap_bytes(mixed_overlays()[:5])
    last = len(bytes(mixed_overlays()[4][1]))
    return whole[: len(whole) - last // 2]


BUILDERS: dict[str, Callable[[], bytes]] = {
    "mixed-overlays.pcap": lambda: pcap_bytes(mixed_overlays()),
    "vxlan-basic.pcapng": lambda: pcapng_bytes(vxlan_basic()),
    "truncated.pcap": truncated_bytes,
}


def build_all() -> dict[str, bytes]:
    return {name: build() for name, build in BUILDERS.items()}


def main(argv: list[str]) -> int:
    target = Path(argv[0]) if argv else HERE
    for name, data in build_all().items():
        (target / name).write_bytes(data)
        print(f"{target / name}: {len(data)} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
