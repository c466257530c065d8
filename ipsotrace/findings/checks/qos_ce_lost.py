"""Congestion marks (CE) set on the underlay are lost at decapsulation."""

from __future__ import annotations

from ipsotrace.findings.context import Context, frames_str
from ipsotrace.findings.model import Evidence, Finding, FlowKey, Spec, flow_str

SPEC = Spec(
    id="qos.ecn-ce-lost",
    severity="warning",
    title="Underlay congestion marks (CE) never reach the inner receiver",
    explanation=(
        "An underlay router marked outer packets Congestion Experienced (CE). RFC 6040 requires the "
        "decapsulating VTEP to copy CE into the inner header when the inner packet is ECN-capable; the "
        "receiver then echoes it to the sender (TCP ECE) and the sender slows down. If the return direction of "
        "the same inner TCP flow, visible in the capture, never sets ECE after the marks, the decapsulator "
        "dropped the CE mark: the sender never learns of the congestion, keeps its rate, and the underlay "
        "queue ends up dropping instead.\n"
        "Needs both directions of the inner flow in the capture."
    ),
    fires_when="a TCP inner flow has packets with ECT inside and CE outside, and its return flow sends no "
    "ECE after the first mark",
    remedy="make the decapsulating VTEP copy CE into the inner header (RFC 6040)",
)


def _reverse(fk: FlowKey) -> FlowKey:
    return (fk[0], fk[1], fk[2], fk[4], fk[3], fk[5], fk[7], fk[6])


def check(ctx: Context) -> list[Finding]:
    out = []
    for fk, ff in sorted(ctx.facts.flows.items(), key=lambda kv: kv[1].first):
        if fk[5] != 6 or not ff.ce_outer:
            continue
        rk = _reverse(fk)
        rev = ctx.facts.flows.get(rk)
        rs = ctx.agg.flows.get(rk)
        if rev is None or rs is None or rev.ece or rs.last_ns <= ff.ce_first_ns:
            continue
        pk = min(ff.paths, key=lambda p: ff.paths[p].first)
        decap = pk[1]
        ev = Evidence(tunnels=[(fk[0], pk[0], pk[1], fk[1])], flows=[fk, rk])
        ev.add_frames(ff.ce_ev.items)
        ev.facts = {"ce_marked": ff.ce_outer, "return_packets": rs.packets, "return_ece": 0}
        detail = (
            f"{ff.ce_outer} packets of {flow_str(fk)} arrived with outer CE and inner ECT "
            f"({frames_str(ev.frames)}), yet the {rs.packets} return packets never echo ECE: "
            f"the CE mark was not copied into the inner header at the decapsulating VTEP {decap}."
        )
        out.append(
            Finding(
                SPEC.id,
                "warning",
                f"CE marks lost at decapsulation on {decap} for {flow_str(fk)}",
                detail,
                f"make VTEP {decap} copy CE from the outer to the inner header at decapsulation (RFC 6040); "
                "until then congestion on the underlay shows up as loss",
                ev,
                "medium",
            )
        )
    return out
