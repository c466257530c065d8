"""PMTU black hole: large TCP segments lost on an outer path without any ICMP, small ones pass."""

from __future__ import annotations

from ipsotrace.correlate.aggregates import SIZE_BINS
from ipsotrace.findings.collect import FlowFacts, PathFacts
from ipsotrace.findings.context import Context, frames_str
from ipsotrace.findings.model import Ev, Evidence, Finding, FlowKey, PathKey, Spec, TunnelKey, tunnel_str

SPEC = Spec(
    id="mtu.pmtu-black-hole",
    severity="error",
    title="PMTU black hole: large segments vanish on an underlay path, small ones pass",
    explanation=(
        "A TCP inner flow whose large segments are retransmitted again and again while its small segments "
        "(handshake, requests) go through, with no ICMP fragmentation-needed / packet-too-big in sight, is "
        "the signature of a path MTU black hole: some link on the underlay has a smaller MTU and its router "
        "either does not send the ICMP error or a firewall drops it, so neither the VTEP nor the tenant host "
        "ever learns the limit. Connections open, then hang on the first full-size segment.\n"
        "Each retransmission is blamed on the outer path that carried that data first, because Linux "
        "re-draws a flow's VXLAN/Geneve entropy port on a retransmission timeout: the resent segments (mixed "
        "with new data) may leave on another ECMP path and get through there. One inner flow "
        "over several outer source ports, with the losses on the first, is evidence about the first path. "
        "When only some entropy ports of a tunnel are affected, one ECMP member of the underlay has the "
        "smaller MTU.\n"
        "If an ICMP packet-too-big for the tunnel is in the capture, the finding still fires (the inner "
        "sender kept sending large segments: the VTEP did not relay the limit), and mtu.ptb-for-tunnel says "
        "which router sent it."
    ),
    fires_when=(
        "on one outer path: >= min_retransmissions retransmitted segments of >= large_min bytes, at least "
        "large_retx_ratio per large segment sent there, while the flow's smaller segments were retransmitted "
        "at most small_retx_ratio of the time"
    ),
    remedy="find the small-MTU link on that ECMP path (probe with its outer source port); fix ICMP or lower MTU",
    thresholds=(
        "blackhole.large_min",
        "blackhole.min_retransmissions",
        "blackhole.large_retx_ratio",
        "blackhole.small_retx_ratio",
    ),
)


def _signature(ctx: Context, ff: FlowFacts, pf: PathFacts) -> tuple[int, int, int] | None:
    """(boundary bin, large segments sent, large retransmissions) when the path shows the signature."""
    t = ctx.thresholds
    large_min = t.get("blackhole", "large_min")
    for b in range(1, len(SIZE_BINS)):
        if SIZE_BINS[b] < large_min:
            continue
        large_new = sum(pf.new_bins[b:])
        large_retx = sum(pf.retx_bins[b:])
        if large_retx < t.get("blackhole", "min_retransmissions"):
            return None  # fewer still in higher bins
        if large_retx < t.get("blackhole", "large_retx_ratio") * large_new:
            continue
        small_new = sum(sum(p.new_bins[:b]) for p in ff.paths.values())
        small_retx = sum(sum(p.retx_bins[:b]) for p in ff.paths.values())
        if small_new and small_retx <= t.get("blackhole", "small_retx_ratio") * small_new:
            return b, large_new, large_retx
    return None


def _entropy(pk: PathKey) -> str:
    return f"source port {pk[3]}" if pk[3] else f"flow label {pk[5]:#x}"


