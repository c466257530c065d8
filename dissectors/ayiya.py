"""AYIYA, Anything In Anything (draft-massar-v6ops-ayiya), as used by SixXS tunnel brokers.

8-byte header (identity length/type, signature length/hash method, authentication
method/opcode, next header, epoch time), then the identity (2^IDLen bytes) and the
signature (SigLen × 4 bytes).  Only "forward" messages carry a packet, whose IP
protocol is the next-header byte.  The identity is the tunnel's key but it is an
IPv6 address or a string, not a number, so it is kept as ``identity`` and there is
no integer ``tunnel_id``.
"""

from __future__ import annotations

import socket

from ipsotrace.dissectors.base import Context, Decoded, Header, Next, truncated
from ipsotrace.records import Anomaly, FieldValue

HEADER = Header("ayiya", "BBBBI", ("id", "sig", "auth_op", "next_header", "epoch"))

OPCODES = {
    0: "noop",
    1: "forward",
    2: "echo-request",
    3: "echo-request-forward",
    4: "echo-response",
    5: "motd",
    6: "query-request",
    7: "query-response",
}
FORWARDING = {1, 3}
HASH_METHODS = {0: "none", 1: "md5", 2: "sha1"}
AUTH_METHODS = {0: "none", 1: "shared-secret", 2: "public-key"}
ID_TYPES = {0: "none", 1: "integer", 2: "string"}


def _identity(raw: bytes, id_type: int) -> str:
    if id_type == 2:
        return raw.decode("ascii", "replace")
    if len(raw) == 16:
        return socket.inet_ntop(socket.AF_INET6, raw)
    return raw.hex()


def dissect(buf: bytes, off: int, end: int, ctx: Context) -> Decoded | Anomaly:
    v = HEADER.unpack(buf, off, end)
    if isinstance(v, Anomaly):
        return v
    id_b, sig_b, auth_op, next_header, epoch = v
    id_len, id_type = 1 << (id_b >> 4), id_b & 0x0F
    sig_len, hash_method = (sig_b >> 4) * 4, sig_b & 0x0F
    auth_method, opcode = auth_op >> 4, auth_op & 0x0F
    hlen = 8 + id_len + sig_len
    if end - off < hlen:
        return truncated("ayiya", off, hlen, end - off)
    fields: dict[str, FieldValue] = {
        "identity_type": ID_TYPES.get(id_type, id_type),
        "identity": _identity(buf[off + 8 : off + 8 + id_len], id_type),
        "hash_method": HASH_METHODS.get(hash_method, hash_method),
        "signature": buf[off + 8 + id_len : off + hlen].hex(),
        "auth_method": AUTH_METHODS.get(auth_method, auth_method),
        "opcode": opcode,
        "operation": OPCODES.get(opcode, "unknown"),
        "next_header": next_header,
        "epoch": epoch,
    }
    forwards = opcode in FORWARDING and hlen < end - off
    nxt = Next("ipproto", next_header) if forwards else None
    return Decoded(fields, hlen, nxt, encap=forwards)
