"""The compiled accumulator passes (ipsotrace/fast/_aggregate.c) against the numpy ones, state for state.

test_engine.py compares the partials of the two on random rows, and the two sequence-run passes.
Here: the key pass bit for bit on any 64-bit values; after every add() call the whole
accumulator state (group arrays, size histogram, profile cache, pair table and counts, segments);
the sequence runs against RFC 1982 serial order itself (FlowStats' ``seq_after``), near the wrap
points; and buffers released on every error path.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ipsotrace.correlate.aggregates import SIZE_BINS, seq_after
from ipsotrace.fast import aggregate as A
from tests.fast.conftest import COMPILED_AGG

pytestmark = pytest.mark.skipif(COMPILED_AGG is None, reason="the compiled accumulator is not built")

_I64 = np.int64
_ANY64 = st.integers(-(1 << 63), (1 << 63) - 1)


# --- keys ------------------------------------------------------------------------------------------
@settings(max_examples=300, deadline=None)
@given(st.integers(1, 40), st.data())
def test_keys_equal_the_packed_key_hashes(n: int, data: st.DataObject) -> None:
    """Any 64-bit values (negative tunnel IDs and codes, all bits of the address halves)."""
    small = st.sampled_from([-1, 0, 1, 4, 6, 7, 0xFFFF, 0xFFFFF, (1 << 32) - 1])
    cols = {k: np.array(data.draw(st.lists(_ANY64 | small, min_size=n, max_size=n)), dtype=_I64)
            for k in COMPILED_AGG.KEY_COLUMNS}  # fmt: skip
    words = A._packed_key(cols)
    names = tuple(words)
    h, c = np.empty(n, dtype=_I64), np.empty(n, dtype=_I64)
    COMPILED_AGG.keys(tuple(cols[k] for k in COMPILED_AGG.KEY_COLUMNS), h, c)
    assert h.tolist() == A.key_hashes(words, names).tolist()
    assert c.tolist() == A.key_checks(words, names).tolist()


# --- the reductions, state for state -----------------------------------------------------------------
_SIZES = sorted({0, 1, 20, 65535, 65536 + 39, 65536 + 40, 70000, 1 << 40, *SIZE_BINS, *(b - 1 for b in SIZE_BINS[1:])})
_TIMES = [0, 1, 2, 5, (1 << 62) - 1, 1 << 62, (1 << 62) + 1, (1 << 63) - 1, -(1 << 62), -(1 << 62) - 1, -(1 << 63)]


def _rows(rng: np.random.Generator, n: int, keys: int, start: int) -> dict[str, np.ndarray]:
    """Rows as the engine gives them: every ROW column, rows ascending, values in their real ranges
    (TTL -1..255, DSCP 0..63, ECN 0..3: the profile's bit fields) with many ties and edges."""
    r = {k: np.zeros(n, dtype=_I64) for k in A.ROW}
    key = rng.integers(0, keys, n)
    r["encap"] = key % 3
    r["tid"] = (key % 5) - 1
    r["o_ver"] = np.where(key % 2 == 0, 4, 6)
    r["i_ver"][:] = 4
    r["o_src_lo"] = key * 7919
    r["i_src_lo"] = key % 4
    r["i_sport"] = key % 6
    r["row"] = start + np.sort(rng.choice(4 * n + 1, n, replace=False))
    r["ts"] = rng.choice(_TIMES, n) if rng.random() < 0.3 else rng.integers(0, 4, n)
    r["frame"] = rng.permutation(n).astype(_I64) + 1 + start
    r["i_size"] = rng.choice(_SIZES, n)
    r["o_size"] = rng.choice(_SIZES, n)
    r["i_df"], r["i_frag"] = rng.integers(0, 2, n), rng.integers(0, 2, n)
    r["tcp_flags"] = rng.choice([-1, 0, 0x02, 0x12, 0x10, 0x18, 0x11, 0x1FF], n)
    r["tcp_seq"] = rng.choice([0, 1, (1 << 31) - 1, 1 << 31, (1 << 32) - 1, 123456], n)
    r["tcp_len"] = rng.choice([0, 1, 1460, 65535], n)
    r["mss"] = rng.choice([0, 0, 536, 1460, 65535], n)
    r["i_ttl"], r["o_ttl"] = rng.choice([-1, 0, 1, 64, 255], n), rng.choice([-1, 0, 63, 255], n)
    r["i_dscp"], r["o_dscp"] = rng.choice([0, 46, 63], n), rng.choice([0, 10, 63], n)
    r["i_ecn"], r["o_ecn"] = rng.integers(0, 4, n), rng.integers(0, 4, n)
    return {k: np.ascontiguousarray(v, dtype=_I64) for k, v in r.items()}


def _state(acc: A.Accumulator) -> dict[str, Any]:
    n, p = acc.groups.n, acc.pairs.n
    segs = [np.concatenate([s[i] for s in acc.segs]).tolist() if acc.segs else [] for i in range(3)]
    return {
        **{f"acc.{k}": v[:n].tolist() for k, v in acc.acc.items()},
        "group keys": acc.groups.keys[:n].tolist(),
        "group checks": acc.groups.check[:n].tolist(),
        "size_hist": acc.size_hist[: n * len(SIZE_BINS)].tolist(),
        "last_prof": acc.last_prof[:n].tolist(),
        "last_pid": acc.last_pid[:n].tolist(),
        "pair keys": acc.pairs.keys[:p].tolist(),
        "pair_count": acc.pair_count[:p].tolist(),
        "segs": segs,
        "n_segs": acc.n_segs,
    }


@settings(max_examples=150, deadline=None)
@given(st.integers(0, 2**32 - 1), st.lists(st.integers(1, 120), min_size=1, max_size=5), st.integers(1, 30))
def test_reduce_leaves_numpys_state(seed: int, sizes: list[int], keys: int) -> None:
    """After every add() call (one call's earliest packet merged with the earlier calls' by their
    tie rules, first rows, segments, sizes past the bin table, the profile cache, pair counts)."""
    rng = np.random.default_rng(seed)
    calls, start = [], 0
    for n in sizes:
        calls.append(_rows(rng, n, keys, start))
        start += 5 * n + 1
    saved = A.AGG
    states: list[list[dict[str, Any]]] = []
    try:
        for agg in (COMPILED_AGG, None):
            A.AGG = agg
            acc = A.Accumulator()
            seen = []
            for rows in calls:
                acc.add({k: v.copy() for k, v in rows.items()})
                seen.append(_state(acc))
            states.append(seen)
    finally:
        A.AGG = saved
    for a, b in zip(*states, strict=True):
        assert a.keys() == b.keys()
        for k in a:
            assert a[k] == b[k], k


def test_reduce_first_packet_ties_across_calls() -> None:
    """The same time in a later call with a smaller frame does not replace a group's earliest packet;
    an earlier time does; within one call the smaller frame wins a tie."""
    base = _rows(np.random.default_rng(1), 1, 1, 0)
    one = {k: v[:1].copy() for k, v in base.items()}

    def call(ts: list[int], frames: list[int], row0: int) -> dict[str, np.ndarray]:
        n = len(ts)
        out = {k: np.repeat(v, n) for k, v in one.items()}
        out["ts"], out["frame"] = np.array(ts, dtype=_I64), np.array(frames, dtype=_I64)
        out["row"] = np.arange(row0, row0 + n, dtype=_I64)
        return out

    plan = [call([5, 5, 7], [9, 4, 1], 0), call([5], [2], 10), call([3, 3], [8, 6], 20), call([1 << 62], [1], 30)]
    got = []
    saved = A.AGG
    try:
        for agg in (COMPILED_AGG, None):
            A.AGG = agg
            acc = A.Accumulator()
            trail = []
            for c in plan:
                acc.add(c)
                trail.append((int(acc.acc["first_ts"][0]), int(acc.acc["first_frame"][0])))
            got.append(trail)
    finally:
        A.AGG = saved
    assert got[0] == got[1] == [(5, 4), (5, 4), (3, 6), (3, 6)]


# --- TCP sequence runs ---------------------------------------------------------------------------------
_NEAR = [0, 1, 2, (1 << 31) - 2, (1 << 31) - 1, 1 << 31, (1 << 31) + 1, (1 << 32) - 2, (1 << 32) - 1]
_END = st.sampled_from(_NEAR) | st.integers(0, (1 << 32) - 1)


def _serial_model(
    fid: list[int], ends: list[int], nexts: list[int | None]
) -> tuple[list[bool], list[int], list[int | None]]:
    """FlowStats' own sequence logic, one segment at a time: new, retransmissions, tcp_next."""
    nxt = list(nexts)
    new, re = [], [0] * len(nexts)
    for f, e in zip(fid, ends, strict=True):
        cur = nxt[f]
        if cur is None or seq_after(e, cur):
            nxt[f] = e
            new.append(True)
        else:
            re[f] += 1
            new.append(False)
    return new, re, nxt


@settings(max_examples=400, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 4), _END), min_size=1, max_size=60),
    st.lists(st.none() | _END, min_size=5, max_size=5),
    st.integers(0, (1 << 32) - 1),
)
def test_tcp_runs_equal_numpy_and_serial_order(
    segs: list[tuple[int, int]], nexts: list[int | None], shift: int
) -> None:
    """Any 32-bit ends and flows' tcp_next (shifted as a whole: serial order does not care where the
    wrap is); flows with one segment, with and without tcp_next.  Compiled == numpy, and for every
    flow not flagged bad, exactly what FlowStats would do segment by segment."""
    fid_l = [f for f, _ in segs]
    ends_l = [(e + shift) & 0xFFFFFFFF for _, e in segs]
    nexts = [None if x is None else (x + shift) & 0xFFFFFFFF for x in nexts]
    fid, ends = np.array(fid_l, dtype=_I64), np.array(ends_l, dtype=_I64)
    nf = len(nexts)
    has_next = np.array([x is not None for x in nexts], dtype=bool)
    nxt0 = np.array([x or 0 for x in nexts], dtype=_I64)
    new, bad, any_new, next_end, re_flow = A._tcp_runs(fid, ends, has_next, nxt0)
    c_new, c_bad, c_any = np.empty(fid.shape[0], np.int8), np.empty(nf, np.int8), np.empty(nf, np.int8)
    c_next, c_re = np.empty(nf, _I64), np.empty(nf, _I64)
    COMPILED_AGG.tcp_runs(fid, ends, has_next.view(np.int8), nxt0, c_new, c_bad, c_any, c_next, c_re)
    assert c_new.view(bool).tolist() == new.tolist()
    assert c_bad.view(bool).tolist() == bad.tolist()
    assert c_any.view(bool).tolist() == any_new.tolist()
    assert c_next[any_new].tolist() == next_end[any_new].tolist()
    assert c_re.tolist() == re_flow.tolist()
    m_new, m_re, m_next = _serial_model(fid_l, ends_l, nexts)
    for f in range(nf):
        if bad[f]:
            continue  # Applier._tcp replays these with the model's own logic
        mine = [i for i, x in enumerate(fid_l) if x == f]
        assert [bool(new[i]) for i in mine] == [m_new[i] for i in mine], f
        assert int(re_flow[f]) == m_re[f]
        if any_new[f]:
            assert int(next_end[f]) == m_next[f]
        else:
            assert m_next[f] == nexts[f]


