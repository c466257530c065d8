"""The fast engine's aggregates equal the scalar correlator's, as ``analyze --json`` prints them."""

from __future__ import annotations

import gzip
import json
import random
import struct
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ipsotrace.correlate import DEFAULT_MAX_FLOWS, DEFAULT_MAX_TUNNELS, Correlator, SourceInfo
from ipsotrace.correlate.extract import view
from ipsotrace.decode import decode
from ipsotrace.dissectors.registry import DissectConfig
from ipsotrace.fast import aggregate as A
from ipsotrace.fast import engine
from ipsotrace.fast.engine import FastAnalyzer
from ipsotrace.fast.parallel import Settings, analyze_parallel, units
from ipsotrace.sources import CaptureFile
from tests.conftest import IN_CI, require
from tests.corpus import CORPUS, config_for
from tests.fast.conftest import COMPILED_AGG
from tests.fast.gen import GenFrame, mixed_frames, write_pcap, write_pcapng


def scalar_doc(paths: list[Path], cfg: DissectConfig, **kw: Any) -> dict[str, Any]:
    """What ``analyze --engine scalar`` correlates: decode (with reassembly) + Correlator.add."""
    corr = Correlator(**kw)
    for p in paths:
        with CaptureFile(p) as cap:
            corr.begin_source(str(p))
            corr.add_all(decode(cap, cfg))
            s = cap.status
            corr.end_source(SourceInfo(str(p), s.format, s.frames, s.damage, s.damage_offset))
    return corr.result.to_json()


def fast_doc(paths: list[Path], cfg: DissectConfig, **kw: Any) -> tuple[dict[str, Any], engine.EngineStats]:
    corr = Correlator(**kw)
    fa = FastAnalyzer(corr, cfg)
    for p in paths:
        fa.add_file(p)
    return corr.result.to_json(), fa.stats


def same(a: dict[str, Any], b: dict[str, Any]) -> None:
    # one comparison of the whole document; on failure, the first differing key is named
    if a != b:
        for k in a:
            assert json.dumps(a[k], sort_keys=True) == json.dumps(b.get(k), sort_keys=True), k
    assert a == b


CORPUS_FILES = sorted(p for p in CORPUS.glob("*.pcap*") if not p.name.endswith(".json")) if CORPUS.is_dir() else []

#: every test here runs with the compiled record walk and with the pure-Python one
pytestmark = pytest.mark.usefixtures("helpers")


@pytest.mark.parametrize("path", CORPUS_FILES, ids=lambda p: p.name)
def test_corpus_same_aggregates(path: Path) -> None:
    cfg = config_for(json.loads(Path(str(path) + ".truth.json").read_text()))
    doc, _ = fast_doc([path], cfg)
    same(scalar_doc([path], cfg), doc)


@pytest.mark.parametrize("fmt", ["pcap", "pcapng", "pcap.gz"])
@pytest.mark.parametrize("key_as_id", [False, True])
def test_generated_mixed_same_aggregates(tmp_path: Path, fmt: str, key_as_id: bool) -> None:
    frames = mixed_frames(1500, seed=21)
    raw = write_pcapng(frames) if fmt == "pcapng" else write_pcap(frames)
    path = tmp_path / f"m.{fmt}"
    path.write_bytes(gzip.compress(raw) if fmt.endswith(".gz") else raw)
    doc, stats = fast_doc([path], DissectConfig(), gre_key_as_id=key_as_id)
    same(scalar_doc([path], DissectConfig(), gre_key_as_id=key_as_id), doc)
    assert stats.fast > 500 and stats.scalar_rows > 100  # both paths really ran


