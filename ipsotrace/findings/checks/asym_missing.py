"""The return direction of an inner TCP flow is missing while the reverse tunnel carries traffic."""

from __future__ import annotations

from ipsotrace.findings.checks._reverse import by_tuple, overlay_flow, reverse_tuple, vtep_pairs
from ipsotrace.findings.context import Context, frames_str
from ipsotrace.findings.model import Evidence, Finding, Spec, flow_str

SPEC = Spec(
    id="overlay.return-missing",
    severity="warning",
    title="Inner TCP flows get no reply although the reverse tunnel is in the capture",
    explanation=(
        "The capture sees traffic in both directions between the two VTEPs, but for these inner TCP flows "
        "only one direction: the replies are lost in the overlay (a VTEP does not know where the tenant "
        "host is, an ARP/ND or flood-list problem, a security group or a VNI mismatch one hop further), or "
        "take a path the capture does not see. Checked only for TCP, where a reply is certain."
    ),
    fires_when="a TCP inner flow with >= min_packets packets has no reverse flow in any tunnel, while the "
    "reverse VTEP pair carries other inner traffic",
    remedy="look for the replies on the far VTEP (decapsulated side); check its MAC/ARP entry for the sender",
    thresholds=("asymmetry.min_packets",),
)


def check(ctx: Context) -> list[Finding]:
    index = by_tuple(ctx)
    reverse_pairs: dict[tuple[str, str], int] = {}
    for fk in ctx.facts.flows:
        for p in vtep_pairs(ctx, fk):
            reverse_pairs[p] = reverse_pairs.get(p, 0) + 1
    groups: dict[tuple[str, str], list] = {}  # type: ignore[type-arg]
    for fk, ff in sorted(ctx.facts.flows.items(), key=lambda kv: kv[1].first):
        if fk[5] != 6 or ff.packets < ctx.thresholds.get("asymmetry", "min_packets") or not overlay_flow(ctx, fk):
            continue
        rt = reverse_tuple(fk)
        if rt is None or index.get(rt):
            continue
        for s, d in sorted(vtep_pairs(ctx, fk)):
            if reverse_pairs.get((d, s)):
                groups.setdefault((s, d), []).append(fk)
                break
    out = []
    for (s, d), flows in sorted(groups.items()):
        ev = Evidence(tunnels=sorted({(fk[0], s, d, fk[1]) for fk in flows}, key=repr), flows=flows[:8])
        ev.add_frames([ctx.facts.flows[fk].first for fk in flows])
        ev.facts = {"flows": len(flows), "reverse_pair_flows": reverse_pairs[(d, s)]}
        detail = (
            f"{len(flows)} inner TCP flow(s) {s} → {d} (first: {flow_str(flows[0])}) have no reply in the "
            f"capture ({frames_str(ev.frames)}), although {d} → {s} carries {reverse_pairs[(d, s)]} other inner "
            "flow(s)."
        )
        out.append(
            Finding(
                SPEC.id,
                "warning",
                f"{len(flows)} inner TCP flow(s) through {s} → {d} get no reply",
                detail,
                f"check on VTEP {d} that the tenant destination is known (MAC/ARP) and that its replies are "
                f"encapsulated back to {s}; capture on the decapsulated side of {d}",
                ev,
                "medium",
            )
        )
    return out
