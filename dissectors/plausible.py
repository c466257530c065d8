"""Cheap plausibility checks the tunnel heuristics share: "does an IP packet / Ethernet frame start here?".

A heuristic guesses a tunnel on a port nobody configured, so a false positive
turns ordinary traffic into nonsense layers.  The strongest evidence a tunnel
header can offer is that what follows it is itself a well-formed packet: an IPv4
header whose checksum verifies (hosts compute it in software even when L4
checksums are offloaded) or an IPv6 header whose payload length fits exactly.
"""

from __future__ import annotations

import struct

from ipsotrace.dissectors.base import inet_sum

#: Ethertypes a tunnelled Ethernet frame commonly carries.  Deliberately narrower than the
#: registry's table: the heuristic asks "is this a frame", not "can we decode it".
INNER_ETHERTYPES = frozenset({0x0800, 0x86DD, 0x0806, 0x8100, 0x88A8, 0x8847, 0x8848})

#: IPv6 next-header values seen as the first header of real packets (upper layers and extensions).
IPV6_NEXT = frozenset({0, 6, 17, 58, 43, 44, 60, 50, 51, 4, 41, 47, 132, 59, 136, 1})


def ipv4_checksum_ok(buf: bytes, off: int, ihl: int) -> bool:
    return inet_sum(buf, off, off + ihl) == 0xFFFF


def ipv4_ok(buf: bytes, off: int, end: int, *, exact: bool = False) -> bool:
    """A complete, checksum-valid IPv4 header; ``exact``: total length equals the bytes left."""
    if end - off < 20 or buf[off] >> 4 != 4:
        return False
    ihl = (buf[off] & 0x0F) * 4
    if ihl < 20 or end - off < ihl:
        return False
    (total,) = struct.unpack_from("!H", buf, off + 2)
    if total < ihl or total > end - off or (exact and total != end - off):
        return False
    return ipv4_checksum_ok(buf, off, ihl)


def ipv6_ok(buf: bytes, off: int, end: int, *, exact: bool = False) -> bool:
    """A complete IPv6 header with a known next header whose payload fits (``exact``: fills) the bytes left."""
    if end - off < 40 or buf[off] >> 4 != 6:
        return False
    (plen,) = struct.unpack_from("!H", buf, off + 4)
    if buf[off + 6] not in IPV6_NEXT:
        return False
    if exact:
        return plen + 40 == end - off
    return plen + 40 <= end - off


def ip_ok(buf: bytes, off: int, end: int, *, exact: bool = False) -> bool:
    """An IPv4 or IPv6 packet starts at ``off`` (chosen by the version nibble)."""
    if off >= end:
        return False
    version = buf[off] >> 4
    if version == 4:
        return ipv4_ok(buf, off, end, exact=exact)
    if version == 6:
        return ipv6_ok(buf, off, end, exact=exact)
    return False


def eth_ok(buf: bytes, off: int, end: int) -> tuple[bool, bool]:
    """(known Ethertype, valid IP packet after it) for an Ethernet frame at ``off``.

    A VLAN tag is skipped once so tagged tenant traffic is recognised too.
    """
    if end - off < 14:
        return False, False
    (etype,) = struct.unpack_from("!H", buf, off + 12)
    pos = off + 14
    if etype in (0x8100, 0x88A8) and end - pos >= 4:
        (etype,) = struct.unpack_from("!H", buf, pos + 2)
        pos += 4
    if etype not in INNER_ETHERTYPES:
        return False, False
    if etype in (0x0800, 0x86DD):
        return True, ip_ok(buf, pos, end) and (buf[pos] >> 4) == (4 if etype == 0x0800 else 6)
    return True, etype == 0x0806 and end - pos >= 28
