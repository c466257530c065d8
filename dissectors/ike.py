"""IKE header (IKEv2 RFC 7296, IKEv1/ISAKMP RFC 2408): SPIs, version, exchange type, flags.

The payload chain is walked while it is in the clear; it ends at the Encrypted
payload (IKEv2 SK / SKF) or at once when IKEv1's E flag says everything after the
header is encrypted.  ``encrypted`` tells which, for the encryption posture audit.
"""

from __future__ import annotations

import struct

from ipsotrace.dissectors.base import Context, Decoded, Header, malformed
from ipsotrace.records import Anomaly, FieldValue

HEADER = Header(
    "ike", "8s8sBBBBII", ("_ispi", "_rspi", "next_payload", "version", "exchange_type", "flags", "message_id", "len")
)

EXCHANGES = {
    2: "identity-protection",
    4: "aggressive",
    5: "informational-v1",
    32: "quick-mode",
    34: "ike-sa-init",
    35: "ike-auth",
    36: "create-child-sa",
    37: "informational",
    43: "ike-intermediate",
    44: "ike-followup-kex",
}
V2_PAYLOADS = {
    33: "sa",
    34: "ke",
    35: "idi",
    36: "idr",
    37: "cert",
    38: "certreq",
    39: "auth",
    40: "nonce",
    41: "notify",
    42: "delete",
    43: "vendor-id",
    44: "tsi",
    45: "tsr",
    46: "sk",
    47: "cp",
    48: "eap",
    53: "skf",
}
V2_ENCRYPTED = {46, 53}
V1_FLAG_ENCRYPTED = 0x01
V2_FLAG_INITIATOR, V2_FLAG_RESPONSE = 0x08, 0x20


def _payload_chain(buf: bytes, pos: int, end: int, first: int, v2: bool) -> tuple[list[int], bool]:
    types: list[int] = []
    nxt = first
    while nxt != 0 and end - pos >= 4 and len(types) < 64:
        types.append(nxt)
        if v2 and nxt in V2_ENCRYPTED:
            return types, True
        following, plen = buf[pos], struct.unpack_from("!H", buf, pos + 2)[0]
        if plen < 4:
            break
        nxt, pos = following, pos + plen
    return types, False


def dissect(buf: bytes, off: int, end: int, ctx: Context) -> Decoded | Anomaly:
    v = HEADER.unpack(buf, off, end)
    if isinstance(v, Anomaly):
        return v
    next_payload, version, xchg, flags, msg_id, length = v[2:]
    major, minor = version >> 4, version & 0x0F
    if major not in (1, 2):
        return malformed("ike", off, f"major version {major}, expected 1 or 2")
    v2 = major == 2
    fields: dict[str, FieldValue] = {
        "ispi": buf[off : off + 8].hex(),
        "rspi": buf[off + 8 : off + 16].hex(),
        "version": f"{major}.{minor}",
        "major_version": major,
        "exchange_type": xchg,
        "exchange": EXCHANGES.get(xchg, "unknown"),
        "flags": flags,
        "message_id": msg_id,
        "ike_length": length,
        "next_payload": next_payload,
    }
    if v2:
        fields["initiator"] = bool(flags & V2_FLAG_INITIATOR)
        fields["response"] = bool(flags & V2_FLAG_RESPONSE)
    anomalies: list[Anomaly] = []
    msg_end = off + length
    if length < HEADER.size:
        return malformed("ike", off, f"length {length} < {HEADER.size}")
    if length != end - off and not (ctx.snaplen_cut or ctx.partial):
        anomalies.append(Anomaly("ike.length-mismatch", "ike", off, f"length {length}, {end - off} bytes in UDP"))
    if not v2 and flags & V1_FLAG_ENCRYPTED:
        fields["encrypted"] = True
    else:
        chain, enc = _payload_chain(buf, off + HEADER.size, min(end, msg_end), next_payload, v2)
        fields["payloads"] = [V2_PAYLOADS.get(t, t) for t in chain] if v2 else chain
        fields["encrypted"] = enc
    return Decoded(fields, min(end, msg_end) - off, None, end=msg_end, anomalies=anomalies)
