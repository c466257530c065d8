"""MPLS label stack entries (RFC 3032), one layer each, and the pseudowire control word (RFC 4385).

An MPLS header does not say what it carries.  After the bottom of stack the payload is
guessed from its first nibble, as tshark and Zeek do: 4 is IPv4, 6 is IPv6, 0 is a
pseudowire control word followed by an Ethernet frame (RFC 4448), 1 is a pseudowire
associated channel (RFC 4385, not decoded); anything else stays undecoded.  The bottom
entry is the one that marks the encapsulated packet (``encap``).
"""

from __future__ import annotations

from ipsotrace.dissectors.base import Context, Decoded, Header, Next, malformed
from ipsotrace.records import Anomaly, FieldValue

HEADER = Header("mpls", "I", ("entry",))
CONTROL_WORD = Header("pwcw", "I", ("word",))

#: labels 0-15 are reserved (RFC 3032, IANA "Special-Purpose MPLS Label Values")
SPECIAL_LABELS = {
    0: "ipv4-explicit-null",
    1: "router-alert",
    2: "ipv6-explicit-null",
    3: "implicit-null",
    7: "entropy-label-indicator",
    13: "gal",
    14: "oam-alert",
    15: "extension",
}
_PAYLOAD_BY_NIBBLE = {4: "ipv4", 6: "ipv6", 0: "pwcw"}
_EXPLICIT_NULL = {0: "ipv4", 2: "ipv6"}


def dissect(buf: bytes, off: int, end: int, ctx: Context) -> Decoded | Anomaly:
    v = HEADER.unpack(buf, off, end)
    if isinstance(v, Anomaly):
        return v
    (entry,) = v
    label, bos = entry >> 12, bool(entry & 0x100)
    fields: dict[str, FieldValue] = {
        "label": label,
        "tc": (entry >> 9) & 7,
        "s": int(bos),
        "ttl": entry & 0xFF,
        "tunnel_id": label,
    }
    if label in SPECIAL_LABELS:
        fields["special"] = SPECIAL_LABELS[label]
    if not bos:
        return Decoded(fields, HEADER.size, Next("proto", "mpls"))
    payload = _guess_payload(buf, off + HEADER.size, end, label)
    fields["payload"] = payload or "unknown"
    return Decoded(fields, HEADER.size, Next("proto", payload) if payload else None, encap=True)


def _guess_payload(buf: bytes, pos: int, end: int, label: int) -> str | None:
    if pos >= end:
        return None
    nibble = buf[pos] >> 4
    if label in _EXPLICIT_NULL:
        # Explicit null says which IP version follows; trust it over the nibble.
        return _EXPLICIT_NULL[label]
    if nibble == 1:
        return None  # pseudowire associated channel header (OAM): not decoded
    return _PAYLOAD_BY_NIBBLE.get(nibble)


def dissect_control_word(buf: bytes, off: int, end: int, ctx: Context) -> Decoded | Anomaly:
    """The generic pseudowire control word ``0000 flags(4) frg(2) length(6) sequence(16)``."""
    v = CONTROL_WORD.unpack(buf, off, end)
    if isinstance(v, Anomaly):
        return v
    (word,) = v
    if word >> 28:
        return malformed("pwcw", off, f"first nibble {word >> 28}, expected 0")
    fields: dict[str, FieldValue] = {
        "flags": (word >> 24) & 0xF,
        "frg": (word >> 22) & 3,
        "cw_length": (word >> 16) & 0x3F,
        "seq": word & 0xFFFF,
    }
    return Decoded(fields, CONTROL_WORD.size, Next("proto", "eth"))
