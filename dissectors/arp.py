"""ARP (RFC 826) for Ethernet/IPv4; other hardware/protocol pairs keep raw addresses."""

from __future__ import annotations

from ipsotrace.dissectors.base import Context, Decoded, Header, ipv4_str, truncated
from ipsotrace.records import Anomaly, FieldValue

HEADER = Header("arp", "HHBBH", ("htype", "ptype", "hlen", "plen", "op"))


def dissect(buf: bytes, off: int, end: int, ctx: Context) -> Decoded | Anomaly:
    v = HEADER.unpack(buf, off, end)
    if isinstance(v, Anomaly):
        return v
    htype, ptype, hlen, plen, op = v
    size = 8 + 2 * (hlen + plen)
    if end - off < size:
        return truncated("arp", off, size, end - off)
    p = off + 8
    sha, spa = buf[p : p + hlen], buf[p + hlen : p + hlen + plen]
    p += hlen + plen
    tha, tpa = buf[p : p + hlen], buf[p + hlen : p + hlen + plen]
    fields: dict[str, FieldValue] = {"htype": htype, "ptype": ptype, "op": op}
    ipv4 = ptype == 0x0800 and plen == 4
    fields["sender_mac"] = sha.hex(":")
    fields["sender_ip"] = ipv4_str(spa, 0) if ipv4 else spa.hex()
    fields["target_mac"] = tha.hex(":")
    fields["target_ip"] = ipv4_str(tpa, 0) if ipv4 else tpa.hex()
    return Decoded(fields, size, None)
