"""The fast engine feeds the findings' collector exactly as the scalar analyze loop does.

Compared: the facts themselves (every field of every tunnel, flow, path, TCP and duplicate
state, held-back heads and pending events included, before and after finalizing) and the
findings JSON.  Dict comparison ignores insertion order; everything else must match.
"""

from __future__ import annotations

import dataclasses
import json
import random
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ipsotrace.correlate import DEFAULT_MAX_FLOWS, DEFAULT_MAX_TUNNELS, Aggregates, Correlator
from ipsotrace.correlate.aggregates import MAX_PATHS
from ipsotrace.decode import decode
from ipsotrace.dissectors.registry import DissectConfig, dissect_frame
from ipsotrace.fast import aggregate, engine
from ipsotrace.fast import decode as fast_decode
from ipsotrace.fast import facts as F
from ipsotrace.fast.batch import BatchReader
from ipsotrace.fast.decode import decode_batch
from ipsotrace.fast.engine import FastAnalyzer
from ipsotrace.fast.parallel import Settings, analyze_parallel, units
from ipsotrace.findings import Collector, Facts, evaluate, extra, findings_json
from ipsotrace.findings.collect import fingerprint
from ipsotrace.sources import CaptureFile
from tests.conftest import require
from tests.corpus import CORPUS, config_for
from tests.fast.gen import GenFrame, mixed_frames, write_pcap
from tests.fast.test_engine import _vxlan_tcp, tcp_frames
from tests.findings.helpers import scenario_options

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = sorted([*ROOT.glob("captures/*.pcap*"), *ROOT.glob("captures/findings/*.pcap")])
CORPUS_FILES = sorted(p for p in CORPUS.glob("*.pcap*") if not p.name.endswith(".json")) if CORPUS.is_dir() else []


def scalar(paths: list[Path], cfg: DissectConfig, **kw: Any) -> tuple[Aggregates, Facts]:
    """The scalar analyze loop: decode (with reassembly), Correlator.add, Collector.add."""
    corr = Correlator(**kw)
    coll = Collector(**{k: v for k, v in kw.items() if k != "gre_key_as_id"})
    for p in paths:
        with CaptureFile(p) as cap:
            corr.begin_source(str(p))
            coll.begin_source(str(p))
            for pkt in decode(cap, cfg):
                coll.add(pkt, corr.add(pkt))
    return corr.result, coll.result


def fast(paths: list[Path], cfg: DissectConfig, **kw: Any) -> tuple[Aggregates, Facts, F.FeedStats]:
    corr = Correlator(**kw)
    coll = Collector(**{k: v for k, v in kw.items() if k != "gre_key_as_id"})
    stats = F.FeedStats()
    for p in paths:
        fa = FastAnalyzer(corr, cfg, collector=coll)
        fa.add_file(p)
        assert fa.facts is not None
        for f in dataclasses.fields(stats):
            setattr(stats, f.name, getattr(stats, f.name) + getattr(fa.facts.stats, f.name))
    return corr.result, coll.result, stats


def same_facts(a: Facts, b: Facts) -> None:
    """Equal facts: the state as collected, and as finalized."""
    for x, y in ((a, b), (a.finalized_copy(), b.finalized_copy())):
        da, db = dataclasses.asdict(x), dataclasses.asdict(y)
        if da != db:
            for k in da:
                if isinstance(da[k], dict):
                    for key in set(da[k]) | set(db[k]):
                        assert da[k].get(key) == db[k].get(key), (k, key)
                assert da[k] == db[k], k
        assert da == db


def same_findings(agg_a: Aggregates, a: Facts, agg_b: Aggregates, b: Facts) -> None:
    ja = json.dumps(findings_json(evaluate(agg_a, a)), sort_keys=True)
    jb = json.dumps(findings_json(evaluate(agg_b, b)), sort_keys=True)
    assert ja == jb


