"""Mergeable aggregates: tunnel sessions, inner flows, ICMP errors, anomalies.

Every aggregate here is plain data with an ``add``-style update done by
:class:`~ipsotrace.correlate.correlator.Correlator` and a ``merge`` that
combines two partial results (file chunks, several files) into the result one
pass over the concatenated input gives.  Merge is exact for every counter,
histogram, minimum/maximum and distinct count; the exceptions, each bounded and
documented in docs/analyze-schema.md, are flows and tunnels evicted by their caps,
paths beyond :data:`MAX_PATHS` per flow, and TCP retransmissions hidden behind more
than :data:`TCP_HEAD` new segments at the start of the later part.

``merge(a, b)`` means "b came after a" (it matters only for retransmissions).
Memory is O(tunnels + flows), both capped: per-packet facts only ever update counters.
"""

from __future__ import annotations

import heapq
from bisect import bisect_right
from dataclasses import dataclass, field
from typing import Any

from ipsotrace.correlate.distinct import Distinct

#: Version of ``ipsotrace analyze --json`` (docs/analyze-schema.md).
ANALYZE_SCHEMA = "ipsotrace.analyze/1"

#: Lower edges of the inner packet size bins (bytes of the inner IP packet).  Fixed, so histograms
#: from different runs add up exactly; the edges sit where overlay MTUs bite (1450 = 1500 - VXLAN).
SIZE_BINS: tuple[int, ...] = (0, 64, 128, 256, 512, 1024, 1280, 1401, 1451, 1501, 4097, 8501, 9001)
MAX_PATHS = 256  # outer paths kept per flow; packets on further paths are counted in paths_overflow
TCP_HEAD = 16  # leading new-data segments kept per flow to detect retransmissions across a merge
MAX_EXAMPLES = 5  # evidence frames kept per anomaly kind
DEFAULT_MAX_FLOWS = 100_000
DEFAULT_MAX_TUNNELS = 20_000  # a busy fabric has thousands of VTEP pairs x VNIs; random VNIs must not grow memory
_M32 = 0xFFFFFFFF

TunnelKey = tuple[str, str, str, int | None]  # encap, outer src, outer dst, tunnel ID (NVGRE: VSID)
# outer src, dst, IP proto, sport (the entropy: UDP source port or NVGRE FlowID), dport, IPv6 flow label
PathKey = tuple[str, str, int, int, int, int]
Via = tuple[TunnelKey, ...]  # tunnels around the flow's own tunnel (nested), outer first
FlowKey = tuple[str, int | None, str, str, str, int, int, int]  # encap, tunnel ID, l3, src, dst, proto, ports
Evidence = tuple[int, str, int]  # (ts_ns, source, frame): the earliest packet, min() merges it


def size_bin(size: int) -> int:
    return bisect_right(SIZE_BINS, size) - 1


def seq_after(a: int, b: int) -> bool:
    """TCP sequence ``a`` is after ``b`` (RFC 1982 serial arithmetic)."""
    return 0 < ((a - b) & _M32) < 0x80000000


def _add_counts(into: dict[Any, int], other: dict[Any, int]) -> None:
    for k, v in other.items():
        into[k] = into.get(k, 0) + v


def _sort_none(v: int | None) -> int:
    return -1 if v is None else v


def _ts(ns: int) -> float:
    return ns / 1e9


def _hist_json(d: dict[int, int]) -> dict[str, int]:
    return {str(k): d[k] for k in sorted(d)}


def _pairs_json(d: dict[tuple[int, int], int]) -> list[list[int]]:
    return [[a, b, d[(a, b)]] for a, b in sorted(d)]


def _evidence_json(e: Evidence) -> dict[str, Any]:
    return {"ts": _ts(e[0]), "source": e[1], "frame": e[2]}


