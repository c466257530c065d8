"""Byte-exact pcap and pcapng builders for source tests (every variant a reader must accept)."""

from __future__ import annotations

import struct

PCAP_USEC = 0xA1B2C3D4
PCAP_NSEC = 0xA1B23C4D
PCAP_KUZNETZOV = 0xA1B2CD34


def pcap_header(endian: str = "<", magic: int = PCAP_USEC, linktype: int = 1, snaplen: int = 262144) -> bytes:
    return struct.pack(endian + "IHHiIII", magic, 2, 4, 0, 0, snaplen, linktype)


def pcap_record(
    data: bytes, sec: int, frac: int, endian: str = "<", orig: int | None = None, extra: bytes = b""
) -> bytes:
    orig = len(data) if orig is None else orig
    return struct.pack(endian + "IIII", sec, frac, len(data), orig) + extra + data


def pcap(
    frames: list[tuple[int, int, bytes]],
    endian: str = "<",
    magic: int = PCAP_USEC,
    linktype: int = 1,
    snaplen: int = 262144,
) -> bytes:
    """``frames``: (seconds, fraction in the magic's unit, bytes)."""
    return pcap_header(endian, magic, linktype, snaplen) + b"".join(pcap_record(d, s, f, endian) for s, f, d in frames)


def _pad4(b: bytes) -> bytes:
    return b + b"\0" * (-len(b) % 4)


def block(btype: int, body: bytes, endian: str = "<") -> bytes:
    body = _pad4(body)
    blen = 12 + len(body)
    return struct.pack(endian + "II", btype, blen) + body + struct.pack(endian + "I", blen)


def option(code: int, value: bytes, endian: str = "<") -> bytes:
    return struct.pack(endian + "HH", code, len(value)) + _pad4(value)


def shb(endian: str = "<", options: bytes = b"") -> bytes:
    body = struct.pack(endian + "IHHq", 0x1A2B3C4D, 1, 0, -1) + options
    return block(0x0A0D0D0A, body, endian)


def idb(
    linktype: int, endian: str = "<", snaplen: int = 0, tsresol: int | None = None, tsoffset: int | None = None
) -> bytes:
    opts = b""
    if tsresol is not None:
        opts += option(9, bytes([tsresol]), endian)
    if tsoffset is not None:
        opts += option(14, struct.pack(endian + "q", tsoffset), endian)
    if opts:
        opts += option(0, b"", endian)
    return block(1, struct.pack(endian + "HHI", linktype, 0, snaplen) + opts, endian)


def epb(ifid: int, ts: int, data: bytes, endian: str = "<", orig: int | None = None) -> bytes:
    orig = len(data) if orig is None else orig
    body = struct.pack(endian + "IIIII", ifid, ts >> 32, ts & 0xFFFFFFFF, len(data), orig) + data
    return block(6, body, endian)


def spb(data: bytes, orig: int | None = None, endian: str = "<") -> bytes:
    return block(3, struct.pack(endian + "I", len(data) if orig is None else orig) + data, endian)
