"""VXLAN Generic Protocol Extension (draft-ietf-nvo3-vxlan-gpe): VXLAN with a Next Protocol field.

Flags byte ``R R Ver Ver I P B O``: I = VNI valid, P = next protocol present,
B = BUM traffic, O = OAM.  Next protocol values are NSH's (IPv4, IPv6, Ethernet,
NSH, MPLS: the registry's ``nsh`` table).  Without the P bit the payload is Ethernet, as in plain VXLAN.
"""

from __future__ import annotations

from ipsotrace.dissectors.base import Context, Decoded, Header, Next
from ipsotrace.records import Anomaly, FieldValue

HEADER = Header("vxlan-gpe", "BHBI", ("flags", "reserved", "next_protocol", "vni_reserved"))

FLAG_I = 0x08
FLAG_P = 0x04
FLAG_B = 0x02
FLAG_O = 0x01


def dissect(buf: bytes, off: int, end: int, ctx: Context) -> Decoded | Anomaly:
    v = HEADER.unpack(buf, off, end)
    if isinstance(v, Anomaly):
        return v
    flags, reserved, next_proto, vni_res = v
    vni = vni_res >> 8
    fields: dict[str, FieldValue] = {
        "tunnel_id": vni,
        "vni": vni,
        "flags": flags,
        "version": (flags >> 4) & 3,
        "i_flag": bool(flags & FLAG_I),
        "p_flag": bool(flags & FLAG_P),
        "bum": bool(flags & FLAG_B),
        "oam": bool(flags & FLAG_O),
        "next_protocol": next_proto,
    }
    anomalies: list[Anomaly] = []
    if not flags & FLAG_I:
        anomalies.append(Anomaly("vxlan-gpe.i-flag-unset", "vxlan-gpe", off, "I flag is 0: the VNI is not valid"))
    if flags & 0xC0 or reserved or vni_res & 0xFF:
        fields["reserved_nonzero"] = True
        anomalies.append(Anomaly("vxlan-gpe.reserved-set", "vxlan-gpe", off, "reserved bits are not zero"))
    nxt = Next("nsh", next_proto) if flags & FLAG_P else Next("proto", "eth")
    return Decoded(fields, HEADER.size, nxt, anomalies=anomalies, encap=True)