@dataclass(slots=True)
class TunnelStats:
    """One tunnel session: (encapsulation, outer src, outer dst, tunnel ID), any entropy port."""

    first: Evidence
    last_ns: int
    packets: int = 0
    bytes: int = 0  # outer IP packet lengths
    max_size: int = 0
    entropy_ports: Distinct = field(default_factory=Distinct)  # outer UDP source ports, NVGRE FlowIDs
    inner_flows: Distinct = field(default_factory=Distinct)  # hashes of inner flow keys
    ttl: dict[int, int] = field(default_factory=dict)  # outer TTL / hop limit → packets
    dscp: dict[int, int] = field(default_factory=dict)
    ecn: dict[int, int] = field(default_factory=dict)
    depths: int = 0  # bit d set: seen at nesting level d (0: outermost tunnel)

    def merge(self, o: TunnelStats) -> None:
        self.first = min(self.first, o.first)
        self.last_ns = max(self.last_ns, o.last_ns)
        self.packets += o.packets
        self.bytes += o.bytes
        self.max_size = max(self.max_size, o.max_size)
        self.entropy_ports.merge(o.entropy_ports)
        self.inner_flows.merge(o.inner_flows)
        _add_counts(self.ttl, o.ttl)
        _add_counts(self.dscp, o.dscp)
        _add_counts(self.ecn, o.ecn)
        self.depths |= o.depths

    def to_json(self, key: TunnelKey) -> dict[str, Any]:
        encap, src, dst, tid = key
        return {
            "encap": encap,
            "src": src,
            "dst": dst,
            "tunnel_id": tid,
            "packets": self.packets,
            "bytes": self.bytes,
            "max_size": self.max_size,
            "first": _evidence_json(self.first),
            "last_ts": _ts(self.last_ns),
            "entropy_ports": self.entropy_ports.count(),
            "entropy_ports_exact": self.entropy_ports.exact,
            "inner_flows": self.inner_flows.count(),
            "inner_flows_exact": self.inner_flows.exact,
            "nesting": [d for d in range(self.depths.bit_length()) if self.depths >> d & 1],
            "ttl": _hist_json(self.ttl),
            "dscp": _hist_json(self.dscp),
            "ecn": _hist_json(self.ecn),
        }


@dataclass(slots=True)
class PathStats:
    """An inner flow's packets over one outer 5-tuple (its underlay path key)."""

    first_ns: int
    last_ns: int
    packets: int = 0
    bytes: int = 0
    retransmissions: int = 0

    def merge(self, o: PathStats) -> None:
        self.first_ns = min(self.first_ns, o.first_ns)
        self.last_ns = max(self.last_ns, o.last_ns)
        self.packets += o.packets
        self.bytes += o.bytes
        self.retransmissions += o.retransmissions


