"""Collected facts merge into exactly what one pass gives, so findings do not depend on how the
input was split (file chunks, several files)."""

from __future__ import annotations

import pytest

from ipsotrace.correlate import Correlator
from ipsotrace.dissectors.registry import DissectConfig, dissect_frame
from ipsotrace.findings import Collector, Facts, evaluate, findings_json
from ipsotrace.records import Packet
from tests.findings.helpers import generator

GEN = generator()


def _packets(names: list[str]) -> list[Packet]:
    cfg = DissectConfig()
    out: list[Packet] = []
    for name in names:
        for p in GEN.build(name).packets:
            n = len(out) + 1
            out.append(dissect_frame(bytes(p), 1, cfg, frame=n, ts_ns=int(p.time * 1e9) + n * 1000))
    return out


def _facts(pkts: list[Packet]) -> Facts:
    c = Collector()
    c.begin_source("all.pcap")
    for p in pkts:
        c.add(p)
    return c.result


def _check_splits(pkts: list[Packet], step: int) -> None:
    whole = _facts(pkts).finalized_copy()
    corr = Correlator()
    corr.begin_source("all.pcap")
    corr.add_all(pkts)
    expected = findings_json(evaluate(corr.result, whole))
    assert expected
    for k in range(0, len(pkts) + 1, step):
        merged = _facts(pkts[:k]).merge(_facts(pkts[k:])).finalized_copy()
        assert merged == whole, f"split at {k}"
        assert findings_json(evaluate(corr.result, merged)) == expected


@pytest.mark.parametrize(
    "name", ["mtu.pmtu-black-hole", "health.retransmissions", "health.duplicate-packets", "qos.ecn-ce-lost"]
)
def test_merge_equals_one_pass_at_every_split(name: str) -> None:
    _check_splits(_packets([name]), 1)


def test_merge_of_every_scenario_back_to_back() -> None:
    _check_splits(_packets(list(GEN.SCENARIOS)), 17)


def test_three_parts() -> None:
    pkts = _packets(["mtu.pmtu-black-hole", "health.duplicate-packets"])
    whole = _facts(pkts).finalized_copy()
    n = len(pkts)
    for a, b in ((5, 9), (3, n - 4), (n // 3, 2 * n // 3)):
        merged = _facts(pkts[:a]).merge(_facts(pkts[a:b])).merge(_facts(pkts[b:])).finalized_copy()
        assert merged == whole, (a, b)
