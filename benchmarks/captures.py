"""Synthetic overlay captures for the benchmarks, built fast from struct templates.

``vxlan``: N frames of VXLAN over IPv4, 2,000 inner TCP/UDP flows over 16 VNIs
and 8 VTEP pairs; TCP flows mostly carry Linux's timestamp option; sizes mix
full-MTU data segments, pure ACKs and mid-sized packets.  ``mixed``: the same
flows spread over VXLAN (with and without a VLAN tag, IPv4 and IPv6 underlay),
Geneve, GRE with key, IP-in-IP and untunnelled traffic, plus a little of what
only the scalar path decodes (TCP SYNs with MSS, outer fragments, ICMP errors,
ARP).

Every header is a precomputed per-flow template; per frame only lengths,
identifiers, sequence numbers and checksums are patched, so a million frames
take seconds.  Deterministic for a given (kind, count, seed).
"""

from __future__ import annotations

import random
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ETH_IP4 = 0x0800
ETH_IP6 = 0x86DD
ETH_VLAN = 0x8100
MAC_A = bytes.fromhex("020000000001")
MAC_B = bytes.fromhex("020000000002")
MAC_C = bytes.fromhex("02000000aa01")
MAC_D = bytes.fromhex("02000000aa02")
PAYLOAD = random.Random(99).randbytes(16384)
TS_OPTS = b"\x01\x01\x08\x0a"


def _csum(hdr: bytes) -> int:
    s = sum(struct.unpack(f"!{len(hdr) // 2}H", hdr))
    s = (s & 0xFFFF) + (s >> 16)
    s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def _ip4(src: bytes, dst: bytes, proto: int, payload_len: int, ident: int, ttl: int, tos: int, df: bool) -> bytes:
    hdr = struct.pack("!BBHHHBBH4s4s", 0x45, tos, 20 + payload_len, ident, 0x4000 if df else 0, ttl, proto, 0, src, dst)
    return hdr[:10] + struct.pack("!H", _csum(hdr)) + hdr[12:]


def _ip6(src: bytes, dst: bytes, nh: int, payload_len: int, hlim: int, tclass: int, flow: int) -> bytes:
    return struct.pack("!IHBB16s16s", 6 << 28 | tclass << 20 | flow, payload_len, nh, hlim, src, dst)


@dataclass(slots=True)
class Flow:
    tcp: bool
    stamps: bool
    src: bytes
    dst: bytes
    sport: int
    dport: int
    vni: int
    vtep: int
    entropy: int
    seq: int
    ttl: int
    tos: int
    kind: str = "vxlan"  # mixed captures: the encapsulation of this flow


KINDS = ("vxlan", "vxlan-vlan", "vxlan-v6", "geneve", "gre", "ipip", "plain")
KIND_WEIGHTS = (40, 10, 10, 15, 10, 5, 10)
TCP_PORTS = (443, 443, 443, 80, 22, 5432, 6379, 8080)
UDP_PORTS = (53, 123, 514, 8125, 5353)


def make_flows(n: int, rng: random.Random, mixed: bool) -> list[Flow]:
    flows = []
    for i in range(n):
        tcp = rng.random() < 0.7
        # tenant addresses overlap between VNIs, as they do in real overlays
        src = bytes([203, 0, 113, 1 + i % 200])
        dst = bytes([203, 0, 113, 1 + (i * 7 + 3) % 200])
        flows.append(
            Flow(
                tcp=tcp,
                stamps=tcp and rng.random() < 0.8,
                src=src,
                dst=dst,
                sport=rng.randrange(32768, 61000),
                dport=rng.choice(TCP_PORTS if tcp else UDP_PORTS),
                vni=100 + rng.randrange(16),
                vtep=rng.randrange(8),
                entropy=49152 + rng.randrange(16384),
                seq=rng.randrange(1 << 32),
                ttl=64,
                tos=rng.choice((0, 0, 0, 0x28, 0xB8)),
                kind=rng.choices(KINDS, KIND_WEIGHTS)[0] if mixed else "vxlan",
            )
        )
    return flows


