"""WCCP redirection in GRE (GRE type 0x883E; draft-wilson-wrec-wccp-v2 §4.12 / draft-mclaggan-wccp-v2rev1).

WCCPv2 puts a 4-byte redirect header before the redirected IPv4 packet; WCCPv1 sends
the IPv4 packet right after GRE.  As Wireshark does, a first nibble of 4 means no
header (a zero-length layer that keeps the redirection visible).  Redirect header:
``reserved(5) U(1) A(1) D(1), service ID, alternative bucket, primary bucket`` where D is
a dynamic service, A says the alternative bucket was used, and U (v2rev1) that the
header is present but its contents are to be ignored.
"""

from __future__ import annotations

from ipsotrace.dissectors.base import Context, Decoded, Header, Next, truncated
from ipsotrace.records import Anomaly, FieldValue

HEADER = Header("wccp", "BBBB", ("flags", "service_id", "alt_bucket", "pri_bucket"))


def dissect(buf: bytes, off: int, end: int, ctx: Context) -> Decoded | Anomaly:
    if off >= end:
        return truncated("wccp", off, 1, 0)
    if buf[off] >> 4 == 4:
        return Decoded({"version": 1}, 0, Next("proto", "ipv4"), encap=True)
    v = HEADER.unpack(buf, off, end)
    if isinstance(v, Anomaly):
        return v
    flags, service_id, alt_bucket, pri_bucket = v
    fields: dict[str, FieldValue] = {
        "version": 2,
        "dynamic": bool(flags & 1),
        "alt_bucket_used": bool(flags & 2),
        "ignore_contents": bool(flags & 4),
        "service_id": service_id,
        "alt_bucket": alt_bucket,
        "pri_bucket": pri_bucket,
    }
    return Decoded(fields, HEADER.size, Next("proto", "ipv4"), encap=True)