# --- TCP: sequence numbers, retransmissions, paths ----------------------------------------------------
def _vxlan_tcp(
    flow: int, seq: int, payload: int, sport: int, flags: int = 0x18, vni: int = 7, mss: bool = False
) -> bytes:
    opts = b"\x02\x04\x05\xb4" if mss else b""
    tcp = struct.pack(
        "!HHIIBBHHH", 40000 + flow, 443, seq & 0xFFFFFFFF, 1, (20 + len(opts)) // 4 << 4, flags, 500, 0, 0
    )
    tcp += opts + b"\x00" * payload
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), 1, 0x4000, 64, 6, 0, bytes([203, 0, 113, 1]),
                     bytes([203, 0, 113, 2 + flow % 50])) + tcp  # fmt: skip
    inner = bytes(6) + bytes(5) + b"\x01" + b"\x08\x00" + ip
    vx = struct.pack("!BBHI", 0x08, 0, 0, vni << 8) + inner
    udp = struct.pack("!HHHH", sport, 4789, 8 + len(vx), 0) + vx
    outer = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0, bytes([192, 0, 2, 1]),
                        bytes([192, 0, 2, 2])) + udp  # fmt: skip
    return bytes(6) + bytes(5) + b"\x02" + b"\x08\x00" + outer


def tcp_frames(seed: int, n: int) -> list[GenFrame]:
    """Flows with in-order data, retransmissions, reordering, wrap-around, huge jumps, SYNs, path moves."""
    r = random.Random(seed)
    state = {f: r.choice([r.randrange(1 << 32), (1 << 32) - 5000]) for f in range(12)}
    port = {f: 50000 + f for f in range(12)}
    sent: dict[int, list[int]] = {f: [] for f in range(12)}
    out = []
    for i in range(n):
        f = r.randrange(12)
        x = r.random()
        if x < 0.05:
            data = _vxlan_tcp(f, state[f], 0, port[f], flags=0x02, mss=True)  # SYN with MSS: scalar path
        elif x < 0.15 and sent[f]:
            data = _vxlan_tcp(f, r.choice(sent[f]), 1000, port[f])  # retransmission
            if r.random() < 0.3:
                port[f] = 50000 + r.randrange(200)  # Linux re-draws the entropy port on an RTO
        elif x < 0.18:
            state[f] = (state[f] + r.choice([1 << 31, (1 << 31) + 77, 3 << 30])) & 0xFFFFFFFF  # a jump
            data = _vxlan_tcp(f, state[f], 10, port[f])
        elif x < 0.25:
            data = _vxlan_tcp(f, state[f], 0, port[f], flags=0x10)  # pure ACK
        else:
            payload = r.choice([1, 100, 1000])
            data = _vxlan_tcp(f, state[f], payload, port[f], flags=r.choice([0x18, 0x19, 0x10]))
            sent[f].append(state[f])
            state[f] = (state[f] + payload) & 0xFFFFFFFF
        out.append(GenFrame(1_700_000_000_000_000_000 + i * 1000 + r.randrange(3) * 700, data, len(data)))
    return out


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10_000), st.integers(1, 4))
def test_tcp_sequences_same_aggregates(seed: int, split: int) -> None:
    frames = tcp_frames(seed, 600)
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "t.pcap"
        path.write_bytes(write_pcap(frames, nanos=True))
        # small batches and flushes: the per-flow state crosses many of them
        old = engine.SUB_BATCH, engine.FLUSH_GROUPS, engine.FLUSH_SEGMENTS
        engine.SUB_BATCH, engine.FLUSH_GROUPS, engine.FLUSH_SEGMENTS = 37 * split, 3 * split, 50 * split
        try:
            doc, stats = fast_doc([path], DissectConfig())
        finally:
            engine.SUB_BATCH, engine.FLUSH_GROUPS, engine.FLUSH_SEGMENTS = old
        same(scalar_doc([path], DissectConfig()), doc)
        assert stats.fast > 400


def test_more_paths_than_the_cap(tmp_path: Path) -> None:
    frames = [
        GenFrame(1_700_000_000_000_000_000 + i, d, len(d))
        for i, d in enumerate(_vxlan_tcp(1, 1000 + 10 * i, 10, 40000 + i) for i in range(300))
    ]
    path = tmp_path / "p.pcap"
    path.write_bytes(write_pcap(frames, nanos=True))
    doc, _ = fast_doc([path], DissectConfig())
    same(scalar_doc([path], DissectConfig()), doc)
    assert doc["flows"][0]["paths_overflow"] == 300 - 256


