"""IEEE 802.1Q / 802.1ad VLAN tag (one layer per tag, so QinQ is two layers)."""

from __future__ import annotations

from ipsotrace.dissectors.base import Context, Decoded, Header, Next
from ipsotrace.records import Anomaly

HEADER = Header("vlan", "HH", ("tci", "type"))


def dissect(buf: bytes, off: int, end: int, ctx: Context) -> Decoded | Anomaly:
    v = HEADER.unpack(buf, off, end)
    if isinstance(v, Anomaly):
        return v
    tci, etype = v
    fields = {"vid": tci & 0x0FFF, "pcp": tci >> 13, "dei": (tci >> 12) & 1, "type": etype}
    return Decoded(fields, HEADER.size, Next("ethertype", etype) if etype > 1500 else None)
