"""Probe timeouts from measured round-trip times, with exponential backoff on retries.

Backoff matters beyond congestion: Linux routers rate-limit ICMP errors per
destination (``net.ipv4.icmp_ratelimit``: a burst of 6, then one per second), so
a retry must eventually wait long enough for the router's token bucket to refill.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field


@dataclass(slots=True)
class RttEstimator:
    ceiling: float = 2.0  # the user's --timeout: never wait longer for one probe
    floor: float = 0.1
    initial: float = 1.0
    samples: deque[float] = field(default_factory=lambda: deque(maxlen=32))

    def add(self, rtt_ms: float) -> None:
        self.samples.append(rtt_ms / 1000.0)

    def base(self) -> float:
        if not self.samples:
            return min(self.initial, self.ceiling)
        return min(self.ceiling, max(self.floor, 4 * max(self.samples) + 0.05))

    def timeout(self, attempt: int = 0) -> float:
        return min(self.ceiling, self.base() * (2 ** max(0, attempt)))