# --- error paths ----------------------------------------------------------------------------------------
def _refs(objs: list[Any]) -> list[int]:
    flat: list[Any] = []
    for o in objs:
        flat += list(o) if isinstance(o, tuple) else [o]
    return [sys.getrefcount(x) for x in flat if isinstance(x, np.ndarray)]


def _tcp_args(nf: int = 3, n: int = 4) -> list[Any]:
    return [
        np.arange(n, dtype=_I64) % nf,
        np.arange(n, dtype=_I64) * 1000,
        np.zeros(nf, dtype=np.int8),
        np.zeros(nf, dtype=_I64),
        np.empty(n, dtype=np.int8),
        np.empty(nf, dtype=np.int8),
        np.empty(nf, dtype=np.int8),
        np.empty(nf, dtype=_I64),
        np.empty(nf, dtype=_I64),
    ]


_TCP_SPOILS: dict[str, tuple[int, Callable[[Any], Any]]] = {
    "flow number past the flows": (0, lambda a: a + 5),
    "negative flow number": (0, lambda a: a - 1),
    "ends short": (1, lambda a: a[:-1]),
    "has_next of the wrong width": (2, lambda a: a.astype(_I64)),
    "new too short": (4, lambda a: a[:-1]),
    "bad read-only": (5, lambda a: np.frombuffer(bytes(a.shape[0]), dtype=np.int8)),
    "retransmissions not contiguous": (8, lambda a: np.empty(2 * a.shape[0], dtype=_I64)[::2]),
}


