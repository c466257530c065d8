"""Generated overlay traffic for the fast-path tests: exact bytes built with scapy.

``frame_strategy()`` draws one frame from a mix of shapes the fast path decodes
(VXLAN, Geneve, GRE, IP-in-IP, VLAN, IPv6 underlay) and shapes it must leave to
the scalar path (fragments, IP/TCP options, ICMP errors, truncation, odd flags,
ARP, QinQ...), with random field values.
"""

from __future__ import annotations

import random
import struct
from dataclasses import dataclass
from typing import Any

import numpy as np
from hypothesis import strategies as st
from scapy.compat import raw
from scapy.contrib.geneve import GENEVE
from scapy.layers.inet import GRE, ICMP, IP, TCP, UDP, IPOption_RR
from scapy.layers.inet6 import IPv6, IPv6ExtHdrFragment
from scapy.layers.l2 import ARP, Dot1AD, Dot1Q, Ether
from scapy.packet import Packet as ScapyPacket
from scapy.packet import Raw

from ipsotrace.fast.batch import PAD, Batch


@dataclass(frozen=True, slots=True)
class GenFrame:
    ts_ns: int
    data: bytes
    wirelen: int
    linktype: int = 1


def VXLAN(vni: int = 0, flags: int = 0x08) -> Raw:
    """A VXLAN header as bytes: scapy's VXLAN turns into VXLAN-GPE flags when Ethernet follows."""
    return Raw(struct.pack("!BBHI", flags, 0, 0, vni << 8))


def _v4(r: random.Random, net: str) -> str:
    return f"{net}.{r.randrange(1, 255)}"


def _v6(r: random.Random) -> str:
    return f"2001:db8:{r.randrange(0, 0xFFFF):x}::{r.randrange(1, 0xFFFF):x}"


def _inner_l4(r: random.Random) -> ScapyPacket:
    kind = r.random()
    payload = Raw(bytes(r.randrange(256) for _ in range(r.choice([0, 1, 10, 100, 600]))))
    if kind < 0.45:
        return (
            TCP(
                sport=r.randrange(1024, 65535),
                dport=r.choice([80, 443, 22]),
                flags=r.choice(["A", "PA", "FA", "R"]),
                seq=r.randrange(1 << 32),
                ack=r.randrange(1 << 32),
                window=r.randrange(1 << 16),
            )
            / payload
        )
    if kind < 0.55:
        # Linux's usual NOP NOP timestamp options (decoded by the fast path)
        return (
            TCP(
                sport=r.randrange(1024, 65535),
                dport=443,
                flags="A",
                seq=r.randrange(1 << 32),
                options=[("NOP", None), ("NOP", None), ("Timestamp", (r.randrange(1 << 32), r.randrange(1 << 32)))],
            )
            / payload
        )
    if kind < 0.6:
        return TCP(sport=r.randrange(1024, 65535), dport=443, flags="S", options=[("MSS", 1460), ("SAckOK", b"")])
    if kind < 0.9:
        return UDP(sport=r.randrange(1024, 65535), dport=r.choice([53, 123, 5000])) / payload
    return ICMP(type=8) / payload


def _inner(r: random.Random) -> ScapyPacket:
    l4 = _inner_l4(r)
    if r.random() < 0.8:
        ip: ScapyPacket = IP(
            src=_v4(r, "203.0.113"),
            dst=_v4(r, "203.0.113"),
            ttl=r.randrange(1, 255),
            tos=r.randrange(256),
            flags=r.choice([0, 2]),
            id=r.randrange(1 << 16),
        )
    else:
        ip = IPv6(src=_v6(r), dst=_v6(r), hlim=r.randrange(1, 255), tc=r.randrange(256), fl=r.randrange(1 << 20))
    return ip / l4


def _outer_ip(r: random.Random, v6: bool, **kw: Any) -> ScapyPacket:
    if v6:
        return IPv6(src=_v6(r), dst=_v6(r), hlim=r.randrange(1, 255), tc=r.randrange(256))
    return IP(
        src=_v4(r, "192.0.2"),
        dst=_v4(r, "198.51.100"),
        ttl=r.randrange(1, 255),
        tos=r.randrange(256),
        flags=r.choice([0, 2]),
        id=r.randrange(1 << 16),
        **kw,
    )


def _link(r: random.Random, vlan: bool) -> ScapyPacket:
    eth = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
    return eth / Dot1Q(vlan=r.randrange(1, 4095), prio=r.randrange(8)) if vlan else eth


