"""ICMPv6 (RFC 4443, RFC 4861, RFC 4884): errors with the quoted packet, packet too big MTU, echo, NDP."""

from __future__ import annotations

from ipsotrace.dissectors.base import Context, Decoded, Header, Next, ipv6_str
from ipsotrace.records import Anomaly, FieldValue

HEADER = Header("icmpv6", "BBHI", ("type", "code", "checksum", "rest"))

ERRORS = {1: "dest-unreachable", 2: "packet-too-big", 3: "time-exceeded", 4: "parameter-problem"}
INFO = {
    128: "echo-request",
    129: "echo-reply",
    130: "mld-query",
    131: "mld-report",
    132: "mld-done",
    133: "router-solicitation",
    134: "router-advertisement",
    135: "neighbor-solicitation",
    136: "neighbor-advertisement",
    137: "redirect",
    143: "mldv2-report",
}
ND_TARGET = {135, 136, 137}
#: errors whose first rest byte is the RFC 4884 length of the quote, in 64-bit words
LENGTH_FIELD = {1, 3}


def dissect(buf: bytes, off: int, end: int, ctx: Context) -> Decoded | Anomaly:
    v = HEADER.unpack(buf, off, end)
    if isinstance(v, Anomaly):
        return v
    itype, code, csum, rest = v
    fields: dict[str, FieldValue] = {"type": itype, "code": code, "checksum": csum}
    if itype in (128, 129):
        fields.update(kind=INFO[itype], id=rest >> 16, seq=rest & 0xFFFF)
        return Decoded(fields, 8, None)
    if itype in INFO:
        fields["kind"] = INFO[itype]
        if itype in ND_TARGET and end - off >= 24:
            fields["target"] = ipv6_str(buf, off + 8)
        if itype == 136:
            fields.update(router=bool(rest >> 31), solicited=bool(rest >> 30 & 1), override=bool(rest >> 29 & 1))
        if itype == 137 and end - off >= 40:
            fields["destination"] = ipv6_str(buf, off + 24)
        return Decoded(fields, 8, None)
    if itype not in ERRORS:
        return Decoded(fields, 8, None)
    fields["kind"] = ERRORS[itype]
    if itype == 2:
        fields["mtu"] = rest
    elif itype == 4:
        fields["pointer"] = rest
    quote_end: int | None = None
    if itype in LENGTH_FIELD and rest >> 24:
        fields["quote_length"] = (rest >> 24) * 8
        quote_end = min(end, off + 8 + (rest >> 24) * 8)
    if ctx.partial:
        return Decoded(fields, 8, None)
    return Decoded(fields, 8, Next("proto", "ipv6"), end=quote_end, quote=True)
