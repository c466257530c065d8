"""Memory is O(tunnels + flows): ten times the same traffic needs no more than once."""

from __future__ import annotations

import tracemalloc

from ipsotrace.correlate import Correlator
from ipsotrace.dissectors.registry import DissectConfig, dissect_frame
from tests.correlate import scenarios


def _frames() -> list[bytes]:
    """20 inner TCP flows in 4 VNIs over 8 entropy ports, 10 segments each, plus an ICMP error."""
    out = []
    for seg in range(10):
        for i in range(20):
            inner = scenarios.tcp(1000 + 100 * seg, 100)
            inner["TCP"].sport = 2000 + i
            out.append(bytes(scenarios.vxlan(100 + i % 4, 49152 + i % 8, inner)))
    out += [bytes(p) for p in scenarios.frag_needed()]
    return out


def _peak(frames: list[bytes], repeats: int) -> int:
    cfg = DissectConfig()
    tracemalloc.start()
    try:
        corr = Correlator()
        n = 0
        for _ in range(repeats):
            for raw in frames:
                n += 1
                corr.add(dissect_frame(raw, 1, cfg, frame=n, ts_ns=n * 1000))
        assert corr.result.packets == repeats * len(frames)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_repeated_traffic_does_not_grow_memory() -> None:
    frames = _frames()
    _peak(frames, 1)  # warm-up: first-use caches (struct formats, interned strings) are not ours
    once = _peak(frames, 1)
    ten = _peak(frames, 10)
    # generous: repeated traffic only bumps counters; retransmissions of repeats add no state
    assert ten <= once * 1.3 + 64 * 1024, (once, ten)
