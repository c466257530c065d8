"""Findings: what is wrong with an overlay, how sure, where the evidence is, what to change.

Pure core (no I/O): :class:`Collector` gathers per-packet facts next to the
correlator, :func:`evaluate` runs one check per finding over the
:class:`~ipsotrace.correlate.Aggregates` and the facts.  Thresholds and the
inventory arrive as data (the CLI reads the files).  docs/findings.md lists
every finding.
"""

from ipsotrace.findings.collect import Collector, Extra, Facts, extra
from ipsotrace.findings.engine import CHECKS, FINDINGS_SCHEMA, SPECS, evaluate, findings_json, severity_counts
from ipsotrace.findings.inventory import Inventory, InventoryError, network
from ipsotrace.findings.inventory import parse as parse_inventory
from ipsotrace.findings.model import SEVERITY_RANK, Evidence, Finding, Severity, Spec
from ipsotrace.findings.thresholds import DEFAULT_THRESHOLDS, DEFAULTS, ThresholdError, Thresholds

__all__ = [
    "CHECKS",
    "DEFAULTS",
    "DEFAULT_THRESHOLDS",
    "FINDINGS_SCHEMA",
    "SEVERITY_RANK",
    "SPECS",
    "Collector",
    "Evidence",
    "Extra",
    "Facts",
    "Finding",
    "Inventory",
    "InventoryError",
    "Severity",
    "Spec",
    "ThresholdError",
    "Thresholds",
    "evaluate",
    "extra",
    "findings_json",
    "network",
    "parse_inventory",
    "severity_counts",
]
