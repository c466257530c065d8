"""GTP-U, the GPRS Tunnelling Protocol user plane (3GPP TS 29.281).

Mandatory 8-byte header (flags, message type, length, TEID), then — when any of
E/S/PN is set — sequence number, N-PDU number and next extension header type,
then the extension header chain (each: length in 4-byte units, content, next
type).  Only a G-PDU (type 255) carries a user packet, IPv4 or IPv6 by its first
nibble; echo, error indication and end marker carry information elements, kept raw.
"""

from __future__ import annotations

import struct

from ipsotrace.dissectors import plausible
from ipsotrace.dissectors.base import Context, Decoded, Header, Next, malformed, truncated
from ipsotrace.records import Anomaly, FieldValue

HEADER = Header("gtpu", "BBHI", ("flags", "message_type", "gtp_length", "teid"))
OPTIONAL = Header("gtpu", "HBB", ("seq", "npdu", "next_ext"))

FLAG_E, FLAG_S, FLAG_PN = 0x04, 0x02, 0x01
G_PDU = 255

MESSAGE_TYPES = {
    1: "echo-request",
    2: "echo-response",
    26: "error-indication",
    31: "supported-extension-headers",
    253: "tunnel-status",
    254: "end-marker",
    255: "g-pdu",
}

EXT_TYPES = {
    0x03: "long-pdcp-pdu-number",
    0x20: "service-class-indicator",
    0x40: "udp-port",
    0x81: "ran-container",
    0x82: "long-pdcp-pdu-number",
    0x83: "xw-ran-container",
    0x84: "nr-ran-container",
    0x85: "pdu-session-container",
    0xC0: "pdcp-pdu-number",
}
PDU_SESSION_CONTAINER = 0x85


def _pdu_session(content: bytes) -> dict[str, FieldValue]:
    """TS 38.415: byte 0 PDU type (0 DL, 1 UL) + flags, byte 1 carries the 6-bit QoS flow ID."""
    if len(content) < 2:
        return {}
    pdu_type = content[0] >> 4
    out: dict[str, FieldValue] = {"pdu_type": "dl" if pdu_type == 0 else "ul" if pdu_type == 1 else pdu_type}
    out["qfi"] = content[1] & 0x3F
    if pdu_type == 0:
        out["ppp"] = bool(content[1] & 0x80)
        out["rqi"] = bool(content[1] & 0x40)
    return out


def _extensions(
    buf: bytes, pos: int, end: int, ext_type: int, anomalies: list[Anomaly]
) -> tuple[list[dict[str, FieldValue]], int]:
    exts: list[dict[str, FieldValue]] = []
    while ext_type != 0:
        if pos >= end:
            anomalies.append(truncated("gtpu", pos, 4, 0))
            break
        units = buf[pos]
        size = units * 4
        if units == 0:
            anomalies.append(malformed("gtpu", pos, f"extension header type 0x{ext_type:02x} has length 0"))
            break
        if pos + size > end:
            anomalies.append(truncated("gtpu", pos, size, end - pos))
            break
        content = buf[pos + 1 : pos + size - 1]
        ext: dict[str, FieldValue] = {"type": ext_type, "length": size, "content": content.hex()}
        if ext_type in EXT_TYPES:
            ext["name"] = EXT_TYPES[ext_type]
        if ext_type == PDU_SESSION_CONTAINER:
            ext.update(_pdu_session(content))
        exts.append(ext)
        ext_type = buf[pos + size - 1]
        pos += size
    return exts, pos


def dissect(buf: bytes, off: int, end: int, ctx: Context) -> Decoded | Anomaly:
    v = HEADER.unpack(buf, off, end)
    if isinstance(v, Anomaly):
        return v
    flags, mtype, length, teid = v
    version = flags >> 5
    if version != 1:
        return malformed("gtpu", off, f"version {version}, expected 1 (GTPv1-U)")
    if not flags & 0x10:
        return malformed("gtpu", off, "protocol type bit is 0 (GTP' is not GTP-U)")
    fields: dict[str, FieldValue] = {
        "tunnel_id": teid,
        "teid": teid,
        "version": version,
        "pt": 1,
        "e_flag": bool(flags & FLAG_E),
        "s_flag": bool(flags & FLAG_S),
        "pn_flag": bool(flags & FLAG_PN),
        "message_type": mtype,
        "message": MESSAGE_TYPES.get(mtype, "unknown"),
        "gtp_length": length,
    }
    anomalies: list[Anomaly] = []
    msg_end = off + 8 + length
    if msg_end > end and not (ctx.snaplen_cut or ctx.partial):
        anomalies.append(Anomaly("gtpu.length-exceeds-udp", "gtpu", off, f"length {length} > {end - off - 8} left"))
    limit = min(end, msg_end)
    pos = off + 8
    if flags & (FLAG_E | FLAG_S | FLAG_PN):
        if msg_end < pos + 4 <= end:
            return malformed("gtpu", off, f"length {length} too small for the optional fields the flags announce")
        o = OPTIONAL.unpack(buf, pos, limit)
        if isinstance(o, Anomaly):
            return o
        seq, npdu, next_ext = o
        if flags & FLAG_S:
            fields["seq"] = seq
        if flags & FLAG_PN:
            fields["npdu"] = npdu
        fields["next_ext"] = next_ext
        pos += 4
        if flags & FLAG_E:
            exts, pos = _extensions(buf, pos, limit, next_ext, anomalies)
            fields["extensions"] = exts
            qfi = next((e["qfi"] for e in exts if "qfi" in e), None)
            if qfi is not None:
                fields["qfi"] = qfi
    nxt: Next | None = None
    if mtype == G_PDU and pos < limit:
        version_nibble = buf[pos] >> 4
        if version_nibble == 4:
            nxt = Next("proto", "ipv4")
        elif version_nibble == 6:
            nxt = Next("proto", "ipv6")
        else:
            fields["payload"] = "unknown"
    elif pos < limit:
        fields["ies"] = buf[pos:limit].hex()
    return Decoded(fields, pos - off, nxt, end=msg_end, anomalies=anomalies, encap=mtype == G_PDU)


def heuristic(buf: bytes, off: int, end: int) -> float:
    """Confidence that a GTP-U G-PDU starts at ``off``: version 1, PT 1, type 255, exact length, inner IP."""
    if end - off < 8:
        return 0.0
    flags, mtype, length = struct.unpack_from("!BBH", buf, off)
    if flags >> 5 != 1 or not flags & 0x10 or mtype != G_PDU:
        return 0.0
    pos = off + 8
    if flags & (FLAG_E | FLAG_S | FLAG_PN):
        pos += 4
        if flags & FLAG_E and pos <= end:
            ext_type = buf[pos - 1]
            while ext_type != 0 and pos < end and buf[pos] != 0 and pos + buf[pos] * 4 <= end:
                pos += buf[pos] * 4
                ext_type = buf[pos - 1]
    checks = [
        flags & 0x08 == 0,  # spare bit
        length == end - off - 8,
        plausible.ip_ok(buf, pos, end, exact=True),
    ]
    return (1 + sum(checks)) / (1 + len(checks))
