"""Streaming pcap / pcapng readers (gzip too) that never load the whole file.

pcap: both byte orders, micro- and nanosecond timestamps (and Kuznetzov's
variant).  pcapng: several sections and interfaces with their own link types,
timestamp resolution and offset, SHB byte order, unknown blocks skipped.  A
file that ends inside a record, or a record whose length cannot be right,
stops the read; ``status.damage`` says why and ``status.damage_offset`` where
the bad record starts, and everything before it is delivered.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from ipsotrace.sources.base import CaptureError, Frame, SourceStatus

# magic → (byte order, nanoseconds per timestamp unit, record header size)
PCAP_MAGICS = {
    b"\xd4\xc3\xb2\xa1": ("<", 1_000, 16),  # little-endian, microseconds
    b"\xa1\xb2\xc3\xd4": (">", 1_000, 16),
    b"\x4d\x3c\xb2\xa1": ("<", 1, 16),  # nanoseconds
    b"\xa1\xb2\x3c\x4d": (">", 1, 16),
    # Kuznetzov's patched libpcap (old Red Hat tcpdump): 8 more bytes per record header
    b"\x34\xcd\xb2\xa1": ("<", 1_000, 24),
    b"\xa1\xb2\xcd\x34": (">", 1_000, 24),
}
PCAPNG_SHB = b"\x0a\x0d\x0d\x0a"
GZIP_MAGIC = b"\x1f\x8b"
MAX_RECORD = 256 * 1024 * 1024  # larger than any real frame (BIG TCP is 512 KiB)
# Like libpcap and Wireshark, a pcap record larger than the usual 256 KiB maximum snaplen and than
# the file's own snaplen is taken as a corrupt header, not read: otherwise random bytes would make us
# swallow megabytes of later records as one frame.  GSO/BIG TCP super-frames stay under 1 MiB.
PCAP_SANE_RECORD = 262_144
PCAP_LARGE_RECORD = 1 << 20

# pcapng block types
SHB, IDB, SPB, EPB, OBSOLETE_PB = 0x0A0D0D0A, 1, 3, 6, 2


class CaptureFile:
    """Iterate the frames of a capture file; see :attr:`status` afterwards."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.status = SourceStatus(path=str(path))
        try:
            raw = self.path.open("rb")
            head = raw.read(4)
        except OSError as exc:
            raise CaptureError(f"{path}: {exc.strerror or exc}") from exc
        self._raw: BinaryIO = raw
        self._fh: BinaryIO = raw
        try:
            if head[:2] == GZIP_MAGIC:
                raw.seek(0)
                gz = _GzipStream(raw)
                self._fh = gz  # type: ignore[assignment]
                try:
                    head = gz.peek(4)
                except zlib.error as exc:
                    raise CaptureError(f"{path}: broken gzip stream: {exc}") from exc
                if len(head) < 4 and gz.cut:
                    raise CaptureError(f"{path}: broken gzip stream: it ends before any capture data")
                self.status.format = "gzip+"
            else:
                raw.seek(0)
            if head in PCAP_MAGICS:
                self.status.format += "pcap"
            elif head == PCAPNG_SHB:
                self.status.format += "pcapng"
            elif len(head) < 4:
                raise CaptureError(f"{path}: empty or too short to be a capture file ({len(head)} bytes)")
            else:
                raise CaptureError(
                    f"{path}: not a pcap or pcapng file (starts with {head.hex()}; "
                    "expected a pcap magic such as a1b2c3d4 or the pcapng 0a0d0d0a)"
                )
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        if self._fh is not self._raw:
            self._fh.close()
        self._raw.close()

    def __enter__(self) -> CaptureFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __iter__(self) -> Iterator[Frame]:
        reader = self._pcapng if self.status.format.endswith("pcapng") else self._pcap
        try:
            yield from reader(self._fh)
        except (OSError, EOFError, zlib.error, ValueError) as exc:
            # a gzip stream cut short (EOFError) or corrupt (zlib.error), an I/O error, a closed file
            self._damage(f"read error: {exc}", self.status.bytes_read)

    # -- helpers ----------------------------------------------------------------------------
    def _damage(self, why: str, offset: int) -> None:
        """Record the first damage; ``offset`` is where the bad record starts (in the uncompressed stream)."""
        if self.status.damage is None:
            self.status.damage = why
            self.status.damage_offset = offset

    def _read(self, fh: BinaryIO, n: int) -> bytes:
        data = fh.read(n)
        self.status.bytes_read += len(data)
        return data

    # -- classic pcap -----------------------------------------------------------------------
    def _pcap(self, fh: BinaryIO) -> Iterator[Frame]:
        hdr = self._read(fh, 24)
        if len(hdr) < 24:
            self._damage(f"file header cut short ({len(hdr)} of 24 bytes)", 0)
            return
        endian, ts_scale, rec_size = PCAP_MAGICS[hdr[:4]]
        _vmaj, _vmin, _zone, _sigfigs, snaplen, network = struct.unpack(endian + "HHiIII", hdr[4:])
        linktype = network & 0x0FFFFFFF  # the top bits may carry FCS information
        self.status.linktypes = {0: linktype}
        rec = struct.Struct(endian + "IIII")
        sane = max(snaplen, PCAP_SANE_RECORD)
        number = 0
        while True:
            at = self.status.bytes_read
            rh = self._read(fh, rec_size)
            if not rh:
                return
            if len(rh) < rec_size:
                self._damage(f"file ends inside the header of record {number + 1} ({len(rh)} of {rec_size} bytes)", at)
                return
            sec, frac, incl, orig = rec.unpack_from(rh)
            if incl > MAX_RECORD or (incl > sane and (incl > orig or incl > PCAP_LARGE_RECORD)):
                self._damage(
                    f"record {number + 1} claims {incl} captured bytes (snaplen {snaplen}): corrupt record header",
                    at,
                )
                return
            data = self._read(fh, incl)
            if len(data) < incl:
                self._damage(f"file ends inside record {number + 1} ({len(data)} of {incl} bytes)", at)
                return
            number += 1
            self.status.frames = number
            yield Frame(number, sec * 1_000_000_000 + frac * ts_scale, incl, max(orig, incl), linktype, data)

    # -- pcapng -----------------------------------------------------------------------------
    def _pcapng(self, fh: BinaryIO) -> Iterator[Frame]:
        endian = "<"
        interfaces: list[_Interface] = []
        number = 0
        self.status.linktypes = {}
        while True:
            at = self.status.bytes_read
            head = self._read(fh, 8)
            if not head:
                return
            if len(head) < 8:
                self._damage(f"file ends inside a block header ({len(head)} of 8 bytes)", at)
                return
            if head[:4] == PCAPNG_SHB:
                bom = self._read(fh, 4)
                if len(bom) < 4:
                    self._damage("file ends inside a section header", at)
                    return
                if bom == b"\x4d\x3c\x2b\x1a":
                    endian = "<"
                elif bom == b"\x1a\x2b\x3c\x4d":
                    endian = ">"
                else:
                    self._damage(f"section header with bad byte-order magic {bom.hex()}", at)
                    return
                (blen,) = struct.unpack(endian + "I", head[4:])
                if blen < 28 or blen % 4 or blen > MAX_RECORD:
                    self._damage(f"section header block length {blen} is invalid", at)
                    return
                rest = self._read(fh, blen - 12)
                if len(rest) < blen - 12:
                    self._damage("file ends inside a section header", at)
                    return
                if struct.unpack(endian + "I", rest[-4:])[0] != blen:
                    self._damage(f"section header block length {blen} does not match its trailer", at)
                    return
                interfaces = []  # interface ids restart in each section
                continue
            btype, blen = struct.unpack(endian + "II", head)
            if blen < 12 or blen % 4 or blen > MAX_RECORD:
                self._damage(f"block of type {btype:#x} has invalid length {blen}", at)
                return
            body = self._read(fh, blen - 8)
            if len(body) < blen - 8:
                self._damage(f"file ends inside a block of type {btype:#x} ({len(body) + 8} of {blen} bytes)", at)
                return
            if struct.unpack(endian + "I", body[-4:])[0] != blen:
                self._damage(f"block of type {btype:#x} length {blen} does not match its trailer", at)
                return
            body = body[:-4]
            if btype == IDB:
                if len(body) < 8:
                    self._damage("interface description block too short", at)
                    return
                linktype, _res, snap = struct.unpack(endian + "HHI", body[:8])
                # Interface ids restart per section; Frame.interface numbers them on across sections.
                number_all = len(self.status.linktypes)
                interfaces.append(_interface(number_all, linktype, snap, body[8:], endian))
                self.status.linktypes[number_all] = linktype
            elif btype in (EPB, OBSOLETE_PB):
                if len(body) < 20:
                    self._damage("packet block too short", at)
                    return
                if btype == EPB:
                    ifid, ts_hi, ts_lo, cap, orig = struct.unpack(endian + "IIIII", body[:20])
                else:
                    ifid, _drops, ts_hi, ts_lo, cap, orig = struct.unpack(endian + "HHIIII", body[:20])
                if ifid >= len(interfaces):
                    self._damage(f"packet block for undeclared interface {ifid}", at)
                    return
                if cap > len(body) - 20:
                    self._damage(f"packet block claims {cap} captured bytes in a {blen}-byte block", at)
                    return
                iface = interfaces[ifid]
                number += 1
                self.status.frames = number
                yield Frame(
                    number,
                    iface.ts_ns(ts_hi, ts_lo),
                    cap,
                    max(orig, cap),
                    iface.linktype,
                    body[20 : 20 + cap],
                    iface.number,
                )
            elif btype == SPB:
                if not interfaces or len(body) < 4:
                    self._damage("simple packet block without an interface", at)
                    return
                (orig,) = struct.unpack(endian + "I", body[:4])
                iface = interfaces[0]
                cap = min(orig, len(body) - 4, iface.snaplen or orig)
                number += 1
                self.status.frames = number
                yield Frame(number, 0, cap, orig, iface.linktype, body[4 : 4 + cap], iface.number)
            # every other block type (name resolution, statistics, custom…) is skipped


