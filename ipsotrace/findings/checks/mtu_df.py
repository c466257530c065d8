"""Inner packets that may not be fragmented are larger than the overlay can carry."""

from __future__ import annotations

from ipsotrace.findings.context import Context, evs, frames_str
from ipsotrace.findings.model import Evidence, Finding, Spec, tunnel_str

SPEC = Spec(
    id="mtu.inner-df-exceeds-overlay",
    severity="error",
    title="Inner packets with DF are larger than the overlay can carry",
    explanation=(
        "Every tunnel adds its own headers (VXLAN over IPv4: 50 bytes including the inner Ethernet header, "
        "more with VLAN tags, Geneve options or an IPv6 underlay). An inner packet that may not be fragmented "
        "(IPv4 with DF, any IPv6 packet) and is larger than the underlay MTU minus that overhead cannot cross "
        "the underlay: the first link with the smaller MTU drops it and should answer ICMP fragmentation-needed "
        "to the VTEP, which the tenant host never sees. TCP stalls on large segments while small ones pass; "
        "UDP applications lose their large datagrams.\n"
        "The overhead is measured on the wire (outer IP length minus inner IP length of the same packet). "
        "The underlay MTU comes from the inventory (--inventory), or from an ICMP fragmentation-needed / "
        "packet-too-big seen for the tunnel. Without either the finding stays silent: the capture then only "
        "shows that the underlay carried the packets as far as the capture point (mtu.mss-exceeds-overlay "
        "and mtu.pmtu-black-hole still judge them; `ipsotrace probe pmtu` measures the path).\n"
        "TSO/GSO super-frames (captured before segmentation) are never counted."
    ),
    fires_when="largest DF inner packet + measured overhead > underlay MTU known from the inventory or an ICMP PTB",
    remedy="lower the tenant MTU to underlay MTU minus overhead, or raise the underlay MTU on the path",
)


def check(ctx: Context) -> list[Finding]:
    out = []
    for tk, flows in sorted(ctx.flows_by_tunnel.items(), key=lambda kv: repr(kv[0])):
        overhead = ctx.overhead(tk)
        known_mtu = ctx.underlay_mtu(tk[1], tk[2])
        if known_mtu is None:
            continue  # the largest outer packet seen is all we know the underlay carries: no evidence
        mtu, how = known_mtu
        capacity = mtu - overhead
        over = []
        frames = []
        for fk in flows:
            ff = ctx.facts.flows[fk]
            if ff.df_max > capacity:
                over.append(fk)
                frames += [ev for neg, ev in ff.df_top.items if -neg > capacity]
        if not over:
            continue
        df_max = max(ctx.facts.flows[fk].df_max for fk in over)
        t = ctx.tunnel(tk)
        outer_max = -t.outer_top.items[0][0] if t and t.outer_top.items else df_max + overhead
        needed = df_max + overhead
        via = ""
        ptb = [p for p in ctx.ptbs_for(tk[1], tk[2]) if p.mtu]
        if ptb and not ctx.inventory.mtu_for(tk[1], tk[2]):
            via = f" through {min(ptb, key=lambda p: p.mtu).reporter}"
        ev = Evidence(tunnels=[tk], flows=over[:8])
        ev.add_frames(evs(frames))
        ev.facts = {
            "largest_df_inner": df_max,
            "overhead": overhead,
            "underlay_mtu": mtu,
            "underlay_mtu_from": how,
            "overlay_capacity": capacity,
            "largest_outer": outer_max,
            "flows_over": len(over),
        }
        detail = (
            f"{len(over)} inner flow(s) of {tunnel_str(tk)} send DF packets of up to {df_max} bytes "
            f"({frames_str(ev.frames)}); with {overhead} bytes of encapsulation they need a {needed}-byte "
            f"underlay, but the underlay MTU is {mtu} ({how}), so the overlay carries at most {capacity}."
        )
        out.append(
            Finding(
                SPEC.id,
                "error",
                f"DF inner packets of {df_max} B exceed the {capacity}-byte overlay capacity of {tunnel_str(tk)}",
                detail,
                f"lower the inner MTU to {capacity} or raise the underlay MTU to {needed} "
                f"on the path {tk[1]} → {tk[2]}{via}",
                ev,
            )
        )
    return out