def build(r: random.Random) -> tuple[bytes, int]:
    """One frame (bytes, wire length)."""
    shape = r.random()
    vlan = r.random() < 0.25
    v6 = r.random() < 0.2
    inner_eth = Ether(src="02:00:00:00:01:01", dst="02:00:00:00:01:02")
    if r.random() < 0.1:
        inner_eth = inner_eth / Dot1Q(vlan=r.randrange(1, 4095))
    if shape < 0.4:
        pkt = (
            _link(r, vlan)
            / _outer_ip(r, v6)
            / UDP(sport=r.randrange(49152, 65535), dport=r.choice([4789, 4789, 8472]))
            / VXLAN(vni=r.randrange(1 << 24))
            / inner_eth
            / _inner(r)
        )
    elif shape < 0.5:
        pkt = (
            _link(r, vlan)
            / _outer_ip(r, v6)
            / UDP(sport=r.randrange(49152, 65535), dport=6081)
            / GENEVE(vni=r.randrange(1 << 24), proto=0x6558)
            / inner_eth
            / _inner(r)
        )
    elif shape < 0.6:
        key = r.random() < 0.7
        pkt = (
            _link(r, vlan)
            / _outer_ip(r, False)
            / GRE(key_present=int(key), key=r.randrange(1 << 32) if key else None, proto=0x0800)
            / IP(src=_v4(r, "203.0.113"), dst=_v4(r, "203.0.113"))
            / _inner_l4(r)
        )
    elif shape < 0.7:
        pkt = _link(r, vlan) / _outer_ip(r, v6) / _inner(r)  # IP-in-IP, 4in6, 6in4, 6in6
    elif shape < 0.8:
        pkt = _link(r, vlan) / _outer_ip(r, v6) / _inner_l4(r)  # plain underlay traffic
    elif shape < 0.84:
        # outer fragments: first and later
        first = r.random() < 0.5
        pkt = (
            _link(r, vlan)
            / IP(
                src=_v4(r, "192.0.2"),
                dst=_v4(r, "198.51.100"),
                flags="MF" if first else 0,
                frag=0 if first else r.randrange(1, 100),
            )
            / UDP(sport=50000, dport=4789)
            / VXLAN(vni=7)
            / inner_eth
            / _inner(r)
        )
    elif shape < 0.86:
        pkt = (
            _link(r, vlan)
            / IPv6(src=_v6(r), dst=_v6(r))
            / IPv6ExtHdrFragment(m=1, offset=0)
            / UDP(sport=50000, dport=4789)
            / VXLAN(vni=7)
            / inner_eth
            / _inner(r)
        )
    elif shape < 0.88:
        pkt = (
            _link(r, vlan)
            / IP(src=_v4(r, "192.0.2"), dst=_v4(r, "198.51.100"), options=[IPOption_RR()])
            / UDP(sport=50000, dport=4789)
            / VXLAN(vni=9)
            / inner_eth
            / _inner(r)
        )
    elif shape < 0.91:
        quoted = (
            IP(src=_v4(r, "192.0.2"), dst=_v4(r, "198.51.100"))
            / UDP(sport=50001, dport=4789)
            / VXLAN(vni=3)
            / inner_eth
            / _inner(r)
        )
        pkt = (
            _link(r, vlan)
            / IP(src=_v4(r, "198.51.100"), dst=_v4(r, "192.0.2"))
            / ICMP(type=r.choice([3, 11]), code=r.choice([0, 4]))
            / raw(quoted)[: r.choice([28, 60, 200])]
        )
    elif shape < 0.93:
        pkt = (
            Ether()
            / Dot1AD(vlan=5)
            / Dot1Q(vlan=6)
            / _outer_ip(r, False)
            / UDP(sport=50000, dport=4789)
            / VXLAN(vni=4)
            / inner_eth
            / _inner(r)
        )
    elif shape < 0.95:
        pkt = Ether() / ARP(psrc="192.0.2.1", pdst="192.0.2.2")
    elif shape < 0.97:
        # odd VXLAN flags / reserved bits
        pkt = (
            _link(r, vlan)
            / _outer_ip(r, False)
            / UDP(sport=50000, dport=4789)
            / VXLAN(flags=r.choice([0x00, 0x88, 0x0C]), vni=5)
            / inner_eth
            / _inner(r)
        )
    else:
        pkt = _link(r, vlan) / _outer_ip(r, False) / UDP(sport=50000, dport=4789) / Raw(b"\x08\x00\x00")  # short VXLAN
    data = raw(pkt)
    wire = len(data)
    if r.random() < 0.1:  # snaplen cut somewhere in the headers or the payload
        data = data[: r.randrange(1, len(data) + 1)]
    elif r.random() < 0.03:  # a lying IPv4 total length / Ethernet trailer
        data = data + b"\x00" * r.randrange(1, 20)
        wire = len(data)
    return data, wire


