"""IEEE 802.2 LLC with SNAP (RFC 1042): the header that carries an Ethertype over 802.11 and 802.3.

``DSAP, SSAP, control`` (control is one byte for unnumbered frames, two otherwise); with
DSAP = SSAP = 0xAA a SNAP header follows: a 3-byte OUI and a 2-byte protocol that is an
Ethertype when the OUI is 00-00-00 (RFC 1042) or 00-00-F8 (802.1H bridge tunnel).
"""

from __future__ import annotations

from ipsotrace.dissectors.base import Context, Decoded, Header, Next, truncated
from ipsotrace.records import Anomaly, FieldValue

HEADER = Header("llc", "BBB", ("dsap", "ssap", "control"))
SNAP_SAP = 0xAA
ETHERTYPE_OUIS = {0x000000, 0x0000F8}


def dissect(buf: bytes, off: int, end: int, ctx: Context) -> Decoded | Anomaly:
    v = HEADER.unpack(buf, off, end)
    if isinstance(v, Anomaly):
        return v
    dsap, ssap, control = v
    length = 3 if control & 3 == 3 else 4
    fields: dict[str, FieldValue] = {"dsap": dsap, "ssap": ssap, "control": control}
    if dsap != SNAP_SAP or ssap & 0xFE != SNAP_SAP:
        if end - off < length:
            return truncated("llc", off, length, end - off)
        return Decoded(fields, length, None)
    if end - off < 8:
        return truncated("llc", off, 8, end - off)
    oui = int.from_bytes(buf[off + 3 : off + 6], "big")
    ptype = buf[off + 6] << 8 | buf[off + 7]
    fields.update(oui=oui, type=ptype)
    return Decoded(fields, 8, Next("ethertype", ptype) if oui in ETHERTYPE_OUIS else None)
