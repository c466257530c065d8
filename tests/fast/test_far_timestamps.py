"""Times past 2**62 ns (from 2116 on: a pcapng with a far or damaged clock) in the fast path.

Regression (found in review): the accumulator marked "no packet yet" with 2**62 in its
earliest-packet columns and -2**62 in the latest time (numpy passes and ipsotrace/fast/_aggregate.c
alike), so a group whose packets all came later kept the mark as its first packet (time 2**62,
frame 2**62) where the scalar correlator names the real one.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ipsotrace.dissectors.registry import DissectConfig
from tests.fast.gen import GenFrame, mixed_frames, write_pcapng
from tests.fast.test_engine import fast_doc, same, scalar_doc

pytestmark = pytest.mark.usefixtures("helpers")


def test_first_packet_past_2_62_ns(tmp_path: Path) -> None:
    start = (1 << 62) + 12_345_000
    frames = [GenFrame(start + i * 1000, f.data, f.wirelen) for i, f in enumerate(mixed_frames(200, seed=3))]
    path = tmp_path / "far.pcapng"
    path.write_bytes(write_pcapng(frames))
    doc, _ = fast_doc([path], DissectConfig())
    same(scalar_doc([path], DissectConfig()), doc)


def test_findings_facts_past_2_62_ns(tmp_path: Path) -> None:
    """The findings feed had the same kind of mark: a flow's first CE-marked packet (ce_first_ns) came
    out as 2**62 where the scalar collector has the packet's time (found in review)."""
    from tests.fast.test_facts import check, dup_tcp_frames

    start = (1 << 62) + 12_345_000
    frames = mixed_frames(300, seed=3) + dup_tcp_frames(4, 200)
    frames = [GenFrame(start + i * 1000, f.data, f.wirelen) for i, f in enumerate(frames)]
    path = tmp_path / "far.pcapng"
    path.write_bytes(write_pcapng(frames))
    check([path])
