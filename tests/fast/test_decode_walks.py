"""The compiled header walk (ipsotrace/fast/_decode.c) against the numpy walk, on odd inputs.

test_decode.py compares the two walks on generated traffic and damaged canonical frames.  Here:
shapes at the walk's limits (deep VLAN stacks, many shapes in one batch, TCP options near the
wide window), odd frames under every configuration (heuristics, depth limits, GRE keys as IDs,
tunnelled rows only, link types), every read of the compiled walk inside the frame's captured
bytes (a guard page after the frame), and buffers released on every error path.
"""

from __future__ import annotations

import itertools
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.compat import raw
from scapy.contrib.geneve import GENEVE
from scapy.layers.inet import GRE, IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Dot1Q, Ether
from scapy.packet import Packet, Raw

from ipsotrace.dissectors.registry import DissectConfig
from ipsotrace.fast import decode
from ipsotrace.fast import tables as T
from ipsotrace.fast.decode import WIDE
from tests.fast.conftest import COMPILED_DECODE
from tests.fast.gen import VXLAN, GenFrame, batch_of
from tests.fast.test_decode import assert_same_columns, both_walks, check_batch

pytestmark = pytest.mark.skipif(COMPILED_DECODE is None, reason="the compiled decoder is not built")

ROOT = Path(__file__).parents[2]


def _eth(vlans: int = 0) -> Packet:
    p: Packet = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
    for k in range(vlans):
        p = p / Dot1Q(vlan=10 + k)
    return p


def _ip(v6: bool, host: int) -> Packet:
    return IPv6(src=f"2001:db8::{host}", dst="2001:db8::99") if v6 else IP(src=f"192.0.2.{host}", dst="192.0.2.99")


def _frames(pkts: list[Packet], linktype: int = 1) -> list[GenFrame]:
    out = []
    for p in pkts:
        data = raw(p)
        out.append(GenFrame(0, data, len(data), linktype))
    return out


# --- limits of the compiled walk -------------------------------------------------------------------
@pytest.mark.parametrize("outer, inner", [(0, 10), (5, 5), (9, 1), (12, 0)])
def test_walks_agree_on_deep_vlan_stacks(outer: int, inner: int) -> None:
    """Regression (found in review): _decode.c kept at most 16 layers per frame (MAX_LAYERS) and sent
    deeper frames (17 layers and more here) to the scalar path; the numpy walk keeps any stack that
    fits the wide window."""
    tcp = TCP(sport=1234, dport=80, flags="A") / Raw(b"x" * 10)
    pkts = [
        _eth(outer) / _ip(False, 1) / UDP(sport=50000, dport=4789) / VXLAN(vni=5) / _eth(inner) / _ip(False, 2) / tcp,
        _eth(outer + inner + 4) / _ip(False, 3) / tcp,
        _eth(outer + inner + 4) / _ip(True, 3) / UDP(sport=1000, dport=2000) / Raw(b"\xff" * 8),
    ]
    batch = batch_of(_frames(pkts))
    a, b = both_walks(batch, DissectConfig())
    assert len(b) == len(pkts)  # the numpy walk keeps them all: so must the compiled one
    assert_same_columns(a, b)
    check_batch(batch, DissectConfig())


def test_walks_agree_past_256_shapes() -> None:
    """Regression (found in review): _decode.c interned at most 256 shapes per call (MAX_SHAPES) and
    sent every frame of a further shape to the scalar path; the numpy walk has no such limit."""
    pkts = []
    for ov, iv, o6, i6, tcp, geneve in itertools.product(range(5), range(5), (0, 1), (0, 1), (0, 1), (0, 1)):
        l4 = TCP(sport=1234, dport=80, flags="A") if tcp else UDP(sport=1000, dport=2000)
        tun = (
            UDP(sport=50000, dport=6081) / GENEVE(vni=3, proto=0x6558)
            if geneve
            else UDP(sport=50000, dport=4789) / VXLAN(vni=3)
        )
        pkts.append(_eth(ov) / _ip(bool(o6), 1) / tun / _eth(iv) / _ip(bool(i6), 2) / l4 / Raw(b"\xff" * 8))
    batch = batch_of(_frames(pkts))
    a, b = both_walks(batch, DissectConfig())
    assert len(b.shape_counts) == len(pkts) == 400
    assert_same_columns(a, b)


