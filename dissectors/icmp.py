"""ICMP (RFC 792, RFC 1191, RFC 4884): echo, and errors with the quoted packet dissected after them.

Errors (destination unreachable, time exceeded, parameter problem, source quench,
redirect) quote the offending IP header and the start of its payload; the
registry dissects that quote as further layers marked ``quoted``.  For
fragmentation needed (type 3 code 4) the next-hop MTU is ``mtu``.  When the
error says how long its quote is (RFC 4884) the quote is bounded by it, and an
MPLS label stack extension (RFC 4950, sent by MPLS routers answering
traceroute) becomes ``mpls_labels``.
"""

from __future__ import annotations

import struct

from ipsotrace.dissectors.base import Context, Decoded, Header, Next, inet_sum, ipv4_str
from ipsotrace.records import Anomaly, FieldValue

HEADER = Header("icmp", "BBHHH", ("type", "code", "checksum", "rest_hi", "rest_lo"))

ERRORS = {3: "dest-unreachable", 4: "source-quench", 5: "redirect", 11: "time-exceeded", 12: "parameter-problem"}
ECHO = {0: "echo-reply", 8: "echo-request"}
FRAG_NEEDED = (3, 4)
#: errors whose byte 5 is the RFC 4884 length of the quote, in 32-bit words
LENGTH_FIELD = {3, 11, 12}
#: an RFC 4884 extension after a quote of unstated length sits at this fixed offset (section 5)
COMPAT_QUOTE = 128
EXT_VERSION = 2
MPLS_CLASS, MPLS_CTYPE = 1, 1


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
    quote_end: int | None = None
    if itype in LENGTH_FIELD:
        quote_end = _extensions(buf, off, end, (hi & 0xFF) * 4, fields)
    if ctx.partial:  # an error about an error is never sent; don't recurse into quotes
        return Decoded(fields, 8, None)
    return Decoded(fields, 8, Next("proto", "ipv4"), end=quote_end, quote=True)


def _extensions(buf: bytes, off: int, end: int, quote_len: int, fields: dict[str, FieldValue]) -> int | None:
    """Read an RFC 4884 extension structure; return where the quote ends when one is found."""
    body = off + 8
    if quote_len:
        fields["quote_length"] = quote_len
        ext = body + quote_len
        if ext + 4 > end:
            return min(ext, end)
    else:
        # Pre-RFC 4884 MPLS routers append the extension after a fixed 128-byte quote; accept
        # it only when its checksum proves it is one, since a long quote could look alike.
        ext = body + COMPAT_QUOTE
        if ext + 8 > end or buf[ext] >> 4 != EXT_VERSION or inet_sum(buf, ext, end) != 0xFFFF:
            return None
    if buf[ext] >> 4 != EXT_VERSION:
        return ext
    labels: list[FieldValue] = []
    pos = ext + 4
    while pos + 4 <= end:
        olen, oclass, ctype = struct.unpack_from("!HBB", buf, pos)
        if olen < 4 or pos + olen > end:
            break
        if oclass == MPLS_CLASS and ctype == MPLS_CTYPE:
            for p in range(pos + 4, pos + olen - 3, 4):
                (lse,) = struct.unpack_from("!I", buf, p)
                labels.append({"label": lse >> 12, "tc": (lse >> 9) & 7, "s": (lse >> 8) & 1, "ttl": lse & 0xFF})
        pos += olen
    if labels:
        fields["mpls_labels"] = labels
    return ext
