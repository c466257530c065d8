"""Inner TTL / hop limit not inherited by the outer header (pipe model)."""

from __future__ import annotations

from ipsotrace.findings.context import Context, frames_str
from ipsotrace.findings.model import Evidence, Finding, Spec, tunnel_str

SPEC = Spec(
    id="ttl.not-inherited",
    severity="info",
    title="Outer TTL does not follow the inner TTL (pipe model)",
    explanation=(
        "The VTEP writes its own TTL / hop limit into the outer header instead of copying the inner one (RFC "
        "2983/3443 pipe model, the Linux default `ttl auto`). That is a valid choice, with consequences: a "
        "traceroute through the overlay shows the overlay hops only (the underlay is invisible to the tenant), "
        "a loop in the overlay is bounded by the inner TTL only, and a TTL-based security check (GTSM) on the "
        "underlay sees the VTEP's value. Reported for information."
    ),
    fires_when="at least min_packets compared, >= min_ratio with outer TTL neither the inner TTL nor one less",
    remedy="nothing to do unless you need the uniform model (Linux: ip link set DEV type vxlan ttl inherit)",
    thresholds=("qos.min_packets", "qos.min_ratio"),
)


def check(ctx: Context) -> list[Finding]:
    out = []
    for tk, t in sorted(ctx.facts.tunnels.items(), key=lambda kv: repr(kv[0])):
        if ctx.is_mirror(tk):
            continue  # a monitoring session copies packets, it does not carry the tenant's QoS
        if t.ttl_compared < ctx.thresholds.get("qos", "min_packets"):
            continue
        if t.ttl_compared - t.ttl_copied < ctx.thresholds.get("qos", "min_ratio") * t.ttl_compared:
            continue
        ev = Evidence(tunnels=[tk])
        ev.add_frames(t.ttl_ev.items)
        ts = ctx.agg.tunnels.get(tk)
        outer = sorted(ts.ttl, key=lambda k: -ts.ttl[k])[:3] if ts else []
        ev.facts = {"compared": t.ttl_compared, "copied": t.ttl_copied, "outer_ttls": outer}
        detail = (
            f"{t.ttl_compared - t.ttl_copied} of {t.ttl_compared} packets of {tunnel_str(tk)} have an outer TTL "
            f"unrelated to the inner one (outer TTL {', '.join(map(str, outer))}; {frames_str(ev.frames)})."
        )
        out.append(
            Finding(
                SPEC.id,
                "info",
                f"{tunnel_str(tk)} uses its own outer TTL (pipe model)",
                detail,
                "none needed; for the uniform model: ip link set DEV type vxlan ttl inherit",
                ev,
            )
        )
    return out
