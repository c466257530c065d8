"""The return traffic of an inner flow goes through a different pair of VTEPs."""

from __future__ import annotations

from ipsotrace.findings.checks._reverse import by_tuple, reverse_tuple, vtep_pairs
from ipsotrace.findings.context import Context
from ipsotrace.findings.model import Evidence, Finding, Spec, flow_str

SPEC = Spec(
    id="overlay.return-vtep-mismatch",
    severity="warning",
    title="Return traffic of an inner flow uses a different VTEP pair",
    explanation=(
        "The request travels A → B between two VTEPs, the reply comes back from a third VTEP C (or to "
        "another one). Overlays with anycast gateways or multihoming do this on purpose, but it also means "
        "stateful devices on the underlay or at the VTEPs (firewalls, conntrack, NAT) see only one direction "
        "and drop the flow, and MAC/ARP learning points tenants at the wrong VTEP (a stale entry after a VM "
        "move). Both directions must be in the capture."
    ),
    fires_when="an inner flow's reverse (same tunnel ID) is carried between VTEPs that are not the mirror pair",
    remedy="check MAC/ARP (EVPN type-2) entries for the tenant host on both VTEPs; fix multihoming/anycast design",
)


def check(ctx: Context) -> list[Finding]:
    index = by_tuple(ctx)
    out = []
    groups: dict[tuple[tuple[str, str], tuple[str, str]], list] = {}  # type: ignore[type-arg]
    done: set[tuple[object, ...]] = set()
    for fk in sorted(ctx.facts.flows, key=lambda k: ctx.facts.flows[k].first):
        rt = reverse_tuple(fk)
        if rt is None:
            continue
        fwd = vtep_pairs(ctx, fk)
        for rk in index.get(rt, []):
            if rk[1] != fk[1] or rk in done:
                continue  # the other direction of a pair already judged (the earlier one is "forward")
            rev = vtep_pairs(ctx, rk)
            if not any((d, s) in fwd for s, d in rev):
                groups.setdefault((sorted(fwd)[0], sorted(rev)[0]), []).append((fk, rk))
        done.add(fk)
    for (fpair, rpair), pairs in sorted(groups.items()):
        fk, rk = pairs[0]
        ev = Evidence(
            tunnels=[(fk[0], fpair[0], fpair[1], fk[1]), (rk[0], rpair[0], rpair[1], rk[1])],
            flows=[x for p in pairs[:4] for x in p],
        )
        ev.add_frames([ctx.facts.flows[x].first for p in pairs[:4] for x in p])
        ev.facts = {"forward_vteps": list(fpair), "return_vteps": list(rpair), "flows": len(pairs)}
        detail = (
            f"{flow_str(fk)} goes {fpair[0]} → {fpair[1]} but its replies come {rpair[0]} → {rpair[1]} "
            f"(frames {ctx.facts.flows[fk].first[2]} and {ctx.facts.flows[rk].first[2]}); {len(pairs)} flow(s)."
        )
        out.append(
            Finding(
                SPEC.id,
                "warning",
                f"Asymmetric overlay: {fpair[0]} → {fpair[1]} answered via {rpair[0]} → {rpair[1]}",
                detail,
                f"check where VTEPs {fpair[1]} and {rpair[0]} learned the tenant addresses (MAC/ARP, EVPN route "
                "type 2) and make stateful devices see both directions",
                ev,
                "medium",
            )
        )
    return out