@dataclass(slots=True)
class FlowStats:
    """One inner flow, (encapsulation, tunnel ID, inner 5-tuple), in one direction."""

    first: Evidence
    last_ns: int
    packets: int = 0
    bytes: int = 0  # inner IP packet lengths
    sizes: list[int] = field(default_factory=lambda: [0] * len(SIZE_BINS))
    min_size: int = 1 << 62
    max_size: int = 0
    max_size_df: int = 0  # largest inner packet that may not be fragmented (IPv4 DF, any IPv6)
    fragments: int = 0
    ttl: dict[int, int] = field(default_factory=dict)  # inner TTL → packets
    dscp_pairs: dict[tuple[int, int], int] = field(default_factory=dict)  # (inner, outer) → packets
    ecn_pairs: dict[tuple[int, int], int] = field(default_factory=dict)
    paths: dict[tuple[PathKey, Via], PathStats] = field(default_factory=dict)
    paths_overflow: int = 0
    tcp_flags: int = 0  # OR of every TCP flag seen
    syns: int = 0  # SYN without ACK
    mss_min: int = 0
    mss_max: int = 0
    retransmissions: int = 0
    tcp_next: int | None = None  # highest sequence end seen (serial arithmetic)
    tcp_head: list[tuple[int, tuple[PathKey, Via]]] = field(default_factory=list)
    tcp_head_full: bool = False

    def add_tcp(
        self, flags: int, seq: int, seglen: int, mss: int, path: tuple[PathKey, Via], ps: PathStats | None
    ) -> None:
        self.tcp_flags |= flags
        if flags & 0x12 == 0x02:
            self.syns += 1
        if mss:
            self.mss_min = min(self.mss_min, mss) if self.mss_min else mss
            self.mss_max = max(self.mss_max, mss)
        if seglen <= 0:
            return
        end = (seq + seglen) & _M32
        if self.tcp_next is None or seq_after(end, self.tcp_next):
            self.tcp_next = end
            if len(self.tcp_head) < TCP_HEAD:
                self.tcp_head.append((end, path))
            else:
                self.tcp_head_full = True
        else:
            self.retransmissions += 1
            if ps is not None:
                ps.retransmissions += 1

    def merge(self, o: FlowStats) -> None:
        """Fold in the same flow's statistics from input that came after this one's."""
        self.first = min(self.first, o.first)
        self.last_ns = max(self.last_ns, o.last_ns)
        self.packets += o.packets
        self.bytes += o.bytes
        self.sizes = [a + b for a, b in zip(self.sizes, o.sizes, strict=True)]
        self.min_size = min(self.min_size, o.min_size)
        self.max_size = max(self.max_size, o.max_size)
        self.max_size_df = max(self.max_size_df, o.max_size_df)
        self.fragments += o.fragments
        _add_counts(self.ttl, o.ttl)
        _add_counts(self.dscp_pairs, o.dscp_pairs)
        _add_counts(self.ecn_pairs, o.ecn_pairs)
        for pk, ps in o.paths.items():
            mine = self.paths.get(pk)
            if mine is not None:
                mine.merge(ps)
            elif len(self.paths) < MAX_PATHS:
                self.paths[pk] = PathStats(ps.first_ns, ps.last_ns, ps.packets, ps.bytes, ps.retransmissions)
            else:
                self.paths_overflow += ps.packets
        self.paths_overflow += o.paths_overflow
        self.tcp_flags |= o.tcp_flags
        self.syns += o.syns
        if o.mss_min:
            self.mss_min = min(self.mss_min, o.mss_min) if self.mss_min else o.mss_min
        self.mss_max = max(self.mss_max, o.mss_max)
        self.retransmissions += o.retransmissions
        self._merge_tcp_head(o)

    def _merge_tcp_head(self, o: FlowStats) -> None:
        # o's leading new-data segments were judged without our state: those that end at or
        # before our highest sequence are retransmissions in one pass over both parts.
        later = o.tcp_head
        if self.tcp_next is not None:
            i = 0
            while i < len(later) and not seq_after(later[i][0], self.tcp_next):
                self.retransmissions += 1
                ps = self.paths.get(later[i][1])
                if ps is not None:
                    ps.retransmissions += 1
                i += 1
            later = later[i:]
        if not self.tcp_head_full:
            room = TCP_HEAD - len(self.tcp_head)
            self.tcp_head.extend(later[:room])
            self.tcp_head_full = len(later) > room or o.tcp_head_full
        if o.tcp_next is not None and (self.tcp_next is None or seq_after(o.tcp_next, self.tcp_next)):
            self.tcp_next = o.tcp_next

    def to_json(self, key: FlowKey) -> dict[str, Any]:
        encap, tid, l3, src, dst, proto, sport, dport = key
        paths = sorted(self.paths.items(), key=lambda kv: (-kv[1].packets, repr(kv[0])))
        out: dict[str, Any] = {
            "encap": encap,
            "tunnel_id": tid,
            "l3": l3,
            "src": src,
            "dst": dst,
            "proto": proto,
            "sport": sport,
            "dport": dport,
            "packets": self.packets,
            "bytes": self.bytes,
            "first": _evidence_json(self.first),
            "last_ts": _ts(self.last_ns),
            "sizes": self.sizes,
            "min_size": self.min_size if self.packets else 0,
            "max_size": self.max_size,
            "max_size_df": self.max_size_df,
            "fragments": self.fragments,
            "ttl": _hist_json(self.ttl),
            "dscp_pairs": _pairs_json(self.dscp_pairs),
            "ecn_pairs": _pairs_json(self.ecn_pairs),
            "paths": [
                {
                    "src": pk[0],
                    "dst": pk[1],
                    "proto": pk[2],
                    "sport": pk[3],
                    "dport": pk[4],
                    "flow_label": pk[5],
                    "via": [list(t) for t in via],
                    "packets": ps.packets,
                    "bytes": ps.bytes,
                    "retransmissions": ps.retransmissions,
                    "first_ts": _ts(ps.first_ns),
                    "last_ts": _ts(ps.last_ns),
                }
                for (pk, via), ps in paths
            ],
            "paths_overflow": self.paths_overflow,
        }
        if self.tcp_flags or self.syns or proto == 6:
            out["tcp"] = {
                "flags": self.tcp_flags,
                "syns": self.syns,
                "mss_min": self.mss_min,
                "mss_max": self.mss_max,
                "retransmissions": self.retransmissions,
            }
        return out


