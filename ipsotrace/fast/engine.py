"""The fast analysis engine: capture files → the correlator's :class:`Aggregates`, vectorized.

Per chunk of a file (:mod:`ipsotrace.fast.batch`), frames are decoded into
columns (:mod:`ipsotrace.fast.decode`); the frames the fast path hands back are
decoded by the scalar dissectors, with IP reassembly, in capture order, and
become rows too when the correlator's view of them fits a row (at most one
tunnel hop); :mod:`ipsotrace.fast.aggregate` folds rows into the aggregates.
A packet whose view does not fit (nested tunnels, a hop without an IP header)
goes to :meth:`Correlator.add` itself, after everything before it is folded in,
so the order the correlator sees is the capture's.

With a :class:`~ipsotrace.findings.Collector`, the same rows feed the findings'
facts (:mod:`ipsotrace.fast.facts`), the scalar-decoded packets with their real
:class:`~ipsotrace.findings.Extra`, and the packets rows cannot carry go to
``Collector.add`` at their place in capture order.

The result equals ``Correlator.add`` (and ``Collector.add``) over ``decode(...)``
of the same files (tests/fast/test_engine.py and tests/fast/test_facts.py compare
them); rows that could make a flow or tunnel cap evict go through the correlator
one by one, so evictions are the per-packet ones too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ipsotrace.correlate import Correlator, SourceInfo
from ipsotrace.correlate.aggregates import AnomalyStats
from ipsotrace.correlate.extract import view
from ipsotrace.dissectors.registry import DissectConfig, dissect_frame
from ipsotrace.fast import aggregate as A
from ipsotrace.fast.batch import Batch, BatchReader
from ipsotrace.fast.decode import ENCAPS, decode_batch
from ipsotrace.fast.facts import FactsFeed, extra_columns, fast_columns, paused_gc
from ipsotrace.findings.collect import Collector
from ipsotrace.findings.collect import extra as packet_extra
from ipsotrace.reassembly import FragmentStage, Head, Reassembler
from ipsotrace.sources.base import SourceStatus

_I64 = np.int64
#: Frames decoded together (header windows of this many frames stay in cache).
SUB_BATCH = 32768
#: (flow, path) groups and TCP data segments held before they are folded into the aggregates:
#: memory stays bounded whatever the capture's size.
FLUSH_GROUPS = 200_000
FLUSH_SEGMENTS = 262_144


@dataclass(slots=True)
class EngineStats:
    frames: int = 0
    fast: int = 0  # decoded by the vectorized path
    scalar_rows: int = 0  # decoded by the scalar dissectors, folded in as rows
    scalar_packets: int = 0  # decoded and correlated by the scalar path alone
    one_by_one: int = 0  # rows replayed through Correlator.add_view after a hash collision

    def merge(self, o: EngineStats) -> None:
        self.frames += o.frames
        self.fast += o.fast
        self.scalar_rows += o.scalar_rows
        self.scalar_packets += o.scalar_packets
        self.one_by_one += o.one_by_one


class FastAnalyzer:
    """Feeds capture files into a :class:`Correlator` through the fast path."""

    def __init__(
        self,
        corr: Correlator,
        cfg: DissectConfig | None = None,
        *,
        reassemble: bool = True,
        progress: Callable[[int], None] | None = None,
        collector: Collector | None = None,
    ) -> None:
        self.corr = corr
        self.cfg = cfg or DissectConfig()
        self.reassemble = reassemble
        self.progress = progress
        self.encaps: list[str] = list(ENCAPS)
        self._encap_code = {n: i for i, n in enumerate(self.encaps)}
        self.applier = A.Applier(self.encaps)
        self.acc = A.Accumulator()
        #: the findings' collector, fed the same packets in capture order (None: aggregates only)
        self.facts = None if collector is None else FactsFeed(collector, self.encaps, corr.result.last_ns)
        self.stats = EngineStats()
        self._row = 0  # rows numbered across the whole input: capture order
        self._source = ""

    def encap_code(self, name: str) -> int:
        code = self._encap_code.get(name)
        if code is None:
            code = self._encap_code[name] = len(self.encaps)
            self.encaps.append(name)
        return code

    # -- files --------------------------------------------------------------------------------------
    def add_file(self, path: str | Path, name: str | None = None) -> SourceStatus:
        """Analyse one capture; returns how reading went (damage included)."""
        source = str(path) if name is None else name
        status = self.add_part(path, name=source)
        self.corr.end_source(SourceInfo(source, status.format, status.frames, status.damage, status.damage_offset))
        return status

    def add_part(
        self,
        path: str | Path,
        *,
        name: str | None = None,
        start: int | None = None,
        stop: int | None = None,
        first_frame: int = 1,
    ) -> SourceStatus:
        """Analyse a capture, or the records of a pcap file from byte ``start`` to ``stop``."""
        with paused_gc():
            return self._add_part(path, name=name, start=start, stop=stop, first_frame=first_frame)

    def _add_part(
        self, path: str | Path, *, name: str | None, start: int | None, stop: int | None, first_frame: int
    ) -> SourceStatus:
        source = str(path) if name is None else name
        self._source = source
        self.corr.begin_source(source)
        if self.facts is not None:
            self.facts.begin_source(source)
        # like decode(): one reassembler per file; kept for the caller's ReassemblySummary
        self.reassembler: Reassembler[Head] = Reassembler()
        stage = FragmentStage(self.reassembler) if self.reassemble else None
        self._ts_carry: int | None = None
        with BatchReader(path, start=start, stop=stop, first_frame=first_frame) as reader:
            for batch in reader:
                if len(batch) == 0:
                    continue
                # the reassembler expires by the latest capture time seen before each frame
                self._cummax = np.maximum.accumulate(batch.ts_ns)
                if self._ts_carry is not None:
                    np.maximum(self._cummax, self._ts_carry, out=self._cummax)
                self._ts_carry = int(self._cummax[-1])
                for lo in range(0, len(batch), SUB_BATCH):
                    rows = np.arange(lo, min(len(batch), lo + SUB_BATCH), dtype=_I64)
                    self._sub_batch(batch, rows, source, stage)
                if self.progress is not None:
                    self.progress(reader.status.bytes_read)
            status = reader.status
        if stage is not None:
            stage.reassembler.flush()
        self.flush(source)
        if self.facts is not None:
            self.facts.finish()
        return status

    # -- one sub-batch ------------------------------------------------------------------------------------
    def _sub_batch(self, batch: Batch, rows: np.ndarray, source: str, stage: FragmentStage | None) -> None:
        fc = decode_batch(batch, self.cfg, rows, gre_key_as_id=self.corr.gre_key_as_id, tunnelled_only=True)
        n = rows.shape[0]
        assert fc.plain is not None
        self.stats.frames += n
        self.stats.fast += len(fc) + fc.plain.shape[0]
        # capture order across sub-batches and files: rows are batch positions plus this base
        self._row += 1 << 32
        agg = self.corr.result
        wire = batch.wirelen[rows[0] : rows[-1] + 1]
        ts = batch.ts_ns[rows[0] : rows[-1] + 1]
        agg.packets += n
        agg.bytes += int(wire.sum())
        lo, hi = int(ts.min()), int(ts.max())
        agg.first_ns = lo if agg.first_ns is None else min(agg.first_ns, lo)
        agg.last_ns = hi if agg.last_ns is None else max(agg.last_ns, hi)
        if fc.plain.shape[0]:
            agg.untunnelled_packets += int(fc.plain.shape[0])
            agg.untunnelled_bytes += int(batch.wirelen[fc.plain].sum())
        c = fc.cols
        brow = c["row"]
        cols: dict[str, np.ndarray] = {
            "row": brow,
            "ts": batch.ts_ns[brow],
            "frame": brow + batch.first_frame,
            "wirelen": batch.wirelen[brow],
            "encap": c["encap"],
            "tid": c["tunnel_id"],
            "i_frag": np.zeros(brow.shape[0], dtype=_I64),
        }
        if self.facts is not None:
            cols.update(fast_columns(c, cols["wirelen"]))
        else:
            cols.update(fp=cols["i_frag"], offload=cols["i_frag"], vxf=cols["i_frag"])  # zeros, unused
        for k in A.ROW:
            if k not in cols:
                cols[k] = c[k]
        if fc.fallback.size:
            self._with_scalar(batch, fc.fallback, cols, source, stage)
        else:
            self._rows(cols)
        if len(self.acc) >= FLUSH_GROUPS or self.acc.n_segs >= FLUSH_SEGMENTS:
            self.flush(source)
        if self.facts is not None and self.facts.full():
            self.facts.flush()  # every row up to this sub-batch's end is in: a safe point

    def _with_scalar(
        self, batch: Batch, fallback: np.ndarray, fast: dict[str, np.ndarray], source: str, stage: FragmentStage | None
    ) -> None:
        """Decode the handed-back frames in order; rows before a packet the correlator takes go first."""
        corr = self.corr
        agg = corr.result
        extra: list[dict[str, int]] = []
        ts_all = batch.ts_ns
        fast_rows = fast["row"]
        done = 0  # fast rows already folded in (everything before a packet the correlator takes)
        for r in fallback.tolist():
            ts = int(ts_all[r])
            frame = r + batch.first_frame
            wirelen = int(batch.wirelen[r])
            if stage is not None:
                stage.reassembler.expire(int(self._cummax[r]))
            pkt = dissect_frame(
                batch.frame_bytes(r),
                int(batch.linktype[r]),
                self.cfg,
                frame=frame,
                ts_ns=ts,
                wirelen=wirelen,
                interface=int(batch.interface[r]),
                fragments=stage,
            )
            v = view(pkt, gre_key_as_id=corr.gre_key_as_id)
            row = A.view_row(v, self.encap_code)
            err = v.icmp
            if row is not None and err is not None and err.kind == "time-exceeded" and v.hops and self.facts:
                row = None  # the collector counts it on its tunnel, in capture order: the scalar route
            if row is None:
                # fold in everything before this packet, then let the correlator take it (it
                # counts the packet itself, so the sub-batch's totals leave it out)
                upto = int(np.searchsorted(fast_rows, r))
                self._fold({k: a[done:upto] for k, a in fast.items()}, extra)
                extra = []
                done = upto
                self.flush(source)
                agg.packets -= 1
                agg.bytes -= wirelen
                pv = corr.add(pkt)
                if self.facts is not None:
                    self.facts.add_packet(pkt, pv)
                self.stats.scalar_packets += 1
                continue
            self.stats.scalar_rows += 1
            if self.facts is not None:
                x = packet_extra(pkt)
                row.update(extra_columns(x))
                self.facts.coll.add_side(v, x, (ts, self.facts.coll.source, frame))  # independent of order
            if pkt.anomalies:
                anomalies = agg.anomalies
                for a in pkt.anomalies:
                    st = anomalies.get(a.kind)
                    if st is None:
                        anomalies[a.kind] = st = AnomalyStats()
                    st.add((source, frame, a.layer, a.offset, a.detail))
            if v.icmp is not None:
                corr._icmp(v.icmp, v.hops, ts, frame)  # its own table: independent of rows' order
            if row["encap"] < 0:
                agg.untunnelled_packets += 1
                agg.untunnelled_bytes += wirelen
                continue
            row.update(row=r, ts=ts, frame=frame, wirelen=wirelen)
            extra.append(row)
        self._fold({k: a[done:] for k, a in fast.items()} if done else fast, extra)

    def _fold(self, fast: dict[str, np.ndarray], extra: list[dict[str, int]]) -> None:
        """Fast rows and rows of scalar-decoded packets, merged in capture order."""
        if not extra:
            self._rows(fast)
            return
        names = (*A.ROW, "wirelen")
        cols = {k: np.concatenate([fast[k], np.array([e[k] for e in extra], dtype=_I64)]) for k in names}
        order = np.argsort(cols["row"], kind="stable")
        self._rows({k: v[order] for k, v in cols.items()})

    def _cap_pressure(self, cols: dict[str, np.ndarray]) -> bool:
        """New flows or tunnels of these rows might pass a cap: evictions then follow packet order."""
        agg = self.corr.result
        n = int(cols["row"].shape[0]) + len(self.acc)
        if len(agg.flows) + n <= agg.max_flows and len(agg.tunnels) + n <= agg.max_tunnels:
            return False  # the common case: far from the caps
        if self._distinct_within_caps(cols):
            return False  # many flows, still far from the caps
        self.flush(self._source)
        # count only the keys the aggregates do not hold yet (one key per distinct hash, near the caps only)
        new_flows = new_tunnels = 0
        for names, known, is_flow in ((A.FLOW_KEY, agg.flows, True), (A.TUNNEL_KEY, agg.tunnels, False)):
            _, first = np.unique(A.key_hashes(cols, names), return_index=True)
            for r in first.tolist():
                fk, tk, _pk = A.row_keys(cols, r, self.encaps)
                if (fk if is_flow else tk) not in known:
                    if is_flow:
                        new_flows += 1
                    else:
                        new_tunnels += 1
        return len(agg.flows) + new_flows > agg.max_flows or len(agg.tunnels) + new_tunnels > agg.max_tunnels

    def _distinct_within_caps(self, cols: dict[str, np.ndarray]) -> bool:
        """Even if every distinct flow and tunnel of these rows and of the pending groups were new, no
        cap would be passed (vectorized: counted by two independent 64-bit functions of each key,
        the larger count, so only keys colliding in both could be under-counted)."""
        agg = self.corr.result
        pending = {c: self.acc.acc[c][: len(self.acc)] for c in A.FP_KEY} if len(self.acc) else None
        for names, known, cap in ((A.FLOW_KEY, agg.flows, agg.max_flows), (A.TUNNEL_KEY, agg.tunnels, agg.max_tunnels)):
            hashes, checks = A.key_hashes(cols, names), A.key_checks(cols, names)
            if pending is not None:
                hashes = np.concatenate([hashes, A.key_hashes(pending, names)])
                checks = np.concatenate([checks, A.key_checks(pending, names)])
            if len(known) + max(A.distinct(hashes), A.distinct(checks)) > cap:
                return False
        return True

    def _rows(self, cols: dict[str, np.ndarray]) -> None:
        """Fold rows of tunnelled packets (in capture order) into the accumulator."""
        if cols["row"].shape[0] == 0:
            return
        cols["row"] = cols["row"] + self._row
        if self._cap_pressure(cols):
            # exact per-packet eviction: these rows go through the correlator one by one
            self._one_by_one(cols)
            if self.facts is not None:
                self.facts.add(cols)
            return
        try:
            self.acc.add(cols)
        except A.HashCollision:
            # two keys met the same 64-bit hash (never seen, but possible): these rows go through
            # the correlator one by one, after everything before them
            self.flush(self._source)
            self._one_by_one(cols)
            if self.facts is not None:
                self.facts.add(cols)
            return
        A.add_encaps(self.corr.result, cols, self.encaps)
        if self.facts is not None:
            self.facts.add(cols)

    def _one_by_one(self, cols: dict[str, np.ndarray]) -> None:
        agg = self.corr.result
        wire = cols["wirelen"]
        # add_view counts packets and bytes itself: the sub-batch's totals already did
        agg.packets -= int(wire.shape[0])
        agg.bytes -= int(wire.sum())
        for i in range(wire.shape[0]):
            v = A.row_view(cols, i, self.encaps)
            self.corr.add_view(v, int(cols["ts"][i]), int(cols["frame"][i]), int(wire[i]))
        self.stats.one_by_one += int(wire.shape[0])

    def flush(self, source: str) -> None:
        """Fold everything accumulated into the aggregates (Python work per flow and path)."""
        if len(self.acc) == 0:
            return
        self.applier.apply(self.corr.result, self.acc.partials(), source)
        self.acc.reset()


def analyze_files(
    paths: list[Path],
    corr: Correlator,
    cfg: DissectConfig | None = None,
    *,
    reassemble: bool = True,
) -> list[SourceStatus]:
    """Analyse files in order into ``corr``; returns each file's read status."""
    fa = FastAnalyzer(corr, cfg, reassemble=reassemble)
    return [fa.add_file(p) for p in paths]
