"""Capture pseudo-headers: Linux cooked SLL (v1, v2) and BSD null/loopback.

Specs: tcpdump.org link-layer header types ``LINKTYPE_LINUX_SLL`` (113), ``LINKTYPE_LINUX_SLL2``
(276) and ``LINKTYPE_NULL``/``LINKTYPE_LOOP`` (0/108), as in draft-ietf-opsawg-pcaplinktype.
"""

from __future__ import annotations

import struct

from ipsotrace.dissectors.base import Context, Decoded, Header, Next, malformed, truncated
from ipsotrace.records import Anomaly, FieldValue

SLL = Header("sll", "HHH8sH", ("pkttype", "hatype", "halen", "_addr", "protocol"))
SLL2 = Header("sll2", "HHIHBB8s", ("protocol", "_reserved", "ifindex", "hatype", "pkttype", "halen", "_addr"))

# SLL protocol values below 0x0600 are not Ethertypes (linux/if_ether.h ETH_P_*).
_SLL_NON_ETHERTYPE = {
    0x0001: "novell-802.3",
    0x0007: "ppp-hdlc",
    0x000C: "can",
    0x000D: "canfd",
    0x00F6: "ieee802.15.4",
}
_SLL_ETHERNET = 0x0003  # a whole Ethernet frame follows the pseudo-header
_SLL_LLC = 0x0004  # an 802.2 LLC header follows
# On a netlink socket (nlmon) the protocol field is the netlink family, not an Ethertype.
_ARPHRD_NETLINK = 824
# BSD AF_ values for IPv4 and the several IPv6 values used by different BSDs.
_AF_INET = 2
_AF_INET6 = {10, 24, 28, 30}


def _addr(raw: bytes, halen: int) -> str:
    return raw[: min(halen, 8)].hex(":")


def dissect_sll(buf: bytes, off: int, end: int, ctx: Context) -> Decoded | Anomaly:
    v = SLL.unpack(buf, off, end)
    if isinstance(v, Anomaly):
        return v
    pkttype, hatype, halen, addr, proto = v
    fields: dict[str, FieldValue] = {
        "pkttype": pkttype,
        "hatype": hatype,
        "src_addr": _addr(addr, halen),
        "protocol": proto,
    }
    return _payload(fields, SLL.size, hatype, proto)


def dissect_sll2(buf: bytes, off: int, end: int, ctx: Context) -> Decoded | Anomaly:
    v = SLL2.unpack(buf, off, end)
    if isinstance(v, Anomaly):
        return v
    proto, _res, ifindex, hatype, pkttype, halen, addr = v
    fields: dict[str, FieldValue] = {
        "protocol": proto,
        "ifindex": ifindex,
        "hatype": hatype,
        "pkttype": pkttype,
        "src_addr": _addr(addr, halen),
    }
    return _payload(fields, SLL2.size, hatype, proto)


def _payload(fields: dict[str, FieldValue], size: int, hatype: int, proto: int) -> Decoded:
    if hatype == _ARPHRD_NETLINK:
        return Decoded({**fields, "payload": "netlink"}, size, None)
    if proto == _SLL_ETHERNET:
        return Decoded(fields, size, Next("proto", "eth"))
    if proto == _SLL_LLC:
        return Decoded(fields, size, Next("proto", "llc"))
    if proto in _SLL_NON_ETHERTYPE:
        return Decoded({**fields, "payload": _SLL_NON_ETHERTYPE[proto]}, size, None)
    return Decoded(fields, size, Next("ethertype", proto))


def dissect_null(buf: bytes, off: int, end: int, ctx: Context) -> Decoded | Anomaly:
    if end - off < 4:
        return truncated("null", off, 4, end - off)
    # DLT_NULL stores the family in the capturing host's byte order; guess it.
    (le,) = struct.unpack_from("<I", buf, off)
    (be,) = struct.unpack_from(">I", buf, off)
    family = le if le < 0x10000 else be
    if family == _AF_INET:
        return Decoded({"family": family}, 4, Next("proto", "ipv4"))
    if family in _AF_INET6:
        return Decoded({"family": family}, 4, Next("proto", "ipv6"))
    return malformed("null", off, f"unknown address family {family}")
