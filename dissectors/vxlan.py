"""VXLAN (RFC 7348) with the Group Based Policy extension (draft-smith-vxlan-group-policy).

Flags byte: ``G... I...`` plus, for GBP, ``D`` (don't learn) and ``A`` (policy applied)
in the second byte, and the 16-bit group policy ID in bytes 2-3.
"""

from __future__ import annotations

from ipsotrace.dissectors import plausible
from ipsotrace.dissectors.base import Context, Decoded, Header, Next
from ipsotrace.records import Anomaly, FieldValue

HEADER = Header("vxlan", "BBHI", ("flags", "gbp_flags", "group_policy_id", "vni_reserved"))

FLAG_I = 0x08  # VNI valid
FLAG_G = 0x80  # group based policy present
GBP_D = 0x40  # don't learn
GBP_A = 0x08  # policy applied


def dissect(buf: bytes, off: int, end: int, ctx: Context) -> Decoded | Anomaly:
    v = HEADER.unpack(buf, off, end)
    if isinstance(v, Anomaly):
        return v
    flags, gbp_flags, gpid, vni_res = v
    vni = vni_res >> 8
    fields: dict[str, FieldValue] = {"tunnel_id": vni, "vni": vni, "flags": flags, "i_flag": bool(flags & FLAG_I)}
    anomalies: list[Anomaly] = []
    if flags & FLAG_G:
        fields["gbp"] = {
            "dont_learn": bool(gbp_flags & GBP_D),
            "policy_applied": bool(gbp_flags & GBP_A),
            "group_policy_id": gpid,
        }
        reserved_mid = gbp_flags & ~(GBP_D | GBP_A) & 0xFF
    else:
        reserved_mid = gbp_flags << 16 | gpid
    reserved = (flags & ~(FLAG_I | FLAG_G) & 0xFF) or reserved_mid or (vni_res & 0xFF)
    if not flags & FLAG_I:
        anomalies.append(Anomaly("vxlan.i-flag-unset", "vxlan", off, "I flag is 0: the VNI is not valid"))
    if reserved:
        fields["reserved_nonzero"] = True
        anomalies.append(Anomaly("vxlan.reserved-set", "vxlan", off, "reserved bits are not zero"))
    return Decoded(fields, HEADER.size, Next("proto", "eth"), anomalies=anomalies, encap=True)


def heuristic(buf: bytes, off: int, end: int) -> float:
    """Confidence that a VXLAN header starts at ``off``: flags 0x08 (0x88 with GBP) are required,
    then reserved bits zero, a known inner Ethertype and a valid inner IP header each add evidence."""
    if end - off < HEADER.size + 14:
        return 0.0
    flags = buf[off]
    if flags not in (FLAG_I, FLAG_I | FLAG_G):
        return 0.0
    gbp = flags & FLAG_G
    reserved_mid = (buf[off + 1] & ~(GBP_D | GBP_A) & 0xFF) if gbp else (buf[off + 1] | buf[off + 2] | buf[off + 3])
    known_type, ip_valid = plausible.eth_ok(buf, off + HEADER.size, end)
    checks = [reserved_mid == 0 and buf[off + 7] == 0, known_type, ip_valid]
    return (1 + sum(checks)) / (1 + len(checks))
