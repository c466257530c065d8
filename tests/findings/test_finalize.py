"""``Facts.finalized_copy`` copies every mutable part: the copy equals the deep-copy way, the original
stays as it was (a collector may go on after findings are evaluated), and neither shares state."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from ipsotrace.decode import decode
from ipsotrace.findings import Collector, Facts
from ipsotrace.sources import CaptureFile

CAPTURES = Path(__file__).resolve().parents[2] / "captures"
FILES = sorted((CAPTURES / "findings").glob("*.pcap")) + sorted(CAPTURES.glob("*.pcap*"))


def _facts(*paths: Path) -> Facts:
    c = Collector()
    for p in paths:
        c.begin_source(p.name)
        with CaptureFile(p) as cap:
            for pkt in decode(cap):
                c.add(pkt)
    return c.result


def _reference(facts: Facts) -> Facts:
    out = copy.deepcopy(facts)
    for f in out.flows.values():
        f.finalize()
    out.finalized = True
    return out


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_finalized_copy_equals_the_deep_copy_and_leaves_the_original(path: Path) -> None:
    facts = _facts(path)
    before = copy.deepcopy(facts)
    got = facts.finalized_copy()
    assert got == _reference(before)
    assert facts == before  # untouched
    assert got.finalized and not facts.finalized


def test_the_copy_shares_nothing_mutable() -> None:
    facts = _facts(*FILES)
    got = facts.finalized_copy()
    seen = {id(o) for o in _mutables(facts)}
    shared = [o for o in _mutables(got) if id(o) in seen]
    assert not shared


def _mutables(facts: Facts) -> list[object]:
    out: list[object] = []
    for t in facts.tunnels.values():
        out += [t, t.outer_top, t.outer_top.items, t.ttl_ev.items, t.bad_flags, t.ttl_expired_reporters.items]
    for f in facts.flows.values():
        out += [f, f.paths, f.dup, f.dup.ring, f.dup.head, f.df_top.items, f.syn_mss.items, f.ce_ev.items]
        for pf in f.paths.values():
            out += [pf, pf.new_bins, pf.retx_bins, pf.retx_ev.items]
        if f.tcp is not None:
            out += [f.tcp, f.tcp.runs, f.tcp.head, f.tcp.pending]
    for fr in facts.frags.values():
        out += [fr, fr.ev.items]
    for c in facts.crypto.values():
        out += [c, c.ev.items]
    return out