def check(paths: list[Path], cfg: DissectConfig | None = None, **kw: Any) -> F.FeedStats:
    cfg = cfg or DissectConfig()
    agg_s, facts_s = scalar(paths, cfg, **kw)
    agg_f, facts_f, stats = fast(paths, cfg, **kw)
    same_facts(facts_s, facts_f)
    same_order(facts_s, facts_f)
    same_findings(agg_s, facts_s, agg_f, facts_f)
    return stats


@pytest.fixture(scope="module", params=["compiled", "python"], autouse=True)
def dup_scan(request: pytest.FixtureRequest) -> Iterator[str]:
    """Every test here with the compiled helpers (the duplicate scan, fingerprints, TCP step, tunnel counters
    and flow row selections of ipsotrace/fast/_walk.c, the header walk, the accumulator's passes) and with the
    numpy versions."""
    saved = F.DUPS, F.FINGERPRINTS, F.TCP, F.TUNNEL_COUNTS_C, F.FLOW_FLAGS, fast_decode.DECODE, aggregate.AGG
    if request.param == "compiled" and None in saved:
        pytest.skip("the compiled helpers are not built (no C compiler at install, or IPSOTRACE_NO_EXT=1)")
    if request.param == "python":
        F.DUPS = F.FINGERPRINTS = F.TCP = F.TUNNEL_COUNTS_C = F.FLOW_FLAGS = fast_decode.DECODE = aggregate.AGG = None
    yield request.param
    F.DUPS, F.FINGERPRINTS, F.TCP, F.TUNNEL_COUNTS_C, F.FLOW_FLAGS, fast_decode.DECODE, aggregate.AGG = saved


@pytest.fixture
def tiny_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    """Sub-batches of 7 frames, blocks of 20 rows: state crosses many boundaries."""
    monkeypatch.setattr(engine, "SUB_BATCH", 7)
    monkeypatch.setattr(F, "BLOCK", 20)


# --- shipped captures: every finding scenario -------------------------------------------------------
@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_shipped_captures_same_facts(path: Path) -> None:
    check([path])


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_shipped_captures_across_batches(path: Path, tiny_batches: None) -> None:
    check([path])


def test_all_shipped_captures_as_one_input() -> None:
    check(SHIPPED)


def test_scenarios_give_their_findings() -> None:
    """The fast engine finds what each scenario capture was made for (not just "the same nothing")."""
    scenarios = sorted(p for p in ROOT.glob("captures/findings/*.pcap") if p.stem != "clean")
    assert len(scenarios) >= 23
    for path in scenarios:
        inventory, untrusted = scenario_options(path.stem)  # the scenario's inventory / untrusted networks
        agg, facts, _ = fast([path], DissectConfig())
        ids = {f["id"] for f in findings_json(evaluate(agg, facts, inventory=inventory, untrusted=untrusted))}
        assert path.stem in ids, path.name


# --- public corpus --------------------------------------------------------------------------------------
@pytest.mark.parametrize("path", CORPUS_FILES, ids=lambda p: p.name)
def test_corpus_same_facts(path: Path) -> None:
    cfg = config_for(json.loads(Path(str(path) + ".truth.json").read_text()))
    check([path], cfg)


def test_corpus_is_there() -> None:
    require(bool(CORPUS_FILES), f"public corpus not found at {CORPUS}")


# --- generated captures ---------------------------------------------------------------------------------
_INNER_TTL = 14 + 20 + 8 + 8 + 14 + 8  # Ethernet, outer IPv4, UDP, VXLAN, inner Ethernet; IPv4 TTL byte


def dup_tcp_frames(seed: int, n: int) -> list[GenFrame]:
    """TCP over VXLAN with retransmissions across entropy ports (tcp_frames), plus duplicated packets.

    Copies come 0 to 80 ms later (the window is 50 ms), some with the inner TTL lower (a loop),
    some out of timestamp order.
    """
    r = random.Random(seed)
    out: list[GenFrame] = []
    for f in tcp_frames(seed, n):
        out.append(f)
        if r.random() < 0.12:
            data = bytearray(f.data)
            if r.random() < 0.4:
                data[_INNER_TTL] -= r.randrange(1, 3)
            out.append(GenFrame(f.ts_ns + r.choice([0, 1000, 30_000_000, 80_000_000, -500]), bytes(data), f.wirelen))
    return out


