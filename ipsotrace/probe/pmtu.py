"""Path MTU of one ECMP path, RFC 8899 style, with black-hole detection and location.

Every probe of a path uses that path's own outer source port, so it measures the
path and not a neighbour.  Sizes are outer IPv4 total lengths with DF set.

1. *Floor*: a probe at the bottom of the range (1200) must cross; if it vanishes,
   the smallest probe tells "unreachable" from "black hole below the range".
2. *Search*: the top of the range (the local interface MTU, at most 9216) first,
   then bisection between the largest size that crossed and the smallest that
   did not.  A PTB is a hint (RFC 8899 §4.6.2): its MTU is probed next and
   trusted only once a probe of that size crossed.  A size that gets neither a
   reply nor a PTB after ``tries`` attempts is *silent*.
3. *Confirm*: when the smallest failing size is silent, it is probed again with
   growing timeouts (outlasting ICMP rate limits and random loss).  A reply
   means it was loss (the search resumes); a PTB means the router was only rate
   limited; still silent means a **black hole**.
4. *Locate*: big probes with TTL 1, 2, … : the last router that answers time
   exceeded received the big packet; the next hop never did.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ipsotrace.probe.craft import min_size, overhead
from ipsotrace.probe.model import (
    FRAG_NEEDED,
    LOCAL_ERROR,
    REPLY,
    TIME_EXCEEDED,
    TIMEOUT,
    UNREACHABLE,
    Outcome,
    OverlayTarget,
    ProbeRequest,
)
from ipsotrace.probe.timing import RttEstimator

RANGE = (1200, 9216)


@dataclass(frozen=True, slots=True)
class PmtuResult:
    sport: int
    underlay_mtu: int | None  # largest outer IPv4 packet that crossed with DF
    overlay_mtu: int | None  # largest inner IP packet that crossed
    overhead: int
    accuracy: int  # the true PMTU is in [underlay_mtu, underlay_mtu + accuracy]
    blackhole: bool
    blackhole_at: dict[str, Any] | None
    ptbs: tuple[dict[str, Any], ...]
    probes: int
    elapsed_s: float
    status: str  # ok | unreachable | budget
    notes: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "sport": self.sport,
            "underlay_mtu": self.underlay_mtu,
            "overlay_mtu": self.overlay_mtu,
            "overhead": self.overhead,
            "recommended_inner_mtu": self.overlay_mtu,
            "recommended_tcp_mss": None if self.overlay_mtu is None else self.overlay_mtu - 40,
            "accuracy": self.accuracy,
            "blackhole": self.blackhole,
            "blackhole_at": self.blackhole_at,
            "ptbs": list(self.ptbs),
            "probes": self.probes,
            "elapsed_s": round(self.elapsed_s, 3),
            "status": self.status,
            "notes": list(self.notes),
        }


@dataclass(slots=True)
class _Attempt:
    size: int
    ttl: int = 64
    tries: int = 0


class PmtuAlgo:
    """The state machine described in the module docstring, for one path (one source port)."""

    def __init__(
        self,
        target: OverlayTarget,
        sport: int,
        *,
        lo: int = RANGE[0],
        hi: int = RANGE[1],
        precision: int = 1,
        tries: int = 2,
        confirm: int = 3,
        locate_tries: int = 3,
        max_probes: int = 40,
        hops: list[str | None] | None = None,
        rtt: RttEstimator | None = None,
        timeout: float = 2.0,
    ) -> None:
        self.target = target
        self.sport = sport
        self.overhead = overhead(target)
        self.smallest = min_size(target)
        self.cap = min(hi, target.local_mtu)
        self.lo = min(max(lo, self.smallest), self.cap)
        self.precision = max(1, precision)
        self.tries, self.confirm, self.locate_tries = tries, confirm, locate_tries
        self.max_probes = max_probes
        self.hops = hops
        self.rtt = rtt or RttEstimator(ceiling=timeout)
        self.lo_ok: int | None = None
        self.bad: dict[int, str] = {}  # size → ptb | silent | local
        self.hint: int | None = None
        self.ptbs: list[dict[str, Any]] = []
        self.notes: list[str] = []
        self.probes = 0
        self.phase = "floor"
        self.cur: _Attempt | None = _Attempt(self.lo)
        self.blackhole = False
        self.blackhole_at: dict[str, Any] | None = None
        self.status = "ok"
        self._waiting = False
        self._tried_top = False
        self._last_seen: tuple[int, str] | None = None

    @property
    def done(self) -> bool:
        return self.phase == "done"

    # --- the Algorithm protocol ----------------------------------------------------------

    def poll(self, now: float) -> tuple[list[ProbeRequest], float | None]:
        if self._waiting or self.done:
            return [], None
        if self.cur is None:
            self._next()
            if self.done or self.cur is None:
                return [], None
        if self.probes >= self.max_probes:
            self.status = "budget"
            self.notes.append(f"probe budget of {self.max_probes} spent")
            self.phase = "done"
            return [], None
        a = self.cur
        attempt = a.tries + (1 if self.phase == "confirm" else 0)
        self._waiting = True
        self.probes += 1
        req = ProbeRequest(
            sport=self.sport, ttl=a.ttl, size=a.size, timeout=self.rtt.timeout(attempt), tag=(self.phase, a.size, a.ttl)
        )
        return [req], None

    def feed(self, o: Outcome) -> None:
        self._waiting = False
        a = self.cur
        if a is None or o.request.tag != (self.phase, a.size, a.ttl):
            return
        if o.rtt_ms is not None and o.kind in (REPLY, TIME_EXCEEDED):
            self.rtt.add(o.rtt_ms)
        if self.phase == "locate":
            self._feed_locate(a, o)
            return
        size = a.size
        if o.kind == REPLY:
            self._passed(size)
            self.cur = None
        elif o.kind == FRAG_NEEDED:
            self._ptb(size, o)
            self.cur = None
        elif o.kind == LOCAL_ERROR:
            self.cap = min(self.cap, size - 1)
            self.bad[size] = "local"
            self.notes.append(f"the local interface refused {size} bytes ({o.evidence.get('error')})")
            self.cur = None
        elif o.kind == UNREACHABLE:
            self.status = "unreachable"
            self.notes.append(f"{o.address} answered destination unreachable (code {o.code})")
            self.phase = "done"
        else:  # timeout, or time exceeded for a TTL-64 probe (a forwarding loop)
            a.tries += 1
            limit = self.confirm if self.phase == "confirm" else self.tries
            if a.tries < limit:
                return
            self.cur = None
            if self.phase == "floor":
                if size > self.smallest:
                    self.bad[size] = "silent"
                    self.cur = _Attempt(self.smallest)
                    self.phase = "floor-min"
                    return
                self.status = "unreachable"
                self.notes.append("even the smallest probe got no answer: wrong VNI, VTEP or inner address?")
                self.phase = "done"
                return
            if self.phase == "floor-min":
                self.status = "unreachable"
                self.notes.append("even the smallest probe got no answer: wrong VNI, VTEP or inner address?")
                self.phase = "done"
                return
            if self.phase == "confirm":
                self.blackhole = True
                self.phase = "locate"
                self.cur = _Attempt(size, ttl=1)
                return
            self.bad[size] = "silent"

    # --- search --------------------------------------------------------------------------

    def _passed(self, size: int) -> None:
        if self.lo_ok is None or size > self.lo_ok:
            self.lo_ok = size
        for s in [s for s in self.bad if s <= size]:
            # it crossed now: the earlier failure was loss (or a PTB claim that was wrong)
            del self.bad[s]
        if self.phase in ("floor", "floor-min", "confirm"):
            self.phase = "search"

    def _ptb(self, size: int, o: Outcome) -> None:
        m = o.mtu or 0
        self.ptbs.append({"from": o.address, "mtu": m, "probe_size": size, "rtt_ms": _r(o.rtt_ms), **o.evidence})
        self.bad[size] = "ptb"
        if self.lo_ok is not None and m < self.lo_ok:
            self.notes.append(f"PTB from {o.address} claims MTU {m}, but {self.lo_ok} bytes crossed: ignored")
        elif 68 <= m < size:
            if self.lo_ok is None or m > self.lo_ok:
                self.hint = m
            self.bad[m + 1] = "ptb"
        if self.phase in ("floor", "floor-min", "confirm"):
            self.phase = "search"
        if self.phase == "search" and self.lo_ok is None:
            self.cur = _Attempt(max(self.smallest, min(self.hint or self.smallest, size - 1)))
            self.phase = "floor-min" if self.cur.size == self.smallest else "floor"

    def _hi_bad(self) -> int:
        lo = self.lo_ok or 0
        return min([s for s in self.bad if s > lo], default=self.cap + 1)

    def _next(self) -> None:
        if self.phase in ("floor", "floor-min"):
            return
        lo = self.lo_ok
        if lo is None:
            self.phase = "done"
            return
        hi = self._hi_bad()
        # keep enough of the budget to confirm and locate a black hole: settle for ±8 then
        short = self.probes >= self.max_probes - (self.confirm + self.locate_tries + 2)
        if hi - lo <= self.precision or (short and hi - lo <= 9):
            if self.bad.get(hi) == "silent":
                self.phase = "confirm"
                self.cur = _Attempt(hi)
                return
            self.phase = "done"
            return
        if self.hint is not None and lo < self.hint < hi:
            size, self.hint = self.hint, None
        elif not self._tried_top and self.cap > lo:
            size = self.cap
        else:
            size = (lo + hi) // 2
        self._tried_top = True
        self.hint = None
        self.cur = _Attempt(size)

    # --- locate ----------------------------------------------------------------------------

    def _feed_locate(self, a: _Attempt, o: Outcome) -> None:
        if o.kind == TIME_EXCEEDED and o.address:
            self._last_seen = (a.ttl, o.address)
            limit = len(self.hops) - 1 if self.hops else 32
            if a.ttl >= limit:
                self._located(a.ttl + 1)
                return
            self.cur = _Attempt(a.size, ttl=a.ttl + 1)
            return
        if o.kind == TIMEOUT:
            a.tries += 1
            if a.tries < self.locate_tries:
                return
        self._located(a.ttl)

    def _located(self, missing_ttl: int) -> None:
        expected = None
        if self.hops and 0 < missing_ttl <= len(self.hops):
            expected = self.hops[missing_ttl - 1]
        last = self._last_seen
        self.blackhole_at = {
            "size": self._hi_bad(),
            "last_hop_reached": None if last is None else {"ttl": last[0], "address": last[1]},
            "first_hop_not_reached": {"ttl": missing_ttl, "address": expected},
            "culprit": last[1] if last else self.target.local,
        }
        self.phase = "done"
        self.cur = None

    # --- snapshot ----------------------------------------------------------------------------

    def result(self, elapsed_s: float = 0.0) -> PmtuResult:
        lo = self.lo_ok
        hi = self._hi_bad()
        return PmtuResult(
            sport=self.sport,
            underlay_mtu=lo,
            overlay_mtu=None if lo is None else lo - self.overhead,
            overhead=self.overhead,
            accuracy=0 if lo is None else hi - lo - 1,
            blackhole=self.blackhole,
            blackhole_at=self.blackhole_at,
            ptbs=tuple(self.ptbs),
            probes=self.probes,
            elapsed_s=elapsed_s,
            status=self.status,
            notes=tuple(self.notes),
        )


def _r(v: float | None) -> float | None:
    return None if v is None else round(v, 3)
