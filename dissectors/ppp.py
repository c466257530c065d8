"""PPP framing as carried in GRE (RFC 2637 PPTP, RFC 1661/1662).

HDLC-like framing may keep the address/control bytes ``ff 03`` (RFC 1662) or drop them
(address-and-control-field compression); the protocol field is two bytes, or one when
protocol-field compression is on (RFC 1661 §6.5: protocol numbers are odd in their low
byte and even in their high byte, so an odd first byte means a one-byte field).
"""

from __future__ import annotations

from ipsotrace.dissectors.base import Context, Decoded, Next, truncated
from ipsotrace.records import Anomaly, FieldValue

ADDRESS_CONTROL = b"\xff\x03"


def dissect(buf: bytes, off: int, end: int, ctx: Context) -> Decoded | Anomaly:
    pos = off
    has_ac = buf[off : off + 2] == ADDRESS_CONTROL
    if has_ac:
        pos += 2
    if pos >= end:
        return truncated("ppp", off, pos - off + 1, end - off)
    if buf[pos] & 1:
        proto = buf[pos]
        pos += 1
    elif end - pos < 2:
        return truncated("ppp", off, pos - off + 2, end - off)
    else:
        proto = buf[pos] << 8 | buf[pos + 1]
        pos += 2
    fields: dict[str, FieldValue] = {"protocol": proto, "address_control": has_ac}
    anomalies: list[Anomaly] = []
    if not proto & 1:
        anomalies.append(Anomaly("ppp.bad-protocol", "ppp", off, f"protocol 0x{proto:04x} is even"))
    return Decoded(fields, pos - off, Next("ppp", proto), anomalies=anomalies)
