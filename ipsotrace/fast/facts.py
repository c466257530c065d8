"""Vectorized feed of the findings' :class:`~ipsotrace.findings.collect.Collector` from fast-path rows.

The scalar analyze loop calls ``Collector.add`` once per packet; the fast engine
hands its rows (the ones :mod:`ipsotrace.fast.aggregate` folds into the
correlator's aggregates) to :class:`FactsFeed` instead.  Rows are buffered and,
at a flush, processed as one block in capture order:

* order-independent facts (counters, minima and maxima, the earliest packet,
  the Top-N evidence sets) are numpy group-bys over the block; a Top takes the
  first ``n`` candidates of each group in its order and ``Top.add`` keeps the
  smallest, as one pass would;
* the order-dependent state per flow is carried across blocks: duplicate detection
  (``DupTrack``: each packet compared with the flow's 8 packets before it, the
  held-back head) keeps each flow's ring, head length and counts in the feed's
  arrays by flow group, and scans a block in one compiled pass in capture order
  (``_walk.dups`` in ipsotrace/fast/_walk.c; without it, vectorized over look-backs
  1 to 8 with the ring in front of the block); TCP loss blame (``TcpTrack``) keeps
  each flow's state (highest sequence end, runs by path group, head and pending
  lengths) in the feed's arrays by flow group too, and steps every data segment
  of the block through ``TcpTrack.add``'s rules in one compiled pass in capture
  order (``_walk.tcp``); Python makes only the head and pending events, the head's
  state when it completes, and the blame of retransmissions.  Without the compiled
  helper it is vectorized for a flow whose data in the block all goes over the path
  of its one run (or is its first): the held-back head gets its events in bulk and
  the state ``TcpTrack.add`` would leave, then new data and retransmissions are told
  apart by a running maximum per flow in serial arithmetic, the retransmissions
  wait in ``pending`` until it is full and are blamed on that path after; a flow
  with data over several paths or runs, or a sequence jump of 2**30 or more in the
  block, goes through ``TcpTrack.add`` one segment at a time for that block.  The
  tunnels' counters of a block are one pass too (``_walk.tunnel_counts``, numpy
  without it).

Additive counts and maxima of flows and paths (packets, the DF maximum, new-data
size bins and maximum, retransmissions carried) also wait in arrays by group, and a
block after everything so far looks up objects only for groups new since the last
:meth:`FactsFeed.sync`, which writes the arrays into the collector's objects: it runs
before the scalar collector touches them (a packet rows cannot carry, a block that
goes one by one: it may evict) and at the end of each input (:meth:`FactsFeed.finish`).
Python work is per new group and block (with numpy only: per TCP flow and block), plus a bounded number
of events per flow (16 head segments, 16 pending retransmissions, 8 duplicate-head packets).  Rows
get their (flow, path) group when they arrive (with the accumulator's key hashes);
a block reads only the columns it needs, and memory is O(groups + BLOCK rows), the
groups bounded by :attr:`FactsFeed.limit` (past it the numbering is synced and dropped
between blocks: the collector's capped objects hold everything).  A block goes through
:meth:`Collector.add_tunnelled` row by row, in order, when a new flow or tunnel
would pass the collector's cap (evictions happen per packet there) or on a 64-bit
key collision.  The result equals the scalar collector's
(tests/fast/test_facts.py compares the facts themselves).
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from itertools import repeat
from typing import Any, cast

import numpy as np

from ipsotrace.correlate.aggregates import SIZE_BINS
from ipsotrace.correlate.extract import View
from ipsotrace.fast import aggregate as A
from ipsotrace.fast.batch import _walker
from ipsotrace.findings.collect import (
    DUP_NS,
    DUP_WINDOW,
    FP_SEED,
    HEAD,
    MAX_RUNS,
    OFFLOAD_MIN,
    VXLAN_FLAG_BITS,
    Collector,
    Ev,
    Extra,
    FlowFacts,
    FlowKey,
    PathFacts,
    PathKey,
    TcpEvent,
    TcpTrack,
    Top,
    TunnelFacts,
    TunnelKey,
)
from ipsotrace.records import Packet

_I64 = np.int64
_U64 = np.uint64
_M32 = 0xFFFFFFFF
_SIZE_EDGES = np.array(SIZE_BINS, dtype=_I64)
_BIG = 1 << 62
#: rows buffered before a block is processed (Python work is per flow and block: bigger is cheaper)
BLOCK = 1 << 17
#: the columns of a row (all, for a block that goes one by one) and those a vectorized block reads
COLUMNS = (*(c for c in A.ROW if c != "row"), "row")
BLOCK_COLUMNS = (
    "row", "ts", "frame", "encap", "o_ttl", "o_dscp", "o_ecn", "o_size", "i_ver", "i_size", "i_df", "i_frag",
    "i_ttl", "i_dscp", "i_ecn", "tcp_flags", "tcp_seq", "tcp_len", "mss", "fp", "offload", "vxf",
)  # fmt: skip
_SERIAL_SPAN = 1 << 30  # sequence offsets within a block beyond this: one segment at a time
#: the compiled duplicate scan (ipsotrace/fast/_walk.c), or None: the numpy one (same results)
DUPS: Any = getattr(_walker(), "dups", None)
#: the compiled fingerprints (ipsotrace/fast/_walk.c), or None: numpy (same values)
FINGERPRINTS: Any = getattr(_walker(), "fingerprints", None)
#: the compiled TCP step (ipsotrace/fast/_walk.c), or None: the numpy one with TcpTrack.add (same results)
TCP: Any = getattr(_walker(), "tcp", None)
#: the compiled tunnel counters (ipsotrace/fast/_walk.c), or None: numpy (the same table)
TUNNEL_COUNTS_C: Any = getattr(_walker(), "tunnel_counts", None)
#: the compiled flow row selections (ipsotrace/fast/_walk.c), or None: numpy (the same flags)
FLOW_FLAGS: Any = getattr(_walker(), "flow_flags", None)


#: a TcpEvent from a tuple of its fields, without the Python-level ``__new__`` (events are made in bulk)
_make_event: Callable[[tuple[int, int, int, PathKey, Ev]], TcpEvent] = partial(tuple.__new__, TcpEvent)  # type: ignore[assignment]


@contextmanager
def paused_gc() -> Iterator[None]:
    """The cycle collector paused: the fast path makes many long-lived objects and no cycles, and each
    collection walked all of them (measured: a 1 M-packet capture of 50 k flows, 7.2 s → 5.7 s)."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        # what was made meanwhile is long-lived (the facts, the aggregates): moved to the oldest
        # generation in one step (freeze, then unfreeze), the first collection after this does not
        # walk it all as young objects; nothing is kept from later collections
        gc.freeze()
        gc.unfreeze()
        gc.enable()


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64 over uint64 (ipsotrace.correlate.distinct.mix64, vectorized)."""
    with np.errstate(over="ignore"):
        x = x + _U64(0x9E3779B97F4A7C15)
        x = (x ^ (x >> _U64(30))) * _U64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> _U64(27))) * _U64(0x94D049BB133111EB)
        return x ^ (x >> _U64(31))


def fingerprints(c: dict[str, np.ndarray]) -> np.ndarray:
    """``findings.collect.fingerprint`` of fast-path rows (as int64 bit patterns).

    The values are the scalar ``extra()`` ones: IPv4 ID, total length and fragment offset
    (0: fast rows are never fragments); for IPv6 no ID or offset (-1) and the payload length;
    the TCP/UDP checksum, TCP sequence and acknowledgement numbers, -1 where absent.
    """
    if FINGERPRINTS is not None:
        names = ("i_ver", "tcp_flags", "i_ipid", "i_size", "i_csum", "tcp_seq", "tcp_ack")
        out = np.empty(c["i_ver"].shape[0], dtype=_I64)
        FINGERPRINTS(*(np.ascontiguousarray(c[k], dtype=_I64) for k in names), FP_SEED, out)
        return out
    v4 = c["i_ver"] == 4
    tcp = c["tcp_flags"] >= 0
    minus = np.full(v4.shape[0], -1, dtype=_I64)
    values = (
        np.where(v4, c["i_ipid"], -1),
        np.where(v4, c["i_size"], c["i_size"] - 40),
        np.where(v4, 0, -1),
        c["i_csum"],
        np.where(tcp, c["tcp_seq"], -1),
        np.where(tcp, c["tcp_ack"], -1),
        minus,
    )
    h = np.full(v4.shape[0], FP_SEED, dtype=_U64)
    for v in values:
        h = _mix(h ^ v.astype(_I64).view(_U64))
    h[h == 0] = 1
    return h.view(_I64)


def fast_columns(c: dict[str, np.ndarray], wirelen: np.ndarray) -> dict[str, np.ndarray]:
    """The feed's extra row columns for fast-decoded rows (no VXLAN flag anomaly reaches them)."""
    return {
        "fp": fingerprints(c),
        "offload": (wirelen >= OFFLOAD_MIN).astype(_I64),
        "vxf": np.zeros(wirelen.shape[0], dtype=_I64),
    }


