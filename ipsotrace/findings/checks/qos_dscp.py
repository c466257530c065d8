"""Inner DSCP not copied to the outer header: the underlay cannot honour the tenant's QoS marking."""

from __future__ import annotations

from ipsotrace.findings.context import Context, frames_str
from ipsotrace.findings.model import Evidence, Finding, Spec, tunnel_str

SPEC = Spec(
    id="qos.dscp-not-inherited",
    severity="warning",
    title="Inner DSCP is not copied to the outer header",
    explanation=(
        "Underlay routers see only the outer IP header. When the VTEP writes DSCP 0 there (the pipe model "
        "with a default of best effort), tenant traffic marked EF or AF (voice, storage, control) gets no "
        "priority on the underlay and is dropped first under congestion. RFC 2983 describes the uniform model "
        "(copy the inner DSCP to the outer header at encapsulation); Linux VXLAN/Geneve do it with "
        "`tos inherit`. A fixed non-zero outer DSCP is a deliberate policy: reported as info."
    ),
    fires_when="at least min_packets marked inner packets (DSCP != 0), of which >= min_ratio have another outer DSCP",
    remedy="copy the inner DSCP to the outer header at the VTEP (Linux: ip link set DEV type vxlan tos inherit)",
    thresholds=("qos.min_packets", "qos.min_ratio"),
)


def check(ctx: Context) -> list[Finding]:
    out = []
    for tk, t in sorted(ctx.facts.tunnels.items(), key=lambda kv: repr(kv[0])):
        if ctx.is_mirror(tk):
            continue  # a monitoring session copies packets, it does not carry the tenant's QoS
        bad = t.dscp_lost + t.dscp_changed
        if t.dscp_marked < ctx.thresholds.get("qos", "min_packets"):
            continue
        if bad < ctx.thresholds.get("qos", "min_ratio") * t.dscp_marked:
            continue
        lost = t.dscp_lost >= t.dscp_changed
        pairs: dict[tuple[int, int], int] = {}
        for fk in ctx.flows_by_tunnel.get(tk, []):
            fs = ctx.agg.flows.get(fk)
            for (i, o), c in fs.dscp_pairs.items() if fs else ():
                if i and i != o:
                    pairs[(i, o)] = pairs.get((i, o), 0) + c
        ev = Evidence(tunnels=[tk], flows=ctx.flows_by_tunnel.get(tk, [])[:8])
        ev.add_frames(t.dscp_ev.items)
        ev.facts = {
            "marked_packets": t.dscp_marked,
            "outer_zero": t.dscp_lost,
            "outer_other": t.dscp_changed,
            "inner_outer_pairs": [[i, o, c] for (i, o), c in sorted(pairs.items())],
        }
        shown = ", ".join(f"{i}→{o}" for (i, o) in sorted(pairs, key=lambda k: -pairs[k])[:4])
        detail = (
            f"{bad} of {t.dscp_marked} marked inner packets of {tunnel_str(tk)} carry another outer DSCP "
            f"(inner→outer: {shown}; {frames_str(ev.frames)})."
        )
        title = (
            f"{tunnel_str(tk)} erases the inner DSCP marking (outer DSCP 0)"
            if lost
            else f"{tunnel_str(tk)} re-marks inner DSCP on the outer header"
        )
        out.append(
            Finding(
                SPEC.id,
                "warning" if lost else "info",
                title,
                detail,
                f"copy the inner DSCP to the outer header on VTEP {tk[1]} (Linux: ip link set DEV type "
                f"{tk[0] if tk[0] in ('vxlan', 'geneve') else 'vxlan'} tos inherit; OVS: options:tos=inherit)",
                ev,
            )
        )
    return out
