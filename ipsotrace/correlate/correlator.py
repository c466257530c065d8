"""The streaming correlator: packets in, :class:`Aggregates` out, no I/O.

Usage::

    corr = Correlator(max_flows=100_000)
    corr.begin_source("a.pcap")
    for pkt in decode(frames):
        corr.add(pkt)
    corr.end_source(SourceInfo("a.pcap", frames=n))
    result = corr.result  # an Aggregates; result.merge(other) combines partial results

A vectorised path produces the same aggregates by calling :meth:`Correlator.add_view`
(or updating :class:`Aggregates` directly) from column arrays: everything used per
packet is in :class:`~ipsotrace.correlate.extract.View`.
"""

from __future__ import annotations

from collections.abc import Iterable

from ipsotrace.correlate.aggregates import (
    DEFAULT_MAX_FLOWS,
    MAX_PATHS,
    Aggregates,
    AnomalyStats,
    Encap,
    FlowKey,
    FlowStats,
    IcmpKey,
    IcmpStats,
    PathStats,
    SourceInfo,
    TunnelStats,
    size_bin,
)
from ipsotrace.correlate.distinct import key_hash, mix64
from ipsotrace.correlate.extract import Hop, IcmpError, Inner, View, view
from ipsotrace.records import Packet


class Correlator:
    """Feed packets in capture order; read :attr:`result` at any time."""

    def __init__(self, max_flows: int = DEFAULT_MAX_FLOWS) -> None:
        if max_flows < 1:
            raise ValueError("max_flows must be at least 1")
        self.result = Aggregates(max_flows=max_flows)
        self.source = ""

    def begin_source(self, name: str) -> None:
        """Name the input the next packets come from (evidence says "frame N of <name>")."""
        self.source = name

    def end_source(self, info: SourceInfo) -> None:
        self.result.sources.append(info)

    def add_all(self, packets: Iterable[Packet]) -> None:
        for pkt in packets:
            self.add(pkt)

    def add(self, pkt: Packet) -> None:
        agg = self.result
        if pkt.anomalies:
            for a in pkt.anomalies:
                st = agg.anomalies.get(a.kind)
                if st is None:
                    agg.anomalies[a.kind] = st = AnomalyStats()
                st.add((self.source, pkt.frame, a.layer, a.offset, a.detail))
        self.add_view(view(pkt), pkt.ts_ns, pkt.frame, pkt.wirelen)

    def add_view(self, v: View, ts: int, frame: int, wirelen: int) -> None:
        agg = self.result
        agg.packets += 1
        agg.bytes += wirelen
        if agg.first_ns is None or ts < agg.first_ns:
            agg.first_ns = ts
        if agg.last_ns is None or ts > agg.last_ns:
            agg.last_ns = ts
        if v.icmp is not None:
            self._icmp(v.icmp, v.hops, ts, frame)
        hops = v.hops
        if not hops:
            agg.untunnelled_packets += 1
            agg.untunnelled_bytes += wirelen
            return
        for depth, hop in enumerate(hops):
            self._tunnel(hop, depth, ts, frame)
        self._flow(hops, v.inner, ts, frame)

    def _tunnel(self, hop: Hop, depth: int, ts: int, frame: int) -> None:
        agg = self.result
        e = agg.encaps.get(hop.encap)
        if e is None:
            agg.encaps[hop.encap] = e = Encap()
        e.packets += 1
        e.bytes += hop.size
        key = hop.tunnel_key
        t = agg.tunnels.get(key)
        if t is None:
            agg.tunnels[key] = t = TunnelStats((ts, self.source, frame), ts)
        elif ts < t.first[0]:
            t.first = (ts, self.source, frame)
        t.packets += 1
        t.bytes += hop.size
        if hop.size > t.max_size:
            t.max_size = hop.size
        if ts > t.last_ns:
            t.last_ns = ts
        if hop.sport:
            t.entropy_ports.add(mix64(hop.sport))
        if hop.ttl >= 0:
            t.ttl[hop.ttl] = t.ttl.get(hop.ttl, 0) + 1
            t.dscp[hop.dscp] = t.dscp.get(hop.dscp, 0) + 1
            t.ecn[hop.ecn] = t.ecn.get(hop.ecn, 0) + 1
        t.depths |= 1 << depth

    def _flow(self, hops: tuple[Hop, ...], inner: Inner, ts: int, frame: int) -> None:
        agg = self.result
        hop = hops[-1]
        fk: FlowKey = (hop.encap, hop.tunnel_id, inner.l3, inner.src, inner.dst, inner.proto, inner.sport, inner.dport)
        f = agg.flows.get(fk)
        if f is None:
            if len(agg.flows) >= agg.max_flows:
                agg.enforce_flow_cap(room=1)
            agg.flows[fk] = f = FlowStats((ts, self.source, frame), ts)
        elif ts < f.first[0]:
            f.first = (ts, self.source, frame)
        size = inner.size
        f.packets += 1
        f.bytes += size
        if ts > f.last_ns:
            f.last_ns = ts
        f.sizes[size_bin(size)] += 1
        if size < f.min_size:
            f.min_size = size
        if size > f.max_size:
            f.max_size = size
        if inner.df and size > f.max_size_df:
            f.max_size_df = size
        if inner.fragment:
            f.fragments += 1
        if inner.ttl >= 0:
            f.ttl[inner.ttl] = f.ttl.get(inner.ttl, 0) + 1
            if hop.ttl >= 0:
                dp = (inner.dscp, hop.dscp)
                f.dscp_pairs[dp] = f.dscp_pairs.get(dp, 0) + 1
                ep = (inner.ecn, hop.ecn)
                f.ecn_pairs[ep] = f.ecn_pairs.get(ep, 0) + 1
        pk = (hop.path_key, tuple(h.tunnel_key for h in hops[:-1]))
        ps = f.paths.get(pk)
        if ps is None:
            if len(f.paths) < MAX_PATHS:
                f.paths[pk] = ps = PathStats(ts, ts)
            else:
                f.paths_overflow += 1
            # a new (flow, path) is the only time a tunnel can gain an inner flow
            h = key_hash(fk)
            for hp in hops:
                agg.tunnels[hp.tunnel_key].inner_flows.add(h)
        if ps is not None:
            ps.packets += 1
            ps.bytes += size
            if ts > ps.last_ns:
                ps.last_ns = ts
        if inner.tcp_flags >= 0:
            f.add_tcp(inner.tcp_flags, inner.tcp_seq, inner.tcp_len, inner.mss, pk, ps)

    def _icmp(self, err: IcmpError, hops: tuple[Hop, ...], ts: int, frame: int) -> None:
        agg = self.result
        qtunnel = err.quoted_hops[-1].tunnel_key if err.quoted_hops else None
        qflow: FlowKey | None = None
        qi = err.quoted_inner
        # the flow is named by the innermost tunnel: quoted, or (an error from inside the overlay
        # about tenant traffic) the tunnel carrying the error itself
        owner = err.quoted_hops[-1] if err.quoted_hops else (hops[-1] if hops else None)
        if qi is not None and owner is not None:
            qflow = (owner.encap, owner.tunnel_id, qi.l3, qi.src, qi.dst, qi.proto, qi.sport, qi.dport)
        key: IcmpKey = (err.reporter, err.proto, err.kind, err.type, err.code, err.mtu, qtunnel, err.quoted_path, qflow)
        st = agg.icmp.get(key)
        if st is None:
            if len(agg.icmp) >= agg.max_flows:
                agg.dropped_icmp += 1
                return
            agg.icmp[key] = st = IcmpStats((ts, self.source, frame), ts)
        elif ts < st.first[0]:
            st.first = (ts, self.source, frame)
        st.count += 1
        if ts > st.last_ns:
            st.last_ns = ts


def correlate(packets: Iterable[Packet], *, source: str = "", max_flows: int = DEFAULT_MAX_FLOWS) -> Aggregates:
    """One pass over ``packets`` (a convenience for tests and scripts)."""
    corr = Correlator(max_flows)
    corr.begin_source(source)
    corr.add_all(packets)
    return corr.result
