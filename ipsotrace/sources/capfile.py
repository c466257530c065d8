"""Streaming pcap / pcapng readers (gzip too) that never load the whole file.

pcap: both byte orders, micro- and nanosecond timestamps.  pcapng: several
sections and interfaces with their own link types and timestamp resolution,
SHB byte order, unknown blocks skipped.  A file that ends inside a record, or a
record whose length cannot be right, stops the read; ``status.damage`` says
where and why, and everything before it is delivered.
"""

from __future__ import annotations

import gzip
import io
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from ipsotrace.sources.base import CaptureError, Frame, SourceStatus

PCAP_MAGICS = {
    b"\xd4\xc3\xb2\xa1": ("<", 1_000),  # little-endian, microseconds
    b"\xa1\xb2\xc3\xd4": (">", 1_000),
    b"\x4d\x3c\xb2\xa1": ("<", 1),  # nanoseconds
    b"\xa1\xb2\x3c\x4d": (">", 1),
}
PCAPNG_SHB = b"\x0a\x0d\x0d\x0a"
GZIP_MAGIC = b"\x1f\x8b"
MAX_RECORD = 256 * 1024 * 1024  # larger than any real frame (BIG TCP is 512 KiB)

# pcapng block types
SHB, IDB, SPB, EPB, OBSOLETE_PB = 0x0A0D0D0A, 1, 3, 6, 2


