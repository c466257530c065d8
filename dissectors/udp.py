"""UDP (RFC 768).  The next layer is chosen by port in the registry."""

from __future__ import annotations

from ipsotrace.dissectors.base import Context, Decoded, Header, Next, malformed
from ipsotrace.records import Anomaly, FieldValue

HEADER = Header("udp", "HHHH", ("sport", "dport", "length", "checksum"))


def dissect(buf: bytes, off: int, end: int, ctx: Context) -> Decoded | Anomaly:
    v = HEADER.unpack(buf, off, end)
    if isinstance(v, Anomaly):
        return v
    sport, dport, length, checksum = v
    fields: dict[str, FieldValue] = {"sport": sport, "dport": dport, "udp_length": length, "checksum": checksum}
    anomalies: list[Anomaly] = []
    payload_end = None
    if length == 0:
        # Zero length is legal only for IPv6 jumbograms / GSO super-frames: use the IP length.
        pass
    elif length < 8:
        # The ports are still right and flows need them; only the payload is unusable.
        return Decoded(fields, 8, None, anomalies=[malformed("udp", off, f"length {length} < 8")])
    else:
        payload_end = off + length
        if payload_end > end and not (ctx.snaplen_cut or ctx.partial):
            anomalies.append(
                Anomaly("udp.length-exceeds-ip", "udp", off, f"UDP length {length} > {end - off} available")
            )
    return Decoded(fields, 8, Next("udp", (sport, dport)), end=payload_end, anomalies=anomalies)
