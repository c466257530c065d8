"""Outer fragmentation: tunnel packets fragmented on the underlay, and what it costs."""

from __future__ import annotations

from ipsotrace.findings.collect import FragFacts
from ipsotrace.findings.context import Context, frames_str
from ipsotrace.findings.model import Evidence, Finding, Spec, tunnel_str

SPEC = Spec(
    id="mtu.outer-fragmentation",
    severity="warning",
    title="Tunnel packets are fragmented on the underlay",
    explanation=(
        "Outer packets (VXLAN, Geneve, GRE...) larger than the underlay MTU and sent without DF are split into "
        "IP fragments by the VTEP or a router. It works, but costs: every fragmented packet becomes two or "
        "more on the wire, the receiving VTEP must reassemble (CPU, reassembly memory, and the whole packet is "
        "lost when one fragment is), and non-first fragments carry no UDP ports, so ECMP hashes them on the "
        "addresses only and they may take another path than the first fragment (reordering, and no entropy). "
        "Many routers also police or drop fragments. The fragment size shows the MTU of the link that split "
        "them; the reassembled size shows how large the tunnel packets really are."
    ),
    fires_when="at least min_fragments outer fragments between two addresses that carry a tunnel",
    remedy="lower the inner MTU to fragment size minus overhead, raise the underlay MTU, set DF on outer packets",
    thresholds=("mtu.min_fragments",),
)


def check(ctx: Context) -> list[Finding]:
    pairs: dict[tuple[str, str], FragFacts] = {}
    for (src, dst, _proto), fr in ctx.facts.frags.items():
        if (src, dst) in ctx.tunnel_pairs or fr.tunnel_first:
            pairs.setdefault((src, dst), FragFacts()).merge(fr)
    out = []
    for (src, dst), fr in sorted(pairs.items()):
        if fr.fragments < ctx.thresholds.get("mtu", "min_fragments"):
            continue
        tunnels = sorted((tk for tk in ctx.agg.tunnels if tk[1:3] == (src, dst)), key=repr)
        overhead = max((ctx.overhead(tk) for tk in tunnels), default=50)
        hdr = 40 if ":" in src else 20
        original = fr.max_end + hdr
        link_mtu = fr.max_fragment
        flows = [fk for tk in tunnels for fk in ctx.flows_by_tunnel.get(tk, [])]
        datagrams = max(fr.datagrams, 1)
        ev = Evidence(tunnels=tunnels, flows=flows[:8])
        ev.add_frames(fr.ev.items)
        ev.facts = {
            "fragments": fr.fragments,
            "fragmented_packets": fr.datagrams,
            "largest_fragment": link_mtu,
            "largest_original": original,
            "overhead": overhead,
            "extra_packets": fr.fragments - fr.datagrams,
        }
        names = ", ".join(tunnel_str(tk) for tk in tunnels[:3]) or f"{src} → {dst}"
        detail = (
            f"{fr.fragments} outer fragments of {fr.datagrams} tunnel packet(s) {src} → {dst} "
            f"({frames_str(ev.frames)}): about {fr.fragments / datagrams:.1f} packets on the wire per tunnel "
            f"packet. Fragments are at most {link_mtu} bytes (the MTU of the link that split them); the "
            f"original packets were up to {original} bytes."
        )
        remedy = (
            f"lower the inner MTU to {link_mtu - overhead} or raise the underlay MTU to {original} between "
            f"{src} and {dst}; set DF on the outer header so PMTU discovery works "
            "(Linux: ip link set DEV type vxlan df set)"
        )
        out.append(
            Finding(
                SPEC.id,
                "warning",
                f"{names}: {fr.datagrams} tunnel packets fragmented on the underlay",
                detail,
                remedy,
                ev,
            )
        )
    return out
