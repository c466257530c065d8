"""Ping state machine: loss and RTT statistics per path."""

from __future__ import annotations

from ipsotrace.probe.engine import Engine, Pacing
from ipsotrace.probe.ping import PingAlgo
from tests.probe.simlab import TARGET, lab_network


def test_loss_only_on_the_lossy_path() -> None:
    net = lab_network(loss=0.2, lossy_paths={1}, seed=5)
    a = next(s for s in range(50000, 51000) if net.path_of(s) == 0)
    b = next(s for s in range(50000, 51000) if net.path_of(s) == 1)
    algo = PingAlgo(TARGET, [a, b], count=1000, interval=0.01, timeout=0.5)
    Engine(net, TARGET, clock=net.clock, pacing=Pacing(1000)).run(algo)
    sa, sb = algo.result()
    assert (sa.sport, sa.sent, sa.received, sa.loss_pct) == (a, 1000, 1000, 0.0)
    assert sb.sent == 1000 and abs(sb.loss_pct - 20.0) < 4.0  # 3 sigma for 1000 draws is 3.8 points
    assert sa.rtt_min_ms is not None and sa.rtt_avg_ms is not None and sa.rtt_max_ms is not None
    # three routers and the VTEP at 0.5 ms per hop, there and back: a constant 4 ms in the simulator
    assert abs(sa.rtt_min_ms - 4.0) < 1e-6 and abs(sa.rtt_max_ms - 4.0) < 1e-6
    assert sa.rtt_mdev_ms is not None and sa.rtt_mdev_ms < 1e-6 and sa.jitter_ms == 0.0


def test_mdev_and_jitter_formulas() -> None:
    algo = PingAlgo(TARGET, [50000], count=4)
    algo.stats[50000].sent = 4
    algo.stats[50000].received = 3
    algo.stats[50000].rtts = {0: 1.0, 1: 3.0, 3: 2.0}
    (s,) = algo.result()
    assert s.loss_pct == 25.0
    assert (s.rtt_min_ms, s.rtt_avg_ms, s.rtt_max_ms) == (1.0, 2.0, 3.0)
    assert abs(s.rtt_mdev_ms - (2 / 3) ** 0.5) < 1e-9  # iputils: sqrt(mean(x^2) - mean(x)^2)
    assert s.jitter_ms == 1.5  # mean |difference| of consecutive replies
