"""ICMP (RFC 792, RFC 1191): echo, and errors with the quoted packet dissected after them.

Errors (destination unreachable, time exceeded, parameter problem, source quench,
redirect) quote the offending IP header and the start of its payload; the
registry dissects that quote as further layers marked ``quoted``.  For
fragmentation needed (type 3 code 4) the next-hop MTU is ``mtu``.
"""

from __future__ import annotations

from ipsotrace.dissectors.base import Context, Decoded, Header, Next, ipv4_str

from ipsotrace.records import Anomaly, FieldValue

HEADER = Header("icmp", "BBHHH", ("type", "code", "checksum", "rest_hi", "rest_lo"))

ERRORS = {3: "dest-unreachable", 4: "source-quench", 5: "redirect", 11: "time-exceeded", 12: "parameter-problem"}
ECHO = {0: "echo-reply", 8: "echo-request"}
FRAG_NEEDED = (3, 4)


def dissect(buf: bytes, off: int, end: int, ctx: Context) -> Decoded | Anomaly:
    v = HEADER.unpack(buf, off, end)
    if isinstance(v, Anomaly):
        return v
    itype, code, csum, hi, lo = v
    fields: dict[str, FieldValue] = {"type": itype, "code": code, "checksum": csum}
    if itype in ECHO:
        fields.update(kind=ECHO[itype], id=hi, seq=lo)
        return Decoded(fields, 8, None)
    if itype not in ERRORS:
        return Decoded(fields, 8, None)
    fields["kind"] = ERRORS[itype]
    if (itype, code) == FRAG_NEEDED:
        fields["kind"] = "frag-needed"
        fields["mtu"] = lo
    elif itype == 5:
        fields["gateway"] = ipv4_str(buf, off + 4)
    elif itype == 12:
        fields["pointer"] = hi >> 8
    if ctx.partial:  # an error about an error is never sent; don't recurse into quotes
        return Decoded(fields, 8, None)
    return Decoded(fields, 8, Next("proto", "ipv4"), quote=True)
