"""ESP (RFC 4303) and its UDP encapsulation for NAT traversal (RFC 3948).

Nothing after the SPI and sequence number can be read without the keys, so the
layer says what is visible — SPI, sequence number, ciphertext size — and marks
itself ``encrypted`` for the findings that audit encryption posture.

On UDP 4500 one port carries three things, told apart by the first bytes:
a single 0xFF byte is a NAT keepalive, four zero bytes (the non-ESP marker) an
IKE message, anything else ESP (whose SPI is never 0).  :func:`dissect_nat_t`
is that demultiplexer, a layer of 0, 1 or 4 bytes named ``nat-t``.
"""

from __future__ import annotations

from ipsotrace.dissectors.base import Context, Decoded, Header, Next, malformed
from ipsotrace.records import Anomaly, FieldValue

HEADER = Header("esp", "II", ("spi", "seq"))

NON_ESP_MARKER = b"\x00\x00\x00\x00"
NAT_KEEPALIVE = b"\xff"


def dissect(buf: bytes, off: int, end: int, ctx: Context) -> Decoded | Anomaly:
    v = HEADER.unpack(buf, off, end)
    if isinstance(v, Anomaly):
        return v
    spi, seq = v
    if spi == 0:
        return malformed("esp", off, "SPI 0 is reserved for local use and never sent")
    fields: dict[str, FieldValue] = {
        "spi": spi,
        "seq": seq,
        "encrypted": True,
        "ciphertext_length": end - off - 8,
    }
    anomalies: list[Anomaly] = []
    if spi < 256:
        anomalies.append(Anomaly("esp.reserved-spi", "esp", off, f"SPI {spi} is in the IANA-reserved range 1-255"))
    return Decoded(fields, end - off, None, anomalies=anomalies)


def dissect_nat_t(buf: bytes, off: int, end: int, ctx: Context) -> Decoded | Anomaly:
    data = buf[off:end]
    if data == NAT_KEEPALIVE:
        return Decoded({"kind": "keepalive"}, 1, None)
    if data[:4] == NON_ESP_MARKER:
        return Decoded({"kind": "ike"}, 4, Next("proto", "ike"))
    return Decoded({"kind": "esp"}, 0, Next("proto", "esp"))
