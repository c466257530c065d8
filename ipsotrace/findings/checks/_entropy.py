"""Shared by the ECMP checks: how inner flows of a VTEP pair spread over entropy values."""

from __future__ import annotations

from ipsotrace.findings.context import Context
from ipsotrace.findings.model import Ev, FlowKey

#: Encapsulations whose outer UDP source port is the ECMP entropy (RFC 7348, RFC 8926, RFC 7510...).
UDP_ENTROPY = frozenset({"vxlan", "vxlan-gpe", "geneve", "gtpu", "mpls", "gre", "nsh", "nvgre"})

Pair = tuple[str, str, str]  # encapsulation, outer src, outer dst


def spread(ctx: Context) -> dict[Pair, dict[int, list[tuple[FlowKey, Ev]]]]:
    """Per VTEP pair: entropy value (outer source port, or IPv6 flow label) → inner flows hashed to it.

    A flow counts where it was *first* placed: a later port is a re-draw after a retransmission
    timeout, not the hash of the inner flow.
    """
    out: dict[Pair, dict[int, list[tuple[FlowKey, Ev]]]] = {}
    for fk, ff in ctx.facts.flows.items():
        if not ff.paths:
            continue
        pk, pf = min(ff.paths.items(), key=lambda kv: kv[1].first)
        if (fk[0], pk[0], pk[1]) in ctx.mirror_pairs:
            continue
        value = pk[3] or pk[5]  # UDP source port (NVGRE: its FlowID), else the IPv6 flow label
        if not value:
            continue  # no entropy field at all: the underlay hashes on addresses only
        if pk[2] == 17 and fk[0] not in UDP_ENTROPY:
            continue
        out.setdefault((fk[0], pk[0], pk[1]), {}).setdefault(value, []).append((fk, pf.first))
    return out
