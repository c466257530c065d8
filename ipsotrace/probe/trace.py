"""Overlay traceroute over ECMP paths: a Paris traceroute per flow, flows added by the MDA rule.

A *flow* is one outer UDP source port: every probe of a flow has the same outer
5-tuple, so every router hashes it onto the same next hop (Paris).  Each flow
is traced with increasing outer TTL until the inner host answers (the probe
crossed the far VTEP).  New flows are added (Dublin style) until the user's
number of paths is reached or the MDA stopping rule holds for every vertex:
a router ``v`` seen at hop ``h`` whose flows all went to ``k`` next hops is
done once ``probes_to_rule_out(k + 1)`` flows crossed it (95 % confidence that
there is no further next hop).  A vertex that is done with a single next hop
is not probed again: later flows inherit that hop (marked ``inherited``),
which spares rate-limited routers.

Paths are told apart by their *forward* hop sequence; the source ports that
took each path are reported.  Balancing is ``per-packet`` when one flow's
probes come back from different routers at the same hop.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from ipsotrace.probe.mda import ALPHA, probes_to_rule_out
from ipsotrace.probe.model import (
    FRAG_NEEDED,
    LOCAL_ERROR,
    REPLY,
    TIME_EXCEEDED,
    TIMEOUT,
    TRACE_SCHEMA,
    UNREACHABLE,
    Outcome,
    OverlayTarget,
    ProbeRequest,
)
from ipsotrace.probe.timing import RttEstimator

SOURCE = "source"


@dataclass(frozen=True, slots=True)
class HopResult:
    ttl: int
    address: str | None  # None: no answer
    rtt_ms: float | None
    kind: str  # router | vtep | silent | unreachable
    evidence: dict[str, Any] = field(default_factory=dict)
    inherited: bool = False

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "ttl": self.ttl,
            "address": self.address,
            "rtt_ms": None if self.rtt_ms is None else round(self.rtt_ms, 3),
            "kind": self.kind,
        }
        if self.inherited:
            out["inherited"] = True
        if self.evidence:
            out["evidence"] = self.evidence
        return out


@dataclass(slots=True)
class FlowTrace:
    sport: int
    hops: dict[int, HopResult] = field(default_factory=dict)
    ttl: int = 1
    tries: int = 0
    silent_run: int = 0
    status: str = "running"  # running | reached | unreachable | gave-up

    def vertex(self, ttl: int) -> str | None:
        if ttl == 0:
            return SOURCE
        h = self.hops.get(ttl)
        return None if h is None or h.address is None else h.address

    def key(self) -> tuple[str, ...]:
        last = max(self.hops, default=0)
        return (*(self.vertex(t) or "*" for t in range(1, last + 1)), self.status)


@dataclass(frozen=True, slots=True)
class PathResult:
    sports: tuple[int, ...]
    hops: tuple[HopResult, ...]
    reached: bool
    status: str

    def to_json(self) -> dict[str, Any]:
        return {
            "sports": list(self.sports),
            "reached": self.reached,
            "status": self.status,
            "hops": [h.to_json() for h in self.hops],
        }


@dataclass(frozen=True, slots=True)
class TraceResult:
    target: OverlayTarget
    paths: tuple[PathResult, ...]
    flows: int
    probes: int
    stopped: str  # paths-limit | mda | max-flows | explicit-ports | ports-exhausted
    confidence: float
    balancing: str  # per-flow | per-packet | none
    elapsed_s: float = 0.0

    def to_json(self) -> dict[str, Any]:
        t = self.target
        return {
            "schema": TRACE_SCHEMA,
            "target": {"vtep": t.vtep, "local": t.local, "vni": t.vni, "dport": t.dport, "inner_dst": t.inner_dst},
            "direction": f"{t.local} -> {t.vtep}",
            "paths": [p.to_json() for p in self.paths],
            "flows_probed": self.flows,
            "probes_sent": self.probes,
            "stopped": self.stopped,
            "confidence": self.confidence,
            "balancing": self.balancing,
            "elapsed_s": round(self.elapsed_s, 3),
        }


def _addr_key(a: str | None) -> tuple[int, int]:
    if a is None:
        return (1, 0)
    try:
        return (0, int(ipaddress.ip_address(a)))
    except ValueError:
        return (1, 0)


def sport_sequence(first: int = 49152, step: int = 7919) -> Iterator[int]:
    """Outer source ports to try: spread over the ephemeral range, never repeating."""
    span = 65535 - 49152 + 1
    i = 0
    while i < span:
        yield 49152 + (first - 49152 + i * step) % span
        i += 1


class TraceAlgo:
    """The state machine described in the module docstring."""

    def __init__(
        self,
        target: OverlayTarget,
        sports: Iterator[int] | list[int],
        *,
        max_paths: int = 1,
        max_hops: int = 16,
        tries: int = 4,
        gap_limit: int = 3,
        timeout: float = 2.0,
        size: int = 0,
        max_flows: int = 64,
        verify: bool = True,
        rtt: RttEstimator | None = None,
    ) -> None:
        self.target = target
        self._sports = iter(sports)
        #: an explicit list (--sport, --replay-flow): trace exactly those flows, no MDA
        self.explicit = len(sports) if isinstance(sports, list) else 0
        self.max_paths = max(1, max_paths)
        self.max_hops = max_hops
        self.tries = max(1, tries)
        self.gap_limit = gap_limit
        self.size = size
        self.max_flows = max_flows
        self.verify = verify
        self.rtt = rtt or RttEstimator(ceiling=timeout)
        self.flows: list[FlowTrace] = []
        self.current: FlowTrace | None = None
        self.stopped = ""
        self.probes = 0
        self._waiting = False
        self._verify_queue: list[tuple[int, int, str]] = []  # (sport, ttl, expected address)
        self._verify_tries = 0
        self.per_packet = False
        self._done = False

    # --- the Algorithm protocol ----------------------------------------------------------

    @property
    def done(self) -> bool:
        return self._done

    def poll(self, now: float) -> tuple[list[ProbeRequest], float | None]:
        if self._waiting or self._done:
            return [], None
        if self._verify_queue:
            sport, ttl, _ = self._verify_queue[0]
            return [self._request(sport, ttl, ("verify", sport, ttl), self._verify_tries)], None
        idle = self.current is None or self.current.status != "running"
        if idle and not self._start_flow():
            self._finish_discovery()
            return self.poll(now)
        flow = self.current
        assert flow is not None
        return [self._request(flow.sport, flow.ttl, ("hop", flow.sport, flow.ttl), flow.tries)], None

    def feed(self, outcome: Outcome) -> None:
        self._waiting = False
        if outcome.rtt_ms is not None:
            self.rtt.add(outcome.rtt_ms)
        tag = outcome.request.tag
        if tag[0] == "verify":
            self._feed_verify(outcome)
        else:
            self._feed_hop(outcome)

    # --- flows -------------------------------------------------------------------------------

    def _request(self, sport: int, ttl: int, tag: tuple[Any, ...], attempt: int) -> ProbeRequest:
        self._waiting = True
        self.probes += 1
        return ProbeRequest(sport=sport, ttl=ttl, size=self.size, timeout=self.rtt.timeout(attempt), tag=tag)

    def _start_flow(self) -> bool:
        if self.current is not None:
            self.flows.append(self.current)
            self.current = None
        if not self._need_more():
            return False
        sport = next(self._sports, None)
        if sport is None:
            self.stopped = self.stopped or "ports-exhausted"
            return False
        flow = FlowTrace(sport)
        self.current = flow
        self._skip_resolved(flow, 0)
        return True

    def _skip_resolved(self, flow: FlowTrace, ttl: int) -> None:
        """Inherit hops after ``ttl`` while the vertex there is done with one next hop (never the VTEP)."""
        while True:
            v = flow.vertex(ttl)
            if v is None:
                return
            succ = self._successors(ttl, v)
            if len(succ) != 1 or not self._resolved(ttl, v):
                return
            (nxt,) = succ
            model = next(f for f in self.flows if f.vertex(ttl) == v and f.vertex(ttl + 1) == nxt)
            hop = model.hops[ttl + 1]
            if hop.kind != "router":
                return
            flow.hops[ttl + 1] = HopResult(ttl + 1, hop.address, None, "router", inherited=True)
            ttl += 1
            flow.ttl = ttl + 1

    def _feed_hop(self, o: Outcome) -> None:
        flow = self.current
        if flow is None or o.request.sport != flow.sport or o.request.ttl != flow.ttl:
            return
        ttl = flow.ttl
        if o.kind == TIME_EXCEEDED:
            flow.hops[ttl] = HopResult(ttl, o.address, o.rtt_ms, "router", dict(o.evidence))
            flow.silent_run = 0
            self._advance(flow)
            self._skip_resolved(flow, ttl)
        elif o.kind == REPLY:
            ev = {"inner_reply_from": o.address, **o.evidence}
            flow.hops[ttl] = HopResult(ttl, self.target.vtep, o.rtt_ms, "vtep", ev)
            flow.status = "reached"
        elif o.kind in (UNREACHABLE, FRAG_NEEDED):
            ev = {"code": o.code, **o.evidence}
            flow.hops[ttl] = HopResult(ttl, o.address, o.rtt_ms, "unreachable", ev)
            flow.status = "unreachable"
        elif o.kind == TIMEOUT:
            flow.tries += 1
            if flow.tries < self.tries:
                return
            flow.hops[ttl] = HopResult(ttl, None, None, "silent")
            flow.silent_run += 1
            self._advance(flow)
            if flow.silent_run >= self.gap_limit:
                flow.status = "gave-up"
        elif o.kind == LOCAL_ERROR:
            flow.status = "gave-up"
        if flow.status == "running" and flow.ttl > self.max_hops:
            flow.status = "gave-up"

    @staticmethod
    def _advance(flow: FlowTrace) -> None:
        flow.ttl += 1
        flow.tries = 0

    # --- MDA ---------------------------------------------------------------------------------

    def _successors(self, ttl: int, v: str) -> set[str]:
        out = set()
        for f in self.flows:
            if f.vertex(ttl) == v:
                n = f.vertex(ttl + 1)
                if n is not None:
                    out.add(n)
        return out

    def _crossings(self, ttl: int, v: str) -> int:
        return sum(
            1
            for f in self.flows
            if f.vertex(ttl) == v and f.vertex(ttl + 1) is not None and not f.hops[ttl + 1].inherited
        )

    def _resolved(self, ttl: int, v: str) -> bool:
        succ = self._successors(ttl, v)
        if not succ:
            return True
        inherited = any(
            f.vertex(ttl) == v and (h := f.hops.get(ttl + 1)) is not None and h.inherited for f in self.flows
        )
        return inherited or self._crossings(ttl, v) >= probes_to_rule_out(len(succ) + 1)

    def _vertices(self) -> set[tuple[int, str]]:
        out: set[tuple[int, str]] = {(0, SOURCE)}
        for f in self.flows:
            for ttl, h in f.hops.items():
                if h.address is not None and h.kind == "router":
                    out.add((ttl, h.address))
        return out

    def _need_more(self) -> bool:
        if self.explicit:
            if len(self.flows) >= self.explicit:
                self.stopped = "explicit-ports"
                return False
            return True
        if len(self._paths()) >= self.max_paths:
            self.stopped = "paths-limit"
            return False
        if len(self.flows) >= self.max_flows:
            self.stopped = "max-flows"
            return False
        if self.flows and all(self._resolved(t, v) for t, v in self._vertices()):
            self.stopped = "mda"
            return False
        return True

    # --- paths --------------------------------------------------------------------------------

    def _paths(self) -> dict[tuple[str, ...], list[FlowTrace]]:
        groups: dict[tuple[str, ...], list[FlowTrace]] = {}
        for f in self.flows:
            groups.setdefault(f.key(), []).append(f)
        # A flow with a silent hop that fits exactly one fully answered path is that path
        # (a rate-limited router or a lost probe, not a new path).
        for key in [k for k in groups if "*" in k]:
            fits = [
                k
                for k in groups
                if "*" not in k and len(k) == len(key) and all(a in ("*", b) for a, b in zip(key, k, strict=True))
            ]
            if len(fits) == 1:
                groups[fits[0]].extend(groups.pop(key))
        return groups

    def _finish_discovery(self) -> None:
        groups = self._paths()
        if self.verify and len(groups) > 1 and not self._verify_queue and not self.per_packet:
            keys = list(groups)
            width = max(len(k) - 1 for k in keys)
            divergent = [t for t in range(1, width + 1) if len({k[t - 1] if t <= len(k) - 1 else "" for k in keys}) > 1]
            for k in keys:
                f = groups[k][0]
                for t in divergent:
                    h = f.hops.get(t)
                    if h is not None and h.kind == "router" and h.address is not None:
                        self._verify_queue.append((f.sport, t, h.address))
            self.verify = False
            if self._verify_queue:
                return
        self._done = True

    def _feed_verify(self, o: Outcome) -> None:
        expected = self._verify_queue[0][2]
        if o.kind == TIMEOUT and self._verify_tries + 1 < self.tries:
            self._verify_tries += 1
            return
        if o.kind == TIME_EXCEEDED and o.address != expected:
            self.per_packet = True
        self._verify_queue.pop(0)
        self._verify_tries = 0
        if not self._verify_queue:
            self._done = True

    # --- snapshot ----------------------------------------------------------------------------

    def result(self, elapsed_s: float = 0.0) -> TraceResult:
        flows = [*self.flows, *([self.current] if self.current is not None else [])]
        groups: dict[tuple[str, ...], list[FlowTrace]] = {}
        saved, self.flows = self.flows, flows
        try:
            groups = self._paths()
        finally:
            self.flows = saved
        paths = []
        for members in groups.values():
            members = sorted(members, key=lambda f: f.sport)
            best = max(members, key=lambda f: sum(1 for h in f.hops.values() if h.address and not h.inherited))
            hops = []
            for ttl in sorted(best.hops):
                h = best.hops[ttl]
                rtts = [r for m in members if ttl in m.hops and (r := m.hops[ttl].rtt_ms) is not None]
                answered = [m.hops[ttl] for m in members if ttl in m.hops and m.hops[ttl].address is not None]
                if h.address is None and answered:
                    h = answered[0]
                hops.append(
                    HopResult(
                        ttl,
                        h.address,
                        min(rtts) if rtts else None,
                        h.kind,
                        h.evidence,
                        inherited=not rtts and h.inherited,
                    )
                )
            paths.append(
                PathResult(tuple(m.sport for m in members), tuple(hops), best.status == "reached", best.status)
            )
        paths.sort(key=lambda p: tuple(_addr_key(h.address) for h in p.hops))
        balancing = "none" if len(paths) <= 1 else ("per-packet" if self.per_packet else "per-flow")
        return TraceResult(
            self.target,
            tuple(paths),
            len(flows),
            self.probes,
            self.stopped,
            1 - ALPHA,
            balancing,
            elapsed_s,
        )
