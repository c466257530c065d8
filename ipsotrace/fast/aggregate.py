"""Vectorized correlation: column rows in, the correlator's own :class:`Aggregates` updated.

Rows (one per tunnelled packet, in capture order) are what
:func:`ipsotrace.correlate.extract.view` says about a packet with one tunnel hop,
as numbers: the fast path's columns, plus the scalar path's packets converted.
They are folded in two levels:

1. :class:`Accumulator`: each row's (inner flow, outer path) key — the finest key
   the aggregates use — is hashed and numbered by a vectorized hash table, and
   the rows are folded into per-group arrays with ``ufunc.at`` (counts, sums,
   minima, maxima, the earliest packet, histogram "profiles"); TCP segments that
   carry data are kept in order;
2. at a flush (end of a source, before a packet only the scalar correlator can
   take, or when enough groups or segments piled up), :class:`Applier` applies
   the groups to :class:`~ipsotrace.correlate.Aggregates` with Python work per
   tunnel, flow and path, never per packet.

The result is the one :class:`~ipsotrace.correlate.Correlator` computes packet
by packet, including the order-dependent parts: the earliest packet as
evidence, path insertion order under the per-flow path cap, which flows a
tunnel counts, and TCP retransmissions (sequence numbers are compared in
serial arithmetic, vectorized per flow; a flow whose sequence numbers jump by
2**31 or more is replayed one segment at a time).  The one exception is the
flow and tunnel caps: when a flush would exceed them, eviction happens per
flush rather than per packet (the bounded, counted case ``Aggregates.merge``
documents too).  Memory is O(groups between flushes), never O(packets).
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ipsotrace.correlate.aggregates import MAX_PATHS, SIZE_BINS, TCP_HEAD, Encap, FlowStats, PathStats, TunnelStats
from ipsotrace.correlate.distinct import key_hash, mix64
from ipsotrace.correlate.extract import Hop, Inner, View
from ipsotrace.fast.batch import _walker, compiled

_I64 = np.int64
_U64 = np.uint64
_M32 = 0xFFFFFFFF
_M64 = (1 << 64) - 1
_BIG = np.int64(1 << 62)
#: start values of the earliest and latest time: every int64 time passes them (a pcapng clock may
#: give times past 2**62 or before -2**62); "no earliest packet yet" is first_frame == 2**62
_NO_FIRST_TS = (1 << 63) - 1
_NO_LAST_TS = -(1 << 63)

#: The row columns (all int64).  ``*_ver``: 4, 6, 1 (MAC addresses in ``*_lo``), 0 (none).
ROW = (
    "row",
    "ts",
    "frame",
    "encap",
    "tid",
    "o_ver",
    "o_src_hi",
    "o_src_lo",
    "o_dst_hi",
    "o_dst_lo",
    "o_proto",
    "o_sport",
    "o_dport",
    "o_flow_label",
    "o_ttl",
    "o_dscp",
    "o_ecn",
    "o_size",
    "i_ver",
    "i_src_hi",
    "i_src_lo",
    "i_dst_hi",
    "i_dst_lo",
    "i_proto",
    "i_sport",
    "i_dport",
    "i_size",
    "i_df",
    "i_frag",
    "i_ttl",
    "i_dscp",
    "i_ecn",
    "tcp_flags",
    "tcp_seq",
    "tcp_len",
    "mss",
    # for the findings' collector only (ipsotrace.fast.facts): Extra.fingerprint, Extra.offload, and
    # Extra.vxlan_flags as bits (findings.collect.VXLAN_FLAG_BITS)
    "fp",
    "offload",
    "vxf",
)
TUNNEL_KEY = ("encap", "o_ver", "o_src_hi", "o_src_lo", "o_dst_hi", "o_dst_lo", "tid")
FLOW_KEY = ("encap", "tid", "i_ver", "i_src_hi", "i_src_lo", "i_dst_hi", "i_dst_lo", "i_proto", "i_sport", "i_dport")
PATH_EXTRA = ("o_ver", "o_src_hi", "o_src_lo", "o_dst_hi", "o_dst_lo", "o_proto", "o_sport", "o_dport", "o_flow_label")
FP_KEY = (*FLOW_KEY, *PATH_EXTRA)
_SIZE_EDGES = np.array(SIZE_BINS, dtype=_I64)
_NBINS = len(SIZE_BINS)
#: the size bin of every IP size up to IPv6's largest (a table lookup instead of a binary search)
_SIZE_BIN_OF = np.searchsorted(_SIZE_EDGES, np.arange(65536 + 40), side="right") - 1


def unique(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``np.unique(x, return_index=True, return_inverse=True)`` for a 1-D int64 array, by one stable
    sort: numpy 2's hash-based unique took milliseconds for a few thousand values (measured)."""
    order = np.argsort(x, kind="stable")
    s = x[order]
    head = np.empty(s.shape[0], dtype=bool)
    head[:1] = True
    np.not_equal(s[1:], s[:-1], out=head[1:])
    inv = np.empty(s.shape[0], dtype=np.intp)
    inv[order] = np.cumsum(head) - 1
    return s[head], order[head], inv


def distinct(x: np.ndarray) -> int:
    """How many different values ``x`` holds (one sort; see :func:`unique`)."""
    if x.shape[0] == 0:
        return 0
    s = np.sort(x)
    return int(np.count_nonzero(s[1:] != s[:-1])) + 1


class HashCollision(Exception):
    """Two different keys met the same 64-bit hash (and a second, independent check told them apart).

    Raised before the accumulator changes; the engine then replays those rows one by one.
    """


def key_hashes(cols: dict[str, np.ndarray], names: tuple[str, ...]) -> np.ndarray:
    """A 64-bit hash of the key made of the columns ``names``, per row (FNV-style over words)."""
    n = cols[names[0]].shape[0]
    h = np.full(n, 0xCBF29CE484222325, dtype=_U64)
    with np.errstate(over="ignore"):
        for c in names:
            h ^= cols[c].view(_U64) if cols[c].dtype == _I64 else cols[c].astype(_U64)
            h *= _U64(0x9E3779B97F4A7C15)
        h ^= h >> _U64(32)
        h *= _U64(0xD6E8FEB86659FD93)
        h ^= h >> _U64(32)
    return h.view(_I64)


