"""Partial results merge into exactly what one pass gives; the flow cap evicts and counts."""

from __future__ import annotations

import random

import pytest

from ipsotrace.correlate import Aggregates, Correlator, Distinct
from ipsotrace.correlate.distinct import key_hash, mix64
from ipsotrace.dissectors.registry import DissectConfig, dissect_frame
from ipsotrace.records import Packet
from tests.correlate import scenarios


def _all_packets() -> list[Packet]:
    """Every scenario back to back, as one capture would hold them (increasing timestamps)."""
    cfg = DissectConfig()
    out: list[Packet] = []
    t = 0
    for build in scenarios.SCENARIOS.values():
        for p in build():
            raw = bytes(p)
            t += 1
            out.append(dissect_frame(raw, 1, cfg, frame=t, ts_ns=1_700_000_000_000_000_000 + t * 1000))
    return out


def _one_pass(pkts: list[Packet], max_flows: int = 100_000) -> Aggregates:
    c = Correlator(max_flows)
    c.begin_source("all.pcap")
    c.add_all(pkts)
    return c.result


def test_merge_equals_one_pass_at_every_split() -> None:
    pkts = _all_packets()
    whole = _one_pass(pkts)
    assert whole.flows and whole.icmp and whole.anomalies
    assert sum(f.retransmissions for f in whole.flows.values()) > 0
    for k in range(len(pkts) + 1):
        merged = _one_pass(pkts[:k]).merge(_one_pass(pkts[k:]))
        assert merged == whole, f"split at {k}"
        assert merged.to_json() == whole.to_json()


def test_merge_of_three_parts_is_associative() -> None:
    pkts = _all_packets()
    a, b, c = pkts[:7], pkts[7:15], pkts[15:]
    left = _one_pass(a).merge(_one_pass(b)).merge(_one_pass(c))
    right = _one_pass(a).merge(_one_pass(b).merge(_one_pass(c)))
    assert left == right == _one_pass(pkts)


def test_retransmission_across_split_counts_on_its_path() -> None:
    pkts = _all_packets()[5:10]  # the two_paths scenario
    whole = _one_pass(pkts)
    merged = _one_pass(pkts[:2]).merge(_one_pass(pkts[2:]))
    (flow,) = merged.flows.values()
    assert flow.retransmissions == 2
    assert sorted(ps.retransmissions for ps in flow.paths.values()) == [1, 1]
    assert merged == whole


def _tcp_flow_packets(counts: list[int]) -> list[Packet]:
    """Flow i (inner sport 1000+i) sends counts[i] packets, flows in order."""
    cfg = DissectConfig()
    out = []
    n = 0
    for i, c in enumerate(counts):
        for j in range(c):
            n += 1
            inner = scenarios.tcp(100 * j, 10)
            inner["TCP"].sport = 1000 + i
            out.append(dissect_frame(bytes(scenarios.vxlan(100, 49152, inner)), 1, cfg, frame=n, ts_ns=n))
    return out


def test_flow_cap_evicts_least_active_and_counts() -> None:
    pkts = _tcp_flow_packets([3, 1, 1, 1])
    res = _one_pass(pkts, max_flows=2)
    assert sorted(k[6] for k in res.flows) == [1000, 1003]
    assert (res.evicted_flows, res.evicted_packets) == (2, 2)
    assert res.evicted_bytes == 2 * 50  # inner IP 20 + TCP 20 + 10 payload
    (tunnel,) = res.tunnels.values()
    assert tunnel.packets == 6 and tunnel.inner_flows.count() == 4  # tunnels are never evicted
    doc = res.to_json()
    assert doc["evicted_flows"] == {"flows": 2, "packets": 2, "bytes": 100}
    assert doc["max_flows"] == 2 and len(doc["flows"]) == 2


def test_flow_cap_bounds_memory_of_many_flows() -> None:
    res = _one_pass(_tcp_flow_packets([1] * 300), max_flows=50)
    assert len(res.flows) <= 50
    assert res.evicted_flows + len(res.flows) == 300
    assert res.evicted_packets + sum(f.packets for f in res.flows.values()) == 300


def test_distinct_exact_then_estimated() -> None:
    d = Distinct(k=64)
    for v in range(64):
        d.add(mix64(v))
        d.add(mix64(v))
    assert d.exact and d.count() == 64
    big = Distinct(k=1024)
    for v in range(20_000):
        big.add(mix64(v))
    assert not big.exact
    assert abs(big.count() - 20_000) < 20_000 * 0.1


def test_distinct_merge_is_order_independent() -> None:
    values = [key_hash(("vxlan", i)) for i in range(3000)]
    one = Distinct(k=256)
    for v in values:
        one.add(v)
    rng = random.Random(7)
    shuffled = values[:]
    rng.shuffle(shuffled)
    a, b = Distinct(k=256), Distinct(k=256)
    for v in shuffled[:1200]:
        a.add(v)
    for v in shuffled[1200:] + shuffled[:50]:
        b.add(v)
    a.merge(b)
    assert a == one and a.count() == one.count()


def test_distinct_refuses_different_k() -> None:
    with pytest.raises(ValueError):
        Distinct(k=8).merge(Distinct(k=16))
