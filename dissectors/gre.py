"""GRE (RFC 2784, RFC 2890 key and sequence, RFC 1701 routing), NVGRE (RFC 7637), enhanced GRE (RFC 2637).

The base header is ``flags+version, protocol type``; optional 32-bit words follow in a
fixed order: checksum+offset (C or R bit), key (K), sequence number (S), then in
enhanced GRE (version 1, PPTP) the acknowledgment number (A), and in RFC 1701 the
routing SRE list (R).  The protocol type is mostly an Ethertype: the registry looks it up
in its GRE table (types that exist only in GRE: ERSPAN, WCCP, Aruba) and then in the
Ethertype table.

``key`` is the 32-bit key as on the wire, present only when K is set; ``tunnel_id`` is
the key too (absent without K: such a tunnel is identified by its outer addresses
alone).  NVGRE, which is GRE with K set carrying Transparent Ethernet Bridging, adds
``vsid`` (upper 24 bits) and ``flow_id`` (low 8 bits, entropy).  ``tunnel_id`` stays the
whole key, because Linux gretap uses the same encoding with an opaque 32-bit key and
splitting it would merge distinct gretap tunnels.

Enhanced GRE's key is ``payload length, call ID``: those two fields are given instead
of ``key`` (as tshark does), and ``tunnel_id`` is the call ID.
"""

from __future__ import annotations

import struct

from ipsotrace.dissectors.base import Context, Decoded, Header, Next, inet_sum, truncated
from ipsotrace.records import Anomaly, FieldValue

HEADER = Header("gre", "HH", ("flags_version", "protocol"))

F_CHECKSUM = 0x8000
F_ROUTING = 0x4000
F_KEY = 0x2000
F_SEQ = 0x1000
F_STRICT_ROUTE = 0x0800
RECURSION = 0x0700
F_ACK = 0x0080  # enhanced GRE only
RESERVED_FLAGS = 0x0078
VERSION = 0x0007

TEB = 0x6558  # Transparent Ethernet Bridging (gretap, NVGRE)
PPP = 0x880B
ERSPAN_I_II = 0x88BE
ERSPAN_III = 0x22EB
WCCP = 0x883E
# These protocol types start with a header of the tunnel itself: that header, not GRE,
# marks where the encapsulated packet begins.
TUNNEL_SUBHEADER = frozenset({ERSPAN_I_II, ERSPAN_III, WCCP})

_U32 = struct.Struct("!I")
_SRE = struct.Struct("!HBB")


def dissect(buf: bytes, off: int, end: int, ctx: Context) -> Decoded | Anomaly:
    v = HEADER.unpack(buf, off, end)
    if isinstance(v, Anomaly):
        return v
    flags, ptype = v
    version = flags & VERSION
    fields: dict[str, FieldValue] = {"version": version, "protocol": ptype, "flags": flags}
    anomalies: list[Anomaly] = []
    pos = off + HEADER.size
    need = _optional_size(flags, version)
    if end - off < HEADER.size + need:
        return truncated("gre", off, HEADER.size + need, end - off)
    if flags & (F_CHECKSUM | F_ROUTING):
        checksum, routing_offset = struct.unpack_from("!HH", buf, pos)
        pos += 4
        if flags & F_CHECKSUM:
            fields["checksum"] = checksum
            if not (ctx.snaplen_cut or ctx.partial):
                ok = inet_sum(buf, off, end) == 0xFFFF
                fields["checksum_ok"] = ok
                if not ok:
                    anomalies.append(Anomaly("gre.bad-checksum", "gre", off, f"checksum 0x{checksum:04x} is wrong"))
        if flags & F_ROUTING:
            fields["routing_offset"] = routing_offset
        elif routing_offset:
            anomalies.append(Anomaly("gre.reserved-set", "gre", off, "reserved1 after the checksum is not zero"))
    if flags & F_KEY:
        (key,) = _U32.unpack_from(buf, pos)
        pos += 4
        if version == 1:
            fields.update(payload_length=key >> 16, call_id=key & 0xFFFF, tunnel_id=key & 0xFFFF)
        else:
            fields.update(key=key, tunnel_id=key)
            if ptype == TEB:
                fields.update(vsid=key >> 8, flow_id=key & 0xFF)
    if flags & F_SEQ:
        fields["seq"] = _U32.unpack_from(buf, pos)[0]
        pos += 4
    if version == 1 and flags & F_ACK:
        fields["ack"] = _U32.unpack_from(buf, pos)[0]
        pos += 4
    if flags & F_ROUTING and version == 0:
        sres = _routing(buf, pos, end)
        if isinstance(sres, Anomaly):
            return sres
        fields["routing"], pos = sres
    if flags & RECURSION:
        fields["recursion"] = (flags & RECURSION) >> 8
    anomalies.extend(_check_flags(flags, version, ptype, off))
    if version > 1:
        return Decoded(fields, pos - off, None, anomalies=anomalies)
    return Decoded(fields, pos - off, _next(ptype, flags), anomalies=anomalies, encap=ptype not in TUNNEL_SUBHEADER)


def _optional_size(flags: int, version: int) -> int:
    n = 4 * sum(bool(flags & f) for f in (F_CHECKSUM | F_ROUTING, F_KEY, F_SEQ))
    if version == 1 and flags & F_ACK:
        n += 4
    return n


def _next(ptype: int, flags: int) -> Next:
    if ptype == ERSPAN_I_II and not flags & F_SEQ:
        # ERSPAN type I has no header of its own and never sets S; type II always does.
        return Next("proto", "erspan-type-i")
    return Next("gre", ptype)


def _check_flags(flags: int, version: int, ptype: int, off: int) -> list[Anomaly]:
    out: list[Anomaly] = []
    if version > 1:
        out.append(Anomaly("gre.unknown-version", "gre", off, f"version {version}: payload not decoded"))
    elif version == 1:
        if flags & (F_CHECKSUM | F_ROUTING | F_STRICT_ROUTE | RECURSION | RESERVED_FLAGS) or not flags & F_KEY:
            out.append(Anomaly("gre.malformed-pptp", "gre", off, "enhanced GRE needs K set and C, R, s, recur 0"))
        if ptype != PPP:
            out.append(Anomaly("gre.malformed-pptp", "gre", off, f"enhanced GRE carries PPP, not 0x{ptype:04x}"))
    elif flags & (RESERVED_FLAGS | F_ACK):
        out.append(Anomaly("gre.reserved-set", "gre", off, "reserved flag bits are not zero"))
    return out


def _routing(buf: bytes, pos: int, end: int) -> tuple[list[FieldValue], int] | Anomaly:
    """RFC 1701 source route entries, up to the terminating NULL SRE (family 0, length 0)."""
    sres: list[FieldValue] = []
    while True:
        if end - pos < _SRE.size:
            return truncated("gre", pos, _SRE.size, max(0, end - pos))
        family, sre_offset, sre_len = _SRE.unpack_from(buf, pos)
        if family == 0 and sre_len == 0:
            return sres, pos + _SRE.size
        if end - pos < _SRE.size + sre_len:
            return truncated("gre", pos, _SRE.size + sre_len, end - pos)
        info = buf[pos + _SRE.size : pos + _SRE.size + sre_len]
        sres.append({"family": family, "sre_offset": sre_offset, "info": info.hex()})
        pos += _SRE.size + sre_len
