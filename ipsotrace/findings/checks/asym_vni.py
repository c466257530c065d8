"""The return traffic of an inner flow comes back in another VNI."""

from __future__ import annotations

from ipsotrace.findings.checks._reverse import by_tuple, reverse_tuple, same_subnet, vtep_pairs
from ipsotrace.findings.context import SEGMENT_ID_ENCAPS, Context
from ipsotrace.findings.model import Evidence, Finding, Spec, flow_str

SPEC = Spec(
    id="overlay.return-vni-mismatch",
    severity="warning",
    title="Return traffic of an inner flow arrives in a different VNI",
    explanation=(
        "The two directions of one inner conversation are carried with different tunnel IDs (VNI, key, "
        "TEID). Each VTEP maps tenant segments to VNIs on its own; when the maps disagree (a VLAN-to-VNI or "
        "VRF-to-L3VNI mapping typo, symmetric vs asymmetric IRB mixed), the reply lands in another tenant "
        "segment: the sender never gets it, or worse, another tenant does.\n"
        "Only for encapsulations whose ID names the segment in both directions (VXLAN, GPE, Geneve, NVGRE; "
        "GTP TEIDs, MPLS labels and GRE keys differ per direction by design). A warning when the inner "
        "addresses share a /24 (/64), i.e. one bridged segment; info when they do not, because routing at "
        "the ingress VTEP (EVPN asymmetric IRB, OVN distributed routing) legitimately sends each direction "
        "in the destination's segment. Both directions must be in the capture."
    ),
    fires_when="an inner flow's reverse 5-tuple is present only under other tunnel IDs of the same encapsulation",
    remedy="make both VTEPs map the tenant segment to the same VNI",
)


def check(ctx: Context) -> list[Finding]:
    index = by_tuple(ctx)
    groups: dict[tuple[object, object], list] = {}  # type: ignore[type-arg]
    for fk in sorted(ctx.facts.flows, key=lambda k: ctx.facts.flows[k].first):
        rt = reverse_tuple(fk)
        if rt is None or fk[1] is None or fk[0] not in SEGMENT_ID_ENCAPS:
            continue
        rev = index.get(rt, [])
        if not rev or any(r[1] == fk[1] for r in rev):
            continue
        for rk in rev:
            groups.setdefault((fk[1], rk[1]), []).append((fk, rk))
    out = []
    seen: set[tuple[object, object]] = set()
    for (fwd_id, rev_id), pairs in groups.items():
        if (rev_id, fwd_id) in seen:
            continue  # one finding per pair of VNIs
        seen.add((fwd_id, rev_id))
        fk, rk = pairs[0]
        ff, rf = ctx.facts.flows[fk], ctx.facts.flows[rk]
        fpair = sorted(vtep_pairs(ctx, fk))[0]
        rpair = sorted(vtep_pairs(ctx, rk))[0]
        ev = Evidence(
            tunnels=[(fk[0], fpair[0], fpair[1], fwd_id), (rk[0], rpair[0], rpair[1], rev_id)],  # type: ignore[list-item]
            flows=[x for p in pairs[:4] for x in p],
        )
        ev.add_frames([ff.first, rf.first] + [ctx.facts.flows[x].first for p in pairs[1:4] for x in p])
        bridged = any(same_subnet(f) for f, _ in pairs)
        ev.facts = {"forward_id": fwd_id, "return_id": rev_id, "flows": len(pairs), "same_subnet": bridged}
        detail = (
            f"{flow_str(fk)} is answered in {rk[0]} {rev_id} ({rpair[0]} → {rpair[1]}, frame {rf.first[2]}) "
            f"instead of {fwd_id} (frame {ff.first[2]}); {len(pairs)} flow(s) affected."
        )
        out.append(
            Finding(
                SPEC.id,
                "warning" if bridged else "info",
                f"Replies to tunnel ID {fwd_id} come back in {rev_id} ({fpair[1]} maps the tenant differently)",
                detail,
                f"align the VNI mapping on VTEP {rpair[0]} (it sends the replies in {rev_id}) with VTEP "
                f"{fpair[0]} ({fwd_id}), or the reverse",
                ev,
                "high" if bridged else "low",
            )
        )
    return out
