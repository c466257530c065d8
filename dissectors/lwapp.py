"""LWAPP, Cisco's Lightweight Access Point Protocol (draft-ohara-capwap-lwapp), CAPWAP's predecessor.

6-byte header: version (2 bit), radio ID (3 bit), C (control), F (fragment), L (not
last fragment) bits, fragment ID, payload length, and a status field that on data
frames from the access point holds the RSSI and SNR of the received frame.  Data
messages (UDP 12222) carry an IEEE 802.11 frame; control messages (UDP 12223) a
control header (type, sequence, element length, session ID), kept raw.  Control
messages an access point sends to the controller start with the AP's 6-byte MAC
address (Wireshark's "AP identity"); the dissector sees no ports, so it recognises
that prefix by the header after it fitting the datagram exactly where the plain
reading does not.
"""

from __future__ import annotations

import struct

from ipsotrace.dissectors.base import Context, Decoded, Header, Next, mac_str, malformed
from ipsotrace.records import Anomaly, FieldValue

HEADER = Header("lwapp", "BBHBB", ("flags", "frag_id", "lwapp_length", "rssi", "snr"))

FLAG_C, FLAG_F, FLAG_L = 0x04, 0x02, 0x01
CONTROL = Header("lwapp", "BBHI", ("msg_type", "seq", "msg_length", "session_id"))
AP_ID = 6  # the access point's MAC address before the header of its control messages


def _ap_identity(buf: bytes, off: int, end: int) -> bool:
    if end - off < AP_ID + HEADER.size:
        return False
    (plain_len,) = struct.unpack_from("!H", buf, off + 2)
    flags, _, shifted_len = struct.unpack_from("!BBH", buf, off + AP_ID)
    size = end - off - HEADER.size
    return plain_len != size and bool(flags & FLAG_C) and shifted_len == size - AP_ID


def dissect(buf: bytes, off: int, end: int, ctx: Context) -> Decoded | Anomaly:
    ap_id = _ap_identity(buf, off, end)
    start = off + AP_ID if ap_id else off
    v = HEADER.unpack(buf, start, end)
    if isinstance(v, Anomaly):
        return v
    flags, frag_id, length, rssi, snr = v
    version = flags >> 6
    if version != 0:
        return malformed("lwapp", off, f"version {version}, expected 0")
    control = bool(flags & FLAG_C)
    fields: dict[str, FieldValue] = {
        "version": version,
        "radio_id": (flags >> 3) & 0x7,
        "control": control,
        "fragment": bool(flags & FLAG_F),
        "not_last": bool(flags & FLAG_L),
        "frag_id": frag_id,
        "lwapp_length": length,
    }
    if ap_id:
        fields["ap_identity"] = mac_str(buf, off)
    anomalies: list[Anomaly] = []
    hlen = start - off + HEADER.size
    payload_end = off + hlen + length
    if payload_end > end and not (ctx.snaplen_cut or ctx.partial):
        anomalies.append(Anomaly("lwapp.length-exceeds-udp", "lwapp", off, f"length {length} > {end - off - hlen}"))
    nxt: Next | None = None
    if control:
        c = CONTROL.unpack(buf, off + hlen, min(end, payload_end))
        if not isinstance(c, Anomaly):
            fields.update(CONTROL.fields(c))
    else:
        fields["rssi"] = struct.unpack("b", bytes([rssi]))[0]  # dBm, signed
        fields["snr"] = snr
        if not flags & FLAG_F:
            nxt = Next("proto", "wlan")
    return Decoded(fields, hlen, nxt, end=payload_end, anomalies=anomalies, encap=nxt is not None)