def outer_hop(c: dict[str, int], encap: str, tid: int) -> Hop:
    """The correlator's tunnel hop from one row's outer columns (``tid`` < 0: no tunnel ID)."""
    return Hop(
        encap,
        address(c["o_ver"], c["o_src_hi"], c["o_src_lo"]),
        address(c["o_ver"], c["o_dst_hi"], c["o_dst_lo"]),
        None if tid < 0 else tid,
        c["o_proto"],
        c["o_sport"],
        c["o_dport"],
        c["o_flow_label"],
        c["o_ttl"],
        c["o_dscp"],
        c["o_ecn"],
        c["o_size"],
    )


_ROW_KEY_COLUMNS = (*FP_KEY, "o_ttl", "o_dscp", "o_ecn", "o_size")


def row_keys(
    cols: dict[str, np.ndarray], r: int, encaps: list[str]
) -> tuple[tuple[object, ...], tuple[object, ...], tuple[object, ...]]:
    """Row ``r``'s inner flow, tunnel and outer path keys, as the correlator and the collector key them."""
    return _keys({k: int(cols[k][r]) for k in _ROW_KEY_COLUMNS}, encaps)


def rows_keys(
    cols: dict[str, np.ndarray], rows: np.ndarray, encaps: list[str]
) -> list[tuple[tuple[object, ...], tuple[object, ...], tuple[object, ...]]]:
    """:func:`row_keys` of each of ``rows``: the columns are read as lists once (no numpy scalar per value)."""
    lists = []
    for k in _ROW_KEY_COLUMNS:
        a = cols[k][rows]
        lists.append((a.astype(np.int64) if a.dtype == np.bool_ else a).tolist())  # ints, as int() gives
    return [_keys(dict(zip(_ROW_KEY_COLUMNS, values, strict=True)), encaps) for values in zip(*lists, strict=True)]


def _keys(row: dict[str, int], encaps: list[str]) -> tuple[tuple[object, ...], tuple[object, ...], tuple[object, ...]]:
    hop = outer_hop(row, encaps[row["encap"]], row["tid"])
    iv = row["i_ver"]
    src = address(iv, row["i_src_hi"], row["i_src_lo"])
    dst = address(iv, row["i_dst_hi"], row["i_dst_lo"])
    fk = (hop.encap, hop.tunnel_id, _l3(iv), src, dst, row["i_proto"], row["i_sport"], row["i_dport"])
    return fk, hop.tunnel_key, hop.path_key


def address(ver: int, hi: int, lo: int) -> str:
    if ver == 4:
        return socket.inet_ntop(socket.AF_INET, (lo & 0xFFFFFFFF).to_bytes(4, "big"))
    if ver == 6:
        return socket.inet_ntop(socket.AF_INET6, (hi & _M64).to_bytes(8, "big") + (lo & _M64).to_bytes(8, "big"))
    if ver == 1:
        return (lo & 0xFFFFFFFFFFFF).to_bytes(6, "big").hex(":")
    return ""


def parse_address(s: str) -> tuple[int, int, int]:
    """(ver, hi, lo) of an address string as views carry it (IPv4, IPv6, MAC, or "")."""
    if not s:
        return 0, 0, 0
    if ":" in s and len(s) == 17 and s.count(":") == 5 and "::" not in s:
        try:
            return 1, 0, int(s.replace(":", ""), 16)
        except ValueError:
            pass
    if "." in s and ":" not in s:
        return 4, 0, int.from_bytes(socket.inet_pton(socket.AF_INET, s), "big")
    raw = socket.inet_pton(socket.AF_INET6, s)
    hi, lo = int.from_bytes(raw[:8], "big"), int.from_bytes(raw[8:], "big")
    return 6, hi - (1 << 64) if hi >> 63 else hi, lo - (1 << 64) if lo >> 63 else lo


def _l3(ver: int) -> str:
    return {4: "ipv4", 6: "ipv6", 1: "eth"}.get(ver, "")


def view_row(v: View, encap_code: Callable[[str], int]) -> dict[str, int] | None:
    """The row of a view with at most one hop, or None when rows cannot carry it."""
    if len(v.hops) > 1:
        return None
    inner = v.inner
    iv, ihi, ilo = parse_address(inner.src)
    _, dhi, dlo = parse_address(inner.dst)
    if _l3(iv) != inner.l3 or (inner.l3 == "" and (inner.src or inner.dst)):
        return None
    row = {
        "encap": -1,
        "tid": -1,
        "o_ver": 0,
        "o_src_hi": 0,
        "o_src_lo": 0,
        "o_dst_hi": 0,
        "o_dst_lo": 0,
        "o_proto": 0,
        "o_sport": 0,
        "o_dport": 0,
        "o_flow_label": 0,
        "o_ttl": -1,
        "o_dscp": 0,
        "o_ecn": 0,
        "o_size": 0,
        "i_ver": iv,
        "i_src_hi": ihi,
        "i_src_lo": ilo,
        "i_dst_hi": dhi,
        "i_dst_lo": dlo,
        "i_proto": inner.proto,
        "i_sport": inner.sport,
        "i_dport": inner.dport,
        "i_size": inner.size,
        "i_df": int(inner.df),
        "i_frag": int(inner.fragment),
        "i_ttl": inner.ttl,
        "i_dscp": inner.dscp,
        "i_ecn": inner.ecn,
        "tcp_flags": inner.tcp_flags,
        "tcp_seq": inner.tcp_seq,
        "tcp_len": inner.tcp_len,
        "mss": inner.mss,
        "fp": 0,
        "offload": 0,
        "vxf": 0,
    }
    if v.hops:
        hop = v.hops[0]
        ov, shi, slo = parse_address(hop.src)
        ov2, thi, tlo = parse_address(hop.dst)
        # a hop named by MAC addresses has no IP header (ttl -1): rows keep IP hops only
        if ov not in (4, 6) or ov2 != ov or hop.ttl < 0 or (hop.tunnel_id is not None and hop.tunnel_id < 0):
            return None
        row.update(
            encap=encap_code(hop.encap),
            tid=-1 if hop.tunnel_id is None else hop.tunnel_id,
            o_ver=ov,
            o_src_hi=shi,
            o_src_lo=slo,
            o_dst_hi=thi,
            o_dst_lo=tlo,
            o_proto=hop.ipproto,
            o_sport=hop.sport,
            o_dport=hop.dport,
            o_flow_label=hop.flow_label,
            o_ttl=hop.ttl,
            o_dscp=hop.dscp,
            o_ecn=hop.ecn,
            o_size=hop.size,
        )
    return row