@pytest.mark.parametrize("spoil", sorted(_TCP_SPOILS))
def test_tcp_runs_errors_release_every_buffer(spoil: str) -> None:
    args = _tcp_args()
    k, change = _TCP_SPOILS[spoil]
    args[k] = change(args[k])
    before = _refs(args)
    with pytest.raises((ValueError, TypeError, BufferError)):
        COMPILED_AGG.tcp_runs(*args)
    assert _refs(args) == before


def _reduce_args(n: int = 6) -> tuple[A.Accumulator, list[Any]]:
    """An accumulator primed by one compiled add(), and the arguments of its next reduce call."""
    rows = _rows(np.random.default_rng(3), n, 3, 0)
    saved = A.AGG
    try:
        A.AGG = COMPILED_AGG
        acc = A.Accumulator()
        cols = {k: v.copy() for k, v in rows.items()}
        acc.add(cols)
    finally:
        A.AGG = saved
    gid = acc.groups.lookup(cols["key_hash"])
    args = [
        tuple(gid if k == "gid" else rows[k] for k in COMPILED_AGG.ROW_COLUMNS),
        tuple(acc.acc[k] for k in COMPILED_AGG.ACC_COLUMNS),
        (acc.size_hist, A._SIZE_BIN_OF, A._SIZE_EDGES, acc.last_prof, acc.last_pid, acc.local_ts, acc.local_frame),
        tuple(np.empty((6, n), dtype=_I64)),
        acc.groups.n,
    ]
    return acc, args


