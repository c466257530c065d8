"""Trace state machine on the simulated lab: MDA stopping, ports → paths, balancing, rate limits."""

from __future__ import annotations

from ipsotrace.probe.engine import Engine
from ipsotrace.probe.mda import probes_to_rule_out
from ipsotrace.probe.sim import SimNetwork, SimPath, SimRouter
from ipsotrace.probe.trace import TraceAlgo, TraceResult, sport_sequence
from tests.probe.simlab import PATH_A, PATH_B, TARGET, lab_network


def run_trace(net: SimNetwork, **kw: object) -> TraceResult:
    sports = kw.pop("sports", None)
    algo = TraceAlgo(TARGET, sports or sport_sequence(), **kw)  # type: ignore[arg-type]
    t0 = net.now
    Engine(net, TARGET, clock=net.clock).run(algo)
    return algo.result(net.now - t0)


def hop_addresses(result: TraceResult) -> list[list[str | None]]:
    return [[h.address for h in p.hops] for p in result.paths]


def test_two_paths_found_and_mda_stops() -> None:
    net = lab_network()
    r = run_trace(net, max_paths=4)
    assert sorted(hop_addresses(r)) == sorted([PATH_A, PATH_B])
    assert r.stopped == "mda"
    assert r.balancing == "per-flow"
    assert all(p.reached for p in r.paths)
    # r1 has two next hops: ruling out a third takes 11 flows through it, and no more than needed:
    # every vertex done (ra and rb need 6 flows each) is reached after at most max(11, 6 + 6 + skew)
    assert r.flows >= probes_to_rule_out(3)
    assert r.flows <= 24
    # every port is reported on exactly one path, and the simulator agrees where it went
    seen = [s for p in r.paths for s in p.sports]
    assert len(seen) == len(set(seen)) == r.flows
    for p in r.paths:
        for s in p.sports:
            assert [h.address for h in p.hops] == (PATH_A, PATH_B)[net.path_of(s)]
    # once r1 is known to be the only first hop (6 flows), later flows skip TTL 1
    assert sum(1 for _, _, ttl, _ in net.log if ttl == 1) == probes_to_rule_out(2)
    # the last hop is the far VTEP, proven by the inner host's reply
    for p in r.paths:
        last = p.hops[-1]
        assert last.kind == "vtep" and last.address == "192.0.2.2"
        assert last.evidence["inner_reply_from"] == "203.0.113.2"
        assert p.hops[0].evidence["quoted_vni"] == 100


def test_single_path_stops_after_six_flows() -> None:
    routers = [SimRouter("198.51.100.2"), SimRouter("198.51.100.6"), SimRouter("198.51.100.14")]
    net = SimNetwork(TARGET, [SimPath(routers)])
    r = run_trace(net, max_paths=8)
    assert len(r.paths) == 1 and r.stopped == "mda"
    assert r.flows == probes_to_rule_out(2) == 6
    assert r.balancing == "none"
    assert r.probes == 6 * 4 == len(net.log)


def test_paths_limit() -> None:
    r = run_trace(lab_network(), max_paths=2)
    assert len(r.paths) == 2 and r.stopped == "paths-limit"


def test_explicit_port_is_paris_traced_only() -> None:
    net = lab_network()
    sport = next(s for s in sport_sequence() if net.path_of(s) == 1)
    r = run_trace(net, sports=[sport])
    assert r.stopped == "explicit-ports" and r.flows == 1
    assert hop_addresses(r) == [PATH_B]
    assert set(net.sent_by_sport) == {sport}


def test_per_packet_balancing_detected() -> None:
    r = run_trace(lab_network(per_packet=True, seed=7), max_paths=4)
    assert r.balancing == "per-packet"


def test_linux_icmp_rate_limit_is_survived() -> None:
    # a burst of 6, then one error per second per router: retries with backoff get through
    net = lab_network(ratelimit=(6, 1.0))
    r = run_trace(net, max_paths=4)
    assert sorted(hop_addresses(r)) == sorted([PATH_A, PATH_B])
    assert all(h.address is not None for p in r.paths for h in p.hops)


def test_silent_vtep_gives_up_after_gap_limit() -> None:
    routers = [SimRouter("198.51.100.2"), SimRouter("198.51.100.6")]
    net = SimNetwork(TARGET, [SimPath(routers)], vtep_answers=False)
    r = run_trace(net, sports=[50000], tries=2, gap_limit=3)
    (p,) = r.paths
    assert not p.reached and p.status == "gave-up"
    assert [h.address for h in p.hops] == ["198.51.100.2", "198.51.100.6", None, None, None]