def row_view(cols: dict[str, np.ndarray], i: int, encaps: list[str]) -> View:
    """The correlator's view of row ``i`` (for the exact replay of a flow, and for tests)."""
    c = {k: int(v[i]) for k, v in cols.items()}
    inner = Inner(
        _l3(c["i_ver"]),
        address(c["i_ver"], c["i_src_hi"], c["i_src_lo"]),
        address(c["i_ver"], c["i_dst_hi"], c["i_dst_lo"]),
        c["i_proto"],
        c["i_sport"],
        c["i_dport"],
        c["i_size"],
        bool(c["i_df"]),
        bool(c["i_frag"]),
        c["i_ttl"],
        c["i_dscp"],
        c["i_ecn"],
        c["tcp_flags"],
        c["tcp_seq"],
        c["tcp_len"],
        c["mss"],
    )
    hops = (outer_hop(c, encaps[c["encap"]], c["tid"]),) if c["encap"] >= 0 else ()
    return View(hops, inner, None)


# --- level 1: rows → per-(flow, path) accumulators ---------------------------------------------------
#: A group table keeps at most 1/LOAD of its slots in use.  Every probe round is a few numpy calls
#: over the rows still looking, so the longest probe chain, not the average, sets the cost: at half
#: full, linear probing made chains of 20+ slots (measured); at an eighth, a handful.
LOAD = 8


#: the compiled probe loop of GroupTable.lookup (ipsotrace/fast/_walk.c), or None: numpy (same numbers)
LOOKUP: Any = getattr(_walker(), "lookup", None)


def _compiled_accumulator() -> Any:
    """ipsotrace/fast/_aggregate.c, or None: not built, IPSOTRACE_NO_EXT=1, or built for other columns."""
    mod = compiled("_aggregate")
    if mod is None or set(mod.ACC_COLUMNS) - set(_ACC) - {"first_ts", "first_frame", "first_row_ts"}:
        return None
    return mod


