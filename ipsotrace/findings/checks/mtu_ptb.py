"""ICMP fragmentation-needed / packet-too-big received for outer (tunnel) packets."""

from __future__ import annotations

from ipsotrace.findings.context import Context, evs, frames_str
from ipsotrace.findings.model import Evidence, Finding, Spec, flow_str, tunnel_str

SPEC = Spec(
    id="mtu.ptb-for-tunnel",
    severity="error",
    title="The underlay sent ICMP packet-too-big for tunnel packets",
    explanation=(
        "A router on the underlay could not forward an outer (encapsulated) packet because the next link's MTU "
        "is smaller, and said so with ICMP fragmentation-needed (IPv4) or packet-too-big (IPv6), quoting the "
        "outer headers. The error goes to the VTEP, not to the tenant host that sent the inner packet: unless "
        "the VTEP lowers its tunnel MTU and relays the limit to the inner sender, the inner flow keeps sending "
        "packets that are dropped. The quote names the tunnel and, when long enough, the inner flow.\n"
        "Severity is error when the advertised MTU is below what the overlay needs for the inner packets seen "
        "(largest DF inner packet + encapsulation), warning otherwise (e.g. a transient route change) and when "
        "the router gives no MTU at all (pre-RFC 1191)."
    ),
    fires_when="frag-needed / packet-too-big whose quote is an outer packet of a tunnel in the capture",
    remedy="lower the inner MTU to advertised MTU minus overhead, or raise the MTU of the link behind the reporter",
)


def check(ctx: Context) -> list[Finding]:
    out = []
    groups: dict[tuple[str, int, tuple[str, str]], list] = {}  # type: ignore[type-arg]
    for p in ctx.ptbs:
        groups.setdefault((p.reporter, p.mtu, p.pair), []).append(p)
    for (reporter, mtu, pair), ptbs in sorted(groups.items(), key=lambda kv: kv[1][0].first):
        tunnels = sorted(
            {p.tunnel for p in ptbs if p.tunnel} or {tk for tk in ctx.agg.tunnels if tk[1:3] == pair}, key=repr
        )
        flows = []
        for p in ptbs:
            if p.flow is not None and p.flow in ctx.facts.flows:
                flows.append(p.flow)
            elif p.path is not None:
                flows += ctx.flows_by_path.get(p.path, [])
        flows = sorted(set(flows), key=lambda fk: ctx.facts.flows[fk].first)
        if not flows:  # the quote stops before the inner header: every flow of the tunnel is exposed
            for tk in tunnels:
                flows += ctx.flows_by_tunnel.get(tk, [])
        overhead = max((ctx.overhead(tk) for tk in tunnels), default=50)
        df_max = max((ctx.facts.flows[fk].df_max for fk in flows if fk in ctx.facts.flows), default=0)
        needed = (df_max or 1500) + overhead
        count = sum(p.count for p in ptbs)
        frames = [p.first for p in ptbs]
        for fk in flows[:4]:
            frames += [e for neg, e in ctx.facts.flows[fk].df_top.items if mtu and -neg + overhead > mtu][:2]
        ev = Evidence(tunnels=tunnels, flows=flows[:8], paths=sorted({p.path for p in ptbs if p.path}))
        ev.add_frames(evs(frames))
        ev.facts = {"reporter": reporter, "mtu": mtu, "count": count, "overhead": overhead, "needed": needed}
        names = ", ".join(tunnel_str(tk) for tk in tunnels[:3]) or f"{pair[0]} → {pair[1]}"
        affected = "; ".join(flow_str(fk) for fk in flows[:3]) or "no inner flow in the capture"
        if not mtu:
            sev, title = "warning", f"{reporter} reports packet too big for {names} without giving an MTU"
            remedy = (
                f"find the link behind {reporter} with the smaller MTU (`ipsotrace probe pmtu` on the tunnel's "
                f"outer source port) and raise it to {needed}, or lower the inner MTU accordingly"
            )
        else:
            sev = "error" if mtu < needed else "warning"
            title = f"{reporter} limits {names} to MTU {mtu}; the overlay needs {needed}"
            remedy = (
                f"lower the inner MTU to {mtu - overhead} (clamp TCP MSS to {mtu - overhead - 40}) or raise "
                f"the underlay MTU to {needed} on the link behind {reporter}"
            )
        detail = (
            f"{count} ICMP error(s) from {reporter} ({frames_str([p.first for p in ptbs])}) quote outer packets "
            f"{pair[0]} → {pair[1]}; advertised MTU {mtu or 'none'}; encapsulation {overhead} bytes; "
            f"inner flows affected: {affected}."
        )
        out.append(Finding(SPEC.id, sev, title, detail, remedy, ev, "high"))  # type: ignore[arg-type]
    return out
