"""One probing session toward one far VTEP: resolve the inner MAC, then trace, PMTU and ping.

This is what front ends call.  It composes the state machines over one
:class:`~ipsotrace.probe.engine.Engine` and returns immutable results with
``to_json()``; it prints nothing.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ipsotrace.probe.engine import Engine, Pacing
from ipsotrace.probe.model import PING_SCHEMA, PMTU_SCHEMA, TIMEOUT, Event, Outcome, OverlayTarget, ProbeRequest
from ipsotrace.probe.network import Network, ProbeError
from ipsotrace.probe.ping import PingAlgo, PingStats
from ipsotrace.probe.pmtu import RANGE, PmtuAlgo, PmtuResult
from ipsotrace.probe.timing import RttEstimator
from ipsotrace.probe.trace import PathResult, TraceAlgo, TraceResult, sport_sequence

Clock = Callable[[], float]


class _ArpAlgo:
    def __init__(self, sport: int, tries: int, rtt: RttEstimator) -> None:
        self.sport, self.tries, self.rtt = sport, tries, rtt
        self.mac: str | None = None
        self.sent = 0
        self._waiting = False
        self._failed = False

    @property
    def done(self) -> bool:
        return self.mac is not None or self._failed

    def poll(self, now: float) -> tuple[list[ProbeRequest], float | None]:
        if self._waiting or self.done:
            return [], None
        self._waiting = True
        self.sent += 1
        return [ProbeRequest(sport=self.sport, kind="arp", timeout=self.rtt.timeout(self.sent - 1))], None

    def feed(self, o: Outcome) -> None:
        self._waiting = False
        if o.kind == "arp":
            self.mac = o.evidence.get("mac")
        elif o.kind == TIMEOUT and self.sent >= self.tries:
            self._failed = True


def _target_json(t: OverlayTarget) -> dict[str, Any]:
    return {"vtep": t.vtep, "local": t.local, "vni": t.vni, "dport": t.dport, "inner_dst": t.inner_dst}


@dataclass(frozen=True, slots=True)
class PmtuPath:
    path: PathResult
    pmtu: PmtuResult

    def to_json(self) -> dict[str, Any]:
        return {"sports": list(self.path.sports), "hops": [h.address for h in self.path.hops], **self.pmtu.to_json()}


@dataclass(frozen=True, slots=True)
class PmtuReport:
    target: OverlayTarget
    trace: TraceResult
    paths: tuple[PmtuPath, ...]
    elapsed_s: float

    def to_json(self) -> dict[str, Any]:
        mtus = [p.pmtu.overlay_mtu for p in self.paths if p.pmtu.overlay_mtu is not None]
        return {
            "schema": PMTU_SCHEMA,
            "target": _target_json(self.target),
            "direction": f"{self.target.local} -> {self.target.vtep}",
            "paths": [p.to_json() for p in self.paths],
            "recommended_inner_mtu": min(mtus) if mtus else None,
            "blackhole": any(p.pmtu.blackhole for p in self.paths),
            "probes_sent": self.trace.probes + sum(p.pmtu.probes for p in self.paths),
            "elapsed_s": round(self.elapsed_s, 3),
        }


@dataclass(frozen=True, slots=True)
class PingReport:
    target: OverlayTarget
    paths: tuple[tuple[PathResult | None, PingStats], ...]
    elapsed_s: float

    def to_json(self) -> dict[str, Any]:
        out = []
        for path, st in self.paths:
            d: dict[str, Any] = {"sports": list(path.sports) if path else [st.sport]}
            if path is not None:
                d["hops"] = [h.address for h in path.hops]
            d.update(st.to_json())
            out.append(d)
        return {
            "schema": PING_SCHEMA,
            "target": _target_json(self.target),
            "direction": f"{self.target.local} -> {self.target.vtep} (round trip)",
            "paths": out,
            "elapsed_s": round(self.elapsed_s, 3),
        }


class Session:
    def __init__(
        self,
        network: Network,
        target: OverlayTarget,
        *,
        pps: float = 50.0,
        timeout: float = 2.0,
        on_event: Callable[[Event], None] | None = None,
        clock: Clock = time.monotonic,
    ) -> None:
        self.target = target
        self.timeout = timeout
        self.clock = clock
        self.rtt = RttEstimator(ceiling=timeout)
        self.engine = Engine(network, target, pacing=Pacing(pps), on_event=on_event, clock=clock)

    def _set_target(self, target: OverlayTarget) -> None:
        self.target = target
        self.engine.set_target(target)

    def resolve_inner_mac(self, sport: int = 49152, tries: int = 4) -> str:
        """ARP for the inner host through the overlay (also proves VNI and VTEP are right)."""
        algo = _ArpAlgo(sport, tries, self.rtt)
        self.engine.run(algo)
        if algo.mac is None:
            raise ProbeError(
                f"no ARP reply from {self.target.inner_dst} in VNI {self.target.vni} via {self.target.vtep}: "
                "wrong VNI, VTEP or inner address? (or pass --inner-dst-mac)"
            )
        self._set_target(dataclasses.replace(self.target, inner_dst_mac=algo.mac))
        return algo.mac

    def trace(
        self,
        *,
        sports: list[int] | None = None,
        paths: int = 1,
        first_sport: int = 49152,
        max_hops: int = 16,
        max_flows: int = 64,
        size: int = 0,
    ) -> TraceResult:
        start = self.clock()
        algo = TraceAlgo(
            self.target,
            list(sports) if sports else sport_sequence(first_sport),
            max_paths=paths,
            max_hops=max_hops,
            max_flows=max_flows,
            size=size,
            timeout=self.timeout,
            rtt=self.rtt,
        )
        self.engine.run(algo)
        return algo.result(self.clock() - start)

    def pmtu(
        self,
        trace: TraceResult,
        *,
        lo: int = RANGE[0],
        hi: int = RANGE[1],
        max_probes: int = 40,
    ) -> PmtuReport:
        start = self.clock()
        out = []
        for path in trace.paths:
            algo = PmtuAlgo(
                self.target,
                path.sports[0],
                lo=lo,
                hi=hi,
                max_probes=max_probes,
                hops=[h.address for h in path.hops],
                rtt=self.rtt,
                timeout=self.timeout,
            )
            t0 = self.clock()
            self.engine.run(algo)
            out.append(PmtuPath(path, algo.result(self.clock() - t0)))
        return PmtuReport(self.target, trace, tuple(out), self.clock() - start + trace.elapsed_s)

    def ping(
        self,
        sports: list[int],
        *,
        paths: list[PathResult | None] | None = None,
        count: int = 10,
        interval: float = 1.0,
        size: int = 0,
    ) -> PingReport:
        start = self.clock()
        algo = PingAlgo(self.target, sports, count=count, interval=interval, size=size, timeout=self.timeout)
        self.engine.run(algo)
        stats = algo.result()
        ps = paths or [None] * len(sports)
        return PingReport(self.target, tuple(zip(ps, stats, strict=True)), self.clock() - start)
