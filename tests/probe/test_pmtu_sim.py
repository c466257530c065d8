"""PMTU state machine on the simulated network: convergence, PTB, black holes, loss, budget."""

from __future__ import annotations

import pytest

from ipsotrace.probe.craft import overhead
from ipsotrace.probe.engine import Engine
from ipsotrace.probe.pmtu import PmtuAlgo, PmtuResult
from ipsotrace.probe.sim import SimNetwork, SimPath, SimRouter
from tests.probe.simlab import PATH_B, TARGET, lab_network

SIZES = [1200, 1280, 1400, 1450, 1492, 1500, 4352, 8500, 8568, 9001, 9216]


def one_path(mtu: int, *, ptb: bool = True, at: int = 1, **kw: object) -> SimNetwork:
    routers = [SimRouter(a, mtu_out=9216) for a in PATH_B[:3]]
    routers[at].mtu_out = mtu
    routers[at].send_ptb = ptb
    for r in routers[at + 1 :]:
        r.mtu_out = mtu
    return SimNetwork(TARGET, [SimPath(routers)], local_mtu=9216, **kw)  # type: ignore[arg-type]


def run_pmtu(net: SimNetwork, sport: int = 50000, **kw: object) -> PmtuResult:
    algo = PmtuAlgo(TARGET, sport, hops=PATH_B, **kw)  # type: ignore[arg-type]
    t0 = net.now
    Engine(net, TARGET, clock=net.clock).run(algo)
    return algo.result(net.now - t0)


def test_overhead_is_measured_from_the_probe() -> None:
    # outer IPv4 20 + UDP 8 + VXLAN 8 + inner Ethernet 14
    assert overhead(TARGET) == 50


@pytest.mark.parametrize("mtu", [*SIZES, 1333, 7777])
@pytest.mark.parametrize("ptb", [True, False])
def test_converges_exactly_within_budget(mtu: int, ptb: bool) -> None:
    net = one_path(mtu, ptb=ptb)
    r = run_pmtu(net)
    assert r.underlay_mtu == mtu
    assert r.overlay_mtu == mtu - 50 and r.overhead == 50
    assert r.accuracy == 0
    assert r.probes <= 40 and len(net.log) == r.probes
    assert {sport for _, sport, _, _ in net.log} == {50000}  # every probe on the path's own port
    limited = mtu < 9216
    assert r.blackhole == (limited and not ptb)
    if limited and ptb:
        assert [(p["from"], p["mtu"]) for p in r.ptbs][:1] == [("198.51.100.10", mtu)]
        assert r.probes <= 4  # the PTB's MTU is probed next and confirmed
    if r.blackhole:
        assert r.elapsed_s <= 10.0


def test_blackhole_is_located() -> None:
    r = run_pmtu(one_path(1400, ptb=False, at=0))
    assert r.blackhole and r.underlay_mtu == 1400
    assert r.blackhole_at is not None
    assert r.blackhole_at["last_hop_reached"] == {"ttl": 1, "address": "198.51.100.2"}
    assert r.blackhole_at["first_hop_not_reached"] == {"ttl": 2, "address": "198.51.100.10"}
    assert r.blackhole_at["culprit"] == "198.51.100.2"
    assert r.elapsed_s <= 10.0


@pytest.mark.parametrize("seed", range(40))
def test_no_false_blackhole_at_five_percent_loss(seed: int) -> None:
    # 5 % loss each way on every packet, PTBs included
    for mtu, ptb in ((1500, True), (1400, True), (9001, True)):
        r = run_pmtu(one_path(mtu, ptb=ptb, loss=0.05, seed=seed))
        assert not r.blackhole, (mtu, seed, r)
        assert r.underlay_mtu is not None and abs(r.underlay_mtu - mtu) <= 8, (mtu, seed, r)
        assert r.probes <= 40


@pytest.mark.parametrize("seed", range(10))
def test_real_blackhole_still_found_at_five_percent_loss(seed: int) -> None:
    r = run_pmtu(one_path(1400, ptb=False, at=0, loss=0.05, seed=seed))
    assert r.blackhole and r.underlay_mtu is not None and abs(r.underlay_mtu - 1400) <= 8
    assert r.elapsed_s <= 10.0


def test_rate_limited_ptb_is_not_a_blackhole() -> None:
    # r1 has spent its burst on earlier errors: the PTB comes only once its bucket refills
    net = lab_network(ratelimit=(1, 1.0))
    sport = next(s for s in range(50000, 51000) if net.path_of(s) == 1)
    net.paths[1].routers[0].ratelimit.allow(net.now)  # type: ignore[union-attr]
    r = run_pmtu(net, sport=sport)
    assert not r.blackhole and r.underlay_mtu == 1400 and r.ptbs


def test_path_below_the_range() -> None:
    r = run_pmtu(one_path(1000, ptb=False, at=0))
    assert r.underlay_mtu == 1000 and r.blackhole


def test_unreachable_vtep() -> None:
    routers = [SimRouter(a) for a in PATH_B[:3]]
    r = run_pmtu(SimNetwork(TARGET, [SimPath(routers)], vtep_answers=False))
    assert r.status == "unreachable" and r.underlay_mtu is None


def test_local_interface_caps_the_search() -> None:
    routers = [SimRouter(a) for a in PATH_B[:3]]
    net = SimNetwork(TARGET, [SimPath(routers)], local_mtu=1500)
    r = run_pmtu(net)  # the target claims 9216 locally; the kernel refuses bigger than 1500
    assert r.underlay_mtu == 1500 and not r.blackhole
