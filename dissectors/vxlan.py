"""VXLAN (RFC 7348) with the Group Based Policy extension (draft-smith-vxlan-group-policy).

Flags byte: ``G... I...`` plus, for GBP, ``D`` (don't learn) and ``A`` (policy applied)
in the second byte, and the 16-bit group policy ID in bytes 2-3.
"""

from __future__ import annotations

from ipsotrace.dissectors.base import Context, Decoded, Header, Next

from ipsotrace.records import Anomaly

HEADER = Header("vxlan", "BBHI", ("flags", "gbp_flags", "group_policy_id", "vni_reserved"))

FLAG_I = 0x08  # VNI valid
FLAG_G = 0x80  # group based policy present


def dissect(buf: bytes, off: int, end: int, ctx: Context) -> Decoded | Anomaly:
    v = HEADER.unpack(buf, off, end)
    if isinstance(v, Anomaly):
        return v
    flags, gbp_flags, gpid, vni_res = v
    vni = vni_res >> 8
    fields: dict[str, object] = {"tunnel_id": vni, "vni": vni, "flags": flags, "i_flag": bool(flags & FLAG_I)}
    anomalies: list[Anomaly] = []
    if flags & FLAG_G:
        fields["gbp"] = {
            "dont_learn": bool(gbp_flags & 0x40),
            "policy_applied": bool(gbp_flags & 0x08),
            "group_policy_id": gpid,
        }
    reserved = (
        (flags & ~(FLAG_I | FLAG_G) & 0xFF) or (vni_res & 0xFF) or (0 if flags & FLAG_G else (gbp_flags << 16 | gpid))
    )
    if not flags & FLAG_I:
        anomalies.append(Anomaly("vxlan.i-flag-unset", "vxlan", off, "I flag is 0: the VNI is not valid"))
    if reserved:
        fields["reserved_nonzero"] = True
        anomalies.append(Anomaly("vxlan.reserved-set", "vxlan", off, "reserved bits are not zero"))
    return Decoded(fields, HEADER.size, Next("proto", "eth"), anomalies=anomalies, encap=True)