class GroupTable:
    """A vectorized open-addressing hash table: 64-bit key → dense group number (0, 1, 2…).

    New keys get numbers in order of first appearance.  A second, independent 64-bit check of
    each key is stored with it and compared on every lookup, so two keys would have to collide
    on both to be mixed up (:class:`HashCollision` is raised, and the engine replays those rows).
    """

    def __init__(self, capacity: int = 1 << 12) -> None:
        self.n = 0
        self._alloc(capacity)

    def _alloc(self, capacity: int) -> None:
        self.mask = capacity - 1
        self.slot_key = np.zeros(capacity, dtype=_I64)
        self.slot_gid = np.full(capacity, -1, dtype=_I64)
        self.check = np.zeros(max(16, capacity // 2), dtype=_I64)
        self.keys = np.zeros(max(16, capacity // 2), dtype=_I64)

    def _slots(self, keys: np.ndarray) -> np.ndarray:
        # multiplicative hashing: the top bits of key * golden ratio (keys may be small integers)
        bits = int(self.mask).bit_length()
        with np.errstate(over="ignore"):
            mixed = keys.view(_U64) * _U64(0x9E3779B97F4A7C15)
        return (mixed >> _U64(64 - bits)).view(_I64)

    def lookup(self, keys: np.ndarray) -> np.ndarray:
        """Group numbers of ``keys``; -1 where unknown."""
        if LOOKUP is not None:
            out = np.empty(keys.shape[0], dtype=_I64)
            LOOKUP(self.slot_key, self.slot_gid, np.ascontiguousarray(keys, dtype=_I64), out)
            return out
        out = np.full(keys.shape[0], -1, dtype=_I64)
        idx = np.arange(keys.shape[0])
        slot = self._slots(keys)
        while idx.shape[0]:
            g = self.slot_gid[slot]
            hit = (g >= 0) & (self.slot_key[slot] == keys[idx])
            out[idx[hit]] = g[hit]
            go_on = (g >= 0) & ~hit  # occupied by another key: probe the next slot
            idx, slot = idx[go_on], (slot[go_on] + 1) & self.mask
        return out

    def insert(self, keys: np.ndarray, checks: np.ndarray) -> np.ndarray:
        """Add distinct unknown ``keys`` (in order); returns their new group numbers."""
        k = keys.shape[0]
        if (self.n + k) * LOAD > self.mask + 1:
            self._grow(self.n + k)
        gids = np.arange(self.n, self.n + k, dtype=_I64)
        if self.n + k > self.keys.shape[0]:
            size = max(self.n + k, 2 * self.keys.shape[0])
            self.keys = np.resize(self.keys, size)
            self.check = np.resize(self.check, size)
        self.keys[self.n : self.n + k] = keys
        self.check[self.n : self.n + k] = checks
        self.n += k
        self._place(keys, gids)
        return gids

    def _place(self, keys: np.ndarray, gids: np.ndarray) -> None:
        slot = self._slots(keys)
        while keys.shape[0]:
            # several new keys may want one slot: the first of each claims it, the rest probe on
            free = self.slot_gid[slot] < 0
            _, first, _ = unique(slot)
            claim = np.zeros(keys.shape[0], dtype=bool)
            claim[first] = True
            claim &= free
            self.slot_key[slot[claim]] = keys[claim]
            self.slot_gid[slot[claim]] = gids[claim]
            rest = ~claim
            keys, gids, slot = keys[rest], gids[rest], (slot[rest] + 1) & self.mask

    def _grow(self, need: int) -> None:
        cap = self.mask + 1
        while need * LOAD > cap:
            cap *= 2
        keys, check, n = self.keys[: self.n].copy(), self.check[: self.n].copy(), self.n
        self._alloc(cap)
        self.keys = np.resize(keys, max(16, cap // 2))
        self.check = np.resize(check, max(16, cap // 2))
        self.n = n
        self._place(keys, np.arange(n, dtype=_I64))


def _packed_key(cols: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The (flow, path) key in 11 words instead of 19 columns (fewer passes to hash it).

    Lossless for the values rows hold: codes and versions are small, ports 16 bits, the flow
    label 20 bits, IP protocols 8 bits, tunnel IDs 32 bits or -1.
    """
    with np.errstate(over="ignore"):
        w0 = cols["encap"] | (cols["o_ver"] << 16) | (cols["i_ver"] << 20) | ((cols["tid"] + 1) << 24)
        w1 = cols["i_proto"] | (cols["o_proto"] << 8) | (cols["o_flow_label"] << 16)
        w2 = cols["i_sport"] | (cols["i_dport"] << 16) | (cols["o_sport"] << 32) | (cols["o_dport"] << 48)
    words = {"w0": w0, "w1": w1, "w2": w2}
    for c in ("o_src_hi", "o_src_lo", "o_dst_hi", "o_dst_lo", "i_src_hi", "i_src_lo", "i_dst_hi", "i_dst_lo"):
        words[c] = cols[c]
    return words


def key_checks(cols: dict[str, np.ndarray], names: tuple[str, ...]) -> np.ndarray:
    """A second 64-bit function of the key, independent of :func:`key_hashes` (a weighted sum)."""
    n = cols[names[0]].shape[0]
    h = np.zeros(n, dtype=_U64)
    with np.errstate(over="ignore"):
        for i, c in enumerate(names):
            w = cols[c].view(_U64) if cols[c].dtype == _I64 else cols[c].astype(_U64)
            h += w * _U64(((0xD1B54A32D192ED03 + 0x3C6EF372FE94F82A * i) & _M64) | 1)
        h ^= h >> _U64(31)
    return h.view(_I64)


#: per-group sums, minima, maxima kept by :class:`Accumulator` (name → (reduction, start value))
_ACC: dict[str, tuple[str, int]] = {
    "packets": ("sum", 0),
    "i_bytes": ("sum", 0),
    "o_bytes": ("sum", 0),
    "frags": ("sum", 0),
    "syns": ("sum", 0),
    "i_min": ("min", 1 << 62),
    "mss_min": ("min", 1 << 62),
    "first_row": ("min", 1 << 62),
    "i_max": ("max", 0),
    "i_max_df": ("max", 0),
    "o_max": ("max", 0),
    "tcp": ("max", 0),
    "mss_max": ("max", 0),
    "last_ts": ("max", _NO_LAST_TS),
    "tcp_or": ("or", 0),
}
_INIT: dict[str, int] = {
    **{name: start for name, (_, start) in _ACC.items()},
    **dict.fromkeys(FP_KEY, 0),
    "first_ts": _NO_FIRST_TS,
    "first_frame": 1 << 62,
    "first_row_ts": 0,
}
_HISTS = ("sizes", "o_ttl", "o_dscp", "o_ecn", "i_ttl", "dscp_pairs", "ecn_pairs")


@dataclass(slots=True)
class Partials:
    """What the accumulator holds at a flush: per group (flow, path) values, histograms, TCP segments."""

    cols: dict[str, np.ndarray]  # per group number
    hists: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]  # name → (group, value, count)
    segs: tuple[np.ndarray, np.ndarray, np.ndarray]  # TCP data segments: (group, row, sequence end), in order

    def __len__(self) -> int:
        return int(self.cols["packets"].shape[0])


def _sum_pairs(g: np.ndarray, v: np.ndarray, n: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Counts summed per (group, value): profiles that share a histogram value become one entry."""
    if g.shape[0] == 0:
        return g, v, n
    k = (g << 16) | v
    uniq, _, inv = unique(k)
    return uniq >> 16, uniq & 0xFFFF, np.bincount(inv, weights=n).astype(_I64)


#: Tests set it to None to run the numpy passes; both give the same numbers.
AGG: Any = _compiled_accumulator()


class Accumulator:
    """Level 1: rows of tunnelled packets, in order, folded into per-(flow, path) arrays."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.groups = GroupTable()
        self.pairs = GroupTable()
        self.pair_count = np.zeros(0, dtype=_I64)
        self.size_hist = np.zeros(0, dtype=_I64)
        self.last_prof = np.zeros(0, dtype=_I64)
        self.last_pid = np.zeros(0, dtype=_I64)
        self.acc: dict[str, np.ndarray] = {}
        self.cap = 0
        self.segs: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self.n_segs = 0
        self.local_ts = np.zeros(0, dtype=_I64)  # the compiled pass's scratch (2**63 - 1, 2**62: untouched)
        self.local_frame = np.zeros(0, dtype=_I64)

    def __len__(self) -> int:
        return self.groups.n

    def _ensure(self, n: int) -> None:
        if n <= self.cap:
            return
        cap = max(1024, 2 * n)
        for name, start in _INIT.items():
            arr = np.full(cap, start, dtype=_I64)
            old = self.acc.get(name)
            if old is not None:
                arr[: self.cap] = old[: self.cap]
            self.acc[name] = arr
        self.cap = cap

    def add(self, cols: dict[str, np.ndarray]) -> None:
        if AGG is not None:
            n = cols["row"].shape[0]
            fp, chk = np.empty(n, dtype=_I64), np.empty(n, dtype=_I64)
            AGG.keys(tuple(np.ascontiguousarray(cols[k], dtype=_I64) for k in AGG.KEY_COLUMNS), fp, chk)
        else:
            words = _packed_key(cols)
            names = tuple(words)
            fp = key_hashes(words, names)
            chk = key_checks(words, names)
        cols["key_hash"], cols["key_check"] = fp, chk  # the findings' feed numbers the same keys
        gid = self.groups.lookup(fp)
        new = gid < 0
        # every check happens before anything changes: on a collision the caller can replay the
        # rows another way with the accumulator as it was
        known = ~new
        if not np.array_equal(self.groups.check[gid[known]], chk[known]):
            raise HashCollision("two different keys share a 64-bit hash")
        if new.any():
            nk, first, inv = unique(fp[new])
            if not np.array_equal(chk[new], chk[new][first][inv]):
                raise HashCollision("two different keys share a 64-bit hash")
            order = np.argsort(first, kind="stable")  # number new groups in order of appearance
            rows_new = np.flatnonzero(new)[first[order]]
            ids = self.groups.insert(nk[order], chk[rows_new])
            self._ensure(self.groups.n)
            for c in FP_KEY:
                self.acc[c][ids] = cols[c][rows_new]
            gid = self.groups.lookup(fp)
        if AGG is not None:
            self._reduce_compiled(cols, gid)
            return
        a = self.acc
        np.add.at(a["packets"], gid, 1)
        np.add.at(a["i_bytes"], gid, cols["i_size"])
        np.add.at(a["o_bytes"], gid, cols["o_size"])
        np.add.at(a["frags"], gid, cols["i_frag"])
        np.minimum.at(a["i_min"], gid, cols["i_size"])
        np.maximum.at(a["i_max"], gid, cols["i_size"])
        np.maximum.at(a["i_max_df"], gid, np.where(cols["i_df"] != 0, cols["i_size"], 0))
        np.maximum.at(a["o_max"], gid, cols["o_size"])
        ts, row = cols["ts"], cols["row"]
        np.maximum.at(a["last_ts"], gid, ts)
        # the earliest packet: smallest time, then (same source) the earliest frame
        local_ts = np.full(self.groups.n, _NO_FIRST_TS, dtype=_I64)
        np.minimum.at(local_ts, gid, ts)
        at_min = ts == local_ts[gid]
        local_frame = np.full(self.groups.n, 1 << 62, dtype=_I64)
        np.minimum.at(local_frame, gid[at_min], cols["frame"][at_min])
        touched = local_frame < (1 << 62)  # the groups of these rows (frame numbers stay far below 2**62)
        none_yet = a["first_frame"][: self.groups.n] == (1 << 62)
        better = touched & ((local_ts < a["first_ts"][: self.groups.n]) | none_yet)
        a["first_ts"][: self.groups.n][better] = local_ts[better]
        a["first_frame"][: self.groups.n][better] = local_frame[better]
        # the first row (capture order) and its time: paths are created by it
        before = a["first_row"][: self.groups.n].copy()
        np.minimum.at(a["first_row"], gid, row)
        changed = np.flatnonzero(a["first_row"][: self.groups.n] != before)
        if changed.shape[0]:
            pos = np.searchsorted(row, a["first_row"][changed])
            a["first_row_ts"][changed] = ts[pos]
        flags = cols["tcp_flags"]
        is_tcp = np.flatnonzero(flags >= 0)  # (positions: taken once from every column)
        if is_tcp.shape[0]:
            tg = gid.take(is_tcp)
            tf = flags.take(is_tcp)
            np.maximum.at(a["tcp"], tg, 1)
            np.bitwise_or.at(a["tcp_or"], tg, tf)
            np.add.at(a["syns"], tg, ((tf & 0x12) == 0x02).astype(_I64))
            mss = cols["mss"].take(is_tcp)
            has = mss > 0
            if has.any():
                np.minimum.at(a["mss_min"], tg[has], mss[has])
                np.maximum.at(a["mss_max"], tg[has], mss[has])
            tcp_len = cols["tcp_len"]
            data = is_tcp[tcp_len.take(is_tcp) > 0]
            seg = (gid.take(data), row.take(data), (cols["tcp_seq"].take(data) + tcp_len.take(data)) & _M32)
            self.segs.append(seg)
            self.n_segs += seg[0].shape[0]
        self._hists(cols, gid)

    def _reduce_compiled(self, cols: dict[str, np.ndarray], gid: np.ndarray) -> None:
        """The rest of :meth:`add` in one compiled pass (ipsotrace/fast/_aggregate.c): the same numbers."""
        n = self.groups.n
        self._grow_hists(n)
        if self.local_ts.shape[0] < n:
            self.local_ts = np.full(max(1024, 2 * n), _NO_FIRST_TS, dtype=_I64)
            self.local_frame = np.full(self.local_ts.shape[0], 1 << 62, dtype=_I64)
        m = gid.shape[0]
        # one array each: the segments wait for the flush, the rest is dropped after this call
        out = [np.empty(m, dtype=_I64) for _ in range(6)]
        rows = tuple(gid if k == "gid" else np.ascontiguousarray(cols[k], dtype=_I64) for k in AGG.ROW_COLUMNS)
        state = (self.size_hist, _SIZE_BIN_OF, _SIZE_EDGES, self.last_prof, self.last_pid, self.local_ts,
                 self.local_frame)  # fmt: skip
        segs = AGG.reduce(rows, tuple(self.acc[k] for k in AGG.ACC_COLUMNS), state, tuple(out), n)
        if segs:
            self.segs.append((out[2][:segs], out[3][:segs], out[4][:segs]))
            self.n_segs += segs
        self._profiles(gid, out[0], out[1])

    def _grow_hists(self, n: int) -> None:
        if self.size_hist.shape[0] < n * _NBINS:
            grown = np.zeros(max(1024, 2 * n) * _NBINS, dtype=_I64)
            grown[: self.size_hist.shape[0]] = self.size_hist
            self.size_hist = grown
        if self.last_prof.shape[0] < n:
            grown_p = np.full(max(1024, 2 * n), -1, dtype=_I64)
            grown_p[: self.last_prof.shape[0]] = self.last_prof
            grown_i = np.zeros(grown_p.shape[0], dtype=_I64)
            grown_i[: self.last_pid.shape[0]] = self.last_pid
            self.last_prof, self.last_pid = grown_p, grown_i

    def _hists(self, cols: dict[str, np.ndarray], gid: np.ndarray) -> None:
        n = self.groups.n
        self._grow_hists(n)
        # inner sizes: a dense (group, bin) table
        i_size = cols["i_size"]
        if i_size.shape[0] and int(i_size.min()) >= 0 and int(i_size.max()) < _SIZE_BIN_OF.shape[0]:
            size_bin = _SIZE_BIN_OF.take(i_size)
        else:
            size_bin = np.searchsorted(_SIZE_EDGES, i_size, side="right") - 1
        self.size_hist[: n * _NBINS] += np.bincount(gid * _NBINS + size_bin, minlength=n * _NBINS)
        # TTL, DSCP and ECN outside and inside: one "profile" per row, which the flush splits into
        # the histograms.  A flow's packets nearly always repeat its last profile: that is checked
        # per row against a per-group cache before the hash table is asked.
        prof = (
            ((cols["i_ttl"] + 1) << 27)
            | ((cols["o_ttl"] + 1) << 18)
            | (cols["i_dscp"] << 12)
            | (cols["o_dscp"] << 6)
            | (cols["i_ecn"] << 3)
            | cols["o_ecn"]
        )
        pid = self.last_pid[gid]
        pid[self.last_prof[gid] != prof] = -1
        self._profiles(gid, prof, pid)

    def _profiles(self, gid: np.ndarray, prof: np.ndarray, pid: np.ndarray) -> None:
        """Each row's (group, profile) pair: ``pid`` holds the cached ones, -1 where the table must say."""
        miss = pid < 0
        if miss.any():
            k = (gid[miss] << 40) | prof[miss]
            got = self.pairs.lookup(k)
            new = got < 0
            if new.any():
                nk = unique(k[new])[0]
                self.pairs.insert(nk, nk)
                got = self.pairs.lookup(k)
            pid[miss] = got
            self.last_prof[gid[miss]] = prof[miss]
            self.last_pid[gid[miss]] = got
        if self.pairs.n > self.pair_count.shape[0]:
            grown = np.zeros(max(1024, 2 * self.pairs.n), dtype=_I64)
            grown[: self.pair_count.shape[0]] = self.pair_count
            self.pair_count = grown
        self.pair_count[: self.pairs.n] += np.bincount(pid, minlength=self.pairs.n)

    def partials(self) -> Partials:
        n = self.groups.n
        cols = {k: v[:n] for k, v in self.acc.items()}
        keys = self.pairs.keys[: self.pairs.n]
        counts = self.pair_count[: self.pairs.n]
        g = keys >> 40
        sizes = self.size_hist[: n * _NBINS]
        nz = np.flatnonzero(sizes)
        i_ttl = ((keys >> 27) & 0x1FF) - 1
        o_ttl = ((keys >> 18) & 0x1FF) - 1
        i_dscp, o_dscp = (keys >> 12) & 0x3F, (keys >> 6) & 0x3F
        i_ecn, o_ecn = (keys >> 3) & 0x7, keys & 0x7
        ott, itt = o_ttl >= 0, i_ttl >= 0
        both = ott & itt
        hists = {
            "sizes": (nz // _NBINS, nz % _NBINS, sizes[nz]),
            "o_ttl": _sum_pairs(g[ott], o_ttl[ott], counts[ott]),
            "o_dscp": _sum_pairs(g[ott], o_dscp[ott], counts[ott]),
            "o_ecn": _sum_pairs(g[ott], o_ecn[ott], counts[ott]),
            "i_ttl": _sum_pairs(g[itt], i_ttl[itt], counts[itt]),
            "dscp_pairs": _sum_pairs(g[both], i_dscp[both] * 256 + o_dscp[both], counts[both]),
            "ecn_pairs": _sum_pairs(g[both], i_ecn[both] * 256 + o_ecn[both], counts[both]),
        }
        if self.segs:
            segs = tuple(np.concatenate([s[i] for s in self.segs]) for i in range(3))
        else:
            segs = (np.zeros(0, dtype=_I64),) * 3
        return Partials(cols, hists, segs)  # type: ignore[arg-type]


# --- level 2: partials → the correlator's aggregates ------------------------------------------------
@dataclass(slots=True)
class _Path:
    fk: tuple[object, ...]
    pk: tuple[tuple[str, str, int, int, int, int], tuple[()]]
    tk: tuple[str, str, str, int | None]
    ps: PathStats | None = None
    new: bool = False


@dataclass(slots=True)
class Applier:
    """Applies merged partials to the aggregates of a :class:`Correlator`, as its add_view would."""

    encaps: list[str]
    _entropy: dict[int, int] = field(default_factory=dict)

    def apply(self, agg: object, p: Partials, source: str) -> None:
        from ipsotrace.correlate.aggregates import Aggregates

        assert isinstance(agg, Aggregates)
        c = p.cols
        n = len(p)
        if n == 0:
            return
        enc = c["encap"].tolist()
        tid = c["tid"].tolist()
        lists = {k: v.tolist() for k, v in c.items()}
        # names of every (flow, path) group, in order of first appearance
        rank = np.argsort(c["first_row"], kind="stable").tolist()
        paths: list[_Path] = [None] * n  # type: ignore[list-item]
        addr_cache: dict[tuple[int, int, int], str] = {}

        def addr(v: int, hi: int, lo: int) -> str:
            k = (v, hi, lo)
            s = addr_cache.get(k)
            if s is None:
                addr_cache[k] = s = address(v, hi, lo)
            return s

        for i in range(n):
            L = lists
            e = self.encaps[enc[i]]
            t_id = None if tid[i] < 0 else tid[i]
            osrc = addr(L["o_ver"][i], L["o_src_hi"][i], L["o_src_lo"][i])
            odst = addr(L["o_ver"][i], L["o_dst_hi"][i], L["o_dst_lo"][i])
            iv = L["i_ver"][i]
            fk = (
                e,
                t_id,
                _l3(iv),
                addr(iv, L["i_src_hi"][i], L["i_src_lo"][i]),
                addr(iv, L["i_dst_hi"][i], L["i_dst_lo"][i]),
                L["i_proto"][i],
                L["i_sport"][i],
                L["i_dport"][i],
            )
            pk = ((osrc, odst, L["o_proto"][i], L["o_sport"][i], L["o_dport"][i], L["o_flow_label"][i]), ())
            paths[i] = _Path(fk, pk, (e, osrc, odst, t_id))  # type: ignore[arg-type]

        # tunnels, created in order of first appearance
        per_tunnel: dict[tuple[str, str, str, int | None], list[int]] = {}
        for i in rank:
            per_tunnel.setdefault(paths[i].tk, []).append(i)
        fresh_first: dict[tuple[str, str, str, int | None], int] = {}
        for tk, members in per_tunnel.items():
            t = agg.tunnels.get(tk)
            if t is None:
                if len(agg.tunnels) >= agg.max_tunnels:
                    agg.enforce_tunnel_cap(room=1)
                i0 = members[0]
                t = agg.tunnels[tk] = TunnelStats((lists["first_row_ts"][i0], source, -1), lists["first_row_ts"][i0])
                fresh_first[tk] = i0
                t.first = (lists["first_ts"][i0], source, lists["first_frame"][i0])
                t.last_ns = lists["last_ts"][i0]
                members_iter = members
            else:
                members_iter = members
            for i in members_iter:
                ev = (lists["first_ts"][i], source, lists["first_frame"][i])
                if _earlier(ev, t.first):
                    t.first = ev
                if lists["last_ts"][i] > t.last_ns:
                    t.last_ns = lists["last_ts"][i]
                t.packets += lists["packets"][i]
                t.bytes += lists["o_bytes"][i]
                t.max_size = max(t.max_size, lists["o_max"][i])
                sport = lists["o_sport"][i]
                if sport:
                    hh = self._entropy.get(sport)
                    if hh is None:
                        self._entropy[sport] = hh = mix64(sport)
                    t.entropy_ports.add(hh)
            t.depths |= 1
        self._tunnel_hists(agg, p, paths)

        # flows, created in order of first appearance
        per_flow: dict[Any, list[int]] = {}
        for i in rank:
            per_flow.setdefault(paths[i].fk, []).append(i)
        for fk, members in per_flow.items():
            f = agg.flows.get(fk)  # type: ignore[call-overload]
            if f is None:
                if len(agg.flows) >= agg.max_flows:
                    agg.enforce_flow_cap(room=1)
                i0 = members[0]
                f = agg.flows[fk] = FlowStats(
                    (lists["first_ts"][i0], source, lists["first_frame"][i0]), lists["last_ts"][i0]
                )  # type: ignore[index]
            fh = None
            for i in members:
                pth = paths[i]
                ev = (lists["first_ts"][i], source, lists["first_frame"][i])
                if _earlier(ev, f.first):
                    f.first = ev
                if lists["last_ts"][i] > f.last_ns:
                    f.last_ns = lists["last_ts"][i]
                pkts = lists["packets"][i]
                f.packets += pkts
                f.bytes += lists["i_bytes"][i]
                f.min_size = min(f.min_size, lists["i_min"][i])
                f.max_size = max(f.max_size, lists["i_max"][i])
                f.max_size_df = max(f.max_size_df, lists["i_max_df"][i])
                f.fragments += lists["frags"][i]
                ps = f.paths.get(pth.pk)
                add_flow = ps is None or ps.packets == 0 or fresh_first.get(pth.tk) == i
                if ps is None:
                    if len(f.paths) < MAX_PATHS:
                        f.paths[pth.pk] = ps = PathStats(lists["first_row_ts"][i], lists["first_row_ts"][i])
                    else:
                        f.paths_overflow += pkts
                if add_flow:
                    if fh is None:
                        fh = key_hash(fk)
                    agg.tunnels[pth.tk].inner_flows.add(fh) if pth.tk in agg.tunnels else None
                if ps is not None:
                    ps.packets += pkts
                    ps.bytes += lists["i_bytes"][i]
                    if lists["last_ts"][i] > ps.last_ns:
                        ps.last_ns = lists["last_ts"][i]
                pth.ps = ps
                if lists["tcp"][i]:
                    f.tcp_flags |= lists["tcp_or"][i]
                    f.syns += lists["syns"][i]
                    mmin = lists["mss_min"][i]
                    if mmin < _BIG:
                        f.mss_min = min(f.mss_min, mmin) if f.mss_min else mmin
                        f.mss_max = max(f.mss_max, lists["mss_max"][i])
        self._flow_hists(agg, p, paths)
        self._tcp(agg, p, paths)

    def _tunnel_hists(self, agg: object, p: Partials, paths: list[_Path]) -> None:
        tunnels = agg.tunnels  # type: ignore[attr-defined]
        for name, attr in (("o_ttl", "ttl"), ("o_dscp", "dscp"), ("o_ecn", "ecn")):
            g, v, n = p.hists[name]
            for gg, vv, nn in zip(g.tolist(), v.tolist(), n.tolist(), strict=True):
                t = tunnels.get(paths[gg].tk)
                if t is not None:
                    d = getattr(t, attr)
                    d[vv] = d.get(vv, 0) + nn

    def _flow_hists(self, agg: object, p: Partials, paths: list[_Path]) -> None:
        flows = agg.flows  # type: ignore[attr-defined]
        g, v, n = p.hists["sizes"]
        for gg, vv, nn in zip(g.tolist(), v.tolist(), n.tolist(), strict=True):
            f = flows.get(paths[gg].fk)
            if f is not None:
                f.sizes[vv] += nn
        g, v, n = p.hists["i_ttl"]
        for gg, vv, nn in zip(g.tolist(), v.tolist(), n.tolist(), strict=True):
            f = flows.get(paths[gg].fk)
            if f is not None:
                f.ttl[vv] = f.ttl.get(vv, 0) + nn
        for name in ("dscp_pairs", "ecn_pairs"):
            g, v, n = p.hists[name]
            for gg, vv, nn in zip(g.tolist(), v.tolist(), n.tolist(), strict=True):
                f = flows.get(paths[gg].fk)
                if f is not None:
                    d = getattr(f, name)
                    k = (vv >> 8, vv & 0xFF)
                    d[k] = d.get(k, 0) + nn

    def _tcp(self, agg: object, p: Partials, paths: list[_Path]) -> None:
        path_i, rows, ends = p.segs
        if path_i.shape[0] == 0:
            return
        flows = agg.flows  # type: ignore[attr-defined]
        # segments in capture order (they come almost in order: the stable sort's runs make it cheap)
        if rows.shape[0] > 1 and not (rows[1:] >= rows[:-1]).all():  # rows of the scalar path come after
            by_row = np.argsort(rows, kind="stable")
            path_i, ends = path_i[by_row], ends[by_row]
        flow_ids: dict[tuple[object, ...], int] = {}
        path_flow = np.array([flow_ids.setdefault(pt.fk, len(flow_ids)) for pt in paths], dtype=_I64)
        fid = path_flow[path_i]
        stats = [flows.get(fk) for fk in flow_ids]
        nf = len(stats)
        has_next = np.array([s is not None and s.tcp_next is not None for s in stats], dtype=bool)
        nxt0 = np.array([s.tcp_next if s is not None and s.tcp_next is not None else 0 for s in stats], dtype=_I64)
        if AGG is not None:
            new8 = np.empty(fid.shape[0], dtype=np.int8)
            bad8, any8 = np.empty(nf, dtype=np.int8), np.empty(nf, dtype=np.int8)
            next_end, re_flow = np.empty(nf, dtype=_I64), np.empty(nf, dtype=_I64)
            AGG.tcp_runs(fid, np.ascontiguousarray(ends, dtype=_I64), has_next.view(np.int8), nxt0, new8, bad8, any8,
                         next_end, re_flow)  # fmt: skip
            new, bad_flow, any_new = new8.view(bool), bad8.view(bool), any8.view(bool)
        else:
            new, bad_flow, any_new, next_end, re_flow = _tcp_runs(fid, ends, has_next, nxt0)
        re_path = np.bincount(path_i[~new], minlength=len(paths))
        for pi in np.flatnonzero(re_path).tolist():
            ps = paths[pi].ps
            # a flow replayed one segment at a time counts its own retransmissions
            if ps is not None and not bad_flow[path_flow[pi]]:
                ps.retransmissions += int(re_path[pi])
        # each flow's segments in capture order, where a flow needs them (replays, open heads)
        by_flow: tuple[np.ndarray, list[int]] | None = None

        def segments(k: int) -> np.ndarray:
            nonlocal by_flow
            if by_flow is None:
                counts = np.bincount(fid, minlength=nf)
                # a stable sort by flow (16-bit keys sort by radix, in linear time)
                order = np.argsort(fid.astype(np.int16) if nf < (1 << 15) else fid, kind="stable")
                by_flow = (order, [0, *np.cumsum(counts).tolist()])
            order, bounds = by_flow
            return order[bounds[k] : bounds[k + 1]]

        bad_l, re_l, new_l, next_l = bad_flow.tolist(), re_flow.tolist(), any_new.tolist(), next_end.tolist()
        for k in np.flatnonzero(np.bincount(fid, minlength=nf)).tolist():
            f = stats[k]
            if f is None:
                continue
            if bad_l[k]:
                sel = segments(k)
                for e, pi in zip(ends[sel].tolist(), path_i[sel].tolist(), strict=True):
                    _seq_one(f, e, paths[pi])
                continue
            if re_l[k]:
                f.retransmissions += re_l[k]
            if new_l[k]:
                f.tcp_next = next_l[k]
                if not f.tcp_head_full:
                    sel = segments(k)
                    nw = sel[new[sel]]
                    room = TCP_HEAD - len(f.tcp_head)
                    if room > 0:
                        for e, pi in zip(ends[nw][:room].tolist(), path_i[nw][:room].tolist(), strict=True):
                            f.tcp_head.append((e, paths[pi].pk))
                    if nw.shape[0] > room:
                        f.tcp_head_full = True


def _tcp_runs(
    fid: np.ndarray, ends: np.ndarray, has_next: np.ndarray, nxt0: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """What ``_aggregate.tcp_runs`` computes, with numpy: per segment (capture order) new or not; per
    flow number bad (serial order undefined), any new, the furthest new end, retransmissions."""
    nf = has_next.shape[0]
    # a stable sort by flow (16-bit keys sort by radix, in linear time)
    order = np.argsort(fid.astype(np.int16) if nf < (1 << 15) else fid, kind="stable")
    sfid, sends = fid[order], ends[order]
    starts = np.flatnonzero(np.r_[True, sfid[1:] != sfid[:-1]])
    present = sfid[starts]  # sorted: the distinct flows, in order
    stops = np.r_[starts[1:], sfid.shape[0]]
    npres = present.shape[0]
    hn, n0 = has_next[present], nxt0[present]
    ref = np.where(hn, n0, sends[starts])
    rank = np.repeat(np.arange(npres), stops - starts)
    u = ((sends - ref[rank] + (1 << 31)) & _M32) - (1 << 31)  # serial distance from the reference
    off = rank * (1 << 40)
    cm = np.maximum.accumulate(u + off)
    prev = np.empty_like(cm)
    prev[0] = 0
    prev[1:] = cm[:-1]
    first_mask = np.zeros(sfid.shape[0], dtype=bool)
    first_mask[starts] = True
    init = np.where(hn, 0, -(1 << 39))[rank]  # no sequence seen yet: anything is new
    prev_max = np.where(first_mask, init, np.maximum(prev - off, init))
    snew = u > prev_max
    # serial arithmetic equals integer order only while values stay within 2**31 of each other
    finite = prev_max > -(1 << 39)
    bad_seg = finite & (np.abs(u - prev_max) >= (1 << 31))
    bad = np.zeros(nf, dtype=bool)
    bad[present[rank[bad_seg]]] = True
    new = np.empty_like(snew)
    new[order] = snew
    any_new = np.zeros(nf, dtype=bool)
    any_new[present] = np.bincount(rank[snew], minlength=npres) > 0
    max_new = np.full(npres, -(1 << 40), dtype=_I64)
    np.maximum.at(max_new, rank[snew], u[snew])
    next_end = np.zeros(nf, dtype=_I64)
    next_end[present] = (ref + max_new) & _M32
    re_flow = np.zeros(nf, dtype=_I64)
    re_flow[present] = np.bincount(rank[~snew], minlength=npres)
    return new, bad, any_new, next_end, re_flow


def _earlier(ev: tuple[int, str, int], cur: tuple[int, str, int]) -> bool:
    """The correlator keeps the first packet with the smallest time: a tie goes to the one seen
    first, which within a source is the smaller frame and across sources the earlier source."""
    return ev[0] < cur[0] or (ev[0] == cur[0] and ev[1] == cur[1] and ev[2] < cur[2])


def _seq_one(f: FlowStats, end: int, path: _Path) -> None:
    """FlowStats.add_tcp's sequence logic for one data segment (flags were counted in bulk)."""
    from ipsotrace.correlate.aggregates import seq_after

    if f.tcp_next is None or seq_after(end, f.tcp_next):
        f.tcp_next = end
        if len(f.tcp_head) < TCP_HEAD:
            f.tcp_head.append((end, path.pk))
        else:
            f.tcp_head_full = True
    else:
        f.retransmissions += 1
        if path.ps is not None:
            path.ps.retransmissions += 1


def add_encaps(agg: object, cols: dict[str, np.ndarray], encaps: list[str]) -> None:
    """Per-encapsulation packet and outer byte counts of tunnelled rows."""
    enc = cols["encap"]
    if enc.shape[0] == 0:
        return
    k = len(encaps)
    pk = np.bincount(enc, minlength=k)
    by = np.bincount(enc, weights=cols["o_size"], minlength=k)
    for code in np.flatnonzero(pk).tolist():
        e = agg.encaps.get(encaps[code])  # type: ignore[attr-defined]
        if e is None:
            agg.encaps[encaps[code]] = e = Encap()  # type: ignore[attr-defined]
        e.packets += int(pk[code])
        e.bytes += int(by[code])