IcmpKey = tuple[str, str, str, int, int, int, "TunnelKey | None", "PathKey | None", "FlowKey | None"]


@dataclass(slots=True)
class IcmpStats:
    """ICMP errors with one reporter, kind, MTU and quoted tunnel/path/flow."""

    first: Evidence
    last_ns: int
    count: int = 0

    def merge(self, o: IcmpStats) -> None:
        self.first = min(self.first, o.first)
        self.last_ns = max(self.last_ns, o.last_ns)
        self.count += o.count


@dataclass(slots=True)
class AnomalyStats:
    count: int = 0
    examples: list[tuple[str, int, str, int, str]] = field(default_factory=list)  # source, frame, layer, offset, detail

    def add(self, example: tuple[str, int, str, int, str]) -> None:
        self.count += 1
        # keep the smallest (source, frame): the same examples whatever order parts are merged in
        if len(self.examples) < MAX_EXAMPLES:
            self.examples.append(example)
            self.examples.sort()
        elif example < self.examples[-1]:
            self.examples[-1] = example
            self.examples.sort()

    def merge(self, o: AnomalyStats) -> None:
        self.count += o.count
        self.examples = sorted(self.examples + o.examples)[:MAX_EXAMPLES]


@dataclass(slots=True)
class SourceInfo:
    """What the caller read: the core never opens files, the CLI fills this in."""

    name: str
    format: str = ""
    frames: int = 0
    damage: str | None = None
    damage_offset: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.name,
            "format": self.format,
            "frames": self.frames,
            "damage": self.damage,
            "damage_offset": self.damage_offset,
        }


@dataclass(slots=True)
class Encap:
    packets: int = 0
    bytes: int = 0


