"""IP reassembly between dissect and correlate: fragments in capture order, whole datagrams out.

Core, no I/O.  :class:`Reassembler` holds fragments per datagram, keyed like the Linux
kernel and tshark — IPv4 (src, dst, protocol, id), IPv6 (src, dst, fragment id) — plus the
identity of the tunnels around the fragmented header, so that tenants whose inner packets
share addresses and IDs in different VNIs are never mixed.  Link headers and the capture
interface are not part of the key (one datagram seen on two interfaces is one datagram).

Memory is bounded: at most ``max_datagrams`` datagrams and ``max_bytes`` payload bytes in
flight (the oldest is evicted first, never the one a fragment is being added to), and a
datagram not completed within ``timeout_ns`` of capture time after its first fragment (Linux
``ipfrag_time``, 30 s) is dropped.  Datagrams
never completed — timeout, eviction, end of capture, invalid — are counted and the first
:data:`KEEP_INCOMPLETE` of them kept with their frame numbers: a tunnel that drops
fragments shows there.

Overlaps keep the bytes that arrived first (the first-wins policy of BSD and of Linux before
4.19; Linux 4.19+ and RFC 5722 receivers drop such datagrams, which the anomaly says).
A fragment that repeats bytes of a datagram completed less than ``timeout_ns`` earlier (a
capture on two interfaces, a retransmitted fragment) is a duplicate, not a new datagram.

:class:`FragmentStage` plugs the reassembler into the decode loop of
:func:`ipsotrace.dissectors.registry.dissect_frame` (docs/dissect-schema.md, "Reassembly").
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field, fields
from typing import Generic, TypeVar

from ipsotrace.dissectors import ipv6
from ipsotrace.dissectors.base import Decoded, Next
from ipsotrace.dissectors.registry import Resume
from ipsotrace.records import Anomaly, FieldValue, Layer, Packet

DEFAULT_TIMEOUT_NS = 30 * 1_000_000_000
DEFAULT_MAX_DATAGRAMS = 8192
DEFAULT_MAX_BYTES = 32 * 1024 * 1024
KEEP_INCOMPLETE = 100  # incomplete datagrams kept with their frames (all are counted)
KEEP_FRAMES = 16  # frame numbers kept per incomplete datagram

#: (protocol, tunnel ID, src, dst) of each header around the fragmented one: IP headers give
#: addresses, tunnel headers their ID
Context = tuple[tuple[str, int | None, str | None, str | None], ...]

H = TypeVar("H")


@dataclass(frozen=True, slots=True)
class DatagramKey:
    version: int  # 4 or 6
    src: str
    dst: str
    proto: int  # IPv4 protocol; -1 for IPv6, whose key has none (like the kernel's)
    ident: int
    context: Context = ()

    def describe(self) -> str:
        ip = f"IPv{self.version} {self.src} -> {self.dst}"
        ip += f" proto {self.proto} id {self.ident}" if self.version == 4 else f" frag id {self.ident}"
        inside = [f"{p} {tid}" for p, tid, _, _ in self.context if tid is not None]
        outer = [f"{s} -> {d}" for p, _, s, d in self.context if p in ("ipv4", "ipv6")]
        if inside or outer:
            ip += " inside " + ", ".join(inside + [f"({o})" for o in outer[-1:]])
        return ip

    def to_json(self) -> dict[str, FieldValue]:
        out: dict[str, FieldValue] = {"ip": self.version, "src": self.src, "dst": self.dst, "id": self.ident}
        if self.version == 4:
            out["protocol"] = self.proto
        if self.context:
            out["inside"] = [
                {k: v for k, v in (("proto", p), ("tunnel_id", t), ("src", s), ("dst", d)) if v is not None}
                for p, t, s, d in self.context
            ]
        return out


@dataclass(frozen=True, slots=True)
class Incomplete:
    """A datagram whose fragments never all arrived."""

    key: DatagramKey
    reason: str  # "timeout", "evicted", "end of capture", "invalid"
    first_ts_ns: int
    frames: tuple[int, ...]  # arrival order, at most KEEP_FRAMES
    fragments: int
    bytes: int  # payload bytes received
    expected: int | None  # payload length, known once the last fragment arrived
    has_first: bool  # the fragment at offset 0 (with the transport/tunnel header) arrived

    def to_json(self) -> dict[str, FieldValue]:
        return {
            "key": self.key.to_json(),
            "describe": self.key.describe(),
            "reason": self.reason,
            "first_ts": self.first_ts_ns / 1e9,
            "frames": list(self.frames),
            "fragments": self.fragments,
            "bytes": self.bytes,
            "expected": self.expected,
            "has_first": self.has_first,
        }


@dataclass(slots=True)
class ReassemblyStats:
    fragments: int = 0  # fragments offered
    completed: int = 0  # datagrams reassembled
    incomplete: int = 0  # datagrams never completed, whatever the reason
    incomplete_fragments: int = 0
    incomplete_bytes: int = 0
    timeouts: int = 0
    evictions: int = 0  # dropped to stay within max_datagrams / max_bytes
    invalid: int = 0  # longer than an IP datagram can be, or inconsistent ends
    duplicates: int = 0  # fragments adding no byte
    overlaps: int = 0  # fragments overlapping others in part
    conflicts: int = 0  # overlapping bytes that differ
    peak_datagrams: int = 0
    peak_bytes: int = 0

    def merge(self, o: ReassemblyStats) -> None:
        for fd in fields(self):
            mine, theirs = getattr(self, fd.name), getattr(o, fd.name)
            setattr(self, fd.name, max(mine, theirs) if fd.name.startswith("peak_") else mine + theirs)

    def to_json(self) -> dict[str, FieldValue]:
        return {fd.name: getattr(self, fd.name) for fd in fields(self)}


@dataclass(slots=True)
class Outcome(Generic[H]):
    """What one fragment did: ``state`` is pending, complete, duplicate or dropped."""

    state: str
    anomalies: list[tuple[str, str]] = field(default_factory=list)  # (what, detail)
    payload: bytes = b""
    frames: tuple[int, ...] = ()  # complete: the contributing frames, in fragment offset order
    head: H | None = None  # complete: what the caller attached to the fragment at offset 0


@dataclass(slots=True)
class _Datagram(Generic[H]):
    first_ts: int
    chunks: list[tuple[int, bytes]] = field(default_factory=list)  # (offset, bytes), sorted, disjoint
    have: int = 0  # bytes held
    total: int | None = None  # payload length, from the last fragment
    head: H | None = None
    contributors: list[tuple[int, int]] = field(default_factory=list)  # (offset, frame)
    arrivals: list[int] = field(default_factory=list)  # frame numbers, at most KEEP_FRAMES
    fragments: int = 0


class Reassembler(Generic[H]):
    """Feed fragments in capture order with :meth:`add`; read :attr:`stats` and :attr:`incomplete`."""

    def __init__(
        self,
        *,
        timeout_ns: int = DEFAULT_TIMEOUT_NS,
        max_datagrams: int = DEFAULT_MAX_DATAGRAMS,
        max_bytes: int = DEFAULT_MAX_BYTES,
        keep_incomplete: int = KEEP_INCOMPLETE,
    ) -> None:
        if timeout_ns <= 0 or max_datagrams < 1 or max_bytes < 1:
            raise ValueError("timeout, max_datagrams and max_bytes must be positive")
        self.timeout_ns = timeout_ns
        self.max_datagrams = max_datagrams
        self.max_bytes = max_bytes
        self.keep_incomplete = keep_incomplete
        self.stats = ReassemblyStats()
        self.incomplete: list[Incomplete] = []
        self._pending: OrderedDict[DatagramKey, _Datagram[H]] = OrderedDict()
        # recently completed datagrams: key → (completion time, frame that completed it,
        # {(offset, length): hash of the bytes}) to recognise duplicate fragments
        self._done: OrderedDict[DatagramKey, tuple[int, int, dict[tuple[int, int], int]]] = OrderedDict()
        self._bytes = 0
        self._now = 0

    @property
    def in_flight(self) -> int:
        return len(self._pending)

    @property
    def buffered_bytes(self) -> int:
        return self._bytes

    def expire(self, now_ns: int) -> None:
        """Drop datagrams older than the timeout (capture time; call it once per frame)."""
        self._now = max(self._now, now_ns)
        limit = self._now - self.timeout_ns
        while self._pending:
            key, dg = next(iter(self._pending.items()))
            if dg.first_ts > limit:
                break
            self._drop(key, "timeout")
        while self._done and next(iter(self._done.values()))[0] <= limit:
            self._done.popitem(last=False)

    def flush(self) -> None:
        """End of capture: every datagram still waiting for fragments is incomplete."""
        while self._pending:
            self._drop(next(iter(self._pending)), "end of capture")
        self._done.clear()

    def add(
        self,
        key: DatagramKey,
        frame: int,
        ts_ns: int,
        offset: int,
        data: bytes,
        more: bool,
        limit: int,
        head: H | None = None,
    ) -> Outcome[H]:
        """One fragment: ``offset`` (bytes) and ``data`` of the payload, ``more`` the MF flag,
        ``limit`` the largest payload the datagram may have (65535 minus its header), ``head``
        kept from the fragment at offset 0 and handed back on completion."""
        st = self.stats
        st.fragments += 1
        self.expire(ts_ns)
        end = offset + len(data)
        dg = self._pending.get(key)
        if dg is None:
            done = self._done.get(key)
            if done is not None and done[2].get((offset, len(data))) == hash(data):
                st.duplicates += 1
                return Outcome(
                    "duplicate",
                    [("fragment-duplicate", f"repeats a fragment of the datagram completed in frame {done[1]}")],
                )
            if len(self._pending) >= self.max_datagrams:
                self._drop(next(iter(self._pending)), "evicted")
            dg = self._pending[key] = _Datagram(ts_ns)
        dg.fragments += 1
        if len(dg.arrivals) < KEEP_FRAMES:
            dg.arrivals.append(frame)
        if end > limit:
            self._drop(key, "invalid")
            return Outcome(
                "dropped", [("reassembly-too-long", f"fragment ends at {end}: datagram would exceed 65535 bytes")]
            )
        if not more and dg.total is not None and dg.total != end:
            self._drop(key, "invalid")
            return Outcome(
                "dropped", [("fragment-inconsistent", f"last fragment ends at {end}, an earlier one at {dg.total}")]
            )
        if (dg.total is not None and end > dg.total) or (
            not more and dg.chunks and dg.chunks[-1][0] + len(dg.chunks[-1][1]) > end
        ):
            self._drop(key, "invalid")
            return Outcome(
                "dropped", [("fragment-inconsistent", f"fragment data past the end of the datagram ({end})")]
            )
        if not more:
            dg.total = end
        if offset == 0 and dg.head is None:
            dg.head = head
        added, anomalies = self._insert(dg, offset, data, frame)
        self._account(key)
        if dg.total is None or dg.have < dg.total:
            return Outcome("pending" if added else "duplicate", anomalies)
        # complete
        del self._pending[key]
        self._bytes -= dg.have
        st.completed += 1
        payload = b"".join(c for _, c in dg.chunks)
        frames = tuple(f for _, f in sorted(dg.contributors))
        self._remember(key, frame, dg)
        return Outcome("complete", anomalies, payload, frames, dg.head)

    def _insert(self, dg: _Datagram[H], offset: int, data: bytes, frame: int) -> tuple[bool, list[tuple[str, str]]]:
        """First-wins: only the bytes of ``data`` no earlier fragment covered are kept."""
        end = offset + len(data)
        pieces: list[tuple[int, bytes]] = []
        pos = offset
        overlap = conflict = False
        for c_off, c in dg.chunks:
            c_end = c_off + len(c)
            if c_end <= pos:
                continue
            if c_off >= end:
                break
            if c_off > pos:
                pieces.append((pos, data[pos - offset : c_off - offset]))
            lo, hi = max(pos, c_off), min(end, c_end)
            overlap = True
            if data[lo - offset : hi - offset] != c[lo - c_off : hi - c_off]:
                conflict = True
            pos = hi
        if pos < end:
            pieces.append((pos, data[pos - offset :]))
        st = self.stats
        out: list[tuple[str, str]] = []
        if not pieces:
            st.duplicates += 1
            out.append(("fragment-duplicate", f"bytes {offset}-{end} were already received"))
        elif overlap:
            st.overlaps += 1
            out.append(("fragment-overlap", f"bytes {offset}-{end} overlap earlier fragments: first kept"))
        if conflict:
            st.conflicts += 1
            out.append(
                (
                    "fragment-overlap-conflict",
                    f"bytes {offset}-{end} differ from earlier fragments (first kept; Linux 4.19+ and RFC 5722"
                    " receivers drop the datagram)",
                )
            )
        if pieces:
            dg.contributors.append((offset, frame))
            for p in pieces:
                dg.have += len(p[1])
                self._bytes += len(p[1])
            dg.chunks.extend(pieces)
            dg.chunks.sort(key=lambda c: c[0])
        return bool(pieces), out

    def _account(self, current: DatagramKey) -> None:
        """Evict the oldest datagrams but ``current``, which the caller goes on working with."""
        st = self.stats
        while self._bytes > self.max_bytes:
            victim = next((k for k in self._pending if k != current), None)
            if victim is None:
                break  # one datagram alone may exceed the cap: it is at most 64 KiB
            self._drop(victim, "evicted")
        st.peak_datagrams = max(st.peak_datagrams, len(self._pending))
        st.peak_bytes = max(st.peak_bytes, self._bytes)

    def _remember(self, key: DatagramKey, frame: int, dg: _Datagram[H]) -> None:
        if len(self._done) >= self.max_datagrams:
            self._done.popitem(last=False)
        self._done.pop(key, None)
        self._done[key] = (self._now, frame, {(o, len(c)): hash(c) for o, c in dg.chunks})

    def _drop(self, key: DatagramKey, reason: str) -> None:
        dg = self._pending.pop(key)
        self._bytes -= dg.have
        st = self.stats
        st.incomplete += 1
        st.incomplete_fragments += dg.fragments
        st.incomplete_bytes += dg.have
        if reason == "timeout":
            st.timeouts += 1
        elif reason == "evicted":
            st.evictions += 1
        elif reason == "invalid":
            st.invalid += 1
        if len(self.incomplete) < self.keep_incomplete:
            has_first = bool(dg.chunks) and dg.chunks[0][0] == 0
            self.incomplete.append(
                Incomplete(key, reason, dg.first_ts, tuple(dg.arrivals), dg.fragments, dg.have, dg.total, has_first)
            )


# --- the decode stage ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Head:
    """How to go on decoding a datagram, learnt from its fragment at offset 0."""

    skip: int  # IPv6: extension headers after the fragment header that the IPv6 layer walked
    next: Next | None
    encap: bool


_TUNNEL_ID = "tunnel_id"


def _context(layers: list[Layer], depth: int) -> Context:
    """The headers around a fragmented IP header: enclosing IP addresses and tunnel IDs."""
    out: list[tuple[str, int | None, str | None, str | None]] = []
    for ly in layers:
        if ly.depth >= depth:
            continue
        f = ly.fields
        if ly.proto in ("ipv4", "ipv6"):
            out.append((ly.proto, None, str(f.get("src")), str(f.get("dst"))))
        elif _TUNNEL_ID in f:
            tid = f[_TUNNEL_ID]
            out.append((ly.proto, int(tid) if isinstance(tid, int) else None, None, None))
    return tuple(out)


class FragmentStage:
    """The reassembly stage as a :data:`~ipsotrace.dissectors.registry.FragmentHook`.

    Per fragment it records on the IP layer ``reassembly`` (``pending``, ``complete``,
    ``duplicate``, ``dropped`` or ``not-captured``) and ``frag_length``; on the frame that
    completes a datagram, ``reassembled_frames`` and ``reassembled_length``, and decoding goes
    on in the reassembled bytes.  A fragment whose payload the capture did not keep whole
    cannot be reassembled: it is decoded per frame, as tshark does.
    """

    def __init__(self, reassembler: Reassembler[Head] | None = None) -> None:
        self.reassembler: Reassembler[Head] = reassembler if reassembler is not None else Reassembler()

    def __call__(self, pkt: Packet, layer: Layer, data: bytes, avail: int, res: Decoded) -> Resume | bool:
        f = layer.fields
        ip_off = layer.offset
        if layer.proto == "ipv4":
            ihl, total = int(f["ihl"]), int(f["total_length"])
            start, stop = ip_off + ihl, ip_off + total
            key = DatagramKey(4, str(f["src"]), str(f["dst"]), int(f["protocol"]), int(f["id"]))
            offset, more, limit = int(f["frag_offset"]), bool(f["mf"]), 65535 - ihl
            head = Head(0, res.next, res.encap)
            ok = total > ihl and layer.length >= ihl
        else:
            fh = ipv6.fragment_header(data, ip_off, avail)
            if fh is None or f.get("jumbo"):
                f["reassembly"] = "not-captured"
                return True
            start, stop = fh.end, ip_off + 40 + int(f["payload_length"])
            key = DatagramKey(6, str(f["src"]), str(f["dst"]), -1, fh.ident)
            offset, more = fh.offset, fh.mf
            limit = 65535 - (fh.end - 8 - ip_off - 40)  # the unfragmentable extension headers count too
            walked = ip_off + layer.length - fh.end
            if res.next is not None:
                head = Head(walked, res.next, res.encap)
            else:  # the walk after the fragment header was cut short: start at the fragmentable part
                head = Head(0, Next("ipproto", fh.next_header), fh.next_header in ipv6.IP_IN_IP)
            ok = stop > start
        if not ok or stop > avail:
            f["reassembly"] = "not-captured"
            return True
        if layer.depth:
            key = DatagramKey(key.version, key.src, key.dst, key.proto, key.ident, _context(pkt.layers, layer.depth))
        f["frag_length"] = stop - start
        out = self.reassembler.add(key, pkt.frame, pkt.ts_ns, offset, data[start:stop], more, limit, head)
        for what, detail in out.anomalies:
            pkt.anomalies.append(Anomaly(f"{layer.proto}.{what}", layer.proto, ip_off, detail))
        f["reassembly"] = out.state
        if out.state != "complete" or out.head is None:
            return False
        f["reassembled_frames"] = list(out.frames)
        f["reassembled_length"] = len(out.payload)
        buf = data[:start] + out.payload
        return Resume(buf, start + out.head.skip, len(buf), out.head.next, out.head.encap)


# --- over the sources of one analysis -------------------------------------------------------


@dataclass(slots=True)
class ReassemblySummary:
    """What reassembly did over several captures: the ``reassembly`` key of ``analyze --json``."""

    enabled: bool = True
    stats: ReassemblyStats = field(default_factory=ReassemblyStats)
    incomplete: list[tuple[str, Incomplete]] = field(default_factory=list)  # (source, datagram)

    def add(self, source: str, reassembler: Reassembler[Head]) -> None:
        self.stats.merge(reassembler.stats)
        room = KEEP_INCOMPLETE - len(self.incomplete)
        self.incomplete.extend((source, i) for i in reassembler.incomplete[: max(room, 0)])

    def verdict(self) -> str | None:
        """One line for reports: which datagrams never completed, or None when all did."""
        n = self.stats.incomplete
        if not n:
            return None
        frames = ", ".join(str(f) for _, i in self.incomplete[:8] for f in i.frames[:4])
        more = "…" if n > 8 or any(len(i.frames) > 4 for _, i in self.incomplete[:8]) else ""
        return (
            f"fragments of {n} datagram{'s' if n > 1 else ''} never completed ({self.stats.incomplete_fragments}"
            f" fragments, {self.stats.incomplete_bytes} bytes; frames {frames}{more})"
        )

    def to_json(self) -> dict[str, FieldValue]:
        out: dict[str, FieldValue] = {"enabled": self.enabled, **self.stats.to_json()}
        out["incomplete_datagrams"] = [{"source": src, **i.to_json()} for src, i in self.incomplete]
        out["verdict"] = self.verdict()
        return out