def _write(frames: list[GenFrame], d: str, name: str = "g.pcap") -> Path:
    path = Path(d) / name
    path.write_bytes(write_pcap(frames, nanos=True))
    return path


def test_generated_mixed_same_facts(tmp_path: Path) -> None:
    frames = mixed_frames(1500, seed=5) + dup_tcp_frames(6, 1500)
    stats = check([_write(frames, str(tmp_path))])
    assert stats.rows > 2000
    # multi-path flows: one segment at a time with numpy, the compiled step takes them all
    assert (stats.tcp_python > 0) == (F.TCP is None)


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 10_000), st.integers(1, 5), st.booleans())
def test_generated_tcp_and_duplicates_same_facts(seed: int, split: int, mixed: bool) -> None:
    frames = dup_tcp_frames(seed, 500)
    if mixed:
        other = mixed_frames(200, seed=seed)
        frames = [f for pair in zip(frames, other, strict=False) for f in pair] + frames[len(other) :]
    old = engine.SUB_BATCH, F.BLOCK
    engine.SUB_BATCH, F.BLOCK = 31 * split, 45 * split
    try:
        with tempfile.TemporaryDirectory() as d:
            check([_write(frames, d)])
    finally:
        engine.SUB_BATCH, F.BLOCK = old


def test_long_tcp_flows_vectorized() -> None:
    """Many data segments per flow: most go the vectorized way, with retransmissions blamed there."""
    r = random.Random(9)
    seq = {f: r.randrange(1 << 32) for f in range(6)}
    frames = []
    for i in range(6000):
        f = r.randrange(6)
        if r.random() < 0.1:
            s = (seq[f] - 1000 * r.randrange(1, 20)) & 0xFFFFFFFF  # a retransmission, same path
        else:
            s, seq[f] = seq[f], (seq[f] + 1000) & 0xFFFFFFFF
        d = _vxlan_tcp(f, s, 1000, 50000 + f)
        frames.append(GenFrame(1_700_000_000_000_000_000 + i * 1000, d, len(d)))
    with tempfile.TemporaryDirectory() as d:
        old = engine.SUB_BATCH, F.BLOCK
        engine.SUB_BATCH, F.BLOCK = 500, 1500
        try:
            stats = check([_write(frames, d)])
        finally:
            engine.SUB_BATCH, F.BLOCK = old
    assert stats.tcp_python < 6 * 16 + 100  # heads and the odd pending: the rest vectorized


def test_caps_go_one_by_one(tmp_path: Path) -> None:
    frames = mixed_frames(600, seed=8) + dup_tcp_frames(8, 600)
    path = _write(frames, str(tmp_path))
    stats = check([path], max_flows=5, max_tunnels=4)
    assert stats.one_by_one > 0


def test_slim_rows_go_first_near_the_caps(tmp_path: Path, tiny_batches: None) -> None:
    """Rows kept with only the block's columns go first, as a block, when later rows come near the caps."""
    path = _write(mixed_frames(300, seed=3) + dup_tcp_frames(4, 300), str(tmp_path))  # 227 flows
    one_by_one = [check([path], max_flows=cap).one_by_one for cap in (200, 220, 240, 260)]
    assert one_by_one[0] > 0 and one_by_one[-1] == 0


