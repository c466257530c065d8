"""Correlation: tunnel sessions, tenant-aware inner flows, underlay paths, ICMP errors.

Pure core: consumes :class:`ipsotrace.records.Packet` and produces mergeable
:class:`Aggregates`; no terminal, file or store I/O (docs/analyze-schema.md).
"""

from ipsotrace.correlate.aggregates import (
    ANALYZE_SCHEMA,
    DEFAULT_MAX_FLOWS,
    DEFAULT_MAX_TUNNELS,
    SIZE_BINS,
    Aggregates,
    FlowKey,
    FlowStats,
    PathStats,
    SourceInfo,
    TunnelKey,
    TunnelStats,
)
from ipsotrace.correlate.correlator import Correlator, correlate
from ipsotrace.correlate.distinct import Distinct
from ipsotrace.correlate.extract import Hop, IcmpError, Inner, View, view

__all__ = [
    "ANALYZE_SCHEMA",
    "DEFAULT_MAX_FLOWS",
    "DEFAULT_MAX_TUNNELS",
    "SIZE_BINS",
    "Aggregates",
    "Correlator",
    "Distinct",
    "FlowKey",
    "FlowStats",
    "Hop",
    "IcmpError",
    "Inner",
    "PathStats",
    "SourceInfo",
    "TunnelKey",
    "TunnelStats",
    "View",
    "correlate",
    "view",
]
