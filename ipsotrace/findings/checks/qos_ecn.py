"""Inner ECN capability not propagated to the outer header (RFC 6040 normal mode)."""

from __future__ import annotations

from ipsotrace.findings.context import Context, frames_str
from ipsotrace.findings.model import Evidence, Finding, Spec, tunnel_str

SPEC = Spec(
    id="qos.ecn-not-propagated",
    severity="warning",
    title="ECN-capable inner packets travel in Not-ECT outer packets",
    explanation=(
        "ECN lets a congested router mark packets (CE) instead of dropping them, but only when the IP header "
        "it sees says the transport is ECN-capable (ECT). Underlay routers see only the outer header: if the "
        "VTEP writes Not-ECT there, the underlay drops the tenant's ECN-capable packets under congestion and "
        "ECN (and L4S, DCTCP) stops working across the overlay. RFC 6040 says the encapsulator copies the "
        "inner ECN field to the outer header (normal mode) and the decapsulator copies CE back."
    ),
    fires_when="at least min_packets inner packets with ECT/CE, of which >= min_ratio have outer ECN 0",
    remedy="propagate ECN at the VTEP per RFC 6040 (Linux: tos inherit copies the ECN bits too)",
    thresholds=("qos.min_packets", "qos.min_ratio"),
)


def check(ctx: Context) -> list[Finding]:
    out = []
    for tk, t in sorted(ctx.facts.tunnels.items(), key=lambda kv: repr(kv[0])):
        if ctx.is_mirror(tk):
            continue  # a monitoring session copies packets, it does not carry the tenant's QoS
        if t.ecn_capable < ctx.thresholds.get("qos", "min_packets"):
            continue
        if t.ecn_lost < ctx.thresholds.get("qos", "min_ratio") * t.ecn_capable:
            continue
        ev = Evidence(tunnels=[tk], flows=ctx.flows_by_tunnel.get(tk, [])[:8])
        ev.add_frames(t.ecn_ev.items)
        ev.facts = {"ecn_capable_packets": t.ecn_capable, "outer_not_ect": t.ecn_lost}
        detail = (
            f"{t.ecn_lost} of {t.ecn_capable} ECN-capable inner packets of {tunnel_str(tk)} are sent with "
            f"outer ECN Not-ECT ({frames_str(ev.frames)}): underlay congestion will drop them instead of marking."
        )
        out.append(
            Finding(
                SPEC.id,
                "warning",
                f"{tunnel_str(tk)} hides ECN from the underlay (outer Not-ECT)",
                detail,
                f"make VTEP {tk[1]} copy the inner ECN field to the outer header (RFC 6040 normal mode; Linux: "
                "ip link set DEV type vxlan tos inherit)",
                ev,
            )
        )
    return out
