"""Tunnels crossing networks the user marks untrusted, in clear."""

from __future__ import annotations

from ipsotrace.findings.context import Context, frames_str
from ipsotrace.findings.model import Evidence, Finding, FlowKey, Spec, tunnel_str

SPEC = Spec(
    id="security.cleartext-overlay",
    severity="warning",
    title="Overlay crosses an untrusted network in clear",
    explanation=(
        "VXLAN, Geneve, GRE and the other overlays neither encrypt nor authenticate: anyone on the path reads "
        "the tenant traffic and its addresses, and can inject frames into any VNI by sending UDP to a VTEP. "
        "Tunnels whose endpoints are in networks you mark untrusted (--untrusted CIDR or `untrusted` in the "
        "inventory) should run inside IPsec/WireGuard/MACsec. Inner flows on ports of protocols with their "
        "own encryption (TLS, SSH, QUIC, IPsec, WireGuard: thresholds security.*_ports) are counted apart; "
        "their payload is protected but the tenant's addresses and the VNI are not. Only checked when "
        "untrusted networks are given."
    ),
    fires_when="a tunnel endpoint is inside an untrusted network and the tunnel is not carried in ESP/WireGuard/DTLS",
    remedy="carry the overlay in IPsec (ESP) or WireGuard across the untrusted segment, or keep it off that segment",
    thresholds=("security.encrypted_tcp_ports", "security.encrypted_udp_ports"),
)


def encrypted_flow(ctx: Context, fk: FlowKey) -> bool:
    proto, sport, dport = fk[5], fk[6], fk[7]
    if proto in (50, 51):
        return True
    if proto == 6:
        ports = ctx.thresholds.get("security", "encrypted_tcp_ports")
    elif proto == 17:
        ports = ctx.thresholds.get("security", "encrypted_udp_ports")
    else:
        return False
    return sport in ports or dport in ports


def check(ctx: Context) -> list[Finding]:
    if not ctx.untrusted_given:
        return []
    out = []
    done: set[tuple[object, ...]] = set()
    for tk, ts in sorted(ctx.agg.tunnels.items(), key=lambda kv: kv[1].first):
        if not ctx.crosses_untrusted(tk[1], tk[2]) or (tk[0], tk[2], tk[1], tk[3]) in done:
            continue  # (the reverse direction is part of the same finding)
        done.add(tk)
        rk = (tk[0], tk[2], tk[1], tk[3])
        tunnels = [tk] + ([rk] if rk in ctx.agg.tunnels else [])
        flows = ctx.flows_by_tunnel.get(tk, []) + ctx.flows_by_tunnel.get(rk, [])
        packets = sum(ctx.agg.tunnels[t].packets for t in tunnels)
        clear = [fk for fk in flows if not encrypted_flow(ctx, fk)]
        ev = Evidence(tunnels=tunnels, flows=clear[:8])
        ev.add_frames([ts.first] + [ctx.facts.flows[fk].first for fk in clear])
        ev.facts = {"inner_flows": len(flows), "cleartext_inner_flows": len(clear), "packets": packets}
        both = " and back" if len(tunnels) > 1 else ""
        detail = (
            f"{tunnel_str(tk)}{both} ({packets} packets, {frames_str(ev.frames)}) has an endpoint in an untrusted "
            f"network and no encryption around it; {len(clear)} of {len(flows)} inner flows are not encrypted "
            "themselves either."
        )
        out.append(
            Finding(
                SPEC.id,
                "warning",
                f"{tunnel_str(tk)} crosses an untrusted network in clear ({len(clear)} cleartext inner flows)",
                detail,
                f"protect {tk[1]} ↔ {tk[2]} with IPsec ESP or WireGuard (or MACsec on the links), and filter "
                f"UDP to the VTEPs' tunnel port from untrusted sources",
                ev,
            )
        )
    return out