@dataclass(frozen=True, slots=True)
class _Interface:
    """A pcapng interface: its link type, timestamp clock and its number across sections."""

    number: int
    linktype: int
    snaplen: int
    units_per_sec: int
    offset_sec: int

    def ts_ns(self, hi: int, lo: int) -> int:
        return ((hi << 32) | lo) * 1_000_000_000 // self.units_per_sec + self.offset_sec * 1_000_000_000


def _interface(number: int, linktype: int, snaplen: int, options: bytes, endian: str) -> _Interface:
    """Read the options of an IDB that change timestamps: if_tsresol (9) and if_tsoffset (14)."""
    units, offset = 1_000_000, 0  # default: microseconds, no offset
    pos = 0
    while pos + 4 <= len(options):
        code, length = struct.unpack(endian + "HH", options[pos : pos + 4])
        value = options[pos + 4 : pos + 4 + length]
        if code == 0 or len(value) < length:
            break
        if code == 9 and length >= 1:
            exp = value[0] & 0x7F
            # Cap the exponent: a hostile 10**127 is harmless but slow to divide by per frame.
            units = 2 ** min(exp, 64) if value[0] & 0x80 else 10 ** min(exp, 19)
        elif code == 14 and length >= 8:
            (offset,) = struct.unpack(endian + "q", value[:8])
        pos += 4 + ((length + 3) & ~3)
    return _Interface(number, linktype, snaplen, units, offset)


