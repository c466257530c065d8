"""Overlay ping per ECMP path: loss, RTT min/avg/max/mdev and jitter, one flow (source port) per path."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Any

from ipsotrace.probe.model import REPLY, Outcome, OverlayTarget, ProbeRequest


@dataclass(slots=True)
class _PathStats:
    sport: int
    sent: int = 0
    received: int = 0
    rtts: dict[int, float] = field(default_factory=dict)  # round → rtt ms
    errors: dict[str, int] = field(default_factory=dict)  # ICMP errors instead of replies (kind → count)


@dataclass(frozen=True, slots=True)
class PingStats:
    sport: int
    sent: int
    received: int
    loss_pct: float
    rtt_min_ms: float | None
    rtt_avg_ms: float | None
    rtt_max_ms: float | None
    rtt_mdev_ms: float | None
    jitter_ms: float | None
    errors: dict[str, int]

    def to_json(self) -> dict[str, Any]:
        def r(v: float | None) -> float | None:
            return None if v is None else round(v, 3)

        return {
            "sport": self.sport,
            "sent": self.sent,
            "received": self.received,
            "loss_pct": round(self.loss_pct, 2),
            "rtt_min_ms": r(self.rtt_min_ms),
            "rtt_avg_ms": r(self.rtt_avg_ms),
            "rtt_max_ms": r(self.rtt_max_ms),
            "rtt_mdev_ms": r(self.rtt_mdev_ms),
            "jitter_ms": r(self.jitter_ms),
            "errors": self.errors,
        }


class PingAlgo:
    """Every ``interval`` seconds one probe per source port, ``count`` rounds, then wait for the stragglers."""

    def __init__(
        self,
        target: OverlayTarget,
        sports: list[int],
        *,
        count: int = 10,
        interval: float = 1.0,
        size: int = 0,
        timeout: float = 2.0,
    ) -> None:
        self.target = target
        self.stats = {s: _PathStats(s) for s in sports}
        self.count = count
        self.interval = interval
        self.size = size
        self.timeout = timeout
        self.round = 0
        self._next_at: float | None = None
        self._outstanding = 0

    @property
    def done(self) -> bool:
        return self.round >= self.count and self._outstanding == 0

    def poll(self, now: float) -> tuple[list[ProbeRequest], float | None]:
        if self.round >= self.count:
            return [], None
        if self._next_at is None:
            self._next_at = now
        if now < self._next_at:
            return [], self._next_at
        reqs = [
            ProbeRequest(sport=s, size=self.size, timeout=self.timeout, tag=("ping", s, self.round)) for s in self.stats
        ]
        for s in self.stats.values():
            s.sent += 1
        self._outstanding += len(reqs)
        self.round += 1
        self._next_at += self.interval
        return reqs, (self._next_at if self.round < self.count else None)

    def feed(self, o: Outcome) -> None:
        tag = o.request.tag
        if not isinstance(tag, tuple) or tag[0] != "ping":
            return
        self._outstanding -= 1
        st = self.stats[tag[1]]
        if o.kind == REPLY and o.rtt_ms is not None:
            st.received += 1
            st.rtts[tag[2]] = o.rtt_ms
        elif o.kind != "timeout":
            st.errors[o.kind] = st.errors.get(o.kind, 0) + 1

    def result(self) -> list[PingStats]:
        out = []
        for st in self.stats.values():
            rtts = [st.rtts[k] for k in sorted(st.rtts)]
            if rtts:
                avg = sum(rtts) / len(rtts)
                mdev = math.sqrt(max(0.0, sum(r * r for r in rtts) / len(rtts) - avg * avg))
                jitter = (
                    sum(abs(b - a) for a, b in itertools.pairwise(rtts)) / (len(rtts) - 1) if len(rtts) > 1 else 0.0
                )
                mn, mx = min(rtts), max(rtts)
            else:
                avg = mdev = jitter = mn = mx = None  # type: ignore[assignment]
            loss = 100.0 * (st.sent - st.received) / st.sent if st.sent else 0.0
            out.append(PingStats(st.sport, st.sent, st.received, loss, mn, avg, mx, mdev, jitter, dict(st.errors)))
        return out
