"""``analyze --jobs N``: capture files (and parts of large pcap files) analysed in N processes.

The input is cut into units in capture order — whole files, and plain pcap files
larger than a few MB cut at record boundaries into about equal parts — and each
unit is analysed by :class:`~ipsotrace.fast.engine.FastAnalyzer` in a worker
process into its own :class:`~ipsotrace.correlate.Aggregates`.  The parts are
merged in capture order with ``Aggregates.merge`` ("b came after a"), which is
exact except for the bounded cases it documents (cap evictions, paths beyond
256 per flow, a TCP retransmission hidden behind more than 16 new segments at
the start of a part); an IP datagram whose fragments straddle a cut is not
reassembled.  Frame numbers stay those of the whole file.  With findings, each
unit also feeds its own :class:`~ipsotrace.findings.Collector`, and the partial
:class:`~ipsotrace.findings.Facts` are merged in the same order with
``Facts.merge``, exact except for the bounded cases it documents (held-back
heads; ``FlowFacts.tcp.inexact`` counts them).
"""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from ipsotrace.correlate import Aggregates, Correlator, SourceInfo
from ipsotrace.dissectors.registry import DissectConfig
from ipsotrace.fast.batch import pcap_split
from ipsotrace.fast.engine import EngineStats, FastAnalyzer
from ipsotrace.findings.collect import Collector, Facts
from ipsotrace.reassembly import KEEP_INCOMPLETE, ReassemblySummary
from ipsotrace.sources.base import SourceStatus


@dataclass(frozen=True, slots=True)
class Unit:
    path: str
    index: int  # file number in the input
    start: int | None = None  # byte range of a part of a pcap file
    stop: int | None = None
    first_frame: int = 1
    last: bool = True  # the file's last part: it reports the file's damage


@dataclass(frozen=True, slots=True)
class Settings:
    cfg: DissectConfig
    max_flows: int
    max_tunnels: int
    gre_key_as_id: bool
    reassemble: bool
    findings: bool = False  # also collect the findings' facts


def units(paths: list[Path], jobs: int) -> list[Unit]:
    """Cut the input into work units, in capture order."""
    out: list[Unit] = []
    total = sum(max(1, _size(p)) for p in paths)
    for i, p in enumerate(paths):
        # a file gets parts in proportion to its share of the input
        parts = max(1, round(jobs * max(1, _size(p)) / total)) if jobs > 1 else 1
        cuts = pcap_split(p, parts) if parts > 1 else None
        if not cuts:
            out.append(Unit(str(p), i))
            continue
        for k, (start, first) in enumerate(cuts):
            stop = cuts[k + 1][0] if k + 1 < len(cuts) else None
            out.append(Unit(str(p), i, start, stop, first, stop is None))
    return out


def _size(p: Path) -> int:
    try:
        return os.path.getsize(p)
    except OSError:
        return 0


def _work(unit: Unit, s: Settings) -> tuple[Aggregates, Facts | None, ReassemblySummary, EngineStats, SourceStatus]:
    corr = Correlator(s.max_flows, s.max_tunnels, gre_key_as_id=s.gre_key_as_id)
    coll = Collector(s.max_flows, s.max_tunnels) if s.findings else None
    fa = FastAnalyzer(corr, s.cfg, reassemble=s.reassemble, collector=coll)
    status = fa.add_part(unit.path, start=unit.start, stop=unit.stop, first_frame=unit.first_frame)
    reassembly = ReassemblySummary(enabled=s.reassemble)
    reassembly.add(unit.path, fa.reassembler)
    return corr.result, None if coll is None else coll.result, reassembly, fa.stats, status


@dataclass(slots=True)
class Parallel:
    """What :func:`analyze_parallel` returns."""

    result: Aggregates
    stats: EngineStats
    statuses: list[SourceStatus]
    reassembly: ReassemblySummary
    facts: Facts | None  # with ``Settings.findings``


def analyze_parallel(paths: list[Path], jobs: int, settings: Settings) -> Parallel:
    """Analyse ``paths`` (one input, in order) with ``jobs`` processes."""
    work = units(paths, jobs)
    result = Aggregates(max_flows=settings.max_flows, max_tunnels=settings.max_tunnels)
    facts = Facts(max_flows=settings.max_flows, max_tunnels=settings.max_tunnels) if settings.findings else None
    stats = EngineStats()
    reassembly = ReassemblySummary(enabled=settings.reassemble)
    statuses: list[SourceStatus | None] = [None] * len(paths)
    frames = [0] * len(paths)
    with ProcessPoolExecutor(max_workers=max(1, jobs)) as pool:
        futures = [pool.submit(_work, u, settings) for u in work]
        for u, fut in zip(work, futures, strict=True):
            agg, part, reasm, st, status = fut.result()
            result.merge(agg)
            reassembly.stats.merge(reasm.stats)
            room = max(0, KEEP_INCOMPLETE - len(reassembly.incomplete))
            reassembly.incomplete.extend(reasm.incomplete[:room])
            if facts is not None and part is not None:
                facts.merge(part)
            stats.merge(st)
            frames[u.index] += status.frames - (u.first_frame - 1)
            if u.last:
                statuses[u.index] = status
                status.frames = frames[u.index]
                result.sources.append(
                    SourceInfo(u.path, status.format, status.frames, status.damage, status.damage_offset)
                )
    return Parallel(result, stats, [s for s in statuses if s is not None], reassembly, facts)
