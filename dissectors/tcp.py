"""TCP (RFC 9293): flags, the options engineers read (MSS, window scale, SACK, timestamps)."""

from __future__ import annotations

import struct

from ipsotrace.dissectors.base import Context, Decoded, Header, malformed, truncated
from ipsotrace.records import Anomaly, FieldValue

HEADER = Header(
    "tcp", "HHIIBBHHH", ("sport", "dport", "seq", "ack", "offset_res", "flags", "window", "checksum", "urgent")
)

# Bit 8 is the former NS bit, now AE (accurate ECN, RFC 9768), taken from the data-offset byte.
FLAG_NAMES = ("FIN", "SYN", "RST", "PSH", "ACK", "URG", "ECE", "CWR", "AE")


def flag_string(flags: int) -> str:
    return ",".join(n for i, n in enumerate(FLAG_NAMES) if flags >> i & 1)


def dissect(buf: bytes, off: int, end: int, ctx: Context) -> Decoded | Anomaly:
    v = HEADER.unpack(buf, off, end)
    if isinstance(v, Anomaly):
        return v
    sport, dport, seq, ack, offres, flags8, window, csum, urgent = v
    hlen = (offres >> 4) * 4
    flags = flags8 | (offres & 1) << 8
    fields: dict[str, FieldValue] = {
        "sport": sport,
        "dport": dport,
        "seq": seq,
        "ack": ack,
        "flags": flags,
        "flag_names": flag_string(flags),
        "window": window,
        "checksum": csum,
        "urgent": urgent,
        "header_length": hlen,
    }
    # Below, a bad or cut header still yields the layer: its ports identify the flow.
    if hlen < 20:
        return Decoded(fields, 20, None, anomalies=[malformed("tcp", off, f"data offset {hlen} < 20")])
    if end - off < hlen:
        return Decoded(fields, end - off, None, anomalies=[truncated("tcp", off, hlen, end - off)])
    anomalies: list[Anomaly] = []
    if hlen > 20:
        opts, bad = _options(buf, off + 20, off + hlen)
        fields.update(opts)
        if bad:
            anomalies.append(Anomaly("tcp.bad-option", "tcp", off + 20, bad))
    fields["payload_length"] = max(0, end - off - hlen)
    return Decoded(fields, hlen, None, anomalies=anomalies)


def _options(buf: bytes, pos: int, end: int) -> tuple[dict[str, FieldValue], str]:
    out: dict[str, FieldValue] = {}
    while pos < end:
        kind = buf[pos]
        if kind == 0:
            break
        if kind == 1:
            pos += 1
            continue
        if pos + 2 > end:
            return out, f"option {kind} has no length"
        olen = buf[pos + 1]
        if olen < 2 or pos + olen > end:
            return out, f"option {kind} length {olen} runs past the header"
        if kind == 2 and olen == 4:
            out["mss"] = struct.unpack_from("!H", buf, pos + 2)[0]
        elif kind == 3 and olen == 3:
            out["wscale"] = buf[pos + 2]
        elif kind == 4:
            out["sack_permitted"] = True
        elif kind == 5:
            out["sack"] = [list(struct.unpack_from("!II", buf, p)) for p in range(pos + 2, pos + olen - 7, 8)]
        elif kind == 8 and olen == 10:
            out["tsval"], out["tsecr"] = struct.unpack_from("!II", buf, pos + 2)
        pos += olen
    return out, ""
