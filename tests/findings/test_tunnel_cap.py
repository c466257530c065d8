"""The findings collector caps its tunnel table like the correlator: random VNIs cannot grow memory."""

from __future__ import annotations

import random
import tracemalloc

import pytest
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether
from scapy.layers.vxlan import VXLAN

from ipsotrace.correlate import DEFAULT_MAX_TUNNELS
from ipsotrace.dissectors.registry import DissectConfig, dissect_frame
from ipsotrace.findings import Collector, Facts
from ipsotrace.records import Packet

_TEMPLATE = bytes(
    Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
    / IP(src="192.0.2.1", dst="192.0.2.2")
    / UDP(sport=49152, dport=4789, chksum=0)
    / VXLAN(flags=0x08, vni=1)
    / Ether(src="02:00:00:00:0a:01", dst="02:00:00:00:0a:02")
    / IP(src="203.0.113.1", dst="203.0.113.2")
    / UDP(sport=1, dport=2, chksum=0)
)
_VNI = 14 + 20 + 8 + 4  # offset of the 24-bit VNI


def _frame(vni: int) -> bytes:
    return _TEMPLATE[:_VNI] + vni.to_bytes(3, "big") + _TEMPLATE[_VNI + 3 :]


def _packets(vnis: list[int]) -> list[Packet]:
    cfg = DissectConfig()
    return [dissect_frame(_frame(v), 1, cfg, frame=i + 1, ts_ns=(i + 1) * 1000) for i, v in enumerate(vnis)]


def _collect(pkts: list[Packet], max_tunnels: int, max_flows: int = 100_000) -> Facts:
    c = Collector(max_flows=max_flows, max_tunnels=max_tunnels)
    c.begin_source("random-vnis.pcap")
    for p in pkts:
        c.add(p)
    return c.result


def _key(vni: int) -> tuple[str, str, str, int]:
    return ("vxlan", "192.0.2.1", "192.0.2.2", vni)


def test_default_cap_is_the_correlators() -> None:
    assert Collector().result.max_tunnels == DEFAULT_MAX_TUNNELS


def test_cap_evicts_least_active_tunnels_and_counts() -> None:
    # VNI 7 is busy (5 packets), then 9 one-packet VNIs arrive: the cap of 4 keeps VNI 7
    facts = _collect(_packets([7] * 5 + list(range(100, 109))), max_tunnels=4)
    assert len(facts.tunnels) <= 4 and _key(7) in facts.tunnels
    assert facts.tunnels[_key(7)].packets == 5
    assert facts.evicted_tunnels + len(facts.tunnels) == 10
    assert facts.tunnels[_key(108)].packets == 1  # the newest is never the victim of its own arrival
    assert len(facts.flows) == 10  # flows have their own cap


def test_tunnel_seen_again_after_eviction_starts_afresh() -> None:
    facts = _collect(_packets([1, 2, 3, 1]), max_tunnels=2)
    assert facts.tunnels[_key(1)].packets == 1 and facts.tunnels[_key(1)].first[2] == 4
    assert facts.evicted_tunnels == 2


def test_merge_applies_the_cap_and_stays_exact_below_it() -> None:
    rng = random.Random(1)
    vnis = rng.sample(range(1 << 24), 600)
    pkts = _packets(vnis)
    whole = _collect(pkts, max_tunnels=50)
    merged = _collect(pkts[:250], max_tunnels=50).merge(_collect(pkts[250:], max_tunnels=50))
    for facts in (whole, merged):
        assert len(facts.tunnels) <= 50
        assert facts.evicted_tunnels + len(facts.tunnels) == 600
    # without eviction a merge equals one pass
    small = _packets(vnis[:20] + vnis[:20])
    exact = _collect(small[:25], 50).merge(_collect(small[25:], 50))
    assert exact.finalized_copy() == _collect(small, 50).finalized_copy() and exact.evicted_tunnels == 0


def _peak(n: int, seed: int) -> tuple[int, Facts]:
    vnis = random.Random(seed).sample(range(1 << 24), n)
    cfg = DissectConfig()
    coll = Collector(max_flows=300, max_tunnels=300)
    coll.begin_source("random-vnis.pcap")
    tracemalloc.start()
    try:
        for i, vni in enumerate(vnis):
            coll.add(dissect_frame(_frame(vni), 1, cfg, frame=i + 1, ts_ns=(i + 1) * 1000))
        return tracemalloc.get_traced_memory()[1], coll.result
    finally:
        tracemalloc.stop()


def test_random_vnis_do_not_grow_memory() -> None:
    _peak(600, 0)  # warm-up: first-use caches are not the tables' memory
    small, _ = _peak(1_000, 1)
    big, facts = _peak(8_000, 2)
    assert len(facts.tunnels) <= 300 and len(facts.flows) <= 300
    assert facts.evicted_tunnels + len(facts.tunnels) == 8_000
    # eight times the hostile input, the same bounded tables
    assert big <= small * 1.3 + 64 * 1024, (small, big)


def test_caps_must_be_positive() -> None:
    with pytest.raises(ValueError):
        Collector(max_tunnels=0)
    with pytest.raises(ValueError):
        Collector(max_flows=0)