def test_tcp_options_near_the_wide_window() -> None:
    """The one documented difference: where TCP options reach past the wide window for some frame of a
    numpy group, the numpy walk hands every optioned segment of the group back; the compiled walk only
    those whose own options reach past it.  Never the other way round, and what it keeps is exact."""
    outer = _eth(2) / _ip(True, 1) / UDP(sport=50000, dport=4789) / VXLAN(vni=1) / _eth(1) / _ip(True, 2)
    o = len(raw(outer))
    assert o + T.TCP_LEN <= WIDE < o + 60
    opts = [
        [],
        [("MSS", 1460)],
        [("NOP", None), ("NOP", None), ("Timestamp", (1, 2))],
        [("MSS", 1400), ("NOP", None), ("WScale", 7), ("SAckOK", b""), ("Timestamp", (3, 4))],
        [("NOP", None)] * 40,  # past the wide window: scalar only
        [("MSS", 1200), ("NOP", None), ("NOP", None), ("EOL", None)],
    ]
    pkts = [outer / TCP(sport=1000 + k, dport=80, flags="S", options=op) / Raw(b"d") for k, op in enumerate(opts)]
    batch = batch_of(_frames(pkts))
    a, b = both_walks(batch, DissectConfig())
    assert set(a.fallback.tolist()) <= set(b.fallback.tolist())
    extra = set(b.fallback.tolist()) - set(a.fallback.tolist())
    frames = [raw(p) for p in pkts]
    for r in extra:
        hlen = (frames[r][o + 12] >> 4) * 4
        assert hlen > T.TCP_LEN and o + 60 > WIDE >= o + hlen
    assert 4 in a.fallback.tolist()  # 60 bytes of TCP header from offset o: past the window
    assert len(a) == len(pkts) - 1
    # what the compiled walk keeps is what the scalar dissectors see
    saved = decode.DECODE
    try:
        decode.DECODE = COMPILED_DECODE
        check_batch(batch, DissectConfig())
    finally:
        decode.DECODE = saved


# --- odd frames, every configuration ---------------------------------------------------------------
_TCP = TCP(sport=40000, dport=80, flags="PA", seq=123, ack=456) / Raw(b"x" * 20)
_ODD: list[tuple[Packet, int]] = [
    (_eth() / _ip(False, 1) / UDP(sport=50000, dport=4789) / VXLAN(vni=10) / _eth() / _ip(False, 2) / _TCP, 1),
    (_eth(1) / _ip(True, 1) / UDP(sport=50000, dport=6081) / GENEVE(vni=7, proto=0x0800) / _ip(False, 2) / _TCP, 1),
    (_eth() / _ip(False, 1) / GRE(key_present=1, key=0x12345678, proto=0x6558) / _eth() / _ip(False, 2) / _TCP, 1),
    (_eth() / _ip(False, 1) / GRE(key_present=1, key=99, proto=0x0800) / _ip(True, 2) / _TCP, 1),
    (_eth() / _ip(False, 1) / GRE(proto=0x86DD) / _ip(True, 2) / UDP(sport=7, dport=9), 1),
    (_eth() / _ip(False, 1) / GRE(chksum_present=1, proto=0x0800) / _ip(False, 2) / _TCP, 1),
    (_eth() / _ip(False, 1) / UDP(sport=50000, dport=4754) / GRE(proto=0x0800) / _ip(False, 2) / _TCP, 1),
    (_eth() / _ip(False, 1) / _ip(False, 2) / _TCP, 1),  # IP in IP
    (_eth() / _ip(True, 1) / _ip(True, 2) / _TCP, 1),  # 6in6
    (_eth() / _ip(True, 1) / _ip(False, 2) / _ip(False, 3) / _TCP, 1),  # nested: 4in6 then ipip
    (_eth() / IPv6(src="2001:db8::1", dst="2001:db8::2", nh=59) / Raw(b"\x00" * 8), 1),  # no next header
    (_eth() / IP(src="192.0.2.1", dst="192.0.2.2", proto=41) / IPv6(nh=59, plen=0), 1),
    (
        _eth()
        / _ip(False, 1)
        / UDP(sport=50000, dport=4789)
        / VXLAN(vni=1)
        / _eth()
        / _ip(False, 2)
        / UDP(sport=50001, dport=4789)
        / VXLAN(vni=2)
        / _eth()
        / _ip(False, 3)
        / _TCP,
        1,
    ),  # VXLAN in VXLAN
    (_eth() / _ip(False, 1) / UDP(sport=50000, dport=4789) / VXLAN(vni=1) / _eth() / _ip(False, 2) / _ip(False, 3), 1),
    (_eth() / _ip(False, 1) / UDP(sport=50000, dport=9999) / VXLAN(vni=3) / _eth() / _ip(False, 2) / _TCP, 1),
    (_eth() / _ip(False, 1) / UDP(sport=1000, dport=2000) / Raw(b"\x08\x00\x00\x00\x00\x00\x01\x00" + b"\x00" * 20), 1),
    (_eth() / _ip(False, 1) / TCP(dataofs=15, options=[("MSS", 1460), ("NOP", None)] + [("NOP", None)] * 36), 1),
    (_eth() / _ip(False, 1) / TCP(dataofs=15) / Raw(b"\x00" * 8), 1),  # data offset past the segment
    (_ip(False, 1) / UDP(sport=50000, dport=4789) / VXLAN(vni=10) / _eth() / _ip(True, 2) / _TCP, 101),
    (_ip(True, 1) / TCP(sport=5, dport=6, options=[("MSS", 9000)]), 101),
    (_ip(False, 1) / _ip(False, 2) / _TCP, 228),
    (_ip(True, 1) / UDP(sport=1, dport=2) / Raw(b"y"), 229),
    (_eth() / _ip(False, 1) / _TCP, 113),
]
_ODD_FRAMES = [(raw(p), lt) for p, lt in _ODD]


