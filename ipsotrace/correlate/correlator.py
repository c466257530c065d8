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

from bisect import bisect_right
from collections.abc import Iterable
from itertools import islice

from ipsotrace.correlate.aggregates import (
    DEFAULT_MAX_FLOWS,
    DEFAULT_MAX_TUNNELS,
    MAX_PATHS,
    SIZE_BINS,
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
)
from ipsotrace.correlate.distinct import key_hash, mix64
from ipsotrace.correlate.extract import Hop, IcmpError, Inner, View, view
from ipsotrace.records import Packet

# entropy values are 16-bit ports or 8-bit FlowIDs: their hashes are worth keeping (at most 64 Ki)
_ENTROPY_HASH: dict[int, int] = {}
_CHUNK = 32  # packets decoded ahead by add_all


class Correlator:
    """Feed packets in capture order; read :attr:`result` at any time.

    ``gre_key_as_id`` is passed to :func:`~ipsotrace.correlate.extract.view` (gretap rather
    than NVGRE); callers building their own views must use the same setting.
    """

    def __init__(
        self,
        max_flows: int = DEFAULT_MAX_FLOWS,
        max_tunnels: int = DEFAULT_MAX_TUNNELS,
        *,
        gre_key_as_id: bool = False,
    ) -> None:
        if max_flows < 1:
            raise ValueError("max_flows must be at least 1")
        if max_tunnels < 1:
            raise ValueError("max_tunnels must be at least 1")
        self.result = Aggregates(max_flows=max_flows, max_tunnels=max_tunnels)
        self.source = ""
        self.gre_key_as_id = gre_key_as_id

    def begin_source(self, name: str) -> None:
        """Name the input the next packets come from (evidence says "frame N of <name>")."""
        self.source = name

    def end_source(self, info: SourceInfo) -> None:
        self.result.sources.append(info)

    def add_all(self, packets: Iterable[Packet]) -> None:
        it = iter(packets)
        add = self.add
        # decoding a few dozen packets, then correlating them, keeps each stage's code and data in
        # the CPU caches: a quarter faster end to end than alternating stages packet by packet
        while chunk := list(islice(it, _CHUNK)):
            for pkt in chunk:
                add(pkt)

    def add(self, pkt: Packet) -> View:
        """Count one packet; returns its view, for other consumers of the same packet (findings)."""
        if pkt.anomalies:
            anomalies = self.result.anomalies
            for a in pkt.anomalies:
                st = anomalies.get(a.kind)
                if st is None:
                    anomalies[a.kind] = st = AnomalyStats()
                st.add((self.source, pkt.frame, a.layer, a.offset, a.detail))
        v = view(pkt, gre_key_as_id=self.gre_key_as_id)
        self.add_view(v, pkt.ts_ns, pkt.frame, pkt.wirelen)
        return v

    def add_view(self, v: View, ts: int, frame: int, wirelen: int) -> None:
        agg = self.result
        agg.packets += 1
        agg.bytes += wirelen
        if agg.first_ns is None or ts < agg.first_ns:
            agg.first_ns = ts
        if agg.last_ns is None or ts > agg.last_ns:
            agg.last_ns = ts
        hops = v.hops
        if v.icmp is not None:
            self._icmp(v.icmp, hops, ts, frame)
        if not hops:
            agg.untunnelled_packets += 1
            agg.untunnelled_bytes += wirelen
            return
        # a session whose first packet this is (new, or back after eviction) must learn the flow
        if len(hops) == 1:
            t = self._tunnel(hops[0], 0, ts, frame)
            self._flow(hops, (t,), t.packets == 1, v.inner, ts, frame)
        else:
            stats = tuple([self._tunnel(hop, depth, ts, frame) for depth, hop in enumerate(hops)])
            self._flow(hops, stats, any(t.packets == 1 for t in stats), v.inner, ts, frame)

    def _tunnel(self, hop: Hop, depth: int, ts: int, frame: int) -> TunnelStats:
        agg = self.result
        e = agg.encaps.get(hop.encap)
        if e is None:
            agg.encaps[hop.encap] = e = Encap()
        size = hop.size
        e.packets += 1
        e.bytes += size
        key = (hop.encap, hop.src, hop.dst, hop.tunnel_id)
        t = agg.tunnels.get(key)
        if t is None:
            if len(agg.tunnels) >= agg.max_tunnels:
                agg.enforce_tunnel_cap(room=1)
            agg.tunnels[key] = t = TunnelStats((ts, self.source, frame), ts)
        elif ts < t.first[0]:
            t.first = (ts, self.source, frame)
        t.packets += 1
        t.bytes += size
        if size > t.max_size:
            t.max_size = size
        if ts > t.last_ns:
            t.last_ns = ts
        if hop.sport:
            h = _ENTROPY_HASH.get(hop.sport)
            if h is None:
                _ENTROPY_HASH[hop.sport] = h = mix64(hop.sport)
            t.entropy_ports.add(h)
        if hop.ttl >= 0:
            t.ttl[hop.ttl] = t.ttl.get(hop.ttl, 0) + 1
            t.dscp[hop.dscp] = t.dscp.get(hop.dscp, 0) + 1
            t.ecn[hop.ecn] = t.ecn.get(hop.ecn, 0) + 1
        t.depths |= 1 << depth
        return t

    def _flow(
        self, hops: tuple[Hop, ...], stats: tuple[TunnelStats, ...], fresh: bool, inner: Inner, ts: int, frame: int
    ) -> None:
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
        f.sizes[bisect_right(SIZE_BINS, size) - 1] += 1
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
        via = () if len(hops) == 1 else tuple([h.tunnel_key for h in hops[:-1]])
        pk = (hop.path_key, via)
        ps = f.paths.get(pk)
        if ps is None:
            if len(f.paths) < MAX_PATHS:
                f.paths[pk] = ps = PathStats(ts, ts)
            else:
                f.paths_overflow += 1
        if ps is None or ps.packets == 0 or fresh:
            # a tunnel gains an inner flow only with a new (flow, path), or when it was evicted
            # by the tunnel cap and starts afresh
            h = key_hash(fk)
            for t in stats:
                t.inner_flows.add(h)
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


def correlate(
    packets: Iterable[Packet],
    *,
    source: str = "",
    max_flows: int = DEFAULT_MAX_FLOWS,
    max_tunnels: int = DEFAULT_MAX_TUNNELS,
    gre_key_as_id: bool = False,
) -> Aggregates:
    """One pass over ``packets`` (a convenience for tests and scripts)."""
    corr = Correlator(max_flows, max_tunnels, gre_key_as_id=gre_key_as_id)
    corr.begin_source(source)
    corr.add_all(packets)
    return corr.result