def _inner_l4(f: Flow, size: int, rng: random.Random) -> tuple[bytes, int]:
    """Transport header + payload for an inner IP packet of about ``size`` bytes; returns (bytes, proto)."""
    if f.tcp:
        opts = TS_OPTS + struct.pack("!II", rng.randrange(1 << 32), rng.randrange(1 << 32)) if f.stamps else b""
        hlen = 20 + len(opts)
        plen = max(0, size - 20 - hlen)
        flags = 0x18 if plen else 0x10
        hdr = struct.pack("!HHIIBBHHH", f.sport, f.dport, f.seq, 12345, (hlen // 4) << 4, flags, 502, 0, 0) + opts
        f.seq = (f.seq + plen) & 0xFFFFFFFF
        off = rng.randrange(0, 8000)
        return hdr + PAYLOAD[off : off + plen], 6
    plen = max(0, size - 28)
    off = rng.randrange(0, 8000)
    return struct.pack("!HHHH", f.sport, f.dport, 8 + plen, 0) + PAYLOAD[off : off + plen], 17


def _size(f: Flow, rng: random.Random) -> int:
    r = rng.random()
    if f.tcp:
        if r < 0.55:
            return 1450  # full segments of a 1500-byte underlay minus VXLAN
        if r < 0.9:
            return 52 if f.stamps else 40  # pure ACKs
        return rng.randrange(200, 1000)
    return rng.randrange(60, 1200)


def _vtep(f: Flow) -> tuple[bytes, bytes]:
    return bytes([192, 0, 2, 1 + f.vtep]), bytes([192, 0, 2, 101 + f.vtep])


def _vtep6(f: Flow) -> tuple[bytes, bytes]:
    return (
        bytes.fromhex("20010db8000000000000000000000001")[:15] + bytes([1 + f.vtep]),
        bytes.fromhex("20010db8000000010000000000000001")[:15] + bytes([101 + f.vtep]),
    )


def frame(f: Flow, ident: int, rng: random.Random) -> bytes:
    l4, proto = _inner_l4(f, _size(f, rng), rng)
    inner = _ip4(f.src, f.dst, proto, len(l4), ident, f.ttl, f.tos, True) + l4
    kind = f.kind
    osrc, odst = _vtep(f)
    if kind == "plain":
        return MAC_A + MAC_B + struct.pack("!H", ETH_IP4) + inner
    if kind == "ipip":
        return (
            MAC_A + MAC_B + struct.pack("!H", ETH_IP4) + _ip4(osrc, odst, 4, len(inner), ident, 64, f.tos, True) + inner
        )
    if kind == "gre":
        gre = struct.pack("!HHI", 0x2000, ETH_IP4, f.vni)
        outer = _ip4(osrc, odst, 47, len(gre) + len(inner), ident, 64, f.tos, False)
        return MAC_A + MAC_B + struct.pack("!H", ETH_IP4) + outer + gre + inner
    l2 = MAC_C + MAC_D + struct.pack("!H", ETH_IP4) + inner
    if kind == "geneve":
        tun, port = struct.pack("!BBHI", 0, 0, 0x6558, f.vni << 8), 6081
    else:
        tun, port = struct.pack("!BBHI", 0x08, 0, 0, f.vni << 8), 4789
    udp_len = 8 + len(tun) + len(l2)
    udp = struct.pack("!HHHH", f.entropy, port, udp_len, 0)
    if kind == "vxlan-v6":
        s6, d6 = _vtep6(f)
        return (
            MAC_A
            + MAC_B
            + struct.pack("!H", ETH_IP6)
            + _ip6(s6, d6, 17, udp_len, 64, f.tos, f.entropy)
            + udp
            + tun
            + l2
        )
    outer = _ip4(osrc, odst, 17, udp_len, ident, 64, f.tos, False) + udp + tun + l2
    if kind == "vxlan-vlan":
        return MAC_A + MAC_B + struct.pack("!HHH", ETH_VLAN, 100 + f.vtep, ETH_IP4) + outer
    return MAC_A + MAC_B + struct.pack("!H", ETH_IP4) + outer


def _rare(f: Flow, ident: int, rng: random.Random) -> bytes:
    """Frames only the scalar path decodes: SYN with MSS, outer fragment, ICMP error, ARP."""
    osrc, odst = _vtep(f)
    r = rng.random()
    if r < 0.4:
        syn = struct.pack("!HHIIBBHHH", f.sport, f.dport, f.seq, 0, 0x60, 0x02, 64240, 0, 0) + b"\x02\x04\x05\x82"
        inner = _ip4(f.src, f.dst, 6, len(syn), ident, 64, 0, True) + syn
        l2 = MAC_C + MAC_D + struct.pack("!H", ETH_IP4) + inner
        tun = struct.pack("!BBHI", 0x08, 0, 0, f.vni << 8)
        udp = struct.pack("!HHHH", f.entropy, 4789, 8 + len(tun) + len(l2), 0)
        outer = _ip4(osrc, odst, 17, len(udp) + len(tun) + len(l2), ident, 64, 0, False)
        return MAC_A + MAC_B + struct.pack("!H", ETH_IP4) + outer + udp + tun + l2
    if r < 0.6:
        body = struct.pack("!HHHH", f.entropy, 4789, 1480, 0) + PAYLOAD[:600]
        hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(body), ident, 0x2000, 64, 17, 0, osrc, odst)
        return MAC_A + MAC_B + struct.pack("!H", ETH_IP4) + hdr + body
    if r < 0.9:
        quoted = _ip4(osrc, odst, 17, 1480, ident, 1, 0, True) + struct.pack("!HHHH", f.entropy, 4789, 1480, 0)
        icmp = struct.pack("!BBHHH", 3, 4, 0, 0, 1400) + quoted
        return (
            MAC_B
            + MAC_A
            + struct.pack("!H", ETH_IP4)
            + _ip4(bytes([198, 51, 100, 1]), osrc, 1, len(icmp), ident, 64, 0, False)
            + icmp
        )
    arp = struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, 1, MAC_A, osrc, b"\0" * 6, odst)
    return b"\xff" * 6 + MAC_A + struct.pack("!H", 0x0806) + arp


