"""The probe engine: runs an algorithm (a state machine) over a :class:`Network`.

An algorithm says which probes it wants (``poll``) and learns what became of
them (``feed``); the engine crafts, paces and sends them, matches replies with
the dissectors and reports timeouts.  Algorithms never touch sockets or clocks
of their own, so the same state machines run on the real network and on the
simulated one, and front ends only see :class:`Event`s and the algorithms'
immutable snapshots.
"""

from __future__ import annotations

import errno
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from ipsotrace.dissectors.registry import DissectConfig, dissect_frame
from ipsotrace.probe.craft import build_probe
from ipsotrace.probe.match import match
from ipsotrace.probe.model import LOCAL_ERROR, TIMEOUT, Event, Outcome, OverlayTarget, ProbeRequest
from ipsotrace.probe.network import Network, ProbeError

Clock = Callable[[], float]


class Algorithm(Protocol):
    """A probing state machine."""

    @property
    def done(self) -> bool: ...

    def poll(self, now: float) -> tuple[list[ProbeRequest], float | None]:
        """Probes to send now, and when to be polled again if nothing else happens (None: on the next outcome)."""
        ...

    def feed(self, outcome: Outcome) -> None: ...


@dataclass(slots=True)
class _Pending:
    request: ProbeRequest
    probe_id: int
    sent_at: float
    deadline: float


@dataclass(frozen=True, slots=True)
class Pacing:
    pps: float = 50.0  # at most this many probes per second, all flows together

    @property
    def interval(self) -> float:
        return 1.0 / self.pps if self.pps > 0 else 0.0


class Engine:
    """Sends the probes of one target and reports their outcomes."""

    def __init__(
        self,
        network: Network,
        target: OverlayTarget,
        *,
        pacing: Pacing | None = None,
        on_event: Callable[[Event], None] | None = None,
        clock: Clock = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self.network = network
        self.target = target
        self.pacing = pacing or Pacing()
        self.on_event = on_event
        self.clock = clock
        self._next_id = (rng or random.Random()).randrange(1, 0xFFFF)
        self._pending: dict[int, _Pending] = {}
        self._last_send = float("-inf")
        self._cfg = DissectConfig.from_overrides({target.dport: "vxlan"})
        self.sent = 0
        self.arp_mac: str | None = None
        self._dirty = True

    def set_target(self, target: OverlayTarget) -> None:
        self.target = target

    def _new_id(self) -> int:
        while True:
            pid = self._next_id
            self._next_id = self._next_id % 0xFFFF + 1  # 16-bit, never 0 (the kernel would fill it in)
            if pid not in self._pending:
                return pid

    def run(self, algo: Algorithm, *, deadline: float | None = None) -> None:
        """Drive ``algo`` until it is done (or ``deadline``, monotonic seconds)."""
        queue: list[ProbeRequest] = []
        wake: float | None = None
        self._dirty = True
        while not algo.done:
            now = self.clock()
            if deadline is not None and now >= deadline:
                return
            if not queue and (self._dirty or (wake is not None and now >= wake)):
                self._dirty = False
                reqs, wake = algo.poll(now)
                queue = list(reqs)
                if algo.done and not queue:
                    break
            if queue and now - self._last_send >= self.pacing.interval - 1e-9:
                self._send(queue.pop(0), algo)
                continue
            if not queue and not self._pending and wake is None and not self._dirty:
                raise ProbeError("internal: the algorithm is waiting for nothing")
            if self._dirty and not queue:
                continue
            until = min(
                [p.deadline for p in self._pending.values()]
                + ([self._last_send + self.pacing.interval] if queue else [])
                + ([wake] if wake is not None and not queue else [])
                + ([deadline] if deadline is not None else [])
                + [now + 1.0]
            )
            for rx in self.network.recv(max(until, now)):
                self._receive(rx.data, rx.linktype, rx.ts, algo)
            now = self.clock()
            for pid, p in sorted(self._pending.items(), key=lambda kv: kv[1].deadline):
                if p.deadline <= now:
                    del self._pending[pid]
                    self._deliver(algo, Outcome(p.request, pid, TIMEOUT, p.sent_at))

    def _send(self, req: ProbeRequest, algo: Algorithm) -> None:
        pid = self._new_id()
        raw = build_probe(self.target, req, pid)
        try:
            ts = self.network.send(raw, self.target.vtep)
        except OSError as exc:
            if exc.errno in (errno.EPERM, errno.EACCES):
                raise ProbeError(f"sending to {self.target.vtep} not permitted: {exc.strerror}") from None
            now = self.clock()
            self._last_send = now
            self._deliver(
                algo, Outcome(req, pid, LOCAL_ERROR, now, evidence={"errno": exc.errno, "error": exc.strerror})
            )
            return
        self._last_send = ts
        self.sent += 1
        self._pending[pid] = _Pending(req, pid, ts, ts + req.timeout)
        self._emit(Event("sent", pid, req))

    def _receive(self, data: bytes, linktype: int, ts: float, algo: Algorithm) -> None:
        pkt = dissect_frame(data, linktype, self._cfg)
        m = match(pkt, self.target)
        if m is None:
            return
        if m.kind == "arp":
            self.arp_mac = m.mac
            for pid, p in list(self._pending.items()):
                if p.request.kind == "arp":
                    del self._pending[pid]
                    rtt = (ts - p.sent_at) * 1000
                    self._deliver(
                        algo, Outcome(p.request, pid, "arp", p.sent_at, rtt, m.address, evidence={"mac": m.mac})
                    )
            return
        if m.probe_id is None:
            return
        pend = self._pending.get(m.probe_id)
        if pend is None:
            return  # late (already timed out), a duplicate copy, or somebody else's
        if m.sport is not None and m.sport != pend.request.sport:
            return  # the quote names another flow: not our probe after all
        del self._pending[m.probe_id]
        rtt = max(0.0, (ts - pend.sent_at) * 1000)
        self._deliver(
            algo,
            Outcome(pend.request, m.probe_id, m.kind, pend.sent_at, rtt, m.address, m.mtu, m.code, dict(m.evidence)),
        )

    def _deliver(self, algo: Algorithm, outcome: Outcome) -> None:
        self._dirty = True
        self._emit(Event("outcome", outcome.probe_id, outcome.request, outcome))
        algo.feed(outcome)

    def _emit(self, ev: Event) -> None:
        if self.on_event is not None:
            self.on_event(ev)