def test_several_files_are_one_input(tmp_path: Path) -> None:
    a, b = tmp_path / "a.pcap", tmp_path / "b.pcapng"
    frames = tcp_frames(5, 800)
    a.write_bytes(write_pcap(frames[:400], nanos=True))
    b.write_bytes(write_pcapng(frames[400:]))
    doc, _ = fast_doc([a, b], DissectConfig())
    same(scalar_doc([a, b], DissectConfig()), doc)


def test_parallel_parts_merge_exactly(tmp_path: Path) -> None:
    # in-order TCP only: the one inexact case of merge (a retransmission behind 16 new segments
    # at the start of a part) cannot occur
    r = random.Random(3)
    seq = {f: r.randrange(1 << 32) for f in range(40)}
    frames = []
    for i in range(4000):
        f = r.randrange(40)
        d = _vxlan_tcp(f, seq[f], 1200, 50000 + f, vni=100 + f % 4)
        seq[f] = (seq[f] + 1200) & 0xFFFFFFFF
        frames.append(GenFrame(1_700_000_000_000_000_000 + i * 1000, d, len(d)))
    big = tmp_path / "big.pcap"
    big.write_bytes(write_pcap(frames))
    small = tmp_path / "small.pcap"
    small.write_bytes(write_pcap(mixed_frames(300, seed=4)))
    paths = [big, small]
    assert len([u for u in units(paths, 3) if u.path == str(big)]) >= 2  # the big file is cut
    s = Settings(DissectConfig(), DEFAULT_MAX_FLOWS, DEFAULT_MAX_TUNNELS, False, True)
    par = analyze_parallel(paths, 3, s)
    agg, stats, statuses = par.result, par.stats, par.statuses
    same(scalar_doc(paths, DissectConfig()), agg.to_json())
    assert stats.frames == 4300 and [st.frames for st in statuses] == [4000, 300]


# --- building blocks ---------------------------------------------------------------------------------
@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(-(2**63), 2**63 - 1), min_size=1, max_size=3000), st.booleans())
def test_group_table_numbers_keys_like_a_dict(keys: list[int], small: bool) -> None:
    if small:
        keys = [k & 0xFFFF for k in keys]  # structured, clustered keys probe long
    saved = A.LOOKUP
    try:
        for compiled in (saved, None) if saved is not None else (None,):  # the compiled lookup and numpy's
            A.LOOKUP = compiled
            table = A.GroupTable(capacity=16)
            expect: dict[int, int] = {}
            for lo in range(0, len(keys), 97):
                chunk = np.array(keys[lo : lo + 97], dtype=np.int64)
                got = table.lookup(chunk)
                for k, g in zip(chunk.tolist(), got.tolist(), strict=True):
                    assert g == expect.get(k, -1)
                new = chunk[got < 0]
                if new.shape[0]:
                    uniq, first = np.unique(new, return_index=True)
                    order = uniq[np.argsort(first)]
                    ids = table.insert(order, order)
                    for k, g in zip(order.tolist(), ids.tolist(), strict=True):
                        expect[k] = g
            allk = np.array(list(expect), dtype=np.int64)
            assert table.lookup(allk).tolist() == list(expect.values())
    finally:
        A.LOOKUP = saved


def test_view_rows_round_trip() -> None:
    """Scalar views with at most one hop survive the trip through a row unchanged."""
    encaps: list[str] = list(engine.ENCAPS)

    def code(name: str) -> int:
        if name not in encaps:
            encaps.append(name)
        return encaps.index(name)

    checked = 0
    for path in CORPUS_FILES:
        with CaptureFile(path) as cap:
            for pkt in decode(cap):
                v = view(pkt)
                row = A.view_row(v, code)
                if row is None:
                    continue
                row.update(row=0, ts=0, frame=0, wirelen=0)
                cols = {k: np.array([row[k]], dtype=np.int64) for k in A.ROW}
                back = A.row_view(cols, 0, encaps)
                assert back == v._replace(icmp=None)
                checked += 1
    if CORPUS_FILES:
        assert checked > 1000


