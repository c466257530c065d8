"""DTLS record layer (RFC 6347 / RFC 9147 plaintext records): one layer for the records of a datagram.

Each record: content type (20 change_cipher_spec … 25 tls12_cid), version (0xfeff
DTLS 1.0, 0xfefd 1.2, 0xfefc 1.3), epoch, 48-bit sequence number, length.  Records
of epoch > 0 and application data are encrypted.  DTLS has no fixed port, so the
registry finds it by :func:`heuristic` only.
"""

from __future__ import annotations

from ipsotrace.dissectors.base import Context, Decoded, Header, malformed
from ipsotrace.records import Anomaly, FieldValue

RECORD = Header("dtls", "BHHHIH", ("content_type", "version", "epoch", "seq_hi", "seq_lo", "record_length"))

CONTENT_TYPES = {
    20: "change-cipher-spec",
    21: "alert",
    22: "handshake",
    23: "application-data",
    24: "heartbeat",
    25: "tls12-cid",
}
VERSIONS = {0xFEFF: "1.0", 0xFEFD: "1.2", 0xFEFC: "1.3"}
APPLICATION_DATA = 23
HANDSHAKE = 22
MAX_RECORDS = 64


def _records(buf: bytes, off: int, end: int) -> tuple[list[dict[str, FieldValue]], int]:
    """Records that fit, and where the walk stopped (``end`` when the datagram is all records)."""
    out: list[dict[str, FieldValue]] = []
    pos = off
    while len(out) < MAX_RECORDS:
        v = RECORD.unpack(buf, pos, end)
        if isinstance(v, Anomaly):
            break
        ctype, version, epoch, seq_hi, seq_lo, rlen = v
        if ctype not in CONTENT_TYPES or version not in VERSIONS or pos + RECORD.size + rlen > end:
            break
        rec: dict[str, FieldValue] = {
            "content_type": ctype,
            "type": CONTENT_TYPES[ctype],
            "version": VERSIONS[version],
            "epoch": epoch,
            "seq": seq_hi << 32 | seq_lo,
            "length": rlen,
            "encrypted": epoch > 0 or ctype == APPLICATION_DATA,
        }
        if ctype == HANDSHAKE and epoch == 0 and rlen:
            rec["handshake_type"] = buf[pos + RECORD.size]
        out.append(rec)
        pos += RECORD.size + rlen
    return out, pos


def dissect(buf: bytes, off: int, end: int, ctx: Context) -> Decoded | Anomaly:
    v = RECORD.unpack(buf, off, end)
    if isinstance(v, Anomaly):
        return v
    records, stop = _records(buf, off, end)
    if not records:
        return malformed("dtls", off, f"content type {v[0]} / version 0x{v[1]:04x} is not a DTLS record")
    first = records[0]
    fields: dict[str, FieldValue] = {
        "content_type": first["content_type"],
        "version": first["version"],
        "epoch": first["epoch"],
        "seq": first["seq"],
        "record_length": first["length"],
        "records": records,
        "encrypted": any(r["encrypted"] for r in records),
    }
    anomalies: list[Anomaly] = []
    if stop != end and not (ctx.snaplen_cut or ctx.partial):
        anomalies.append(Anomaly("dtls.trailing-bytes", "dtls", stop, f"{end - stop} bytes are not a DTLS record"))
    return Decoded(fields, stop - off, None, anomalies=anomalies)


def heuristic(buf: bytes, off: int, end: int) -> float:
    """A known content type and version (required), then records that tile the datagram exactly."""
    if end - off < RECORD.size or buf[off] not in CONTENT_TYPES:
        return 0.0
    if int.from_bytes(buf[off + 1 : off + 3], "big") not in VERSIONS:
        return 0.0
    records, stop = _records(buf, off, end)
    # A datagram holds whole records only (RFC 6347 §4.1.1): exact tiling weighs double.
    # Epochs count key changes (renegotiations): a large one is implausible.
    tiled = bool(records) and stop == end
    epoch_ok = bool(records) and int(records[0]["epoch"]) < 0x100
    return (1 + 2 * tiled + epoch_ok) / 4
