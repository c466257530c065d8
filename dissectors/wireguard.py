"""WireGuard messages (whitepaper §5.4): handshake initiation/response, cookie reply, transport data.

Every message starts with a type byte and three zero bytes, and each type has an
exact size (148, 92, 64) or, for transport data, 16 header bytes plus ciphertext
padded to 16 with a 16-byte tag (32 + 16n in all).  Indices and the counter are
little-endian.  Nothing inside is readable: ``encrypted`` is always true.
"""

from __future__ import annotations

import struct

from ipsotrace.dissectors.base import Context, Decoded, malformed, truncated
from ipsotrace.records import Anomaly, FieldValue

INITIATION, RESPONSE, COOKIE_REPLY, TRANSPORT = 1, 2, 3, 4
SIZES = {INITIATION: 148, RESPONSE: 92, COOKIE_REPLY: 64}
NAMES = {
    INITIATION: "handshake-initiation",
    RESPONSE: "handshake-response",
    COOKIE_REPLY: "cookie-reply",
    TRANSPORT: "transport-data",
}
TRANSPORT_MIN = 32


def _size_ok(mtype: int, size: int) -> bool:
    if mtype == TRANSPORT:
        return size >= TRANSPORT_MIN and size % 16 == 0
    return SIZES.get(mtype) == size


def dissect(buf: bytes, off: int, end: int, ctx: Context) -> Decoded | Anomaly:
    size = end - off
    if size < 4:
        return truncated("wireguard", off, 4, size)
    mtype = buf[off]
    if mtype not in NAMES or buf[off + 1 : off + 4] != b"\x00\x00\x00":
        return malformed("wireguard", off, f"type {mtype} with reserved bytes {buf[off + 1 : off + 4].hex()}")
    need = SIZES.get(mtype, TRANSPORT_MIN)
    if size < need:
        return truncated("wireguard", off, need, size)
    fields: dict[str, FieldValue] = {"message_type": mtype, "message": NAMES[mtype], "encrypted": True}
    if mtype == INITIATION:
        (fields["sender_index"],) = struct.unpack_from("<I", buf, off + 4)
        fields["mac2_set"] = any(buf[off + 132 : off + 148])
    elif mtype == RESPONSE:
        fields["sender_index"], fields["receiver_index"] = struct.unpack_from("<II", buf, off + 4)
        fields["mac2_set"] = any(buf[off + 76 : off + 92])
    elif mtype == COOKIE_REPLY:
        (fields["receiver_index"],) = struct.unpack_from("<I", buf, off + 4)
    else:
        fields["receiver_index"], fields["counter"] = struct.unpack_from("<IQ", buf, off + 4)
        fields["ciphertext_length"] = size - 16
        fields["keepalive"] = size == TRANSPORT_MIN
    anomalies: list[Anomaly] = []
    if not _size_ok(mtype, size) and not (ctx.snaplen_cut or ctx.partial):
        anomalies.append(Anomaly("wireguard.bad-size", "wireguard", off, f"{NAMES[mtype]} of {size} bytes"))
    return Decoded(fields, size, None, anomalies=anomalies)


def heuristic(buf: bytes, off: int, end: int) -> float:
    """Type 1-4, three zero bytes and the exact size of that type: nothing else looks like this."""
    size = end - off
    if size < TRANSPORT_MIN or buf[off] not in NAMES or buf[off + 1 : off + 4] != b"\x00\x00\x00":
        return 0.0
    if not _size_ok(buf[off], size):
        return 0.0
    # A transport message's size is only "a multiple of 16", weaker evidence than an exact size,
    # and "04 00 00 00" is also a little-endian 32-bit 4: keep it just at the threshold.
    return 0.6 if buf[off] == TRANSPORT else 0.8
