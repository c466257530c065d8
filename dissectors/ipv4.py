"""IPv4 (RFC 791): options kept raw, fragments described, payload bounded by total length."""

from __future__ import annotations

from ipsotrace.dissectors.base import Context, Decoded, Header, Next, ipv4_str, malformed, truncated
from ipsotrace.records import Anomaly, FieldValue

HEADER = Header(
    "ipv4",
    "BBHHHBBH4s4s",
    ("vihl", "tos", "total_length", "id", "flags_frag", "ttl", "proto", "checksum", "_src", "_dst"),
)

IP_IN_IP = {4, 41, 143}  # IPv4-in-IP, 6in4, Ethernet (RFC 8986): the payload is an encapsulated packet


def dissect(buf: bytes, off: int, end: int, ctx: Context) -> Decoded | Anomaly:
    v = HEADER.unpack(buf, off, end)
    if isinstance(v, Anomaly):
        return v
    vihl, tos, total, ident, ff, ttl, proto, csum = v[:8]
    version, ihl = vihl >> 4, (vihl & 0x0F) * 4
    if version != 4:
        return malformed("ipv4", off, f"version {version}, expected 4")
    if ihl < 20:
        return malformed("ipv4", off, f"header length {ihl} < 20")
    frag_offset = (ff & 0x1FFF) * 8
    fields: dict[str, FieldValue] = {
        "src": ipv4_str(buf, off + 12),
        "dst": ipv4_str(buf, off + 16),
        "ttl": ttl,
        "protocol": proto,
        "dscp": tos >> 2,
        "ecn": tos & 3,
        "id": ident,
        "df": bool(ff & 0x4000),
        "mf": bool(ff & 0x2000),
        "frag_offset": frag_offset,
        "total_length": total,
        "ihl": ihl,
        "checksum": csum,
    }
    if end - off < ihl:
        # Options cut short (snaplen, ICMP quote): the addresses are known, so keep the layer.
        return Decoded(fields, end - off, None, anomalies=[truncated("ipv4", off, ihl, end - off)])
    if ihl > 20:
        fields["options"] = buf[off + 20 : off + ihl].hex()
    anomalies: list[Anomaly] = []
    payload_end: int | None = None
    if total == 0:
        # TSO/GSO super-frames captured before segmentation carry a zero total length.
        fields["gso"] = True
    elif total < ihl:
        return malformed("ipv4", off, f"total length {total} < header length {ihl}")
    else:
        payload_end = off + total
        if payload_end > end and not (ctx.snaplen_cut or ctx.partial):
            anomalies.append(
                Anomaly("ipv4.length-exceeds-frame", "ipv4", off, f"total length {total} > {end - off} captured")
            )
    if ff & 0x8000:
        anomalies.append(Anomaly("ipv4.evil-bit", "ipv4", off, "reserved flag bit set"))
    nxt: Next | None = Next("ipproto", proto)
    if frag_offset:
        nxt = None  # a later fragment: its payload is not a header
    return Decoded(
        fields,
        ihl,
        nxt,
        end=payload_end,
        anomalies=anomalies,
        encap=proto in IP_IN_IP and not frag_offset,
        partial=bool(ff & 0x2000) and not frag_offset,
    )
