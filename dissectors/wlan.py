"""IEEE 802.11-2020 data frames (as tunnelled by Aruba access points in GRE) and A-MSDU subframes.

Only what reaching the carried packet needs: the MAC header of a data frame (addresses by
To/From DS, sequence control, QoS control, HT control), then either an LLC/SNAP header or,
when the QoS control says so, an aggregate of MSDU subframes (each ``DA, SA, length``
then LLC/SNAP, padded to 4 bytes).  The layer stack is one chain, so the first subframe
is decoded and the ``amsdu`` layer counts the others.  Frame control and the other
802.11 fields are little-endian.  Management and control frames, null data and
protected (encrypted) frames end the decode.
"""

from __future__ import annotations

from ipsotrace.dissectors.base import Context, Decoded, Header, Next, mac_str, truncated
from ipsotrace.records import Anomaly, FieldValue

# Header is network order: frame control is read as its two bytes, the 16-bit fields swapped.
HEADER = Header("wlan", "BBH6s6s6sH", ("fc0", "flags", "duration_le", "_a1", "_a2", "_a3", "seq_ctrl_le"))
SUBFRAME = Header("amsdu", "6s6sH", ("_da", "_sa", "msdu_length"))

TYPE_DATA = 2
TO_DS, FROM_DS, PROTECTED, ORDER = 0x01, 0x02, 0x40, 0x80
QOS_SUBTYPE = 0x8
NULL_SUBTYPE = 0x4
QOS_AMSDU = 0x0080

# (to DS, from DS) → names of address 1, 2, 3 (address 4, when both are set, is SA)
_ADDRESS_ROLES = {
    (0, 0): ("da", "sa", "bssid"),
    (0, 1): ("da", "bssid", "sa"),
    (1, 0): ("bssid", "sa", "da"),
    (1, 1): ("ra", "ta", "da"),
}


def dissect(buf: bytes, off: int, end: int, ctx: Context) -> Decoded | Anomaly:
    v = HEADER.unpack(buf, off, end)
    if isinstance(v, Anomaly):
        return v
    fc0, flags = v[0], v[1]
    duration, seq_ctrl = _swap16(v[2]), _swap16(v[6])
    ftype, subtype = (fc0 >> 2) & 3, fc0 >> 4
    ds = (flags & TO_DS, (flags & FROM_DS) >> 1)
    fields: dict[str, FieldValue] = {
        "type": ftype,
        "subtype": subtype,
        "flags": flags,
        "to_ds": bool(ds[0]),
        "from_ds": bool(ds[1]),
        "protected": bool(flags & PROTECTED),
        "duration": duration,
        "seq": seq_ctrl >> 4,
        "frag": seq_ctrl & 0xF,
    }
    for i, role in enumerate(_ADDRESS_ROLES[ds]):
        fields[role] = mac_str(buf, off + 4 + 6 * i)
    length = HEADER.size
    if ftype != TYPE_DATA:
        return Decoded(fields, length, None)
    qos = subtype & QOS_SUBTYPE
    need = length + 6 * (ds == (1, 1)) + 2 * bool(qos) + 4 * bool(qos and flags & ORDER)
    if end - off < need:
        return truncated("wlan", off, need, end - off)
    if ds == (1, 1):
        fields["sa"] = mac_str(buf, off + length)
        length += 6
    amsdu = False
    if qos:
        qc = buf[off + length] | buf[off + length + 1] << 8
        fields["tid"] = qc & 0xF
        amsdu = bool(qc & QOS_AMSDU)
        fields["amsdu"] = amsdu
        length += 2
        if flags & ORDER:
            length += 4  # HT control
    if flags & PROTECTED or subtype & NULL_SUBTYPE:
        return Decoded(fields, length, None)
    return Decoded(fields, length, Next("proto", "amsdu" if amsdu else "llc"))


def dissect_amsdu(buf: bytes, off: int, end: int, ctx: Context) -> Decoded | Anomaly:
    v = SUBFRAME.unpack(buf, off, end)
    if isinstance(v, Anomaly):
        return v
    msdu_len = v[2]
    fields: dict[str, FieldValue] = {
        "da": mac_str(buf, off),
        "sa": mac_str(buf, off + 6),
        "msdu_length": msdu_len,
        "subframes": _count_subframes(buf, off, end),
    }
    anomalies: list[Anomaly] = []
    if off + SUBFRAME.size + msdu_len > end and not (ctx.snaplen_cut or ctx.partial):
        anomalies.append(Anomaly("amsdu.length-exceeds-frame", "amsdu", off, f"MSDU length {msdu_len} too long"))
    return Decoded(fields, SUBFRAME.size, Next("proto", "llc"), end=off + SUBFRAME.size + msdu_len, anomalies=anomalies)


def _swap16(x: int) -> int:
    return (x >> 8) | (x & 0xFF) << 8


def _count_subframes(buf: bytes, pos: int, end: int) -> int:
    n = 0
    while end - pos >= SUBFRAME.size:
        n += 1
        size = SUBFRAME.size + (buf[pos + 12] << 8 | buf[pos + 13])
        pos += (size + 3) & ~3
    return n