def test_caps_keep_every_packet_accounted(tmp_path: Path) -> None:
    """Under cap pressure eviction order may differ from the scalar path's, but nothing is lost."""
    r = random.Random(9)
    frames = []
    for i in range(3000):
        f = r.randrange(400)
        d = _vxlan_tcp(f, 1000 * i, 100, 50000 + f % 7, vni=1 + f % 30)
        frames.append(GenFrame(1_700_000_000_000_000_000 + i * 1000, d, len(d)))
    path = tmp_path / "cap.pcap"
    path.write_bytes(write_pcap(frames))
    doc, _ = fast_doc([path], DissectConfig(), max_flows=60, max_tunnels=12)
    tunnelled = doc["summary"]["tunnelled_packets"]
    assert tunnelled == 3000
    assert len(doc["flows"]) <= 60 and len(doc["tunnels"]) <= 12
    assert sum(f["packets"] for f in doc["flows"]) + doc["evicted_flows"]["packets"] == tunnelled
    assert sum(t["packets"] for t in doc["tunnels"]) + doc["evicted_tunnels"]["packets"] == tunnelled


def test_near_the_cap_known_flows_stay_vectorized(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Rows whose flows the aggregates already hold cannot evict anything: no per-packet replay for them."""
    monkeypatch.setattr(engine, "SUB_BATCH", 256)
    frames = []
    for i in range(4000):
        f = i % 300  # every flow is seen in the first sub-batches, then only seen again
        d = _vxlan_tcp(f, 1000 * i, 100, 50000, vni=1 + f % 5)
        frames.append(GenFrame(1_700_000_000_000_000_000 + i * 1000, d, len(d)))
    path = tmp_path / "near.pcap"
    path.write_bytes(write_pcap(frames))
    # 300 flows under a cap of 310: each sub-batch of 256 rows is "near" the cap, none passes it
    doc, stats = fast_doc([path], DissectConfig(), max_flows=310)
    same(scalar_doc([path], DissectConfig(), max_flows=310), doc)
    assert stats.one_by_one < 600  # only the first sub-batches, while new flows still arrive
    assert doc["evicted_flows"]["packets"] == 0


def test_many_flows_below_the_caps_need_no_exact_count(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """More rows and pending groups than the tunnel cap, but few tunnels and flows: the distinct keys
    say no cap can be passed, so the engine neither flushes early nor names keys one by one."""
    monkeypatch.setattr(engine, "SUB_BATCH", 256)
    frames = []
    for i in range(3000):
        f = i % 1500
        d = _vxlan_tcp(f, 1000 * i, 100, 50000, vni=1 + f % 3)
        frames.append(GenFrame(1_700_000_000_000_000_000 + i * 1000, d, len(d)))
    path = tmp_path / "many.pcap"
    path.write_bytes(write_pcap(frames))
    named = []
    real = A.row_keys
    monkeypatch.setattr(A, "row_keys", lambda *a, **k: named.append(1) or real(*a, **k))
    doc, stats = fast_doc([path], DissectConfig(), max_flows=1600, max_tunnels=200)
    assert not named and stats.one_by_one == 0
    monkeypatch.setattr(A, "row_keys", real)
    same(scalar_doc([path], DissectConfig(), max_flows=1600, max_tunnels=200), doc)
    # and where the distinct flows could pass the cap, the exact count still decides
    doc, stats = fast_doc([path], DissectConfig(), max_flows=1400, max_tunnels=200)
    same(scalar_doc([path], DissectConfig(), max_flows=1400, max_tunnels=200), doc)
    assert doc["evicted_flows"]["packets"] > 0


def test_hash_collisions_fall_back_to_exact_replay(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """If two keys ever shared a hash, their rows would go through the correlator one by one."""
    monkeypatch.setattr(A, "key_hashes", lambda cols, names: np.zeros(cols[names[0]].shape[0], dtype=np.int64))
    if A.AGG is not None:  # the compiled key pass: the same zero hashes
        real = A.AGG

        def zero_keys(columns: tuple[np.ndarray, ...], hashes: np.ndarray, checks: np.ndarray) -> None:
            real.keys(columns, hashes, checks)
            hashes[:] = 0

        names = {k: getattr(real, k) for k in dir(real)}
        monkeypatch.setattr(A, "AGG", SimpleNamespace(**{**names, "keys": zero_keys}))
    path = tmp_path / "c.pcap"
    path.write_bytes(write_pcap(tcp_frames(8, 300) + mixed_frames(200, seed=8), nanos=True))
    doc, stats = fast_doc([path], DissectConfig())
    same(scalar_doc([path], DissectConfig()), doc)
    assert stats.one_by_one > 200


@pytest.mark.parametrize("reassemble", [True, False])
def test_fragments_with_and_without_reassembly(tmp_path: Path, reassemble: bool) -> None:
    path = tmp_path / "f.pcap"
    path.write_bytes(write_pcap(mixed_frames(1200, seed=31)))
    corr = Correlator()
    with CaptureFile(path) as cap:
        corr.begin_source(str(path))
        corr.add_all(decode(cap, DissectConfig(), reassemble))
        s = cap.status
        corr.end_source(SourceInfo(str(path), s.format, s.frames, s.damage, s.damage_offset))
    fast = Correlator()
    FastAnalyzer(fast, DissectConfig(), reassemble=reassemble).add_file(path)
    same(corr.result.to_json(), fast.result.to_json())


def test_evidence_ties_across_files_keep_the_first_file(tmp_path: Path) -> None:
    frames = tcp_frames(2, 200)
    z, a = tmp_path / "z.pcap", tmp_path / "a.pcap"  # the later file's name sorts first
    z.write_bytes(write_pcap(frames, nanos=True))
    a.write_bytes(write_pcap(frames, nanos=True))
    doc, _ = fast_doc([z, a], DissectConfig())
    same(scalar_doc([z, a], DissectConfig()), doc)
    assert all(f["first"]["source"] == str(z) for f in doc["flows"])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(-(1 << 63), (1 << 63) - 1) | st.integers(0, 5), max_size=60))
def test_unique_is_numpys(values: list[int]) -> None:
    x = np.array(values, dtype=np.int64)
    exp = np.unique(x, return_index=True, return_inverse=True)
    got = A.unique(x)
    for e, g in zip(exp, got, strict=True):
        assert e.tolist() == g.tolist()


def test_the_cycle_collector_is_paused_only_while_a_file_is_analysed(tmp_path: Path) -> None:
    import gc

    path = tmp_path / "g.pcap"
    path.write_bytes(write_pcap(mixed_frames(50, seed=4)))
    seen = []
    fa = FastAnalyzer(Correlator(), DissectConfig(), progress=lambda _: seen.append(gc.isenabled()))
    assert gc.isenabled()
    fa.add_file(path)
    assert seen and not any(seen)
    assert gc.isenabled() and gc.get_freeze_count() == 0  # nothing left out of later collections
    gc.disable()
    try:
        fa.add_file(path)
        assert not gc.isenabled()  # the caller's choice is left as it was
    finally:
        gc.enable()


def test_the_compiled_accumulator_is_built() -> None:
    # `pip install .` builds it wherever a C compiler is present; CI must not silently lose it
    # (tests/fast/test_aggregate_compiled.py compares it with numpy where it is built)
    require(COMPILED_AGG is not None, "ipsotrace.fast._aggregate is not built (no C compiler at install?)")
    if IN_CI:
        assert A._compiled_accumulator() is not None