def _spoil_rows(k: str, f: Callable[[np.ndarray], np.ndarray]) -> Callable[[tuple[Any, ...]], tuple[Any, ...]]:
    j = COMPILED_AGG.ROW_COLUMNS.index(k) if COMPILED_AGG is not None else 0
    return lambda t: (*t[:j], f(t[j]), *t[j + 1 :])


_REDUCE_SPOILS: dict[str, tuple[int, Callable[[Any], Any]]] = {
    "a group past the groups": (0, _spoil_rows("gid", lambda a: a + 100)),
    "a negative group": (0, _spoil_rows("gid", lambda a: a - 100)),
    "a row column short": (0, _spoil_rows("ts", lambda a: a[:-1])),
    "a row column missing": (0, lambda t: t[:-1]),
    "an inner size below the first bin": (0, _spoil_rows("i_size", lambda a: a - (1 << 20))),
    "an accumulator column short": (1, lambda t: (*t[:-1], t[-1][:0])),
    "no size edges": (2, lambda t: (*t[:2], t[2][:0], *t[3:])),
    "the size histogram short": (2, lambda t: (t[0][:1], *t[1:])),
    "an output read-only": (3, lambda t: (np.frombuffer(bytes(t[0].nbytes), dtype=_I64), *t[1:])),
    "an output short": (3, lambda t: (*t[:-1], t[-1][:-1])),
    "groups negative": (4, lambda g: -1),
}


@pytest.mark.parametrize("spoil", sorted(_REDUCE_SPOILS))
def test_reduce_errors_release_every_buffer(spoil: str) -> None:
    _acc, args = _reduce_args()
    k, change = _REDUCE_SPOILS[spoil]
    args[k] = change(args[k])
    # the scratch arrays must be left untouched (2**63 - 1, 2**62) even when a call fails half way
    scratch = args[2][5], args[2][6]
    before = _refs(args[:4])
    with pytest.raises((ValueError, TypeError, BufferError)):
        COMPILED_AGG.reduce(*args)
    assert _refs(args[:4]) == before
    assert bool((scratch[0] == A._NO_FIRST_TS).all()) and bool((scratch[1] == A._BIG).all())


def test_keys_errors_release_every_buffer() -> None:
    cols = tuple(np.zeros(4, dtype=_I64) for _ in COMPILED_AGG.KEY_COLUMNS)
    for args in (
        (cols[:-1], np.empty(4, _I64), np.empty(4, _I64)),
        ((*cols[:-1], np.zeros(3, _I64)), np.empty(4, _I64), np.empty(4, _I64)),
        (cols, np.empty(4, _I64), np.empty(3, _I64)),
        (cols, np.frombuffer(bytes(32), dtype=_I64), np.empty(4, _I64)),
        (cols, np.empty(4, _I64), np.empty(8, _I64)[::2]),
    ):
        before = _refs(list(args))
        with pytest.raises((ValueError, TypeError, BufferError)):
            COMPILED_AGG.keys(*args)
        assert _refs(list(args)) == before
