"""Tunnel health: TCP retransmission rate of the inner flows."""

from __future__ import annotations

from ipsotrace.findings.context import Context, frames_str
from ipsotrace.findings.model import Evidence, Finding, PathKey, Spec, tunnel_str

SPEC = Spec(
    id="health.retransmissions",
    severity="warning",
    title="High TCP retransmission rate inside a tunnel",
    explanation=(
        "The inner TCP flows of a tunnel retransmit a large share of their segments: packets are lost in the "
        "overlay or the underlay (congestion, a bad link or optic, an MTU problem, policing). Losses are "
        "blamed on the outer path that carried the data first, so a single bad ECMP member shows up as one "
        "outer source port with most of the retransmissions. Compare with mtu.pmtu-black-hole (losses by "
        "size) and ecmp.* (paths)."
    ),
    fires_when="retransmitted / TCP data segments >= retx_ratio with at least min_retransmissions",
    remedy="find the lossy path (outer ports with most losses; probe them) and check its links' error counters",
    thresholds=("health.retx_ratio", "health.min_retransmissions"),
)


def check(ctx: Context) -> list[Finding]:
    t = ctx.thresholds
    out = []
    for tk, flows in sorted(ctx.flows_by_tunnel.items(), key=lambda kv: repr(kv[0])):
        if ctx.is_mirror(tk):
            continue  # retransmissions of mirrored traffic are the monitored network's, not the tunnel's
        sent = retx = 0
        per_path: dict[PathKey, int] = {}
        frames = []
        for fk in flows:
            for pk, pf in ctx.facts.flows[fk].paths.items():
                if (pk[0], pk[1]) != (tk[1], tk[2]):
                    continue
                sent += sum(pf.new_bins)
                r = sum(pf.retx_bins)
                retx += r
                if r:
                    per_path[pk] = per_path.get(pk, 0) + r
                    frames += pf.retx_ev.items
        if retx < t.get("health", "min_retransmissions") or retx < t.get("health", "retx_ratio") * (sent + retx):
            continue
        worst = sorted(per_path.items(), key=lambda kv: -kv[1])
        ev = Evidence(tunnels=[tk], flows=flows[:8], paths=[pk for pk, _ in worst[:8]])
        ev.add_frames(frames)
        rate = retx / (sent + retx)
        ev.facts = {"segments": sent + retx, "retransmissions": retx, "rate": round(rate, 4)}
        top = ", ".join(f"port {pk[3]}: {n}" for pk, n in worst[:4])
        out.append(
            Finding(
                SPEC.id,
                "warning",
                f"{tunnel_str(tk)}: {rate:.1%} of inner TCP segments retransmitted",
                f"{retx} of {sent + retx} inner TCP data segments were retransmitted ({frames_str(ev.frames)}); "
                f"losses by outer path: {top}.",
                f"probe the outer path(s) with the most losses (`ipsotrace probe pmtu/ping --sport "
                f"{worst[0][0][3]} {tk[2]}`) and check interface error and drop counters along them",
                ev,
                "medium",
            )
        )
    return out