#: columns of the tunnel counters table (tunnel_counts)
TUNNEL_COUNTS = (
    "packets", "first_row", "overhead_min", "overhead_max", "ttl_compared", "ttl_copied", "dscp_marked",
    "dscp_lost", "dscp_changed", "ecn_capable", "ecn_lost",
)  # fmt: skip


def tunnel_counts(c: dict[str, np.ndarray], g: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """The counters of a block's rows by tunnel group ``g`` (``size`` groups), and each row's flags.

    The table (``size`` x :data:`TUNNEL_COUNTS`): packets, first row (``_BIG``: none), overhead
    minimum (``_BIG``: none) and maximum over IP rows not offloaded with an outer larger than the
    inner, then the TTL, DSCP and ECN comparisons of IP rows with both TTLs.  Flags (int8): 1 a
    candidate for the outer-size Top, 2 TTL not copied, 4 DSCP changed or lost, 8 ECN lost.
    """
    names = ("i_ver", "offload", "o_ttl", "i_ttl", "o_size", "i_size", "o_dscp", "i_dscp", "o_ecn", "i_ecn")
    counts = np.empty((size, len(TUNNEL_COUNTS)), dtype=_I64)
    flags = np.empty(g.shape[0], dtype=np.int8)
    if TUNNEL_COUNTS_C is not None:
        TUNNEL_COUNTS_C(g, *(np.ascontiguousarray(c[k], dtype=_I64) for k in names), counts, flags)
        return counts, flags
    i_ver, offload, o_ttl, i_ttl, o_size, i_size, o_dscp, i_dscp, o_ecn, i_ecn = (c[k] for k in names)
    ip = (i_ver == 4) | (i_ver == 6)
    on_wire = offload == 0
    counts[:, 0] = np.bincount(g, minlength=size)
    rows = np.arange(g.shape[0], dtype=_I64)
    counts[:, 1] = _BIG
    np.minimum.at(counts[:, 1], g, rows)
    oh_rows = ip & on_wire & (o_size > i_size)
    oh = (o_size - i_size)[oh_rows]
    counts[:, 2] = _BIG
    counts[:, 3] = 0
    np.minimum.at(counts[:, 2], g[oh_rows], oh)
    np.maximum.at(counts[:, 3], g[oh_rows], oh)
    cmp = ip & (o_ttl >= 0) & (i_ttl >= 0)
    copied = cmp & ((o_ttl == i_ttl) | (o_ttl == i_ttl - 1))
    marked = cmp & (i_dscp != 0)
    dscp_diff = marked & (o_dscp != i_dscp)
    capable = cmp & (i_ecn != 0)
    ecn_lost = capable & (o_ecn == 0)
    sels = (cmp, copied, marked, dscp_diff & (o_dscp == 0), dscp_diff & (o_dscp != 0), capable, ecn_lost)
    for col, sel in enumerate(sels, start=4):
        counts[:, col] = np.bincount(g[sel], minlength=size)
    flags[:] = (on_wire & (o_ttl >= 0)) | (cmp & ~copied) << 1 | dscp_diff << 2 | ecn_lost << 3
    return counts, flags


def flow_flags(c: dict[str, np.ndarray], g: np.ndarray, df_max: np.ndarray) -> np.ndarray:
    """The rows of a block's flows each step of ``_Block._flows`` takes, as bits; ``df_max`` raised by group.

    Bits (int8), IP rows only: 1 DF (not offloaded, not a fragment: its size raises ``df_max[g]``),
    2 CE on the outer of an ECT inner, 4 TCP, 8 a SYN with an MSS, 16 ECE without SYN, 32 TCP data
    (not offloaded), 64 a duplicate candidate (not a fragment, a fingerprint).
    """
    names = (
        "i_ver",
        "offload",
        "i_frag",
        "i_df",
        "i_size",
        "o_ttl",
        "i_ecn",
        "o_ecn",
        "tcp_flags",
        "mss",
        "tcp_len",
        "fp",
    )
    out = np.empty(g.shape[0], dtype=np.int8)
    if FLOW_FLAGS is not None:
        FLOW_FLAGS(g, *(np.ascontiguousarray(c[k], dtype=_I64) for k in names), df_max, out)
        return out
    i_ver, offload, i_frag, i_df, i_size, o_ttl, i_ecn, o_ecn, flags, mss, tcp_len, fp = (c[k] for k in names)
    ip = (i_ver == 4) | (i_ver == 6)
    on_wire = offload == 0
    whole = i_frag == 0
    df = ip & (i_df != 0) & on_wire & whole
    np.maximum.at(df_max, g[df], i_size[df])
    ce = ip & (o_ttl >= 0) & ((i_ecn == 1) | (i_ecn == 2)) & (o_ecn == 3)
    tcp = ip & (flags >= 0)
    syn = tcp & (flags & 0x02 != 0)
    ece = tcp & ~syn & (flags & 0x40 != 0)
    data = tcp & (tcp_len > 0) & on_wire
    dup = ip & whole & (fp != 0)
    bits = df | ce << 1 | tcp << 2 | (syn & (mss != 0)) << 3 | ece << 4 | data << 5 | dup << 6
    out[:] = bits
    return out


def extra_columns(x: Extra) -> dict[str, int]:
    """The same columns for a packet the scalar dissectors decoded."""
    fp = x.fingerprint
    vxf = 0
    for kind in x.vxlan_flags:
        vxf |= 1 << VXLAN_FLAG_BITS.index(kind)
    return {"fp": fp - (1 << 64) if fp >> 63 else fp, "offload": int(x.offload), "vxf": vxf}


@dataclass(slots=True)
class FeedStats:
    blocks: int = 0
    rows: int = 0
    one_by_one: int = 0  # rows replayed through Collector.add_view (cap pressure, key collision)
    tcp_python: int = 0  # TCP data segments through TcpTrack.add (heads, pending, multi-path flows)
    resets: int = 0  # group tables dropped after a block (FactsFeed.limit passed)


def group_order(g: np.ndarray) -> np.ndarray:
    """Stable argsort of group numbers (a radix sort when they fit 16 bits: the common case)."""
    if g.shape[0] and int(g.max()) < 65536:
        return np.argsort(g.astype(np.uint16), kind="stable")
    return np.argsort(g, kind="stable")


def _ranks(gs: np.ndarray) -> np.ndarray:
    """Position of each row within its run of equal (sorted) group numbers."""
    m = gs.shape[0]
    start = np.ones(m, dtype=bool)
    start[1:] = gs[1:] != gs[:-1]
    pos = np.arange(m)
    return pos - np.maximum.accumulate(np.where(start, pos, 0))


class _Candidates:
    """Rows of a block that may enter a Top, grouped: the first ``n`` of each group in Top order."""

    @staticmethod
    def pick(
        g: np.ndarray, sel: np.ndarray, n: int, ts: np.ndarray, frame: np.ndarray, key: np.ndarray | None, mono: bool
    ) -> tuple[list[int], list[int]]:
        idx = np.flatnonzero(sel)
        if idx.shape[0] == 0:
            return [], []
        gi = g[idx]
        if not mono:
            keys = (frame[idx], ts[idx], gi) if key is None else (frame[idx], ts[idx], key[idx], gi)
            order = np.lexsort(keys)
            gs = gi[order]
            take = _ranks(gs) < n
            return gs[take].tolist(), idx[order][take].tolist()
        if key is None:
            order = group_order(gi)  # capture order is Top order within a group
            gs = gi[order]
            take = _ranks(gs) < n
            return gs[take].tolist(), idx[order][take].tolist()
        # keyed: only rows with their group's smallest key can be first, unless fewer than n have it
        k = key[idx]
        low = np.full(int(gi.max()) + 1, _BIG, dtype=_I64)
        np.minimum.at(low, gi, k)
        at_low = k == low[gi]
        cnt = np.bincount(gi[at_low], minlength=low.shape[0])
        enough = cnt[gi] >= n
        out_g: list[int] = []
        out_i: list[int] = []
        a = at_low & enough
        if a.any():
            ia, ga = idx[a], gi[a]
            order = group_order(ga)
            gs = ga[order]
            take = _ranks(gs) < n
            out_g, out_i = gs[take].tolist(), ia[order][take].tolist()
        if not enough.all():
            b = ~enough
            ib, gb = idx[b], gi[b]
            order = np.lexsort((frame[ib], ts[ib], k[b], gb))
            gs = gb[order]
            take = _ranks(gs) < n
            out_g += gs[take].tolist()
            out_i += ib[order][take].tolist()
        return out_g, out_i


class _TopLimits:
    """By group, the largest key its full Top holds (``_BIG``: not full), cached until the next sync.

    ``_Block.open_rows`` compares each row with its group's full Top every block; most Tops are full
    and stay so (a flow's five largest DF sizes are its first full-sized packets): cached, only groups
    new since the last sync or whose Top a block added to are asked again.
    """

    def __init__(self) -> None:
        self.raw = np.zeros(0, dtype=_I64)
        self.ok = np.zeros(0, dtype=bool)

    def get(self, n: int, groups: np.ndarray, top: Callable[[int], Top[Any]]) -> np.ndarray:
        """The limits of ``groups`` (of ``n`` groups in all) are valid in the array returned."""
        if self.ok.shape[0] < n:
            size = max(n, 2 * self.ok.shape[0], 1024)
            raw, ok = np.zeros(size, dtype=_I64), np.zeros(size, dtype=bool)
            raw[: self.raw.shape[0]], ok[: self.ok.shape[0]] = self.raw, self.ok
            self.raw, self.ok = raw, ok
        cold = groups[~self.ok[groups]].tolist()
        if cold:
            vals = []
            for f in cold:
                t = top(f)
                vals.append(t.items[-1][0] if len(t.items) >= t.n else _BIG)
            self.raw[cold] = vals
            self.ok[cold] = True
        return self.raw

    def forget(self, groups: list[int]) -> None:
        self.ok[groups] = False

    def clear(self) -> None:
        self.ok[:] = False


class _TcpArrays:
    """The TcpTrack state of the flows blocks saw since the last sync, by flow group, for the compiled step.

    Columns of ``state`` (as ``tcp`` in ipsotrace/fast/_walk.c reads them): next (-1: None), last path
    group (-1: None), runs kept, runs ever started, first path group (-1: None), head length, runs at the
    head's end (-1: head open), pending length, overflow not yet in the object.  ``runs`` holds (first
    sequence number, path group) per run kept.  The head and pending events themselves, and the head's
    state once complete, go into the objects at once (a bounded number per flow).
    """

    NS = 9

    def __init__(self) -> None:
        self.live = np.zeros(0, dtype=bool)
        self.state = np.zeros((0, self.NS), dtype=_I64)
        self.runs = np.zeros((0, MAX_RUNS, 2), dtype=_I64)

    def load(self, feed: FactsFeed, groups: np.ndarray, objs: dict[int, FlowFacts]) -> list[int]:
        """Make ``groups``' state live; the flows that cannot be (a path only one-by-one rows saw) are returned."""
        n = len(feed._fkeys)
        if self.live.shape[0] < n:
            size = max(n, 2 * self.live.shape[0], 1024)
            for name in ("live", "state", "runs"):
                a = getattr(self, name)
                out = np.zeros((size, *a.shape[1:]), dtype=a.dtype)
                out[: a.shape[0]] = a
                setattr(self, name, out)
        cold = groups[~self.live[groups]].tolist()
        if not cold:
            return []
        get = feed._pid.get
        bad: list[int] = []
        ok: list[int] = []
        rows: list[tuple[int, ...]] = []
        run_rows: list[list[tuple[int, int]]] = []
        for f in cold:
            ff = objs[f]
            tr = ff.tcp
            if tr is None:
                ff.tcp = tr = TcpTrack()
            last = -1 if tr.last is None else get((f, tr.last), -2)
            first = -1 if tr.first_path is None else get((f, tr.first_path), -2)
            runs = [(s, get((f, pk), -2)) for s, pk in tr.runs]
            if last == -2 or first == -2 or len(runs) > MAX_RUNS or any(p == -2 for _, p in runs):
                bad.append(f)
                continue
            hs = tr.head_state
            nxt = -1 if tr.next is None else tr.next
            rows.append((nxt, last, len(runs), tr.runs_total, first, len(tr.head), -1 if hs is None else hs[2],
                         len(tr.pending), 0))  # fmt: skip
            run_rows.append(runs)
            ok.append(f)
        if ok:
            self.state[ok] = rows
            self.runs[ok] = 0
            flat = [r for rs in run_rows for r in rs]
            if flat:
                counts = [len(rs) for rs in run_rows]
                fr = np.repeat(np.array(ok, dtype=_I64), counts)
                fc = np.arange(len(flat)) - np.repeat(np.cumsum(counts) - counts, counts)
                self.runs[fr, fc] = flat
            self.live[ok] = True
        return bad

    def store(self, feed: FactsFeed) -> None:
        """Write the live state into the flows' TcpTrack objects (FactsFeed.sync)."""
        live = np.flatnonzero(self.live)
        if not live.shape[0]:
            return
        flows, fkeys, pkeys = feed.coll.result.flows, feed._fkeys, feed._pkeys
        state = self.state[live].tolist()
        runs = self.runs[live].reshape(live.shape[0], 2 * MAX_RUNS).tolist()  # (start, path) pairs, flat
        for k, f in enumerate(live.tolist()):
            tr = flows[fkeys[f]].tcp
            assert tr is not None
            nxt, last, nr, total, first = state[k][:5]
            tr.next = None if nxt < 0 else nxt
            tr.last = None if last < 0 else pkeys[last]
            pairs = runs[k]
            tr.runs = [(pairs[2 * j], pkeys[pairs[2 * j + 1]]) for j in range(nr)]
            tr.runs_total = total
            tr.first_path = None if first < 0 else pkeys[first]
            tr.overflow += state[k][8]
        self.live[live] = False


class FactsFeed:
    """Feeds a :class:`Collector` from fast-path rows, in capture order (``row`` orders them)."""

    def __init__(self, coll: Collector, encaps: list[str], latest_ns: int | None = None) -> None:
        """``latest_ns``: the latest capture time the collector has seen (None: nothing yet)."""
        self.coll = coll
        self.encaps = encaps  # the engine's encapsulation names (grows with it)
        self.stats = FeedStats()
        self._buf: list[tuple[dict[str, np.ndarray], np.ndarray]] = []  # rows and their path groups
        self._collided = False  # a 64-bit key collision in the buffer: that block goes one by one
        self._buffered = 0
        self._slim = False  # the buffer holds only the columns a block reads (FactsFeed.add)
        self._max_ts = -(1 << 63) if latest_ns is None else latest_ns  # latest capture time in the facts
        #: path groups the tables hold before they are synced and dropped (between blocks)
        self.limit = 2 * coll.result.max_flows + coll.result.max_tunnels
        self._reset_tables()

    def _reset_tables(self) -> None:
        """Number groups afresh: only after :meth:`sync`, which leaves the collector's objects holding it all.

        The tables are a cache of group numbers (and of counts waiting for sync()) that grows with
        every flow and path rows name, while the collector evicts: past :attr:`limit` path groups they
        are dropped, so a flood of new flows takes O(limit + BLOCK) memory here, not O(packets).
        """
        self._table = A.GroupTable()
        self._pkeys: list[PathKey] = []  # path group → path key, its flow and tunnel
        self._p_flow = np.zeros(0, dtype=_I64)
        self._p_tun = np.zeros(0, dtype=_I64)
        self._fkeys: list[FlowKey] = []
        self._tkeys: list[TunnelKey] = []
        self._fid: dict[FlowKey, int] = {}
        self._tid: dict[TunnelKey, int] = {}
        self._pid: dict[tuple[int, PathKey], int] = {}  # (flow group, path key) → path group
        # per flow group, the duplicate state of the flows blocks saw since the last sync(): the ring
        # (right-aligned, _d_len entries), the head length and the counts not yet in the DupTrack
        self._d_live = np.zeros(0, dtype=bool)
        self._d_len = np.zeros(0, dtype=_I64)
        self._d_head = np.zeros(0, dtype=_I64)
        self._d_fp = np.zeros((0, DUP_WINDOW), dtype=_U64)
        self._d_ttl = np.zeros((0, DUP_WINDOW), dtype=_I64)
        self._d_ts = np.zeros((0, DUP_WINDOW), dtype=_I64)
        self._d_dups = np.zeros(0, dtype=_I64)
        self._d_loops = np.zeros(0, dtype=_I64)
        # additive counts and maxima not yet in the flows' and paths' objects (sync() writes them), and
        # those objects by group: valid until sync() (the scalar collector may evict or replace them)
        self._f_packets = np.zeros(0, dtype=_I64)
        self._f_df_max = np.zeros(0, dtype=_I64)
        self._p_packets = np.zeros(0, dtype=_I64)
        self._p_new_bins = np.zeros((0, len(SIZE_BINS)), dtype=_I64)
        self._p_new_max = np.zeros(0, dtype=_I64)
        self._p_retx_here = np.zeros(0, dtype=_I64)
        self._fobj: dict[int, FlowFacts] = {}
        self._pobj: dict[int, PathFacts | None] = {}  # None: a path past the flow's cap
        self._f_known = np.zeros(0, dtype=bool)  # in _fobj
        self._p_known = np.zeros(0, dtype=bool)
        self._tcps = _TcpArrays()  # the TCP state of flows, for the compiled step (TCP)
        self._df_limits = _TopLimits()  # the flows' df_top limits (_Block.open_rows)
        self._outer_limits = _TopLimits()  # the tunnels' outer_top limits

    # -- input -------------------------------------------------------------------------------------------
    def begin_source(self, name: str) -> None:
        self.flush()
        self.coll.begin_source(name)

    def add(self, cols: dict[str, np.ndarray]) -> None:
        """Buffer rows (any order within what is buffered; :meth:`flush` sorts by ``row``).

        Their (flow, path) groups are numbered now, while the key columns are in cache.  Only the
        columns a block reads are kept (not copied): holding every column of the buffered sub-batches
        was measured to slow the whole engine down (~0.1 s per million rows), the decoder's fresh
        arrays no longer reusing freed memory.  All of them are kept (``cols`` as it is) where the
        block may go one by one: near the caps (a block's new flows or tunnels could pass them) or on
        a key collision; rows kept slim before that go first, as a block of their own.
        """
        n = int(cols["row"].shape[0])
        if not n:
            return
        facts = self.coll.result
        # even if every row of these named a new flow and tunnel, no block could pass the caps
        roomy = (
            len(facts.tunnels) + len(self._tkeys) + n <= facts.max_tunnels
            and len(facts.flows) + len(self._fkeys) + n <= facts.max_flows
        )
        if not roomy and self._slim:
            self.flush()
        try:
            pid = self._paths(cols)
        except A.HashCollision:
            pid = np.full(n, -1, dtype=_I64)
            if self._slim:
                self.flush()  # the rows before these (their groups are sound): a block of their own
            self._collided = True
        if roomy and not self._collided and (self._slim or not self._buf):
            cols = {k: cols[k] for k in BLOCK_COLUMNS}
            self._slim = True
        self._buf.append((cols, pid))
        self._buffered += n

    def add_packet(self, pkt: Packet, v: View) -> None:
        """A packet rows cannot carry: after everything before it, through the scalar collector."""
        self.flush()
        self.sync()
        self.coll.add(pkt, v)
        self._max_ts = max(self._max_ts, pkt.ts_ns)

    def full(self) -> bool:
        # past the limit too: the block ends here so that the tables it names can be dropped
        return self._buffered >= BLOCK or len(self._pkeys) > self.limit

    def flush(self) -> None:
        """Process everything buffered: call it only when every earlier row has been added."""
        if not self._buf:
            return
        with paused_gc():
            self._flush()

    def _flush(self) -> None:
        parts, self._buf, self._buffered = self._buf, [], 0
        slim, self._slim = self._slim, False
        collided, self._collided = self._collided, False
        self.stats.blocks += 1
        names = COLUMNS if collided else BLOCK_COLUMNS
        if len(parts) == 1:
            c, pid = {k: parts[0][0][k] for k in names}, parts[0][1]
        else:
            c = {k: np.concatenate([p[0][k] for p in parts]) for k in names}
            pid = np.concatenate([p[1] for p in parts])
        row = c["row"]
        self.stats.rows += int(row.shape[0])
        if row.shape[0] > 1 and (row[1:] < row[:-1]).any():
            order = np.argsort(row, kind="stable")
            c = {k: v[order] for k, v in c.items()}
            pid = pid[order]
        if collided:
            self.sync()
            self._one_by_one(c)
        elif self._cap_pressure(c, pid):
            assert not slim, "a slim buffer is far from the caps (FactsFeed.add)"
            self.sync()
            self._one_by_one(self._all_columns(parts))
        else:
            _Block(self, c, pid).run()
        if len(self._pkeys) > self.limit:
            self.sync()
            self._reset_tables()
            self.stats.resets += 1

    def finish(self) -> None:
        """Flush and :meth:`sync`: the collector's facts are then complete, for anyone to read or merge."""
        self.flush()
        with paused_gc():  # it makes a few objects per flow: a collection would walk all of the facts
            self.sync()

    def sync(self) -> None:
        """Write the state blocks keep in arrays into the collector's objects.

        Needed before anything else reads or changes those objects: the scalar collector (a
        packet rows cannot carry, a block that goes one by one: it may also evict flows), the
        findings, a merge.  The arrays are reloaded from the objects by the next block.
        """
        self._tcps.store(self)
        self._df_limits.clear()
        self._outer_limits.clear()
        flows, fkeys = self.coll.result.flows, self._fkeys
        if self._fobj:
            f_l = np.flatnonzero(self._f_packets).tolist()
            for f, n, hi in zip(f_l, self._f_packets[f_l].tolist(), self._f_df_max[f_l].tolist(), strict=True):
                ff = self._fobj[f]
                ff.packets += n
                ff.df_max = max(ff.df_max, hi)
            self._f_packets[f_l] = 0
            self._f_df_max[f_l] = 0
            p_l = np.flatnonzero(self._p_packets).tolist()
            bins = self._p_new_bins[p_l].tolist()
            for k, (q, n, hi, here) in enumerate(
                zip(p_l, self._p_packets[p_l].tolist(), self._p_new_max[p_l].tolist(),
                    self._p_retx_here[p_l].tolist(), strict=True)
            ):  # fmt: skip
                pf = self._pobj[q]
                if pf is None:  # past its flow's path cap
                    self._fobj[int(self._p_flow[q])].paths_overflow += n
                    continue
                pf.packets += n
                pf.new_bins = [a + b for a, b in zip(pf.new_bins, bins[k], strict=True)]
                pf.new_max = max(pf.new_max, hi)
                pf.retx_here += here
            for a in (self._p_packets, self._p_new_bins, self._p_new_max, self._p_retx_here):
                a[p_l] = 0
            self._fobj, self._pobj = {}, {}
            self._f_known[:] = False
            self._p_known[:] = False
        live = np.flatnonzero(self._d_live)
        if not live.shape[0]:
            return
        n_l, dups, loops = self._d_len[live].tolist(), self._d_dups[live].tolist(), self._d_loops[live].tolist()
        fp, ttl, ts = self._d_fp[live].tolist(), self._d_ttl[live].tolist(), self._d_ts[live].tolist()
        for k, f in enumerate(live.tolist()):
            d = flows[fkeys[f]].dup
            lo = DUP_WINDOW - n_l[k]
            d.ring = list(zip(fp[k][lo:], ttl[k][lo:], ts[k][lo:], strict=True))
            d.duplicates += dups[k]
            d.loops += loops[k]
        self._d_dups[live] = 0
        self._d_loops[live] = 0
        self._d_live[live] = False

    def _grow(self) -> None:
        """Make the per-group arrays cover every flow and path group."""
        n, p = len(self._fkeys), len(self._pkeys)

        def grown(a: np.ndarray, n: int) -> np.ndarray:
            if a.shape[0] >= n:
                return a
            out = np.zeros((max(n, 2 * a.shape[0], 1024), *a.shape[1:]), dtype=a.dtype)
            out[: a.shape[0]] = a
            return out

        self._f_packets, self._f_df_max = grown(self._f_packets, n), grown(self._f_df_max, n)
        self._f_known = grown(self._f_known, n)
        self._p_packets, self._p_new_bins = grown(self._p_packets, p), grown(self._p_new_bins, p)
        self._p_new_max, self._p_retx_here = grown(self._p_new_max, p), grown(self._p_retx_here, p)
        self._p_known = grown(self._p_known, p)

    def _dup_state(self, groups: np.ndarray, objs: dict[int, FlowFacts]) -> None:
        """Make the duplicate arrays cover every flow group and hold ``groups``' state."""
        n = len(self._fkeys)
        if self._d_live.shape[0] < n:
            size = max(n, 2 * self._d_live.shape[0], 1024)

            def grown(a: np.ndarray) -> np.ndarray:
                out = np.zeros((size, *a.shape[1:]), dtype=a.dtype)
                out[: a.shape[0]] = a
                return out

            self._d_live, self._d_len, self._d_head = grown(self._d_live), grown(self._d_len), grown(self._d_head)
            self._d_fp, self._d_ttl, self._d_ts = grown(self._d_fp), grown(self._d_ttl), grown(self._d_ts)
            self._d_dups, self._d_loops = grown(self._d_dups), grown(self._d_loops)
        cold = groups[~self._d_live[groups]]
        if not cold.shape[0]:
            return
        tracks = [objs[f].dup for f in cold.tolist()]
        r_len = np.array([len(d.ring) for d in tracks], dtype=_I64)
        self._d_len[cold] = r_len
        self._d_head[cold] = [len(d.head) for d in tracks]
        flat = [e for d in tracks for e in d.ring]
        self._d_fp[cold] = 0
        self._d_ttl[cold] = 0
        self._d_ts[cold] = 0
        if flat:
            fr = np.repeat(cold, r_len)
            fc = np.arange(len(flat)) + np.repeat(DUP_WINDOW - np.cumsum(r_len), r_len)  # right-aligned
            e_fp, e_ttl, e_ts = zip(*flat, strict=True)
            self._d_fp[fr, fc] = np.array(e_fp, dtype=_U64)
            self._d_ttl[fr, fc] = e_ttl
            self._d_ts[fr, fc] = e_ts
        self._d_live[cold] = True

    def _all_columns(self, parts: list[tuple[dict[str, np.ndarray], np.ndarray]]) -> dict[str, np.ndarray]:
        c = {k: np.concatenate([p[0][k] for p in parts]) for k in COLUMNS}
        order = np.argsort(c["row"], kind="stable")
        return {k: v[order] for k, v in c.items()}

    # -- groups --------------------------------------------------------------------------------------------
    def _paths(self, c: dict[str, np.ndarray]) -> np.ndarray:
        h, chk = c.get("key_hash"), c.get("key_check")  # the accumulator's, when it hashed these rows
        if h is None or chk is None:
            words = A._packed_key(c)
            names = tuple(words)
            h = A.key_hashes(words, names)
            chk = A.key_checks(words, names)
        pid = self._table.lookup(h)
        new = pid < 0
        if new.any():
            rows = np.flatnonzero(new)
            uniq, first = np.unique(h[rows], return_index=True)
            order = np.argsort(first)
            first_rows = rows[first[order]]
            gids = self._table.insert(uniq[order], chk[first_rows])
            pf = np.empty(gids.shape[0], dtype=_I64)
            pt = np.empty(gids.shape[0], dtype=_I64)
            for k, keys in enumerate(A.rows_keys(c, first_rows, self.encaps)):
                fk, tk, pk = cast(tuple[FlowKey, TunnelKey, PathKey], keys)
                pt[k] = self._tid.setdefault(tk, len(self._tid))
                if len(self._tkeys) < len(self._tid):
                    self._tkeys.append(tk)
                pf[k] = fid = self._fid.setdefault(fk, len(self._fid))
                if len(self._fkeys) < len(self._fid):
                    self._fkeys.append(fk)
                self._pid[(fid, pk)] = len(self._pkeys)
                self._pkeys.append(pk)
            self._p_flow = np.concatenate([self._p_flow, pf])
            self._p_tun = np.concatenate([self._p_tun, pt])
            pid = self._table.lookup(h)
        if (self._table.check[pid] != chk).any():
            raise A.HashCollision
        return pid

    def _cap_pressure(self, c: dict[str, np.ndarray], pid: np.ndarray) -> bool:
        """New flows or tunnels of this block would pass the cap: evictions then depend on packet order."""
        facts = self.coll.result
        if len(facts.tunnels) + len(self._tkeys) <= facts.max_tunnels and (
            len(facts.flows) + len(self._fkeys) <= facts.max_flows
        ):
            return False  # the common case: even every group the feed knows could not pass the caps
        tuns = np.flatnonzero(np.bincount(self._p_tun[pid], minlength=len(self._tkeys))).tolist()
        new_t = sum(1 for t in tuns if self._tkeys[t] not in facts.tunnels)
        if len(facts.tunnels) + new_t > facts.max_tunnels:
            return True
        ip = (c["i_ver"] == 4) | (c["i_ver"] == 6)
        flows = np.flatnonzero(np.bincount(self._p_flow[pid[ip]], minlength=len(self._fkeys))).tolist()
        new_f = sum(1 for f in flows if self._fkeys[f] not in facts.flows)
        return len(facts.flows) + new_f > facts.max_flows

    def _one_by_one(self, c: dict[str, np.ndarray]) -> None:
        coll = self.coll
        n = int(c["row"].shape[0])
        if n:  # later blocks compare their evidence with the latest time the facts hold
            self._max_ts = max(self._max_ts, int(c["ts"].max()))
        fp = c["fp"].view(_U64).tolist()
        off, vxf = c["offload"].tolist(), c["vxf"].tolist()
        ts, frame = c["ts"].tolist(), c["frame"].tolist()
        for i in range(n):
            v = A.row_view(c, i, self.encaps)
            flags = tuple(k for b, k in enumerate(VXLAN_FLAG_BITS) if vxf[i] >> b & 1)
            x = Extra(None, bool(off[i]), fp[i], None, flags)
            coll.add_tunnelled(v, x, (ts[i], coll.source, frame[i]))
        self.stats.one_by_one += n


class _Block:
    """One block of rows in capture order, applied to the collector's facts."""

    def __init__(self, feed: FactsFeed, c: dict[str, np.ndarray], pid: np.ndarray) -> None:
        self.feed = feed
        self.c = c
        self.pid = pid
        self.fid = feed._p_flow[pid]
        self.tun = feed._p_tun[pid]
        self.ts = c["ts"]
        self.frame = c["frame"]
        ts = self.ts
        self.mono = bool(ts.shape[0] < 2 or (ts[1:] >= ts[:-1]).all())
        self.source = feed.coll.source
        #: every row's evidence sorts after all evidence kept so far: a full Top takes no equal key
        self.after = self.mono and ts.shape[0] > 0 and int(ts[0]) > feed._max_ts
        if ts.shape[0]:
            feed._max_ts = max(feed._max_ts, int(ts.max()))

    def ev(self, i: int) -> Ev:
        return (int(self.ts[i]), self.source, int(self.frame[i]))

    def tops(
        self, g: np.ndarray, sel: np.ndarray, n: int, key: np.ndarray | None = None
    ) -> tuple[list[int], list[int]]:
        return _Candidates.pick(g, sel, n, self.ts, self.frame, key, self.mono)

    def offer(self, gs: list[int], idx: list[int], top: Callable[[int], Top[Any]], key: np.ndarray) -> None:
        """``top(g).add((key[i], ev(i)))`` for the candidates ``tops`` picked (values as lists, not numpy scalars)."""
        if not gs:
            return
        ia = np.array(idx, dtype=_I64)
        evs = zip(self.ts[ia].tolist(), repeat(self.source), self.frame[ia].tolist())
        by: dict[int, list[tuple[int, Ev]]] = {}
        for g, k, ev in zip(gs, key[ia].tolist(), evs, strict=True):
            by.setdefault(g, []).append((k, ev))
        for g, items in by.items():
            t = top(g)
            if len(items) == 1:
                t.add(items[0])
            else:  # what adding them one by one leaves: the n smallest distinct items (Top.merge)
                t.items = sorted(set(t.items).union(items))[: t.n]

    def open_rows(self, key: np.ndarray, limits: np.ndarray, g: np.ndarray) -> np.ndarray:
        """Rows that could still enter their group's Top (a cheap pre-selection; ``Top.add`` decides):
        a key at most the largest one the group's full Top holds (``limits``, see :class:`_TopLimits`),
        below it when every row's evidence sorts after all kept so far (an equal key then loses)."""
        return key <= limits[g] - int(self.after)

    def firsts(self, g: np.ndarray, sel: np.ndarray) -> dict[int, int]:
        """Group → row of its earliest packet, in order of first appearance (one pass inserts in that order)."""
        rows = np.flatnonzero(sel)
        first = np.full(int(g.max()) + 1, _BIG, dtype=_I64)
        np.minimum.at(first, g[rows], rows)
        present = np.flatnonzero(first < _BIG)
        fr = first[present]
        order = np.argsort(fr)
        if self.mono:
            return dict(zip(present[order].tolist(), fr[order].tolist(), strict=True))
        gs, idx = self.tops(g, sel, 1)  # time goes back in this block: the earliest is not always the first
        earliest = dict(zip(gs, idx, strict=True))
        return {q: earliest[q] for q in present[order].tolist()}

    def run(self) -> None:
        c = self.c
        ip = (c["i_ver"] == 4) | (c["i_ver"] == 6)
        tunnels = self._tunnels(ip)
        if ip.any():
            self._flows(ip, tunnels)

    # -- tunnels -----------------------------------------------------------------------------------------
    def _tunnels(self, ip: np.ndarray) -> dict[int, TunnelFacts]:
        feed, c, g = self.feed, self.c, self.tun
        facts = feed.coll.result
        size = len(feed._tkeys)
        counts, flags = tunnel_counts(c, g, size)
        if self.mono:
            fr = counts[:, 1]
            present = np.flatnonzero(fr < _BIG)
            at = fr[present]
            order = np.argsort(at)
            first = dict(zip(present[order].tolist(), at[order].tolist(), strict=True))
        else:
            first = self.firsts(g, np.ones(g.shape[0], dtype=bool))
        objs: dict[int, TunnelFacts] = {}
        # new tunnels enter the dict in order of their first row, as one pass inserts them
        for t in first:
            key = feed._tkeys[t]
            ev = self.ev(first[t])
            obj = facts.tunnels.get(key)
            if obj is None:
                facts.tunnels[key] = obj = TunnelFacts(ev)
            elif ev < obj.first:
                obj.first = ev
            objs[t] = obj
        table = counts.tolist()
        for t, obj in objs.items():
            (n, _, oh_lo, oh_hi, compared, copied, marked, dscp_lost, dscp_changed, capable, ecn_lost) = table[t]
            obj.packets += n
            if oh_lo < _BIG:
                obj.overhead_min = min(obj.overhead_min, oh_lo)
                obj.overhead_max = max(obj.overhead_max, oh_hi)
            obj.ttl_compared += compared
            obj.ttl_copied += copied
            obj.dscp_marked += marked
            obj.dscp_lost += dscp_lost
            obj.dscp_changed += dscp_changed
            obj.ecn_capable += capable
            obj.ecn_lost += ecn_lost
        o_size = c["o_size"]
        limits = feed._outer_limits.get(size, np.array(list(objs), dtype=_I64), lambda t: objs[t].outer_top)
        outer = (flags & 1).view(bool) & self.open_rows(-o_size, limits, g)
        gs, idx = self.tops(g, outer, 3, -o_size)
        self.offer(gs, idx, lambda t: objs[t].outer_top, -o_size)
        feed._outer_limits.forget(gs)
        vxf = c["vxf"]
        if vxf.any():
            bad = (vxf != 0) & (c["encap"] == feed.encaps.index("vxlan") if "vxlan" in feed.encaps else False)
            for b, kind in enumerate(VXLAN_FLAG_BITS):
                cnt = np.bincount(g[bad & ((vxf >> b) & 1 == 1)], minlength=size).tolist()
                for t, obj in objs.items():
                    if cnt[t]:
                        obj.bad_flags[kind] = obj.bad_flags.get(kind, 0) + cnt[t]
            cnt = np.bincount(g[bad], minlength=size).tolist()
            for t, obj in objs.items():
                obj.bad_flag_packets += cnt[t]
            gs, idx = self.tops(g, bad, 8)
            for t, i in zip(gs, idx, strict=True):
                objs[t].bad_flags_ev.add(self.ev(i))
        totals = counts.sum(axis=0).tolist()
        for name, bit, present_ in (
            ("ttl_ev", 2, totals[4] > totals[5]),
            ("dscp_ev", 4, totals[7] + totals[8] > 0),
            ("ecn_ev", 8, totals[10] > 0),
        ):
            if present_:
                gs, idx = self.tops(g, (flags & bit) != 0, 4)
                for t, i in zip(gs, idx, strict=True):
                    getattr(objs[t], name).add(self.ev(i))
        return objs

    # -- flows ---------------------------------------------------------------------------------------------
    def _flows(self, ip: np.ndarray, tunnels: dict[int, TunnelFacts]) -> None:
        feed, c, g = self.feed, self.c, self.fid
        facts = feed.coll.result
        feed._grow()
        gi = g[ip]
        packets = np.bincount(gi, minlength=feed._f_packets.shape[0])
        feed._f_packets += packets
        fobj, ts_l, frame_l, source = feed._fobj, self.ts, self.frame, self.source
        # a block after everything so far cannot move a known object's first packet: new ones only
        todo = ip & ~feed._f_known[g] if self.after else ip
        if todo.any():
            fkeys, flows = feed._fkeys, facts.flows
            for f, i in self.firsts(g, todo).items():
                key = fkeys[f]
                ev = (int(ts_l[i]), source, int(frame_l[i]))
                obj = flows.get(key)
                if obj is None:
                    flows[key] = obj = FlowFacts(ev)
                elif ev < obj.first:
                    obj.first = ev
                fobj[f] = obj
            feed._f_known[gi] = True
        present_a = np.flatnonzero(packets)
        present = present_a.tolist()
        objs = dict(zip(present, map(fobj.__getitem__, present), strict=True))
        size = len(feed._fkeys)
        # paths, in order of their first packet
        p = self.pid
        pi = p[ip]
        feed._p_packets += np.bincount(pi, minlength=feed._p_packets.shape[0])
        todo = ip & ~feed._p_known[p] if self.after else ip
        if todo.any():
            p_flow, pobj = feed._p_flow, feed._pobj
            for q, i in self.firsts(p, todo).items():
                ev = self.ev(i)
                pf = objs[int(p_flow[q])].path(feed._pkeys[q], ev)
                if pf is not None and ev < pf.first:
                    pf.first = ev
                pobj[q] = pf  # None: past the flow's MAX_PATHS, its packets count in paths_overflow
            feed._p_known[pi] = True
        fl = flow_flags(c, g, feed._f_df_max)  # the DF maxima are raised here too
        i_size = c["i_size"]
        df = (fl & 1) != 0
        if df.any():
            limits = feed._df_limits.get(size, present_a, lambda f: objs[f].df_top)
            df &= self.open_rows(-i_size, limits, g)
            gs, idx = self.tops(g, df, 5, -i_size)
            self.offer(gs, idx, lambda f: objs[f].df_top, -i_size)
            feed._df_limits.forget(gs)
        ce = (fl & 2) != 0
        if ce.any():
            self._ce(ce, objs)
        if ((fl & 4) != 0).any():
            mss = c["mss"]
            gs, idx = self.tops(g, (fl & 8) != 0, 3, -mss)
            self.offer(gs, idx, lambda f: objs[f].syn_mss, -mss)
            ece = (fl & 16) != 0
            if ece.any():
                cnt = np.bincount(g[ece], minlength=size).tolist()
                for f in np.unique(g[ece]).tolist():
                    objs[f].ece += cnt[f]
        dup = (fl & 64) != 0
        if dup.any():
            self._dups(dup, objs)
        data = (fl & 32) != 0
        if data.any():
            self._tcp(data, objs)

    def _ce(self, ce: np.ndarray, objs: dict[int, FlowFacts]) -> None:
        g, ts = self.fid, self.ts
        size = len(self.feed._fkeys)
        cnt = np.bincount(g[ce], minlength=size).tolist()
        gs, idx = self.tops(g, ce, 4)
        for f, i in zip(gs, idx, strict=True):
            objs[f].ce_ev.add(self.ev(i))
        if (ts[ce] == 0).any():
            # a capture time of 0 reads as "none yet" in the scalar collector: replay it exactly
            for i in np.flatnonzero(ce).tolist():
                obj, t = objs[int(g[i])], int(ts[i])
                if not obj.ce_first_ns or t < obj.ce_first_ns:
                    obj.ce_first_ns = t
        else:
            lo = np.full(size, np.iinfo(_I64).max, dtype=_I64)  # above any capture time (past 2**62 too)
            np.minimum.at(lo, g[ce], ts[ce])
            lo_l = lo.tolist()
            for f in np.unique(g[ce]).tolist():
                obj = objs[f]
                if not obj.ce_first_ns or lo_l[f] < obj.ce_first_ns:
                    obj.ce_first_ns = lo_l[f]
        for f in np.unique(g[ce]).tolist():
            objs[f].ce_outer += cnt[f]

    # -- duplicates -------------------------------------------------------------------------------------
    def _dups(self, sel: np.ndarray, objs: dict[int, FlowFacts]) -> None:
        """``DupTrack.add`` for every selected row, flows side by side (look-backs 1..8 vectorized).

        The rings and counts stay in the feed's arrays (:meth:`FactsFeed.sync` writes them out).
        """
        if DUPS is not None:
            self._dups_compiled(sel, objs)
            return
        feed = self.feed
        idx = np.flatnonzero(sel)
        gi = self.fid[idx]
        order = group_order(gi)
        idx, gs = idx[order], gi[order]
        m = gs.shape[0]
        start = np.ones(m, dtype=bool)
        start[1:] = gs[1:] != gs[:-1]
        starts = np.flatnonzero(start)
        rank = _ranks(gs)
        groups = gs[starts]
        ng = groups.shape[0]
        gpos = np.cumsum(start) - 1  # group ordinal of each row
        feed._dup_state(groups, objs)
        # the flows' rings (the last 8 packets before this block), right-aligned in 8 columns
        r_fp, r_ttl, r_ts = feed._d_fp[groups], feed._d_ttl[groups], feed._d_ts[groups]
        h0, r_len = feed._d_head[groups], feed._d_len[groups]
        fp = self.c["fp"][idx].view(_U64)
        ttl = self.c["i_ttl"][idx]
        ts = self.ts[idx]
        in_head = (h0[gpos] + rank) < DUP_WINDOW
        check = ~in_head
        # look-backs inside the block: equal fingerprints are rare, the rest is checked on them only
        hit_back = np.zeros(m, dtype=_I64)  # the oldest matching look-back (DupTrack scans oldest first)
        match_ttl = np.zeros(m, dtype=_I64)
        for back in range(1, DUP_WINDOW + 1):
            if m <= back:
                break
            same = np.flatnonzero(fp[back:] == fp[:-back]) + back
            same = same[rank[same] >= back]  # the same flow
            if same.shape[0]:
                age = ts[same] - ts[same - back]
                ok = check[same] & (age >= 0) & (age <= DUP_NS)
                same = same[ok]
                hit_back[same] = back
                match_ttl[same] = ttl[same - back]
        # look-backs reaching into the flow's ring: only a flow's first rows of the block
        early = np.flatnonzero(check & (rank < DUP_WINDOW) & (r_len[gpos] > 0))
        for back in range(1, DUP_WINDOW + 1):
            e = early[(rank[early] < back) & (back - rank[early] <= r_len[gpos[early]])]
            if e.shape[0] == 0:
                continue
            gp, col = gpos[e], DUP_WINDOW - (back - rank[e])
            age = ts[e] - r_ts[gp, col]
            ok = (r_fp[gp, col] == fp[e]) & (age >= 0) & (age <= DUP_NS)
            e = e[ok]
            hit_back[e] = back
            match_ttl[e] = r_ttl[gp[ok], col[ok]]
        found = hit_back > 0
        frame = self.frame[idx]
        if found.any():
            loops = found & (ttl >= 0) & (ttl < match_ttl)
            size = feed._d_dups.shape[0]
            feed._d_dups += np.bincount(gs[found], minlength=size)
            feed._d_loops += np.bincount(gs[loops], minlength=size)
            self._dup_evidence(objs, gs, found, ts, frame)
        # Python tuples only for the head rows (a flow's first 8 packets)
        self._hold_head(objs, np.flatnonzero(in_head), gs, fp, ttl, ts, frame)
        ends = np.empty(ng, dtype=_I64)
        ends[:-1] = starts[1:]
        ends[-1] = m
        cnt = ends - starts
        feed._d_head[groups] = np.minimum(h0 + cnt, DUP_WINDOW)
        # the new rings: the old one (columns 8 - r_len .. 7) followed by each flow's last rows
        # (columns 8 .. 8 + t - 1), read as the 8 columns ending with the last row
        t = np.minimum(cnt, DUP_WINDOW)
        tail_rows = np.flatnonzero(rank >= (cnt - DUP_WINDOW)[gpos])
        tr_g = gpos[tail_rows]
        tr_c = DUP_WINDOW + rank[tail_rows] - (cnt - t)[tr_g]
        window = t[:, None] + np.arange(DUP_WINDOW)
        for ring, a, dtype in ((feed._d_fp, fp, _U64), (feed._d_ttl, ttl, _I64), (feed._d_ts, ts, _I64)):
            ext = np.zeros((ng, 2 * DUP_WINDOW), dtype=dtype)
            ext[:, :DUP_WINDOW] = ring[groups]
            ext[tr_g, tr_c] = a[tail_rows]
            ring[groups] = np.take_along_axis(ext, window, axis=1)
        feed._d_len[groups] = np.minimum(r_len + t, DUP_WINDOW)

    def _dups_compiled(self, sel: np.ndarray, objs: dict[int, FlowFacts]) -> None:
        """As :meth:`_dups`, one pass in capture order (no group sort): the same arrays, the same results."""
        feed = self.feed
        idx = np.flatnonzero(sel)
        gi = self.fid[idx]
        groups = np.flatnonzero(np.bincount(gi))
        feed._dup_state(groups, objs)
        fp = np.ascontiguousarray(self.c["fp"][idx], dtype=_I64).view(_U64)
        ttl = np.ascontiguousarray(self.c["i_ttl"][idx], dtype=_I64)
        ts = np.ascontiguousarray(self.ts[idx], dtype=_I64)
        out = np.zeros(idx.shape[0], dtype=np.int8)
        DUPS(gi, fp, ttl, ts, feed._d_fp, feed._d_ttl, feed._d_ts, feed._d_len, feed._d_head, out, DUP_NS)
        frame = self.frame[idx]
        found = out >= 2
        if found.any():
            size = feed._d_dups.shape[0]
            feed._d_dups += np.bincount(gi[found], minlength=size)
            feed._d_loops += np.bincount(gi[out == 3], minlength=size)
            self._dup_evidence(objs, gi, found, ts, frame)
        self._hold_head(objs, np.flatnonzero(out == 1), gi, fp, ttl, ts, frame)

    def _dup_evidence(
        self, objs: dict[int, FlowFacts], g: np.ndarray, found: np.ndarray, ts: np.ndarray, frame: np.ndarray
    ) -> None:
        tg, ti = _Candidates.pick(g, found, 8, ts, frame, None, self.mono)
        for f, i in zip(tg, ti, strict=True):
            objs[f].dup.ev.add((int(ts[i]), self.source, int(frame[i])))

    def _hold_head(
        self,
        objs: dict[int, FlowFacts],
        rows: np.ndarray,
        g: np.ndarray,
        fp: np.ndarray,
        ttl: np.ndarray,
        ts: np.ndarray,
        frame: np.ndarray,
    ) -> None:
        """The rows of a flow's held-back duplicate head, as ``DupTrack.add`` keeps them."""
        source = self.source
        for f, a, b, t, fr in zip(
            g[rows].tolist(),
            fp[rows].tolist(),
            ttl[rows].tolist(),
            ts[rows].tolist(),
            frame[rows].tolist(),
            strict=True,
        ):
            objs[f].dup.head.append((a, b, (t, source, fr)))

    # -- TCP ---------------------------------------------------------------------------------------------
    def _tcp(self, sel: np.ndarray, objs: dict[int, FlowFacts]) -> None:
        if TCP is not None:
            self._tcp_compiled(sel, objs)
            return
        feed, c = self.feed, self.c
        idx = np.flatnonzero(sel)
        gi = self.fid[idx]
        order = group_order(gi)
        idx, gs = idx[order], gi[order]
        m = gs.shape[0]
        start = np.ones(m, dtype=bool)
        start[1:] = gs[1:] != gs[:-1]
        starts_a = np.flatnonzero(start)
        starts = starts_a.tolist()
        ends = [*starts[1:], m]
        groups = gs[starts_a].tolist()
        ng = len(groups)
        gpos = np.cumsum(start) - 1
        rank = _ranks(gs)
        seq_a, len_a, size_a = c["tcp_seq"][idx], c["tcp_len"][idx], c["i_size"][idx]
        end_a = (seq_a + len_a) & _M32
        pid = self.pid[idx]
        ts_a, frame_a = self.ts[idx], self.frame[idx]
        source = self.source
        pkeys = feed._pkeys

        def event(i: int) -> TcpEvent:
            # only for the segments that go through TcpTrack.add or wait in pending: numpy scalars → int
            return TcpEvent(
                int(seq_a[i]),
                int(len_a[i]),
                int(size_a[i]),
                pkeys[int(pid[i])],
                (int(ts_a[i]), source, int(frame_a[i])),
            )

        # per flow: the state this block starts from
        tracks: list[TcpTrack] = []
        room = np.zeros(ng, dtype=_I64)  # head slots left (0: the head is complete)
        fresh = np.zeros(ng, dtype=bool)  # no data yet
        simple = np.zeros(ng, dtype=bool)  # no data yet, or one run: what the vectorized way carries
        base = np.zeros(ng, dtype=_I64)
        path0 = np.full(ng, -2, dtype=_I64)
        for k, f in enumerate(groups):
            ff = objs[f]
            tr = ff.tcp
            if tr is None:
                ff.tcp = tr = TcpTrack()
            tracks.append(tr)
            if tr.head_state is None:
                room[k] = HEAD - len(tr.head)
            if tr.next is None and tr.runs_total == 0:
                fresh[k] = simple[k] = True
            elif tr.runs_total == 1 and len(tr.runs) == 1 and tr.next is not None and tr.last is not None:
                simple[k] = True
                base[k] = tr.next
                path0[k] = feed._pid.get((f, tr.last), -2)  # a path only one-by-one rows saw: no match
        # a flow's first segment is new data: its end is where the flow stands, its path the run's
        base = np.where(fresh, end_a[starts_a], base)
        path0 = np.where(fresh, pid[starts_a], path0)
        d = ((end_a - base[gpos] + (1 << 31)) & _M32) - (1 << 31)  # signed offset from where the flow stood
        off = (pid != path0[gpos]) | (np.abs(d) >= _SERIAL_SPAN)
        fast = simple & (np.bincount(gpos[off], minlength=ng) == 0)
        # the rest (another path, a sequence jump, several runs): one segment at a time
        python_rows = 0
        for k in np.flatnonzero(~fast).tolist():
            tr, ff = tracks[k], objs[groups[k]]
            for j in range(starts[k], ends[k]):
                tr.add(event(j), ff)
            python_rows += ends[k] - starts[k]
        self.feed.stats.tcp_python += python_rows
        if not fast.any():
            return
        fast_row = fast[gpos]
        head_row = fast_row & (rank < room[gpos])
        m0 = np.zeros(ng, dtype=_I64)  # the highest offset the head reached (0: where the flow stood)
        hrows = np.flatnonzero(head_row)
        if hrows.shape[0]:
            # held back: the events are kept as they are, the state is what TcpTrack.add would leave
            np.maximum.at(m0, gpos[hrows], np.maximum(d[hrows], 0))
            evs = [
                TcpEvent(q, n, z, pkeys[p], (t, source, fr))
                for q, n, z, p, t, fr in zip(
                    seq_a[hrows].tolist(),
                    len_a[hrows].tolist(),
                    size_a[hrows].tolist(),
                    pid[hrows].tolist(),
                    ts_a[hrows].tolist(),
                    frame_a[hrows].tolist(),
                    strict=True,
                )
            ]
            counts = np.bincount(gpos[hrows], minlength=ng)
            lo = 0
            for k in np.flatnonzero(counts).tolist():
                n = int(counts[k])
                part = evs[lo : lo + n]
                lo += n
                tr = tracks[k]
                if fresh[k]:
                    first = part[0]
                    tr.runs = [(first.seq, first.path)]
                    tr.runs_total = 1
                    tr.first_path = tr.last = first.path
                tr.head.extend(part)
                tr.next = (int(base[k]) + int(m0[k])) & _M32
                if len(tr.head) == HEAD:
                    tr.head_state = tr._state()
        tail = fast_row & ~head_row
        if tail.any():
            self._tcp_vectorized(tail, d, m0, gpos, groups, tracks, objs, base, idx, event)

    def _tcp_compiled(self, sel: np.ndarray, objs: dict[int, FlowFacts]) -> None:
        """As :meth:`_tcp`, every segment in one compiled pass in capture order (``TCP``): the same results."""
        feed, c = self.feed, self.c
        idx = np.flatnonzero(sel)
        gi = self.fid[idx]
        arrays = feed._tcps
        bad = arrays.load(feed, np.flatnonzero(np.bincount(gi)), objs)
        seq, seglen, size, pid = c["tcp_seq"][idx], c["tcp_len"][idx], c["i_size"][idx], self.pid[idx]
        source, pkeys, ts, frame = self.source, feed._pkeys, self.ts, self.frame

        def events(rows: np.ndarray) -> tuple[list[int], list[TcpEvent]]:
            """The flow groups and events of ``rows`` (of the data rows), built from lists (no numpy scalars)."""
            at = idx[rows]
            evs = zip(ts[at].tolist(), repeat(source), frame[at].tolist())
            paths = map(pkeys.__getitem__, pid[rows].tolist())
            fields = zip(seq[rows].tolist(), seglen[rows].tolist(), size[rows].tolist(), paths, evs, strict=True)
            return gi[rows].tolist(), list(map(_make_event, fields))

        if bad:
            # a flow whose runs name a path only one-by-one rows saw: one segment at a time
            slow = np.isin(gi, bad)
            rows = np.flatnonzero(slow)
            for f, e in zip(*events(rows), strict=True):
                tr = objs[f].tcp
                assert tr is not None
                tr.add(e, objs[f])
            feed.stats.tcp_python += rows.shape[0]
            keep = ~slow
            idx, gi, seq, seglen, size, pid = idx[keep], gi[keep], seq[keep], seglen[keep], size[keep], pid[keep]
        m = idx.shape[0]
        if not m:
            return
        groups = np.flatnonzero(np.bincount(gi))
        hs = np.empty((int((arrays.state[groups, 6] < 0).sum()), 4 + 2 * MAX_RUNS), dtype=_I64)
        code = np.empty(m, dtype=np.int8)
        blame = np.empty(m, dtype=_I64)
        nh = TCP(
            gi, seq, seglen, size, pid, arrays.state, arrays.runs, _SIZE_EDGES,
            feed._p_new_bins, feed._p_new_max, feed._p_retx_here, hs, code, blame,
        )  # fmt: skip
        # the held-back head and the pending retransmissions: events in the objects, in capture order
        for what in (1, 3):
            kept = np.flatnonzero(code == what)
            if not kept.shape[0]:
                continue
            kept = kept[group_order(gi[kept])]  # by flow, capture order within each
            fl, evl = events(kept)
            cuts = (np.flatnonzero(np.diff(gi[kept])) + 1).tolist()
            for lo, hi in zip([0, *cuts], [*cuts, len(fl)], strict=True):
                tr = objs[fl[lo]].tcp
                assert tr is not None
                (tr.head if what == 1 else tr.pending).extend(evl[lo:hi])
        for h in hs[:nh].tolist():
            tr = objs[h[0]].tcp
            assert tr is not None
            runs = tuple((h[4 + 2 * k], pkeys[h[5 + 2 * k]]) for k in range(MAX_RUNS) if h[5 + 2 * k] >= 0)
            tr.head_state = (None if h[1] < 0 else h[1], None if h[2] < 0 else pkeys[h[2]], h[3], runs)
        b_rows = np.flatnonzero(code == 4)
        if b_rows.shape[0]:
            self._blame(idx[b_rows], blame[b_rows], size[b_rows], objs)

    def _blame(self, rows: np.ndarray, bp: np.ndarray, size: np.ndarray, objs: dict[int, FlowFacts]) -> None:
        """Retransmissions (block ``rows``, capture order) blamed on path groups ``bp``: bins, minimum, evidence."""
        feed = self.feed
        nb = len(SIZE_BINS)
        bins = np.searchsorted(_SIZE_EDGES, size, side="right") - 1
        bins[bins < 0] = nb - 1  # size_bin's -1 indexes the last bin
        paths, first, inv = A.unique(bp)
        hist = np.bincount(inv * nb + bins, minlength=paths.shape[0] * nb).reshape(-1, nb).tolist()
        small = np.full(paths.shape[0], _BIG, dtype=_I64)
        np.minimum.at(small, inv, size)
        pfs: dict[int, PathFacts] = {}
        for k, (q, i) in enumerate(zip(paths.tolist(), rows[first].tolist(), strict=True)):
            # a path dropped from the flow's dict comes back at its first blame, as ``_blame`` makes it
            pf = objs[int(feed._p_flow[q])].path(feed._pkeys[q], self.ev(i))
            if pf is None:
                continue  # past the flow's path cap: not kept (as _blame)
            pf.retx_bins = [a + b for a, b in zip(pf.retx_bins, hist[k], strict=True)]
            pf.retx_min_size = min(pf.retx_min_size, int(small[k]))
            pfs[q] = pf
        g = np.zeros(self.ts.shape[0], dtype=_I64)
        g[rows] = bp
        sel = np.zeros(self.ts.shape[0], dtype=bool)
        sel[rows] = True
        gs, ii = self.tops(g, sel, 8)
        for q, i in zip(gs, ii, strict=True):
            kept = pfs.get(q)
            if kept is not None:
                kept.retx_ev.add(self.ev(i))

    def _tcp_vectorized(
        self,
        vec: np.ndarray,
        d: np.ndarray,
        m0: np.ndarray,
        gpos: np.ndarray,
        groups: list[int],
        tracks: list[TcpTrack],
        objs: dict[int, FlowFacts],
        base: np.ndarray,
        idx: np.ndarray,
        event: Callable[[int], TcpEvent],
    ) -> None:
        """Flows whose data all goes over the path of their one run, head complete (see the module doc)."""
        feed = self.feed
        rows = np.flatnonzero(vec)
        gp = gpos[rows]
        dv = d[rows]
        # running maximum of the offsets within each flow, exclusive, from where the head left it (m0)
        lift = gp.astype(_I64) << 33
        start = m0[gp]
        incl = np.maximum.accumulate(np.maximum(dv, start) + lift) - lift
        first = np.ones(rows.shape[0], dtype=bool)
        first[1:] = gp[1:] != gp[:-1]
        excl = np.empty_like(incl)
        excl[1:] = incl[:-1]
        excl = np.where(first, start, excl)
        new = dv > excl
        pid = self.pid[idx[rows]]
        size = self.c["i_size"][idx[rows]]
        npaths = len(feed._pkeys)
        nb = len(SIZE_BINS)
        bins = np.searchsorted(_SIZE_EDGES, size, side="right") - 1
        # per path: new-data bins and maxima, retransmissions carried
        if new.any():
            # the paths' counts wait in the feed's arrays (FactsFeed.sync)
            cap = feed._p_new_max.shape[0]
            feed._p_new_bins += np.bincount(pid[new] * nb + bins[new], minlength=cap * nb).reshape(cap, nb)
            np.maximum.at(feed._p_new_max, pid[new], size[new])
        ends = m0.copy()
        np.maximum.at(ends, gp, dv)
        gl = np.flatnonzero(np.bincount(gp, minlength=len(groups))).tolist()
        for k in gl:
            tracks[k].next = int((int(base[k]) + int(ends[k])) & _M32)
        retx = ~new
        if not retx.any():
            return
        feed._p_retx_here += np.bincount(pid[retx], minlength=feed._p_retx_here.shape[0])
        # retransmissions wait in pending until it holds HEAD; later ones are blamed at once (overflow)
        r_rows = np.flatnonzero(retx)
        r_gp = gp[r_rows]
        m = r_rows.shape[0]
        st = np.ones(m, dtype=bool)
        st[1:] = r_gp[1:] != r_gp[:-1]
        p = np.arange(m)
        rank = p - np.maximum.accumulate(np.where(st, p, 0))
        room = np.array([HEAD - len(t.pending) for t in tracks], dtype=_I64)
        waits = rank < room[r_gp]
        for i in rows[r_rows[waits]].tolist():
            tracks[int(gpos[i])].pending.append(event(i))
        blamed = ~waits
        if not blamed.any():
            return
        b_rows = r_rows[blamed]
        b_gp = gp[b_rows]
        over = np.bincount(b_gp, minlength=len(groups)).tolist()
        for k in np.unique(b_gp).tolist():
            tracks[k].overflow += over[k]
        b_pid = pid[b_rows]
        hist = np.bincount(b_pid * nb + bins[b_rows], minlength=npaths * nb).reshape(npaths, nb)
        small = np.full(npaths, _BIG, dtype=_I64)
        np.minimum.at(small, b_pid, size[b_rows])
        for q in np.unique(b_pid).tolist():
            pf = feed._pobj[q]
            if pf is None:
                continue  # past the flow's path cap: not kept (as _blame)
            pf.retx_bins = [a + b for a, b in zip(pf.retx_bins, hist[q].tolist(), strict=True)]
            pf.retx_min_size = min(pf.retx_min_size, int(small[q]))
        # evidence: the first 8 blamed retransmissions of each path
        fi = idx[rows[b_rows]]
        sel = np.zeros(self.ts.shape[0], dtype=bool)
        sel[fi] = True
        gs, ii = self.tops(self.pid, sel, 8)
        for q, i in zip(gs, ii, strict=True):
            pf = feed._pobj[q]
            if pf is not None:
                pf.retx_ev.add(self.ev(i))


__all__ = ["BLOCK", "COLUMNS", "FactsFeed", "FeedStats", "extra_columns", "fast_columns", "fingerprints"]
