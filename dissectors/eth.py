"""Ethernet II / IEEE 802.3 (a type field ≤ 1500 is an 802.3 length: LLC follows)."""

from __future__ import annotations

from ipsotrace.dissectors.base import Context, Decoded, Header, Next, mac_str

from ipsotrace.records import Anomaly

HEADER = Header("eth", "6s6sH", ("dst", "src", "type"))


def dissect(buf: bytes, off: int, end: int, ctx: Context) -> Decoded | Anomaly:
    v = HEADER.unpack(buf, off, end)
    if isinstance(v, Anomaly):
        return v
    etype = v[2]
    fields = {"src": mac_str(buf, off + 6), "dst": mac_str(buf, off), "type": etype}
    if etype <= 1500:
        # 802.3 frame: the field is a length and an LLC header follows (not decoded).
        return Decoded({**fields, "llc": True}, HEADER.size, None, end=min(end, off + 14 + etype))
    return Decoded(fields, HEADER.size, Next("ethertype", etype))
