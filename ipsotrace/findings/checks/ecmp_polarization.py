"""ECMP polarization: many inner flows hashed onto one or a few entropy values."""

from __future__ import annotations

from ipsotrace.findings.checks._entropy import spread
from ipsotrace.findings.context import Context, frames_str
from ipsotrace.findings.model import Evidence, Finding, Spec

SPEC = Spec(
    id="ecmp.polarization",
    severity="warning",
    title="Inner flows crowd onto a few outer entropy values (ECMP polarization)",
    explanation=(
        "A good entropy hash gives (almost) every inner flow its own outer source port, so the underlay's "
        "ECMP hash spreads them over all paths. When many inner flows share a few ports, the underlay can use "
        "only as many paths as there are ports, and the flows sharing a port share that path's fate. Causes: "
        "the VTEP hashes a subset of the inner header (only addresses, only the VNI, only MACs when traffic "
        "goes through one router), a narrow source-port range, or a middlebox rewriting ports. A flow counts "
        "where it was first placed: Linux re-draws the port of a TCP flow after a retransmission timeout, "
        "which is not polarization. (All flows on one port is ecmp.constant-entropy-port.)"
    ),
    fires_when="a VTEP pair with >= min_flows inner flows has distinct ports / flows < min_spread, or one port "
    "carries more than max_share of the flows",
    remedy="hash the full inner 5-tuple into the outer source port; widen the source-port range",
    thresholds=("ecmp.min_flows", "ecmp.min_spread", "ecmp.max_share"),
)


def check(ctx: Context) -> list[Finding]:
    t = ctx.thresholds
    out = []
    for (encap, src, dst), by_port in sorted(spread(ctx).items()):
        n = sum(len(v) for v in by_port.values())
        if len(by_port) < 2 or n < t.get("ecmp", "min_flows"):
            continue
        ranked = sorted(by_port.items(), key=lambda kv: (-len(kv[1]), kv[0]))
        top_port, top_flows = ranked[0]
        share = len(top_flows) / n
        spread_ratio = len(by_port) / n
        if spread_ratio >= t.get("ecmp", "min_spread") and share <= t.get("ecmp", "max_share"):
            continue
        ev = Evidence(
            tunnels=sorted({(encap, src, dst, fk[1]) for lst in by_port.values() for fk, _ in lst}, key=repr),
            flows=[fk for fk, _ in sorted(top_flows, key=lambda fe: fe[1])[:8]],
        )
        ev.add_frames([e for _, e in top_flows])
        ev.facts = {
            "inner_flows": n,
            "entropy_values": len(by_port),
            "busiest": {str(p): len(v) for p, v in ranked[:8]},
            "busiest_share": round(share, 3),
        }
        busiest = ", ".join(f"{p}: {len(v)}" for p, v in ranked[:4])
        detail = (
            f"{n} inner flows of {encap} {src} → {dst} use only {len(by_port)} outer source ports; port "
            f"{top_port} carries {len(top_flows)} ({share:.0%}) of them ({frames_str(ev.frames)}). "
            f"Flows per port: {busiest}."
        )
        out.append(
            Finding(
                SPEC.id,
                "warning",
                f"{encap} {src} → {dst}: {n} inner flows on {len(by_port)} entropy ports ({share:.0%} on {top_port})",
                detail,
                f"make the VTEP {src} hash the full inner 5-tuple into the outer source port and use a wide port "
                "range; verify the underlay spread with `ipsotrace probe ecmp`",
                ev,
            )
        )
    return out
