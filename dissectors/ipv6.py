"""IPv6 (RFC 8200) with its extension headers folded into the one layer.

Hop-by-hop, routing (incl. SRv6 segment lists), fragment, destination options
and AH are walked; the layer's ``next`` is the upper-layer protocol after them.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

from ipsotrace.dissectors.base import Context, Decoded, Header, Next, ipv6_str, malformed, truncated
from ipsotrace.records import Anomaly, FieldValue

HEADER = Header("ipv6", "IHBB16s16s", ("vtf", "payload_length", "next_header", "hlim", "_src", "_dst"))

EXT_NAMES = {0: "hopopts", 43: "routing", 44: "fragment", 60: "dstopts", 51: "ah", 135: "mobility"}
IP_IN_IP = {4, 41, 143}  # 4in6, 6in6, Ethernet (RFC 8986 SRv6 End.DX2)
NO_NEXT = 59


def dissect(buf: bytes, off: int, end: int, ctx: Context) -> Decoded | Anomaly:
    v = HEADER.unpack(buf, off, end)
    if isinstance(v, Anomaly):
        return v
    vtf, plen, nh, hlim = v[:4]
    if vtf >> 28 != 6:
        return malformed("ipv6", off, f"version {vtf >> 28}, expected 6")
    tclass = (vtf >> 20) & 0xFF
    fields: dict[str, FieldValue] = {
        "src": ipv6_str(buf, off + 8),
        "dst": ipv6_str(buf, off + 24),
        "hlim": hlim,
        "ttl": hlim,
        "dscp": tclass >> 2,
        "ecn": tclass & 3,
        "flow_label": vtf & 0xFFFFF,
        "payload_length": plen,
    }
    anomalies: list[Anomaly] = []
    payload_end: int | None = off + 40 + plen
    if plen == 0 and nh != NO_NEXT:
        payload_end = None  # jumbogram (RFC 2675) or GSO/BIG TCP super-frame: bounded by the frame
        fields["jumbo"] = True
    elif payload_end is not None and payload_end > end and not (ctx.snaplen_cut or ctx.partial):
        anomalies.append(
            Anomaly("ipv6.length-exceeds-frame", "ipv6", off, f"payload length {plen} > {end - off - 40} captured")
        )
    limit = end if payload_end is None else min(end, payload_end)
    pos = off + 40
    exts: list[str] = []
    later_fragment = False
    first_fragment = False
    cut = False
    while nh in EXT_NAMES:
        name = EXT_NAMES[nh]
        if limit - pos < 8:
            # The addresses are already read: keep the layer and stop here rather than lose it
            # (ICMPv6 quotes and snaplen cut extension headers short).
            cut = True
            anomalies.append(truncated("ipv6", pos, 8, max(0, limit - pos)))
            break
        nxt_hdr, hlen_raw = buf[pos], buf[pos + 1]
        if nh == 44:
            hlen = 8
            (fo,) = struct.unpack_from("!H", buf, pos + 2)
            (frag_id,) = struct.unpack_from("!I", buf, pos + 4)
            fields["frag_offset"] = (fo >> 3) * 8
            fields["mf"] = bool(fo & 1)
            fields["frag_id"] = frag_id
            later_fragment = fo >> 3 != 0
            first_fragment = not later_fragment and bool(fo & 1)
        elif nh == 51:
            hlen = (hlen_raw + 2) * 4
        else:
            hlen = (hlen_raw + 1) * 8
        if limit - pos < hlen:
            cut = True
            anomalies.append(truncated("ipv6", pos, hlen, limit - pos))
            break
        if nh == 43:
            fields.update(_routing(buf, pos, hlen))
        if nh == 0:
            jumbo = _jumbo_length(buf, pos + 2, pos + hlen)
            if jumbo is not None:
                fields["jumbo_length"] = jumbo
                payload_end = off + 40 + jumbo
                limit = min(end, payload_end)
        exts.append(name)
        nh = nxt_hdr
        pos += hlen
        if later_fragment:
            break  # what follows is the middle of the fragmentable part, not a header
    if exts:
        fields["ext"] = exts
    fields["next_header"] = nh
    nxt = None if cut or later_fragment or nh == NO_NEXT else Next("ipproto", nh)
    return Decoded(
        fields,
        pos - off,
        nxt,
        end=payload_end,
        anomalies=anomalies,
        encap=nh in IP_IN_IP and not (later_fragment or cut),
        partial=first_fragment,
    )


def _routing(buf: bytes, pos: int, hlen: int) -> dict[str, FieldValue]:
    """Routing header fields; SRv6 (type 4, RFC 8754) lists its segments, last hop first."""
    rtype, segs_left = buf[pos + 2], buf[pos + 3]
    out: dict[str, FieldValue] = {"routing_type": rtype, "segments_left": segs_left}
    if rtype == 4:
        # "Last Entry" counts the segments; TLVs may follow them inside the same header.
        count = min(buf[pos + 4] + 1, (hlen - 8) // 16)
        out["segments"] = [ipv6_str(buf, pos + 8 + 16 * i) for i in range(count)]
    return out


def _jumbo_length(buf: bytes, pos: int, end: int) -> int | None:
    """Walk hop-by-hop TLV options looking for the jumbo payload option (type 0xC2)."""
    while pos < end:
        otype = buf[pos]
        if otype == 0:  # Pad1
            pos += 1
            continue
        if pos + 2 > end:
            return None
        olen = buf[pos + 1]
        if otype == 0xC2 and olen == 4 and pos + 6 <= end:
            return int(struct.unpack_from("!I", buf, pos + 2)[0])
        pos += 2 + olen
    return None


class FragmentHeader(NamedTuple):
    end: int  # first byte after the fragment header: where the fragmentable part starts
    next_header: int  # protocol of the fragmentable part (the reassembled payload)
    offset: int  # bytes
    mf: bool
    ident: int


def fragment_header(buf: bytes, off: int, end: int) -> FragmentHeader | None:
    """The fragment header of the IPv6 packet at ``off``, walking the extension headers before it."""
    if end - off < 40:
        return None
    nh, pos = buf[off + 6], off + 40
    while nh in EXT_NAMES:
        if end - pos < 8:
            return None
        if nh == 44:
            fo, ident = struct.unpack_from("!HI", buf, pos + 2)
            return FragmentHeader(pos + 8, buf[pos], (fo >> 3) * 8, bool(fo & 1), ident)
        nh, pos = buf[pos], pos + ((buf[pos + 1] + 2) * 4 if nh == 51 else (buf[pos + 1] + 1) * 8)
    return None
