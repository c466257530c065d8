"""Finding records: what is wrong, how sure, where the evidence is, what to change.

Plain data with ``to_json``; no I/O.  The JSON shape is documented in
docs/findings.md and carried by ``ipsotrace analyze --json`` as ``findings``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

Severity = Literal["info", "warning", "error"]
SEVERITY_RANK: dict[str, int] = {"error": 0, "warning": 1, "info": 2}
Confidence = Literal["high", "medium", "low"]

Ev = tuple[int, str, int]  # (ts_ns, source, frame): ordered, so min()/sorted() merge deterministically
TunnelKey = tuple[str, str, str, int | None]
PathKey = tuple[str, str, int, int, int, int]
FlowKey = tuple[str, int | None, str, str, str, int, int, int]

MAX_FRAMES = 8  # evidence frames listed per finding


@dataclass(frozen=True, slots=True)
class Spec:
    """What a finding is, independent of any capture (``ipsotrace explain ID`` prints it)."""

    id: str
    severity: Severity  # the usual severity; an instance may differ (stated in ``explanation``)
    title: str
    explanation: str
    fires_when: str
    remedy: str
    thresholds: tuple[str, ...] = ()  # "section.key" names in thresholds.toml


def tunnel_json(t: TunnelKey) -> dict[str, Any]:
    return {"encap": t[0], "src": t[1], "dst": t[2], "tunnel_id": t[3]}


def path_json(p: PathKey) -> dict[str, Any]:
    return {"src": p[0], "dst": p[1], "proto": p[2], "sport": p[3], "dport": p[4], "flow_label": p[5]}


def flow_json(f: FlowKey) -> dict[str, Any]:
    return {
        "encap": f[0],
        "tunnel_id": f[1],
        "l3": f[2],
        "src": f[3],
        "dst": f[4],
        "proto": f[5],
        "sport": f[6],
        "dport": f[7],
    }


_PROTO = {1: "icmp", 6: "tcp", 17: "udp", 47: "gre", 50: "esp", 58: "icmpv6", 132: "sctp"}


def flow_str(f: FlowKey) -> str:
    proto = _PROTO.get(f[5], str(f[5]))
    if f[5] in (6, 17, 132):
        return f"{f[0]} {f[1]}: {f[3]}:{f[6]} → {f[4]}:{f[7]} {proto}"
    return f"{f[0]} {f[1]}: {f[3]} → {f[4]} {proto}"


def tunnel_str(t: TunnelKey) -> str:
    tid = "" if t[3] is None else f" {'VNI' if t[0] in ('vxlan', 'geneve', 'vxlan-gpe') else 'ID'} {t[3]}"
    return f"{t[0]} {t[1]} → {t[2]}{tid}"


def path_str(p: PathKey) -> str:
    if p[3] or p[4]:
        return f"{p[0]}:{p[3]} → {p[1]}:{p[4]}"
    return f"{p[0]} → {p[1]}" + (f" flow label {p[5]:#x}" if p[5] else "")


@dataclass(slots=True)
class Evidence:
    frames: list[Ev] = field(default_factory=list)
    tunnels: list[TunnelKey] = field(default_factory=list)
    flows: list[FlowKey] = field(default_factory=list)
    paths: list[PathKey] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)

    def add_frames(self, evs: Iterable[Ev]) -> None:
        self.frames = sorted(set(self.frames) | set(evs))[:MAX_FRAMES]

    def to_json(self) -> dict[str, Any]:
        return {
            "frames": [{"source": s, "frame": n} for _, s, n in self.frames],
            "tunnels": [tunnel_json(t) for t in self.tunnels],
            "flows": [flow_json(f) for f in self.flows],
            "paths": [path_json(p) for p in self.paths],
            "facts": self.facts,
        }


@dataclass(slots=True)
class Finding:
    id: str
    severity: Severity
    title: str  # the one-line verdict for this capture
    detail: str  # what was measured, in network terms
    remedy: str  # concrete, computed from the data
    evidence: Evidence
    confidence: Confidence = "high"

    def sort_key(self) -> tuple[Any, ...]:
        first = self.evidence.frames[0] if self.evidence.frames else (0, "", 0)
        return (SEVERITY_RANK[self.severity], self.id, first, self.title)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "severity": self.severity,
            "confidence": self.confidence,
            "title": self.title,
            "detail": self.detail,
            "remedy": self.remedy,
            "evidence": self.evidence.to_json(),
        }
