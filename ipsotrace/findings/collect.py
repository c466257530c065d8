"""Per-packet facts the findings need beyond :class:`~ipsotrace.correlate.Aggregates`.

The correlator keeps what a report shows; findings also need *where the
evidence is* (frame numbers per flow and per outer path), which outer path a
lost TCP segment was on, outer fragments, duplicate inner packets, ECN echo
and encrypted transports.  :class:`Collector` keeps those, fed the same
per-packet :class:`~ipsotrace.correlate.extract.View` as the correlator plus
a few header values (:class:`Extra`) the view does not carry.  A vectorised
path feeds :meth:`Collector.add_view` from column arrays.

Memory is O(tunnels + flows + VTEP pairs), tunnels and flows capped like the
correlator's (least active evicted, evictions counted): per flow a bounded
number of paths, evidence frames and TCP/duplicate state.  ``a.merge(b)`` ("b came
after a") equals one pass over a then b, then :meth:`Collector.finalized`.
Each part holds back its first :data:`HEAD` TCP data segments and
:data:`DUP_WINDOW` packets per flow and replays them on the state of the part
before it, and keeps up to :data:`HEAD` retransmissions of data its head saw
until it knows what came before, so loss attribution and duplicate detection
across the split are those of one pass.  The bounded exceptions (all of a part's
first 16 data segments of a flow being retransmissions of the earlier part's
data; more than 16 such retransmissions when the earlier part sent that data on
other paths) are counted in ``FlowFacts.tcp.inexact``.  Paths are kept per flow as the
correlator keeps them: the first :data:`~ipsotrace.correlate.aggregates.MAX_PATHS`, packets on
others counted in ``FlowFacts.paths_overflow``; a merge is exact unless a part passed that cap
on paths an earlier part kept (as the correlator's).
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field, replace
from typing import Generic, NamedTuple, TypeVar

from ipsotrace.correlate.aggregates import DEFAULT_MAX_TUNNELS, MAX_PATHS, SIZE_BINS, seq_after, size_bin
from ipsotrace.correlate.distinct import MASK64, mix64
from ipsotrace.correlate.extract import IP_PROTOS, View, view
from ipsotrace.records import Packet

HEAD = 16  # TCP data segments per flow held back in each part for replay on merge
MAX_RUNS = 16  # outer paths per TCP flow remembered with the sequence range they first carried
DUP_WINDOW = 8  # inner packets per flow a duplicate is looked for among
#: ... and only that recent: protocols repeat identical packets on purpose (MLD/IGMP reports, DNS and
#: SYN retries without timestamps) after hundreds of milliseconds; loops and duplication take far less.
DUP_NS = 50_000_000
OFFLOAD_MIN = 9217  # larger "packets" are TSO/GSO/GRO super-frames captured before segmentation
N_TOP = 8
DEFAULT_MAX_FLOWS = 100_000
_M32 = 0xFFFFFFFF
VXLAN_FLAG_ANOMALIES = frozenset({"vxlan.i-flag-unset", "vxlan.reserved-set"})

Ev = tuple[int, str, int]  # (ts_ns, source, frame)
TunnelKey = tuple[str, str, str, int | None]
PathKey = tuple[str, str, int, int, int, int]
FlowKey = tuple[str, int | None, str, str, str, int, int, int]
PairKey = tuple[str, str, int]  # outer src, dst, IP protocol

T = TypeVar("T")


@dataclass(slots=True)
class Top(Generic[T]):
    """The ``n`` smallest items seen: order-independent, so it merges exactly."""

    n: int = N_TOP
    items: list[T] = field(default_factory=list)

    def add(self, item: T) -> None:
        items = self.items
        if len(items) >= self.n and not item < items[-1]:  # type: ignore[operator]
            return  # the common case once full: nothing to do
        if item in items:
            return  # a set, like merge
        if len(items) < self.n:
            items.append(item)
            items.sort()  # type: ignore[type-var]
        elif item < items[-1]:  # type: ignore[operator]
            items[-1] = item
            items.sort()  # type: ignore[type-var]

    def merge(self, o: Top[T]) -> None:
        self.items = sorted(set(self.items) | set(o.items))[: self.n]  # type: ignore[type-var]

    def clone(self) -> Top[T]:
        return Top(self.n, list(self.items))  # the items are immutable tuples


class Extra(NamedTuple):
    """Header values of one packet the findings need and :class:`View` does not carry."""

    outer_frag: tuple[str, str, int, int, bool, int, int] | None  # src, dst, proto, offset, MF, payload, IP size
    offload: bool  # a TSO/GSO/BIG TCP super-frame (sizes are not wire sizes)
    fingerprint: int  # inner packet identity (IP ID, length, L4 checksum, seq/ack); 0 when none
    encrypted: tuple[str, int] | None  # (protocol, tunnel depth) of the first encrypted layer
    vxlan_flags: tuple[str, ...]  # VXLAN flag anomalies of the packet


ENCRYPTED_PROTOS = frozenset({"esp", "wireguard", "dtls"})
#: start value of :func:`fingerprint` (any odd constant; fixed so that parts made elsewhere agree)
FP_SEED = 0x243F6A8885A308D3
#: bits of the ``vxf`` row column (ipsotrace.fast.facts) per VXLAN flag anomaly, in this order
VXLAN_FLAG_BITS = ("vxlan.i-flag-unset", "vxlan.reserved-set")


def fingerprint(values: tuple[int, ...]) -> int:
    """Inner packet identity: splitmix64 chained over the values (each taken modulo 2**64); never 0.

    Not Python's tuple ``hash()``: the fast path computes the same function over columns in
    numpy (ipsotrace.fast.facts.fingerprints), and parts analysed in other processes must agree.
    """
    h = FP_SEED
    for v in values:
        h = mix64(h ^ (v & MASK64))
    return h or 1


def _int(v: object) -> int:
    return v if isinstance(v, int) else -1


def extra(pkt: Packet) -> Extra:
    layers = pkt.layers
    outer_frag = None
    offload = pkt.wirelen >= OFFLOAD_MIN
    encrypted = None
    first_ip = last_ip = -1
    for i, ly in enumerate(layers):
        if ly.quoted:
            break
        p = ly.proto
        if p == "ipv4" or p == "ipv6":
            last_ip = i
            f = ly.fields
            if "gso" in f or "jumbo" in f:
                offload = True
            if first_ip < 0:
                first_ip = i
                if f.get("mf") or f.get("frag_offset"):
                    is4 = p == "ipv4"
                    size = int(f.get("total_length") or 0) if is4 else 40 + int(f.get("payload_length") or 0)
                    hdr = int(f.get("ihl", 20)) if is4 else ly.length
                    outer_frag = (
                        str(f["src"]),
                        str(f["dst"]),
                        int(f.get("protocol" if is4 else "next_header", 0)),
                        int(f.get("frag_offset", 0)),
                        bool(f.get("mf")),
                        max(0, size - hdr),
                        size,
                    )
        elif encrypted is None and p in ENCRYPTED_PROTOS and ly.fields.get("encrypted") is True:
            encrypted = (p, ly.depth)
    if last_ip >= 0:
        f = layers[last_ip].fields
        t = layers[last_ip + 1].fields if last_ip + 1 < len(layers) and not layers[last_ip + 1].quoted else {}
        fp = fingerprint(
            (
                _int(f.get("id")),
                _int(f.get("total_length", f.get("payload_length"))),
                _int(f.get("frag_offset")),
                _int(t.get("checksum")),
                _int(t.get("seq")),
                _int(t.get("ack")),
                _int(t.get("id")),
            )
        )
    else:
        fp = 0
    flags = tuple(a.kind for a in pkt.anomalies if a.kind in VXLAN_FLAG_ANOMALIES) if pkt.anomalies else ()
    return Extra(outer_frag, offload, fp, encrypted, flags)


@dataclass(slots=True)
class TunnelFacts:
    first: Ev
    packets: int = 0
    overhead_min: int = 1 << 30  # outer IP size - inner IP size (encapsulation bytes on the wire)
    overhead_max: int = 0
    outer_top: Top[tuple[int, Ev]] = field(default_factory=lambda: Top(3))  # (-outer size, ev)
    ttl_compared: int = 0
    ttl_copied: int = 0  # outer TTL equal to the inner one (or one less: routed into the tunnel)
    ttl_ev: Top[Ev] = field(default_factory=lambda: Top(4))  # outer TTL not copied
    dscp_marked: int = 0  # inner DSCP != 0
    dscp_lost: int = 0  # ... outer DSCP 0
    dscp_changed: int = 0  # ... outer DSCP another non-zero value
    dscp_ev: Top[Ev] = field(default_factory=lambda: Top(4))
    ecn_capable: int = 0  # inner ECT(0), ECT(1) or CE
    ecn_lost: int = 0  # ... outer Not-ECT
    ecn_ev: Top[Ev] = field(default_factory=lambda: Top(4))
    bad_flags: dict[str, int] = field(default_factory=dict)
    bad_flag_packets: int = 0
    bad_flags_ev: Top[Ev] = field(default_factory=Top)
    ttl_expired: int = 0  # time-exceeded about tenant traffic, carried in this tunnel (not traceroute)
    ttl_expired_ev: Top[Ev] = field(default_factory=Top)
    ttl_expired_reporters: Top[str] = field(default_factory=lambda: Top(4))

    def merge(self, o: TunnelFacts) -> None:
        self.first = min(self.first, o.first)
        self.packets += o.packets
        self.overhead_min = min(self.overhead_min, o.overhead_min)
        self.overhead_max = max(self.overhead_max, o.overhead_max)
        self.outer_top.merge(o.outer_top)
        self.ttl_compared += o.ttl_compared
        self.ttl_copied += o.ttl_copied
        self.ttl_ev.merge(o.ttl_ev)
        self.dscp_marked += o.dscp_marked
        self.dscp_lost += o.dscp_lost
        self.dscp_changed += o.dscp_changed
        self.dscp_ev.merge(o.dscp_ev)
        self.ecn_capable += o.ecn_capable
        self.ecn_lost += o.ecn_lost
        self.ecn_ev.merge(o.ecn_ev)
        self.bad_flag_packets += o.bad_flag_packets
        for k, v in o.bad_flags.items():
            self.bad_flags[k] = self.bad_flags.get(k, 0) + v
        self.bad_flags_ev.merge(o.bad_flags_ev)
        self.ttl_expired += o.ttl_expired
        self.ttl_expired_ev.merge(o.ttl_expired_ev)
        self.ttl_expired_reporters.merge(o.ttl_expired_reporters)

    @property
    def overhead(self) -> int | None:
        return self.overhead_max if self.overhead_max else None

    def clone(self) -> TunnelFacts:
        return replace(
            self,
            outer_top=self.outer_top.clone(),
            ttl_ev=self.ttl_ev.clone(),
            dscp_ev=self.dscp_ev.clone(),
            ecn_ev=self.ecn_ev.clone(),
            bad_flags=dict(self.bad_flags),
            bad_flags_ev=self.bad_flags_ev.clone(),
            ttl_expired_ev=self.ttl_expired_ev.clone(),
            ttl_expired_reporters=self.ttl_expired_reporters.clone(),
        )


def _bins() -> list[int]:
    return [0] * len(SIZE_BINS)


@dataclass(slots=True)
class PathFacts:
    """One inner flow over one outer 5-tuple."""

    first: Ev
    packets: int = 0
    new_bins: list[int] = field(default_factory=_bins)  # TCP data segments first sent here, by inner size
    new_max: int = 0
    retx_bins: list[int] = field(default_factory=_bins)  # retransmissions blamed on this path (data lost here)
    retx_ev: Top[Ev] = field(default_factory=Top)
    retx_min_size: int = 1 << 30
    retx_here: int = 0  # retransmissions carried by this path

    def merge(self, o: PathFacts) -> None:
        self.first = min(self.first, o.first)
        self.packets += o.packets
        self.new_bins = [a + b for a, b in zip(self.new_bins, o.new_bins, strict=True)]
        self.new_max = max(self.new_max, o.new_max)
        self.retx_bins = [a + b for a, b in zip(self.retx_bins, o.retx_bins, strict=True)]
        self.retx_ev.merge(o.retx_ev)
        self.retx_min_size = min(self.retx_min_size, o.retx_min_size)
        self.retx_here += o.retx_here

    def clone(self) -> PathFacts:
        return replace(self, new_bins=list(self.new_bins), retx_bins=list(self.retx_bins), retx_ev=self.retx_ev.clone())


class TcpEvent(NamedTuple):
    seq: int
    seglen: int
    size: int
    path: PathKey
    ev: Ev


Run = tuple[int, PathKey]  # (first sequence number, path) of a stretch of new data on one outer path


@dataclass(slots=True)
class TcpTrack:
    """Retransmission detection with loss blamed on the path that carried the data first.

    A retransmission means an earlier transmission was lost: it is blamed on the
    path that first sent the retransmitted sequence number, because Linux re-draws
    the entropy port on a retransmission timeout and the resent segment may leave
    on another path.  After such a re-draw Linux resends the lost segments
    interleaved with new data on the new path, so "the path of the most recent new
    data" would blame the healthy path.  Each path change of the new data starts a
    run; the last :data:`MAX_RUNS` runs are kept (a re-draw takes at least one
    retransmission timeout, so a flow rarely has more).

    A part of a split input cannot tell whether what its held-back head shows as
    new data is new, or the resending of an earlier part's lost data on another
    path: retransmissions it would blame on a run started in its head (or on none)
    wait in ``pending`` (at most :data:`HEAD`; more are blamed at once and counted
    in ``overflow``) until :meth:`merge` or :meth:`finalize` knows what came before.
    """

    next: int | None = None  # highest sequence end sent (serial arithmetic)
    last: PathKey | None = None  # path of the most recent new data
    runs: list[Run] = field(default_factory=list)
    runs_total: int = 0  # runs ever started (older ones fall out of ``runs``)
    first_path: PathKey | None = None  # path of the first data: blamed for data sent before it
    head: list[TcpEvent] = field(default_factory=list)  # held back, not yet counted
    #: after the head (None: head open): next, last, runs_total and the runs the head started
    head_state: tuple[int | None, PathKey | None, int, tuple[Run, ...]] | None = None
    pending: list[TcpEvent] = field(default_factory=list)  # retransmissions of data of the head's runs
    overflow: int = 0  # ... blamed at once because ``pending`` was full
    inexact: int = 0

    def add(self, e: TcpEvent, ff: FlowFacts) -> None:
        if self.head_state is None:
            self.head.append(e)
            self._step(e, None)
            if len(self.head) == HEAD:
                self.head_state = self._state()
        else:
            self._step(e, ff, defer=True)

    def _step(self, e: TcpEvent, ff: FlowFacts | None, defer: bool = False) -> None:
        end = (e.seq + e.seglen) & _M32
        if self.next is None or seq_after(end, self.next):
            if e.path != self.last:
                start = e.seq if self.next is None or seq_after(e.seq, self.next) else self.next
                self.runs.append((start, e.path))
                self.runs_total += 1
                if len(self.runs) > MAX_RUNS:
                    del self.runs[0]
                if self.first_path is None:
                    self.first_path = e.path
            self.next = end
            self.last = e.path
            pf = None if ff is None else ff.path(e.path, e.ev)
            if pf is not None:
                pf.new_bins[size_bin(e.size)] += 1
                pf.new_max = max(pf.new_max, e.size)
        elif ff is not None:
            here = ff.path(e.path, e.ev)
            if here is not None:
                here.retx_here += 1
            self._retx(e, ff, defer)

    def _state(self) -> tuple[int | None, PathKey | None, int, tuple[Run, ...]]:
        return (self.next, self.last, self.runs_total, tuple(self.runs[max(0, len(self.runs) - self.runs_total) :]))

    def _retx(self, e: TcpEvent, ff: FlowFacts, defer: bool) -> None:
        i = self._covering(e.seq)
        head_runs = self.head_state[2] if self.head_state is not None else self.runs_total
        if defer and (i < 0 or self.runs_total - len(self.runs) + i < head_runs):
            if len(self.pending) < HEAD:
                self.pending.append(e)  # data the head saw (or older): what came before decides
                return
            self.overflow += 1
        _blame(ff, self.runs[i][1] if i >= 0 else (self.first_path or e.path), e)

    def _covering(self, seq: int) -> int:
        """Index of the run holding ``seq``; -1 when it was sent before every run kept."""
        for i in range(len(self.runs) - 1, -1, -1):
            if not seq_after(self.runs[i][0], seq):
                return i
        return -1

    def _agrees(self, e: TcpEvent) -> bool:
        """A part starting with ``e`` blames every sequence number from ``e.seq`` on ``e.path``: so do we."""
        if self.next is None or not seq_after(self.next, e.seq):
            return True  # new data here too
        i = self._covering(e.seq)
        return i >= 0 and all(pk == e.path for _, pk in self.runs[i:])

    def clone(self) -> TcpTrack:
        return replace(self, runs=list(self.runs), head=list(self.head), pending=list(self.pending))

    def finalize(self, ff: FlowFacts) -> None:
        """Count the held-back head and the pending retransmissions: nothing came before this part."""
        if self.head:
            self.replay_head(ff)
        events, self.pending = self.pending, []
        for e in events:
            self._retx(e, ff, defer=False)

    def replay_head(self, ff: FlowFacts) -> None:
        """Count the held-back head from an empty state (nothing came before this part)."""
        events, self.head = self.head, []
        end = (self.next, self.last, self.runs, self.runs_total, self.first_path)
        self.next = self.last = self.first_path = None
        self.runs, self.runs_total = [], 0
        for e in events:
            self._step(e, ff)
        self.head_state = self._state()
        # the tail was already counted from the state after the head
        self.next, self.last, self.runs, self.runs_total, self.first_path = end

    def merge(self, o: TcpTrack, ff: FlowFacts) -> None:
        agrees = not o.head or self._agrees(o.head[0])
        before = self.runs_total
        for e in o.head:
            self.add(e, ff)
        if o.head_state is not None:
            # o's tail was counted from o's own state after its head: exact when that equals ours now,
            # and when o's head runs name the paths we know for their data (or o waited on all of it)
            started = self.runs_total - before
            replayed = self.runs[len(self.runs) - started :] if started <= len(self.runs) else None
            head_runs = list(o.head_state[3])
            same_runs = agrees and replayed is not None and replayed in (head_runs, head_runs[1:])
            if (self.next, self.last) != o.head_state[:2] or (o.overflow and not same_runs):
                self.inexact += 1
            tail = o.runs_total - o.head_state[2]
            if tail:
                self.runs = (self.runs + o.runs[-min(tail, len(o.runs)) :])[-MAX_RUNS:]
                self.runs_total += tail
            self.next, self.last = o.next, o.last
        self.overflow += o.overflow  # blamed on runs that may be our own head's: as unsure as ours
        if self.first_path is None:
            self.first_path = o.first_path
        for e in o.pending:
            self._retx(e, ff, defer=True)
        self.inexact += o.inexact


def _blame(ff: FlowFacts, pk: PathKey, e: TcpEvent) -> None:
    blamed = ff.path(pk, e.ev)
    if blamed is None:
        return  # lost on a path past the cap: not kept, like its packets
    blamed.retx_bins[size_bin(e.size)] += 1
    blamed.retx_ev.add(e.ev)
    blamed.retx_min_size = min(blamed.retx_min_size, e.size)


@dataclass(slots=True)
class DupTrack:
    ring: list[tuple[int, int, int]] = field(default_factory=list)  # (fingerprint, TTL, ts), last DUP_WINDOW
    head: list[tuple[int, int, Ev]] = field(default_factory=list)
    duplicates: int = 0
    loops: int = 0  # duplicates whose inner TTL went down: the packet came around again
    ev: Top[Ev] = field(default_factory=Top)

    def add(self, fp: int, ttl: int, ev: Ev) -> None:
        if len(self.head) < DUP_WINDOW:
            self.head.append((fp, ttl, ev))
            self._push(fp, ttl, ev[0])
        else:
            self._step(fp, ttl, ev)

    def _push(self, fp: int, ttl: int, ts: int) -> None:
        self.ring.append((fp, ttl, ts))
        if len(self.ring) > DUP_WINDOW:
            del self.ring[0]

    def _step(self, fp: int, ttl: int, ev: Ev) -> None:
        for f, t, ts in self.ring:
            if f == fp and 0 <= ev[0] - ts <= DUP_NS:
                self.duplicates += 1
                if 0 <= ttl < t:
                    self.loops += 1
                self.ev.add(ev)
                break
        self._push(fp, ttl, ev[0])

    def clone(self) -> DupTrack:
        return replace(self, ring=list(self.ring), head=list(self.head), ev=self.ev.clone())

    def replay_head(self) -> None:
        events = self.head
        ring, self.ring = self.ring, []
        for fp, ttl, ev in events:
            self._step(fp, ttl, ev)
        if len(events) == DUP_WINDOW:
            self.ring = ring  # the tail was already checked against the ring after the head
        # the head stays: it marks this part as the flow's start for later merges
        self.head = events

    def merge(self, o: DupTrack) -> None:
        for fp, ttl, ev in o.head:
            self.add(fp, ttl, ev)
        if len(o.head) == DUP_WINDOW:
            self.ring = list(o.ring)  # the last DUP_WINDOW packets are the later part's
        self.duplicates += o.duplicates
        self.loops += o.loops
        self.ev.merge(o.ev)


@dataclass(slots=True)
class FlowFacts:
    first: Ev
    packets: int = 0
    df_max: int = 0  # largest inner packet that may not be fragmented (offload super-frames excluded)
    df_top: Top[tuple[int, Ev]] = field(default_factory=lambda: Top(5))  # (-size, ev)
    syn_mss: Top[tuple[int, Ev]] = field(default_factory=lambda: Top(3))  # (-MSS, ev) of SYN / SYN-ACK
    ece: int = 0  # non-SYN TCP segments echoing congestion (ECE)
    ce_outer: int = 0  # inner ECT, outer CE: the underlay marked congestion
    ce_ev: Top[Ev] = field(default_factory=lambda: Top(4))
    ce_first_ns: int = 0
    paths: dict[PathKey, PathFacts] = field(default_factory=dict)  # the first MAX_PATHS, as the correlator's
    paths_overflow: int = 0  # packets on outer paths past MAX_PATHS (a new entropy port per packet)
    tcp: TcpTrack | None = None
    dup: DupTrack = field(default_factory=DupTrack)

    def path(self, pk: PathKey, ev: Ev) -> PathFacts | None:
        """The path's facts, new if there is room; None: a path past the cap (its facts are not kept)."""
        pf = self.paths.get(pk)
        if pf is None and len(self.paths) < MAX_PATHS:
            self.paths[pk] = pf = PathFacts(ev)
        return pf

    def merge(self, o: FlowFacts) -> None:
        self.first = min(self.first, o.first)
        self.packets += o.packets
        self.df_max = max(self.df_max, o.df_max)
        self.df_top.merge(o.df_top)
        self.syn_mss.merge(o.syn_mss)
        self.ece += o.ece
        self.ce_outer += o.ce_outer
        self.ce_ev.merge(o.ce_ev)
        if o.ce_first_ns and (not self.ce_first_ns or o.ce_first_ns < self.ce_first_ns):
            self.ce_first_ns = o.ce_first_ns
        for pk, pf in o.paths.items():
            mine = self.paths.get(pk)
            if mine is not None:
                mine.merge(pf)
            elif len(self.paths) < MAX_PATHS:
                self.paths[pk] = pf
            else:
                self.paths_overflow += pf.packets
        self.paths_overflow += o.paths_overflow
        if o.tcp is not None:
            if self.tcp is None:
                self.tcp = o.tcp
            else:
                self.tcp.merge(o.tcp, self)
        self.dup.merge(o.dup)

    def clone(self) -> FlowFacts:
        return replace(
            self,
            df_top=self.df_top.clone(),
            syn_mss=self.syn_mss.clone(),
            ce_ev=self.ce_ev.clone(),
            paths={pk: pf.clone() for pk, pf in self.paths.items()},
            tcp=None if self.tcp is None else self.tcp.clone(),
            dup=self.dup.clone(),
        )

    def finalize(self) -> None:
        if self.tcp is not None:
            self.tcp.finalize(self)
        self.dup.replay_head()