@dataclass(slots=True)
class Aggregates:
    """Everything ``analyze`` reports, mergeable: ``a.merge(b)`` equals one pass over a then b."""

    max_flows: int = DEFAULT_MAX_FLOWS
    max_tunnels: int = DEFAULT_MAX_TUNNELS
    sources: list[SourceInfo] = field(default_factory=list)
    packets: int = 0
    bytes: int = 0  # frame lengths on the wire
    first_ns: int | None = None
    last_ns: int | None = None
    untunnelled_packets: int = 0
    untunnelled_bytes: int = 0
    encaps: dict[str, Encap] = field(default_factory=dict)  # per tunnel hop
    tunnels: dict[TunnelKey, TunnelStats] = field(default_factory=dict)
    flows: dict[FlowKey, FlowStats] = field(default_factory=dict)
    icmp: dict[IcmpKey, IcmpStats] = field(default_factory=dict)
    anomalies: dict[str, AnomalyStats] = field(default_factory=dict)
    evicted_flows: int = 0
    evicted_packets: int = 0
    evicted_bytes: int = 0
    evicted_tunnels: int = 0
    evicted_tunnel_packets: int = 0
    evicted_tunnel_bytes: int = 0
    dropped_icmp: int = 0  # ICMP error groups not kept once max_flows groups exist

    # --- merging --------------------------------------------------------------------------
    def merge(self, o: Aggregates) -> Aggregates:
        """Fold ``o`` (input that came after ours) into this result; returns self."""
        self.sources.extend(SourceInfo(s.name, s.format, s.frames, s.damage, s.damage_offset) for s in o.sources)
        self.packets += o.packets
        self.bytes += o.bytes
        if o.first_ns is not None:
            self.first_ns = o.first_ns if self.first_ns is None else min(self.first_ns, o.first_ns)
        if o.last_ns is not None:
            self.last_ns = o.last_ns if self.last_ns is None else max(self.last_ns, o.last_ns)
        self.untunnelled_packets += o.untunnelled_packets
        self.untunnelled_bytes += o.untunnelled_bytes
        for name, e in o.encaps.items():
            mine = self.encaps.setdefault(name, Encap())
            mine.packets += e.packets
            mine.bytes += e.bytes
        for tk, ts in o.tunnels.items():
            t = self.tunnels.get(tk)
            if t is None:
                self.tunnels[tk] = t = TunnelStats(ts.first, ts.last_ns)
            t.merge(ts)
        self.evicted_tunnels += o.evicted_tunnels
        self.evicted_tunnel_packets += o.evicted_tunnel_packets
        self.evicted_tunnel_bytes += o.evicted_tunnel_bytes
        self.enforce_tunnel_cap()
        for fk, fs in o.flows.items():
            f = self.flows.get(fk)
            if f is None:
                self.flows[fk] = f = FlowStats(fs.first, fs.last_ns)
            f.merge(fs)
        for ik, st in o.icmp.items():
            i = self.icmp.get(ik)
            if i is None:
                if len(self.icmp) >= self.max_flows:
                    self.dropped_icmp += st.count
                    continue
                self.icmp[ik] = i = IcmpStats(st.first, st.last_ns)
            i.merge(st)
        self.dropped_icmp += o.dropped_icmp
        for kind, an in o.anomalies.items():
            self.anomalies.setdefault(kind, AnomalyStats()).merge(an)
        self.evicted_flows += o.evicted_flows
        self.evicted_packets += o.evicted_packets
        self.evicted_bytes += o.evicted_bytes
        self.enforce_flow_cap()
        return self

    def enforce_flow_cap(self, room: int = 0) -> None:
        """Evict the least active flows so that at most ``max_flows - room`` remain.

        A tenth of the cap goes at once so the cost per new flow stays O(log n); the victims
        are the flows with the fewest packets, then the longest idle.
        """
        excess = len(self.flows) - (self.max_flows - room)
        if excess <= 0:
            return
        n = max(excess, self.max_flows // 10, 1)
        victims = heapq.nsmallest(n, self.flows.items(), key=lambda kv: (kv[1].packets, kv[1].last_ns, kv[1].first))
        for fk, fs in victims:
            del self.flows[fk]
            self.evicted_flows += 1
            self.evicted_packets += fs.packets
            self.evicted_bytes += fs.bytes

    def enforce_tunnel_cap(self, room: int = 0) -> None:
        """As :meth:`enforce_flow_cap`, for tunnel sessions: at most ``max_tunnels - room`` remain."""
        excess = len(self.tunnels) - (self.max_tunnels - room)
        if excess <= 0:
            return
        n = max(excess, self.max_tunnels // 10, 1)
        victims = heapq.nsmallest(n, self.tunnels.items(), key=lambda kv: (kv[1].packets, kv[1].last_ns, kv[1].first))
        for tk, ts in victims:
            del self.tunnels[tk]
            self.evicted_tunnels += 1
            self.evicted_tunnel_packets += ts.packets
            self.evicted_tunnel_bytes += ts.bytes

    # --- output ---------------------------------------------------------------------------
    def sorted_tunnels(self) -> list[tuple[TunnelKey, TunnelStats]]:
        return sorted(
            self.tunnels.items(),
            key=lambda kv: (-kv[1].bytes, kv[0][0], kv[0][1], kv[0][2], _sort_none(kv[0][3])),
        )

    def sorted_flows(self) -> list[tuple[FlowKey, FlowStats]]:
        return sorted(self.flows.items(), key=lambda kv: (-kv[1].bytes, -kv[1].packets, repr(kv[0])))

    def tenants(self) -> list[tuple[str, int | None]]:
        # a tenant is a tunnel ID (VNI, key, TEID...): IP-in-IP and ID-less GRE name none
        return sorted({(k[0], k[3]) for k in self.tunnels if k[3] is not None}, key=lambda t: (t[0], _sort_none(t[1])))

    def icmp_json(self) -> list[dict[str, Any]]:
        by_pair: dict[tuple[str, str], list[TunnelKey]] = {}
        for tk in self.tunnels:
            by_pair.setdefault((tk[1], tk[2]), []).append(tk)
        by_path: dict[PathKey, list[FlowKey]] | None = None  # built once, when a quote names only a path
        out = []
        items = sorted(self.icmp.items(), key=lambda kv: (-kv[1].count, repr(kv[0])))
        for (reporter, proto, kind, itype, code, mtu, qtunnel, qpath, qflow), st in items:
            if qtunnel is not None:
                tied_t = [qtunnel] if qtunnel in self.tunnels else []
            elif qpath is not None:
                # a quote cut before the tunnel header still names the outer addresses
                tied_t = sorted(by_pair.get((qpath[0], qpath[1]), []), key=repr)
            else:
                tied_t = []
            if qflow is not None:
                tied_f = [qflow] if qflow in self.flows else []
            elif qpath is not None:
                if by_path is None:
                    by_path = {}
                    for fk, fs in self.flows.items():
                        for pk in {p[0] for p in fs.paths}:
                            by_path.setdefault(pk, []).append(fk)
                tied_f = sorted(by_path.get(qpath, ()), key=repr)
            else:
                tied_f = []
            out.append(
                {
                    "reporter": reporter,
                    "proto": proto,
                    "kind": kind,
                    "type": itype,
                    "code": code,
                    "mtu": mtu,
                    "count": st.count,
                    "first": _evidence_json(st.first),
                    "last_ts": _ts(st.last_ns),
                    "quoted_tunnel": list(qtunnel) if qtunnel else None,
                    "quoted_path": list(qpath) if qpath else None,
                    "quoted_flow": list(qflow) if qflow else None,
                    "tunnels": [list(t) for t in tied_t],
                    "flows": [list(f) for f in tied_f],
                }
            )
        return out

    def to_json(self) -> dict[str, Any]:
        span = (self.last_ns - self.first_ns) / 1e9 if self.first_ns is not None and self.last_ns is not None else 0.0
        return {
            "schema": ANALYZE_SCHEMA,
            "sources": [s.to_json() for s in self.sources],
            "packets": self.packets,
            "bytes": self.bytes,
            "time": {
                "first": None if self.first_ns is None else _ts(self.first_ns),
                "last": None if self.last_ns is None else _ts(self.last_ns),
                "span_s": span,
            },
            "summary": {
                "tunnelled_packets": self.packets - self.untunnelled_packets,
                "untunnelled_packets": self.untunnelled_packets,
                "untunnelled_bytes": self.untunnelled_bytes,
                "encapsulations": {k: {"packets": e.packets, "bytes": e.bytes} for k, e in sorted(self.encaps.items())},
                "tunnels": len(self.tunnels),
                "tenants": [[e, t] for e, t in self.tenants()],
                "flows": len(self.flows),
            },
            "max_flows": self.max_flows,
            "evicted_flows": {
                "flows": self.evicted_flows,
                "packets": self.evicted_packets,
                "bytes": self.evicted_bytes,
            },
            "max_tunnels": self.max_tunnels,
            "evicted_tunnels": {
                "tunnels": self.evicted_tunnels,
                "packets": self.evicted_tunnel_packets,
                "bytes": self.evicted_tunnel_bytes,
            },
            "size_bins": list(SIZE_BINS),
            "tunnels": [ts.to_json(tk) for tk, ts in self.sorted_tunnels()],
            "flows": [fs.to_json(fk) for fk, fs in self.sorted_flows()],
            "icmp_errors": self.icmp_json(),
            "dropped_icmp_errors": self.dropped_icmp,
            "anomalies": [
                {
                    "kind": kind,
                    "count": an.count,
                    "examples": [
                        {"source": s, "frame": fr, "layer": ly, "offset": off, "detail": d}
                        for s, fr, ly, off, d in an.examples
                    ],
                }
                for kind, an in sorted(self.anomalies.items(), key=lambda kv: (-kv[1].count, kv[0]))
            ],
        }
