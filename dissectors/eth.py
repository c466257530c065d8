"""Ethernet II (RFC 894) / IEEE 802.3 clause 3 (a type field ≤ 1500 is an 802.3 length: LLC follows)."""

from __future__ import annotations

from ipsotrace.dissectors.base import Context, Decoded, Header, Next, mac_str
from ipsotrace.records import Anomaly, FieldValue

HEADER = Header("eth", "6s6sH", ("dst", "src", "type"))
MAX_8023_LENGTH = 1500
NOVELL_RAW = b"\xff\xff"  # "raw 802.3": IPX straight after the length, no LLC


def dissect(buf: bytes, off: int, end: int, ctx: Context) -> Decoded | Anomaly:
    v = HEADER.unpack(buf, off, end)
    if isinstance(v, Anomaly):
        return v
    etype = v[2]
    fields: dict[str, FieldValue] = {"src": mac_str(buf, off + 6), "dst": mac_str(buf, off), "type": etype}
    if etype <= MAX_8023_LENGTH:
        # 802.3 frame: the field is the payload length, which also drops the padding.
        payload_end = min(end, off + HEADER.size + etype)
        if buf[off + HEADER.size : off + HEADER.size + 2] == NOVELL_RAW:
            return Decoded({**fields, "llc": False}, HEADER.size, None, end=payload_end)
        return Decoded({**fields, "llc": True}, HEADER.size, Next("proto", "llc"), end=payload_end)
    return Decoded(fields, HEADER.size, Next("ethertype", etype))
