"""IEEE 802.1ah Provider Backbone Bridging (MAC-in-MAC) I-tag.

The I-tag follows Ethertype 0x88E7: ``I-PCP(3) I-DEI(1) UCA(1) reserved(3) I-SID(24)``,
then the customer's Ethernet frame (destination, source, type), dissected as an ``eth``
layer.  The I-SID (backbone service instance) is the ``tunnel_id``.
"""

from __future__ import annotations

from ipsotrace.dissectors.base import Context, Decoded, Header, Next
from ipsotrace.records import Anomaly, FieldValue

HEADER = Header("pbb", "I", ("tci",))


def dissect(buf: bytes, off: int, end: int, ctx: Context) -> Decoded | Anomaly:
    v = HEADER.unpack(buf, off, end)
    if isinstance(v, Anomaly):
        return v
    (tci,) = v
    isid = tci & 0xFFFFFF
    fields: dict[str, FieldValue] = {
        "isid": isid,
        "tunnel_id": isid,
        "pcp": tci >> 29,
        "dei": (tci >> 28) & 1,
        "uca": (tci >> 27) & 1,
    }
    anomalies: list[Anomaly] = []
    if (tci >> 24) & 7:
        anomalies.append(Anomaly("pbb.reserved-set", "pbb", off, "I-tag reserved bits are not 0"))
    return Decoded(fields, HEADER.size, Next("proto", "eth"), anomalies=anomalies, encap=True)
