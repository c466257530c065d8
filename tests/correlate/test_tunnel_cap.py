"""The tunnel table is capped like the flow table: random VNIs cannot grow memory without bound."""

from __future__ import annotations

import random
import tracemalloc

import pytest
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether
from scapy.layers.vxlan import VXLAN

from ipsotrace.correlate import Aggregates, Correlator, SourceInfo
from ipsotrace.dissectors.registry import DissectConfig, dissect_frame
from ipsotrace.records import Packet
from tests.correlate.invariants import check_invariants

_TEMPLATE = bytes(
    Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
    / IP(src="192.0.2.1", dst="192.0.2.2")
    / UDP(sport=49152, dport=4789, chksum=0)
    / VXLAN(flags=0x08, vni=1)
    / Ether(src="02:00:00:00:0a:01", dst="02:00:00:00:0a:02")
    / IP(src="10.0.0.1", dst="10.0.0.2")
    / UDP(sport=1, dport=2, chksum=0)
)
_VNI = 14 + 20 + 8 + 4  # offset of the 24-bit VNI
_OUTER_LEN = len(_TEMPLATE) - 14


def _frame(vni: int) -> bytes:
    return _TEMPLATE[:_VNI] + vni.to_bytes(3, "big") + _TEMPLATE[_VNI + 3 :]


def _packets(vnis: list[int]) -> list[Packet]:
    cfg = DissectConfig()
    return [dissect_frame(_frame(v), 1, cfg, frame=i + 1, ts_ns=(i + 1) * 1000) for i, v in enumerate(vnis)]


def _run(pkts: list[Packet], max_tunnels: int, max_flows: int = 100_000) -> Aggregates:
    c = Correlator(max_flows, max_tunnels)
    c.begin_source("random-vnis.pcap")
    c.add_all(pkts)
    c.end_source(SourceInfo("random-vnis.pcap", "pcap", len(pkts)))
    return c.result


def test_cap_evicts_least_active_tunnels_and_counts() -> None:
    # VNI 7 is busy (5 packets), then 9 one-packet VNIs arrive: the cap of 4 keeps VNI 7
    pkts = _packets([7] * 5 + list(range(100, 109)))
    res = _run(pkts, max_tunnels=4)
    assert len(res.tunnels) <= 4 and ("vxlan", "192.0.2.1", "192.0.2.2", 7) in res.tunnels
    assert res.evicted_tunnels + len(res.tunnels) == 10
    assert res.evicted_tunnel_packets + sum(t.packets for t in res.tunnels.values()) == 14
    assert res.evicted_tunnel_bytes == res.evicted_tunnel_packets * _OUTER_LEN
    doc = res.to_json()
    check_invariants(doc)
    assert doc["max_tunnels"] == 4
    assert doc["evicted_tunnels"] == {
        "tunnels": res.evicted_tunnels,
        "packets": res.evicted_tunnel_packets,
        "bytes": res.evicted_tunnel_bytes,
    }
    assert doc["summary"]["tunnels"] == len(doc["tunnels"]) == len(res.tunnels)
    # flows are not tied to their tunnel's eviction: all 10 (one per VNI) are still tracked
    assert len(doc["flows"]) == 10


def test_tunnel_seen_again_after_eviction_starts_afresh_with_its_flow() -> None:
    pkts = _packets([1, 2, 3, 1])  # cap 2: VNI 1 is evicted by VNI 3 and comes back
    res = _run(pkts, max_tunnels=2)
    t1 = res.tunnels[("vxlan", "192.0.2.1", "192.0.2.2", 1)]
    assert t1.packets == 1 and t1.inner_flows.count() == 1  # its flow (still tracked) counts again
    check_invariants(res.to_json())


def test_merge_applies_the_cap_and_keeps_the_counts() -> None:
    rng = random.Random(1)
    pkts = _packets([rng.randrange(1 << 24) for _ in range(600)])
    whole = _run(pkts, max_tunnels=50)
    merged = _run(pkts[:250], max_tunnels=50).merge(_run(pkts[250:], max_tunnels=50))
    for res in (whole, merged):
        assert len(res.tunnels) <= 50
        assert res.evicted_tunnel_packets + sum(t.packets for t in res.tunnels.values()) == 600
        check_invariants(res.to_json())
    # without eviction a merge stays exact
    exact = _run(pkts[:20], 50).merge(_run(pkts[20:40], 50))
    assert exact.tunnels == _run(pkts[:40], 50).tunnels and exact.evicted_tunnels == 0


def _peak(n: int, seed: int) -> tuple[int, Aggregates]:
    rng = random.Random(seed)
    cfg = DissectConfig()
    corr = Correlator(max_flows=300, max_tunnels=300)
    tracemalloc.start()
    try:
        for i in range(n):
            corr.add(dissect_frame(_frame(rng.randrange(1 << 24)), 1, cfg, frame=i + 1, ts_ns=(i + 1) * 1000))
        return tracemalloc.get_traced_memory()[1], corr.result
    finally:
        tracemalloc.stop()


def test_random_vnis_do_not_grow_memory() -> None:
    _peak(600, 0)  # warm-up: first-use caches are not the tables' memory
    small, _ = _peak(1_000, 1)
    big, res = _peak(8_000, 2)
    assert len(res.tunnels) <= 300 and len(res.flows) <= 300
    assert res.evicted_tunnels + len(res.tunnels) == 8_000
    # eight times the hostile input, the same bounded tables (uncapped: 6-7 times the memory)
    assert big <= small * 1.3 + 64 * 1024, (small, big)


def test_max_tunnels_must_be_positive() -> None:
    with pytest.raises(ValueError):
        Correlator(max_tunnels=0)
