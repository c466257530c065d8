"""Cisco ERSPAN (draft-foschiano-erspan) types I, II and III, carried in GRE.

Type I has no header: the mirrored frame follows a 4-byte GRE header whose S bit is clear
(GRE type 0x88BE), so GRE selects :func:`dissect_type_i`, a zero-length layer that keeps
the tunnel visible (tshark shows an "erspan" layer too).  Types II (GRE 0x88BE, version
1) and III (GRE 0x22EB, version 2) start with a header whose first nibble is the version;
:func:`dissect` reads it and hands over to that version's parser.

``span_id`` (the 10-bit session ID) is the ``tunnel_id``.  The payload is an Ethernet
frame, except that type III frame type 2 carries an IP packet and other frame types
are not decoded (tshark shows them as data).
"""

from __future__ import annotations

from collections.abc import Callable

from ipsotrace.dissectors.base import Context, Decoded, Header, Next, malformed, truncated
from ipsotrace.records import Anomaly, FieldValue

TYPE_II = Header("erspan", "HHI", ("ver_vlan", "cos_en_t_session", "reserved_index"))
TYPE_III = Header("erspan", "HHIHH", ("ver_vlan", "cos_bso_t_session", "timestamp", "sgt", "p_ft_hw_d_gra_o"))
PLATFORM = Header("erspan", "II", ("platform_hi", "platform_lo"))

ENCAP_TYPES = {0: "untagged", 1: "isl", 2: "802.1q", 3: "vlan-preserved"}
GRANULARITY = {0: "100us", 1: "100ns", 2: "ieee1588", 3: "custom"}
FT_ETHERNET = 0
FT_IP = 2


def dissect_type_i(buf: bytes, off: int, end: int, ctx: Context) -> Decoded | Anomaly:
    return Decoded({"erspan_type": 1}, 0, Next("proto", "eth"), encap=True)


def dissect(buf: bytes, off: int, end: int, ctx: Context) -> Decoded | Anomaly:
    if end - off < 2:
        return truncated("erspan", off, 2, max(0, end - off))
    version = buf[off] >> 4
    parser = _VERSIONS.get(version)
    if parser is None:
        return malformed("erspan", off, f"version {version} is neither 1 (type II) nor 2 (type III)")
    return parser(buf, off, end)


def _common(ver_vlan: int, word: int) -> dict[str, FieldValue]:
    """The first 32 bits, shared by types II and III (bits 3-4 of the second half differ)."""
    span_id = word & 0x03FF
    return {
        "version": ver_vlan >> 12,
        "vlan": ver_vlan & 0x0FFF,
        "cos": word >> 13,
        "truncated": bool(word & 0x0400),
        "span_id": span_id,
        "tunnel_id": span_id,
    }


def _type_ii(buf: bytes, off: int, end: int) -> Decoded | Anomaly:
    v = TYPE_II.unpack(buf, off, end)
    if isinstance(v, Anomaly):
        return v
    ver_vlan, word, res_index = v
    fields = {"erspan_type": 2, **_common(ver_vlan, word)}
    encap = (word >> 11) & 3
    fields.update(encap_type=encap, encap_name=ENCAP_TYPES[encap], index=res_index & 0xFFFFF)
    anomalies = []
    if res_index >> 20:
        anomalies.append(Anomaly("erspan.reserved-set", "erspan", off, "reserved bits before the index are not 0"))
    return Decoded(fields, TYPE_II.size, Next("proto", "eth"), anomalies=anomalies, encap=True)


def _type_iii(buf: bytes, off: int, end: int) -> Decoded | Anomaly:
    v = TYPE_III.unpack(buf, off, end)
    if isinstance(v, Anomaly):
        return v
    ver_vlan, word, timestamp, sgt, tail = v
    fields = {"erspan_type": 3, **_common(ver_vlan, word)}
    frame_type = (tail >> 10) & 0x1F
    gra = (tail >> 1) & 3
    fields.update(
        bso=(word >> 11) & 3,
        timestamp=timestamp,
        sgt=sgt,
        p=bool(tail & 0x8000),
        frame_type=frame_type,
        hw_id=(tail >> 4) & 0x3F,
        direction="egress" if tail & 0x0008 else "ingress",
        granularity=gra,
        granularity_name=GRANULARITY[gra],
        o=bool(tail & 1),
    )
    length = TYPE_III.size
    if tail & 1:
        sub = PLATFORM.unpack(buf, off + length, end)
        if isinstance(sub, Anomaly):
            return sub
        hi, lo = sub
        # The platform-specific subheader: a 6-bit platform ID, then 58 bits whose meaning
        # depends on it (port ID, upper timestamp bits...): kept raw.
        fields["platform_id"] = hi >> 26
        fields["platform_info"] = ((hi & 0x03FFFFFF) << 32) | lo
        length += PLATFORM.size
    return Decoded(fields, length, _payload(buf, off + length, end, frame_type), encap=True)


def _payload(buf: bytes, pos: int, end: int, frame_type: int) -> Next | None:
    if frame_type == FT_ETHERNET:
        return Next("proto", "eth")
    if frame_type == FT_IP and pos < end:
        return {4: Next("proto", "ipv4"), 6: Next("proto", "ipv6")}.get(buf[pos] >> 4)
    return None


_VERSIONS: dict[int, Callable[[bytes, int, int], Decoded | Anomaly]] = {1: _type_ii, 2: _type_iii}
