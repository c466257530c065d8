"""Read pcap / pcapng files in large chunks: one byte buffer plus per-frame numpy arrays.

The fast path never builds a Python object per frame.  A chunk of the file is
read into one reusable buffer; a tight loop walks the record (or block) headers
and notes where each record starts, and every other per-frame value (lengths,
timestamps, interface) is then gathered with numpy from those positions.

Frames, numbering, timestamps and damage reports are exactly those of
:class:`ipsotrace.sources.CaptureFile` (the file is opened by it, so format
detection, gzip and the error messages are shared); a test checks it frame by
frame.
"""

from __future__ import annotations

import importlib
import mmap
import os
import stat
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, cast

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ipsotrace.sources.base import SourceStatus
from ipsotrace.sources.capfile import (
    EPB,
    IDB,
    MAX_RECORD,
    OBSOLETE_PB,
    PCAP_LARGE_RECORD,
    PCAP_MAGICS,
    PCAP_SANE_RECORD,
    PCAPNG_SHB,
    SPB,
    CaptureFile,
    _Interface,
    _interface,
)

#: Zero-cost slack after the data so fixed-width header windows never run past the buffer.
PAD = 512
DEFAULT_CHUNK = 8 << 20

_I64 = np.int64
_TS_MAX, _TS_MIN = (1 << 63) - 1, -(1 << 63)
#: The scalar reader's words for a gzip stream cut short (its EOFError).
CUT_GZIP = "compressed file ends before the end of its gzip stream"


@dataclass(slots=True)
class Batch:
    """Frames read from one chunk of a capture.

    ``data`` is the reader's buffer: it is reused for the next chunk, so a batch
    is valid only until the next one is requested.  Frame ``i`` occupies
    ``data[offset[i] : offset[i] + caplen[i]]``; at least :data:`PAD` bytes
    follow the last frame.
    """

    data: np.ndarray  # uint8
    offset: np.ndarray  # int64
    caplen: np.ndarray  # int64
    wirelen: np.ndarray  # int64
    ts_ns: np.ndarray  # int64
    linktype: np.ndarray  # int64
    interface: np.ndarray  # int64
    first_frame: int  # 1-based number of frame 0

    def __len__(self) -> int:
        return int(self.offset.shape[0])

    @property
    def frame(self) -> np.ndarray:
        return np.arange(self.first_frame, self.first_frame + len(self), dtype=_I64)

    def frame_bytes(self, i: int) -> bytes:
        start = int(self.offset[i])
        return self.data[start : start + int(self.caplen[i])].tobytes()

    def take(self, idx: np.ndarray) -> dict[str, np.ndarray]:
        """Per-frame metadata of the frames ``idx`` (positions in this batch)."""
        return {
            "frame": idx.astype(_I64) + self.first_frame,
            "ts_ns": self.ts_ns[idx],
            "caplen": self.caplen[idx],
            "wirelen": self.wirelen[idx],
            "linktype": self.linktype[idx],
            "interface": self.interface[idx],
        }


def _view(buf: np.ndarray, fmt: str) -> np.ndarray:
    """An overlapping view reading one ``fmt`` value (e.g. ``<u4``) at every byte position."""
    size = np.dtype(fmt).itemsize
    return np.ndarray(shape=(buf.shape[0] - size + 1,), dtype=fmt, buffer=buf, offset=0, strides=(1,))


