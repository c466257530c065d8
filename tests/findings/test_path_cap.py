"""The findings collector keeps at most MAX_PATHS outer paths per flow, like the correlator: a flow whose
every packet takes a new entropy port cannot grow memory with packets."""

from __future__ import annotations

import random

import pytest

from ipsotrace.correlate.aggregates import MAX_PATHS
from ipsotrace.dissectors.registry import DissectConfig, dissect_frame
from ipsotrace.findings import Collector, Facts
from ipsotrace.records import Packet
from tests.fast.test_engine import _vxlan_tcp


def _packets(n: int, ports: int | None = None, retx: float = 0.2, seed: int = 1) -> list[Packet]:
    """One TCP flow, packet i on entropy port 1024 + i (mod ``ports``), a share ``retx`` retransmissions."""
    r = random.Random(seed)
    cfg = DissectConfig()
    out, seq, sent = [], 1000, []
    for i in range(n):
        if sent and r.random() < retx:
            s = r.choice(sent)
        else:
            s, seq = seq, seq + 100
            sent.append(s)
        port = 1024 + (i if ports is None else i % ports)
        out.append(dissect_frame(_vxlan_tcp(0, s, 100, port), 1, cfg, frame=i + 1, ts_ns=(i + 1) * 1000))
    return out


def _facts(pkts: list[Packet]) -> Facts:
    c = Collector()
    c.begin_source("paths.pcap")
    for p in pkts:
        c.add(p)
    return c.result


def _path_facts(facts: Facts) -> int:
    return sum(len(f.paths) for f in facts.flows.values())


def test_paths_capped_and_counted() -> None:
    facts = _facts(_packets(1000))
    (flow,) = facts.flows.values()
    assert _path_facts(facts) == MAX_PATHS
    assert flow.paths_overflow == 1000 - MAX_PATHS
    assert sum(p.packets for p in flow.paths.values()) + flow.paths_overflow == flow.packets == 1000
    # the first MAX_PATHS paths are kept, as the correlator keeps them
    assert [pk[3] for pk in flow.paths] == list(range(1024, 1024 + MAX_PATHS))
    fin = facts.finalized_copy()
    assert _path_facts(fin) == MAX_PATHS
    assert sum(sum(p.retx_bins) for p in fin.flows[next(iter(fin.flows))].paths.values()) > 0


@pytest.mark.parametrize("split", [0, 1, 100, 255, 256, 257, 600, 999, 1000])
def test_merge_keeps_the_cap_like_one_pass(split: int) -> None:
    # in-order data: a retransmission per new path would start more TCP runs than a merge can replay exactly
    pkts = _packets(1000, retx=0)
    whole = _facts(pkts).finalized_copy()
    merged = _facts(pkts[:split]).merge(_facts(pkts[split:])).finalized_copy()
    assert merged == whole
    for fk, f in whole.flows.items():
        assert list(f.paths) == list(merged.flows[fk].paths)
    assert _path_facts(merged) == MAX_PATHS


def test_merge_of_parts_that_both_overflow_stays_bounded() -> None:
    # parts seeing the same 400 paths: the merge keeps MAX_PATHS of them, the rest is counted
    pkts = _packets(2000, ports=400)
    merged = _facts(pkts[:1000]).merge(_facts(pkts[1000:]))
    (flow,) = merged.flows.values()
    assert len(flow.paths) == MAX_PATHS
    assert sum(p.packets for p in flow.paths.values()) + flow.paths_overflow == flow.packets == 2000
    assert _path_facts(merged.finalized_copy()) == MAX_PATHS