def check(ctx: Context) -> list[Finding]:
    # per tunnel: affected paths with their flows and evidence, and paths where large segments got through
    bad: dict[TunnelKey, dict[PathKey, list[tuple[FlowKey, int, int, int, list[Ev]]]]] = {}
    good: dict[TunnelKey, set[PathKey]] = {}
    large_min = ctx.thresholds.get("blackhole", "large_min")
    for fk, ff in ctx.facts.flows.items():
        if fk[5] != 6:
            continue
        for pk, pf in ff.paths.items():
            tk = (fk[0], pk[0], pk[1], fk[1])
            if ctx.is_mirror(tk):
                continue
            sig = _signature(ctx, ff, pf)
            if sig is not None:
                b, large_new, large_retx = sig
                lost_min = max(SIZE_BINS[b], pf.retx_min_size)
                bad.setdefault(tk, {}).setdefault(pk, []).append(
                    (fk, large_new, large_retx, lost_min, pf.retx_ev.items)
                )
            elif pf.new_max >= large_min and sum(pf.retx_bins) == 0:
                good.setdefault(tk, set()).add(pk)
    out = []
    for tk, paths in sorted(bad.items(), key=lambda kv: repr(kv[0])):
        overhead = ctx.overhead(tk)
        all_paths = set(paths) | good.get(tk, set())
        ok_paths = sorted(good.get(tk, set()) - set(paths))
        lost_min = min(x[3] for lst in paths.values() for x in lst)
        retx = sum(x[2] for lst in paths.values() for x in lst)
        flows = sorted({x[0] for lst in paths.values() for x in lst}, key=lambda fk: ctx.facts.flows[fk].first)
        frames = [e for lst in paths.values() for x in lst for e in x[4]]
        ptbs = ctx.ptbs_for(tk[1], tk[2])
        ev = Evidence(tunnels=[tk], flows=flows[:8], paths=sorted(paths))
        ev.add_frames(frames)
        ports = ", ".join(_entropy(pk) for pk in sorted(paths))
        mtu = ctx.underlay_mtu(tk[1], tk[2])
        inner_ok = min(mtu[0] - overhead if mtu else 1500 - overhead, lost_min - 1)
        ev.facts = {
            "affected_paths": len(paths),
            "paths_seen": len(all_paths),
            "healthy_paths": [pk[3] or pk[5] for pk in ok_paths],
            "smallest_lost_inner": lost_min,
            "smallest_lost_outer": lost_min + overhead,
            "retransmissions": retx,
            "ptb_seen": bool(ptbs),
            "overhead": overhead,
        }
        share = f"{len(paths)} of {len(all_paths)} ECMP paths" if len(all_paths) > 1 else "the only path seen"
        title = f"PMTU black hole on {share} ({ports}) of {tunnel_str(tk)}"
        if ptbs:
            why = (
                f"ICMP too-big from {ptbs[0].reporter} reached the VTEP, but the inner sender kept sending "
                "large segments: the limit is not relayed into the overlay."
            )
        else:
            why = "No ICMP fragmentation-needed / packet-too-big for this tunnel is in the capture."
        healthy = (
            f" Large segments pass on {', '.join(_entropy(pk) for pk in ok_paths[:6])}: one ECMP member has the "
            "smaller MTU."
            if ok_paths
            else ""
        )
        detail = (
            f"{retx} retransmissions of inner segments of {lost_min} bytes and more ({lost_min + overhead} bytes "
            f"outer) blamed on {ports} ({frames_str(ev.frames)}), while smaller segments of the same flow(s) "
            f"pass. {why}{healthy}"
        )
        first = sorted(paths)[0]
        remedy = (
            f"locate the link with the smaller MTU on the path of outer {_entropy(first)} "
            f"(`ipsotrace probe pmtu --sport {first[3]} {tk[2]}`) and let its router send ICMP "
            f"fragmentation-needed, or lower the inner MTU to {inner_ok} (clamp MSS to {inner_ok - 40})"
        )
        conf = "high" if ok_paths or retx >= 2 * ctx.thresholds.get("blackhole", "min_retransmissions") else "medium"
        out.append(Finding(SPEC.id, "error", title, detail, remedy, ev, conf))  # type: ignore[arg-type]
    return out