class BatchReader:
    """Iterate a capture as :class:`Batch` es; :attr:`status` as for ``CaptureFile``."""

    def __init__(
        self,
        path: str | Path,
        chunk_bytes: int = DEFAULT_CHUNK,
        *,
        start: int | None = None,
        stop: int | None = None,
        first_frame: int = 1,
    ) -> None:
        """``start``/``stop``: read only the pcap records from byte ``start`` (a record boundary, see
        :func:`pcap_split`) up to ``stop``, numbering frames from ``first_frame``."""
        self._start, self._stop = start, stop
        with CaptureFile(path) as probe:  # raises CaptureError exactly as the scalar reader does
            self.status: SourceStatus = probe.status
        self._raw: BinaryIO = Path(path).open("rb")  # noqa: SIM115 (closed by close() / __exit__)
        gz = self.status.format.startswith("gzip")
        self._fh: _Plain | _Inflate = _Inflate(self._raw) if gz else _Plain(self._raw)
        self._cap = max(4096, chunk_bytes)
        self._buf = np.empty(self._cap + PAD, dtype=np.uint8)
        # Plain files are mapped, not copied: only the header bytes the fast path reads are ever
        # touched.  Each chunk is its own mapping, so resident memory stays at a chunk or two.
        self._size: int | None = None
        if not gz:
            try:
                size = os.fstat(self._raw.fileno()).st_size
                if stat.S_ISREG(os.fstat(self._raw.fileno()).st_mode) and size > 0:
                    self._size = size
            except OSError:
                self._size = None
        self._base = 0  # file offset of self._buf[0]
        self._have = 0  # valid bytes in the buffer
        self._eof = False
        self._number = first_frame - 1
        self._space = _Space()

    def close(self) -> None:
        self._raw.close()

    def __enter__(self) -> BatchReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __iter__(self) -> Iterator[Batch]:
        reader = self._pcapng if self.status.format.endswith("pcapng") else self._pcap
        try:
            yield from reader()
        except (OSError, EOFError, ValueError) as exc:  # as CaptureFile: gzip cut short, I/O error
            self._damage(f"read error: {exc}", self._base + self._have)

    # -- buffer management -------------------------------------------------------------------
    def _damage(self, why: str, at: int) -> None:
        if self.status.damage is None:
            self.status.damage = why
            self.status.damage_offset = at

    def _fill(self, keep_from: int, need: int = 0) -> int:
        """Drop bytes before ``keep_from``, then read more; return the new position of ``keep_from``.

        ``need`` is the number of bytes from ``keep_from`` that must fit (a large record).
        """
        if self._size is not None:
            return self._map(keep_from, need)
        tail = self._have - keep_from
        if keep_from:
            self._buf[:tail] = self._buf[keep_from : self._have]
            self._base += keep_from
            self._have = tail
        if need > self._cap:
            grown = np.empty(need + PAD, dtype=np.uint8)
            grown[:tail] = self._buf[:tail]
            self._buf, self._cap = grown, need
        if not self._eof:
            while self._have < self._cap:
                n = self._fh.readinto(memoryview(cast(Any, self._buf))[self._have : self._cap])
                if not n:
                    self._eof = True
                    break
                self._have += n
                if self._have >= self._cap // 2:
                    break
        self.status.bytes_read = self._base + self._have
        return 0

    def _map(self, keep_from: int, need: int) -> int:
        assert self._size is not None
        start = self._base + keep_from
        aligned = start - start % mmap.ALLOCATIONGRANULARITY
        length = min(max(self._cap, need + PAD) + (start - aligned), self._size - aligned)
        if length <= 0:
            buf, have = np.zeros(PAD, dtype=np.uint8), 0
            self._eof = True
        else:
            # MAP_POPULATE maps the chunk's pages in one go instead of one page fault each
            flags = mmap.MAP_SHARED | mmap.MAP_POPULATE
            mm = mmap.mmap(self._raw.fileno(), length, flags=flags, prot=mmap.PROT_READ, offset=aligned)
            view = np.frombuffer(mm, dtype=np.uint8)
            if aligned + length >= self._size:
                # the file's last chunk: copied, so the last frames' header windows have padding
                buf = np.empty(length + PAD, dtype=np.uint8)
                buf[:length] = view
                have = length
                self._eof = True
                del view
                mm.close()
            else:
                buf, have = view, length - PAD  # the PAD bytes after it are real file bytes
        self._buf, self._base, self._have = buf, aligned, have
        self.status.bytes_read = aligned + have
        return start - aligned

    # -- classic pcap ----------------------------------------------------------------------------
    def _pcap(self) -> Iterator[Batch]:
        self._fill(0, 24)
        if self._have < 24:
            self._damage(f"file header cut short ({self._have} of 24 bytes)", 0)
            return
        hdr = self._buf[:24].tobytes()
        endian, ts_scale, rec = PCAP_MAGICS[hdr[:4]]
        _vmaj, _vmin, _zone, _sigfigs, snaplen, network = struct.unpack(endian + "HHiIII", hdr[4:])
        linktype = network & 0x0FFFFFFF
        self.status.linktypes = {0: linktype}
        incl_at = struct.Struct(endian + "I").unpack_from
        sane = max(snaplen, PCAP_SANE_RECORD)

        def corrupt(incl: int, orig: int) -> bool:
            return incl > MAX_RECORD or (incl > sane and (incl > orig or incl > PCAP_LARGE_RECORD))

        pos = 24
        if self._start is not None and self._start > 24:
            pos = self._fill(self._start - self._base, rec)
        while True:
            buf: Any = self._buf  # struct reads it through the buffer protocol
            have = self._have
            if self._stop is not None and self._base + have >= self._stop:
                have = self._stop - self._base  # records from ``stop`` on belong to the next part
                if pos >= have:
                    return
            lim = have - rec
            # record lengths chain the offsets; a corrupt length is caught below (vectorized)
            # before anything after it is used
            offs, rh, p = _walk_pcap(buf, pos, have, rec, endian == ">", self._space)
            stop = False
            if offs.size:
                incl, orig = rh[:, 2].copy(), rh[:, 3]  # (rh may be the reader's scratch space)
                bad = (incl > MAX_RECORD) | ((incl > sane) & ((incl > orig) | (incl > PCAP_LARGE_RECORD)))
                if bad.any():
                    k = int(np.argmax(bad))
                    why = f"record {self._number + k + 1} claims {int(incl[k])} captured bytes (snaplen {snaplen})"
                    self._damage(why + ": corrupt record header", self._base + int(offs[k]))
                    offs, incl, orig = offs[:k], incl[:k], orig[:k]
                    stop = True
                if offs.size:
                    rh = rh[: offs.size]
                    ts = rh[:, 0] * 1_000_000_000 + rh[:, 1] * ts_scale
                    n = offs.size
                    batch = Batch(
                        buf,
                        offs + rec,
                        incl,
                        np.maximum(orig, incl),
                        ts,
                        np.full(n, linktype, dtype=_I64),
                        np.zeros(n, dtype=_I64),
                        self._number + 1,
                    )
                    self._number += n
                    self.status.frames = self._number
                    yield batch
            if stop:
                return
            need = rec
            if p <= lim:  # the first record not walked: is its header sane before we read on?
                incl_p = incl_at(buf, p + 8)[0]
                if corrupt(incl_p, incl_at(buf, p + 12)[0]):
                    why = f"record {self._number + 1} claims {incl_p} captured bytes (snaplen {snaplen})"
                    self._damage(why + ": corrupt record header", self._base + p)
                    return
                need = rec + incl_p
            if self._stop is not None and self._base + p >= self._stop:
                return
            if self._eof:
                left = have - p
                if self._fh.cut:  # as the scalar reader: the read that hit the cut fails
                    self._damage(f"read error: {CUT_GZIP}", self._base + p + (rec if left >= rec else 0))
                    return
                if left == 0:
                    return
                if left < rec:
                    why = f"file ends inside the header of record {self._number + 1} ({left} of {rec} bytes)"
                else:
                    why = f"file ends inside record {self._number + 1} ({left - rec} of {need - rec} bytes)"
                self._damage(why, self._base + p)
                return
            pos = self._fill(p, need)

    # -- pcapng ------------------------------------------------------------------------------------
    def _pcapng(self) -> Iterator[Batch]:
        endian = "<"
        interfaces: list[_Interface] = []  # of the current section
        self.status.linktypes = {}
        self._fill(0)
        pos = 0
        while True:
            buf: Any = self._buf  # struct reads it through the buffer protocol
            have = self._have
            head2 = struct.Struct(endian + "II").unpack_from
            # packet block starts: out[:n] (every block takes at least 12 bytes, so they all fit)
            out = self._space.offsets(max(0, have - pos) // 12 + 1)
            n = 0
            # interfaces declared so far, from packet index i on: (i, count)
            if_marks: list[tuple[int, int]] = [(0, len(interfaces))]
            # simple packet blocks, read in Python: (index, data offset, caplen, wirelen, interface)
            simple: list[tuple[int, int, int, int, _Interface]] = []
            p = pos
            need = 8
            section_break = False
            damage: str | None = None
            while p + 8 <= have:
                # a run of whole packet blocks, checked vectorized after the walk
                k, p = _walk_pcapng(buf, p, have, endian, out, n)
                n += k
                if p + 8 > have:
                    break
                btype, blen = head2(buf, p)
                if btype in (EPB, OBSOLETE_PB):  # the run stopped here: a bad length, or cut by the chunk's end
                    if blen < 12 or blen & 3 or blen > MAX_RECORD:
                        damage = f"block of type {btype:#x} has invalid length {blen}"
                    else:
                        need = blen
                    break
                if buf[p : p + 4].tobytes() == PCAPNG_SHB:
                    if n:
                        section_break = True  # new byte order and interfaces: close this batch first
                        break
                    shb = self._section(buf, p, have)
                    if isinstance(shb, str):
                        damage = shb
                        break
                    if isinstance(shb, int):
                        need = shb
                        break
                    endian, blen = shb
                    head2 = struct.Struct(endian + "II").unpack_from
                    interfaces = []
                    if_marks = [(0, 0)]
                    p += blen
                    continue
                if blen < 12 or blen & 3 or blen > MAX_RECORD:
                    damage = f"block of type {btype:#x} has invalid length {blen}"
                    break
                if p + blen > have:
                    need = blen
                    break
                if struct.unpack_from(endian + "I", buf, p + blen - 4)[0] != blen:
                    damage = f"block of type {btype:#x} length {blen} does not match its trailer"
                    break
                if btype == IDB:
                    if blen - 12 < 8:
                        damage = "interface description block too short"
                        break
                    lt, _res, snap = struct.unpack_from(endian + "HHI", buf, p + 8)
                    number_all = len(self.status.linktypes)
                    opts = buf[p + 16 : p + blen - 4].tobytes()
                    interfaces.append(_interface(number_all, lt, snap, opts, endian))
                    self.status.linktypes[number_all] = lt
                    if_marks.append((n, len(interfaces)))
                elif btype == SPB:
                    if not interfaces or blen - 12 < 4:
                        damage = "simple packet block without an interface"
                        break
                    (orig,) = struct.unpack_from(endian + "I", buf, p + 8)
                    iface = interfaces[0]
                    cap = min(orig, blen - 16, iface.snaplen or orig)
                    simple.append((n, p + 12, cap, orig, iface))
                    out[n] = p
                    n += 1
                p += blen
            batch, cut = self._packet_blocks(buf, out[:n], simple, if_marks, interfaces, endian)
            if batch is not None:
                yield batch
            if cut is not None:
                self._damage(*cut)
                return
            if damage is not None:
                self._damage(damage, self._base + p)
                return
            if section_break:
                pos = p
                continue
            if self._eof:
                left = have - p
                if self._fh.cut:
                    at = p + (0 if left < 8 else 12 if left >= 12 and _is_shb(buf, p) else 8)
                    self._damage(f"read error: {CUT_GZIP}", self._base + at)
                    return
                if left == 0:
                    return
                if left < 8:
                    why = f"file ends inside a block header ({left} of 8 bytes)"
                elif buf[p : p + 4].tobytes() == PCAPNG_SHB:
                    why = "file ends inside a section header"
                else:
                    btype, blen = head2(buf, p)
                    why = f"file ends inside a block of type {btype:#x} ({left} of {blen} bytes)"
                self._damage(why, self._base + p)
                return
            pos = self._fill(p, need)

    @staticmethod
    def _section(buf: Any, p: int, have: int) -> tuple[str, int] | str | int:
        """A section header at ``p``: (byte order, length), a damage message, or the bytes still needed."""
        if p + 12 > have:
            return 12
        bom = buf[p + 8 : p + 12].tobytes()
        if bom == b"\x4d\x3c\x2b\x1a":
            endian = "<"
        elif bom == b"\x1a\x2b\x3c\x4d":
            endian = ">"
        else:
            return f"section header with bad byte-order magic {bom.hex()}"
        (blen,) = struct.unpack_from(endian + "I", buf, p + 4)
        if blen < 28 or blen % 4 or blen > MAX_RECORD:
            return f"section header block length {blen} is invalid"
        if p + blen > have:
            return blen
        if struct.unpack_from(endian + "I", buf, p + blen - 4)[0] != blen:
            return f"section header block length {blen} does not match its trailer"
        return endian, blen

    def _packet_blocks(
        self,
        buf: np.ndarray,
        offs: np.ndarray,
        simple: list[tuple[int, int, int, int, _Interface]],
        if_marks: list[tuple[int, int]],
        interfaces: list[_Interface],
        endian: str,
    ) -> tuple[Batch | None, tuple[str, int] | None]:
        """Vectorized checks and fields of the enhanced (and obsolete) packet blocks of one walk."""
        n = offs.size
        if n == 0:
            return None, None
        u32v = _view(buf, "<u4" if endian == "<" else ">u4")
        u16v = _view(buf, "<u2" if endian == "<" else ">u2")
        btype = u32v[offs].astype(_I64)
        blen = u32v[offs + 4].astype(_I64)
        old = btype == OBSOLETE_PB
        ifid = np.where(old, u16v[offs + 8], u32v[offs + 8]).astype(_I64)
        cap = u32v[offs + 20].astype(_I64)
        orig = u32v[offs + 24].astype(_I64)
        n_if = np.zeros(n, dtype=_I64)
        for first, count in if_marks:
            n_if[first:] = count
        pkt = np.ones(n, dtype=bool)
        for rec in simple:
            pkt[rec[0]] = False
        trailer = u32v[offs + blen - 4].astype(_I64) != blen
        short = ~trailer & (blen < 32)
        undeclared = ~trailer & ~short & (ifid >= n_if)
        overlong = ~trailer & ~short & ~undeclared & (cap > blen - 32)
        bad = pkt & (trailer | short | undeclared | overlong)
        cut: tuple[str, int] | None = None
        if bad.any():
            k = int(np.argmax(bad))
            if trailer[k]:
                why = f"block of type {int(btype[k]):#x} length {int(blen[k])} does not match its trailer"
            elif short[k]:
                why = "packet block too short"
            elif undeclared[k]:
                why = f"packet block for undeclared interface {int(ifid[k])}"
            else:
                why = f"packet block claims {int(cap[k])} captured bytes in a {int(blen[k])}-byte block"
            cut = (why, self._base + int(offs[k]))
            n = k
            offs, ifid, cap, orig, pkt = offs[:k], ifid[:k], cap[:k], orig[:k], pkt[:k]
        if n == 0:
            return None, cut
        safe_if = np.where(pkt, np.minimum(ifid, max(0, len(interfaces) - 1)), 0)
        lt_of = np.array([i.linktype for i in interfaces] or [0], dtype=_I64)
        num_of = np.array([i.number for i in interfaces] or [0], dtype=_I64)
        hi, lo = u32v[offs + 12].astype(np.uint64), u32v[offs + 16].astype(np.uint64)
        ticks = np.where(pkt, (hi << np.uint64(32)) | lo, np.uint64(0))  # simple blocks carry no timestamp
        ts = _ticks_to_ns(ticks, safe_if, interfaces)
        data_off = offs + 28
        wirelen = np.maximum(orig, cap)
        linktype = lt_of[safe_if]
        number = num_of[safe_if]
        for i, d_off, d_cap, d_orig, iface in simple:
            if i >= n:
                break
            data_off[i], cap[i], wirelen[i], ts[i] = d_off, d_cap, d_orig, 0
            linktype[i], number[i] = iface.linktype, iface.number
        batch = Batch(buf, data_off, cap, wirelen, ts, linktype, number, self._number + 1)
        self._number += n
        self.status.frames = self._number
        return batch, cut


def compiled(name: str) -> Any:
    """The compiled helper module ``ipsotrace.fast.<name>``, or None: not built, or IPSOTRACE_NO_EXT=1."""
    if os.environ.get("IPSOTRACE_NO_EXT", "") not in ("", "0"):
        return None
    try:
        return importlib.import_module(f"ipsotrace.fast.{name}")
    except ImportError:
        return None


def _walker() -> Any:
    """The compiled walks (ipsotrace/fast/_walk.c), or None: not built, or IPSOTRACE_NO_EXT=1."""
    return compiled("_walk")


#: Tests set it to None to run the pure-Python loops; both give the same offsets and stop.
WALK: Any = _walker()


class _Space:
    """Output arrays of the walks, kept for the next chunk.

    They are sized for the worst case (a chunk of empty records): allocating that afresh for every
    chunk costs more than the walk (large arrays come as fresh huge pages, zeroed by the kernel).
    Their contents are valid until the next walk.
    """

    def __init__(self) -> None:
        self._offs = np.empty(0, dtype=_I64)
        self._fields = np.empty((0, 4), dtype=_I64)

    def offsets(self, room: int) -> np.ndarray:
        if self._offs.shape[0] < room:
            self._offs = np.empty(room, dtype=_I64)
        return self._offs[:room]

    def fields(self, room: int) -> np.ndarray:
        if self._fields.shape[0] < room:
            self._fields = np.empty((room, 4), dtype=_I64)
        return self._fields[:room]


def _walk_pcap(
    buf: Any, pos: int, have: int, rec: int, big_endian: bool, space: _Space
) -> tuple[np.ndarray, np.ndarray, int]:
    """The whole records from ``pos`` within ``buf[:have]``: start offsets, their four header words
    (seconds, fraction, captured and original length: ``(n, 4)`` int64), and where the walk stopped.

    The arrays may be ``space``'s: valid until its next use."""
    if WALK is not None:
        room = max(0, have - pos) // rec + 1  # every record takes at least rec bytes
        out = space.offsets(room)
        fields = space.fields(room)
        n, p = WALK.pcap(buf, pos, have, rec, big_endian, out, fields)
        return out[:n], fields[:n], p
    # The one per-record Python loop of the fast path
    incl_at = struct.Struct((">" if big_endian else "<") + "I").unpack_from
    starts: list[int] = []
    add = starts.append
    p, lim = pos, have - rec
    while p <= lim:
        q = p + rec + incl_at(buf, p + 8)[0]
        if q > have:
            break
        add(p)
        p = q
    offs = np.array(starts, dtype=_I64)
    if not starts:
        return offs, np.zeros((0, 4), dtype=_I64), p
    # the four header words of every record in one gather of 16-byte rows
    u32 = ">u4" if big_endian else "<u4"
    return offs, sliding_window_view(buf, 16)[offs].view(u32).astype(_I64), p


def windows(data: np.ndarray, offsets: np.ndarray, width: int) -> np.ndarray:
    """``(n, width)`` uint8: the ``width`` bytes of ``data`` from every offset (all must fit)."""
    if WALK is not None:
        offs = np.ascontiguousarray(offsets, dtype=_I64)
        out = np.empty((offs.shape[0], width), dtype=np.uint8)
        WALK.windows(data, offs, width, out)
        return out
    return sliding_window_view(data, width)[offsets]


def _walk_pcapng(buf: Any, pos: int, have: int, endian: str, out: np.ndarray, n: int) -> tuple[int, int]:
    """Note the whole enhanced/obsolete packet blocks with sane lengths from ``pos`` in ``out[n:]``.

    Returns how many, and the offset of the first block not taken (another type, a bad length,
    or not all within ``buf[:have]``): the caller looks at that one.
    """
    if WALK is not None:
        k, p = WALK.pcapng(buf, pos, have, endian == ">", MAX_RECORD, out[n:])
        return int(k), int(p)
    head2 = struct.Struct(endian + "II").unpack_from
    run: list[int] = []
    add = run.append
    p = pos
    while p + 8 <= have:
        btype, blen = head2(buf, p)
        if (btype != EPB and btype != OBSOLETE_PB) or blen < 12 or blen & 3 or blen > MAX_RECORD or p + blen > have:
            break
        add(p)
        p += blen
    out[n : n + len(run)] = run
    return len(run), p


def _ticks_to_ns(ticks: np.ndarray, ifid: np.ndarray, interfaces: list[_Interface]) -> np.ndarray:
    """``_Interface.ts_ns`` for every packet, exactly as Python integers compute it."""
    out = np.zeros(ticks.shape[0], dtype=_I64)
    billion = np.uint64(1_000_000_000)
    for i, iface in enumerate(interfaces):
        sel = ifid == i
        if not sel.any():
            continue
        t = ticks[sel]
        ups = iface.units_per_sec
        base = iface.offset_sec * 1_000_000_000
        if ups <= 1_000_000_000 and int(t.max()) // ups < 9_000_000_000 and abs(base) < 1 << 62:
            u = np.uint64(ups)
            ns = ((t // u) * billion + (t % u) * billion // u).astype(_I64)
            out[sel] = ns + np.int64(base)
        else:  # finer than nanoseconds or absurd values: keep Python's exact integers
            # beyond the year 2262 int64 nanoseconds saturate (the scalar reader keeps Python ints)
            ns_list = [min(max(int(x) * 1_000_000_000 // ups + base, _TS_MIN), _TS_MAX) for x in t.tolist()]
            out[sel] = np.array(ns_list, dtype=_I64)
    return out


def _is_shb(buf: np.ndarray, p: int) -> bool:
    return bool(buf[p : p + 4].tobytes() == PCAPNG_SHB)


class _Plain:
    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw
        self.cut = False

    def readinto(self, out: memoryview) -> int:
        return self._raw.readinto(out)  # type: ignore[attr-defined,no-any-return]


class _Inflate:
    """gzip (several members, zero padding after the last) decompressed straight into our buffer.

    Like the scalar reader, every byte before a cut is delivered; :attr:`cut` tells afterwards
    that the compressed file ended inside a member.
    """

    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw
        self._z = zlib.decompressobj(wbits=31)
        self._pending = b""
        self._done = False
        self.cut = False

    def readinto(self, out: memoryview) -> int:
        while not self._pending and not self._done:
            self._more()
        n = min(len(out), len(self._pending))
        out[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n

    def _more(self) -> None:
        chunk = self._raw.read(1 << 20)
        if not chunk:
            self._done = True
            self.cut = not self._z.eof
            return
        parts = []
        while chunk:
            if self._z.eof:
                if not chunk.strip(b"\0"):
                    break
                self._z = zlib.decompressobj(wbits=31)
            parts.append(self._z.decompress(chunk))
            chunk = self._z.unused_data
        self._pending += b"".join(parts)


def pcap_split(path: str | Path, parts: int) -> list[tuple[int, int]] | None:
    """Record boundaries that cut a plain pcap file into ``parts`` parts of about equal size.

    Returns ``[(byte offset, number of its first frame), …]`` (the first is the first record), or
    None when the file cannot be split (not a plain pcap, too small, damaged before a cut).
    """
    with CaptureFile(path) as probe:
        if probe.status.format != "pcap":
            return None
    size = os.path.getsize(path)
    if parts < 2 or size < (1 << 20):
        return None
    with open(path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        endian, _scale, rec = PCAP_MAGICS[mm[:4]]
        snaplen = struct.unpack_from(endian + "I", mm, 16)[0]
        sane = max(snaplen, PCAP_SANE_RECORD)
        incl_at = struct.Struct(endian + "I").unpack_from
        targets = [size * k // parts for k in range(1, parts)]
        out = [(24, 1)]
        pos, number = 24, 1
        lim = size - rec
        for target in targets:
            # walk the record chain (its lengths are the only way to find boundaries)
            while pos <= lim and pos < target:
                incl = incl_at(mm, pos + 8)[0]
                if incl > sane and (incl > MAX_RECORD or incl > incl_at(mm, pos + 12)[0] or incl > PCAP_LARGE_RECORD):
                    return None  # damaged: read it in one piece, so the damage is reported as usual
                pos += rec + incl
                number += 1
            if pos > lim:
                break
            out.append((pos, number))
        return out if len(out) > 1 else None


def read_batches(path: str | Path, chunk_bytes: int = DEFAULT_CHUNK) -> Iterator[Batch]:
    """Convenience generator; use :class:`BatchReader` to see the status afterwards."""
    with BatchReader(path, chunk_bytes) as reader:
        yield from reader