class CaptureFile:
    """Iterate the frames of a capture file; see :attr:`status` afterwards."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.status = SourceStatus(path=str(path))
        try:
            raw = self.path.open("rb")
        except OSError as exc:
            raise CaptureError(f"{path}: {exc.strerror or exc}") from exc
        head = raw.read(4)
        raw.seek(0)
        self._fh: BinaryIO = raw
        if head[:2] == GZIP_MAGIC:
            self._fh = gzip.GzipFile(fileobj=raw)  # type: ignore[assignment]
            try:
                head = self._fh.read(4)
            except (OSError, EOFError) as exc:
                raise CaptureError(f"{path}: broken gzip stream: {exc}") from exc
            self._fh = gzip.GzipFile(fileobj=_rewound(raw))  # type: ignore[assignment]
            self.status.format = "gzip+"
        if head in PCAP_MAGICS:
            self.status.format += "pcap"
        elif head == PCAPNG_SHB:
            self.status.format += "pcapng"
        else:
            raw.close()
            raise CaptureError(f"{path}: not a pcap or pcapng file (first bytes {head.hex() or 'empty'})")
        self._buffered = io.BufferedReader(self._fh, 1 << 20) if isinstance(self._fh, gzip.GzipFile) else self._fh  # type: ignore[arg-type]

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> CaptureFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __iter__(self) -> Iterator[Frame]:
        reader = self._pcapng if self.status.format.endswith("pcapng") else self._pcap
        try:
            yield from reader(self._buffered)
        except (OSError, EOFError, gzip.BadGzipFile) as exc:
            self._damage(f"read error: {exc}")

    # -- helpers ----------------------------------------------------------------------------
    def _damage(self, why: str) -> None:
        if self.status.damage is None:
            self.status.damage = why
            self.status.damage_offset = self.status.bytes_read

    def _read(self, fh: BinaryIO, n: int) -> bytes:
        data = fh.read(n)
        self.status.bytes_read += len(data)
        return data

    # -- classic pcap -----------------------------------------------------------------------
    def _pcap(self, fh: BinaryIO) -> Iterator[Frame]:
        hdr = self._read(fh, 24)
        if len(hdr) < 24:
            self._damage(f"file header cut short ({len(hdr)} of 24 bytes)")
            return
        endian, ts_scale = PCAP_MAGICS[hdr[:4]]
        _vmaj, _vmin, _zone, _sigfigs, snaplen, network = struct.unpack(endian + "HHiIII", hdr[4:])
        linktype = network & 0x0FFFFFFF
        self.status.linktypes = {0: linktype}
        rec = struct.Struct(endian + "IIII")
        number = 0
        while True:
            rh = self._read(fh, 16)
            if not rh:
                return
            if len(rh) < 16:
                self._damage(f"file ends inside the header of record {number + 1} ({len(rh)} of 16 bytes)")
                return
            sec, frac, incl, orig = rec.unpack(rh)
            if incl > MAX_RECORD or (snaplen and incl > max(snaplen, 262144) and incl > orig):
                self._damage(f"record {number + 1} claims {incl} captured bytes: corrupt record header")
                return
            data = self._read(fh, incl)
            if len(data) < incl:
                self._damage(f"file ends inside record {number + 1} ({len(data)} of {incl} bytes)")
                return
            number += 1
            self.status.frames = number
            yield Frame(number, sec * 1_000_000_000 + frac * ts_scale, incl, max(orig, incl), linktype, data)

    # -- pcapng -----------------------------------------------------------------------------
    def _pcapng(self, fh: BinaryIO) -> Iterator[Frame]:
        endian = "<"
        interfaces: list[tuple[int, int]] = []  # (linktype, timestamp units per second)
        number = 0
        self.status.linktypes = {}
        while True:
            head = self._read(fh, 8)
            if not head:
                return
            if len(head) < 8:
                self._damage(f"file ends inside a block header ({len(head)} of 8 bytes)")
                return
            if head[:4] == PCAPNG_SHB:
                bom = self._read(fh, 4)
                if len(bom) < 4:
                    self._damage("file ends inside a section header")
                    return
                if bom == b"\x4d\x3c\x2b\x1a":
                    endian = "<"
                elif bom == b"\x1a\x2b\x3c\x4d":
                    endian = ">"
                else:
                    self._damage(f"section header with bad byte-order magic {bom.hex()}")
                    return
                (blen,) = struct.unpack(endian + "I", head[4:])
                if blen < 28 or blen % 4 or blen > MAX_RECORD:
                    self._damage(f"section header block length {blen} is invalid")
                    return
                rest = self._read(fh, blen - 12)
                if len(rest) < blen - 12:
                    self._damage("file ends inside a section header")
                    return
                interfaces = []  # interface ids restart in each section
                continue
            btype, blen = struct.unpack(endian + "II", head)
            if blen < 12 or blen % 4 or blen > MAX_RECORD:
                self._damage(f"block of type {btype:#x} has invalid length {blen}")
                return
            body = self._read(fh, blen - 8)
            if len(body) < blen - 8:
                self._damage(f"file ends inside a block of type {btype:#x} ({len(body) + 8} of {blen} bytes)")
                return
            body = body[:-4]  # trailing block length
            if btype == IDB:
                if len(body) < 8:
                    self._damage("interface description block too short")
                    return
                linktype, _res, _snap = struct.unpack(endian + "HHI", body[:8])
                interfaces.append((linktype, _ts_resolution(body[8:], endian)))
                self.status.linktypes[len(interfaces) - 1] = linktype
            elif btype == EPB:
                if len(body) < 20:
                    self._damage("enhanced packet block too short")
                    return
                ifid, ts_hi, ts_lo, cap, orig = struct.unpack(endian + "IIIII", body[:20])
                if ifid >= len(interfaces) or cap > len(body) - 20:
                    self._damage(f"enhanced packet block for unknown interface {ifid} or bad length {cap}")
                    return
                linktype, per_sec = interfaces[ifid]
                number += 1
                self.status.frames = number
                ts = ((ts_hi << 32) | ts_lo) * 1_000_000_000 // per_sec
                yield Frame(number, ts, cap, max(orig, cap), linktype, body[20 : 20 + cap], ifid)
            elif btype == SPB:
                if not interfaces or len(body) < 4:
                    self._damage("simple packet block without an interface")
                    return
                (orig,) = struct.unpack(endian + "I", body[:4])
                linktype, _unit = interfaces[0]
                data = body[4 : 4 + min(orig, len(body) - 4)]
                number += 1
                self.status.frames = number
                yield Frame(number, 0, len(data), orig, linktype, data, 0)
            elif btype == OBSOLETE_PB:
                if len(body) < 20:
                    self._damage("packet block too short")
                    return
                ifid, _drops, ts_hi, ts_lo, cap, orig = struct.unpack(endian + "HHIIII", body[:20])
                if ifid >= len(interfaces):
                    self._damage(f"packet block for unknown interface {ifid}")
                    return
                linktype, per_sec = interfaces[ifid]
                number += 1
                self.status.frames = number
                ts = ((ts_hi << 32) | ts_lo) * 1_000_000_000 // per_sec
                yield Frame(number, ts, cap, orig, linktype, body[20 : 20 + cap], ifid)
            # every other block type (name resolution, statistics, custom…) is skipped


def _ts_resolution(options: bytes, endian: str) -> int:
    """Timestamp units per second from the if_tsresol option (default microseconds)."""
    pos = 0
    while pos + 4 <= len(options):
        code, length = struct.unpack(endian + "HH", options[pos : pos + 4])
        if code == 0:
            break
        if code == 9 and length >= 1:
            v = options[pos + 4]
            exp = v & 0x7F
            return int(2**exp if v & 0x80 else 10**exp)
        pos += 4 + ((length + 3) & ~3)
    return 1_000_000


def _rewound(raw: BinaryIO) -> BinaryIO:
    raw.seek(0)
    return raw


def open_capture(path: str | Path) -> CaptureFile:
    return CaptureFile(path)