def frames(kind: str, count: int, seed: int = 1) -> Iterator[bytes]:
    rng = random.Random(seed)
    mixed = kind == "mixed"
    flows = make_flows(2000, rng, mixed)
    for i in range(count):
        f = flows[rng.randrange(len(flows))]
        if mixed and rng.random() < 0.01:
            yield _rare(f, i & 0xFFFF, rng)
        else:
            yield frame(f, i & 0xFFFF, rng)


def write(path: Path, kind: str, count: int, seed: int = 1) -> None:
    """Write a pcap (microsecond timestamps, 2 µs apart) atomically."""
    tmp = path.with_suffix(".tmp")
    rec = struct.Struct("<IIII")
    t0 = 1_700_000_000 * 1_000_000
    with tmp.open("wb") as fh:
        fh.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1))
        parts: list[bytes] = []
        for i, data in enumerate(frames(kind, count, seed)):
            us = t0 + 2 * i
            parts.append(rec.pack(us // 1_000_000, us % 1_000_000, len(data), len(data)))
            parts.append(data)
            if len(parts) >= 65536:
                fh.write(b"".join(parts))
                parts = []
        fh.write(b"".join(parts))
    tmp.replace(path)


def capture(data_dir: Path, kind: str, count: int) -> Path:
    """The cached capture, generated on first use."""
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / f"{kind}-{count}.pcap"
    if not path.exists():
        write(path, kind, count)
    return path
