"""A tunnel seen for one packet only, in a capture where the other tunnels are busy."""

from __future__ import annotations

from ipsotrace.findings.context import Context, frames_str
from ipsotrace.findings.model import Evidence, Finding, Spec, tunnel_str

SPEC = Spec(
    id="tunnel.single-packet",
    severity="info",
    title="Tunnel seen for one packet only",
    explanation=(
        "In a capture whose other tunnels carry traffic, a tunnel (VTEP pair and tunnel ID) appears for a "
        "single packet: a stray VNI from a mis-mapped port, a probe, a BUM (flood) packet to a VTEP that "
        "otherwise gets no traffic, or a packet from something that should not be sending tunnel traffic. "
        "Reported for information: check it against the inventory."
    ),
    fires_when="a tunnel with exactly 1 packet, no reverse tunnel, in a capture with >= 20 other tunnel packets",
    remedy="check the sender and the tunnel ID against the inventory (--inventory makes this a warning if unknown)",
)

BUSY = 20


def check(ctx: Context) -> list[Finding]:
    total = sum(ts.packets for ts in ctx.agg.tunnels.values())
    out = []
    for tk, ts in sorted(ctx.agg.tunnels.items(), key=lambda kv: kv[1].first):
        if ts.packets != 1 or total - 1 < BUSY or ts.depths != 1:
            continue
        if (tk[0], tk[2], tk[1], tk[3]) in ctx.agg.tunnels:
            continue  # one side of a conversation whose other direction is there (a lone SYN, a reply)
        ev = Evidence(tunnels=[tk])
        ev.add_frames([ts.first])
        ev.facts = {"capture_tunnel_packets": total}
        out.append(
            Finding(
                SPEC.id,
                "info",
                f"{tunnel_str(tk)} appears for one packet only",
                f"{tunnel_str(tk)} carries a single packet ({frames_str(ev.frames)}) among {total} tunnel packets.",
                f"check that {tk[1]} should send tunnel ID {tk[3]} to {tk[2]}",
                ev,
                "low",
            )
        )
    return out