def test_key_collision_goes_one_by_one(tmp_path: Path, tiny_batches: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """A 64-bit key collision (forced here: every 5th sub-batch) sends its block one by one, after the rows before."""
    paths = F.FactsFeed._paths
    calls = [0]

    def colliding(self: F.FactsFeed, c: dict[str, np.ndarray]) -> np.ndarray:
        pid = paths(self, c)
        calls[0] += 1
        if calls[0] % 5 == 0:
            raise aggregate.HashCollision
        return pid

    monkeypatch.setattr(F.FactsFeed, "_paths", colliding)
    frames = mixed_frames(300, seed=4) + dup_tcp_frames(5, 300)
    stats = check([_write(frames, str(tmp_path))])
    assert stats.one_by_one > 0 and stats.blocks > stats.one_by_one // F.BLOCK + 1


def test_state_synced_before_one_by_one(tmp_path: Path, tiny_batches: None) -> None:
    """A block that goes one by one (cap pressure) sees the duplicate rings earlier blocks left in arrays,
    and the block after it reloads them from the collector's objects."""
    t0 = 1_700_000_000_000_000_000
    frames: list[GenFrame] = []

    def add(data: bytes) -> None:
        frames.append(GenFrame(t0 + len(frames) * 1000, data, len(data)))

    for i in range(25):
        add(_vxlan_tcp(0, 1000 + 100 * i, 100, 50000))
    add(frames[-6].data)  # a duplicate of a packet of the previous block (blocks of 21 rows here)
    for f in range(1, 11):
        add(_vxlan_tcp(f, 7, 100, 50000))  # new flows past the cap: this block goes one by one
    for i in range(25, 60):
        add(_vxlan_tcp(0, 1000 + 100 * i, 100, 50000))
        if i % 9 == 0:
            add(frames[-3].data)
    stats = check([_write(frames, str(tmp_path))], max_flows=5)
    assert stats.one_by_one > 0 and stats.blocks > stats.one_by_one // F.BLOCK + 1


def test_several_files(tmp_path: Path) -> None:
    a = _write(dup_tcp_frames(1, 400), str(tmp_path), "a.pcap")
    b = _write(mixed_frames(400, seed=2), str(tmp_path), "b.pcap")
    c = _write(dup_tcp_frames(3, 400), str(tmp_path), "c.pcap")
    check([a, b, c])


# --- --jobs ---------------------------------------------------------------------------------------------
def test_parallel_facts_merge_like_one_pass(tmp_path: Path) -> None:
    # in-order TCP and no duplicates across cuts: Facts.merge's bounded exceptions cannot occur
    r = random.Random(3)
    seq = {f: r.randrange(1 << 32) for f in range(40)}
    frames = []
    for i in range(4000):
        f = r.randrange(40)
        d = _vxlan_tcp(f, seq[f], 1200, 50000 + f, vni=100 + f % 4)
        seq[f] = (seq[f] + 1200) & 0xFFFFFFFF
        frames.append(GenFrame(1_700_000_000_000_000_000 + i * 1000, d, len(d)))
    big = _write(frames, str(tmp_path), "big.pcap")
    assert len(units([big], 3)) >= 2
    s = Settings(DissectConfig(), DEFAULT_MAX_FLOWS, DEFAULT_MAX_TUNNELS, False, True, findings=True)
    par = analyze_parallel([big], 3, s)
    agg, facts = scalar([big], DissectConfig())
    assert par.facts is not None
    a, b = dataclasses.asdict(facts.finalized_copy()), dataclasses.asdict(par.facts.finalized_copy())
    assert a == b
    same_findings(agg, facts, par.result, par.facts)


# --- building blocks ------------------------------------------------------------------------------------
def test_fingerprints_match_the_scalar_extra(tmp_path: Path) -> None:
    """numpy's fingerprint of each fast row is the one extra() computes from the dissected packet."""
    path = _write(mixed_frames(800, seed=11) + dup_tcp_frames(12, 200), str(tmp_path))
    cfg = DissectConfig()
    checked = 0
    with BatchReader(path) as reader:
        for batch in reader:
            fc = decode_batch(batch, cfg, tunnelled_only=True)
            fps = F.fingerprints(fc.cols).view(np.uint64).tolist()
            for i, row in enumerate(fc.cols["row"].tolist()):
                pkt = dissect_frame(batch.frame_bytes(row), int(batch.linktype[row]), cfg)
                assert extra(pkt).fingerprint == fps[i]
                checked += 1
    assert checked > 300


def test_fingerprint_is_stable() -> None:
    # a fixed value: parts analysed in other processes (and numpy) must agree with it
    assert fingerprint((1, 2, 3, -1, -1, -1, -1)) == fingerprint((1, 2, 3, -1, -1, -1, -1))
    assert fingerprint((1, 2, 3, -1, -1, -1, -1)) != fingerprint((1, 2, 4, -1, -1, -1, -1))
    assert fingerprint(()) != 0


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 400), st.integers(1, 12))
def test_tunnel_counts_compiled_equals_numpy(seed: int, n: int, groups: int) -> None:
    """The compiled tunnel counters give numpy's table and flags, field for field (absent values included)."""
    if F.TUNNEL_COUNTS_C is None:
        pytest.skip("compares the compiled counters with numpy: runs in the compiled variant")
    rng = np.random.default_rng(seed)
    c = {
        "i_ver": rng.choice([0, 1, 4, 6], n),
        "offload": rng.integers(0, 2, n),
        "o_ttl": rng.integers(-1, 5, n),
        "i_ttl": rng.integers(-1, 5, n),
        "o_size": rng.integers(0, 120, n),
        "i_size": rng.integers(0, 120, n),
        "o_dscp": rng.integers(0, 3, n),
        "i_dscp": rng.integers(0, 3, n),
        "o_ecn": rng.integers(0, 4, n),
        "i_ecn": rng.integers(0, 4, n),
    }
    c = {k: v.astype(np.int64) for k, v in c.items()}
    g = rng.integers(0, groups, n).astype(np.int64)
    size = groups + 2  # groups without rows too
    compiled = F.tunnel_counts(c, g, size)
    saved, F.TUNNEL_COUNTS_C = F.TUNNEL_COUNTS_C, None
    try:
        numpy_ = F.tunnel_counts(c, g, size)
    finally:
        F.TUNNEL_COUNTS_C = saved
    assert compiled[0].tolist() == numpy_[0].tolist()
    assert compiled[1].tolist() == numpy_[1].tolist()


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 400), st.integers(1, 12))
def test_flow_flags_compiled_equals_numpy(seed: int, n: int, groups: int) -> None:
    """The compiled flow row selections give numpy's flags and DF maxima."""
    if F.FLOW_FLAGS is None:
        pytest.skip("compares the compiled flags with numpy: runs in the compiled variant")
    rng = np.random.default_rng(seed)
    c = {
        "i_ver": rng.choice([0, 1, 4, 6], n),
        "offload": rng.integers(0, 2, n),
        "i_frag": rng.integers(0, 2, n),
        "i_df": rng.integers(0, 2, n),
        "i_size": rng.integers(0, 9000, n),
        "o_ttl": rng.integers(-1, 3, n),
        "i_ecn": rng.integers(0, 4, n),
        "o_ecn": rng.integers(0, 4, n),
        "tcp_flags": rng.integers(-1, 256, n),
        "mss": rng.integers(0, 3, n),
        "tcp_len": rng.integers(0, 3, n),
        "fp": rng.integers(-2, 3, n),
    }
    c = {k: v.astype(np.int64) for k, v in c.items()}
    g = rng.integers(0, groups, n).astype(np.int64)
    start = rng.integers(0, 5000, groups + 2).astype(np.int64)
    compiled_max, numpy_max = start.copy(), start.copy()
    compiled = F.flow_flags(c, g, compiled_max)
    saved, F.FLOW_FLAGS = F.FLOW_FLAGS, None
    try:
        numpy_ = F.flow_flags(c, g, numpy_max)
    finally:
        F.FLOW_FLAGS = saved
    assert compiled.tolist() == numpy_.tolist()
    assert compiled_max.tolist() == numpy_max.tolist()