@dataclass(slots=True)
class FragFacts:
    """Fragments of outer packets between two addresses."""

    fragments: int = 0
    datagrams: int = 0  # first fragments (offset 0): one per fragmented packet
    max_fragment: int = 0  # largest fragment payload + header seen: the link MTU that split them
    max_end: int = 0  # largest reassembled payload end: how big the original packets were
    tunnel_first: int = 0  # fragments whose datagram decoded as a tunnel (first or reassembling one)
    ev: Top[Ev] = field(default_factory=Top)

    def merge(self, o: FragFacts) -> None:
        self.fragments += o.fragments
        self.datagrams += o.datagrams
        self.max_fragment = max(self.max_fragment, o.max_fragment)
        self.max_end = max(self.max_end, o.max_end)
        self.tunnel_first += o.tunnel_first
        self.ev.merge(o.ev)


@dataclass(slots=True)
class CryptoFacts:
    packets: int = 0
    inside_tunnel: int = 0
    ev: Top[Ev] = field(default_factory=lambda: Top(4))

    def merge(self, o: CryptoFacts) -> None:
        self.packets += o.packets
        self.inside_tunnel += o.inside_tunnel
        self.ev.merge(o.ev)


_TRACEROUTE_UDP = range(33434, 33535)


@dataclass(slots=True)
class Facts:
    """Everything :class:`Collector` keeps; ``merge`` as for :class:`~ipsotrace.correlate.Aggregates`."""

    max_flows: int = DEFAULT_MAX_FLOWS
    max_tunnels: int = DEFAULT_MAX_TUNNELS
    tunnels: dict[TunnelKey, TunnelFacts] = field(default_factory=dict)
    flows: dict[FlowKey, FlowFacts] = field(default_factory=dict)
    frags: dict[PairKey, FragFacts] = field(default_factory=dict)
    crypto: dict[tuple[str, str, str], CryptoFacts] = field(default_factory=dict)  # (src, dst, protocol)
    evicted_flows: int = 0
    evicted_tunnels: int = 0
    finalized: bool = False

    def merge(self, o: Facts) -> Facts:
        """Fold in ``o`` (input that came after ours); ``o`` is consumed."""
        for tk, t in o.tunnels.items():
            mine = self.tunnels.get(tk)
            if mine is None:
                self.tunnels[tk] = t
            else:
                mine.merge(t)
        self.evicted_tunnels += o.evicted_tunnels
        self._cap_tunnels()
        for fk, f in o.flows.items():
            mf = self.flows.get(fk)
            if mf is None:
                self.flows[fk] = f
            else:
                mf.merge(f)
        for pk, fr in o.frags.items():
            self.frags.setdefault(pk, FragFacts()).merge(fr)
        for ck, c in o.crypto.items():
            self.crypto.setdefault(ck, CryptoFacts()).merge(c)
        self.evicted_flows += o.evicted_flows
        self._cap()
        return self

    def _cap(self, room: int = 0) -> None:
        excess = len(self.flows) - (self.max_flows - room)
        if excess <= 0:
            return
        n = max(excess, self.max_flows // 10, 1)
        for fk, _ in sorted(self.flows.items(), key=lambda kv: (kv[1].packets, kv[1].first))[:n]:
            del self.flows[fk]
            self.evicted_flows += 1

    def _cap_tunnels(self, room: int = 0) -> None:
        """As the correlator's tunnel cap: random tunnel IDs must not grow memory without bound.

        A tenth of the cap goes at once (O(log n) per new tunnel); the victims are the
        tunnels with the fewest packets, then the oldest.
        """
        excess = len(self.tunnels) - (self.max_tunnels - room)
        if excess <= 0:
            return
        n = max(excess, self.max_tunnels // 10, 1)
        for tk, _ in heapq.nsmallest(n, self.tunnels.items(), key=lambda kv: (kv[1].packets, kv[1].first)):
            del self.tunnels[tk]
            self.evicted_tunnels += 1

    def finalized_copy(self) -> Facts:
        """The facts with every held-back head counted, as one pass from the start gives them."""
        if self.finalized:
            return self
        # a copy of every mutable part (much faster than copy.deepcopy): the collector may go on
        out = replace(
            self,
            tunnels={k: t.clone() for k, t in self.tunnels.items()},
            flows={k: f.clone() for k, f in self.flows.items()},
            frags={k: replace(f, ev=f.ev.clone()) for k, f in self.frags.items()},
            crypto={k: replace(c, ev=c.ev.clone()) for k, c in self.crypto.items()},
        )
        for f in out.flows.values():
            f.finalize()
        out.finalized = True
        return out


class Collector:
    """Feed the same packets as the :class:`~ipsotrace.correlate.Correlator`, in capture order."""

    def __init__(self, max_flows: int = DEFAULT_MAX_FLOWS, max_tunnels: int = DEFAULT_MAX_TUNNELS) -> None:
        if max_flows < 1 or max_tunnels < 1:
            raise ValueError("max_flows and max_tunnels must be at least 1")
        self.result = Facts(max_flows=max_flows, max_tunnels=max_tunnels)
        self.source = ""

    def begin_source(self, name: str) -> None:
        self.source = name

    def add(self, pkt: Packet, v: View | None = None) -> None:
        self.add_view(v if v is not None else view(pkt), extra(pkt), pkt.ts_ns, pkt.frame)

    def add_view(self, v: View, x: Extra, ts: int, frame: int) -> None:
        ev: Ev = (ts, self.source, frame)
        self.add_side(v, x, ev)
        self.add_tunnelled(v, x, ev)

    def add_side(self, v: View, x: Extra, ev: Ev) -> None:
        """Outer fragments and encrypted transports: tables of their own, independent of packet order."""
        facts = self.result
        hops = v.hops
        if x.outer_frag is not None:
            src, dst, proto, offset, _mf, payload, size = x.outer_frag
            fr = facts.frags.get((src, dst, proto))
            if fr is None:
                facts.frags[(src, dst, proto)] = fr = FragFacts()
            fr.fragments += 1
            fr.max_fragment = max(fr.max_fragment, size)
            fr.max_end = max(fr.max_end, offset + payload)
            if offset == 0:
                fr.datagrams += 1
            if hops:  # the fragment carries (or, reassembled, completes) a tunnel packet
                fr.tunnel_first += 1
            fr.ev.add(ev)
        if x.encrypted is not None:
            cproto, depth = x.encrypted
            owner = hops[depth - 1] if 0 < depth <= len(hops) else None
            csrc, cdst = (owner.src, owner.dst) if owner else (v.inner.src, v.inner.dst)
            if depth > 0 and owner is None and hops:
                csrc, cdst = hops[-1].src, hops[-1].dst
            c = facts.crypto.get((csrc, cdst, cproto))
            if c is None:
                facts.crypto[(csrc, cdst, cproto)] = c = CryptoFacts()
            c.packets += 1
            if depth > 0:
                c.inside_tunnel += 1
            c.ev.add(ev)

    def add_tunnelled(self, v: View, x: Extra, ev: Ev) -> None:
        """Tunnels and flows (TCP and duplicate state depend on the order of the packets)."""
        facts = self.result
        hops = v.hops
        err = v.icmp
        if err is not None and err.kind == "time-exceeded" and hops and not err.quoted_hops:
            qi = err.quoted_inner
            traceroute = qi is not None and (
                (qi.proto == 17 and qi.dport in _TRACEROUTE_UDP) or (qi.proto in (1, 58) and qi.sport in (8, 128))
            )
            if not traceroute:
                t = self._tunnel(hops[-1].tunnel_key, ev)
                t.ttl_expired += 1
                t.ttl_expired_ev.add(ev)
                t.ttl_expired_reporters.add(err.reporter)
        if not hops:
            return
        inner = v.inner
        ip_inner = inner.l3 in IP_PROTOS
        for hop in hops:
            t = self._tunnel(hop.tunnel_key, ev)
            t.packets += 1
            if not x.offload and hop.ttl >= 0:
                t.outer_top.add((-hop.size, ev))
            if ip_inner and not x.offload and hop.size > inner.size:
                oh = hop.size - inner.size
                t.overhead_min = min(t.overhead_min, oh)
                t.overhead_max = max(t.overhead_max, oh)
            if x.vxlan_flags and hop.encap == "vxlan":
                for kind in x.vxlan_flags:
                    t.bad_flags[kind] = t.bad_flags.get(kind, 0) + 1
                t.bad_flag_packets += 1
                t.bad_flags_ev.add(ev)
        hop = hops[-1]
        if not ip_inner:
            return
        t = facts.tunnels[hop.tunnel_key]
        if hop.ttl >= 0 and inner.ttl >= 0:
            t.ttl_compared += 1
            if hop.ttl in (inner.ttl, inner.ttl - 1):
                t.ttl_copied += 1
            else:
                t.ttl_ev.add(ev)
            if inner.dscp:
                t.dscp_marked += 1
                if hop.dscp != inner.dscp:
                    if hop.dscp == 0:
                        t.dscp_lost += 1
                    else:
                        t.dscp_changed += 1
                    t.dscp_ev.add(ev)
            if inner.ecn:
                t.ecn_capable += 1
                if hop.ecn == 0:
                    t.ecn_lost += 1
                    t.ecn_ev.add(ev)
        self._flow(v, x, ev)

    def _tunnel(self, key: TunnelKey, ev: Ev) -> TunnelFacts:
        facts = self.result
        t = facts.tunnels.get(key)
        if t is None:
            if len(facts.tunnels) >= facts.max_tunnels:
                facts._cap_tunnels(room=1)
            facts.tunnels[key] = t = TunnelFacts(ev)
        elif ev < t.first:
            t.first = ev
        return t

    def _flow(self, v: View, x: Extra, ev: Ev) -> None:
        facts = self.result
        hop = v.hops[-1]
        inner = v.inner
        fk: FlowKey = (hop.encap, hop.tunnel_id, inner.l3, inner.src, inner.dst, inner.proto, inner.sport, inner.dport)
        f = facts.flows.get(fk)
        if f is None:
            if len(facts.flows) >= facts.max_flows:
                facts._cap(room=1)
            facts.flows[fk] = f = FlowFacts(ev)
        elif ev < f.first:
            f.first = ev
        f.packets += 1
        pk = hop.path_key
        pf = f.path(pk, ev)
        if pf is None:
            f.paths_overflow += 1
        else:
            if ev < pf.first:
                pf.first = ev
            pf.packets += 1
        if inner.df and not x.offload and not inner.fragment:
            f.df_max = max(f.df_max, inner.size)
            f.df_top.add((-inner.size, ev))
        if hop.ttl >= 0 and inner.ecn in (1, 2) and hop.ecn == 3:
            f.ce_outer += 1
            f.ce_ev.add(ev)
            if not f.ce_first_ns or ev[0] < f.ce_first_ns:
                f.ce_first_ns = ev[0]
        if x.fingerprint and not inner.fragment:
            f.dup.add(x.fingerprint, inner.ttl, ev)
        flags = inner.tcp_flags
        if flags < 0:
            return
        if flags & 0x02:
            if inner.mss:
                f.syn_mss.add((-inner.mss, ev))
        elif flags & 0x40:
            f.ece += 1
        if inner.tcp_len > 0 and not x.offload:
            if f.tcp is None:
                f.tcp = TcpTrack()
            f.tcp.add(TcpEvent(inner.tcp_seq, inner.tcp_len, inner.size, pk, ev), f)
