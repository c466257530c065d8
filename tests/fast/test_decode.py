"""Fast-path columns equal the scalar dissectors' answer, frame by frame.

For every frame the fast path keeps, the correlator's View rebuilt from the
columns must equal ``view(dissect_frame(...))`` and the scalar packet must have
no anomaly; every other frame must be handed back to the scalar path.  Every
test runs with the compiled header walk and with the numpy one; the two give
the same columns.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.compat import raw
from scapy.contrib.geneve import GENEVE
from scapy.layers.inet import GRE, IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Dot1Q, Ether
from scapy.packet import Raw

from ipsotrace.correlate.extract import view
from ipsotrace.dissectors.registry import DissectConfig, dissect_frame
from ipsotrace.fast import decode
from ipsotrace.fast.batch import Batch, BatchReader
from ipsotrace.fast.decode import FastColumns, decode_batch
from ipsotrace.fast.views import row_view
from tests.conftest import IN_CI, require
from tests.corpus import CORPUS, config_for
from tests.fast.conftest import COMPILED_DECODE
from tests.fast.gen import VXLAN, GenFrame, batch_of, frame_strategy, mixed_frames

pytestmark = pytest.mark.usefixtures("decoder")


def check_batch(batch: Batch, cfg: DissectConfig, gre_key_as_id: bool = False) -> FastColumns:
    fc = decode_batch(batch, cfg, gre_key_as_id=gre_key_as_id)
    rows = fc.cols["row"]
    # every frame is decoded exactly once: fast, or handed back
    assert sorted(rows.tolist() + fc.fallback.tolist()) == list(range(len(batch)))
    for i in range(len(fc)):
        r = int(rows[i])
        pkt = dissect_frame(
            batch.frame_bytes(r),
            int(batch.linktype[r]),
            cfg,
            frame=int(batch.frame[r]),
            ts_ns=int(batch.ts_ns[r]),
            wirelen=int(batch.wirelen[r]),
        )
        assert pkt.anomalies == [], (r, fc.shapes[int(fc.cols["shape"][i])])
        assert row_view(fc, i) == view(pkt, gre_key_as_id=gre_key_as_id), (r, fc.shapes[int(fc.cols["shape"][i])])
    return fc


CORPUS_FILES = sorted(p for p in CORPUS.glob("*.pcap*") if not p.name.endswith(".json")) if CORPUS.is_dir() else []


@pytest.mark.parametrize("path", CORPUS_FILES, ids=lambda p: p.name)
def test_corpus_fast_rows_equal_scalar(path: Path) -> None:
    truth = json.loads(Path(str(path) + ".truth.json").read_text())
    cfg = config_for(truth)
    with BatchReader(path) as reader:
        for batch in reader:
            check_batch(batch, cfg)


def test_corpus_has_fast_rows() -> None:
    """The comparison above is not vacuous: real VXLAN, Geneve, GRE and IP-in-IP frames go fast."""
    names = {
        "zeek__tunnels__vxlan-encapsulated-http.pcap",
        "zeek__tunnels__geneve-ipv6.pcap",
        "zeek__tunnels__gre-sample.pcap",
        "zeek__tunnels__4in6.pcap",
    }
    for name in names:
        path = CORPUS / name
        if not path.exists():
            pytest.skip("corpus not present")
        with BatchReader(path) as reader:
            fast = sum(len(decode_batch(b, DissectConfig())) for b in reader)
        assert fast > 0, name


@settings(max_examples=300, deadline=None)
@given(st.lists(frame_strategy(), min_size=1, max_size=40), st.booleans(), st.booleans())
def test_generated_frames_equal_scalar(frames: list[GenFrame], heuristics: bool, key_as_id: bool) -> None:
    check_batch(batch_of(frames), DissectConfig(heuristics=heuristics), key_as_id)


def test_mixed_capture_equal_scalar() -> None:
    frames = mixed_frames(3000, seed=11)
    fc = check_batch(batch_of(frames), DissectConfig())
    assert len(fc) > 1000  # most generated shapes are fast ones


def _e(vlan: bool = False) -> Ether:
    eth = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
    return eth / Dot1Q(vlan=10) if vlan else eth


def _in() -> IP:
    return (
        IP(src="203.0.113.1", dst="203.0.113.2", flags="DF") / TCP(sport=40000, dport=80, flags="PA") / Raw(b"x" * 50)
    )


CANONICAL = {
    "vxlan": _e() / IP(src="192.0.2.1", dst="192.0.2.2") / UDP(sport=50000, dport=4789) / VXLAN(vni=10) / _e() / _in(),
    "vxlan-vlan": _e(True)
    / IP(src="192.0.2.1", dst="192.0.2.2")
    / UDP(sport=50000, dport=4789)
    / VXLAN(vni=10)
    / _e(True)
    / _in(),
    "vxlan-v6": _e()
    / IPv6(src="2001:db8::1", dst="2001:db8::2")
    / UDP(sport=50000, dport=4789)
    / VXLAN(vni=10)
    / _e()
    / _in(),
    "vxlan-8472": _e() / IP() / UDP(sport=50000, dport=8472) / VXLAN(vni=10) / _e() / _in(),
    "geneve": _e() / IP() / UDP(sport=50000, dport=6081) / GENEVE(vni=7, proto=0x6558) / _e() / _in(),
    "geneve-ip": _e() / IP() / UDP(sport=50000, dport=6081) / GENEVE(vni=7, proto=0x0800) / _in(),
    "gre-key": _e() / IP() / GRE(key_present=1, key=99, proto=0x0800) / _in(),
    "gre": _e() / IP() / GRE(proto=0x0800) / _in(),
    "gretap": _e() / IP() / GRE(key_present=1, key=5, proto=0x6558) / _e() / _in(),
    "ipip": _e() / IP(src="192.0.2.1", dst="192.0.2.2") / _in(),
    "6in4": _e() / IP() / IPv6(src="2001:db8::5", dst="2001:db8::6") / UDP(sport=1, dport=2) / Raw(b"\xff" * 8),
    "tcp-timestamps": _e()
    / IP()
    / UDP(sport=50000, dport=4789)
    / VXLAN(vni=1)
    / _e()
    / IP(src="203.0.113.1", dst="203.0.113.2")
    / TCP(options=[("NOP", None), ("NOP", None), ("Timestamp", (1, 2))]),
    "plain-tcp": _e() / IP() / TCP(),
    "plain-udp": _e() / IP() / UDP(sport=1000, dport=2000) / Raw(b"\xff\xff\xff\xff"),
}


@pytest.mark.parametrize("name", sorted(CANONICAL))
def test_canonical_shapes_stay_fast(name: str) -> None:
    data = raw(CANONICAL[name])
    fc = check_batch(batch_of([GenFrame(0, data, len(data))]), DissectConfig())
    assert len(fc) == 1 and fc.fallback.size == 0, name


def test_heuristic_claim_sends_frame_to_scalar() -> None:
    """VXLAN on a port nobody configured: the heuristic claims it, so the scalar path decodes it."""
    pkt = _e() / IP() / UDP(sport=50000, dport=9999) / VXLAN(vni=3) / _e() / _in()
    data = raw(pkt)
    fc = check_batch(batch_of([GenFrame(0, data, len(data))]), DissectConfig())
    assert len(fc) == 0 and fc.fallback.tolist() == [0]
    fc = check_batch(batch_of([GenFrame(0, data, len(data))]), DissectConfig(heuristics=False))
    assert len(fc) == 1


def test_rows_are_independent_of_batch_order() -> None:
    frames = mixed_frames(400, seed=2)
    a = decode_batch(batch_of(frames), DissectConfig())
    b = decode_batch(batch_of(frames[::-1]), DissectConfig())
    assert len(a) == len(b)
    order_a = np.argsort(a.cols["row"])
    order_b = np.argsort(-b.cols["row"])
    for c in ("tunnel_id", "i_src_lo", "tcp_seq", "o_sport"):
        assert a.cols[c][order_a].tolist() == b.cols[c][order_b].tolist()


@settings(max_examples=400, deadline=None)
@given(
    st.binary(max_size=40).map(lambda b: b + b"\x00" * (-len(b) % 4)),
    st.sampled_from([b"", b"\x02\x04\x05\xb4", b"\x01\x01\x08\x0a" + bytes(8), b"\x02\x04\x05\xb4\x04\x02"]),
    st.booleans(),
)
def test_any_tcp_options_equal_scalar(opts: bytes, prefix: bytes, v6: bool) -> None:
    """Random option bytes: the fast path takes exactly the frames the scalar path decodes cleanly."""
    options = (prefix + opts)[:40]
    options += b"\x00" * (-len(options) % 4)
    tcp = TCP(sport=1234, dport=80, flags="S", dataofs=5 + len(options) // 4) / Raw(options + b"data")
    outer = IPv6(src="2001:db8::1", dst="2001:db8::2") if v6 else IP(src="192.0.2.1", dst="192.0.2.2")
    pkt = (
        _e()
        / outer
        / UDP(sport=50000, dport=4789)
        / VXLAN(vni=1)
        / _e()
        / IP(src="203.0.113.1", dst="203.0.113.2")
        / tcp
    )
    data = raw(pkt)
    check_batch(batch_of([GenFrame(0, data, len(data))]), DissectConfig())


# --- the two header walks ---------------------------------------------------------------------------
def test_the_compiled_decoder_is_built() -> None:
    # `pip install .` builds it wherever a C compiler is present; CI must not silently lose it
    require(COMPILED_DECODE is not None, "ipsotrace.fast._decode is not built (no C compiler at install?)")
    if IN_CI:
        assert decode._compiled_decoder() is not None


def both_walks(batch: Batch, cfg: DissectConfig, **kw: bool) -> tuple[FastColumns, FastColumns]:
    saved = decode.DECODE
    try:
        decode.DECODE = COMPILED_DECODE
        a = decode_batch(batch, cfg, **kw)
        decode.DECODE = None
        b = decode_batch(batch, cfg, **kw)
    finally:
        decode.DECODE = saved
    return a, b


def assert_same_columns(a: FastColumns, b: FastColumns) -> None:
    assert a.fallback.tolist() == b.fallback.tolist()
    assert a.shape_counts == b.shape_counts
    assert (a.plain is None) == (b.plain is None)
    if a.plain is not None and b.plain is not None:
        assert a.plain.tolist() == b.plain.tolist()
    assert set(a.cols) == set(b.cols)
    for name in a.cols:
        if name == "shape":  # numbered in the order each walk met them: compared by name
            assert [a.shapes[s] for s in a.cols[name].tolist()] == [b.shapes[s] for s in b.cols[name].tolist()]
        else:
            assert a.cols[name].tolist() == b.cols[name].tolist(), name


needs_compiled_decode = pytest.mark.skipif(COMPILED_DECODE is None, reason="the compiled decoder is not built")


@needs_compiled_decode
@settings(max_examples=200, deadline=None)
@given(st.lists(frame_strategy(), min_size=1, max_size=40), st.booleans(), st.booleans(), st.booleans())
def test_walks_give_the_same_columns(frames: list[GenFrame], heuristics: bool, key_as_id: bool, tun: bool) -> None:
    a, b = both_walks(batch_of(frames), DissectConfig(heuristics=heuristics), gre_key_as_id=key_as_id,
                      tunnelled_only=tun)  # fmt: skip
    assert_same_columns(a, b)


@needs_compiled_decode
@pytest.mark.parametrize("tun", [False, True])
def test_walks_give_the_same_columns_on_captures(tun: bool) -> None:
    paths = [*sorted(Path(__file__).parents[2].joinpath("captures").glob("*.pcap*")), *CORPUS_FILES]
    assert paths
    for path in paths:
        with BatchReader(path) as reader:
            for batch in reader:
                assert_same_columns(*both_walks(batch, DissectConfig(), tunnelled_only=tun))
    a, b = both_walks(batch_of(mixed_frames(3000, seed=5)), DissectConfig(), tunnelled_only=tun)
    assert len(a) > 1000
    assert_same_columns(a, b)


_TEMPLATES = [raw(CANONICAL[name]) for name in sorted(CANONICAL)]


@needs_compiled_decode
@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, len(CANONICAL) - 1),
            st.lists(st.tuples(st.integers(0, 199), st.integers(0, 255)), max_size=6),
            st.integers(0, 200),
            st.sampled_from([1, 101, 147]),
        ),
        min_size=1,
        max_size=30,
    ),
    st.booleans(),
)
def test_walks_agree_on_damaged_frames(mutations: list[tuple[int, list[tuple[int, int]], int, int]], tun: bool) -> None:
    """Canonical frames with bytes overwritten, cut short, under other link types: both walks agree
    (and every frame either walk keeps equals the scalar view)."""
    frames = []
    for t, edits, cut, linktype in mutations:
        data = bytearray(_TEMPLATES[t])
        for pos, value in edits:
            if pos < len(data):
                data[pos] = value
        data = data[: max(0, len(data) - cut)] if cut < len(data) else data
        frames.append(GenFrame(0, bytes(data), len(_TEMPLATES[t]), linktype))
    batch = batch_of(frames)
    a, b = both_walks(batch, DissectConfig(), tunnelled_only=tun)
    assert_same_columns(a, b)
    check_batch(batch, DissectConfig())
