"""Tunnel health: inner packets expiring (time-exceeded) inside the overlay."""

from __future__ import annotations

from ipsotrace.findings.context import Context, frames_str
from ipsotrace.findings.model import Evidence, Finding, Spec, tunnel_str

SPEC = Spec(
    id="health.ttl-expired",
    severity="warning",
    title="Inner packets expire (TTL exceeded) inside the overlay",
    explanation=(
        "ICMP time-exceeded messages about tenant traffic are carried through the tunnel: inner packets "
        "reached TTL 0 at a router in the overlay. Outside of traceroute (whose probes are not counted: UDP "
        "33434-33534 and ICMP echo) that means a routing loop between tenant routers or VTEPs doing routing "
        "(IRB), or hosts sending with a very low TTL."
    ),
    fires_when="at least min_ttl_expired non-traceroute time-exceeded errors carried in one tunnel",
    remedy="look for a routing loop at the reporting router; compare the routes of the VTEPs/tenant routers",
    thresholds=("health.min_ttl_expired",),
)


def check(ctx: Context) -> list[Finding]:
    out = []
    for tk, t in sorted(ctx.facts.tunnels.items(), key=lambda kv: kv[1].first):
        if t.ttl_expired < ctx.thresholds.get("health", "min_ttl_expired"):
            continue
        ev = Evidence(tunnels=[tk])
        ev.add_frames(t.ttl_expired_ev.items)
        reporters = t.ttl_expired_reporters.items
        ev.facts = {"count": t.ttl_expired, "reporters": reporters}
        out.append(
            Finding(
                SPEC.id,
                "warning",
                f"{t.ttl_expired} inner packets expired in {tunnel_str(tk)} (reported by {', '.join(reporters)})",
                f"{t.ttl_expired} ICMP time-exceeded about tenant traffic (not traceroute) travel in "
                f"{tunnel_str(tk)} ({frames_str(ev.frames)}), sent by {', '.join(reporters)}.",
                f"check the routes at {reporters[0]} for a loop (the quoted packets' destinations say which "
                "prefix), and the TTL the tenant hosts send with",
                ev,
                "medium",
            )
        )
    return out
