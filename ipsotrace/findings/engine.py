"""Run every finding check over one analysis result; the list every front end shows."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from types import ModuleType
from typing import Any

from ipsotrace.correlate import Aggregates
from ipsotrace.findings.checks import (
    asym_missing,
    asym_vni,
    asym_vtep,
    ecmp_constant,
    ecmp_polarization,
    health_duplicates,
    health_retx,
    health_ttl,
    inventory_vni,
    inventory_vtep,
    mtu_blackhole,
    mtu_df,
    mtu_fragmentation,
    mtu_mss,
    mtu_ptb,
    qos_ce_lost,
    qos_dscp,
    qos_ecn,
    security_cleartext,
    security_encrypted,
    ttl_inherit,
    tunnel_single,
    vxlan_flags,
)
from ipsotrace.findings.collect import Facts
from ipsotrace.findings.context import Context
from ipsotrace.findings.inventory import Inventory, Network
from ipsotrace.findings.model import SEVERITY_RANK, Finding, Spec
from ipsotrace.findings.thresholds import DEFAULT_THRESHOLDS, Thresholds

#: Every check, in the order the issue lists them (the output is sorted by severity anyway).
CHECKS: tuple[ModuleType, ...] = (
    mtu_df,
    mtu_ptb,
    mtu_blackhole,
    mtu_mss,
    mtu_fragmentation,
    ecmp_polarization,
    ecmp_constant,
    ttl_inherit,
    qos_dscp,
    qos_ecn,
    qos_ce_lost,
    asym_vni,
    asym_vtep,
    asym_missing,
    inventory_vtep,
    inventory_vni,
    tunnel_single,
    vxlan_flags,
    security_cleartext,
    security_encrypted,
    health_retx,
    health_duplicates,
    health_ttl,
)

SPECS: dict[str, Spec] = {m.SPEC.id: m.SPEC for m in CHECKS}
FINDINGS_SCHEMA = "ipsotrace.findings/1"


def evaluate(
    agg: Aggregates,
    facts: Facts,
    *,
    thresholds: Thresholds = DEFAULT_THRESHOLDS,
    inventory: Inventory | None = None,
    untrusted: Iterable[Network] = (),
    only: Callable[[Spec], bool] | None = None,
) -> list[Finding]:
    """All findings, most severe first.  ``facts`` may be unfinalized: a finalized copy is used."""
    ctx = Context(agg, facts.finalized_copy(), thresholds, inventory or Inventory(), tuple(untrusted))
    out: list[Finding] = []
    for m in CHECKS:
        if only is None or only(m.SPEC):
            out.extend(m.check(ctx))
    return sorted(out, key=Finding.sort_key)


def findings_json(findings: list[Finding]) -> list[dict[str, Any]]:
    return [f.to_json() for f in findings]


def severity_counts(findings: list[Finding]) -> dict[str, int]:
    counts = {s: 0 for s in SEVERITY_RANK}
    for f in findings:
        counts[f.severity] += 1
    return counts