@st.composite
def _odd_frame(draw: st.DrawFn) -> GenFrame:
    data, linktype = draw(st.sampled_from(_ODD_FRAMES))
    buf = bytearray(data)
    for pos, value in draw(st.lists(st.tuples(st.integers(0, 199), st.integers(0, 255)), max_size=4)):
        if pos < len(buf):
            buf[pos] = value
    keep = draw(st.one_of(st.just(len(buf)), st.integers(0, len(buf))))
    linktype = draw(st.one_of(st.just(linktype), st.sampled_from([1, 101, 147, 228, 229])))
    # a snaplen cut (wirelen past caplen), or a frame that simply is that short
    wire = len(buf) if draw(st.booleans()) else keep
    return GenFrame(0, bytes(buf[:keep]), max(wire, keep), linktype)


@settings(max_examples=400, deadline=None)
@given(
    st.lists(_odd_frame(), min_size=1, max_size=25),
    st.booleans(),
    st.sampled_from([0, 1, 2, 8]),
    st.booleans(),
    st.booleans(),
)
def test_walks_agree_on_odd_frames(frames: list[GenFrame], heuristics: bool, depth: int, key: bool, tun: bool) -> None:
    """Both walks give the same split and columns whatever the configuration, and what they keep is
    what the scalar dissectors see."""
    cfg = DissectConfig(heuristics=heuristics, max_depth=depth)
    batch = batch_of(frames)
    a, b = both_walks(batch, cfg, gre_key_as_id=key, tunnelled_only=tun)
    assert_same_columns(a, b)
    saved = decode.DECODE
    try:
        decode.DECODE = COMPILED_DECODE
        check_batch(batch, cfg, key)
    finally:
        decode.DECODE = saved


# --- every read inside the frame ------------------------------------------------------------------
_GUARDED = textwrap.dedent(
    """
    import ctypes, mmap, sys
    import numpy as np
    from ipsotrace.dissectors.registry import DissectConfig
    from ipsotrace.fast import decode
    from ipsotrace.fast.batch import Batch
    from tests.fast.test_decode_walks import _ODD_FRAMES

    assert decode.DECODE is not None
    page = mmap.PAGESIZE
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mprotect.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)
    region = mmap.mmap(-1, 3 * page)  # frame page, guard page, a page the buffer claims past the guard
    base = ctypes.addressof(ctypes.c_char.from_buffer(region))
    assert libc.mprotect(base + page, page, 0) == 0  # PROT_NONE: a read there is a segfault
    data = np.frombuffer(region, dtype=np.uint8)
    cfg = DissectConfig(heuristics=False)  # the heuristics' screen reads windows (padded buffers only)
    kept = 0
    for data_bytes, linktype in _ODD_FRAMES:
        for keep in range(len(data_bytes) + 1):
            frame = data_bytes[:keep]
            off = page - keep  # the frame's last byte just before the guard page
            data[off:page] = np.frombuffer(frame, dtype=np.uint8)
            for wire in {keep, len(data_bytes)}:
                one = lambda v: np.array([v], dtype=np.int64)
                batch = Batch(data, one(off), one(keep), one(wire), one(0), one(linktype), one(0), 1)
                for depth, key, tun in ((8, False, False), (1, True, True), (0, False, False)):
                    cfg.max_depth = depth
                    kept += len(decode.decode_batch(batch, cfg, gre_key_as_id=key, tunnelled_only=tun))
    print("kept", kept)
    """
)