# --- order, caps and bounds -------------------------------------------------------------------------------
def same_order(a: Facts, b: Facts) -> None:
    """The dicts in the same insertion order (what the findings list ties in), not only equal."""
    assert list(a.tunnels) == list(b.tunnels)
    assert list(a.flows) == list(b.flows)
    for fk, f in a.flows.items():
        assert list(f.paths) == list(b.flows[fk].paths), fk


def test_time_going_backwards_inserts_in_packet_order(tmp_path: Path) -> None:
    """Capture times that go back inside a block: new tunnels, flows and paths enter the dicts in
    order of their first packet (as one pass inserts them), their first evidence is the earliest."""
    r = random.Random(21)
    t0 = 1_700_000_000_000_000_000
    seq = dict.fromkeys(range(8), 1000)
    frames = []
    for i in range(400):
        f = i if i < 8 else r.randrange(8)  # flow k first appears at row k, ...
        ts = t0 - i * 1000 if i < 16 else t0 + r.randrange(-50_000, 50_000)  # ... with an earlier time
        if r.random() < 0.15:
            s = seq[f] - 100 * r.randrange(1, 5)  # a retransmission: loss blamed on a path
        else:
            s, seq[f] = seq[f], seq[f] + 100
        d = _vxlan_tcp(f, s, 100, 50000 + r.randrange(4), vni=100 + f % 3)
        frames.append(GenFrame(ts, d, len(d)))
    path = _write(frames, str(tmp_path))
    agg_s, facts_s = scalar([path], DissectConfig())
    agg_f, facts_f, _ = fast([path], DissectConfig())
    same_order(facts_s, facts_f)
    same_facts(facts_s, facts_f)
    same_findings(agg_s, facts_s, agg_f, facts_f)


