"""The entropy source port does not depend on the inner flow: one port for every inner flow."""

from __future__ import annotations

from ipsotrace.findings.checks._entropy import spread
from ipsotrace.findings.context import Context, frames_str
from ipsotrace.findings.model import Evidence, Finding, Spec

SPEC = Spec(
    id="ecmp.constant-entropy-port",
    severity="warning",
    title="Every inner flow of a tunnel uses the same outer source port",
    explanation=(
        "VXLAN, Geneve, GPE, MPLS-over-UDP and GRE-in-UDP put a hash of the inner flow into the outer UDP "
        "source port (RFC 7348 section 5) so that underlay routers, which hash only the outer 5-tuple, spread "
        "tunnels over their ECMP paths. A VTEP that uses one fixed source port for all inner flows puts the "
        "whole tunnel on a single underlay path: the other links stay idle, that path congests, and one bad "
        "link takes every flow down with it. Typical causes: a software VTEP configured with a fixed port "
        "range of one (Linux `srcport MIN MAX`), hardware that hashes only the VNI, or NAT rewriting ports.\n"
        "For an IPv6 underlay without UDP entropy the flow label plays this role."
    ),
    fires_when="a VTEP pair carries >= min_flows inner flows and they all share one entropy value",
    remedy="derive the outer source port from the inner 5-tuple (Linux default srcport range 32768-60999)",
    thresholds=("ecmp.min_flows",),
)


def check(ctx: Context) -> list[Finding]:
    out = []
    for (encap, src, dst), by_port in sorted(spread(ctx).items()):
        flows = [fe for lst in by_port.values() for fe in lst]
        if len(by_port) != 1 or len(flows) < ctx.thresholds.get("ecmp", "min_flows"):
            continue
        port = next(iter(by_port))
        flows.sort(key=lambda fe: fe[1])
        ev = Evidence(
            tunnels=sorted({(encap, src, dst, fk[1]) for fk, _ in flows}, key=repr), flows=[f for f, _ in flows[:8]]
        )
        ev.add_frames([e for _, e in flows])
        ev.facts = {"entropy_value": port, "inner_flows": len(flows)}
        detail = (
            f"{len(flows)} inner flows of {encap} {src} → {dst} all leave with outer source port {port} "
            f"({frames_str(ev.frames)} are the first packets of some of them): the underlay sees one flow."
        )
        out.append(
            Finding(
                SPEC.id,
                "warning",
                f"{encap} {src} → {dst}: all {len(flows)} inner flows use outer source port {port}",
                detail,
                f"make the VTEP {src} derive the outer source port from the inner flow hash (e.g. Linux "
                "`ip link set DEV type vxlan srcport 32768 61000`), then check the spread again",
                ev,
            )
        )
    return out
