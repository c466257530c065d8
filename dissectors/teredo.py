"""Teredo (RFC 4380): IPv6 over UDP over IPv4 NAT, with its optional indicators.

A Teredo datagram is one IPv6 packet, optionally preceded by an authentication
indicator (``00 01``: client ID, authentication value, nonce, confirmation) and an
origin indicator (``00 00``: the client's mapped port and IPv4 address, both
obfuscated by XOR with all ones).  Bubbles are IPv6 headers with no payload.

There is no tunnel identifier on the wire: a Teredo tunnel is the client's mapped
address, which the outer IPv4/UDP headers and the Teredo IPv6 address already
carry, so the layer has no ``tunnel_id``.  When the inner addresses are Teredo
addresses (2001:0::/32) their server and mapped client address are decoded too.
"""

from __future__ import annotations

import socket
import struct

from ipsotrace.dissectors import plausible
from ipsotrace.dissectors.base import Context, Decoded, Next, malformed, truncated
from ipsotrace.records import Anomaly, FieldValue

AUTH = 0x0001
ORIGIN = 0x0000
TEREDO_PREFIX = b"\x20\x01\x00\x00"


def teredo_address(addr: bytes) -> dict[str, FieldValue] | None:
    """Server, flags and the de-obfuscated mapped client port/address of a 2001:0::/32 address."""
    if len(addr) != 16 or addr[:4] != TEREDO_PREFIX:
        return None
    flags, port, client = struct.unpack_from("!HHI", addr, 8)
    return {
        "server": socket.inet_ntop(socket.AF_INET, addr[4:8]),
        "flags": flags,
        "cone": bool(flags & 0x8000),
        "mapped_port": port ^ 0xFFFF,
        "mapped_addr": socket.inet_ntop(socket.AF_INET, struct.pack("!I", client ^ 0xFFFFFFFF)),
    }


def _indicators(buf: bytes, off: int, end: int, fields: dict[str, FieldValue]) -> int | Anomaly:
    """Parse the optional indicators into ``fields``; return where the IPv6 packet starts."""
    pos = off
    if end - pos >= 2 and struct.unpack_from("!H", buf, pos)[0] == AUTH:
        if end - pos < 4:
            return truncated("teredo", pos, 4, end - pos)
        id_len, au_len = buf[pos + 2], buf[pos + 3]
        size = 4 + id_len + au_len + 8 + 1
        if end - pos < size:
            return truncated("teredo", pos, size, end - pos)
        p = pos + 4
        fields["auth"] = {
            "client_id": buf[p : p + id_len].hex(),
            "auth_value": buf[p + id_len : p + id_len + au_len].hex(),
            "nonce": buf[p + id_len + au_len : p + id_len + au_len + 8].hex(),
            "confirmation": buf[pos + size - 1],
        }
        pos += size
    if end - pos >= 2 and struct.unpack_from("!H", buf, pos)[0] == ORIGIN:
        if end - pos < 8:
            return truncated("teredo", pos, 8, end - pos)
        port, addr = struct.unpack_from("!HI", buf, pos + 2)
        fields["origin_port"] = port ^ 0xFFFF
        fields["origin_addr"] = socket.inet_ntop(socket.AF_INET, struct.pack("!I", addr ^ 0xFFFFFFFF))
        pos += 8
    return pos


def dissect(buf: bytes, off: int, end: int, ctx: Context) -> Decoded | Anomaly:
    fields: dict[str, FieldValue] = {}
    pos = _indicators(buf, off, end, fields)
    if isinstance(pos, Anomaly):
        return pos
    if pos >= end:
        return truncated("teredo", pos, 40, 0)
    if buf[pos] >> 4 != 6:
        return malformed("teredo", pos, f"payload version {buf[pos] >> 4}, expected an IPv6 packet")
    if end - pos >= 40:
        for key, a in (("src_teredo", pos + 8), ("dst_teredo", pos + 24)):
            info = teredo_address(buf[a : a + 16])
            if info is not None:
                fields[key] = info
        (plen,) = struct.unpack_from("!H", buf, pos + 4)
        fields["bubble"] = plen == 0 and buf[pos + 6] == 59
    return Decoded(fields, pos - off, Next("proto", "ipv6"), encap=True)


def heuristic(buf: bytes, off: int, end: int) -> float:
    """Confidence that a Teredo datagram starts at ``off``: exactly one IPv6 packet after the indicators."""
    scratch: dict[str, FieldValue] = {}
    pos = _indicators(buf, off, end, scratch)
    if isinstance(pos, Anomaly) or end - pos < 40 or buf[pos] >> 4 != 6:
        return 0.0
    (plen,) = struct.unpack_from("!H", buf, pos + 4)
    src, dst = buf[pos + 8 : pos + 24], buf[pos + 24 : pos + 40]
    teredo_or_local = any(a[:4] == TEREDO_PREFIX or a[:2] == b"\xfe\x80" for a in (src, dst))
    checks = [plen + 40 == end - pos, buf[pos + 6] in plausible.IPV6_NEXT, teredo_or_local]
    return (1 + sum(checks)) / (1 + len(checks))