def _path_flood(n: int, paths: int | None = None, retx: float = 0.2, payload: int = 100) -> list[GenFrame]:
    """One TCP flow whose every packet takes a new outer entropy port (up to ``paths`` of them), with
    retransmissions (share ``retx``): loss is blamed on paths kept and on paths past the cap."""
    r = random.Random(n)
    frames, seq, sent = [], 1000, []
    for i in range(n):
        if sent and r.random() < retx:
            s = r.choice(sent)
        else:
            s, seq = seq, seq + payload
            sent.append(s)
        port = 1024 + (i if paths is None else i % paths)
        d = _vxlan_tcp(0, s, payload, port)
        frames.append(GenFrame(1_700_000_000_000_000_000 + i * 1000, d, len(d)))
    return frames


def test_paths_per_flow_capped_like_the_correlator(tmp_path: Path, tiny_batches: None) -> None:
    path = _write(_path_flood(700), str(tmp_path))
    check([path])
    _, facts, _ = fast([path], DissectConfig())
    (flow,) = facts.flows.values()
    assert len(flow.paths) == MAX_PATHS
    assert flow.paths_overflow == 700 - MAX_PATHS
    assert sum(p.packets for p in flow.paths.values()) + flow.paths_overflow == 700


def test_paths_capped_across_blocks_and_parallel_parts(tmp_path: Path) -> None:
    path = _write(_path_flood(3000, paths=400), str(tmp_path))
    old = engine.SUB_BATCH, F.BLOCK
    engine.SUB_BATCH, F.BLOCK = 100, 250
    try:
        check([path])
    finally:
        engine.SUB_BATCH, F.BLOCK = old
    # in-order data for --jobs: many TCP runs per flow are one of Facts.merge's bounded exceptions
    path = _write(_path_flood(3000, retx=0, payload=1200), str(tmp_path), "jobs.pcap")
    agg, facts = scalar([path], DissectConfig())
    assert len(units([path], 3)) >= 2
    s = Settings(DissectConfig(), DEFAULT_MAX_FLOWS, DEFAULT_MAX_TUNNELS, False, True, findings=True)
    par = analyze_parallel([path], 3, s)
    assert par.facts is not None
    (flow,) = par.facts.flows.values()
    assert len(flow.paths) == MAX_PATHS and flow.paths_overflow > 0
    a, b = dataclasses.asdict(facts.finalized_copy()), dataclasses.asdict(par.facts.finalized_copy())
    assert a == b
    same_findings(agg, facts, par.result, par.facts)