class _GzipStream:
    """Decompress gzip (several members too) on the fly, up to the last byte a cut file holds.

    ``gzip.GzipFile`` discards the block it was decompressing when the file ends early, so a
    cut ``.pcap.gz`` would lose frames that are really there; here every decompressed byte is
    delivered before the cut is reported (as EOFError).
    """

    CHUNK = 1 << 16

    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw
        self._z = zlib.decompressobj(wbits=31)
        self._buf = bytearray()
        self._pos = 0
        self._eof = False
        self._cut = False

    @property
    def cut(self) -> bool:
        """The compressed file ended inside a gzip member (known once its end was reached)."""
        return self._cut

    def peek(self, n: int) -> bytes:
        while len(self._buf) - self._pos < n and not self._eof:
            self._fill()
        return bytes(self._buf[self._pos : self._pos + n])

    def read(self, n: int) -> bytes:
        out = self.peek(n)
        self._pos += len(out)
        if self._pos >= self.CHUNK:  # drop consumed bytes now and then, not on every read
            del self._buf[: self._pos]
            self._pos = 0
        if len(out) < n and self._cut:
            self._cut = False  # reported once: the reader records the damage and stops
            raise EOFError("compressed file ends before the end of its gzip stream")
        return out

    def _fill(self) -> None:
        chunk = self._raw.read(self.CHUNK)
        if not chunk:
            self._eof = True
            self._cut = not self._z.eof
            return
        while chunk:
            if self._z.eof:
                if not chunk.strip(b"\0"):  # zero padding after the last member
                    return
                self._z = zlib.decompressobj(wbits=31)  # concatenated members (cat a.gz b.gz)
            self._buf += self._z.decompress(chunk)
            chunk = self._z.unused_data

    def close(self) -> None:
        self._raw.close()


def open_capture(path: str | Path) -> CaptureFile:
    return CaptureFile(path)