def test_compiled_walk_reads_only_the_captured_bytes() -> None:
    """Each odd frame, cut at every length, ends just before an unreadable page that the buffer still
    spans: a compiled read past the frame's captured bytes (not only past the buffer) is a segfault."""
    proc = subprocess.run(
        [sys.executable, "-c", _GUARDED], cwd=ROOT, capture_output=True, text=True, timeout=600, check=False
    )
    assert proc.returncode == 0, (proc.returncode, proc.stderr[-2000:])
    assert int(proc.stdout.split()[-1]) > 0


# --- error paths --------------------------------------------------------------------------------------
def _args(n: int = 3) -> list[object]:
    frames = _frames([p for p, lt in _ODD[:n] if lt == 1])
    batch = batch_of(frames)
    t = T.tables_for(DissectConfig())
    tables = (t.ethertype, t.gre, t.ipproto, t.udp_port, t.udp_bound, decode._V4_IP_IN_IP, decode._V6_IP_IN_IP,
              decode._V6_EXT, decode._GRE_SUBHEADER)  # fmt: skip
    k = len(frames)
    return [
        batch.data,
        batch.offset,
        batch.caplen,
        batch.wirelen,
        decode._first_codes(batch.linktype, t),
        tables,
        decode._geometry(tuple(COMPILED_DECODE.GEOMETRY)),
        (1, 8, 0, 0),
        tuple(np.empty(k, dtype=np.int64) for _ in decode.COLUMNS),
        np.empty(k, dtype=np.int8),
        np.empty(k, dtype=np.int64),
        np.empty((3, k), dtype=np.int64),
    ]


def _arrays(args: list[object]) -> list[np.ndarray]:
    out: list[np.ndarray] = []
    for a in args:
        if isinstance(a, np.ndarray):
            out.append(a)
        elif isinstance(a, tuple):
            out += [x for x in a if isinstance(x, np.ndarray)]
    return out


_SPOILS: dict[str, tuple[int, Callable[[Any], object]]] = {
    "offsets shorter than caplen": (1, lambda a: a[:-1]),
    "first codes of the wrong width": (4, lambda a: a.astype(np.int64)),
    "a table of the wrong size": (5, lambda a: (*a[:8], np.zeros(10, dtype=bool))),
    "a table missing": (5, lambda a: a[:8]),
    "geometry short": (6, lambda a: a[:-1]),
    "options short": (7, lambda a: a[:3]),
    "a column missing": (8, lambda a: a[:-1]),
    "a column too short": (8, lambda a: (*a[:-1], np.empty(1, dtype=np.int64))),
    "a column not contiguous": (8, lambda a: (*a[:-1], np.empty(6, dtype=np.int64)[::2])),
    "status too short": (9, lambda a: np.empty(1, dtype=np.int8)),
    "status read-only": (9, lambda a: np.frombuffer(bytes(a.shape[0]), dtype=np.int8)),
    "sid not contiguous": (10, lambda a: np.empty(2 * a.shape[0], dtype=np.int64)[::2]),
    "candidates too short": (11, lambda a: np.empty((3, 1), dtype=np.int64)),
}


@pytest.mark.parametrize("spoil", sorted(_SPOILS))
def test_decode_errors_release_every_buffer(spoil: str) -> None:
    args = _args()
    k, change = _SPOILS[spoil]
    args[k] = change(args[k])
    arrays = _arrays(args)
    before = [sys.getrefcount(a) for a in arrays]
    with pytest.raises((ValueError, TypeError, BufferError)):
        COMPILED_DECODE.decode(*args)
    # a buffer still held keeps a reference to its array
    assert [sys.getrefcount(a) for a in arrays] == before


def test_decode_releases_every_buffer() -> None:
    args = _args()
    arrays = _arrays(args)
    before = [sys.getrefcount(a) for a in arrays]
    COMPILED_DECODE.decode(*args)
    assert [sys.getrefcount(a) for a in arrays] == before