def _groups(feed: F.FactsFeed) -> int:
    """Groups the feed numbers (key lists and dicts, the hash table)."""
    return max(len(feed._pkeys), len(feed._fkeys), len(feed._tkeys), len(feed._pid), len(feed._fid), feed._table.n)


def _array_rows(feed: F.FactsFeed) -> int:
    """Rows of the feed's per-group arrays."""
    return max(a.shape[0] for a in (feed._p_flow, feed._p_packets, feed._f_packets, feed._d_live, feed._d_fp))


def _bounded_run(path: Path, monkeypatch: pytest.MonkeyPatch, **kw: Any) -> F.FeedStats:
    """The fast path equals the scalar one, and the feed's tables never pass their bound."""
    monkeypatch.setattr(engine, "SUB_BATCH", 64)
    monkeypatch.setattr(F, "BLOCK", 200)
    calls = 0
    add = F.FactsFeed.add

    def spy(self: F.FactsFeed, cols: dict[str, np.ndarray]) -> None:
        nonlocal calls
        add(self, cols)
        calls += 1
        assert self.limit == 2 * kw["max_flows"] + kw["max_tunnels"]  # a multiple of what the collector keeps
        # a block ends at the sub-batch that passes the limit: one sub-batch's rows at most come on top
        assert _groups(self) <= self.limit + engine.SUB_BATCH
        assert _array_rows(self) <= max(1024, 2 * (self.limit + engine.SUB_BATCH))  # grown by doubling

    monkeypatch.setattr(F.FactsFeed, "add", spy)
    stats = check([path], **kw)
    assert calls > 20
    return stats


def test_flood_of_flows_keeps_the_feed_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Random inner ports: every packet a new flow.  The feed's tables are a cache of group numbers
    (the collector's capped objects are the truth): past their bound they are synced and dropped."""
    r = random.Random(4)
    frames = []
    for i in range(6000):
        if i % 5 == 0:  # a busy flow with data, retransmissions and duplicates among the flood
            d = _vxlan_tcp(0, 1000 + 100 * (i // 5) - (300 if i % 35 == 0 else 0), 100, 50000)
        else:
            d = _vxlan_tcp(1 + r.randrange(25000), r.randrange(1 << 32), 10, 50000 + r.randrange(8), vni=r.randrange(6))
        frames.append(GenFrame(1_700_000_000_000_000_000 + i * 1000, d, len(d)))
        if i % 50 == 0:
            frames.append(GenFrame(frames[-1].ts_ns + 10, d, len(d)))
    stats = _bounded_run(_write(frames, str(tmp_path)), monkeypatch, max_flows=40, max_tunnels=4)
    assert stats.resets > 5


def test_many_paths_keep_the_feed_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Few flows, each over many entropy ports: no cap pressure, the blocks stay vectorized across resets."""
    r = random.Random(5)
    seq = dict.fromkeys(range(6), 1000)
    frames = []
    for i in range(5000):
        f = r.randrange(6)
        if r.random() < 0.1:
            s = seq[f] - 100 * r.randrange(1, 30)
        else:
            s, seq[f] = seq[f], seq[f] + 100
        d = _vxlan_tcp(f, s, 100, 1024 + r.randrange(300))
        frames.append(GenFrame(1_700_000_000_000_000_000 + i * 1000, d, len(d)))
        if r.random() < 0.05:
            frames.append(GenFrame(frames[-1].ts_ns + 5, d, len(d)))
    stats = _bounded_run(_write(frames, str(tmp_path)), monkeypatch, max_flows=10, max_tunnels=4)
    assert stats.resets > 5 and stats.one_by_one == 0
