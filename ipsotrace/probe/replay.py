"""``--replay-flow FILE:FLOWSPEC``: find the outer source port a captured inner flow rode on.

FLOWSPEC is comma-separated ``key=value`` pairs, all optional but at least one::

    vni=100,src=203.0.113.1,dst=203.0.113.2,proto=icmp,sport=..,dport=..

``src``/``dst`` are the *inner* addresses (direction matters: the probe follows
the direction given), ``proto`` is ``icmp``, ``tcp``, ``udp`` or a number,
``sport``/``dport`` the inner ports.  The flow key is the one ``ipsotrace
analyze`` uses (encapsulation, tunnel ID, inner 5-tuple, from
:func:`ipsotrace.correlate.extract.view`).  Only packets whose outer
destination is the VTEP being probed count.  When the flow moved between
outer ports (Linux re-draws the entropy port after a TCP retransmission
timeout), every port it used is traced, in order of last use: the ports it
was stuck on and the one it ended up on are then told apart by their paths.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from pathlib import Path

from ipsotrace.correlate.extract import view
from ipsotrace.decode import decode
from ipsotrace.probe.network import ProbeError
from ipsotrace.sources import CaptureError, CaptureFile

PROTOS = {"icmp": 1, "tcp": 6, "udp": 17, "sctp": 132, "icmpv6": 58}
KEYS = ("vni", "src", "dst", "proto", "sport", "dport")
_SPLIT = re.compile(r"^(?P<file>.+?):(?P<spec>(?:" + "|".join(KEYS) + r")=.*)$")


@dataclass(frozen=True, slots=True)
class FlowSpec:
    vni: int | None = None
    src: str | None = None
    dst: str | None = None
    proto: int | None = None
    sport: int | None = None
    dport: int | None = None

    def __str__(self) -> str:
        return ",".join(f"{k}={getattr(self, k)}" for k in KEYS if getattr(self, k) is not None)


def parse_replay(arg: str) -> tuple[Path, FlowSpec]:
    m = _SPLIT.match(arg)
    if m is None:
        raise ProbeError(f"--replay-flow {arg!r}: expected FILE:key=value,... (e.g. cap.pcap:vni=100,src=…,dst=…)")
    return Path(m.group("file")), parse_flowspec(m.group("spec"))


def parse_flowspec(spec: str) -> FlowSpec:
    values: dict[str, int | str] = {}
    for part in spec.split(","):
        key, sep, val = part.strip().partition("=")
        if not sep or key not in KEYS:
            raise ProbeError(f"flow spec item {part!r}: use {', '.join(k + '=' for k in KEYS)}")
        val = val.strip()
        try:
            if key in ("src", "dst"):
                values[key] = str(ipaddress.ip_address(val))
            elif key == "proto":
                values[key] = PROTOS[val.lower()] if val.lower() in PROTOS else int(val)
            else:
                values[key] = int(val, 0)
        except (ValueError, KeyError):
            raise ProbeError(f"flow spec item {part!r}: bad value") from None
    if not values:
        raise ProbeError("empty flow spec")
    return FlowSpec(**values)  # type: ignore[arg-type]


@dataclass(slots=True)
class ReplayFlow:
    spec: FlowSpec
    sport: int
    packets: int
    #: every outer source port the flow used toward the VTEP, with its packet count, in order of last use
    sports: dict[int, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, object]:
        return {"flow": str(self.spec), "sport": self.sport, "packets": self.packets, "sports_seen": self.sports}


def find_flow(path: Path, spec: FlowSpec, vtep: str, dport: int = 4789) -> ReplayFlow:
    seen: dict[int, int] = {}
    last: int | None = None
    total = 0
    try:
        with CaptureFile(path) as cap:
            for pkt in decode(cap):
                v = view(pkt)
                if not v.hops or v.icmp is not None:
                    continue
                hop, inner = v.hops[-1], v.inner
                if hop.dst != vtep or hop.dport != dport or hop.sport == 0:
                    continue
                if spec.vni is not None and hop.tunnel_id != spec.vni:
                    continue
                if spec.src is not None and inner.src != spec.src:
                    continue
                if spec.dst is not None and inner.dst != spec.dst:
                    continue
                if spec.proto is not None and inner.proto != spec.proto:
                    continue
                if inner.proto not in (1, 58):  # ICMP "ports" are type/code: not part of a flow spec
                    if spec.sport is not None and inner.sport != spec.sport:
                        continue
                    if spec.dport is not None and inner.dport != spec.dport:
                        continue
                total += 1
                seen[hop.sport] = seen.pop(hop.sport, 0) + 1  # re-insert: dict order = order of last use
                last = hop.sport
    except CaptureError as exc:
        raise ProbeError(f"--replay-flow: {exc}") from None
    if last is None:
        raise ProbeError(f"--replay-flow: no packet of flow {spec} toward VTEP {vtep} in {path}")
    return ReplayFlow(spec, last, total, seen)