def mixed_frames(n: int, seed: int = 0) -> list[GenFrame]:
    r = random.Random(seed)
    out = []
    for i in range(n):
        data, wire = build(r)
        out.append(GenFrame(1_700_000_000_000_000_000 + i * 1_234_567, data, wire))
    return out


@st.composite
def frame_strategy(draw: st.DrawFn) -> GenFrame:
    seed = draw(st.integers(min_value=0, max_value=2**32 - 1))
    data, wire = build(random.Random(seed))
    return GenFrame(1_700_000_000_000_000_000, data, wire)


def write_pcap(
    frames: list[GenFrame], *, nanos: bool = False, big_endian: bool = False, snaplen: int = 262144
) -> bytes:
    e = ">" if big_endian else "<"
    magic = 0xA1B23C4D if nanos else 0xA1B2C3D4
    out = [struct.pack(e + "IHHiIII", magic, 2, 4, 0, 0, snaplen, 1)]
    for f in frames:
        sec, rest = divmod(f.ts_ns, 1_000_000_000)
        frac = rest if nanos else rest // 1000
        out.append(struct.pack(e + "IIII", sec, frac, len(f.data), f.wirelen) + f.data)
    return b"".join(out)


def _block(e: str, btype: int, body: bytes) -> bytes:
    body += b"\x00" * (-len(body) % 4)
    blen = len(body) + 12
    return struct.pack(e + "II", btype, blen) + body + struct.pack(e + "I", blen)


def write_pcapng(frames: list[GenFrame], *, big_endian: bool = False) -> bytes:
    """Two sections; the second has two interfaces with nanosecond and 2^-20 s clocks."""
    e = ">" if big_endian else "<"
    shb = _block(e, 0x0A0D0D0A, struct.pack(e + "IHHq", 0x1A2B3C4D, 1, 0, -1))
    idb_us = _block(e, 1, struct.pack(e + "HHI", 1, 0, 0))
    idb_ns = _block(e, 1, struct.pack(e + "HHI", 1, 0, 0) + struct.pack(e + "HHB3x", 9, 1, 9) + b"\x00" * 4)
    idb_b2 = _block(e, 1, struct.pack(e + "HHI", 1, 0, 0) + struct.pack(e + "HHB3x", 9, 1, 0x80 | 20) + b"\x00" * 4)
    half = len(frames) // 2
    out = [shb, idb_us]
    for i, f in enumerate(frames):
        if i == half:
            out += [shb, idb_ns, idb_b2]
        if i < half:
            ifid, ticks = 0, f.ts_ns // 1000
        else:
            ifid = i % 2
            ticks = f.ts_ns if ifid == 0 else f.ts_ns * (1 << 20) // 1_000_000_000
        if i % 17 == 5 and i < half:
            out.append(_block(e, 3, struct.pack(e + "I", f.wirelen) + f.data))  # simple packet block
            continue
        body = struct.pack(e + "IIIII", ifid, ticks >> 32, ticks & 0xFFFFFFFF, len(f.data), f.wirelen) + f.data
        out.append(_block(e, 6, body))
        if i % 50 == 3:
            out.append(_block(e, 5, b"statistics block, skipped"))
    return b"".join(out)


def batch_of(frames: list[GenFrame]) -> Batch:
    """An in-memory batch, laid out as the reader lays out a chunk (with its padding)."""
    data = bytearray()
    offs = []
    for f in frames:
        data += b"\xee" * 16  # a record header's worth of unrelated bytes between frames
        offs.append(len(data))
        data += f.data
    data += b"\xee" * PAD
    n = len(frames)
    return Batch(
        np.frombuffer(bytes(data), dtype=np.uint8),
        np.array(offs, dtype=np.int64),
        np.array([len(f.data) for f in frames], dtype=np.int64),
        np.array([f.wirelen for f in frames], dtype=np.int64),
        np.array([f.ts_ns for f in frames], dtype=np.int64),
        np.array([f.linktype for f in frames], dtype=np.int64),
        np.zeros(n, dtype=np.int64),
        1,
    )
