"""Network Service Header (RFC 8300): the service function chaining encapsulation.

Base header (4 bytes) + service path header (SPI 24 bit, SI 8 bit) + context:
MD type 1 has a fixed 16-byte context (length field 6), MD type 2 a list of
variable-length context TLVs.  The next protocol is a number of the IANA "NSH Next
Protocol" registry, looked up in the registry's ``nsh`` table.

NSH does not count as a tunnel level of its own (``encap`` is false): it rides on a
transport encapsulation (VXLAN-GPE, GRE, Ethernet) and only adds the service path.
Over VXLAN-GPE the GPE header already counts, so GPE + NSH is one tunnel keyed by
the VNI, as the correlator expects; over bare Ethernet there is no underlay IP
header, and the packet NSH carries is the first one.
"""

from __future__ import annotations

import struct

from ipsotrace.dissectors.base import Context, Decoded, Header, Next, malformed, truncated
from ipsotrace.records import Anomaly, FieldValue

HEADER = Header("nsh", "HBBI", ("ver_o_ttl_len", "md_type", "next_protocol", "spi_si"))

MD_TYPE1_WORDS = 6


def _md2_context(buf: bytes, pos: int, end: int, anomalies: list[Anomaly]) -> list[dict[str, FieldValue]]:
    tlvs: list[dict[str, FieldValue]] = []
    while pos < end:
        if end - pos < 4:
            anomalies.append(Anomaly("nsh.context-length", "nsh", pos, f"{end - pos} bytes left for a 4-byte TLV"))
            break
        md_class, md_type, ulen = struct.unpack_from("!HBB", buf, pos)
        dlen = ulen & 0x7F
        padded = (dlen + 3) & ~3
        if pos + 4 + padded > end:
            anomalies.append(Anomaly("nsh.context-length", "nsh", pos, f"context TLV of {dlen} bytes overruns NSH"))
            break
        tlvs.append({"class": md_class, "type": md_type, "length": dlen, "data": buf[pos + 4 : pos + 4 + dlen].hex()})
        pos += 4 + padded
    return tlvs


def dissect(buf: bytes, off: int, end: int, ctx: Context) -> Decoded | Anomaly:
    v = HEADER.unpack(buf, off, end)
    if isinstance(v, Anomaly):
        return v
    word0, md_byte, next_proto, spi_si = v
    version = word0 >> 14
    length = (word0 & 0x3F) * 4
    md_type = md_byte & 0x0F
    if version != 0:
        return malformed("nsh", off, f"version {version}, expected 0")
    if length < 8:
        return malformed("nsh", off, f"length {length} bytes < 8")
    if end - off < length:
        return truncated("nsh", off, length, end - off)
    anomalies: list[Anomaly] = []
    fields: dict[str, FieldValue] = {
        "version": version,
        "oam": bool(word0 & 0x2000),
        "ttl": (word0 >> 6) & 0x3F,
        "nsh_length": length,
        "md_type": md_type,
        "next_protocol": next_proto,
        "spi": spi_si >> 8,
        "si": spi_si & 0xFF,
    }
    if md_type == 1:
        if length != MD_TYPE1_WORDS * 4:
            anomalies.append(Anomaly("nsh.md1-length", "nsh", off, f"MD type 1 needs length 24, got {length}"))
        fields["context"] = buf[off + 8 : off + length].hex()
    elif md_type == 2:
        fields["context_tlvs"] = _md2_context(buf, off + 8, off + length, anomalies)
    elif length > 8:
        fields["context"] = buf[off + 8 : off + length].hex()
    if fields["ttl"] == 0:
        anomalies.append(
            Anomaly("nsh.ttl-zero", "nsh", off, "service path TTL is 0: the packet should have been dropped")
        )
    return Decoded(fields, length, Next("nsh", next_proto), anomalies=anomalies)
