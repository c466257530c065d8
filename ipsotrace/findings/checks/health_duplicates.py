"""Tunnel health: duplicate inner packets (loops, mirrored traffic)."""

from __future__ import annotations

from ipsotrace.findings.context import Context, frames_str
from ipsotrace.findings.model import Evidence, Finding, Spec, tunnel_str

SPEC = Spec(
    id="health.duplicate-packets",
    severity="warning",
    title="Duplicate inner packets in a tunnel",
    explanation=(
        "The same inner packet (same IP ID, length, transport checksum and sequence numbers) is carried more "
        "than once within a few packets of its flow. With a lower inner TTL on the copy it went around a "
        "routing loop through the overlay; with the same TTL it is an L2 loop (a BUM frame flooded back by "
        "two VTEPs, a multihoming designated-forwarder problem), a duplicating device (port mirror "
        "feeding back, a misbehaving NIC), or the capture itself seeing the packet twice (two capture "
        "points): rule that out first."
    ),
    fires_when="duplicates >= min_duplicates and >= duplicate_ratio of the tunnel's inner packets",
    remedy="find the loop (TTL decreasing) or the duplicating device; check EVPN DF election and flood lists",
    thresholds=("health.min_duplicates", "health.duplicate_ratio"),
)


def check(ctx: Context) -> list[Finding]:
    t = ctx.thresholds
    out = []
    for tk, flows in sorted(ctx.flows_by_tunnel.items(), key=lambda kv: repr(kv[0])):
        dups = loops = packets = 0
        frames = []
        hit = []
        for fk in flows:
            ff = ctx.facts.flows[fk]
            packets += ff.packets
            if ff.dup.duplicates:
                dups += ff.dup.duplicates
                loops += ff.dup.loops
                frames += ff.dup.ev.items
                hit.append(fk)
        if dups < t.get("health", "min_duplicates") or dups < t.get("health", "duplicate_ratio") * packets:
            continue
        ev = Evidence(tunnels=[tk], flows=hit[:8])
        ev.add_frames(frames)
        ev.facts = {"duplicates": dups, "ttl_decreasing": loops, "packets": packets}
        kind = "a routing loop (inner TTL decreases on each copy)" if loops else "duplicated, same TTL"
        out.append(
            Finding(
                SPEC.id,
                "warning",
                f"{tunnel_str(tk)}: {dups} duplicate inner packets ({'loop' if loops else 'duplication'})",
                f"{dups} of {packets} inner packets in {len(hit)} flow(s) are copies of a recent packet "
                f"({frames_str(ev.frames)}): {kind}.",
                "follow the inner TTL of the copies to find the loop (routes on the VTEPs / tenant routers), "
                "or the device that duplicates (EVPN designated forwarder, port mirrors, capture setup)",
                ev,
                "medium",
            )
        )
    return out
